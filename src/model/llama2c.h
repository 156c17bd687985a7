/* llama2c.h - conversion of Karpathy llama2.c checkpoints to GGUF.
 *
 * Produces exactly what llama.cpp's `llama-convert-llama2c-to-ggml` writes
 * (same tensor names, shapes, order and bytes; same metadata keys, types,
 * values and order), except that llama.context_length is the model's real
 * sequence length from the checkpoint header instead of llama.cpp's built-in
 * 128 (override with em_llama2c_opts.n_ctx). */
#ifndef EM_LLAMA2C_H
#define EM_LLAMA2C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

/* The checkpoint header (7 little-endian int32), validated. */
typedef struct em_llama2c_config {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    bool shared_classifier; /* vocab_size was positive: output.weight = token embeddings */
} em_llama2c_config;

typedef struct em_llama2c_opts {
    uint32_t n_ctx; /* llama.context_length to write; 0 = seq_len from the header */
} em_llama2c_opts;

/* Parses and validates the header of a checkpoint of file_size bytes (data
 * holds at least the first 28 bytes, or fewer if the file is shorter):
 * positive dimensions, dim divisible by n_heads, even head size, n_heads
 * divisible by n_kv_heads, and a file size that matches the header exactly. */
int em_llama2c_parse_config(const void *data, size_t file_size, em_llama2c_config *cfg, em_err *err);

/* Converts model_path (.bin checkpoint) + tokenizer_path (llama2.c
 * tokenizer .bin) into a GGUF v3 file at out_path (written via a temporary
 * file; nothing is left at out_path on failure). opts may be NULL. */
int em_llama2c_convert(const char *model_path, const char *tokenizer_path, const char *out_path,
                       const em_llama2c_opts *opts, em_err *err);

#endif
