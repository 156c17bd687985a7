/* memstat.c - see memstat.h. */
#include "memstat.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

int cli_mem_read(cli_mem *m) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) { m->rss = kb * 1024; found++; }
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) { m->hwm = kb * 1024; found++; }
        else if (sscanf(line, "VmLck: %llu kB", &kb) == 1) { m->locked = kb * 1024; found++; }
    }
    fclose(f);
    if (found < 2) { memset(m, 0, sizeof *m); return -1; }
    return 0;
}

typedef uint64_t v4u64 __attribute__((vector_size(32)));

typedef struct {
    const v4u64 *p;
    size_t n;         /* vectors */
    uint64_t sum;
    pthread_t th;
} bw_part;

static void *bw_fill(void *arg) {
    bw_part *w = arg;
    v4u64 *p = (v4u64 *)w->p;
    for (size_t i = 0; i < w->n; i++) p[i] = (v4u64){i, i + 1, i + 2, i + 3};
    return NULL;
}

/* Four independent accumulators, 128 bytes an iteration. */
static void *bw_sum(void *arg) {
    bw_part *w = arg;
    v4u64 a = {0}, b = {0}, c = {0}, d = {0};
    size_t i = 0;
    for (; i + 4 <= w->n; i += 4) {
        a += w->p[i];
        b += w->p[i + 1];
        c += w->p[i + 2];
        d += w->p[i + 3];
    }
    for (; i < w->n; i++) a += w->p[i];
    a += b + c + d;
    w->sum = a[0] + a[1] + a[2] + a[3];
    return NULL;
}

static int bw_run(bw_part *parts, int n, void *(*fn)(void *)) {
    int started = 0, rc = 0;
    for (; started < n; started++)
        if (pthread_create(&parts[started].th, NULL, fn, &parts[started])) { rc = -1; break; }
    for (int i = 0; i < started; i++) pthread_join(parts[i].th, NULL);
    return rc;
}

double cli_membw(size_t bytes, int n_threads, int reps) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    bytes &= ~(size_t)(32 * 4 * 256 - 1);
    if (bytes == 0) return -1;
    void *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return -1;
#ifdef MADV_HUGEPAGE
    madvise(buf, bytes, MADV_HUGEPAGE); /* faster to fill; a hint */
#endif
    bw_part parts[256];
    size_t nv = bytes / sizeof(v4u64), per = nv / (size_t)n_threads;
    for (int t = 0; t < n_threads; t++) {
        parts[t].p = (const v4u64 *)buf + per * (size_t)t;
        parts[t].n = t == n_threads - 1 ? nv - per * (size_t)t : per;
    }
    double best = -1;
    volatile uint64_t sink = 0;
    if (bw_run(parts, n_threads, bw_fill) == 0) {
        for (int r = 0; r < reps; r++) {
            double t0 = cli_now_ms();
            if (bw_run(parts, n_threads, bw_sum)) { best = -1; break; }
            double ms = cli_now_ms() - t0;
            for (int t = 0; t < n_threads; t++) sink += parts[t].sum;
            double gbs = ms > 0 ? (double)bytes / (ms * 1e6) : 0;
            if (gbs > best) best = gbs;
        }
    }
    (void)sink;
    munmap(buf, bytes);
    return best;
}
