/* model.h - a loaded model: hyperparameters read from GGUF metadata, the
 * architecture's options, and weights bound by name, used in place from the
 * file mapping. Loading validates that metadata and tensors agree (shapes,
 * counts, types the kernels support), so the forward pass never has to.
 * A loaded model is immutable and may be shared by many contexts/threads. */
#ifndef EM_MODEL_H
#define EM_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/err.h"
#include "../gguf/gguf.h"
#include "../tensor/types.h"
#include "../text/tokenizer.h"
#include "arch.h"

#define EM_MAX_HEAD_DIM 1024 /* largest head dimension a model may declare */

/* A 2-D weight: rows of `cols` elements (ne[0]), `rows` of them (ne[1]),
 * possibly stacked `n_mat` times (ne[2], for expert tensors). */
typedef struct em_weight {
    const em_type_traits *tt;
    const uint8_t *data;
    int64_t cols, rows, n_mat;
    uint64_t row_bytes;
    const char *name;
} em_weight;

typedef struct em_layer {
    em_weight attn_norm, wq, wk, wv, wo, ffn_norm;
    /* dense FFN (is_moe false) */
    em_weight ffn_gate, ffn_up, ffn_down;
    /* mixture of experts (is_moe true): router [n_embd -> n_expert] and
     * stacked experts, n_mat = n_expert */
    bool is_moe;
    em_weight ffn_gate_inp, ffn_gate_exps, ffn_up_exps, ffn_down_exps;
    em_weight ffn_gate_shexp, ffn_up_shexp, ffn_down_shexp; /* shared expert (arch->shared_expert) */
    /* attention pattern of this layer (from the architecture options) */
    bool use_rope;
    int chunk;                /* attend within chunks of this many positions; 0: full */
} em_layer;

typedef struct em_hparams {
    uint32_t n_vocab;      /* rows of the embedding table */
    uint32_t n_ctx_train;
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_ff;         /* dense FFN width (and expert width for Mixtral-style llama) */
    uint32_t n_expert;     /* 0: dense */
    uint32_t n_expert_used;
    uint32_t n_ff_exp;     /* expert FFN width */
    uint32_t moe_step;     /* layer il is MoE if (il + 1) % moe_step == 0 */
    uint32_t n_head, n_head_kv;
    uint32_t head_dim;     /* key/value length per head */
    uint32_t n_rot;        /* rotated dimensions per head (even, <= head_dim) */
    float rms_eps;
    float rope_base;
    float rope_freq_scale;
} em_hparams;

typedef struct em_model {
    em_gguf *gguf;
    const em_arch *arch;
    em_hparams hp;
    em_weight tok_embd, output_norm, output;
    const float *rope_freqs;  /* n_rot/2 frequency divisors or NULL (Llama 3) */
    em_layer *layers;
    em_tokenizer *tok;
    char name[128];
    uint64_t n_params;
    uint64_t weight_bytes;
} em_model;

/* Loads and validates the model at path. NULL + err naming the problem. */
em_model *em_model_load(const char *path, em_err *err);
/* Same for an already-open file; takes ownership of g on success and on
 * failure. */
em_model *em_model_from_gguf(em_gguf *g, em_err *err);
void em_model_free(em_model *m);
/* Locks the model file's mapping in RAM (mlock; faults it all in). Fails
 * with a message naming RLIMIT_MEMLOCK when the limit is what stops it. */
int em_model_mlock(const em_model *m, em_err *err);

#endif
