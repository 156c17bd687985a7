/* tokenizer.h - tokenizers built from GGUF `tokenizer.ggml.*` metadata:
 * SentencePiece-style (`llama`: scores, byte fallback) and byte-level BPE
 * (`gpt2`: merges, pre-tokenizer regexes by `tokenizer.ggml.pre`), matching
 * llama.cpp's llama-vocab token for token. A loaded tokenizer is safe to
 * use from many threads at once (it only fills caches, atomically). */
#ifndef EM_TOKENIZER_H
#define EM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "../gguf/gguf.h"

typedef struct em_tokenizer em_tokenizer;

/* Token attributes (llama.cpp's tokenizer.ggml.token_type values). */
enum em_token_type {
    EM_TOKEN_UNDEFINED = 0, EM_TOKEN_NORMAL = 1, EM_TOKEN_UNKNOWN = 2, EM_TOKEN_CONTROL = 3,
    EM_TOKEN_USER_DEFINED = 4, EM_TOKEN_UNUSED = 5, EM_TOKEN_BYTE = 6,
};

/* Builds the tokenizer from g's metadata. Copies everything it needs, so g
 * may be closed afterwards. NULL + err on malformed or unsupported vocab. */
em_tokenizer *em_tokenizer_load(const em_gguf *g, em_err *err);
void em_tokenizer_free(em_tokenizer *tok);

int32_t em_tokenizer_n_vocab(const em_tokenizer *tok);
int32_t em_tokenizer_bos(const em_tokenizer *tok);   /* -1 if none */
int32_t em_tokenizer_eos(const em_tokenizer *tok);   /* -1 if none */
bool em_tokenizer_add_bos(const em_tokenizer *tok);  /* model default for add_special */
bool em_tokenizer_is_eog(const em_tokenizer *tok, int32_t id); /* end of generation (EOS, EOT, ...) */
int em_tokenizer_token_type(const em_tokenizer *tok, int32_t id);

/* Tokenizes len bytes of text. add_special: prepend BOS (and append EOS)
 * as the model's metadata asks. parse_special: recognise control-token text
 * such as "<s>" in the input. *ids is malloc'ed (caller frees), *n_ids its
 * length. Invalid UTF-8 is tokenized as llama.cpp does (never fails for it). */
int em_tokenize(const em_tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                int32_t **ids, size_t *n_ids, em_err *err);

/* Bytes of one token as it appears in generated text (SPM "▁" -> " ",
 * byte tokens -> the byte, BPE byte-level decoding). Control tokens render
 * as their text only if render_special. Writes up to cap bytes (no NUL) and
 * returns the full length (may exceed cap), or -1 for an invalid id. */
int em_token_to_piece(const em_tokenizer *tok, int32_t id, bool render_special, char *buf, size_t cap);

/* Concatenated pieces of ids, like llama_detokenize (drops the SPM leading
 * space of the first piece when remove_leading_space). Returns a malloc'ed
 * NUL-terminated string (caller frees) and its length in *len. */
char *em_detokenize(const em_tokenizer *tok, const int32_t *ids, size_t n, bool render_special,
                    bool remove_leading_space, size_t *len, em_err *err);

#endif
