/* sampler.c - logits -> token (penalties, top-k, top-p, min-p, temperature,
 * seeded draw) and the streaming stop-string matcher. See sampler.h. */
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ RNG -- */

/* splitmix64: expands the 64-bit seed into the xoshiro state. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman & Vigna), public domain reference algorithm. */
static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) {
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

/* -------------------------------------------------------------- sampler -- */

struct em_sampler {
    em_sampler_params p;    /* sanitized copy */
    int32_t n_vocab;
    uint64_t rng[4];

    float *w;               /* [n_vocab] penalized logits of the current call */
    int32_t *idx;           /* [n_vocab] candidate ids */
    int32_t *idx2;          /* [n_vocab] radix sort scratch */
    uint32_t *key, *key2;   /* [n_vocab] radix sort keys */
    double *q;              /* [n_vocab] unnormalized final probabilities */

    /* penalty history (only when penalties are on) */
    bool pen_on;
    int32_t *counts;        /* [n_vocab] occurrences in the window */
    int32_t *pos;           /* [n_vocab] index in uniq of a token with count > 0 */
    int32_t *uniq;          /* distinct tokens with count > 0 */
    int32_t n_uniq;
    bool window_all;        /* penalty_last_n < 0: every accepted token */
    int32_t *ring;          /* last tokens, grown lazily up to ring_limit */
    size_t ring_cap, ring_len, ring_head, ring_limit;
};

em_sampler_params em_sampler_defaults(void) {
    em_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    p.penalty_last_n = 64;
    p.seed = 0;
    return p;
}

em_sampler *em_sampler_new(const em_sampler_params *params, int32_t n_vocab) {
    if (n_vocab <= 0) return NULL;
    em_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = params ? *params : em_sampler_defaults();
    s->n_vocab = n_vocab;

    /* sanitize: every "off" spelled one way */
    em_sampler_params *p = &s->p;
    if (!(p->temperature > 0)) p->temperature = 0;               /* NaN too */
    if (isinf(p->temperature)) p->temperature = FLT_MAX;
    if (p->top_k >= n_vocab) p->top_k = 0;
    if (p->top_k < 0) p->top_k = 0;
    if (!(p->top_p < 1)) p->top_p = 1;                          /* NaN: off */
    if (!(p->min_p > 0)) p->min_p = 0;                          /* NaN: off */
    if (p->min_p > 1) p->min_p = 1;
    if (!(p->repeat_penalty > 0) || isinf(p->repeat_penalty)) p->repeat_penalty = 1;
    if (!isfinite(p->frequency_penalty)) p->frequency_penalty = 0;
    if (!isfinite(p->presence_penalty)) p->presence_penalty = 0;

    uint64_t sm = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&sm);

    size_t n = (size_t)n_vocab;
    s->w = calloc(n, sizeof *s->w);
    s->idx = calloc(n, sizeof *s->idx);
    s->q = calloc(n, sizeof *s->q);
    s->idx2 = calloc(n, sizeof *s->idx2);
    s->key = calloc(n, sizeof *s->key);
    s->key2 = calloc(n, sizeof *s->key2);
    if (!s->w || !s->idx || !s->q || !s->idx2 || !s->key || !s->key2) goto fail;

    s->pen_on = p->penalty_last_n != 0 &&
                (p->repeat_penalty != 1 || p->frequency_penalty != 0 || p->presence_penalty != 0);
    if (s->pen_on) {
        s->window_all = p->penalty_last_n < 0;
        size_t uniq_cap = n;
        if (!s->window_all) {
            s->ring_limit = (size_t)p->penalty_last_n;
            if (s->ring_limit < uniq_cap) uniq_cap = s->ring_limit;
        }
        s->counts = calloc(n, sizeof *s->counts);
        s->pos = calloc(n, sizeof *s->pos);
        s->uniq = calloc(uniq_cap, sizeof *s->uniq);
        if (!s->counts || !s->pos || !s->uniq) goto fail;
    }
    return s;
fail:
    em_sampler_free(s);
    return NULL;
}

void em_sampler_free(em_sampler *s) {
    if (!s) return;
    free(s->w);
    free(s->idx);
    free(s->q);
    free(s->idx2);
    free(s->key);
    free(s->key2);
    free(s->counts);
    free(s->pos);
    free(s->uniq);
    free(s->ring);
    free(s);
}

static void count_inc(em_sampler *s, int32_t t) {
    if (s->counts[t] == INT32_MAX) return;          /* saturate (window "all") */
    if (s->counts[t]++ == 0) {
        s->pos[t] = s->n_uniq;
        s->uniq[s->n_uniq++] = t;
    }
}

static void count_dec(em_sampler *s, int32_t t) {
    if (--s->counts[t] == 0) {
        int32_t i = s->pos[t];
        int32_t last = s->uniq[--s->n_uniq];
        s->uniq[i] = last;
        s->pos[last] = i;
    }
}

void em_sampler_accept(em_sampler *s, int32_t token) {
    if (!s || !s->pen_on || token < 0 || token >= s->n_vocab) return;
    if (s->window_all) {
        count_inc(s, token);
        return;
    }
    if (s->ring_len < s->ring_limit && s->ring_len == s->ring_cap) {
        /* grow geometrically; ring_head is 0 until the ring is full */
        size_t cap = s->ring_cap ? s->ring_cap * 2 : 64;
        if (cap > s->ring_limit) cap = s->ring_limit;
        int32_t *r = cap <= SIZE_MAX / sizeof *r ? realloc(s->ring, cap * sizeof *r) : NULL;
        if (r) {
            s->ring = r;
            s->ring_cap = cap;
        } else {
            s->ring_limit = s->ring_cap;            /* out of memory: shorter window */
            if (s->ring_limit == 0) return;
        }
    }
    if (s->ring_len < s->ring_limit) {
        s->ring[s->ring_len++] = token;
        count_inc(s, token);
    } else {
        int32_t old = s->ring[s->ring_head];
        s->ring[s->ring_head] = token;
        s->ring_head = (s->ring_head + 1) % s->ring_limit;
        count_inc(s, token);
        count_dec(s, old);
    }
}

/* Total order used everywhere: higher logit first, then lower id. */
static inline bool better(const float *w, int32_t a, int32_t b) {
    return w[a] > w[b] || (w[a] == w[b] && a < b);
}

/* Sift down in a heap whose root is the *worst* element. */
static void sift_down(const float *w, int32_t *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && better(w, h[worst], h[l])) worst = l;
        if (r < n && better(w, h[worst], h[r])) worst = r;
        if (worst == i) return;
        int32_t t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* Puts the k best of the candidates into out[0..k), best first.
 * cand == NULL means the ids 0..n_cand-1. O(n_cand log k). out may equal
 * cand when k == n_cand (in-place sort). */
static void select_top(const float *w, const int32_t *cand, size_t n_cand, size_t k, int32_t *out) {
    if (k > n_cand) k = n_cand;
    if (k == 0) return;
    for (size_t i = 0; i < k; i++) out[i] = cand ? cand[i] : (int32_t)i;
    for (size_t i = k / 2; i-- > 0;) sift_down(w, out, k, i);
    float thr = w[out[0]]; /* the worst kept logit: most candidates fail a plain compare with it */
    for (size_t j = k; j < n_cand; j++) {
        int32_t c = cand ? cand[j] : (int32_t)j;
        if (w[c] >= thr && better(w, c, out[0])) {
            out[0] = c;
            sift_down(w, out, k, 0);
            thr = w[out[0]];
        }
    }
    /* heapsort: the worst goes to the back each round */
    for (size_t end = k - 1; end > 0; end--) {
        int32_t t = out[0];
        out[0] = out[end];
        out[end] = t;
        sift_down(w, out, end, 0);
    }
}

/* Sort key: ascending key = descending logit (no NaN here; -0 == +0). */
static inline uint32_t desc_key(float f) {
    if (f == 0) f = 0.0f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);   /* ascending float order */
    return ~u;
}

/* Sorts idx[0..n) best first (same order as select_top). idx must be in
 * ascending id order: the LSD radix sort is stable, so equal logits stay
 * ordered by id. O(n). */
static void sort_candidates(em_sampler *s, int32_t *idx, size_t n) {
    if (n <= 1024) {
        select_top(s->w, idx, n, n, idx);
        return;
    }
    uint32_t *ka = s->key, *kb = s->key2;
    int32_t *ia = idx, *ib = s->idx2;
    for (size_t i = 0; i < n; i++) ka[i] = desc_key(s->w[idx[i]]);
    for (int shift = 0; shift < 32; shift += 8) {
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++) cnt[(ka[i] >> shift) & 255]++;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t d = cnt[(ka[i] >> shift) & 255]++;
            kb[d] = ka[i];
            ib[d] = ia[i];
        }
        uint32_t *tk = ka; ka = kb; kb = tk;
        int32_t *ti = ia; ia = ib; ib = ti;
    }
    /* four passes: the result is back in idx */
}

int32_t em_sampler_sample(em_sampler *s, const float *logits, float *logprob) {
    if (!s || !logits) return -1;
    const em_sampler_params *p = &s->p;
    const int32_t n = s->n_vocab;
    float *w = s->w;

    /* 1. sanitized copy, and its argmax (ties -> lowest id) in the same pass */
    int32_t best = 0;
    float bv = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        float l = logits[i];
        if (isnan(l)) l = -INFINITY;
        else if (l == INFINITY) l = FLT_MAX;
        w[i] = l;
        if (l > bv) {
            bv = l;
            best = i;
        }
    }

    /* 2. penalties on the distinct tokens of the window */
    if (s->pen_on) {
        const float rep = p->repeat_penalty, freq = p->frequency_penalty, pres = p->presence_penalty;
        for (int32_t u = 0; u < s->n_uniq; u++) {
            int32_t t = s->uniq[u];
            int32_t c = s->counts[t];
            float l = w[t];
            if (rep != 1) l = l > 0 ? l / rep : l * rep;
            l -= (float)c * freq + (float)(c > 0) * pres;
            if (isnan(l)) l = -INFINITY;
            else if (l == INFINITY) l = FLT_MAX;       /* a "boost" overflowed */
            w[t] = l;
        }
    }

    if (s->pen_on) /* the penalties moved some logits: argmax again */
        for (int32_t i = 1; i < n; i++)
            if (w[i] > w[best]) best = i;
    const double lmax = w[best];
    if (lmax == -INFINITY) {                   /* nothing is possible */
        if (p->temperature > 0) (void)rng_uniform(s->rng);  /* one draw per call */
        if (logprob) *logprob = -INFINITY;
        return 0;
    }

    /* 3. greedy */
    if (p->temperature == 0) {
        if (logprob) {
            double z = 0;
            for (int32_t i = 0; i < n; i++) z += exp((double)w[i] - lmax);
            *logprob = (float)(-log(z));
        }
        return best;
    }

    /* 4. filters. Candidates live in idx[0..nc) (sorted best first when
     * `sorted`), or are all ids 0..n-1 when `all`. */
    int32_t *idx = s->idx;
    size_t nc = (size_t)n;
    bool all = true, sorted = false;
    if (p->top_k > 0) {
        nc = (size_t)p->top_k;
        select_top(w, NULL, (size_t)n, nc, idx);
        all = false;
        sorted = true;
    }
    const bool use_top_p = p->top_p < 1, use_min_p = p->min_p > 0;

    /* e[t] = exp(l_t - lmax) for the top-k survivors (indexed by token id;
     * shares the q buffer, which step 5 overwrites by position only after
     * the filters are done), and z1, the normalizer of their temperature-1
     * softmax. */
    double *e = s->q;
    double z1 = 0;
    if (use_top_p || use_min_p) {
        if (all) {
            for (int32_t i = 0; i < n; i++) z1 += e[i] = exp((double)w[i] - lmax);
        } else {
            for (size_t i = 0; i < nc; i++) z1 += e[idx[i]] = exp((double)w[idx[i]] - lmax);
        }
    }

    /* min-p (p >= min_p * p_max <=> exp(l - lmax) >= min_p) keeps a prefix of
     * the sorted order, and so does top-p: their intersection is the shorter
     * prefix whatever the order they run in, so min-p runs first here to
     * shrink what top-p has to sort. top-p still uses z1 over all top-k
     * survivors, as if it ran first. */
    if (use_min_p) {
        const double mp = p->min_p;
        if (sorted) {
            size_t keep = 1;
            while (keep < nc && e[idx[keep]] >= mp) keep++;
            nc = keep;
        } else {
            size_t m = 0;
            for (int32_t i = 0; i < n; i++)
                if (e[i] >= mp) idx[m++] = i;
            nc = m;                            /* >= 1: best always passes */
            all = false;
        }
    }
    if (use_top_p) {
        if (all) {
            for (int32_t i = 0; i < n; i++) idx[i] = i;
            all = false;
        }
        if (!sorted) {
            sort_candidates(s, idx, nc);
            sorted = true;
        }
        double cum = 0;
        size_t keep = nc;
        for (size_t i = 0; i < nc; i++) {
            cum += e[idx[i]] / z1;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        nc = keep;
    }

    /* 5. temperature and the draw. lmax is the best candidate's logit (every
     * filter keeps the best token). */
    const double temp = p->temperature;
    double *q = s->q;
    double sum = 0;
    for (size_t i = 0; i < nc; i++) {
        int32_t t = all ? (int32_t)i : idx[i];
        double d = (double)w[t] - lmax;
        q[i] = d == -INFINITY ? 0.0 : exp(d / temp);
        sum += q[i];
    }
    const double target = rng_uniform(s->rng) * sum;
    double acc = 0;
    size_t pick = SIZE_MAX, last_pos = 0;
    for (size_t i = 0; i < nc; i++) {
        if (q[i] <= 0) continue;
        last_pos = i;
        acc += q[i];
        if (target < acc) {
            pick = i;
            break;
        }
    }
    if (pick == SIZE_MAX) pick = last_pos;     /* rounding guard */
    int32_t tok = all ? (int32_t)pick : idx[pick];
    if (logprob) *logprob = (float)(log(q[pick]) - log(sum));
    return tok;
}

/* --------------------------------------------------------- stop strings -- */

struct em_stop {
    size_t n;
    size_t len[EM_STOP_MAX_STRINGS];
    char str[EM_STOP_MAX_STRINGS][EM_STOP_MAX_LEN + 1];
    uint16_t pi[EM_STOP_MAX_STRINGS][EM_STOP_MAX_LEN];  /* KMP prefix function */
    size_t state[EM_STOP_MAX_STRINGS];                  /* bytes matched so far */
    char *buf;              /* held-back bytes + the current piece */
    size_t cap;
    size_t hold_off, hold_len;  /* held-back bytes in buf */
    bool stopped;
};

em_stop *em_stop_new(const char *const *stops, size_t n_stops) {
    if (n_stops > EM_STOP_MAX_STRINGS) return NULL;
    if (n_stops > 0 && !stops) return NULL;
    for (size_t i = 0; i < n_stops; i++)
        if (!stops[i] || strnlen(stops[i], EM_STOP_MAX_LEN + 1) > EM_STOP_MAX_LEN) return NULL;

    em_stop *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    for (size_t i = 0; i < n_stops; i++) {
        size_t m = strlen(stops[i]);
        if (m == 0) continue;
        size_t j = st->n++;
        memcpy(st->str[j], stops[i], m + 1);
        st->len[j] = m;
        const char *s = st->str[j];
        uint16_t *pi = st->pi[j];
        pi[0] = 0;
        for (size_t a = 1; a < m; a++) {
            size_t k = pi[a - 1];
            while (k > 0 && s[a] != s[k]) k = pi[k - 1];
            if (s[a] == s[k]) k++;
            pi[a] = (uint16_t)k;
        }
    }
    st->cap = 1024;
    st->buf = malloc(st->cap);
    if (!st->buf) {
        free(st);
        return NULL;
    }
    return st;
}

void em_stop_free(em_stop *st) {
    if (!st) return;
    free(st->buf);
    free(st);
}

static void stop_reset_states(em_stop *st) {
    for (size_t j = 0; j < st->n; j++) st->state[j] = 0;
}

bool em_stop_feed(em_stop *st, const char *piece, size_t len, const char **out, size_t *out_len) {
    const char *o = "";
    size_t ol = 0;
    bool hit = false;
    if (!st) goto done;
    if (st->stopped) {
        hit = true;
        goto done;
    }
    if (!piece) len = 0;

    memmove(st->buf, st->buf + st->hold_off, st->hold_len);
    st->hold_off = 0;
    size_t h = st->hold_len;
    if (len > st->cap - h) {
        size_t need = h + len;
        size_t cap = st->cap;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *nb = realloc(st->buf, cap);
        if (!nb) {                              /* give up: emit what is held */
            o = st->buf;
            ol = h;
            st->hold_len = 0;
            st->stopped = true;
            hit = true;
            goto done;
        }
        st->buf = nb;
        st->cap = cap;
    }
    if (len) memcpy(st->buf + h, piece, len);
    size_t tlen = h + len;

    for (size_t i = h; i < tlen; i++) {
        const char c = st->buf[i];
        size_t done_len = 0;                    /* longest stop completing at i */
        for (size_t j = 0; j < st->n; j++) {
            const char *s = st->str[j];
            size_t k = st->state[j];
            while (k > 0 && s[k] != c) k = st->pi[j][k - 1];
            if (s[k] == c) k++;
            if (k == st->len[j] && k > done_len) done_len = k;
            st->state[j] = k;
        }
        if (done_len) {
            o = st->buf;
            ol = i + 1 - done_len;
            st->hold_len = 0;
            st->stopped = true;
            hit = true;
            goto done;
        }
    }
    size_t keep = 0;
    for (size_t j = 0; j < st->n; j++)
        if (st->state[j] > keep) keep = st->state[j];
    o = st->buf;
    ol = tlen - keep;
    st->hold_off = ol;
    st->hold_len = keep;
done:
    if (out) *out = o;
    if (out_len) *out_len = ol;
    return hit;
}

void em_stop_flush(em_stop *st, const char **out, size_t *out_len) {
    const char *o = "";
    size_t ol = 0;
    if (st && !st->stopped && st->hold_len) {
        o = st->buf + st->hold_off;
        ol = st->hold_len;
    }
    if (st) {
        st->hold_len = 0;
        stop_reset_states(st);
        st->stopped = false;
    }
    if (out) *out = o;
    if (out_len) *out_len = ol;
}
