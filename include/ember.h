/* ember.h - the public API of libember: load a GGUF model, tokenize, run
 * batched forward passes over a paged KV cache, sample, generate.
 *
 * Conventions: functions that can fail return 0 / -1 (or NULL) and fill an
 * ember_error with a one-line message; the library never prints or exits.
 * A model is immutable once loaded and may be shared across threads; a
 * context and a sampler belong to one thread at a time. Memory returned
 * through an out-pointer is the caller's to free() unless stated. */
#ifndef EMBER_H
#define EMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ember_error {
    char msg[512];
} ember_error;

typedef struct ember_model ember_model;
typedef struct ember_ctx ember_ctx;
typedef struct ember_sampler ember_sampler;

/* ---- model ----
 * Loading maps the file and uses the weights in place (no copy): they
 * become resident as the first decodes read them. */
ember_model *ember_model_load(const char *path, ember_error *err);
typedef struct ember_model_params {
    bool mlock; /* lock the whole file mapping in RAM (mlock) once loaded: reads it all in now and keeps it
                   from being paged out; fails, naming RLIMIT_MEMLOCK, if the limit is too low */
} ember_model_params;
/* ember_model_load with options; p NULL means all defaults (zero). */
ember_model *ember_model_load_ex(const char *path, const ember_model_params *p, ember_error *err);
void ember_model_free(ember_model *m);
int32_t ember_model_n_vocab(const ember_model *m);
int32_t ember_model_n_ctx_train(const ember_model *m);
const char *ember_model_desc(const ember_model *m); /* "llama, 5 layers, 64 embd, F32, 0.3 M params" */
/* A string from the model file's metadata (e.g. "tokenizer.chat_template",
 * "general.name"): copies at most cap-1 bytes plus a NUL into buf and returns
 * the full length, or -1 if the key is absent or not a string. */
long ember_model_meta_str(const ember_model *m, const char *key, char *buf, size_t cap);

/* ---- tokens ---- */
int ember_tokenize(const ember_model *m, const char *text, size_t len, bool add_special, bool parse_special,
                   int32_t **ids, size_t *n_ids, ember_error *err);
/* Bytes of one token (see tokenizer.h); returns length (may exceed cap) or -1. */
int ember_token_to_piece(const ember_model *m, int32_t id, bool render_special, char *buf, size_t cap);
bool ember_token_is_eog(const ember_model *m, int32_t id);
int32_t ember_token_bos(const ember_model *m);

/* ---- context and forward pass ---- */
typedef enum { EMBER_KV_F16 = 0, EMBER_KV_F32 = 1 } ember_kv_type;

typedef struct ember_ctx_params {
    uint32_t n_ctx;      /* KV positions shared by all sequences; 0: model default (<= 4096) */
    uint32_t n_batch;    /* most tokens per decode call; 0: 512 */
    int32_t n_seqs;      /* 0: 1 */
    int n_threads;       /* 0: 1 */
    ember_kv_type kv_type;
} ember_ctx_params;

ember_ctx *ember_ctx_new(const ember_model *m, const ember_ctx_params *p, ember_error *err);
void ember_ctx_free(ember_ctx *c);
uint32_t ember_ctx_n_ctx(const ember_ctx *c);
uint32_t ember_ctx_n_batch(const ember_ctx *c);
const ember_model *ember_ctx_model(const ember_ctx *c);
/* Bytes of the context's KV cache pool (allocated at creation; its pages
 * become resident as positions are written). */
uint64_t ember_ctx_kv_bytes(const ember_ctx *c);

typedef struct ember_batch {
    int32_t n;
    const int32_t *token;
    const int32_t *pos;
    const int32_t *seq;
    const int8_t *want_logits; /* NULL: only the last entry */
    /* Optional: prefill[i] != 0 marks entry i as prompt evaluation (selects
     * llama.cpp's batched summation order); NULL: a sequence with 2+
     * entries in this call is prefill. A sequence's results never depend on
     * what else is in the batch. */
    const uint8_t *prefill;
} ember_batch;

int ember_decode(ember_ctx *c, const ember_batch *b, ember_error *err);
const float *ember_logits(const ember_ctx *c, int32_t batch_index);
/* Current length of a sequence; clear (n_pos = 0) or truncate it. */
int32_t ember_seq_len(const ember_ctx *c, int32_t seq);
void ember_seq_truncate(ember_ctx *c, int32_t seq, int32_t n_pos);
/* dst becomes a copy of src's first n_pos positions, sharing KV blocks
 * (copy-on-write). dst is cleared first. */
int ember_seq_fork(ember_ctx *c, int32_t src, int32_t dst, int32_t n_pos, ember_error *err);
/* KV pool occupancy in blocks of ember_kv_block_size() positions. */
int32_t ember_kv_blocks_used(const ember_ctx *c);
int32_t ember_kv_blocks_total(const ember_ctx *c);
int32_t ember_kv_block_size(void);
/* Blocks a decode that appends n_new positions to seq would take. */
int32_t ember_kv_blocks_needed(const ember_ctx *c, int32_t seq, int32_t n_new);
int32_t ember_ctx_n_seqs(const ember_ctx *c);

/* ---- sampling ---- */
typedef struct ember_sampler_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    float frequency_penalty; /* 0: off */
    float presence_penalty;  /* 0: off */
    int32_t penalty_last_n;  /* -1: all */
    uint64_t seed;
} ember_sampler_params;

ember_sampler_params ember_sampler_defaults(void);
ember_sampler *ember_sampler_new(const ember_sampler_params *p, int32_t n_vocab);
void ember_sampler_free(ember_sampler *s);
void ember_sampler_accept(ember_sampler *s, int32_t token);
int32_t ember_sampler_sample(ember_sampler *s, const float *logits, float *logprob);

/* ---- generation (one sequence) ---- */
typedef struct ember_gen_stats {
    int32_t n_prompt, n_gen;
    double prompt_ms, gen_ms;
    const char *stop_reason; /* "eos", "length", "stop", "callback" */
} ember_gen_stats;

/* Called with each piece of text as it becomes final; return false to stop. */
typedef bool (*ember_text_cb)(const char *text, size_t len, void *user);

/* Evaluates prompt (sequence 0 of c, which is cleared first), then samples
 * up to n_predict tokens, streaming text through cb. Stops at an
 * end-of-generation token or any of the stop strings (not emitted). */
int ember_generate(ember_ctx *c, ember_sampler *s, const int32_t *prompt, size_t n_prompt, int32_t n_predict,
                   const char *const *stops, size_t n_stops, ember_text_cb cb, void *user, ember_gen_stats *stats,
                   ember_error *err);

/* ---- contemplation: N reasoning branches over one prefilled prompt ----
 * The prompt is evaluated once (sequence 0); branches 1..N-1 fork it and
 * share its KV blocks; all running branches decode together, one batch per
 * step, each with its own sampler (seed + branch index), until end of text,
 * a stop string or max_branch_tokens. With early_stop and vote aggregation,
 * the remaining branches are cancelled once the leading answer cannot be
 * overtaken. Needs a context with n_seqs >= n_branches. */
typedef enum { EMBER_AGG_VOTE = 0, EMBER_AGG_BEST = 1, EMBER_AGG_SYNTHESIZE = 2 } ember_aggregate;

typedef struct ember_contemplate_params {
    int32_t n_branches;
    int32_t max_branch_tokens;
    ember_aggregate aggregate;
    bool early_stop;
    ember_sampler_params sampling;   /* branch i samples with seed sampling.seed + i */
    const char *const *stops;
    size_t n_stops;
    int32_t synth_max_tokens;        /* synthesize: greedy tokens of the final pass (0: 64) */
} ember_contemplate_params;

typedef struct ember_branch {
    char *text;                      /* generated text (malloc'ed, NUL-terminated) */
    size_t len;
    int32_t n_tokens;
    double mean_logprob;             /* mean log p of the sampled tokens */
    const char *finish;              /* "eos", "stop", "length", "cancelled" */
    char answer[256];                /* extracted, normalized final answer ("" if none) */
} ember_branch;

typedef struct ember_contemplation {
    char *answer;                    /* aggregated answer (malloc'ed) */
    int32_t winner;                  /* branch the answer came from (-1: synthesized or none) */
    double agreement;                /* branches agreeing with the answer / n_branches */
    int32_t n_branches;
    ember_branch *branches;
    int32_t n_prompt;
    int32_t tokens_generated;        /* all branches (+ the synthesis pass) */
    int32_t kv_blocks_peak;          /* most KV blocks in use at once */
    double ms;
} ember_contemplation;

/* Called for every piece of branch text as it becomes final, and once with
 * finished=true (piece NULL) when the branch ends. */
typedef void (*ember_branch_cb)(int32_t branch, const char *piece, size_t len, bool finished, void *user);

int ember_contemplate(ember_ctx *c, const int32_t *prompt, size_t n_prompt, const ember_contemplate_params *p,
                      ember_branch_cb cb, void *user, ember_contemplation *out, ember_error *err);
void ember_contemplation_free(ember_contemplation *r);

/* Which SIMD kernels are in use ("avx2", "scalar"). */
const char *ember_kernels(void);

/* Debug counters of the last ember_decode: expert weight bytes read (MoE
 * models; only chosen experts are touched), and the smallest router margin
 * (probability gap between the last chosen and the best unchosen expert;
 * INFINITY for dense models). */
uint64_t ember_debug_expert_bytes(const ember_ctx *c);
float ember_debug_router_margin(const ember_ctx *c);

#ifdef __cplusplus
}
#endif
#endif
