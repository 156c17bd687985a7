/* context.h - an inference context: a KV block pool, a thread pool and
 * scratch buffers sized once for a model and a maximum batch, plus the
 * batched forward pass. One thread drives a context at a time; the model it
 * reads may be shared. */
#ifndef EM_CONTEXT_H
#define EM_CONTEXT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/half.h"
#include "../tensor/threadpool.h"
#include "kvcache.h"
#include "model.h"

/* A batch of tokens to evaluate: entry i is token[i] at position pos[i] of
 * sequence seq[i]. Within a sequence, positions must continue from the
 * sequence's current length in order. want_logits[i] != 0 asks for the
 * logits after entry i (NULL: only the last entry). */
typedef struct em_batch {
    int32_t n;
    const int32_t *token;
    const int32_t *pos;
    const int32_t *seq;
    const int8_t *want_logits;
    /* Optional: prefill[i] != 0 marks entry i as part of a prompt evaluation,
     * which selects llama.cpp's batched summation order for it. NULL: a
     * sequence with 2+ entries in this call is prefill. Results for a
     * sequence never depend on the other sequences in the batch. */
    const uint8_t *prefill;
} em_batch;

typedef struct em_ctx_params {
    uint32_t n_ctx;     /* KV positions in the pool (all sequences together); 0: model's, capped at 4096 */
    uint32_t n_batch;   /* most entries per em_ctx_decode; 0: 512 */
    int32_t n_seqs;     /* sequence ids [0, n_seqs); 0: 1 */
    int n_threads;      /* 0: 1 */
    em_kv_type kv_type; /* EM_KV_F16 (llama.cpp's default) or EM_KV_F32 */
} em_ctx_params;

/* One thread's share of a matmul's row chunks (forward.c): claimed front to
 * back through `next` by its owner, and by the other threads once theirs are
 * done. One cache line each, so owners never contend. */
typedef struct {
    _Alignas(64) atomic_long next;
    long end;
} em_mm_share;
#define EM_MM_BATCH 16 /* matmuls in one pool dispatch at most */

typedef struct em_ctx {
    const em_model *m;
    em_ctx_params p;
    em_kv kv;
    em_pool *pool;
    /* scratch, [n_batch][dim] row-major */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;
    uint8_t *xq;            /* activations converted to a weight's vec_dot_type */
    size_t xq_stride;       /* bytes per row of xq */
    float *scores;          /* [n_threads][n_ctx] attention scores */
    em_f16 *q16;            /* [n_threads][head_dim] */
    float *attn_acc;        /* [n_threads][64 * head_dim] lane accumulators */
    float *logits;          /* [n_out][n_vocab], grown on demand */
    int32_t logits_cap;     /* rows allocated */
    int32_t *out_row;       /* per batch entry: its logits row or -1 */
    int32_t *rows;          /* scratch index list */
    uint8_t *ord_in;        /* [3][n_batch] summation orders (see forward.c) */
    int32_t *seq_cnt;       /* [2][n_seqs] per-sequence counts */
    /* mixture of experts scratch (NULL for dense models) */
    float *router;          /* [n_batch][n_expert] */
    int32_t *moe_sel;       /* [n_batch][n_expert_used] chosen experts */
    float *moe_w;           /* [n_batch][n_expert_used] their weights */
    int32_t *moe_idx;       /* [2][n_batch * n_expert_used] gather/scatter rows */
    float *moe_out;         /* [n_batch * n_expert_used][n_embd] */
    float *moe_in;          /* [n_batch * n_expert_used][n_embd] weighted expert inputs (sigmoid gating) */
    uint8_t *zeros;         /* n_batch * max(1, n_expert_used) zero bytes (single-token order) */
    em_mm_share *mm_share;  /* [EM_MM_BATCH][n_threads] matmul chunk counters */
    uint8_t *xaux;          /* [n_batch][xaux_row] gemm_aux of the activations (forward.c) */
    size_t xaux_row;        /* bytes per row of xaux */
    uint64_t expert_bytes;  /* expert weight bytes read by the last decode (debug counter) */
    float router_margin;    /* smallest gap between the last chosen and the best unchosen expert probability in the last decode (INFINITY if dense) */
    int32_t n_out;
} em_ctx;

em_ctx *em_ctx_new(const em_model *m, const em_ctx_params *p, em_err *err);
void em_ctx_free(em_ctx *c);

/* Runs the model on the batch, appending its K/V to the sequences. On error
 * (bad token id, position, sequence, full cache) nothing is changed. */
int em_ctx_decode(em_ctx *c, const em_batch *b, em_err *err);
/* Logits (n_vocab floats) after batch entry i of the last decode, or NULL if
 * they were not requested. Valid until the next decode. */
const float *em_ctx_logits(const em_ctx *c, int32_t i);

#endif
