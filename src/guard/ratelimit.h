/* ratelimit.h - per-key rate limits: requests per minute and tokens per
 * minute as token buckets, plus a cap on concurrent requests.
 *
 * Each bucket holds at most one minute's allowance (rpm requests, tpm
 * tokens), starts full and refills continuously at limit/60 per second. All
 * arithmetic is integer (1 request or token = 60,000,000 units, refill =
 * limit units per microsecond), so from a full bucket the grants in any
 * interval of T microseconds never exceed limit + floor(limit * T / 60e6) and
 * a client that keeps asking gets exactly that.
 *
 * Server use:
 *     em_rl_ticket t; em_rl_info info;
 *     em_rl_limits lim = {key.rpm, key.tpm, key.max_concurrent};
 *     if (em_rl_acquire(rl, key.id, &lim, prompt_tokens + max_tokens, &t, &info) != EM_RL_OK)
 *         -> 429 (413 for EM_RL_TOO_LARGE) with em_rl_headers(&info, ...) incl. Retry-After
 *     ... run the request, add em_rl_headers(&info, ...) to the response ...
 *     em_rl_release(rl, &t, actual_prompt + actual_completion, NULL);  // always, also on errors
 * Tokens reserved up front are corrected at release: unused ones go back to
 * the bucket, extra ones are taken (the bucket may go into debt).
 *
 * Thread-safety: all functions may be called from any thread; one mutex
 * makes every acquire/release atomic, so concurrent callers are limited
 * exactly. */
#ifndef EM_GUARD_RATELIMIT_H
#define EM_GUARD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EM_RL_MAX_LIMIT 10000000000LL /* largest rpm / tpm accepted (1e10) */

/* Monotonic time in microseconds; user is the pointer given to em_rl_new. */
typedef int64_t (*em_rl_clock_fn)(void *user);

typedef struct em_rl_limits {
    int64_t rpm, tpm, max_concurrent; /* 0: unlimited */
} em_rl_limits;

typedef enum {
    EM_RL_OK = 0,
    EM_RL_RPM,          /* out of requests for now */
    EM_RL_TPM,          /* out of tokens for now */
    EM_RL_CONCURRENCY,  /* max_concurrent requests in flight */
    EM_RL_TOO_LARGE,    /* asks for more tokens than the tpm limit: never grantable */
} em_rl_status;

/* "requests", "tokens", "concurrency", "too_large" ("ok" for EM_RL_OK): the
 * limit that refused, as the ledger and /metrics name it. */
const char *em_rl_status_name(em_rl_status st);

/* What the response headers report (OpenAI's x-ratelimit-*). A limit of 0
 * means unlimited and its headers are left out. Times in milliseconds. */
typedef struct em_rl_info {
    em_rl_status status;
    int64_t limit_requests, remaining_requests, reset_requests_ms;
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
    int64_t limit_concurrent, in_flight;
    int64_t retry_after_ms; /* denied: earliest time a retry can succeed (-1: never); OK: 0 */
} em_rl_info;

/* Proof of a granted request; give it back with em_rl_release. */
typedef struct em_rl_ticket {
    int64_t key_id;
    int64_t reserved_tokens;
    bool counted_tokens;
    bool held;
} em_rl_ticket;

typedef struct em_rl em_rl;

/* clock NULL: CLOCK_MONOTONIC. Returns NULL when out of memory. */
em_rl *em_rl_new(em_rl_clock_fn clock, void *clock_user);
void em_rl_free(em_rl *rl);

/* Takes one request and `tokens` tokens from the key's buckets and one
 * concurrency slot, all or nothing. info (may be NULL) gets the header
 * values after the decision. Limits are passed on every call so that a
 * changed key takes effect at once (the bucket keeps its level, clipped to
 * the new capacity). */
em_rl_status em_rl_acquire(em_rl *rl, int64_t key_id, const em_rl_limits *lim, int64_t tokens, em_rl_ticket *ticket,
                           em_rl_info *info);
/* Ends a granted request: frees its concurrency slot and corrects the
 * token bucket from the reservation to actual_tokens (< 0: keep the
 * reservation). Safe to call twice (the second call does nothing). info may
 * be NULL. */
void em_rl_release(em_rl *rl, em_rl_ticket *ticket, int64_t actual_tokens, em_rl_info *info);
/* The current header values without taking anything. */
void em_rl_peek(em_rl *rl, int64_t key_id, const em_rl_limits *lim, em_rl_info *info);

/* Response headers for info: x-ratelimit-limit-requests, -limit-tokens,
 * -remaining-requests, -remaining-tokens, -reset-requests, -reset-tokens
 * (each only when that limit is set) and, when info->status is a denial,
 * retry-after (whole seconds, rounded up) and retry-after-ms. */
#define EM_RL_MAX_HEADERS 8
typedef struct em_rl_header {
    const char *name;
    char value[32];
} em_rl_header;
size_t em_rl_headers(const em_rl_info *info, em_rl_header out[EM_RL_MAX_HEADERS]);

/* "1s", "6m0s", "250ms", "1.5s" (Go-style durations, as OpenAI sends). */
void em_rl_format_duration(int64_t ms, char buf[32]);

/* Error code and message for a denial ("rate_limit_exceeded", ...). */
const char *em_rl_status_code(em_rl_status s);
const char *em_rl_status_message(em_rl_status s);

/* Current monotonic time in microseconds (the default clock). */
int64_t em_rl_monotonic_us(void *unused);

#endif
