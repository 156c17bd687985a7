/* memstat.h - memory figures of this process (from /proc/self/status) and
 * a simple memory read-bandwidth benchmark, for `ember bench`. */
#ifndef EM_CLI_MEMSTAT_H
#define EM_CLI_MEMSTAT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_mem {
    uint64_t rss;    /* VmRSS: resident now, bytes */
    uint64_t hwm;    /* VmHWM: peak resident */
    uint64_t locked; /* VmLck: locked (mlock) */
} cli_mem;

/* Fills m from /proc/self/status; 0, or -1 (m zeroed) where it is not
 * readable (not Linux). */
int cli_mem_read(cli_mem *m);

/* Best of reps passes summing a buffer of `bytes` bytes (written once
 * before, so that its pages are real) split among n_threads threads:
 * bytes read per second, in GB/s (1e9). -1 if the buffer or a thread
 * cannot be had. */
double cli_membw(size_t bytes, int n_threads, int reps);

#endif
