#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNIT 60000000LL       /* units per request or token: microseconds per minute */
#define FULL_US 60000000LL    /* an empty bucket is full again after one minute */

typedef struct bucket {
    int64_t limit;  /* per minute; 0: unlimited */
    int64_t credit; /* units; may be negative (debt) for tokens */
} bucket;

typedef struct entry {
    int64_t key_id;
    bool used;
    int64_t last_us; /* time of the last refill */
    bucket req, tok;
    int64_t max_concurrent, in_flight;
} entry;

struct em_rl {
    pthread_mutex_t mu;
    em_rl_clock_fn clock;
    void *clock_user;
    int64_t last_now; /* the clock, made monotonic */
    entry *tab;
    size_t cap, n;
};

int64_t em_rl_monotonic_us(void *unused) {
    (void)unused;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

em_rl *em_rl_new(em_rl_clock_fn clock, void *clock_user) {
    em_rl *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    rl->cap = 64;
    rl->tab = calloc(rl->cap, sizeof *rl->tab);
    if (!rl->tab) { free(rl); return NULL; }
    pthread_mutex_init(&rl->mu, NULL);
    rl->clock = clock ? clock : em_rl_monotonic_us;
    rl->clock_user = clock_user;
    rl->last_now = INT64_MIN;
    return rl;
}

void em_rl_free(em_rl *rl) {
    if (!rl) return;
    pthread_mutex_destroy(&rl->mu);
    free(rl->tab);
    free(rl);
}

static size_t slot_of(int64_t key, size_t cap) {
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static entry *lookup(em_rl *rl, int64_t key) {
    size_t i = slot_of(key, rl->cap);
    while (rl->tab[i].used) {
        if (rl->tab[i].key_id == key) return &rl->tab[i];
        i = (i + 1) & (rl->cap - 1);
    }
    return NULL;
}

/* Finds or creates the entry (NULL: out of memory). */
static entry *get(em_rl *rl, int64_t key, int64_t now) {
    entry *e = lookup(rl, key);
    if (e) return e;
    if ((rl->n + 1) * 10 > rl->cap * 7) {
        size_t ncap = rl->cap * 2;
        entry *nt = calloc(ncap, sizeof *nt);
        if (!nt) return NULL;
        for (size_t i = 0; i < rl->cap; i++) {
            if (!rl->tab[i].used) continue;
            size_t j = slot_of(rl->tab[i].key_id, ncap);
            while (nt[j].used) j = (j + 1) & (ncap - 1);
            nt[j] = rl->tab[i];
        }
        free(rl->tab);
        rl->tab = nt;
        rl->cap = ncap;
    }
    size_t i = slot_of(key, rl->cap);
    while (rl->tab[i].used) i = (i + 1) & (rl->cap - 1);
    e = &rl->tab[i];
    memset(e, 0, sizeof *e);
    e->used = true;
    e->key_id = key;
    e->last_us = now;
    rl->n++;
    return e;
}

static int64_t clamp_limit(int64_t v) { return v <= 0 ? 0 : v > EM_RL_MAX_LIMIT ? EM_RL_MAX_LIMIT : v; }

/* Applies a (possibly changed) limit: a bucket that was unlimited starts
 * full; otherwise the level is kept and clipped to the new capacity. */
static void set_limit(bucket *b, int64_t limit) {
    limit = clamp_limit(limit);
    if (limit == b->limit) return;
    if (b->limit == 0) b->credit = limit * UNIT;
    else if (b->credit > limit * UNIT) b->credit = limit * UNIT;
    b->limit = limit;
}

static void refill(bucket *b, int64_t dt) {
    if (b->limit == 0) return;
    int64_t cap = b->limit * UNIT;
    if (b->credit >= cap) { b->credit = cap; return; }
    /* An empty bucket refills in one minute, a bucket in debt in at most
     * (debt / limit) more; clamp dt so the product cannot overflow. */
    int64_t need_us = (cap - b->credit + b->limit - 1) / b->limit;
    if (dt >= need_us) { b->credit = cap; return; }
    b->credit += dt * b->limit;
}

static int64_t now_locked(em_rl *rl) {
    int64_t t = rl->clock(rl->clock_user);
    if (t < rl->last_now) t = rl->last_now;
    rl->last_now = t;
    return t;
}

static void advance(entry *e, int64_t now) {
    int64_t dt = now - e->last_us;
    if (dt > 0) {
        refill(&e->req, dt);
        refill(&e->tok, dt);
    }
    e->last_us = now;
}

/* Microseconds until the bucket holds `units` (0 if it does already). */
static int64_t wait_us(const bucket *b, int64_t units) {
    if (b->credit >= units) return 0;
    return (units - b->credit + b->limit - 1) / b->limit;
}

static int64_t us_to_ms_up(int64_t us) { return (us + 999) / 1000; }

static void fill_info(const entry *e, em_rl_status st, int64_t retry_us, em_rl_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->status = st;
    info->limit_requests = e->req.limit;
    info->limit_tokens = e->tok.limit;
    if (e->req.limit) {
        info->remaining_requests = e->req.credit > 0 ? e->req.credit / UNIT : 0;
        info->reset_requests_ms = us_to_ms_up(wait_us(&e->req, e->req.limit * UNIT));
    }
    if (e->tok.limit) {
        info->remaining_tokens = e->tok.credit > 0 ? e->tok.credit / UNIT : 0;
        info->reset_tokens_ms = us_to_ms_up(wait_us(&e->tok, e->tok.limit * UNIT));
    }
    info->limit_concurrent = e->max_concurrent;
    info->in_flight = e->in_flight;
    info->retry_after_ms = retry_us < 0 ? -1 : us_to_ms_up(retry_us);
}

static void set_limits(entry *e, const em_rl_limits *lim) {
    set_limit(&e->req, lim ? lim->rpm : 0);
    set_limit(&e->tok, lim ? lim->tpm : 0);
    e->max_concurrent = lim && lim->max_concurrent > 0 ? lim->max_concurrent : 0;
}

em_rl_status em_rl_acquire(em_rl *rl, int64_t key_id, const em_rl_limits *lim, int64_t tokens, em_rl_ticket *ticket,
                           em_rl_info *info) {
    memset(ticket, 0, sizeof *ticket);
    if (tokens < 0) tokens = 0;
    pthread_mutex_lock(&rl->mu);
    int64_t now = now_locked(rl);
    entry *e = get(rl, key_id, now);
    if (!e) {
        /* Out of memory: fail closed. */
        pthread_mutex_unlock(&rl->mu);
        if (info) { memset(info, 0, sizeof *info); info->status = EM_RL_CONCURRENCY; info->retry_after_ms = 1000; }
        return EM_RL_CONCURRENCY;
    }
    set_limits(e, lim);
    advance(e, now);
    em_rl_status st = EM_RL_OK;
    int64_t retry = 0;
    if (e->tok.limit && tokens > e->tok.limit) {
        st = EM_RL_TOO_LARGE;
        retry = -1;
    } else if (e->max_concurrent && e->in_flight >= e->max_concurrent) {
        st = EM_RL_CONCURRENCY;
        retry = 1000000; /* unknown: when a request ends; suggest 1 s */
    } else {
        int64_t wr = e->req.limit ? wait_us(&e->req, UNIT) : 0;
        int64_t wt = e->tok.limit ? wait_us(&e->tok, tokens * UNIT) : 0;
        if (wr > 0 || wt > 0) {
            st = wr > 0 ? EM_RL_RPM : EM_RL_TPM;
            retry = wr > wt ? wr : wt;
        }
    }
    if (st == EM_RL_OK) {
        if (e->req.limit) e->req.credit -= UNIT;
        if (e->tok.limit) e->tok.credit -= tokens * UNIT;
        e->in_flight++;
        ticket->key_id = key_id;
        ticket->reserved_tokens = tokens;
        ticket->counted_tokens = e->tok.limit != 0;
        ticket->held = true;
    }
    fill_info(e, st, retry, info);
    pthread_mutex_unlock(&rl->mu);
    return st;
}

void em_rl_release(em_rl *rl, em_rl_ticket *ticket, int64_t actual_tokens, em_rl_info *info) {
    if (!ticket || !ticket->held) return;
    pthread_mutex_lock(&rl->mu);
    ticket->held = false;
    int64_t now = now_locked(rl);
    entry *e = lookup(rl, ticket->key_id);
    if (e) {
        advance(e, now);
        if (e->in_flight > 0) e->in_flight--;
        if (ticket->counted_tokens && e->tok.limit && actual_tokens >= 0) {
            if (actual_tokens > EM_RL_MAX_LIMIT) actual_tokens = EM_RL_MAX_LIMIT;
            e->tok.credit += (ticket->reserved_tokens - actual_tokens) * UNIT;
            if (e->tok.credit > e->tok.limit * UNIT) e->tok.credit = e->tok.limit * UNIT;
            /* Debt is bounded so refill arithmetic cannot overflow. */
            if (e->tok.credit < -EM_RL_MAX_LIMIT * UNIT / 4) e->tok.credit = -EM_RL_MAX_LIMIT * UNIT / 4;
        }
        fill_info(e, EM_RL_OK, 0, info);
    } else if (info) {
        memset(info, 0, sizeof *info);
    }
    pthread_mutex_unlock(&rl->mu);
}

void em_rl_peek(em_rl *rl, int64_t key_id, const em_rl_limits *lim, em_rl_info *info) {
    pthread_mutex_lock(&rl->mu);
    int64_t now = now_locked(rl);
    entry *e = get(rl, key_id, now);
    if (e) {
        set_limits(e, lim);
        advance(e, now);
        fill_info(e, EM_RL_OK, 0, info);
    } else if (info) {
        memset(info, 0, sizeof *info);
    }
    pthread_mutex_unlock(&rl->mu);
}

void em_rl_format_duration(int64_t ms, char buf[32]) {
    if (ms < 0) ms = 0;
    if (ms > 99999LL * 3600000) ms = 99999LL * 3600000;
    if (ms < 1000) { snprintf(buf, 32, "%dms", (int)ms); return; }
    int h = (int)(ms / 3600000), m = (int)(ms / 60000 % 60), s = (int)(ms / 1000 % 60), frac = (int)(ms % 1000);
    char sec[8], tmp[64];
    if (frac) {
        snprintf(sec, sizeof sec, "%d.%03d", s, frac);
        size_t n = strlen(sec);
        while (sec[n - 1] == '0') sec[--n] = 0;
    } else {
        snprintf(sec, sizeof sec, "%d", s);
    }
    if (h) snprintf(tmp, sizeof tmp, "%dh%dm%ss", h, m, sec);
    else if (m) snprintf(tmp, sizeof tmp, "%dm%ss", m, sec);
    else snprintf(tmp, sizeof tmp, "%ss", sec);
    snprintf(buf, 32, "%.31s", tmp);
}

size_t em_rl_headers(const em_rl_info *info, em_rl_header out[EM_RL_MAX_HEADERS]) {
    size_t n = 0;
    if (info->limit_requests) {
        out[n].name = "x-ratelimit-limit-requests";
        snprintf(out[n++].value, 32, "%lld", (long long)info->limit_requests);
    }
    if (info->limit_tokens) {
        out[n].name = "x-ratelimit-limit-tokens";
        snprintf(out[n++].value, 32, "%lld", (long long)info->limit_tokens);
    }
    if (info->limit_requests) {
        out[n].name = "x-ratelimit-remaining-requests";
        snprintf(out[n++].value, 32, "%lld", (long long)info->remaining_requests);
    }
    if (info->limit_tokens) {
        out[n].name = "x-ratelimit-remaining-tokens";
        snprintf(out[n++].value, 32, "%lld", (long long)info->remaining_tokens);
    }
    if (info->limit_requests) {
        out[n].name = "x-ratelimit-reset-requests";
        em_rl_format_duration(info->reset_requests_ms, out[n++].value);
    }
    if (info->limit_tokens) {
        out[n].name = "x-ratelimit-reset-tokens";
        em_rl_format_duration(info->reset_tokens_ms, out[n++].value);
    }
    if (info->status != EM_RL_OK && info->retry_after_ms >= 0) {
        out[n].name = "retry-after";
        snprintf(out[n++].value, 32, "%lld", (long long)((info->retry_after_ms + 999) / 1000));
        out[n].name = "retry-after-ms";
        snprintf(out[n++].value, 32, "%lld", (long long)info->retry_after_ms);
    }
    return n;
}

const char *em_rl_status_code(em_rl_status s) {
    switch (s) {
    case EM_RL_OK: return "ok";
    case EM_RL_RPM: return "rate_limit_exceeded";
    case EM_RL_TPM: return "rate_limit_exceeded";
    case EM_RL_CONCURRENCY: return "concurrency_limit_exceeded";
    default: return "request_too_large";
    }
}

const char *em_rl_status_message(em_rl_status s) {
    switch (s) {
    case EM_RL_OK: return "ok";
    case EM_RL_RPM: return "Rate limit reached for requests per minute. Retry after the time in the Retry-After header.";
    case EM_RL_TPM: return "Rate limit reached for tokens per minute. Retry after the time in the Retry-After header.";
    case EM_RL_CONCURRENCY: return "Too many concurrent requests for this API key.";
    default: return "Request too large: prompt plus max_tokens exceeds the key's tokens-per-minute limit.";
    }
}

const char *em_rl_status_name(em_rl_status st) {
    switch (st) {
    case EM_RL_OK: return "ok";
    case EM_RL_RPM: return "requests";
    case EM_RL_TPM: return "tokens";
    case EM_RL_CONCURRENCY: return "concurrency";
    default: return "too_large";
    }
}
