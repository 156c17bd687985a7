/* pretok.h - internal to src/text: the byte-level BPE pre-tokenizer (regex
 * word splitting with PCRE2) and the UTF-8 helpers that reproduce
 * llama.cpp's unicode.cpp conventions (lenient decoding, invalid bytes ->
 * U+FFFD, GPT-2 byte <-> unicode mapping). */
#ifndef EM_TEXT_PRETOK_H
#define EM_TEXT_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

/* Families of pre-tokenizer regexes (llama.cpp's llm_tokenizer_bpe). */
enum em_pretok_kind {
    EM_PRETOK_DEFAULT = 0, /* "default" / missing */
    EM_PRETOK_GPT2,        /* gpt-2, phi-2, mpt, olmo, jais */
    EM_PRETOK_LLAMA3,      /* llama3, llama-bpe, dbrx, smaug-bpe, ... */
    EM_PRETOK_QWEN2,       /* qwen2, stablelm2, ... (single-digit numbers) */
    EM_PRETOK_STARCODER,   /* starcoder, refact, command-r, smollm, ... */
    EM_PRETOK_FALCON,
};

typedef struct em_pretok em_pretok;

em_pretok *em_pretok_new(int kind, em_err *err);
void em_pretok_free(em_pretok *p);

/* Called once per word, in order. word is UTF-8 as llama.cpp rebuilds it
 * from code points (not yet byte-level encoded). Return 0, or -1 to stop. */
typedef int (*em_pretok_word_fn)(void *ud, const char *word, size_t len, em_err *err);

/* Splits len bytes of text into words exactly like llama.cpp's
 * unicode_regex_split (before its byte-level encoding step). Never fails on
 * invalid UTF-8; fails only on allocation or regex engine errors. */
int em_pretok_split(const em_pretok *p, const char *text, size_t len, em_pretok_word_fn fn, void *ud,
                    em_err *err);

/* llama.cpp's unicode_len_utf8: sequence length from the lead byte's high
 * nibble (1 for continuation bytes). */
static inline size_t em_utf8_len_lead(uint8_t c) {
    static const uint8_t lk[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lk[c >> 4];
}

/* llama.cpp's lenient decoder (unicode_cpts_from_utf8 for one code point):
 * checks continuation bytes but not overlong forms or surrogates. Invalid or
 * truncated input yields U+FFFD and *adv = 1. n must be > 0. */
uint32_t em_utf8_decode(const uint8_t *s, size_t n, size_t *adv);

/* llama.cpp's unicode_cpt_to_utf8 (surrogates are encoded as 3 bytes). Code
 * points above U+10FFFF, where llama.cpp throws, become U+FFFD. Returns the
 * byte count (1..4). */
size_t em_utf8_encode(uint32_t cp, char out[4]);

/* GPT-2 byte-level mapping: byte -> UTF-8 of its printable code point. */
size_t em_byte_to_unicode(uint8_t b, char out[2]);
/* Inverse: code point -> byte, or -1 if cp is not one of the 256. */
int em_unicode_to_byte(uint32_t cp);

#endif
