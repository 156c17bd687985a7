/* aggregate.h - the steps of contemplation that ember_contemplate
 * (contemplate.c, one context of its own) and the server's scheduler
 * (scheduler.c, branches decoded in the continuous batch) share, so that both
 * give the same answer for the same branches: how a sampled token's
 * log-probability counts, aggregation by vote or best, and the synthesis
 * pass (its prompt suffix, its stopping rule and its final answer).
 *
 * Numerics of the synthesis pass (both implementations): the prompt's K/V
 * are reused, the suffix tokens are evaluated as prompt tokens (prefill
 * order), then up to EM_SYNTH_MAX_TOKENS greedy tokens one at a time with a
 * sampler of ember_sampler_defaults() at temperature 0. */
#ifndef EM_AGGREGATE_H
#define EM_AGGREGATE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "answer.h"
#include "ember.h"

#define EM_SYNTH_MAX_TOKENS 64 /* greedy tokens of the synthesis pass unless told */

typedef struct em_agg {
    int winner;                 /* branch the answer came from; -1: synthesized, or no branch had one */
    double agreement;           /* branches whose answer equals the result / n */
    char answer[EM_ANSWER_MAX]; /* normalized final answer ("" if none) */
} em_agg;

/* What one sampled token adds to a branch's log-probability sum. */
static inline double em_agg_lp_term(float lp) { return isfinite(lp) ? (double)lp : -1e9; }
static inline double em_agg_mean_lp(double sum, int32_t n_tokens) { return n_tokens ? sum / n_tokens : 0.0; }

/* vote: majority of the extracted answers (em_answer_vote; ties by mean
 * log-probability); best: the branch with the highest mean log-probability
 * among those with tokens. For synthesize this is the vote, which the
 * synthesis pass then replaces. */
void em_agg_pick(ember_aggregate agg, const em_answer *answers, const double *mean_lp, const int32_t *n_tokens,
                 int n, em_agg *out);

/* The text appended to the prompt for the synthesis pass: the candidate
 * answers, "(none)" for a branch without one. malloc'ed, NUL-terminated;
 * NULL if out of memory. */
char *em_agg_synth_suffix(const em_answer *answers, int n, size_t *len);

/* True if the synthesis pass ends after its gen-th token (1-based), whose
 * piece is given: a line break after the first token. */
bool em_agg_synth_ends(const char *piece, size_t len, int32_t gen);

/* The synthesized answer (the pass's text, normalized) and its agreement
 * with the branches' answers; winner -1. */
void em_agg_synth_result(const char *text, size_t len, const em_answer *answers, int n, em_agg *out);

#endif
