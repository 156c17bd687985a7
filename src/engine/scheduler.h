/* scheduler.h - continuous batching over one ember_ctx.
 *
 * One scheduler thread owns the context. Each step it gathers the next token
 * of every generating sequence plus a chunk of pending prompt tokens
 * (chunked prefill, so a long prompt never stalls running streams), runs one
 * ember_decode, samples every sequence with its own seeded sampler and
 * appends the text to its request. Requests join and leave between steps.
 *
 * Determinism: prompt tokens are evaluated with prefill=1 and generated
 * tokens one per step with prefill=0, exactly as ember_generate (`ember
 * run`) does, and the engine never lets sequences influence each other, so a
 * sequence's tokens are the same alone, batched, chunked, restarted after
 * preemption or served from the prefix cache.
 *
 * KV memory: the context's paged pool is shared by all sequences. Finished
 * prompts stay in the pool as a prefix cache (extra sequence ids); a new
 * prompt that starts with a cached (or running) prompt forks those blocks
 * copy-on-write and only prefills the rest. When the pool runs short, cache
 * entries are evicted (least recently used first), new requests wait in the
 * queue, and as a last resort the youngest running sequence is preempted:
 * its blocks are freed and it restarts later, silently regenerating the
 * tokens it already produced (same seed, same numbers) before producing new
 * ones.
 *
 * A request carries n choices (each its own prompt, seed and sequence). The
 * consumer (an HTTP connection) reads a request's results under its mutex
 * and waits on its condition variable; `version` changes whenever anything
 * was appended.
 *
 * Contemplation (em_request_new_contemplate): a request whose choices are N
 * reasoning branches over one prompt (branch i samples with seed + i), as
 * ember_contemplate does on a context of its own, and with the same
 * results. The branches are admitted together (N <= n_slots); one of them
 * prefills the prompt, the others then fork its sequence (sharing its KV
 * blocks, copy-on-write) and take their first token from the same logits;
 * all of them then decode in the continuous batch, one token per step, in
 * lockstep (preemption restarts the whole group). When a branch finishes,
 * its final answer is extracted; with early_stop (vote), the branches still
 * running are cancelled (finish "early_stop") once the leader cannot be
 * overtaken. The answers are aggregated when the last branch ends (vote,
 * best), or one more choice, the synthesis pass, runs greedily over the
 * prompt plus the list of candidates (synthesize); see aggregate.h. */
#ifndef EM_SCHEDULER_H
#define EM_SCHEDULER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "answer.h"
#include "ember.h"

#define EM_SCHED_MAX_TOP_LOGPROBS 20
#define EM_SCHED_MAX_STOPS 16
#define EM_SCHED_MAX_STOP_LEN 256
#define EM_SCHED_MAX_CHOICES 64

typedef struct em_sched em_sched;
struct em_job;

typedef struct em_sched_params {
    int32_t n_slots;       /* sequences generating at once (default 4) */
    int32_t n_ctx_seq;     /* positions one sequence may hold (default: model's, at most 4096) */
    int32_t n_ctx_pool;    /* KV pool positions (default n_slots * n_ctx_seq); rounded up to 256 */
    int32_t n_cache;       /* extra sequence ids kept as prefix cache (default n_slots) */
    int32_t prefill_chunk; /* most prompt tokens evaluated per step (default 128) */
    int32_t max_queue;     /* most choices waiting to start (default 64) */
    int n_threads;         /* default 1 */
    ember_kv_type kv_type;
} em_sched_params;

/* Log-probabilities of one generated token: its own and the top alternatives
 * (log-softmax of the model's raw logits, before penalties and sampling
 * filters). */
typedef struct em_lp_entry {
    int32_t token;
    float logprob;
    int32_t n_top;
    int32_t top_id[EM_SCHED_MAX_TOP_LOGPROBS];
    float top_lp[EM_SCHED_MAX_TOP_LOGPROBS];
} em_lp_entry;

/* What one choice produced so far (read under the request's mutex). */
typedef struct em_choice_out {
    char *text;          /* valid UTF-8, stop strings removed */
    size_t len, cap;
    em_lp_entry *lp;     /* one per token whose text was (or is being) emitted */
    size_t n_lp, cap_lp;
    int32_t n_gen;       /* tokens sampled, including a final end-of-generation token */
    const char *finish;  /* NULL while running, then "stop", "length", "cancelled", "timeout", "shutdown", "error"
                            (contemplation: also "early_stop") */
    /* contemplation only */
    char *raw;           /* the text as generated (stop strings removed, bytes not UTF-8-checked) */
    size_t raw_len, raw_cap;
    double lp_sum;       /* sum of em_agg_lp_term() of the sampler's log-probability of each sampled token */
    em_answer answer;    /* a branch's extracted answer, set when it finishes (EM_ANS_NONE if early-stopped) */
} em_choice_out;

typedef struct em_gen_params {
    int32_t max_tokens;          /* < 0: until the sequence's context is full */
    ember_sampler_params sp;     /* seed is per choice (em_request_set_choice) */
    char *stops[EM_SCHED_MAX_STOPS];
    size_t n_stops;
    int32_t top_logprobs;        /* < 0: no logprobs; else 0..EM_SCHED_MAX_TOP_LOGPROBS alternatives */
    bool ignore_eos;             /* end-of-generation tokens are never sampled */
    double timeout_ms;           /* 0: none; counted from submission */
} em_gen_params;

typedef struct em_request {
    /* set before em_sched_submit, read-only afterwards */
    int n_choices;
    em_gen_params p;
    int64_t n_prompt_total;      /* sum of the choices' prompt lengths */
    double t_submit_ms;
    /* shared with the scheduler, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t version;            /* bumped on every change */
    int n_done;                  /* choices finished */
    em_choice_out *out;          /* [n_choices] */
    char error[256];             /* set with finish "error" */
    /* contemplation (em_request_new_contemplate); n_branches 0: a plain request */
    int n_branches;              /* choices 0..n_branches-1; synthesize adds choice n_branches, the synthesis pass */
    ember_aggregate aggregate;
    bool early_stop;             /* vote only */
    int32_t synth_max_tokens;
    /* its result (under mu; final once the request is done) */
    bool early_stopped;          /* branches were cancelled because the vote was decided */
    int agg_winner;              /* branch the answer came from, -1 if synthesized or none */
    double agg_agreement;
    char agg_answer[EM_ANSWER_MAX];
    bool agg_ready;              /* agg_* hold the final result */
    int32_t kv_blocks_peak;      /* most KV blocks in use in the pool while the request ran */
    /* private */
    atomic_int refs;
    atomic_int cancel;           /* set by em_request_cancel */
    em_sched *sched;
    struct em_job *jobs;         /* [n_choices] */
    bool c_check;                /* contemplation: a branch ended this step (early-stop check) */
} em_request;

/* Loads nothing: the model must outlive the scheduler. Starts the thread. */
em_sched *em_sched_new(const ember_model *m, const em_sched_params *p, ember_error *err);
/* Cancels whatever is still queued or running ("shutdown"), stops the
 * thread and frees everything. */
void em_sched_free(em_sched *s);
/* The effective parameters (defaults filled in). */
const em_sched_params *em_sched_get_params(const em_sched *s);

/* A request with n choices (1..EM_SCHED_MAX_CHOICES); the caller fills
 * em_gen_params (stops are copied) and each choice's prompt. The caller holds
 * one reference. */
em_request *em_request_new(int n_choices, const em_gen_params *p);
/* Choice i evaluates ids (copied) and samples with seed. */
int em_request_set_choice(em_request *r, int i, const int32_t *ids, size_t n_ids, uint64_t seed);
void em_request_release(em_request *r);
/* A contemplation request (see the top of this file): n_branches 1..64
 * branches over the prompt ids (copied), branch i sampling with p->sp and
 * seed + i, each up to p->max_tokens tokens (> 0) with p's stop strings.
 * p->top_logprobs must be < 0. synth_max_tokens: greedy tokens of the
 * synthesis pass (0: EM_SYNTH_MAX_TOKENS). */
em_request *em_request_new_contemplate(const em_gen_params *p, int n_branches, ember_aggregate aggregate,
                                       bool early_stop, int32_t synth_max_tokens, const int32_t *ids, size_t n_ids,
                                       uint64_t seed);
/* Asks the scheduler to drop the request; it stops within one step (finish
 * "cancelled" for choices still running). */
void em_request_cancel(em_request *r);
/* Waits until r->version differs from seen or timeout_ms passes; returns the
 * current version. */
uint64_t em_request_wait(em_request *r, uint64_t seen, int timeout_ms);
/* True once every choice finished (call under r->mu). */
static inline bool em_request_done(const em_request *r) { return r->n_done >= r->n_choices; }

enum { EM_SUBMIT_OK = 0, EM_SUBMIT_FULL = 1, EM_SUBMIT_CLOSED = 2, EM_SUBMIT_INVALID = 3 };
/* Queues a request (the scheduler takes its own reference). Returns
 * EM_SUBMIT_FULL if the queue holds max_queue choices already,
 * EM_SUBMIT_CLOSED while draining, EM_SUBMIT_INVALID for a prompt that is
 * empty or does not fit the sequence context, or a contemplation with more
 * branches than n_slots. */
int em_sched_submit(em_sched *s, em_request *r);
/* KV blocks a contemplation needs at most (the prompt once, each branch's
 * own blocks up to max_tokens), and the pool's size: a contemplation must
 * fit the pool by itself. */
int32_t em_sched_contemplate_blocks(const em_sched *s, int32_t n_prompt, int n_branches, int32_t max_tokens);
int32_t em_sched_kv_blocks_total(const em_sched *s);
/* Refuse new submissions from now on (graceful shutdown). */
void em_sched_drain(em_sched *s);
/* Cancels every queued and running request with the given finish reason. */
void em_sched_cancel_all(em_sched *s, const char *reason);
/* Choices queued or running. */
int em_sched_busy(em_sched *s);

/* Histogram bucket bounds (seconds) and counters for /metrics. */
#define EM_HIST_BUCKETS 12
typedef struct em_hist {
    uint64_t count[EM_HIST_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t n;
} em_hist;
extern const double em_sched_ttft_bounds[EM_HIST_BUCKETS];
extern const double em_sched_itl_bounds[EM_HIST_BUCKETS];

typedef struct em_sched_stats {
    int32_t n_queued, n_running, n_slots, n_cached;
    int32_t kv_blocks_used, kv_blocks_total;
    int32_t kv_blocks_peak;       /* most blocks in use since the last em_sched_take_kv_peak */
    uint64_t prompt_tokens;       /* prompt tokens of admitted choices */
    uint64_t prompt_tokens_cached;/* of those, served from the prefix cache */
    uint64_t gen_tokens;          /* tokens sampled (replays after preemption excluded) */
    uint64_t steps, preemptions;
    uint64_t finished_stop, finished_length, finished_cancelled, finished_timeout, finished_other;
    em_hist ttft, itl;
} em_sched_stats;
void em_sched_get_stats(em_sched *s, em_sched_stats *out);
/* The most KV blocks in use since the previous call (or the start); the
 * peak then restarts from the blocks in use now. */
int32_t em_sched_take_kv_peak(em_sched *s);

#endif
