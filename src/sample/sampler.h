/* sampler.h - turns a row of logits into the next token. Stages, in the
 * order of llama.cpp's common sampler chain:
 *   penalties (repeat, then frequency/presence) -> top-k -> top-p -> min-p
 *   -> temperature -> draw from the softmax with a per-sampler seeded RNG
 * (or argmax when greedy). top-p and min-p see the temperature-1 softmax of
 * the penalized logits that survived the earlier stages. The same seed and
 * inputs give the same tokens on every machine and thread count (own PRNG,
 * sorts with ties broken by lower token id, no global state).
 * NaN logits count as -inf, +inf as the largest float. If no logit is above
 * -inf the result is token 0 with logprob -INFINITY.
 * A sampler is owned by one sequence; not thread safe. */
#ifndef EM_SAMPLER_H
#define EM_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct em_sampler_params {
    float temperature;      /* <= 0 (or NaN): greedy (argmax, ties -> lowest id;
                               penalties still apply, filters are moot) */
    int32_t top_k;          /* <= 0 or >= n_vocab: off */
    float top_p;            /* >= 1 (or NaN): off; keeps the smallest prefix of
                               the sorted candidates with cumulative p >= top_p
                               (at least one token) */
    float min_p;            /* <= 0 (or NaN): off; keeps p >= min_p * p_max
                               (values above 1 act as 1) */
    float repeat_penalty;   /* 1: off (llama.cpp semantics: for each distinct
                               token in the window, divide positive, multiply
                               non-positive logits); <= 0 or NaN: off */
    float frequency_penalty;/* 0: off (OpenAI semantics: logit -= count * freq) */
    float presence_penalty; /* 0: off (logit -= presence if count > 0) */
    int32_t penalty_last_n; /* how many recent accepted tokens the penalties
                               look at; 0: off, -1 (any negative): all */
    uint64_t seed;          /* seeds xoshiro256** through splitmix64 */
} em_sampler_params;

/* llama.cpp-like defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * penalties off (repeat 1.0, last_n 64), seed 0. */
em_sampler_params em_sampler_defaults(void);

typedef struct em_sampler em_sampler;

/* NULL if n_vocab <= 0 or out of memory. p == NULL means the defaults.
 * Work buffers of O(n_vocab) are allocated here, none while sampling. */
em_sampler *em_sampler_new(const em_sampler_params *p, int32_t n_vocab);
void em_sampler_free(em_sampler *s);
/* Records a token as part of the history the penalties see (prompt tokens
 * too, if the caller wants them penalized). Ids outside [0, n_vocab) are
 * ignored. */
void em_sampler_accept(em_sampler *s, int32_t token);
/* Picks the next token from logits[n_vocab] (not modified). If logprob is
 * non-NULL it receives log p(token) under the final distribution (after the
 * filters and temperature); when greedy, the log-softmax of the penalized
 * logits at the token. Does not call em_sampler_accept. Each non-greedy call
 * draws exactly one number from the RNG. Returns -1 if s or logits is NULL. */
int32_t em_sampler_sample(em_sampler *s, const float *logits, float *logprob);

/* Stop strings: detects any of the strings in generated text across token
 * boundaries. Feed each token's piece; it reports how many bytes are safe to
 * emit now (never the start of a possible stop string) and whether a stop
 * string completed (the text before it is then emitted, the rest dropped).
 * The first stop string to complete wins (if several complete at the same
 * byte, the longest), so the result does not depend on how the text is split
 * into pieces. */
typedef struct em_stop em_stop;
#define EM_STOP_MAX_STRINGS 16
#define EM_STOP_MAX_LEN 256
/* NULL if n_stops > EM_STOP_MAX_STRINGS, a string is longer than
 * EM_STOP_MAX_LEN bytes, stops (or an entry) is NULL while n_stops > 0, or
 * out of memory. Empty strings are ignored; n_stops == 0 gives a matcher that
 * passes everything through. The strings are copied. */
em_stop *em_stop_new(const char *const *stops, size_t n_stops);
void em_stop_free(em_stop *st);
/* Appends piece; *out / *out_len receive bytes safe to emit now (pointer
 * valid until the next call on st). Returns true if a stop string was hit;
 * later calls then emit nothing and return true. If growing the internal
 * buffer fails, the held-back bytes are emitted and true is returned (the
 * generation ends as if stopped). */
bool em_stop_feed(em_stop *st, const char *piece, size_t len, const char **out, size_t *out_len);
/* At end of generation: the held-back bytes that turned out not to stop
 * (nothing after a stop). The matcher then starts afresh. */
void em_stop_flush(em_stop *st, const char **out, size_t *out_len);

#endif
