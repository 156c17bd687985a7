/* cmd_bench.c - `ember bench`: throughput of a model, in the manner of
 * llama.cpp's llama-bench:
 *   ppN      one ember_decode of N random tokens (a prompt), tokens / s
 *   tgN      N single-token decodes (positions 0..N-1), tokens / s
 *   tgN xB   B sequences decoding together: N calls of one batch holding
 *            one token of each sequence (logits for all), aggregate tokens / s
 *   ctN xB   contemplation (--contemplate): ember_contemplate with B
 *            branches of N tokens over a 16-token random prompt, early stop
 *            off; tokens generated / s, the prompt's prefill included
 * Each test runs --reps times after one untimed warm-up decode; the table
 * shows the median. --json prints the same as one JSON object (all reps),
 * for bench/run.sh.
 * Memory: the resident set (VmRSS, peak VmHWM) after loading and after the
 * tests, against the budget 1.10 x (file + KV cache) + 32 MiB (weights
 * are used in place from the mapping); --membw adds a read-bandwidth
 * benchmark and the decode rate as a fraction of the bound it implies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "common.h"
#include "memstat.h"
#include "../gguf/gguf.h"

#define MAX_LIST 16

static void help(void) {
    printf("usage: ember bench [-m FILE] [options]\n\n"
           "  --pp LIST      prompt sizes, comma-separated (default 128,512; 0 = none)\n"
           "  --tg N         generated tokens per run (default 64; 0 = none)\n"
           "  --batch LIST   parallel sequences for batched generation (default 1,4,8; 0 = none)\n"
           "  --contemplate LIST  contemplation branches, e.g. 1,2,4,8,16: one prefill, the branches decoded\n"
           "                 together for --tg tokens each (early stop off); aggregate tokens / s (default: none)\n"
           "  --reps R       repetitions of each test (default 3); the median is reported\n"
           "  --json         one JSON object on stdout instead of the table\n"
           "  --seed S       seed of the random tokens (default 1)\n"
           "  -m FILE        GGUF model (default: the bundled models/stories260K.gguf)\n"
           "  -t N           threads (default: all cores)\n"
           "  -c N           context size (default: just enough for the tests)\n"
           "  --kv f16|f32   KV cache precision (default f16)\n"
           "  --mlock        lock the model file in RAM (needs RLIMIT_MEMLOCK >= its size)\n"
           "  --membw        also measure memory read bandwidth (1 GiB summed by all threads, best of 3; a few s)\n"
           "                 and report decode speed as a fraction of the bound it sets\n");
}

/* "128,512" -> values in [0, hi]; a lone 0 means an empty list. */
static int parse_list(const char *flag, const char *s, long hi, long *out, int *n) {
    *n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf || !*s) return cli_error("%s: '%s' is not a comma-separated list", flag, s);
    strcpy(buf, s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == MAX_LIST) return cli_error("%s: at most %d values", flag, MAX_LIST);
        if (arg_long(flag, tok, 0, hi, &out[*n])) return -1;
        if (out[*n] > 0) (*n)++;
    }
    return 0;
}

typedef struct {
    char name[32];
    const char *kind; /* "pp", "tg", "batch", "contemplate" */
    long n_tokens;    /* per sequence */
    long n_seqs;
    double *tps;      /* per rep */
    double median, mean, stdev;
} test;

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    ember_ctx *c;
    int32_t n_vocab;
    uint64_t rng;
    int32_t *tok, *pos, *seq;
    int8_t *want;
} runner;

static void random_tokens(runner *r, int32_t *dst, long n) {
    for (long i = 0; i < n; i++) dst[i] = (int32_t)(rng_next(&r->rng) % (uint64_t)r->n_vocab);
}

#define CT_PROMPT 16

/* Runs one test once; returns tokens / s, or -1 after printing the error. */
static double run_test(runner *r, const test *t) {
    ember_error err;
    if (!strcmp(t->kind, "contemplate")) {
        random_tokens(r, r->tok, CT_PROMPT);
        ember_contemplate_params p = {.n_branches = (int32_t)t->n_seqs, .max_branch_tokens = (int32_t)t->n_tokens,
                                      .aggregate = EMBER_AGG_VOTE, .early_stop = false,
                                      .sampling = ember_sampler_defaults()};
        p.sampling.seed = rng_next(&r->rng);
        ember_contemplation res;
        if (ember_contemplate(r->c, r->tok, CT_PROMPT, &p, NULL, NULL, &res, &err)) {
            cli_error("bench %s: %s", t->name, err.msg);
            return -1;
        }
        double tps = res.ms > 0 ? res.tokens_generated * 1e3 / res.ms : 0;
        ember_contemplation_free(&res);
        return tps;
    }
    for (long s = 0; s < t->n_seqs; s++) ember_seq_truncate(r->c, (int32_t)s, 0);
    double t0 = 0, total = 0;
    if (!strcmp(t->kind, "pp")) {
        random_tokens(r, r->tok, t->n_tokens);
        for (long i = 0; i < t->n_tokens; i++) {
            r->pos[i] = (int32_t)i;
            r->seq[i] = 0;
        }
        ember_batch b = {.n = (int32_t)t->n_tokens, .token = r->tok, .pos = r->pos, .seq = r->seq};
        t0 = cli_now_ms();
        if (ember_decode(r->c, &b, &err)) {
            cli_error("bench %s: %s", t->name, err.msg);
            return -1;
        }
        total = cli_now_ms() - t0;
        return t->n_tokens * 1e3 / total;
    }
    /* tg and batched generation: one token of each sequence per call */
    for (long step = 0; step < t->n_tokens; step++) {
        random_tokens(r, r->tok, t->n_seqs);
        for (long s = 0; s < t->n_seqs; s++) {
            r->pos[s] = (int32_t)step;
            r->seq[s] = (int32_t)s;
            r->want[s] = 1;
        }
        ember_batch b = {.n = (int32_t)t->n_seqs, .token = r->tok, .pos = r->pos, .seq = r->seq, .want_logits = r->want};
        t0 = cli_now_ms();
        if (ember_decode(r->c, &b, &err)) {
            cli_error("bench %s: %s", t->name, err.msg);
            return -1;
        }
        total += cli_now_ms() - t0;
    }
    return t->n_tokens * t->n_seqs * 1e3 / total;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

int cmd_bench(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    mo.threads = nproc > 0 ? (nproc > 256 ? 256 : nproc) : 1;
    long pp[MAX_LIST] = {128, 512}, bs[MAX_LIST] = {1, 4, 8}, ct[MAX_LIST] = {0}, tg = 64, reps = 3;
    int n_pp = 2, n_bs = 3, n_ct = 0;
    bool json = false, membw = false;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_model_opt(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--pp")) { if (!(v = arg_value(argc, argv, &i)) || parse_list(a, v, 1 << 16, pp, &n_pp)) return 1; }
        else if (!strcmp(a, "--batch")) { if (!(v = arg_value(argc, argv, &i)) || parse_list(a, v, 256, bs, &n_bs)) return 1; }
        else if (!strcmp(a, "--contemplate")) { if (!(v = arg_value(argc, argv, &i)) || parse_list(a, v, 64, ct, &n_ct)) return 1; }
        else if (!strcmp(a, "--tg")) { if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 0, 1 << 16, &tg)) return 1; }
        else if (!strcmp(a, "--reps")) { if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 1000, &reps)) return 1; }
        else if (!strcmp(a, "--seed")) { if (!(v = arg_value(argc, argv, &i)) || arg_u64(a, v, &seed)) return 1; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--membw")) membw = true;
        else return cli_error("bench: unknown option '%s' (see 'ember bench --help')", a);
    }
    if (!tg) n_bs = n_ct = 0;
    test tests[3 * MAX_LIST + 1];
    int n_tests = 0;
    long max_pp = 0, max_b = 1;
    for (int i = 0; i < n_pp; i++) {
        test *t = &tests[n_tests++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "pp%ld", pp[i]);
        t->kind = "pp";
        t->n_tokens = pp[i];
        t->n_seqs = 1;
        if (pp[i] > max_pp) max_pp = pp[i];
    }
    if (tg) {
        test *t = &tests[n_tests++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "tg%ld", tg);
        t->kind = "tg";
        t->n_tokens = tg;
        t->n_seqs = 1;
    }
    for (int i = 0; i < n_bs; i++) {
        test *t = &tests[n_tests++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "tg%ld x%ld", tg, bs[i]);
        t->kind = "batch";
        t->n_tokens = tg;
        t->n_seqs = bs[i];
        if (bs[i] > max_b) max_b = bs[i];
    }
    long max_ct = 0;
    for (int i = 0; i < n_ct; i++) {
        test *t = &tests[n_tests++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "ct%ld x%ld", tg, ct[i]);
        t->kind = "contemplate";
        t->n_tokens = tg;
        t->n_seqs = ct[i];
        if (ct[i] > max_ct) max_ct = ct[i];
    }
    if (!n_tests) return cli_error("bench: nothing to run (all of --pp, --tg and --batch are 0)");

    /* Model size: tensor bytes, parameters, and the weight bytes one decode
     * call streams (all tensors but the token embeddings, of which it reads
     * one row per token; of a mixture of experts' stacked expert tensors,
     * *_exps [.., .., expert_count], only the expert_used_count slices a
     * token is routed to: the active parameters). */
    if (cli_check_file(mo.model)) return 1;
    em_err gerr = {{0}};
    em_gguf *g = em_gguf_open(mo.model, &gerr);
    if (!g) return cli_error("%s", gerr.msg);
    uint64_t size_bytes = 0, n_params = 0, streamed = 0;
    uint32_t n_exp = 0, n_exp_used = 0;
    em_str arch = {0};
    if (em_gguf_get_str(g, "general.architecture", &arch, true, &gerr) == 0 && arch.ptr && arch.len < 64) {
        char key[96];
        snprintf(key, sizeof key, "%.*s.expert_count", (int)arch.len, arch.ptr);
        if (em_gguf_get_u32(g, key, &n_exp, true, &gerr)) n_exp = 0;
        snprintf(key, sizeof key, "%.*s.expert_used_count", (int)arch.len, arch.ptr);
        if (em_gguf_get_u32(g, key, &n_exp_used, true, &gerr) || n_exp_used > n_exp) n_exp_used = n_exp;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const em_gguf_tensor *t = &g->tensors[i];
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) nel *= (uint64_t)t->ne[d];
        size_bytes += t->nbytes;
        n_params += nel;
        if (!strcmp(t->name, "token_embd.weight")) {
            if (t->ne[1] > 0) streamed += t->nbytes / (uint64_t)t->ne[1];
        } else if (n_exp && t->n_dims == 3 && t->ne[2] == (int64_t)n_exp && strstr(t->name, "_exps.")) {
            streamed += t->nbytes / n_exp * n_exp_used;
        } else {
            streamed += t->nbytes;
        }
    }
    em_gguf_close(g);

    /* Context: room for the longest prompt and for max_b sequences of tg
     * positions each (KV blocks are per sequence). */
    const long blk = ember_kv_block_size();
    long need = max_pp > tg ? max_pp : tg;
    long need_b = max_b * ((tg + blk - 1) / blk + 1) * blk;
    if (need_b > need) need = need_b;
    /* contemplation: the prompt once, each branch its copy of the prompt's
     * last block and its own tokens */
    long need_ct = max_ct ? CT_PROMPT + max_ct * ((CT_PROMPT % blk + tg + blk - 1) / blk + 1) * blk : 0;
    if (need_ct > need) need = need_ct;
    if (!mo.n_ctx) mo.n_ctx = need + blk;
    ember_model *m = NULL;
    ember_ctx *c = NULL;
    double load_ms;
    cli_mem mem_load, mem_run;
    uint64_t file_bytes = 0, kv_bytes = 0;
    {
        /* cli_load takes n_batch from the defaults (512): make room for the
         * longest prompt and the widest batch. */
        if (cli_check_file(mo.model)) return 1;
        struct stat st;
        if (stat(mo.model, &st) == 0) file_bytes = (uint64_t)st.st_size;
        ember_error err;
        double t0 = cli_now_ms();
        m = ember_model_load_ex(mo.model, &(ember_model_params){.mlock = mo.mlock}, &err);
        if (!m) return cli_error("%s", err.msg);
        long nb = max_pp > max_b ? max_pp : max_b;
        if (max_ct && nb < CT_PROMPT) nb = CT_PROMPT;
        if (max_ct > nb) nb = max_ct;
        ember_ctx_params p = {.n_ctx = (uint32_t)mo.n_ctx, .n_batch = (uint32_t)(nb > 0 ? nb : 1),
                              .n_seqs = (int32_t)(max_ct > max_b ? max_ct : max_b), .n_threads = (int)mo.threads,
                              .kv_type = mo.kv};
        c = ember_ctx_new(m, &p, &err);
        if (!c) {
            ember_model_free(m);
            return cli_error("%s", err.msg);
        }
        load_ms = cli_now_ms() - t0;
        cli_mem_read(&mem_load);
        kv_bytes = ember_ctx_kv_bytes(c);
    }
    int rc = 1;
    long cap = max_pp > max_b ? max_pp : max_b;
    if (max_ct && cap < CT_PROMPT) cap = CT_PROMPT;
    runner r = {.c = c, .n_vocab = ember_model_n_vocab(m), .rng = seed};
    r.tok = malloc((size_t)cap * sizeof *r.tok);
    r.pos = malloc((size_t)cap * sizeof *r.pos);
    r.seq = malloc((size_t)cap * sizeof *r.seq);
    r.want = malloc((size_t)cap);
    for (int i = 0; i < n_tests; i++) tests[i].tps = calloc((size_t)reps, sizeof(double));
    for (int i = 0; i < n_tests; i++)
        if (!tests[i].tps) goto oom;
    if (!r.tok || !r.pos || !r.seq || !r.want) goto oom;

    /* Warm-up: pages in the weights, starts the threads. */
    {
        test w = {.name = "warm-up", .kind = "pp", .n_tokens = cap < 16 ? cap : 16, .n_seqs = 1};
        if (run_test(&r, &w) < 0) goto done;
        test w2 = {.name = "warm-up", .kind = "tg", .n_tokens = 2, .n_seqs = 1};
        if (tg && run_test(&r, &w2) < 0) goto done;
    }
    for (long rep = 0; rep < reps; rep++)
        for (int i = 0; i < n_tests; i++)
            if ((tests[i].tps[rep] = run_test(&r, &tests[i])) < 0) goto done;
    for (int i = 0; i < n_tests; i++) {
        test *t = &tests[i];
        double *s = malloc((size_t)reps * sizeof *s);
        if (!s) goto oom;
        memcpy(s, t->tps, (size_t)reps * sizeof *s);
        qsort(s, (size_t)reps, sizeof *s, cmp_double);
        t->median = reps % 2 ? s[reps / 2] : (s[reps / 2 - 1] + s[reps / 2]) / 2;
        double sum = 0, sq = 0;
        for (long k = 0; k < reps; k++) sum += s[k];
        t->mean = sum / reps;
        for (long k = 0; k < reps; k++) sq += (s[k] - t->mean) * (s[k] - t->mean);
        t->stdev = reps > 1 ? sqrt(sq / (reps - 1)) : 0;
        free(s);
    }
    /* Memory after the tests (before the bandwidth buffer exists). The
     * budget: the file and the KV cache within 10%, plus 32 MiB of scratch. */
    const bool have_mem = cli_mem_read(&mem_run) == 0; /* /proc/self/status (Linux) */
    const double rss_limit = 1.10 * (double)(file_bytes + kv_bytes) + 32.0 * 1048576.0;
    const bool rss_ok = have_mem && (double)mem_run.rss <= rss_limit;
    double bw_gbs = membw ? cli_membw((size_t)1 << 30, (int)mo.threads, 3) : -1;
    if (membw && bw_gbs <= 0) {
        cli_error("--membw: cannot allocate the 1 GiB buffer or start the threads");
        goto done;
    }
    /* decode (the tg test): weight bytes streamed per token x tokens / s,
     * against the measured bandwidth */
    const test *tg_test = NULL;
    for (int i = 0; i < n_tests; i++)
        if (!strcmp(tests[i].kind, "tg")) tg_test = &tests[i];
    const double tg_gbs = tg_test ? (double)streamed * tg_test->median / 1e9 : 0;
    if (json) {
        printf("{\"engine\":\"ember\",\"model\":");
        json_str(mo.model);
        printf(",\"desc\":");
        json_str(ember_model_desc(m));
        printf(",\"n_vocab\":%d,\"kernels\":\"%s\",\"threads\":%ld,\"size_bytes\":%llu,\"n_params\":%llu,"
               "\"streamed_bytes_per_call\":%llu,\"n_expert\":%u,\"n_expert_used\":%u,\"load_ms\":%.1f,\"reps\":%ld,",
               ember_model_n_vocab(m), ember_kernels(), mo.threads, (unsigned long long)size_bytes, (unsigned long long)n_params,
               (unsigned long long)streamed, n_exp, n_exp_used, load_ms, reps);
        printf("\"file_bytes\":%llu,\"kv_bytes\":%llu,\"rss_load_bytes\":%llu,\"hwm_load_bytes\":%llu,"
               "\"rss_run_bytes\":%llu,\"hwm_run_bytes\":%llu,\"rss_limit_bytes\":%.0f,\"rss_ok\":%s,"
               "\"mlock\":%s,\"locked_bytes\":%llu,",
               (unsigned long long)file_bytes, (unsigned long long)kv_bytes, (unsigned long long)mem_load.rss,
               (unsigned long long)mem_load.hwm, (unsigned long long)mem_run.rss, (unsigned long long)mem_run.hwm,
               rss_limit, !have_mem ? "null" : rss_ok ? "true" : "false", mo.mlock ? "true" : "false",
               (unsigned long long)mem_run.locked);
        if (bw_gbs > 0) printf("\"membw_gbs\":%.3f,", bw_gbs);
        else printf("\"membw_gbs\":null,");
        if (bw_gbs > 0 && tg_test) printf("\"tg_bw_fraction\":%.4f,", tg_gbs / bw_gbs);
        else printf("\"tg_bw_fraction\":null,");
        printf("\"results\":[");
        for (int i = 0; i < n_tests; i++) {
            const test *t = &tests[i];
            printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"n_tokens\":%ld,\"n_seqs\":%ld,\"median_tps\":%.3f,"
                   "\"mean_tps\":%.3f,\"stdev_tps\":%.3f,\"tps\":[",
                   i ? "," : "", t->name, t->kind, t->n_tokens, t->n_seqs, t->median, t->mean, t->stdev);
            for (long k = 0; k < reps; k++) printf("%s%.3f", k ? "," : "", t->tps[k]);
            printf("]}");
        }
        printf("]}\n");
    } else {
        printf("model: %s (%s)\n", mo.model, ember_model_desc(m));
        char per[64] = "call"; /* one decode call of one sequence = one token */
        if (n_exp) snprintf(per, sizeof per, "token (active: %u of %u experts)", n_exp_used, n_exp);
        printf("size: %.2f MiB, %.2f M params, %.2f MiB of weights streamed per decode %s; %ld threads, %s "
               "kernels, %ld reps, load %.0f ms\n\n",
               size_bytes / 1048576.0, n_params / 1e6, streamed / 1048576.0, per, mo.threads, ember_kernels(), reps,
               load_ms);
        printf("| %-12s | %12s | %9s | %14s | %11s |\n", "test", "t/s (median)", "+- stdev", "MiB/token", "GB/s");
        printf("|%s|%s|%s|%s|%s|\n", "--------------", "-------------:", "----------:", "---------------:",
               "------------:");
        for (int i = 0; i < n_tests; i++) {
            const test *t = &tests[i];
            /* weight bytes per token: one call serves n_tokens (pp) or n_seqs (generation) tokens */
            double per_tok = (double)streamed / (double)(!strcmp(t->kind, "pp") ? t->n_tokens : t->n_seqs);
            printf("| %-12s | %12.2f | %9.2f | %14.2f | %11.2f |\n", t->name, t->median, t->stdev,
                   per_tok / 1048576.0, per_tok * t->median / 1e9);
        }
        const double MiB = 1048576.0;
        printf("\nmemory: file %.1f MiB + KV cache %.1f MiB; RSS after load %.1f MiB (peak %.1f), after the tests "
               "%.1f MiB (peak %.1f); budget 1.10 x (file + KV) + 32 MiB = %.1f MiB: %s\n",
               file_bytes / MiB, kv_bytes / MiB, mem_load.rss / MiB, mem_load.hwm / MiB, mem_run.rss / MiB,
               mem_run.hwm / MiB, rss_limit / MiB,
               !have_mem ? "unknown (no /proc/self/status)" : rss_ok ? "within" : "OVER");
        if (mo.mlock) printf("mlock: %.1f MiB locked\n", mem_run.locked / MiB);
        if (bw_gbs > 0) {
            printf("memory read bandwidth: %.2f GB/s (%ld threads, best of 3 passes over 1 GiB)\n", bw_gbs, mo.threads);
            if (tg_test)
                printf("decode %s: %.2f t/s x %.2f MiB/token = %.2f GB/s = %.1f%% of the bandwidth bound (%.2f t/s)\n",
                       tg_test->name, tg_test->median, streamed / MiB, tg_gbs, 100.0 * tg_gbs / bw_gbs,
                       bw_gbs * 1e9 / (double)streamed);
        }
    }
    rc = 0;
    goto done;
oom:
    cli_error("out of memory");
done:
    for (int i = 0; i < n_tests; i++) free(tests[i].tps);
    free(r.tok);
    free(r.pos);
    free(r.seq);
    free(r.want);
    ember_ctx_free(c);
    ember_model_free(m);
    return rc;
}
