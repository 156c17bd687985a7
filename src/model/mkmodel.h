/* mkmodel.h - synthetic Llama models for benchmarks and tests: a GGUF with
 * llama.cpp's tensor names and shapes, random weights drawn deterministically
 * from a seed, quantized with the tensor-type table, and a real tokenizer
 * copied from a vocabulary GGUF (or a small synthetic SentencePiece one).
 *
 * The weights are ~N(0, 0.02^2) (an Irwin-Hall(4) approximation of the
 * normal: bounded at +-3.46 sigma, which is all a benchmark needs), norm
 * weights ~1 +- 0.02. Each row is drawn from its own generator seeded by
 * (seed, tensor index, row), so the file does not depend on the number of
 * threads. Tensors are generated and quantized in parallel, one tensor at a
 * time, and streamed to the file: peak memory is about the largest tensor. */
#ifndef EM_MKMODEL_H
#define EM_MKMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

/* Architecture hyperparameters. */
typedef struct em_mkmodel_shape {
    const char *name;      /* shape name, or NULL for a custom one */
    uint32_t n_layer, n_embd, n_head, n_head_kv, n_ff; /* n_ff: each expert's width in a MoE */
    float rope_base;
    bool llama3_rope;      /* write rope_freqs.weight (Llama 3.1/3.2 frequency factors) */
    uint32_t n_ctx_train;  /* llama.context_length */
    /* Mixtral-style mixture of experts in every layer: 0 = dense. Otherwise
     * each layer has the F32 router blk.N.ffn_gate_inp [n_embd, n_expert]
     * and the stacked experts blk.N.ffn_{gate,up}_exps [n_embd, n_ff,
     * n_expert] and ffn_down_exps [n_ff, n_embd, n_expert] instead of
     * ffn_{gate,up,down}, and the file has llama.expert_count and
     * llama.expert_used_count (1..n_expert). */
    uint32_t n_expert, n_expert_used;
} em_mkmodel_shape;

/* Named shapes: "llama-3.2-1b" (the real model's dimensions),
 * "mixtral-mini" (a scaled-down Mixtral: 8 experts, top-2), and small ones
 * for tests ("tiny-moe" is "tiny" with 4 experts, top-2). NULL if unknown. */
const em_mkmodel_shape *em_mkmodel_find_shape(const char *name);
/* The i-th named shape, or NULL past the end (for help texts). */
const em_mkmodel_shape *em_mkmodel_shape_at(size_t i);

/* Weight formats. Plain types put every matrix (token_embd and output too)
 * in that type, like llama-quantize --pure; norms, rope factors and MoE
 * routers stay F32 (llama-quantize never quantizes ffn_gate_inp).
 * Mixes (q4_k_m, q5_k_m) follow llama.cpp's llama_tensor_get_type: output in
 * Q6_K, attn_v and ffn_down (ffn_down_exps) in Q6_K on the layers
 * use_more_bits() selects, the rest in the base type; with exactly 8
 * experts also attn_k and attn_v in Q8_0 and, for q4_k_m, attn_output in
 * Q5_K. */
typedef struct em_mkmodel_ftype {
    const char *name;      /* "q4_0", "q4_k_m", ... */
    uint32_t base;         /* enum em_type for most matrices */
    bool km_mix;           /* llama.cpp's _M mix */
    uint32_t file_type;    /* general.file_type (llama_ftype) */
} em_mkmodel_ftype;

const em_mkmodel_ftype *em_mkmodel_find_ftype(const char *name);
const em_mkmodel_ftype *em_mkmodel_ftype_at(size_t i);

typedef struct em_mkmodel_opts {
    em_mkmodel_shape shape;
    const em_mkmodel_ftype *ftype; /* NULL: f32 */
    uint64_t seed;
    /* GGUF to copy every tokenizer.* key from; its token count is the vocab
     * size (n_vocab, if non-zero, must equal it). NULL: a synthetic
     * SentencePiece vocabulary of n_vocab tokens (>= 260): <unk>, <s>, </s>,
     * the 256 byte tokens, then made-up pieces. */
    const char *vocab_path;
    uint32_t n_vocab;
    int n_threads;                 /* <= 0: 1 */
    const char *name;              /* general.name; NULL: from the shape */
} em_mkmodel_opts;

typedef struct em_mkmodel_stats {
    uint64_t n_params;
    uint64_t n_bytes;      /* tensor data, unpadded */
    uint32_t n_vocab;
    uint32_t n_tensors;
} em_mkmodel_stats;

/* Checks the options (dimensions, head size, block sizes of the chosen
 * types, availability of their quantizers) without writing anything. */
int em_mkmodel_check(const em_mkmodel_opts *o, em_err *err);

/* Writes the model to path (through a temporary file; nothing is left at
 * path on failure). stats may be NULL. */
int em_mkmodel_write(const char *path, const em_mkmodel_opts *o, em_mkmodel_stats *stats, em_err *err);

#endif
