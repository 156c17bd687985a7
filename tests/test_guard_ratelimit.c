/* test_guard_ratelimit.c - token-bucket rate limits (src/guard/ratelimit.h)
 * with a fake clock: exact allowances under 64 hammering threads, token
 * reservations corrected at release, concurrency caps, Retry-After and the
 * OpenAI-style x-ratelimit-* header values. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "guard/ratelimit.h"

static _Atomic int64_t fake_us;
static int64_t fake_clock(void *user) {
    (void)user;
    return atomic_load(&fake_us);
}

static const char *header(const em_rl_info *info, const char *name) {
    static em_rl_header h[EM_RL_MAX_HEADERS];
    size_t n = em_rl_headers(info, h);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(h[i].name, name)) return h[i].value;
    return NULL;
}

static void test_durations(void **state) {
    (void)state;
    char b[32];
    em_rl_format_duration(0, b), assert_string_equal(b, "0ms");
    em_rl_format_duration(250, b), assert_string_equal(b, "250ms");
    em_rl_format_duration(1000, b), assert_string_equal(b, "1s");
    em_rl_format_duration(1500, b), assert_string_equal(b, "1.5s");
    em_rl_format_duration(360000, b), assert_string_equal(b, "6m0s");
    em_rl_format_duration(3723004, b), assert_string_equal(b, "1h2m3.004s");
}

static void test_rpm_sequential(void **state) {
    (void)state;
    atomic_store(&fake_us, 1000000);
    em_rl *rl = em_rl_new(fake_clock, NULL);
    em_rl_limits lim = {.rpm = 3};
    em_rl_ticket t;
    em_rl_info info;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(em_rl_acquire(rl, 7, &lim, 0, &t, &info), EM_RL_OK);
        assert_int_equal(info.remaining_requests, 2 - i);
        em_rl_release(rl, &t, 0, NULL);
    }
    assert_string_equal(header(&info, "x-ratelimit-limit-requests"), "3");
    assert_string_equal(header(&info, "x-ratelimit-remaining-requests"), "0");
    assert_string_equal(header(&info, "x-ratelimit-reset-requests"), "1m0s"); /* empty -> full in a minute */
    assert_null(header(&info, "x-ratelimit-limit-tokens"));                /* no tpm limit */
    assert_null(header(&info, "retry-after"));
    assert_int_equal(em_rl_acquire(rl, 7, &lim, 0, &t, &info), EM_RL_RPM);
    assert_false(t.held);
    assert_int_equal(info.retry_after_ms, 20000); /* one request every 20 s */
    assert_string_equal(header(&info, "retry-after"), "20");
    assert_string_equal(header(&info, "retry-after-ms"), "20000");
    /* another key is independent */
    assert_int_equal(em_rl_acquire(rl, 8, &lim, 0, &t, &info), EM_RL_OK);
    em_rl_release(rl, &t, 0, NULL);
    atomic_fetch_add(&fake_us, 19999999);
    assert_int_equal(em_rl_acquire(rl, 7, &lim, 0, &t, &info), EM_RL_RPM);
    assert_int_equal(info.retry_after_ms, 1); /* 1 us left, rounded up */
    atomic_fetch_add(&fake_us, 1);
    assert_int_equal(em_rl_acquire(rl, 7, &lim, 0, &t, &info), EM_RL_OK);
    em_rl_release(rl, &t, 0, NULL);
    /* a long idle period refills to the limit, not beyond */
    atomic_fetch_add(&fake_us, 3600000000LL);
    em_rl_peek(rl, 7, &lim, &info);
    assert_int_equal(info.remaining_requests, 3);
    assert_string_equal(header(&info, "x-ratelimit-reset-requests"), "0ms");
    /* a changed limit applies at once */
    lim.rpm = 1;
    em_rl_peek(rl, 7, &lim, &info);
    assert_int_equal(info.limit_requests, 1);
    assert_int_equal(info.remaining_requests, 1);
    em_rl_free(rl);
}

static void test_tpm_reserve_and_correct(void **state) {
    (void)state;
    atomic_store(&fake_us, 0);
    em_rl *rl = em_rl_new(fake_clock, NULL);
    em_rl_limits lim = {.tpm = 1000};
    em_rl_ticket a, b, c;
    em_rl_info info;
    assert_int_equal(em_rl_acquire(rl, 1, &lim, 400, &a, &info), EM_RL_OK);
    assert_int_equal(info.remaining_tokens, 600);
    assert_int_equal(em_rl_acquire(rl, 1, &lim, 400, &b, &info), EM_RL_OK);
    assert_int_equal(info.remaining_tokens, 200);
    assert_int_equal(em_rl_acquire(rl, 1, &lim, 400, &c, &info), EM_RL_TPM);
    assert_int_equal(info.retry_after_ms, 12000); /* 200 more tokens at 1000/min */
    assert_string_equal(header(&info, "x-ratelimit-remaining-tokens"), "200");
    assert_string_equal(header(&info, "x-ratelimit-reset-tokens"), "48s");
    /* the first request used only 100 of its 400: 300 come back */
    em_rl_release(rl, &a, 100, &info);
    assert_int_equal(info.remaining_tokens, 500);
    em_rl_release(rl, &a, 100, &info); /* a second release does nothing */
    assert_int_equal(info.remaining_tokens, 500);
    assert_int_equal(em_rl_acquire(rl, 1, &lim, 400, &c, &info), EM_RL_OK);
    assert_int_equal(info.remaining_tokens, 100);
    /* one that used more than it reserved leaves the bucket in debt */
    em_rl_release(rl, &b, 900, &info);
    assert_int_equal(info.remaining_tokens, 0);
    em_rl_release(rl, &c, 400, NULL);
    assert_int_equal(em_rl_acquire(rl, 1, &lim, 1, &a, &info), EM_RL_TPM);
    assert_int_equal(info.retry_after_ms, 24060); /* debt of 400 tokens + 1 token, at 1000/min */
    /* more than the limit can ever grant */
    assert_int_equal(em_rl_acquire(rl, 1, &lim, 1001, &a, &info), EM_RL_TOO_LARGE);
    assert_int_equal(info.retry_after_ms, -1);
    assert_null(header(&info, "retry-after"));
    assert_string_equal(em_rl_status_code(EM_RL_TOO_LARGE), "request_too_large");
    em_rl_free(rl);
}

static void test_concurrency_sequential(void **state) {
    (void)state;
    atomic_store(&fake_us, 0);
    em_rl *rl = em_rl_new(fake_clock, NULL);
    em_rl_limits lim = {.max_concurrent = 2};
    em_rl_ticket t[3];
    em_rl_info info;
    assert_int_equal(em_rl_acquire(rl, 5, &lim, 10, &t[0], &info), EM_RL_OK);
    assert_int_equal(em_rl_acquire(rl, 5, &lim, 10, &t[1], &info), EM_RL_OK);
    assert_int_equal(info.in_flight, 2);
    assert_int_equal(em_rl_acquire(rl, 5, &lim, 10, &t[2], &info), EM_RL_CONCURRENCY);
    assert_string_equal(header(&info, "retry-after"), "1");
    em_rl_release(rl, &t[0], 10, NULL);
    assert_int_equal(em_rl_acquire(rl, 5, &lim, 10, &t[2], &info), EM_RL_OK);
    em_rl_release(rl, &t[1], 10, NULL);
    em_rl_release(rl, &t[2], 10, NULL);
    em_rl_peek(rl, 5, &lim, &info);
    assert_int_equal(info.in_flight, 0);
    em_rl_free(rl);
}

/* ---- 64 threads --------------------------------------------------------- */

#define THREADS 64
#define KEY_RPM 600

typedef struct shared {
    em_rl *rl;
    em_rl_limits lim;
    pthread_barrier_t bar;
    int steps, tries_per_step;
    _Atomic long granted, denied;
    _Atomic int done;
    _Atomic int in_flight, max_in_flight;
} shared;

static void *lockstep_worker(void *p) {
    shared *s = p;
    for (int step = 0; step <= s->steps; step++) {
        pthread_barrier_wait(&s->bar); /* main has set the clock */
        for (int k = 0; k < s->tries_per_step; k++) {
            em_rl_ticket t;
            if (em_rl_acquire(s->rl, 42, &s->lim, 0, &t, NULL) == EM_RL_OK) {
                atomic_fetch_add(&s->granted, 1);
                em_rl_release(s->rl, &t, 0, NULL);
            } else {
                atomic_fetch_add(&s->denied, 1);
            }
        }
        pthread_barrier_wait(&s->bar); /* main checks the count */
    }
    return NULL;
}

/* 64 threads, clock advanced 100 ms per step for 20 s: after each step the
 * grants are exactly 600 + step (one request per 100 ms at 600 RPM). */
static void test_threads_lockstep(void **state) {
    (void)state;
    shared s = {.lim = {.rpm = KEY_RPM}, .steps = 200, .tries_per_step = 12};
    atomic_store(&fake_us, 5000000);
    s.rl = em_rl_new(fake_clock, NULL);
    pthread_barrier_init(&s.bar, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, lockstep_worker, &s);
    for (int step = 0; step <= s.steps; step++) {
        if (step) atomic_fetch_add(&fake_us, 100000);
        pthread_barrier_wait(&s.bar);
        pthread_barrier_wait(&s.bar);
        assert_int_equal(atomic_load(&s.granted), KEY_RPM + step);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    long allowance = KEY_RPM + KEY_RPM * 20 / 60; /* full bucket + 20 s of refill */
    assert_int_equal(atomic_load(&s.granted), allowance);
    assert_int_equal(atomic_load(&s.granted) + atomic_load(&s.denied), (long)THREADS * 201 * s.tries_per_step);
    pthread_barrier_destroy(&s.bar);
    em_rl_free(s.rl);
}

static void *free_worker(void *p) {
    shared *s = p;
    pthread_barrier_wait(&s->bar);
    for (;;) {
        int done = atomic_load(&s->done);
        em_rl_ticket t;
        if (em_rl_acquire(s->rl, 42, &s->lim, 0, &t, NULL) == EM_RL_OK) {
            atomic_fetch_add(&s->granted, 1);
            em_rl_release(s->rl, &t, 0, NULL);
        } else {
            atomic_fetch_add(&s->denied, 1);
            if (done) break; /* denied after the clock stopped: the bucket is drained */
            nanosleep(&(struct timespec){0, 20000}, NULL); /* let the clock thread run */
        }
    }
    return NULL;
}

/* No lockstep: threads hammer while the clock moves in uneven steps; once it
 * stops and every thread has been refused, the grants are exactly the
 * allowance for the elapsed time, never more. */
static void test_threads_free_running(void **state) {
    (void)state;
    shared s = {.lim = {.rpm = KEY_RPM}};
    atomic_store(&fake_us, 0);
    s.rl = em_rl_new(fake_clock, NULL);
    /* drain the initial burst first, so no refill is lost to a full bucket */
    em_rl_ticket t;
    for (int i = 0; i < KEY_RPM; i++) {
        assert_int_equal(em_rl_acquire(s.rl, 42, &s.lim, 0, &t, NULL), EM_RL_OK);
        em_rl_release(s.rl, &t, 0, NULL);
    }
    pthread_barrier_init(&s.bar, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, free_worker, &s);
    pthread_barrier_wait(&s.bar);
    uint64_t r = 12345;
    int64_t total = 0;
    while (total < 20000000) { /* 20 s of fake time in uneven steps */
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int64_t d = 1 + (int64_t)(r % 90000);
        if (total + d > 20000000) d = 20000000 - total;
        atomic_fetch_add(&fake_us, d);
        total += d;
        if (r % 8 == 0) sched_yield();
    }
    atomic_store(&s.done, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    long want = KEY_RPM * (total / 1000) / 60000; /* floor(600 * T / 60 s) */
    assert_int_equal(atomic_load(&s.granted), want);
    printf("free-running: %ld granted of %ld attempts over %.1f s (allowance %ld beyond the initial 600)\n",
           atomic_load(&s.granted), atomic_load(&s.granted) + atomic_load(&s.denied), (double)total / 1e6, want);
    pthread_barrier_destroy(&s.bar);
    em_rl_free(s.rl);
}

static void *conc_worker(void *p) {
    shared *s = p;
    pthread_barrier_wait(&s->bar);
    while (!atomic_load(&s->done)) {
        em_rl_ticket t;
        if (em_rl_acquire(s->rl, 42, &s->lim, 0, &t, NULL) == EM_RL_OK) {
            atomic_fetch_add(&s->granted, 1);
            int now = atomic_fetch_add(&s->in_flight, 1) + 1, max = atomic_load(&s->max_in_flight);
            while (now > max && !atomic_compare_exchange_weak(&s->max_in_flight, &max, now)) {}
            sched_yield();
            atomic_fetch_sub(&s->in_flight, 1);
            em_rl_release(s->rl, &t, 0, NULL);
        } else {
            atomic_fetch_add(&s->denied, 1);
            nanosleep(&(struct timespec){0, 20000}, NULL);
        }
    }
    return NULL;
}

/* 64 threads against max_concurrent = 8: never more than 8 in flight. */
static void test_threads_concurrency(void **state) {
    (void)state;
    shared s = {.lim = {.max_concurrent = 8}};
    s.rl = em_rl_new(NULL, NULL); /* real clock */
    pthread_barrier_init(&s.bar, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, conc_worker, &s);
    pthread_barrier_wait(&s.bar);
    while (atomic_load(&s.granted) < 2000 || atomic_load(&s.denied) < 100)
        nanosleep(&(struct timespec){0, 200000}, NULL);
    atomic_store(&s.done, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    assert_true(atomic_load(&s.max_in_flight) <= 8);
    assert_true(atomic_load(&s.max_in_flight) >= 1);
    em_rl_info info;
    em_rl_peek(s.rl, 42, &s.lim, &info);
    assert_int_equal(info.in_flight, 0);
    pthread_barrier_destroy(&s.bar);
    em_rl_free(s.rl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),          cmocka_unit_test(test_rpm_sequential),
        cmocka_unit_test(test_tpm_reserve_and_correct), cmocka_unit_test(test_concurrency_sequential),
        cmocka_unit_test(test_threads_lockstep),   cmocka_unit_test(test_threads_free_running),
        cmocka_unit_test(test_threads_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
