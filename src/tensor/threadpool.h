/* threadpool.h - a fixed pool of worker threads that run one parallel job at
 * a time: em_pool_run(fn) calls fn(ctx, ith, nth) once for every ith in
 * [0, nth), the caller's thread taking ith = 0, and returns when all are
 * done. Work is split statically by the callers, so results never depend on
 * scheduling. Not reentrant: one em_pool_run at a time per pool. */
#ifndef EM_THREADPOOL_H
#define EM_THREADPOOL_H

typedef struct em_pool em_pool;
typedef void (*em_pool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1 = no workers, everything runs on the caller). NULL on
 * failure to create threads. */
em_pool *em_pool_new(int n_threads);
void em_pool_free(em_pool *p);
int em_pool_size(const em_pool *p);
void em_pool_run(em_pool *p, em_pool_fn fn, void *ctx);

/* Splits [0, n) into nth contiguous chunks; chunk ith is [*lo, *hi). */
static inline void em_split(long n, int ith, int nth, long *lo, long *hi) {
    long per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}

#endif
