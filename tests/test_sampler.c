/* test_sampler.c - sampler chain (penalties, top-k, top-p, min-p,
 * temperature, seeded draw, logprobs) and the streaming stop-string matcher,
 * on small hand-made inputs with hand-computed expectations. */
#include "testutil.h"

#include <float.h>
#include <math.h>

#include "sample/sampler.h"

/* ----------------------------------------------------------- helpers -- */

/* Params with every filter and penalty off, temperature t. */
static em_sampler_params plain(float t) {
    em_sampler_params p = em_sampler_defaults();
    p.temperature = t;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    p.penalty_last_n = 0;
    p.seed = 1234;
    return p;
}

static int32_t sample1(const em_sampler_params *p, const float *logits, int32_t n, float *lp) {
    em_sampler *s = em_sampler_new(p, n);
    assert_non_null(s);
    int32_t t = em_sampler_sample(s, logits, lp);
    em_sampler_free(s);
    return t;
}

/* Samples with 50 seeds x 40 draws; counts[] gets how often each id came. */
static void collect(em_sampler_params p, const float *logits, int32_t n, int *counts) {
    memset(counts, 0, sizeof(int) * (size_t)n);
    for (uint64_t seed = 1; seed <= 50; seed++) {
        p.seed = seed * 7919;
        em_sampler *s = em_sampler_new(&p, n);
        assert_non_null(s);
        for (int i = 0; i < 40; i++) {
            int32_t t = em_sampler_sample(s, logits, NULL);
            assert_true(t >= 0 && t < n);
            counts[t]++;
        }
        em_sampler_free(s);
    }
}

/* Asserts the sampled set is exactly the ids whose allowed[] is 1. */
static void assert_set(const int *counts, const int *allowed, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        if (allowed[i]) {
            if (counts[i] == 0) fail_msg("token %d allowed but never sampled", i);
        } else if (counts[i] != 0) {
            fail_msg("token %d sampled %d times but should be filtered", i, counts[i]);
        }
    }
}

static double logsumexp(const double *x, int n) {
    double m = -INFINITY, z = 0;
    for (int i = 0; i < n; i++) if (x[i] > m) m = x[i];
    for (int i = 0; i < n; i++) z += exp(x[i] - m);
    return m + log(z);
}

/* Small deterministic generator for test data. */
static uint32_t lcg(uint32_t *st) {
    *st = *st * 1664525u + 1013904223u;
    return *st >> 8;
}

/* --------------------------------------------------- construction etc -- */

static void test_defaults_and_invalid(void **state) {
    (void)state;
    em_sampler_params d = em_sampler_defaults();
    assert_true(fabsf(d.temperature - 0.8f) < 1e-6f);
    assert_int_equal(d.top_k, 40);
    assert_true(fabsf(d.top_p - 0.95f) < 1e-6f);
    assert_true(fabsf(d.min_p - 0.05f) < 1e-6f);
    assert_true(d.repeat_penalty == 1.0f);
    assert_int_equal(d.penalty_last_n, 64);
    assert_true(d.seed == 0);

    assert_null(em_sampler_new(&d, 0));
    assert_null(em_sampler_new(&d, -3));
    em_sampler *s = em_sampler_new(NULL, 4);       /* NULL params: defaults */
    assert_non_null(s);
    float l[4] = {0, 1, 2, 3};
    int32_t t = em_sampler_sample(s, l, NULL);
    assert_true(t >= 0 && t < 4);
    assert_int_equal(em_sampler_sample(s, NULL, NULL), -1);
    assert_int_equal(em_sampler_sample(NULL, l, NULL), -1);
    em_sampler_accept(s, -1);                      /* ignored, no crash */
    em_sampler_accept(s, 4);
    em_sampler_accept(NULL, 0);
    em_sampler_free(s);
    em_sampler_free(NULL);
}

/* ------------------------------------------------------------- greedy -- */

static void test_greedy_ties_and_logprob(void **state) {
    (void)state;
    em_sampler_params p = plain(0.0f);
    float l[5] = {1.0f, 3.0f, 3.0f, 2.0f, -1.0f};
    float lp = 0;
    assert_int_equal(sample1(&p, l, 5, &lp), 1);   /* tie 1/2 -> lowest id */
    double x[5] = {1, 3, 3, 2, -1};
    assert_true(fabs(lp - (3.0 - logsumexp(x, 5))) < 1e-5);

    /* negative temperature is greedy too; filters do not change the argmax */
    p.temperature = -1.0f;
    p.top_k = 3;
    p.top_p = 0.1f;
    p.min_p = 0.9f;
    assert_int_equal(sample1(&p, l, 5, &lp), 1);
    assert_true(fabs(lp - (3.0 - logsumexp(x, 5))) < 1e-5);

    /* all equal -> 0, logprob -log(n) */
    float e[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    assert_int_equal(sample1(&p, e, 4, &lp), 0);
    assert_true(fabs(lp + log(4.0)) < 1e-6);
}

static void test_nan_inf_logits(void **state) {
    (void)state;
    em_sampler_params p = plain(0.0f);
    float a[3] = {NAN, 1.0f, NAN};
    float lp = 0;
    assert_int_equal(sample1(&p, a, 3, &lp), 1);
    assert_true(fabsf(lp) < 1e-6f);                /* the only finite token */

    float b[3] = {NAN, NAN, NAN};
    assert_int_equal(sample1(&p, b, 3, &lp), 0);
    assert_true(isinf(lp) && lp < 0);
    p.temperature = 1.0f;
    assert_int_equal(sample1(&p, b, 3, &lp), 0);
    assert_true(isinf(lp) && lp < 0);

    /* NaN never sampled; +inf dominates */
    int counts[4];
    float c[4] = {NAN, 0.0f, NAN, 0.0f};
    collect(plain(1.0f), c, 4, counts);
    int allowed_c[4] = {0, 1, 0, 1};
    assert_set(counts, allowed_c, 4);
    float d[4] = {1.0f, INFINITY, 2.0f, -INFINITY};
    assert_int_equal(sample1(&p, d, 4, &lp), 1);
    assert_true(fabsf(lp) < 1e-6f);
    p.temperature = 0;
    assert_int_equal(sample1(&p, d, 4, &lp), 1);

    /* a boosting penalty (repeat < 1) on +inf must not overflow into NaN */
    em_sampler_params q = plain(1.0f);
    q.penalty_last_n = -1;
    q.repeat_penalty = 0.5f;
    q.frequency_penalty = -1.0f;
    em_sampler *s = em_sampler_new(&q, 4);
    em_sampler_accept(s, 1);
    assert_int_equal(em_sampler_sample(s, d, &lp), 1);
    assert_true(fabsf(lp) < 1e-6f);
    em_sampler_free(s);
}

static void test_top_k1_equals_greedy(void **state) {
    (void)state;
    uint32_t rs = 42;
    enum { N = 257 };
    float l[N];
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < N; i++) l[i] = (float)(lcg(&rs) % 64) / 8.0f - 4.0f;  /* many ties */
        em_sampler_params g = plain(0.0f);
        int32_t want = sample1(&g, l, N, NULL);
        em_sampler_params k = plain(1.5f);
        k.top_k = 1;
        k.seed = (uint64_t)trial;
        float lp = 1;
        assert_int_equal(sample1(&k, l, N, &lp), want);
        assert_true(fabsf(lp) < 1e-7f);
        for (int i = 0; i < want; i++) assert_true(l[i] < l[want]);
    }
}

/* ------------------------------------------------------------ filters -- */

static void test_top_k_set(void **state) {
    (void)state;
    float l[6] = {0.0f, 4.0f, 1.0f, 3.0f, 2.0f, 3.0f};
    em_sampler_params p = plain(1.0f);
    p.top_k = 2;                        /* 4.0 (id 1) and the first 3.0 (id 3) */
    int counts[6];
    collect(p, l, 6, counts);
    int allowed[6] = {0, 1, 0, 1, 0, 0};
    assert_set(counts, allowed, 6);

    p.top_k = 3;                        /* both 3.0s */
    collect(p, l, 6, counts);
    int allowed3[6] = {0, 1, 0, 1, 0, 1};
    assert_set(counts, allowed3, 6);

    /* logprob within top-k: log(e^4 / (e^4 + e^3)) or log(e^3 / ...) */
    p.top_k = 2;
    em_sampler *s = em_sampler_new(&p, 6);
    assert_non_null(s);
    for (int i = 0; i < 20; i++) {
        float lp;
        int32_t t = em_sampler_sample(s, l, &lp);
        double z = log(exp(4.0) + exp(3.0));
        double want = (t == 1 ? 4.0 : 3.0) - z;
        assert_true(fabs(lp - want) < 1e-6);
    }
    em_sampler_free(s);
}

/* probabilities 0.5, 0.25, 0.15, 0.1 placed at ids 1, 3, 0, 2 */
static void probs_logits(float *l) {
    l[0] = logf(0.15f);
    l[1] = logf(0.5f);
    l[2] = logf(0.1f);
    l[3] = logf(0.25f);
}

static void test_top_p_set(void **state) {
    (void)state;
    float l[4];
    probs_logits(l);
    int counts[4];
    em_sampler_params p = plain(1.0f);

    p.top_p = 0.7f;                     /* 0.5 < 0.7 <= 0.75 -> {1, 3} */
    collect(p, l, 4, counts);
    int a1[4] = {0, 1, 0, 1};
    assert_set(counts, a1, 4);

    p.top_p = 0.8f;                     /* 0.75 < 0.8 <= 0.9 -> {1, 3, 0} */
    collect(p, l, 4, counts);
    int a2[4] = {1, 1, 0, 1};
    assert_set(counts, a2, 4);

    p.top_p = 0.3f;                     /* first token alone */
    collect(p, l, 4, counts);
    int a3[4] = {0, 1, 0, 0};
    assert_set(counts, a3, 4);

    p.top_p = 0.0f;                     /* at least one */
    collect(p, l, 4, counts);
    assert_set(counts, a3, 4);

    /* final distribution is renormalized over the kept set */
    p.top_p = 0.7f;
    em_sampler *s = em_sampler_new(&p, 4);
    for (int i = 0; i < 10; i++) {
        float lp;
        int32_t t = em_sampler_sample(s, l, &lp);
        double want = log(t == 1 ? 0.5 / 0.75 : 0.25 / 0.75);
        assert_true(fabs(lp - want) < 1e-5);
    }
    em_sampler_free(s);
}

static void test_top_p_after_top_k(void **state) {
    (void)state;
    /* p = .4 .3 .2 .1; top-k 2 renormalizes to 4/7 = .571, 3/7. */
    float l[4] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f)};
    int counts[4];
    em_sampler_params p = plain(1.0f);
    p.top_p = 0.55f;
    collect(p, l, 4, counts);           /* without top-k: .4 < .55 -> {0, 1} */
    int a1[4] = {1, 1, 0, 0};
    assert_set(counts, a1, 4);
    p.top_k = 2;
    collect(p, l, 4, counts);           /* with top-k: .571 >= .55 -> {0} */
    int a2[4] = {1, 0, 0, 0};
    assert_set(counts, a2, 4);
}

static void test_min_p_set(void **state) {
    (void)state;
    float l[4];
    probs_logits(l);
    int counts[4];
    em_sampler_params p = plain(1.0f);

    p.min_p = 0.4f;                     /* p >= 0.2 -> {0.5, 0.25} */
    collect(p, l, 4, counts);
    int a1[4] = {0, 1, 0, 1};
    assert_set(counts, a1, 4);

    p.min_p = 0.25f;                    /* p >= 0.125 -> adds 0.15 */
    collect(p, l, 4, counts);
    int a2[4] = {1, 1, 0, 1};
    assert_set(counts, a2, 4);

    p.top_k = 3;                        /* sorted path gives the same set */
    collect(p, l, 4, counts);
    assert_set(counts, a2, 4);

    p.top_k = 0;
    p.min_p = 5.0f;                     /* acts as 1: only the max */
    collect(p, l, 4, counts);
    int a3[4] = {0, 1, 0, 0};
    assert_set(counts, a3, 4);

    /* logprob after min-p at temperature 1: 0.5 / 0.75, 0.25 / 0.75 */
    p.min_p = 0.4f;
    em_sampler *s = em_sampler_new(&p, 4);
    for (int i = 0; i < 10; i++) {
        float lp;
        int32_t t = em_sampler_sample(s, l, &lp);
        double want = log(t == 1 ? 2.0 / 3.0 : 1.0 / 3.0);
        assert_true(fabs(lp - want) < 1e-5);
    }
    em_sampler_free(s);
}

/* ---------------------------------------------- temperature and draws -- */

static void test_temperature_limit(void **state) {
    (void)state;
    float l[3] = {1.0f, 2.0f, 1.5f};
    em_sampler_params p = plain(1e-4f);
    for (uint64_t seed = 0; seed < 50; seed++) {
        p.seed = seed;
        float lp = -1;
        assert_int_equal(sample1(&p, l, 3, &lp), 1);
        assert_true(fabsf(lp) < 1e-6f);
    }
    /* temperature 0.05 on a 1-logit gap: p(other) = e^-20 */
    float m[2] = {0.0f, 1.0f};
    p.temperature = 0.05f;
    em_sampler *s = em_sampler_new(&p, 2);
    for (int i = 0; i < 500; i++) assert_int_equal(em_sampler_sample(s, m, NULL), 1);
    em_sampler_free(s);
}

static void test_seed_determinism(void **state) {
    (void)state;
    enum { N = 16, K = 100 };
    float l[N];
    for (int i = 0; i < N; i++) l[i] = 0.1f * (float)(i % 5);
    em_sampler_params p = em_sampler_defaults();
    p.seed = 99;
    em_sampler *a = em_sampler_new(&p, N), *b = em_sampler_new(&p, N);
    p.seed = 100;
    em_sampler *c = em_sampler_new(&p, N);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    int32_t sa[K], sb[K], sc[K];
    int same_ac = 0;
    for (int i = 0; i < K; i++) {
        sa[i] = em_sampler_sample(a, l, NULL);
        sc[i] = em_sampler_sample(c, l, NULL);   /* interleaving does not matter */
        same_ac += sa[i] == sc[i];
    }
    for (int i = 0; i < K; i++) sb[i] = em_sampler_sample(b, l, NULL);
    assert_memory_equal(sa, sb, sizeof sa);
    assert_true(same_ac < K / 2);
    em_sampler_free(a);
    em_sampler_free(b);
    em_sampler_free(c);
}

/* Chi-square over N draws against softmax(l / t); 3 dof, bound 16.27
 * (p = 0.001). Deterministic with the fixed seed. */
static void check_frequencies(float t) {
    enum { V = 4, N = 20000 };
    float l[V] = {0.0f, 1.0f, 2.0f, -1.0f};
    em_sampler_params p = plain(t);
    p.seed = 2024;
    em_sampler *s = em_sampler_new(&p, V);
    int cnt[V] = {0};
    for (int i = 0; i < N; i++) cnt[em_sampler_sample(s, l, NULL)]++;
    em_sampler_free(s);
    double x[V], chi = 0;
    for (int i = 0; i < V; i++) x[i] = l[i] / t;
    double z = logsumexp(x, V);
    for (int i = 0; i < V; i++) {
        double e = N * exp(x[i] - z);
        chi += (cnt[i] - e) * (cnt[i] - e) / e;
    }
    if (!(chi < 16.27)) fail_msg("chi-square %.2f too large at temperature %.2f", chi, t);
}

static void test_frequencies_match_softmax(void **state) {
    (void)state;
    check_frequencies(1.0f);
    check_frequencies(2.0f);
    check_frequencies(0.7f);
}

static void test_logprob_sampled(void **state) {
    (void)state;
    float l[2] = {0.0f, logf(3.0f)};             /* p = 0.25, 0.75 */
    em_sampler_params p = plain(1.0f);
    em_sampler *s = em_sampler_new(&p, 2);
    int seen[2] = {0, 0};
    for (int i = 0; i < 200; i++) {
        float lp;
        int32_t t = em_sampler_sample(s, l, &lp);
        seen[t] = 1;
        assert_true(fabs(lp - log(t ? 0.75 : 0.25)) < 1e-6);
    }
    assert_true(seen[0] && seen[1]);
    em_sampler_free(s);

    p.temperature = 2.0f;                        /* p ~ 1 : sqrt(3) */
    s = em_sampler_new(&p, 2);
    for (int i = 0; i < 50; i++) {
        float lp;
        int32_t t = em_sampler_sample(s, l, &lp);
        double r3 = sqrt(3.0);
        assert_true(fabs(lp - log((t ? r3 : 1.0) / (1.0 + r3))) < 1e-6);
    }
    em_sampler_free(s);
}

/* ----------------------------------------------------------- penalties -- */

static int32_t greedy_after(em_sampler_params p, const float *l, int32_t n,
                            const int32_t *hist, int nh, float *lp) {
    p.temperature = 0;
    em_sampler *s = em_sampler_new(&p, n);
    assert_non_null(s);
    for (int i = 0; i < nh; i++) em_sampler_accept(s, hist[i]);
    int32_t t = em_sampler_sample(s, l, lp);
    em_sampler_free(s);
    return t;
}

static void test_repeat_penalty(void **state) {
    (void)state;
    em_sampler_params p = plain(0.0f);
    p.penalty_last_n = 64;
    const int32_t h0[1] = {0};
    float lp;

    /* positive logit is divided: 2/1.2 = 1.667 < 1.8; 2/1.1 = 1.818 > 1.8 */
    float a[3] = {2.0f, 1.8f, -1.0f};
    p.repeat_penalty = 1.2f;
    assert_int_equal(greedy_after(p, a, 3, h0, 1, &lp), 1);
    double xa[3] = {2.0 / 1.2, 1.8, -1.0};
    assert_true(fabs(lp - (1.8 - logsumexp(xa, 3))) < 1e-5);
    p.repeat_penalty = 1.1f;
    assert_int_equal(greedy_after(p, a, 3, h0, 1, NULL), 0);
    assert_int_equal(greedy_after(p, a, 3, NULL, 0, NULL), 0);  /* no history */

    /* negative logit is multiplied: -1*1.2 = -1.2 < -1.1; -1*1.05 > -1.1 */
    float b[2] = {-1.0f, -1.1f};
    p.repeat_penalty = 1.2f;
    assert_int_equal(greedy_after(p, b, 2, h0, 1, &lp), 1);
    double xb[2] = {-1.2, -1.1};
    assert_true(fabs(lp - (-1.1 - logsumexp(xb, 2))) < 1e-5);
    p.repeat_penalty = 1.05f;
    assert_int_equal(greedy_after(p, b, 2, h0, 1, NULL), 0);

    /* applied once per distinct token: 3/1.4 = 2.14 > 2 (3/1.4^3 would lose) */
    float c[2] = {3.0f, 2.0f};
    const int32_t h3[3] = {0, 0, 0};
    p.repeat_penalty = 1.4f;
    assert_int_equal(greedy_after(p, c, 2, h3, 3, NULL), 0);

    /* last_n 0: off */
    p.penalty_last_n = 0;
    p.repeat_penalty = 10.0f;
    assert_int_equal(greedy_after(p, a, 3, h0, 1, NULL), 0);
}

static void test_frequency_presence_penalty(void **state) {
    (void)state;
    em_sampler_params p = plain(0.0f);
    p.penalty_last_n = -1;
    float c[2] = {3.0f, 2.0f};
    const int32_t h3[3] = {0, 0, 0};
    float lp;

    p.frequency_penalty = 0.3f;         /* 3 - 0.9 = 2.1 > 2 */
    assert_int_equal(greedy_after(p, c, 2, h3, 3, NULL), 0);
    p.frequency_penalty = 0.4f;         /* 3 - 1.2 = 1.8 < 2 */
    assert_int_equal(greedy_after(p, c, 2, h3, 3, &lp), 1);
    double x[2] = {1.8, 2.0};
    assert_true(fabs(lp - (2.0 - logsumexp(x, 2))) < 1e-5);

    p.frequency_penalty = 0;
    p.presence_penalty = 0.9f;          /* once, not per count: 2.1 > 2 */
    assert_int_equal(greedy_after(p, c, 2, h3, 3, NULL), 0);
    p.presence_penalty = 1.5f;          /* 1.5 < 2 */
    assert_int_equal(greedy_after(p, c, 2, h3, 3, NULL), 1);

    /* all three, in order: 3/1.2 = 2.5, - 2*0.2 - 0.1 = 2.0 < 2.2 */
    float d[2] = {3.0f, 2.2f};
    const int32_t h2[2] = {0, 0};
    p.repeat_penalty = 1.2f;
    p.frequency_penalty = 0.2f;
    p.presence_penalty = 0.1f;
    assert_int_equal(greedy_after(p, d, 2, h2, 2, &lp), 1);
    double y[2] = {2.0, 2.2};
    assert_true(fabs(lp - (2.2 - logsumexp(y, 2))) < 1e-5);
    p.presence_penalty = 0.0f;          /* 2.1 < 2.2 still */
    assert_int_equal(greedy_after(p, d, 2, h2, 2, NULL), 1);
    p.frequency_penalty = 0.0f;         /* 2.5 > 2.2 */
    assert_int_equal(greedy_after(p, d, 2, h2, 2, NULL), 0);

    /* a heavy presence penalty removes the token from sampling too */
    em_sampler_params q = plain(1.0f);
    q.penalty_last_n = 8;
    q.presence_penalty = 100.0f;
    em_sampler *s = em_sampler_new(&q, 3);
    em_sampler_accept(s, 0);
    float e[3] = {1.0f, 1.0f, 1.0f};
    int seen[3] = {0};
    for (int i = 0; i < 300; i++) seen[em_sampler_sample(s, e, NULL)]++;
    assert_int_equal(seen[0], 0);
    assert_true(seen[1] > 0 && seen[2] > 0);
    em_sampler_free(s);
}

static void test_penalty_window(void **state) {
    (void)state;
    /* window 100 (ring grows past its first 64 slots): token 0 penalized while
     * inside the last 100 accepted, not after. */
    em_sampler_params p = plain(0.0f);
    p.penalty_last_n = 100;
    p.presence_penalty = 0.6f;          /* 1.0 - 0.6 = 0.4 < 0.5 */
    float l[3] = {1.0f, 0.5f, -100.0f};
    em_sampler *s = em_sampler_new(&p, 3);
    assert_non_null(s);
    em_sampler_accept(s, 0);
    for (int i = 0; i < 99; i++) em_sampler_accept(s, 2);
    assert_int_equal(em_sampler_sample(s, l, NULL), 1);
    em_sampler_accept(s, 2);            /* 0 leaves the window */
    assert_int_equal(em_sampler_sample(s, l, NULL), 0);
    for (int i = 0; i < 250; i++) em_sampler_accept(s, (i % 7 == 3) ? 1 : 2);
    assert_int_equal(em_sampler_sample(s, l, NULL), 0);  /* 1 penalized: -0.1 */
    for (int i = 0; i < 99; i++) em_sampler_accept(s, 2); /* the 1s leave */
    em_sampler_accept(s, 0);
    assert_int_equal(em_sampler_sample(s, l, NULL), 1);  /* 0 back in */
    em_sampler_free(s);

    /* -1: everything ever accepted */
    p.penalty_last_n = -1;
    s = em_sampler_new(&p, 3);
    em_sampler_accept(s, 0);
    for (int i = 0; i < 1000; i++) em_sampler_accept(s, 2);
    assert_int_equal(em_sampler_sample(s, l, NULL), 1);
    em_sampler_free(s);

    /* window 2 */
    p.penalty_last_n = 2;
    const int32_t h[3] = {0, 2, 2};
    assert_int_equal(greedy_after(p, l, 3, h, 3, NULL), 0);
    assert_int_equal(greedy_after(p, l, 3, h, 2, NULL), 1);
}

/* --------------------------------------------------------- big vocab -- */

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_large_vocab(void **state) {
    (void)state;
    enum { N = 131072 };
    float *l = malloc(sizeof(float) * N), *sorted = malloc(sizeof(float) * N);
    assert_non_null(l);
    assert_non_null(sorted);
    uint32_t rs = 7;
    for (int i = 0; i < N; i++) l[i] = (float)(lcg(&rs) % 100000) / 10000.0f;
    memcpy(sorted, l, sizeof(float) * N);
    qsort(sorted, N, sizeof(float), cmp_desc);

    em_sampler_params p = em_sampler_defaults();   /* top-k 40 path */
    p.seed = 5;
    em_sampler *s = em_sampler_new(&p, N);
    assert_non_null(s);
    for (int i = 0; i < 20; i++) {
        int32_t t = em_sampler_sample(s, l, NULL);
        assert_true(t >= 0 && t < N);
        assert_true(l[t] >= sorted[39]);
    }
    em_sampler_free(s);

    /* full-sort top-p path: chosen token lies inside the nucleus */
    p = plain(1.0f);
    p.top_p = 0.5f;
    double m = sorted[0], z = 0, cum = 0;
    for (int i = 0; i < N; i++) z += exp((double)sorted[i] - m);
    int cut = 0;
    while (cum < 0.5) cum += exp((double)sorted[cut++] - m) / z;
    s = em_sampler_new(&p, N);
    for (int i = 0; i < 5; i++) {
        int32_t t = em_sampler_sample(s, l, NULL);
        assert_true(l[t] >= sorted[cut - 1]);
    }
    em_sampler_free(s);
    free(l);
    free(sorted);
}

/* Many ties (+0.0 and -0.0 count as equal) with the nucleus cut inside the
 * tie group, on a vocabulary big enough for the radix-sort path: exactly
 * the lowest ids of the group survive. */
static void test_top_p_ties_large(void **state) {
    (void)state;
    enum { N = 2000 };
    static float l[N];
    for (int i = 0; i < N; i++) l[i] = i % 4 == 0 ? 0.0f : i % 4 == 1 ? -0.0f : -5.0f;
    em_sampler_params p = plain(1.0f);
    p.top_p = 0.3f;
    /* same arithmetic as the sampler: z over ids, cum over the sorted order */
    double z = 0;
    for (int i = 0; i < N; i++) z += exp((double)l[i]);
    double cum = 0;
    int k = 0;
    while (cum < (double)p.top_p) { cum += 1.0 / z; k++; }
    int allowed[N] = {0}, counts[N] = {0};
    for (int i = 0, r = 0; i < N && r < k; i++)
        if (i % 4 < 2) { allowed[i] = 1; r++; }
    for (uint64_t seed = 1; seed <= 8; seed++) {
        p.seed = seed;
        em_sampler *s = em_sampler_new(&p, N);
        assert_non_null(s);
        for (int d = 0; d < 1000; d++) counts[em_sampler_sample(s, l, NULL)]++;
        em_sampler_free(s);
    }
    assert_true(k > 250 && k < 350);
    assert_set(counts, allowed, N);
}

/* -------------------------------------------------------- stop strings -- */

typedef struct {
    char text[8192];
    size_t len;
    int hit;
} acc_t;

static bool feed(em_stop *st, acc_t *a, const char *piece, size_t n) {
    const char *o = NULL;
    size_t ol = 12345;
    bool hit = em_stop_feed(st, piece, n, &o, &ol);
    assert_non_null(o);
    assert_true(a->len + ol < sizeof a->text);
    memcpy(a->text + a->len, o, ol);
    a->len += ol;
    a->text[a->len] = 0;
    a->hit |= hit;
    return hit;
}

static bool feeds(em_stop *st, acc_t *a, const char *piece) { return feed(st, a, piece, strlen(piece)); }

static void flush(em_stop *st, acc_t *a) {
    const char *o = NULL;
    size_t ol = 12345;
    em_stop_flush(st, &o, &ol);
    assert_non_null(o);
    memcpy(a->text + a->len, o, ol);
    a->len += ol;
    a->text[a->len] = 0;
}

static void test_stop_empty_list(void **state) {
    (void)state;
    em_stop *st = em_stop_new(NULL, 0);
    assert_non_null(st);
    acc_t a = {0};
    assert_false(feeds(st, &a, "hello "));
    assert_string_equal(a.text, "hello ");     /* nothing held back */
    assert_false(feeds(st, &a, "world"));
    assert_false(feed(st, &a, NULL, 0));
    flush(st, &a);
    assert_string_equal(a.text, "hello world");
    em_stop_free(st);

    const char *only_empty[1] = {""};             /* empty strings ignored */
    st = em_stop_new(only_empty, 1);
    assert_non_null(st);
    acc_t b = {0};
    assert_false(feeds(st, &b, "abc"));
    assert_string_equal(b.text, "abc");
    em_stop_free(st);
}

static void test_stop_basic_holdback(void **state) {
    (void)state;
    const char *stops[1] = {"STOP"};
    em_stop *st = em_stop_new(stops, 1);
    acc_t a = {0};
    assert_false(feeds(st, &a, "hello ST"));
    assert_string_equal(a.text, "hello ");      /* "ST" held */
    assert_false(feeds(st, &a, "ART"));
    assert_string_equal(a.text, "hello START"); /* false alarm released */
    assert_false(feeds(st, &a, " S"));
    assert_true(feeds(st, &a, "TOP and more"));
    assert_string_equal(a.text, "hello START ");
    /* after a stop: nothing more */
    acc_t b = {0};
    assert_true(feeds(st, &b, "x"));
    assert_int_equal(b.len, 0);
    flush(st, &b);
    assert_int_equal(b.len, 0);
    em_stop_free(st);

    /* flush releases held bytes */
    st = em_stop_new(stops, 1);
    acc_t c = {0};
    assert_false(feeds(st, &c, "abcSTO"));
    assert_string_equal(c.text, "abc");
    flush(st, &c);
    assert_string_equal(c.text, "abcSTO");
    em_stop_free(st);

    /* stop in the middle of a single piece */
    st = em_stop_new(stops, 1);
    acc_t d = {0};
    assert_true(feeds(st, &d, "abSTOPcd"));
    assert_string_equal(d.text, "ab");
    em_stop_free(st);
}

static void test_stop_split_and_start(void **state) {
    (void)state;
    const char *stops[1] = {"<|end|>"};
    em_stop *st = em_stop_new(stops, 1);
    acc_t a = {0};
    assert_false(feeds(st, &a, "ab"));
    const char *s = "<|end|>";
    for (size_t i = 0; i < 7; i++) {
        bool hit = feed(st, &a, s + i, 1);
        assert_true(hit == (i == 6));
        assert_string_equal(a.text, "ab");
    }
    em_stop_free(st);

    /* at the very start */
    const char *hash[1] = {"###"};
    st = em_stop_new(hash, 1);
    acc_t b = {0};
    assert_true(feeds(st, &b, "###rest"));
    assert_int_equal(b.len, 0);
    em_stop_free(st);

    /* at the start, split */
    st = em_stop_new(hash, 1);
    acc_t c = {0};
    assert_false(feeds(st, &c, "#"));
    assert_false(feeds(st, &c, "#"));
    assert_int_equal(c.len, 0);
    assert_true(feeds(st, &c, "#"));
    assert_int_equal(c.len, 0);
    em_stop_free(st);
}

static void test_stop_multiple_and_overlap(void **state) {
    (void)state;
    const char *two[2] = {"\nUser:", "</s>"};
    em_stop *st = em_stop_new(two, 2);
    acc_t a = {0};
    assert_false(feeds(st, &a, "Hi\nUs"));
    assert_string_equal(a.text, "Hi");
    assert_false(feeds(st, &a, "e! </s"));
    assert_string_equal(a.text, "Hi\nUse! ");
    assert_true(feeds(st, &a, ">"));
    assert_string_equal(a.text, "Hi\nUse! ");
    em_stop_free(st);

    /* overlapping prefixes: "abc" is held for "abcd"; then "bce" completes */
    const char *ov[2] = {"abcd", "bce"};
    st = em_stop_new(ov, 2);
    acc_t b = {0};
    assert_false(feeds(st, &b, "xabc"));
    assert_string_equal(b.text, "x");
    assert_true(feeds(st, &b, "e"));
    assert_string_equal(b.text, "xa");
    em_stop_free(st);

    /* self-overlapping stop: "aaab" contains "aab" at 1 */
    const char *aab[1] = {"aab"};
    st = em_stop_new(aab, 1);
    acc_t c = {0};
    assert_false(feeds(st, &c, "aaa"));
    assert_string_equal(c.text, "a");
    assert_true(feeds(st, &c, "b"));
    assert_string_equal(c.text, "a");
    em_stop_free(st);

    /* first to complete wins; at the same end, the longest */
    const char *e1[2] = {"abc", "b"};
    st = em_stop_new(e1, 2);
    acc_t d = {0};
    assert_true(feeds(st, &d, "zabc"));
    assert_string_equal(d.text, "za");
    em_stop_free(st);
    const char *e2[2] = {"c", "bc"};
    st = em_stop_new(e2, 2);
    acc_t e = {0};
    assert_true(feeds(st, &e, "abc"));
    assert_string_equal(e.text, "a");
    em_stop_free(st);
}

/* Same result whatever the split: whole, byte by byte, random chunks. */
static void test_stop_chunking_invariance(void **state) {
    (void)state;
    const char *stops[3] = {"abca", "bb", "cab"};
    uint32_t rs = 1;
    for (int trial = 0; trial < 200; trial++) {
        char text[64];
        size_t n = 1 + lcg(&rs) % 40;
        for (size_t i = 0; i < n; i++) text[i] = "abcx"[lcg(&rs) % 4];
        acc_t ref = {0}, bytes = {0}, chunks = {0};
        em_stop *st = em_stop_new(stops, 3);
        feed(st, &ref, text, n);
        flush(st, &ref);
        em_stop_free(st);
        st = em_stop_new(stops, 3);
        for (size_t i = 0; i < n; i++) feed(st, &bytes, text + i, 1);
        flush(st, &bytes);
        em_stop_free(st);
        st = em_stop_new(stops, 3);
        for (size_t i = 0; i < n;) {
            size_t k = 1 + lcg(&rs) % 5;
            if (k > n - i) k = n - i;
            feed(st, &chunks, text + i, k);
            i += k;
        }
        flush(st, &chunks);
        em_stop_free(st);
        assert_string_equal(ref.text, bytes.text);
        assert_string_equal(ref.text, chunks.text);
        assert_int_equal(ref.hit, bytes.hit);
        assert_int_equal(ref.hit, chunks.hit);
        /* emitted text never contains a stop string */
        for (int j = 0; j < 3; j++) assert_null(strstr(ref.text, stops[j]));
    }
}

static void test_stop_limits(void **state) {
    (void)state;
    const char *many[17];
    for (int i = 0; i < 17; i++) many[i] = "x";
    assert_null(em_stop_new(many, 17));
    em_stop *st = em_stop_new(many, 16);
    assert_non_null(st);
    em_stop_free(st);

    char longs[258];
    memset(longs, 'y', 257);
    longs[257] = 0;
    const char *lp[1] = {longs};
    assert_null(em_stop_new(lp, 1));           /* 257 bytes */
    longs[256] = 0;
    st = em_stop_new(lp, 1);                   /* 256 bytes: fine */
    assert_non_null(st);
    acc_t a = {0};
    char big[3000];
    memset(big, 'y', sizeof big);
    big[0] = 'q';
    assert_true(feed(st, &a, big, sizeof big)); /* larger than the initial buffer */
    assert_int_equal(a.len, 1);
    em_stop_free(st);

    const char *withnull[2] = {"a", NULL};
    assert_null(em_stop_new(withnull, 2));
    assert_null(em_stop_new(NULL, 1));

    /* NULL-safe calls */
    const char *o;
    size_t ol;
    assert_false(em_stop_feed(NULL, "a", 1, &o, &ol));
    assert_int_equal(ol, 0);
    em_stop_flush(NULL, &o, &ol);
    assert_int_equal(ol, 0);
    em_stop_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_invalid),
        cmocka_unit_test(test_greedy_ties_and_logprob),
        cmocka_unit_test(test_nan_inf_logits),
        cmocka_unit_test(test_top_k1_equals_greedy),
        cmocka_unit_test(test_top_k_set),
        cmocka_unit_test(test_top_p_set),
        cmocka_unit_test(test_top_p_after_top_k),
        cmocka_unit_test(test_min_p_set),
        cmocka_unit_test(test_temperature_limit),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_frequencies_match_softmax),
        cmocka_unit_test(test_logprob_sampled),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_frequency_presence_penalty),
        cmocka_unit_test(test_penalty_window),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_top_p_ties_large),
        cmocka_unit_test(test_stop_empty_list),
        cmocka_unit_test(test_stop_basic_holdback),
        cmocka_unit_test(test_stop_split_and_start),
        cmocka_unit_test(test_stop_multiple_and_overlap),
        cmocka_unit_test(test_stop_chunking_invariance),
        cmocka_unit_test(test_stop_limits),
    };
    return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
