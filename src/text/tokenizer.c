/* tokenizer.c - SentencePiece-style (SPM) and byte-level BPE tokenizers built
 * from GGUF metadata, reproducing llama.cpp's llama-vocab.cpp (commit
 * 80fb11a): vocabulary loading and special-token defaults, special-token
 * partitioning, the SPM bigram/score merger with byte fallback, the BPE
 * rank merger over pre-tokenized words, token-to-piece and detokenization
 * with clean-up of spaces.
 *
 * Everything read from the file is validated here; every size derived from
 * it is computed with checked arithmetic and every allocation is checked.
 * Loading is built to be fast (~20 ms for a 128K-token vocabulary with
 * 280K merges): one mapping for all tables, 32-bit hash slots, prefetched
 * inserts, and merges indexed by the hashes of their strings rather than
 * by token ids (which would take two vocabulary lookups per merge).
 * A loaded tokenizer is shared by threads: besides two caches of merge
 * facts, filled with relaxed atomics (every writer stores the same value),
 * it is never modified. */
#define _GNU_SOURCE /* memmem */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>

#include "../base/checked.h"
#include "pretok.h"

/* llama.cpp's llama_token_attr bits */
enum {
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 7,
    ATTR_RSTRIP = 1 << 8,
};

enum { KIND_SPM, KIND_BPE };

#define MAX_PIECE (1u << 24) /* longest rendered piece we accept for one token */
#define PREFETCH_AHEAD 16    /* table inserts at load: slots fetched this many items ahead */

/* All large tables live in one anonymous mapping (the region), allocated
 * at once and advised to use transparent huge pages: a 128K-token BPE
 * vocabulary needs ~13 MiB of tables, and faulting those in 4 KiB pages
 * costs more than filling them. */
struct em_tokenizer {
    int kind;
    int32_t n;
    void *region;       /* mmap'ed; the arrays below point into it */
    size_t region_len;
    char *arena;        /* all token texts, back to back */
    uint32_t *off;      /* n+1 offsets into arena */
    float *score;
    uint16_t *attr;
    char *pieces;       /* token_to_piece(special = true) of every token */
    bool pieces_owned;  /* malloc'ed (outgrew its place in the region) */
    uint32_t *poff;     /* n+1 offsets into pieces */
    uint32_t *ht;       /* open addressing: text -> id (see slot_make) */
    size_t ht_mask;
    uint8_t *eog;       /* bitmap */
    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
    int32_t *special;   /* control / user-defined / unknown tokens, longest first */
    size_t n_special;
    /* SPM */
    int32_t byte_tok[256];  /* byte fallback: "<0xXX>" or the 1-byte token, -1 */
    /* BPE */
    int32_t bl_tok[256];    /* token whose text is the byte-level char of a byte */
    int32_t raw_tok[256];   /* token whose text is the single raw byte */
    /* Merges are keyed by the hashes of their two strings, so that loading
     * needs no vocabulary lookups: (hash(left), hash(right)) -> rank. A
     * query verifies the merge's text (a copy in mtext) against the two
     * tokens' texts. */
    uint32_t *mt;           /* open addressing: pair key -> rank (see slot_make) */
    uint64_t *thash;        /* hash_bytes() of each token's text */
    /* rank -> id of the merged text + 2 (1: not a token), 0 until first
     * needed; filled lazily with relaxed atomics (every thread that fills
     * an entry writes the same value), so the region's zero pages of
     * unused entries are never touched */
    int32_t *mres;
    /* rank -> (left id + 1) << 32 | (right id + 1) once a query has matched
     * the merge's texts, 0 before (filled like mres): later queries compare
     * ids instead of texts */
    uint64_t *mpair;
    size_t m_mask;
    uint64_t *bloom;        /* see bloom_add() */
    size_t bloom_mask;      /* blocks of 8 words - 1 */
    char *mtext;            /* merge strings back to back */
    uint32_t *moff;         /* n_merges+1 offsets into mtext */
    int32_t n_merges;
    em_pretok *pre;
};

/* ---------------------------------------------------------------- helpers */

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t load64(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint64_t load32(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
/* 64x64 -> 128-bit multiply, folded (wyhash's mum) */
static inline uint64_t mum(uint64_t a, uint64_t b) {
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A wyhash-style string hash: both the low bits (table index) and the high
 * 32 bits (slot tag) are well mixed. Reads only the n bytes of s. */
static inline __attribute__((always_inline)) uint64_t hash_bytes(const char *s, size_t n) {
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull, k2 = 0x8ebc6af09c88c6e3ull;
    uint64_t a, b, seed = k0 ^ (uint64_t)n;
    if (n <= 16) {
        if (n >= 4) {
            a = (load32(s) << 32) | load32(s + ((n >> 3) << 2));
            b = (load32(s + n - 4) << 32) | load32(s + n - 4 - ((n >> 3) << 2));
        } else if (n > 0) {
            a = ((uint64_t)(uint8_t)s[0] << 16) | ((uint64_t)(uint8_t)s[n >> 1] << 8) | (uint8_t)s[n - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = n;
        const char *p = s;
        while (i > 16) {
            seed = mum(load64(p) ^ k1, load64(p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = load64(p + i - 16);
        b = load64(p + i - 8);
    }
    return mum(k1 ^ (uint64_t)n, mum(a ^ k1, b ^ seed) ^ k2);
}

/* Hash table slots are 32 bits: the top 8 bits of the key's hash (a tag
 * that spares most text comparisons; the index comes from the low bits)
 * and the value + 1 in the other 24 (0: empty slot). */
#define SLOT_MAX ((1u << 24) - 2) /* largest value (token id or merge rank) */
static inline uint32_t slot_make(uint64_t h, uint32_t v) { return (uint32_t)(h >> 56) << 24 | (v + 1); }
static inline int32_t slot_val(uint32_t e) { return (int32_t)(e & 0xffffffu) - 1; }
static inline bool slot_tag_eq(uint32_t e, uint64_t h) { return e >> 24 == (uint32_t)(h >> 56); }

static inline const char *tok_text(const em_tokenizer *t, int32_t id, size_t *len) {
    *len = t->off[id + 1] - t->off[id];
    return t->arena + t->off[id];
}

static int32_t lookup_h(const em_tokenizer *t, const char *s, size_t n, uint64_t h) {
    for (size_t i = h & t->ht_mask;; i = (i + 1) & t->ht_mask) {
        uint32_t e = t->ht[i];
        if (!e) return -1;
        if (!slot_tag_eq(e, h)) continue;
        size_t l;
        const char *x = tok_text(t, slot_val(e), &l);
        if (l == n && memcmp(x, s, n) == 0) return slot_val(e);
    }
}

static int32_t lookup(const em_tokenizer *t, const char *s, size_t n) { return lookup_h(t, s, n, hash_bytes(s, n)); }

/* Blocked Bloom filter over the token texts' hashes (BPE only; used at
 * load to check merges without touching the larger hash table): a 64-byte
 * block chosen by the low bits, two bits in it by the high ones. */
static inline uint64_t *bloom_block(const em_tokenizer *t, uint64_t h) { return t->bloom + 8 * (h & t->bloom_mask); }
static void bloom_add(em_tokenizer *t, uint64_t h) {
    uint64_t *b = bloom_block(t, h);
    unsigned b1 = (unsigned)(h >> 32) & 511, b2 = (unsigned)(h >> 41) & 511;
    b[b1 >> 6] |= 1ull << (b1 & 63);
    b[b2 >> 6] |= 1ull << (b2 & 63);
}
/* false: no token has a text with hash h. true: probably one has (~1% of
 * the strings that are not tokens pass, with 16 filter bits a token). */
static bool bloom_has(const em_tokenizer *t, uint64_t h) {
    const uint64_t *b = bloom_block(t, h);
    unsigned b1 = (unsigned)(h >> 32) & 511, b2 = (unsigned)(h >> 41) & 511;
    return (b[b1 >> 6] >> (b1 & 63) & 1) && (b[b2 >> 6] >> (b2 & 63) & 1);
}

static int32_t lookup_z(const em_tokenizer *t, const char *z) { return lookup(t, z, strlen(z)); }

static bool is_space_c(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

typedef struct {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x, em_err *err) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64, bytes;
        if (!em_mul_sz(cap, sizeof *a->v, &bytes)) return em_fail(err, "too many tokens");
        int32_t *v = realloc(a->v, bytes);
        if (!v) return em_fail(err, "out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* -------------------------------------------------------------- loading */

/* Reads an optional special-token id. Like llama.cpp, an out-of-range
 * default becomes "none" and the all-ones value (-1 / 0xFFFFFFFF, which
 * converters write for "none") keeps the default; any other id outside the
 * vocabulary is an error (llama.cpp only warns). */
static int read_special(const em_gguf *g, const char *key, int32_t n, int32_t *id, em_err *err) {
    if (*id >= n) *id = -1;
    const em_gguf_kv *kv = em_gguf_find(g, key);
    if (!kv) return 0;
    int64_t v;
    switch (kv->type) {
    case EM_GGUF_U8: case EM_GGUF_U16: case EM_GGUF_U32: case EM_GGUF_U64:
        if (kv->v.u64 == UINT32_MAX || kv->v.u64 == UINT64_MAX) return 0;
        if (kv->v.u64 >= (uint64_t)n)
            return em_fail(err, "metadata '%s' = %llu: token id out of range (vocabulary has %d tokens)", key,
                           (unsigned long long)kv->v.u64, n);
        v = (int64_t)kv->v.u64;
        break;
    case EM_GGUF_I8: case EM_GGUF_I16: case EM_GGUF_I32: case EM_GGUF_I64:
        if (kv->v.i64 == -1) return 0;
        if (kv->v.i64 < 0 || kv->v.i64 >= n)
            return em_fail(err, "metadata '%s' = %lld: token id out of range (vocabulary has %d tokens)", key,
                           (long long)kv->v.i64, n);
        v = kv->v.i64;
        break;
    default:
        return em_fail(err, "metadata '%s' has type %s, expected a token id", key, em_gguf_vtype_name(kv->type));
    }
    *id = (int32_t)v;
    return 0;
}

typedef struct {
    const char *names[10];
    int kind;
    bool ignore_merges, add_bos, clean_spaces;
} pre_def;

/* tokenizer.ggml.pre values we support, with llama.cpp's flags for each
 * (BPE defaults: clean_spaces on, add_bos and ignore_merges off). */
static const pre_def PRE_DEFS[] = {
    {{"default"}, EM_PRETOK_DEFAULT, false, false, true},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
     EM_PRETOK_LLAMA3, true, true, true},
    {{"dbrx", "smaug-bpe"}, EM_PRETOK_LLAMA3, false, false, true},
    {{"falcon"}, EM_PRETOK_FALCON, false, false, true},
    {{"gpt-2", "phi-2", "mpt", "olmo", "jais"}, EM_PRETOK_GPT2, false, false, true},
    {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}, EM_PRETOK_STARCODER, false, false, true},
    {{"command-r", "smollm"}, EM_PRETOK_STARCODER, false, false, false},
    {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan"}, EM_PRETOK_QWEN2, false, false, false},
    {{"stablelm2", "megrez"}, EM_PRETOK_QWEN2, false, false, true},
};

static const pre_def *find_pre(em_str s) {
    for (size_t i = 0; i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++)
        for (int j = 0; j < 10 && PRE_DEFS[i].names[j]; j++)
            if (em_str_eq(s, PRE_DEFS[i].names[j])) return &PRE_DEFS[i];
    return NULL;
}

static void set_eog(em_tokenizer *t, int32_t id) {
    if (id >= 0 && id < t->n) t->eog[id >> 3] |= (uint8_t)(1u << (id & 7));
}
static void clear_eog(em_tokenizer *t, int32_t id) {
    if (id >= 0 && id < t->n) t->eog[id >> 3] &= (uint8_t)~(1u << (id & 7));
}
static bool get_eog(const em_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n && (t->eog[id >> 3] >> (id & 7)) & 1;
}

/* llama.cpp finds EOT/EOM/FIM tokens by text when the metadata has no id
 * (iterating an unordered_map; we take the lowest id among the matches) and
 * marks them as control tokens. */
static void detect_by_text(em_tokenizer *t, int32_t *id, const char *const *texts) {
    if (*id >= 0) return;
    int32_t best = -1;
    for (int i = 0; texts[i]; i++) {
        int32_t x = lookup_z(t, texts[i]);
        if (x >= 0 && (best < 0 || x < best)) best = x;
    }
    if (best >= 0) {
        *id = best;
        t->attr[best] |= ATTR_CONTROL;
    }
}

static const char *const EOT_TEXTS[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
                                        "<end_of_utterance>", NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
                                            "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
                                            "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>",
                                            "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
                                            NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOG_TEXTS[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                                        "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                                        "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
                                        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                        "<｜end▁of▁sentence｜>", "[e~[", NULL};

static int special_setup(em_tokenizer *t, const em_gguf *g, em_err *err) {
    int32_t n = t->n;
    struct { const char *key; int32_t *id; } keys[] = {
        {"tokenizer.ggml.bos_token_id", &t->bos},      {"tokenizer.ggml.eos_token_id", &t->eos},
        {"tokenizer.ggml.eot_token_id", &t->eot},      {"tokenizer.ggml.eom_token_id", &t->eom},
        {"tokenizer.ggml.unknown_token_id", &t->unk},  {"tokenizer.ggml.seperator_token_id", &t->sep},
        {"tokenizer.ggml.padding_token_id", &t->pad},  {"tokenizer.ggml.mask_token_id", &t->mask},
        {"tokenizer.ggml.fim_pre_token_id", &t->fim_pre}, {"tokenizer.ggml.fim_suf_token_id", &t->fim_suf},
        {"tokenizer.ggml.fim_mid_token_id", &t->fim_mid}, {"tokenizer.ggml.fim_pad_token_id", &t->fim_pad},
        {"tokenizer.ggml.fim_rep_token_id", &t->fim_rep}, {"tokenizer.ggml.fim_sep_token_id", &t->fim_sep},
        {"tokenizer.ggml.prefix_token_id", &t->fim_pre}, {"tokenizer.ggml.suffix_token_id", &t->fim_suf},
        {"tokenizer.ggml.middle_token_id", &t->fim_mid},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (read_special(g, keys[i].key, n, keys[i].id, err)) return -1;

    if (em_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, true, err) ||
        em_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, true, err))
        return -1;
    if (t->add_bos && t->bos < 0)
        return em_fail(err, "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
    if (t->add_eos && t->eos < 0)
        return em_fail(err, "tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");

    detect_by_text(t, &t->eot, EOT_TEXTS);
    detect_by_text(t, &t->eom, EOM_TEXTS);
    detect_by_text(t, &t->fim_pre, FIM_PRE_TEXTS);
    detect_by_text(t, &t->fim_suf, FIM_SUF_TEXTS);
    detect_by_text(t, &t->fim_mid, FIM_MID_TEXTS);
    detect_by_text(t, &t->fim_pad, FIM_PAD_TEXTS);
    detect_by_text(t, &t->fim_rep, FIM_REP_TEXTS);
    detect_by_text(t, &t->fim_sep, FIM_SEP_TEXTS);

    /* control tokens whose text says "unused" */
    for (int32_t id = 0; id < n; id++) {
        if (!(t->attr[id] & ATTR_CONTROL) || (t->attr[id] & ATTR_UNUSED)) continue;
        size_t l;
        const char *s = tok_text(t, id, &l);
        const char *nul = memchr(s, 0, l);
        if (nul) l = (size_t)(nul - s);
        if (memmem(s, l, "unused", 6)) t->attr[id] |= ATTR_UNUSED;
    }

    /* end-of-generation set */
    set_eog(t, t->fim_pad);
    set_eog(t, t->fim_rep);
    set_eog(t, t->fim_sep);
    for (int i = 0; EOG_TEXTS[i]; i++) {
        int32_t id = lookup_z(t, EOG_TEXTS[i]);
        if (id < 0) continue;
        set_eog(t, id);
        t->attr[id] |= ATTR_CONTROL;
    }
    /* gpt-oss: always render these */
    static const char *const RENDER[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL};
    for (int i = 0; RENDER[i]; i++) {
        int32_t id = lookup_z(t, RENDER[i]);
        if (id >= 0) t->attr[id] = ATTR_USER_DEFINED;
    }
    set_eog(t, t->eos);
    set_eog(t, t->eot);
    set_eog(t, t->eom);
    /* o200k_harmony / solar-open: "<|end|>" is not EOG when <|return|>+<|call|>
     * or <|calls|>+<|flush|> are */
    {
        int32_t ret = lookup_z(t, "<|return|>"), call = lookup_z(t, "<|call|>"), calls = lookup_z(t, "<|calls|>");
        int32_t flush = lookup_z(t, "<|flush|>"), end = lookup_z(t, "<|end|>");
        bool has_call = get_eog(t, call) || get_eog(t, calls);
        if (get_eog(t, end) && has_call && (get_eog(t, ret) || get_eog(t, flush))) {
            clear_eog(t, end);
            t->attr[end] = ATTR_USER_DEFINED;
        }
    }
    /* gemma4 / paddleocr: "</s>" is not EOG when "<|tool_response>" is */
    {
        int32_t tr = lookup_z(t, "<|tool_response>"), s = lookup_z(t, "</s>");
        if (get_eog(t, tr) && get_eog(t, s)) {
            clear_eog(t, s);
            t->attr[s] = ATTR_NORMAL;
        }
    }
    return 0;
}

static int cmp_special(const void *pa, const void *pb, void *ctx) {
    const em_tokenizer *t = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    size_t la = t->off[a + 1] - t->off[a], lb = t->off[b + 1] - t->off[b];
    if (la != lb) return la > lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

static int special_cache(em_tokenizer *t, const em_gguf *g, em_err *err) {
    size_t cnt = 0;
    for (int32_t id = 0; id < t->n; id++)
        if (t->attr[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) cnt++;
    t->special = em_malloc_array(cnt ? cnt : 1, sizeof *t->special);
    if (!t->special) return em_fail(err, "out of memory");
    for (int32_t id = 0; id < t->n; id++)
        if (t->attr[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) t->special[t->n_special++] = id;
    /* llama.cpp: std::sort by length, longest first (equal lengths: by id here) */
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);

    /* per-model token attributes (general.name) */
    em_str name = {"", 0};
    if (em_gguf_get_str(g, "general.name", &name, true, err)) return -1;
    char lname[256];
    size_t ln = name.len < sizeof lname - 1 ? (size_t)name.len : sizeof lname - 1;
    for (size_t i = 0; i < ln; i++) {
        char c = name.ptr[i];
        lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lname[ln] = 0;
    if (memmem(lname, ln, "phi-3", 5) || memmem(lname, ln, "phi3", 4)) {
        for (size_t i = 0; i < t->n_special; i++) t->attr[t->special[i]] |= ATTR_RSTRIP;
        int32_t id = lookup_z(t, "</s>");
        if (id >= 0) t->attr[id] |= ATTR_RSTRIP;
        static const char *const NO_RSTRIP[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int i = 0; i < 3; i++)
            if ((id = lookup_z(t, NO_RSTRIP[i])) >= 0) t->attr[id] &= (uint16_t)~ATTR_RSTRIP;
    } else if (memmem(lname, ln, "modern-bert", 11)) {
        int32_t id = lookup_z(t, "[MASK]");
        if (id >= 0) t->attr[id] |= ATTR_LSTRIP;
    }
    return 0;
}

/* llama.cpp's token_to_byte: strtol of the two characters after "<0x". */
static uint8_t byte_of_token(const char *s, size_t l) {
    char buf[3] = {0, 0, 0};
    for (size_t i = 0; i < 2 && 3 + i < l; i++) buf[i] = s[3 + i];
    return (uint8_t)strtol(buf, NULL, 16);
}

static bool grow(char **buf, size_t *cap, size_t need, em_err *err) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need) {
        if (!em_mul_sz(c, 2, &c)) { em_fail(err, "out of memory"); return false; }
    }
    char *b = realloc(*buf, c);
    if (!b) { em_fail(err, "out of memory"); return false; }
    *buf = b;
    *cap = c;
    return true;
}

/* Makes room for need bytes of pieces. The pieces start in the region,
 * sized for the common case (no piece longer than its token's text); a
 * vocabulary with "[UNK_BYTE_..." pieces moves them to the heap. */
static bool pieces_grow(em_tokenizer *t, size_t *cap, size_t need, em_err *err) {
    if (need <= *cap) return true;
    if (need > UINT32_MAX) { em_fail(err, "rendered token pieces exceed 4 GiB"); return false; }
    if (t->pieces_owned) return grow(&t->pieces, cap, need, err);
    size_t c = *cap < 4096 ? 4096 : *cap;
    while (c < need) c *= 2;
    char *b = malloc(c);
    if (!b) { em_fail(err, "out of memory"); return false; }
    memcpy(b, t->pieces, *cap);
    t->pieces = b;
    t->pieces_owned = true;
    *cap = c;
    return true;
}

/* byte-level alphabet: code point (< 324) -> byte, or -1 */
static int16_t BL_BYTE[324];
static pthread_once_t bl_once = PTHREAD_ONCE_INIT;
static void bl_init(void) {
    for (uint32_t cp = 0; cp < 324; cp++) BL_BYTE[cp] = (int16_t)em_unicode_to_byte(cp);
}

/* Appends the piece of token id (llama.cpp token_to_piece with special =
 * true, which is what its cache holds) to t->pieces. */
static int build_piece(em_tokenizer *t, int32_t id, size_t *used, size_t *cap, em_err *err) {
    size_t l;
    const char *s = tok_text(t, id, &l);
    uint16_t a = t->attr[id];
    size_t at = *used;
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        if (!pieces_grow(t, cap, at + l, err)) return -1;
        memcpy(t->pieces + at, s, l);
        at += l;
    } else if (a & ATTR_NORMAL) {
        /* SPM pieces are never longer than the text; neither are BPE ones
         * until a character outside the byte-level alphabet shows up (each
         * alphabet character is 1 or 2 bytes and becomes 1 byte) */
        if (!pieces_grow(t, cap, at + l, err)) return -1;
        if (t->kind == KIND_SPM) { /* "▁" -> " " */
            for (size_t i = 0; i < l;) {
                if (i + 3 <= l && memcmp(s + i, "\xe2\x96\x81", 3) == 0) { t->pieces[at++] = ' '; i += 3; }
                else t->pieces[at++] = s[i++];
            }
        } else { /* byte-level decoding (llama_decode_text) */
            for (size_t i = 0; i < l;) {
                uint8_t c0 = (uint8_t)s[i];
                uint32_t cp;
                size_t adv;
                if (c0 < 0x80) {
                    cp = c0;
                    adv = 1;
                } else if (c0 >= 0xc2 && c0 < 0xe0 && i + 1 < l && ((uint8_t)s[i + 1] & 0xc0) == 0x80) {
                    cp = ((uint32_t)(c0 & 0x1f) << 6) | ((uint8_t)s[i + 1] & 0x3f);
                    adv = 2;
                } else {
                    cp = em_utf8_decode((const uint8_t *)s + i, l - i, &adv);
                }
                i += adv;
                int b = cp < 324 ? BL_BYTE[cp] : -1;
                if (b >= 0) {
                    t->pieces[at++] = (char)b;
                } else { /* "[UNK_BYTE_0x" <hex of the char> <token text> "]" */
                    char u[4];
                    size_t ul = em_utf8_encode(cp, u), need;
                    if (!em_add_sz(at, 13 + 2 * ul, &need) || !em_add_sz(need, l, &need) || need - *used > MAX_PIECE)
                        return em_fail(err, "token %d: rendered piece too long", id);
                    /* and room for the rest of the text at one byte a byte */
                    if (!em_add_sz(need, l - i, &need) || !pieces_grow(t, cap, need, err)) return -1;
                    memcpy(t->pieces + at, "[UNK_BYTE_0x", 12);
                    at += 12;
                    for (size_t k = 0; k < ul; k++) {
                        snprintf(t->pieces + at, 3, "%02x", (uint8_t)u[k]);
                        at += 2;
                    }
                    memcpy(t->pieces + at, s, l);
                    at += l;
                    t->pieces[at++] = ']';
                }
            }
        }
    } else if (a & ATTR_BYTE) {
        if (!pieces_grow(t, cap, at + 1, err)) return -1;
        t->pieces[at++] = (char)byte_of_token(s, l);
    }
    *used = at;
    return 0;
}

/* t->pieces starts as piece_cap bytes in the region. */
static int build_pieces(em_tokenizer *t, size_t piece_cap, em_err *err) {
    pthread_once(&bl_once, bl_init);
    size_t used = 0, cap = piece_cap;
    for (int32_t id = 0; id < t->n; id++) {
        t->poff[id] = (uint32_t)used;
        if (build_piece(t, id, &used, &cap, err)) return -1;
    }
    t->poff[t->n] = (uint32_t)used;
    return 0;
}

static uint64_t pair_key(uint64_t ha, uint64_t hb) { return mix64(ha ^ (hb * 0x9e3779b97f4a7c15ull + 1)); }

/* Splits every merge "left right" (at the first space after position 0, as
 * llama.cpp does), checks that both sides are tokens, copies the strings
 * and indexes them by the pair of string hashes (t->mt, t->mtext and
 * t->moff are allocated, zeroed, in the region). Duplicates are kept: a
 * query finds the first (lowest rank) one, since linear probing places
 * later insertions of a key after earlier ones. */
static int load_merges(em_tokenizer *t, const em_gguf_kv *mk, em_err *err) {
    const int32_t nm = t->n_merges;
    /* Merges are split and hashed PREFETCH_AHEAD ahead of being checked and
     * inserted, with their table slots prefetched (random accesses into a
     * table larger than the caches dominate otherwise). Both sides must be
     * tokens: checked with the Bloom filter, so that a merge naming a
     * string that is not a token is refused here with a probability of ~99%
     * (llama.cpp does not check at all); one that slips through can never
     * apply, since merge_rank() compares the texts. */
    struct pend { uint64_t ha, hb, key; size_t l1; } q[PREFETCH_AHEAD];
    uint32_t at = 0;
    for (int32_t k = 0; k < nm + PREFETCH_AHEAD; k++) {
        int32_t i = k - PREFETCH_AHEAD; /* checked and inserted now; its ring slot is then reused for k */
        if (i >= 0) {
            const struct pend *p = &q[i % PREFETCH_AHEAD];
            em_str m = mk->arr_strs[i];
            if (p->l1 == SIZE_MAX) return em_fail(err, "tokenizer.ggml.merges[%d]: no space separating the pair", i);
            if (!bloom_has(t, p->ha) || !bloom_has(t, p->hb))
                return em_fail(err, "tokenizer.ggml.merges[%d] '%.*s' references a token not in the vocabulary", i,
                               (int)(m.len > 200 ? 200 : m.len), m.ptr);
            t->moff[i] = at;
            memcpy(t->mtext + at, m.ptr, m.len);
            at += (uint32_t)m.len; /* the total was checked to fit */
            size_t h = p->key & t->m_mask;
            while (t->mt[h]) h = (h + 1) & t->m_mask;
            t->mt[h] = slot_make(p->key, (uint32_t)i);
        }
        if (k < nm) {
            em_str m = mk->arr_strs[k];
            struct pend *p = &q[k % PREFETCH_AHEAD];
            const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
            if (!sp) {
                p->l1 = SIZE_MAX; /* reported in order, above */
            } else {
                p->l1 = (size_t)(sp - m.ptr);
                p->ha = hash_bytes(m.ptr, p->l1);
                p->hb = hash_bytes(sp + 1, m.len - p->l1 - 1);
                p->key = pair_key(p->ha, p->hb);
                __builtin_prefetch(bloom_block(t, p->ha));
                __builtin_prefetch(bloom_block(t, p->hb));
                __builtin_prefetch(&t->mt[p->key & t->m_mask], 1);
            }
        }
    }
    t->moff[nm] = at;
    return 0;
}

/* Rank of the merge of tokens a and b, or -1. */
static int32_t merge_rank(const em_tokenizer *t, int32_t a, int32_t b) {
    size_t la, lb;
    const char *sa = tok_text(t, a, &la), *sb = tok_text(t, b, &lb);
    const uint64_t key = pair_key(t->thash[a], t->thash[b]);
    const uint64_t want = (uint64_t)(uint32_t)(a + 1) << 32 | (uint32_t)(b + 1);
    for (size_t h = key & t->m_mask;; h = (h + 1) & t->m_mask) {
        uint32_t e = t->mt[h];
        if (!e) return -1;
        if (!slot_tag_eq(e, key)) continue;
        int32_t r = slot_val(e);
        uint64_t known = __atomic_load_n(&t->mpair[r], __ATOMIC_RELAXED);
        if (known) {
            if (known == want) return r;
            continue;
        }
        const char *m = t->mtext + t->moff[r];
        size_t ml = t->moff[r + 1] - t->moff[r];
        /* same strings, split at the same (first) space after position 0 */
        if (ml == la + 1 + lb && m[la] == ' ' && memcmp(m, sa, la) == 0 && memcmp(m + la + 1, sb, lb) == 0 &&
            (la < 2 || !memchr(m + 1, ' ', la - 1))) {
            __atomic_store_n(&t->mpair[r], want, __ATOMIC_RELAXED);
            return r;
        }
    }
}

/* *id = the token whose text is text(a) followed by text(b), the merge of
 * rank `rank`, or -1 (what llama.cpp finds for the merged symbol). buf is
 * scratch. 0 or -1 + err. */
static int merge_result(const em_tokenizer *t, int32_t rank, int32_t a, int32_t b, char **buf, size_t *cap,
                        int32_t *id, em_err *err) {
    int32_t v = __atomic_load_n(&t->mres[rank], __ATOMIC_RELAXED);
    if (v) {
        *id = v - 2;
        return 0;
    }
    size_t la, lb, n;
    const char *sa = tok_text(t, a, &la), *sb = tok_text(t, b, &lb);
    if (!em_add_sz(la, lb, &n)) return em_fail(err, "token too long");
    if (!grow(buf, cap, n, err)) return -1;
    memcpy(*buf, sa, la);
    memcpy(*buf + la, sb, lb);
    *id = lookup(t, *buf, n);
    __atomic_store_n(&t->mres[rank], *id + 2, __ATOMIC_RELAXED);
    return 0;
}

/* Bump allocation in the region: 64-byte aligned pieces of a plan that is
 * first sized (base NULL), then carved. */
typedef struct {
    char *base;
    size_t used;
    bool ok;
} carve;

static void *carve_take(carve *c, size_t n, size_t size) {
    size_t bytes, at = (c->used + 63) & ~(size_t)63;
    if (!c->ok || at < c->used || !em_mul_sz(n, size, &bytes) || !em_add_sz(at, bytes, &c->used)) {
        c->ok = false;
        return NULL;
    }
    return c->base ? c->base + at : NULL;
}

/* Lays out every large table; with base NULL only sizes the region. */
static void carve_all(em_tokenizer *t, carve *c, size_t text, size_t ht_cap, size_t mtext, size_t m_cap,
                      size_t bloom_blocks) {
    size_t n = (size_t)t->n;
    t->arena = carve_take(c, text ? text : 1, 1);
    t->off = carve_take(c, n + 1, sizeof *t->off);
    t->score = carve_take(c, n, sizeof *t->score);
    t->attr = carve_take(c, n, sizeof *t->attr);
    t->eog = carve_take(c, n / 8 + 1, 1);
    t->ht = carve_take(c, ht_cap, sizeof *t->ht);
    t->poff = carve_take(c, n + 1, sizeof *t->poff);
    t->pieces = carve_take(c, text ? text : 1, 1);
    if (t->kind == KIND_BPE) {
        t->mt = carve_take(c, m_cap, sizeof *t->mt);
        t->moff = carve_take(c, (size_t)t->n_merges + 1, sizeof *t->moff);
        t->mtext = carve_take(c, mtext ? mtext : 1, 1);
        t->bloom = carve_take(c, 8 * bloom_blocks, sizeof *t->bloom);
        t->thash = carve_take(c, n, sizeof *t->thash);
        t->mres = carve_take(c, t->n_merges ? (size_t)t->n_merges : 1, sizeof *t->mres);
        t->mpair = carve_take(c, t->n_merges ? (size_t)t->n_merges : 1, sizeof *t->mpair);
    }
}

/* Validates the vocabulary arrays (and sizes the merges), maps the region,
 * copies the token texts and indexes them, reads scores and types. */
static int load_vocab(em_tokenizer *t, const em_gguf *g, const em_gguf_kv *mk, em_err *err) {
    const em_gguf_kv *tk, *sk = NULL, *tt = NULL;
    if (em_gguf_get_arr(g, "tokenizer.ggml.tokens", EM_GGUF_STRING, &tk, false, err)) return -1;
    if (tk->arr_n == 0) return em_fail(err, "tokenizer.ggml.tokens is empty");
    if (tk->arr_n > SLOT_MAX + 1)
        return em_fail(err, "tokenizer.ggml.tokens: %llu tokens (at most %u)", (unsigned long long)tk->arr_n,
                       SLOT_MAX + 1);
    int32_t n = (int32_t)tk->arr_n;
    t->n = n;

    const em_gguf_kv *kv = em_gguf_find(g, "tokenizer.ggml.scores");
    if (kv) {
        if (kv->type != EM_GGUF_ARRAY || (kv->arr_type != EM_GGUF_F32 && kv->arr_type != EM_GGUF_I32))
            return em_fail(err, "tokenizer.ggml.scores must be an array of f32 or i32");
        if (kv->arr_n < (uint64_t)n)
            return em_fail(err, "tokenizer.ggml.scores has %llu entries for %d tokens", (unsigned long long)kv->arr_n,
                           n);
        sk = kv;
    }
    kv = em_gguf_find(g, "tokenizer.ggml.token_type");
    if (kv) {
        if (kv->type != EM_GGUF_ARRAY || kv->arr_type != EM_GGUF_I32)
            return em_fail(err, "tokenizer.ggml.token_type must be an array of i32");
        if (kv->arr_n < (uint64_t)n)
            return em_fail(err, "tokenizer.ggml.token_type has %llu entries for %d tokens",
                           (unsigned long long)kv->arr_n, n);
        tt = kv;
    }

    /* texts: empty tokens become "[EMPTY_<id>]" like in llama.cpp */
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        uint64_t l = tk->arr_strs[i].len ? tk->arr_strs[i].len : 20;
        if (!em_add_sz(total, (size_t)l, &total) || total > UINT32_MAX)
            return em_fail(err, "tokenizer.ggml.tokens: more than 4 GiB of text");
    }
    size_t ht_cap = 16, m_cap = 16, mtotal = 0;
    while (ht_cap < (size_t)n * 2) ht_cap *= 2; /* load factor <= 1/2 */
    if (mk) {
        if (mk->arr_n > SLOT_MAX + 1)
            return em_fail(err, "tokenizer.ggml.merges: %llu merges (at most %u)", (unsigned long long)mk->arr_n,
                           SLOT_MAX + 1);
        t->n_merges = (int32_t)mk->arr_n;
        while (m_cap < (size_t)t->n_merges + (size_t)t->n_merges / 2) m_cap *= 2; /* load factor <= 2/3 */
        for (int32_t i = 0; i < t->n_merges; i++)
            if (!em_add_sz(mtotal, (size_t)mk->arr_strs[i].len, &mtotal) || mtotal > UINT32_MAX)
                return em_fail(err, "tokenizer.ggml.merges: more than 4 GiB of text");
    }
    carve plan = {NULL, 0, true};
    size_t bloom_blocks = 1;
    while (bloom_blocks * 512 < (size_t)n * 16) bloom_blocks *= 2;
    carve_all(t, &plan, total, ht_cap, mtotal, m_cap, bloom_blocks);
    const size_t huge = 2u << 20; /* transparent huge page size on x86-64 and arm64 (4K pages) */
    size_t len;
    if (!plan.ok || !em_add_sz(plan.used, huge, &len)) return em_fail(err, "tokenizer tables too large");
    void *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return em_fail(err, "out of memory for the tokenizer tables (%zu bytes)", len);
    t->region = r;
    t->region_len = len;
    char *base = (char *)(((uintptr_t)r + huge - 1) & ~(uintptr_t)(huge - 1));
#ifdef MADV_HUGEPAGE
    madvise(base, (len - (size_t)(base - (char *)r)) & ~(huge - 1), MADV_HUGEPAGE); /* a hint: may fail */
#endif
    carve c = {base, 0, true};
    carve_all(t, &c, total, ht_cap, mtotal, m_cap, bloom_blocks);
    t->ht_mask = ht_cap - 1;
    t->bloom_mask = bloom_blocks - 1;
    t->m_mask = m_cap - 1;

    size_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        em_str s = tk->arr_strs[i];
        t->off[i] = (uint32_t)at;
        if (s.len == 0) at += (size_t)snprintf(t->arena + at, 20, "[EMPTY_%d]", i);
        else { memcpy(t->arena + at, s.ptr, s.len); at += s.len; }
    }
    t->off[n] = (uint32_t)at;
    /* Index the texts. The table is larger than the caches and the slots
     * are random, so the slot of a token PREFETCH_AHEAD places ahead is
     * fetched while this one is inserted. */
    uint64_t hq[PREFETCH_AHEAD];
    for (int32_t k = 0; k < n + PREFETCH_AHEAD; k++) {
        int32_t i = k - PREFETCH_AHEAD;
        if (i >= 0) {
            uint64_t hx = hq[i % PREFETCH_AHEAD];
            if (t->bloom) {
                bloom_add(t, hx);
                t->thash[i] = hx;
            }
            size_t l;
            const char *x = tok_text(t, i, &l);
            for (size_t h = hx & t->ht_mask;; h = (h + 1) & t->ht_mask) {
                uint32_t e = t->ht[h];
                if (!e) { t->ht[h] = slot_make(hx, (uint32_t)i); break; }
                if (!slot_tag_eq(e, hx)) continue;
                size_t ol;
                const char *oy = tok_text(t, slot_val(e), &ol);
                if (ol == l && memcmp(oy, x, l) == 0)
                    return em_fail(err, "duplicate token in vocabulary: '%.*s' has ids %d and %d",
                                   (int)(l > 200 ? 200 : l), x, slot_val(e), i);
            }
        }
        if (k < n) {
            size_t l;
            const char *x = tok_text(t, k, &l);
            hq[k % PREFETCH_AHEAD] = hash_bytes(x, l);
            __builtin_prefetch(&t->ht[hq[k % PREFETCH_AHEAD] & t->ht_mask], 1);
            if (t->bloom) __builtin_prefetch(bloom_block(t, hq[k % PREFETCH_AHEAD]), 1);
        }
    }
    for (int32_t i = 0; i < n; i++) {
        if (sk && sk->arr_type == EM_GGUF_F32) memcpy(&t->score[i], sk->arr_data + 4 * (size_t)i, 4);
        else if (sk) { int32_t v; memcpy(&v, sk->arr_data + 4 * (size_t)i, 4); t->score[i] = (float)v; }
        else t->score[i] = 0.0f;
        uint16_t a = ATTR_NORMAL;
        if (tt) {
            int32_t v;
            memcpy(&v, tt->arr_data + 4 * (size_t)i, 4);
            switch (v) {
            case EM_TOKEN_NORMAL: a = ATTR_NORMAL; break;
            case EM_TOKEN_UNKNOWN: a = ATTR_UNKNOWN; break;
            case EM_TOKEN_CONTROL: a = ATTR_CONTROL; break;
            case EM_TOKEN_USER_DEFINED: a = ATTR_USER_DEFINED; break;
            case EM_TOKEN_UNUSED: a = ATTR_UNUSED; break;
            case EM_TOKEN_BYTE: a = ATTR_BYTE; break;
            default: a = 0; break; /* undefined */
            }
        }
        t->attr[i] = a;
    }
    return 0;
}

em_tokenizer *em_tokenizer_load(const em_gguf *g, em_err *err) {
    em_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { em_fail(err, "out of memory"); return NULL; }
    em_str model, pre = {"", 0};
    if (em_gguf_get_str(g, "tokenizer.ggml.model", &model, false, err) ||
        em_gguf_get_str(g, "tokenizer.ggml.pre", &pre, true, err))
        goto fail;
    const em_gguf_kv *merges = NULL;
    const pre_def *pd = NULL;
    if (em_str_eq(model, "llama")) {
        t->kind = KIND_SPM;
        t->bos = 1; t->eos = 2; t->unk = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
    } else if (em_str_eq(model, "gpt2")) {
        t->kind = KIND_BPE;
        if (em_gguf_get_arr(g, "tokenizer.ggml.merges", EM_GGUF_STRING, &merges, false, err)) goto fail;
        t->bos = 11; t->eos = 11; t->unk = -1;
        pd = pre.len ? find_pre(pre) : &PRE_DEFS[0];
        if (!pd) {
            em_fail(err, "unsupported pre-tokenizer type tokenizer.ggml.pre = '%.*s'", (int)(pre.len > 100 ? 100 : pre.len),
                    pre.ptr);
            goto fail;
        }
        t->ignore_merges = pd->ignore_merges;
        t->add_bos = pd->add_bos;
        t->clean_spaces = pd->clean_spaces;
    } else {
        em_fail(err, "unsupported tokenizer model tokenizer.ggml.model = '%.*s'", (int)(model.len > 100 ? 100 : model.len),
                model.ptr);
        goto fail;
    }
    t->eot = t->eom = t->sep = t->pad = t->mask = -1;
    t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = -1;
    if (em_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, true, err)) goto fail;

    if (load_vocab(t, g, merges, err) || special_setup(t, g, err) || special_cache(t, g, err) ||
        build_pieces(t, t->off[t->n] ? t->off[t->n] : 1, err))
        goto fail;

    for (int b = 0; b < 256; b++) {
        char hex[7], raw = (char)b, bl[2];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t id = lookup_z(t, hex);
        t->byte_tok[b] = id >= 0 ? id : lookup(t, &raw, 1);
        t->raw_tok[b] = lookup(t, &raw, 1);
        t->bl_tok[b] = lookup(t, bl, em_byte_to_unicode((uint8_t)b, bl));
    }
    if (t->kind == KIND_BPE) {
        if (load_merges(t, merges, err)) goto fail;
        if (!(t->pre = em_pretok_new(pd->kind, err))) goto fail;
    }
    return t;
fail:
    em_tokenizer_free(t);
    return NULL;
}

void em_tokenizer_free(em_tokenizer *t) {
    if (!t) return;
    if (t->pieces_owned) free(t->pieces);
    if (t->region) munmap(t->region, t->region_len);
    free(t->special);
    em_pretok_free(t->pre);
    free(t);
}

int32_t em_tokenizer_n_vocab(const em_tokenizer *t) { return t->n; }
int32_t em_tokenizer_bos(const em_tokenizer *t) { return t->bos; }
int32_t em_tokenizer_eos(const em_tokenizer *t) { return t->eos; }
bool em_tokenizer_add_bos(const em_tokenizer *t) { return t->add_bos; }
bool em_tokenizer_is_eog(const em_tokenizer *t, int32_t id) { return get_eog(t, id); }

int em_tokenizer_token_type(const em_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n) return -1;
    uint16_t a = t->attr[id];
    if (a & ATTR_CONTROL) return EM_TOKEN_CONTROL;
    if (a & ATTR_USER_DEFINED) return EM_TOKEN_USER_DEFINED;
    if (a & ATTR_UNKNOWN) return EM_TOKEN_UNKNOWN;
    if (a & ATTR_BYTE) return EM_TOKEN_BYTE;
    if (a & ATTR_UNUSED) return EM_TOKEN_UNUSED;
    if (a & ATTR_NORMAL) return EM_TOKEN_NORMAL;
    return EM_TOKEN_UNDEFINED;
}

/* ------------------------------------------------- special partitioning */

typedef struct {
    int32_t tok; /* >= 0: a special token; -1: raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct {
    frag *v;
    size_t n, cap;
} fvec;

static int fvec_push(fvec *f, int32_t tok, size_t off, size_t len, em_err *err) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16, bytes;
        if (!em_mul_sz(cap, sizeof *f->v, &bytes)) return em_fail(err, "too many fragments");
        frag *v = realloc(f->v, bytes);
        if (!v) return em_fail(err, "out of memory");
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n].tok = tok;
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->n++;
    return 0;
}

/* llama.cpp's tokenizer_st_partition: for each special token, longest
 * first, split every raw fragment at each of its occurrences, honouring the
 * token's lstrip / rstrip attributes. Control and unknown tokens take part
 * only with parse_special; user-defined tokens always do. */
static int partition(const em_tokenizer *t, const char *text, fvec *fr, bool parse_special, em_err *err) {
    fvec nf = {0};
    for (size_t si = 0; si < t->n_special; si++) {
        int32_t id = t->special[si];
        uint16_t a = t->attr[id];
        if (!parse_special && (a & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        size_t sl;
        const char *st = tok_text(t, id, &sl);
        bool found = false;
        for (size_t i = 0; i < fr->n && !found; i++)
            if (fr->v[i].tok < 0 && memmem(text + fr->v[i].off, fr->v[i].len, st, sl)) found = true;
        if (!found) continue;
        nf.n = 0;
        for (size_t i = 0; i < fr->n; i++) {
            frag f = fr->v[i];
            if (f.tok >= 0) {
                if (fvec_push(&nf, f.tok, 0, 0, err)) goto fail;
                continue;
            }
            size_t base = f.off, blen = f.len;
            for (;;) {
                const char *m = memmem(text + base, blen, st, sl);
                if (!m) {
                    if (blen > 0 && fvec_push(&nf, -1, base, blen, err)) goto fail;
                    break;
                }
                size_t mo = (size_t)(m - text);
                if (mo > base) {
                    size_t ll = mo - base;
                    if (a & ATTR_LSTRIP)
                        while (ll > 0 && is_space_c(text[base + ll - 1])) ll--;
                    if (ll > 0 && fvec_push(&nf, -1, base, ll, err)) goto fail;
                }
                if (fvec_push(&nf, id, 0, 0, err)) goto fail;
                size_t ro = mo + sl, end = base + blen;
                if (ro >= end) break;
                size_t rl = end - ro;
                if (a & ATTR_RSTRIP)
                    while (rl > 0 && is_space_c(text[ro])) { ro++; rl--; }
                base = ro;
                blen = rl;
            }
        }
        fvec tmp = *fr;
        *fr = nf;
        nf = tmp;
    }
    free(nf.v);
    return 0;
fail:
    free(nf.v);
    return -1;
}

/* ------------------------------------------------------------------ SPM */

typedef struct {
    int32_t prev, next;
    size_t start, n;
} sym;

typedef struct {
    float score;
    int32_t left, right;
    size_t size;
} spm_bigram;

typedef struct {
    spm_bigram *v;
    size_t n, cap;
} spm_heap;

/* llama.cpp's queue order: highest score first, then leftmost */
static bool spm_before(const spm_bigram *a, const spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int spm_push(spm_heap *h, spm_bigram x, em_err *err) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64, bytes;
        if (!em_mul_sz(cap, sizeof *h->v, &bytes)) return em_fail(err, "text too long");
        spm_bigram *v = realloc(h->v, bytes);
        if (!v) return em_fail(err, "out of memory");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_before(&x, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
    return 0;
}

static spm_bigram spm_pop(spm_heap *h) {
    spm_bigram top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && spm_before(&h->v[c + 1], &h->v[c])) c++;
        if (!spm_before(&h->v[c], &x)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

static int spm_try_add(const em_tokenizer *t, const char *e, sym *sy, spm_heap *h, int32_t l, int32_t r, em_err *err) {
    if (l < 0 || r < 0) return 0;
    size_t size = sy[l].n + sy[r].n;
    int32_t id = lookup(t, e + sy[l].start, size);
    if (id < 0) return 0;
    spm_bigram b = {t->score[id], l, r, size};
    return spm_push(h, b, err);
}

/* llm_tokenizer_spm_session::tokenize on one raw fragment; spaces are
 * escaped to U+2581, with a leading one when prefix. */
static int spm_fragment(const em_tokenizer *t, const char *s, size_t len, bool prefix, ivec *out, em_err *err) {
    size_t nsp = 0, elen;
    for (size_t i = 0; i < len; i++) nsp += s[i] == ' ';
    if (!em_mul_sz(nsp, 2, &elen) || !em_add_sz(elen, len, &elen) || !em_add_sz(elen, prefix ? 3 : 0, &elen) ||
        elen >= (size_t)INT32_MAX)
        return em_fail(err, "text too long");
    if (elen == 0) return 0;
    char *e = malloc(elen);
    sym *sy = em_malloc_array(elen, sizeof *sy);
    spm_heap h = {0};
    int rc = 0;
    if (!e || !sy) { rc = em_fail(err, "out of memory"); goto done; }
    size_t at = 0;
    if (prefix) { memcpy(e, "\xe2\x96\x81", 3); at = 3; }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') { memcpy(e + at, "\xe2\x96\x81", 3); at += 3; }
        else e[at++] = s[i];
    }
    int32_t ns = 0;
    for (size_t o = 0; o < elen; ns++) {
        size_t l = em_utf8_len_lead((uint8_t)e[o]);
        if (l > elen - o) l = elen - o;
        sy[ns].start = o;
        sy[ns].n = l;
        o += l;
        sy[ns].prev = ns - 1;
        sy[ns].next = o == elen ? -1 : ns + 1;
    }
    for (int32_t i = 1; i < ns && !rc; i++) rc = spm_try_add(t, e, sy, &h, i - 1, i, err);
    while (h.n && !rc) {
        spm_bigram b = spm_pop(&h);
        sym *L = &sy[b.left], *R = &sy[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = b.left;
        rc = spm_try_add(t, e, sy, &h, L->prev, b.left, err);
        if (!rc) rc = spm_try_add(t, e, sy, &h, b.left, L->next, err);
    }
    for (int32_t i = 0; i != -1 && !rc; i = sy[i].next) {
        int32_t id = lookup(t, e + sy[i].start, sy[i].n);
        if (id >= 0) { rc = ivec_push(out, id, err); continue; }
        /* no token: byte fallback (llama.cpp aborts if a byte has no token;
         * we use the unknown token then) */
        for (size_t k = 0; k < sy[i].n && !rc; k++) {
            int32_t bt = t->byte_tok[(uint8_t)e[sy[i].start + k]];
            if (bt < 0) bt = t->unk;
            if (bt >= 0) rc = ivec_push(out, bt, err);
        }
    }
done:
    free(e);
    free(sy);
    free(h.v);
    return rc;
}

/* ------------------------------------------------------------------ BPE */

typedef struct {
    int32_t rank, left, right;
    size_t size;
} bpe_bigram;

typedef struct {
    bpe_bigram *v;
    size_t n, cap;
} bpe_heap;

/* lowest rank first, then leftmost */
static bool bpe_before(const bpe_bigram *a, const bpe_bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int bpe_push(bpe_heap *h, bpe_bigram x, em_err *err) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64, bytes;
        if (!em_mul_sz(cap, sizeof *h->v, &bytes)) return em_fail(err, "text too long");
        bpe_bigram *v = realloc(h->v, bytes);
        if (!v) return em_fail(err, "out of memory");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bpe_before(&x, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
    return 0;
}

static bpe_bigram bpe_pop(bpe_heap *h) {
    bpe_bigram top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bpe_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bpe_before(&h->v[c], &x)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

typedef struct {
    const em_tokenizer *t;
    ivec *out;
    sym *sy;
    int32_t *sid;   /* token id of each symbol's text, -1 if none */
    size_t sy_cap;
    char *enc;      /* byte-level encoded word */
    size_t enc_cap;
    char *cat;      /* scratch for merged token texts */
    size_t cat_cap;
    bpe_heap h;
} bpe_ctx;

static int bpe_try_add(bpe_ctx *c, int32_t l, int32_t r, em_err *err) {
    if (l < 0 || r < 0 || c->sid[l] < 0 || c->sid[r] < 0) return 0;
    int32_t rank = merge_rank(c->t, c->sid[l], c->sid[r]);
    if (rank < 0) return 0;
    bpe_bigram b = {rank, l, r, c->sy[l].n + c->sy[r].n};
    return bpe_push(&c->h, b, err);
}

/* One pre-tokenized word: byte-level encode, merge by rank, emit. Symbols
 * start as one per byte (each byte-level char is one UTF-8 character). */
static int bpe_word(void *ud, const char *w, size_t len, em_err *err) {
    bpe_ctx *c = ud;
    const em_tokenizer *t = c->t;
    if (len == 0) return 0;
    if (len >= (size_t)INT32_MAX / 2) return em_fail(err, "word too long");
    if (len > c->sy_cap) {
        size_t b1, b2;
        if (!em_mul_sz(len, sizeof *c->sy, &b1) || !em_mul_sz(len, sizeof *c->sid, &b2))
            return em_fail(err, "word too long");
        sym *sy = realloc(c->sy, b1);
        if (sy) c->sy = sy;
        int32_t *sid = realloc(c->sid, b2);
        if (sid) c->sid = sid;
        if (!sy || !sid) return em_fail(err, "out of memory");
        c->sy_cap = len;
    }
    if (t->ignore_merges) {
        if (!grow(&c->enc, &c->enc_cap, 2 * len, err)) return -1;
        size_t el = 0;
        for (size_t i = 0; i < len; i++) el += em_byte_to_unicode((uint8_t)w[i], c->enc + el);
        int32_t id = lookup(t, c->enc, el);
        if (id >= 0) return ivec_push(c->out, id, err);
    }
    int32_t n = (int32_t)len;
    for (int32_t i = 0; i < n; i++) {
        c->sy[i].start = (size_t)i;
        c->sy[i].n = 1;
        c->sy[i].prev = i - 1;
        c->sy[i].next = i + 1 == n ? -1 : i + 1;
        c->sid[i] = t->bl_tok[(uint8_t)w[i]];
    }
    c->h.n = 0;
    for (int32_t i = 1; i < n; i++)
        if (bpe_try_add(c, i - 1, i, err)) return -1;
    while (c->h.n) {
        bpe_bigram b = bpe_pop(&c->h);
        sym *L = &c->sy[b.left], *R = &c->sy[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) c->sy[R->next].prev = b.left;
        if (merge_result(t, b.rank, c->sid[b.left], c->sid[b.right], &c->cat, &c->cat_cap, &c->sid[b.left], err))
            return -1;
        if (bpe_try_add(c, L->prev, b.left, err) || bpe_try_add(c, b.left, L->next, err)) return -1;
    }
    for (int32_t i = 0; i != -1; i = c->sy[i].next) {
        if (c->sid[i] >= 0) {
            if (ivec_push(c->out, c->sid[i], err)) return -1;
            continue;
        }
        /* not a token: llama.cpp looks up each byte of the encoded text */
        for (size_t k = 0; k < c->sy[i].n; k++) {
            char bl[2];
            size_t bn = em_byte_to_unicode((uint8_t)w[c->sy[i].start + k], bl);
            for (size_t j = 0; j < bn; j++) {
                int32_t id = t->raw_tok[(uint8_t)bl[j]];
                if (id >= 0 && ivec_push(c->out, id, err)) return -1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------- tokenize */

int em_tokenize(const em_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                int32_t **ids, size_t *n_ids, em_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return em_fail(err, "em_tokenize: NULL text");
    fvec fr = {0};
    ivec out = {0};
    bpe_ctx bc = {.t = t, .out = &out};
    int rc = 0;
    if (len > 0 && (rc = fvec_push(&fr, -1, 0, len, err))) goto done;
    if ((rc = partition(t, text, &fr, parse_special, err))) goto done;

    if (add_special && t->add_bos && (rc = ivec_push(&out, t->bos, err))) goto done;
    bool prev_special = true; /* SPM: space prefix on the first text and after specials */
    for (size_t i = 0; i < fr.n && !rc; i++) {
        frag f = fr.v[i];
        if (f.tok >= 0) {
            rc = ivec_push(&out, f.tok, err);
            prev_special = true;
        } else if (t->kind == KIND_SPM) {
            rc = spm_fragment(t, text + f.off, f.len, t->add_space_prefix && prev_special, &out, err);
            prev_special = false;
        } else {
            rc = em_pretok_split(t->pre, text + f.off, f.len, bpe_word, &bc, err);
        }
    }
    if (!rc && add_special && t->add_eos) rc = ivec_push(&out, t->eos, err);
    if (!rc && !out.v && !(out.v = malloc(sizeof *out.v))) rc = em_fail(err, "out of memory");
done:
    free(fr.v);
    free(bc.sy);
    free(bc.sid);
    free(bc.enc);
    free(bc.cat);
    free(bc.h.v);
    if (rc) {
        free(out.v);
        return -1;
    }
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}

/* ----------------------------------------------------------- detokenize */

static const char *piece_of(const em_tokenizer *t, int32_t id, bool render_special, size_t *len) {
    if (!render_special && (t->attr[id] & (ATTR_UNKNOWN | ATTR_CONTROL))) {
        *len = 0;
        return "";
    }
    *len = t->poff[id + 1] - t->poff[id];
    return t->pieces + t->poff[id];
}

int em_token_to_piece(const em_tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap) {
    if (id < 0 || id >= t->n) return -1;
    size_t l;
    const char *p = piece_of(t, id, render_special, &l);
    if (l > (size_t)INT32_MAX) return -1;
    if (buf) memcpy(buf, p, l < cap ? l : cap);
    return (int)l;
}

/* llama.cpp's clean_up_tokenization_spaces passes, done in place exactly
 * as llama_vocab::impl::detokenize does them. */
static size_t clean_spaces(char *text, size_t total) {
    size_t total1 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total1; ++i) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        text[total++] = x;
    }
    size_t total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; ++i) {
        char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    size_t total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; ++i) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') total--;
            else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
            }
        }
        text[total++] = x;
    }
    return total;
}

char *em_detokenize(const em_tokenizer *t, const int32_t *ids, size_t n, bool render_special,
                    bool remove_leading_space, size_t *len, em_err *err) {
    if (len) *len = 0;
    if (!ids && n) { em_fail(err, "em_detokenize: NULL ids"); return NULL; }
    size_t total = 0, l;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n) {
            em_fail(err, "em_detokenize: invalid token id %d at position %zu", ids[i], i);
            return NULL;
        }
        piece_of(t, ids[i], render_special, &l);
        if (!em_add_sz(total, l, &total)) { em_fail(err, "em_detokenize: text too long"); return NULL; }
    }
    size_t bytes;
    if (!em_add_sz(total, 1, &bytes)) { em_fail(err, "em_detokenize: text too long"); return NULL; }
    char *s = malloc(bytes);
    if (!s) { em_fail(err, "out of memory"); return NULL; }
    bool remove_space = t->add_space_prefix && remove_leading_space;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = piece_of(t, ids[i], render_special, &l);
        if (remove_space && l && p[0] == ' ') { p++; l--; }
        remove_space = false;
        memcpy(s + at, p, l);
        at += l;
    }
    if (t->clean_spaces) at = clean_spaces(s, at);
    s[at] = 0;
    if (len) *len = at;
    return s;
}
