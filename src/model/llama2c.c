/* llama2c.c - llama2.c checkpoint + tokenizer -> GGUF, matching llama.cpp's
 * llama-convert-llama2c-to-ggml output.
 *
 * Checkpoint layout (all little endian): 7 int32 (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
 * classifier is not shared with the embeddings), then float32 arrays
 * token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim],
 * wk[L][kv_dim][dim], wv[L][kv_dim][dim], wo[L][dim][dim], rms_ffn[L][dim],
 * w1[L][hidden][dim], w2[L][dim][hidden], w3[L][hidden][dim],
 * rms_final[dim], freq_cis_real[seq][head/2], freq_cis_imag[seq][head/2]
 * (skipped), [wcls[vocab][dim]].
 *
 * llama.cpp copies every matrix in memory order (a row-major [rows][cols]
 * array becomes a ggml tensor with ne = {cols, rows}), without any RoPE
 * permutation: llama2.c's interleaved-pair rotation is ggml's "normal" RoPE.
 *
 * Tokenizer layout: int32 max_token_length, then per token: float32 score,
 * int32 length, bytes. llama.cpp renames ids 0/1/2 to <unk>/<s>/</s>
 * (types unknown/control/control), marks empty tokens control and "<0xXX>"
 * tokens byte, everything else normal, and replaces ' ' by U+2581. */
#include "llama2c.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/checked.h"
#include "../gguf/gguf.h"

/* llama_token_type values. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

/* ---- read-only file mapping ---- */

typedef struct {
    const uint8_t *p;
    size_t size;
    void *map;      /* mmap'd region, or NULL for an empty file */
} mapped;

static int map_file(const char *path, mapped *m, em_err *err) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return em_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        em_fail(err, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return em_fail(err, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return em_fail(err, "%s: file too large", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size == 0) {
        static const uint8_t empty[1];
        m->p = empty;
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return em_fail(err, "%s: mmap: %s", path, strerror(errno));
    m->map = p;
    m->p = p;
    return 0;
}

static void unmap_file(mapped *m) {
    if (m->map) munmap(m->map, m->size);
    memset(m, 0, sizeof *m);
}

/* ---- checkpoint header ---- */

static int32_t rd_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Adds a*b*c (floats) to *acc; false on overflow. */
static bool acc3(uint64_t *acc, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t t;
    return em_mul_u64(a, b, &t) && em_mul_u64(t, c, &t) && em_add_u64(*acc, t, acc);
}

/* Number of float32 values a checkpoint with config c holds; false on overflow. */
static bool count_floats(const em_llama2c_config *c, uint64_t *out) {
    uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t V = (uint64_t)c->vocab_size, head = dim / (uint64_t)c->n_heads;
    uint64_t kv_dim = head * (uint64_t)c->n_kv_heads, n = 0;
    bool ok = acc3(&n, V, dim, 1)            /* token_embedding */
              && acc3(&n, L, dim, 1)         /* rms_att */
              && acc3(&n, L, dim, dim)       /* wq */
              && acc3(&n, L, kv_dim, dim)    /* wk */
              && acc3(&n, L, kv_dim, dim)    /* wv */
              && acc3(&n, L, dim, dim)       /* wo */
              && acc3(&n, L, dim, 1)         /* rms_ffn */
              && acc3(&n, L, hid, dim)       /* w1 */
              && acc3(&n, L, dim, hid)       /* w2 */
              && acc3(&n, L, hid, dim)       /* w3 */
              && acc3(&n, dim, 1, 1)         /* rms_final */
              && acc3(&n, (uint64_t)c->seq_len, head, 1) /* freq_cis real + imag */
              && (c->shared_classifier || acc3(&n, V, dim, 1));
    *out = n;
    return ok;
}

int em_llama2c_parse_config(const void *data, size_t file_size, em_llama2c_config *cfg, em_err *err) {
    const uint8_t *p = data;
    if (file_size < 28)
        return em_fail(err, "llama2.c checkpoint: truncated header (%zu bytes, need 28)", file_size);
    if (memcmp(p, "GGUF", 4) == 0) return em_fail(err, "is already a GGUF file, not a llama2.c checkpoint");
    em_llama2c_config c;
    memset(&c, 0, sizeof c);
    c.dim = rd_i32(p);
    c.hidden_dim = rd_i32(p + 4);
    c.n_layers = rd_i32(p + 8);
    c.n_heads = rd_i32(p + 12);
    c.n_kv_heads = rd_i32(p + 16);
    c.vocab_size = rd_i32(p + 20);
    c.seq_len = rd_i32(p + 24);
    static const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                   "seq_len"};
    int32_t vals[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
    for (int i = 0; i < 7; i++) {
        int32_t v = vals[i];
        if (i == 5) {
            if (v == 0 || v == INT32_MIN)
                return em_fail(err, "llama2.c checkpoint: invalid vocab_size %d in header", v);
            continue;
        }
        if (v <= 0) return em_fail(err, "llama2.c checkpoint: invalid %s %d in header (must be > 0)", names[i], v);
    }
    c.shared_classifier = c.vocab_size > 0;
    if (c.vocab_size < 0) c.vocab_size = -c.vocab_size;
    if (c.dim % c.n_heads != 0)
        return em_fail(err, "llama2.c checkpoint: dim %d is not a multiple of n_heads %d", c.dim, c.n_heads);
    if ((c.dim / c.n_heads) % 2 != 0)
        return em_fail(err, "llama2.c checkpoint: head size %d (dim / n_heads) is odd", c.dim / c.n_heads);
    if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
        return em_fail(err, "llama2.c checkpoint: n_heads %d is not a multiple of n_kv_heads %d", c.n_heads,
                       c.n_kv_heads);
    uint64_t nf, bytes;
    if (!count_floats(&c, &nf) || !em_mul_u64(nf, 4, &bytes) || !em_add_u64(bytes, 28, &bytes))
        return em_fail(err, "llama2.c checkpoint: header dimensions are too large (size overflows)");
    if (bytes != (uint64_t)file_size)
        return em_fail(err,
                       "llama2.c checkpoint: file has %zu bytes but its header (dim %d, hidden_dim %d, n_layers %d, "
                       "n_heads %d, n_kv_heads %d, vocab_size %d%s, seq_len %d) implies %llu bytes (%s)",
                       file_size, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
                       c.shared_classifier ? "" : " unshared", c.seq_len, (unsigned long long)bytes,
                       (uint64_t)file_size < bytes ? "truncated" : "trailing data");
    *cfg = c;
    return 0;
}

/* ---- tokenizer ---- */

typedef struct {
    char **text;    /* NUL-terminated (llama.cpp truncates at embedded NULs too) */
    float *score;
    int32_t *type;
    uint64_t n;
} vocab;

static void vocab_free(vocab *v) {
    if (v->text)
        for (uint64_t i = 0; i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->score);
    free(v->type);
    memset(v, 0, sizeof *v);
}

/* sscanf(text, "<0x%02hhX>", &b) == 1, i.e. "<0x" then (after optional
 * whitespace) an optional sign and at least one hex digit within a field
 * width of 2. The closing '>' is not required, as in llama.cpp. */
static bool is_byte_token(const char *s) {
    if (strncmp(s, "<0x", 3) != 0) return false;
    s += 3;
    while (isspace((unsigned char)*s)) s++;
    int width = 2;
    if (*s == '+' || *s == '-') {
        s++;
        width--;
    }
    return width > 0 && isxdigit((unsigned char)*s);
}

/* Copies len bytes (up to the first NUL), replacing ' ' by U+2581. */
static char *escape_ws(const uint8_t *p, size_t len) {
    size_t n = 0, spaces = 0;
    while (n < len && p[n]) {
        if (p[n] == ' ') spaces++;
        n++;
    }
    size_t total;
    if (!em_mul_sz(spaces, 2, &total) || !em_add_sz(total, n + 1, &total)) return NULL;
    char *out = malloc(total);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') {
            out[o++] = (char)0xe2;
            out[o++] = (char)0x96;
            out[o++] = (char)0x81;
        } else {
            out[o++] = (char)p[i];
        }
    }
    out[o] = 0;
    return out;
}

static int load_vocab(const char *path, const mapped *m, uint64_t n_vocab, vocab *v, em_err *err) {
    memset(v, 0, sizeof *v);
    if (m->size < 4)
        return em_fail(err, "%s: truncated llama2.c tokenizer: missing max_token_length (%zu bytes)", path, m->size);
    if (m->size >= 4 && memcmp(m->p, "GGUF", 4) == 0)
        return em_fail(err, "%s: is a GGUF file; expected a llama2.c tokenizer .bin", path);
    int32_t max_len = rd_i32(m->p);
    if (max_len < 0) return em_fail(err, "%s: llama2.c tokenizer: invalid max_token_length %d", path, max_len);
    /* Each token needs at least 8 bytes. */
    if (n_vocab > (m->size - 4) / 8)
        return em_fail(err, "%s: truncated llama2.c tokenizer: %zu bytes cannot hold %llu tokens (vocab_size)", path,
                       m->size, (unsigned long long)n_vocab);
    v->text = em_calloc_array((size_t)n_vocab, sizeof *v->text);
    v->score = em_malloc_array((size_t)n_vocab, sizeof *v->score);
    v->type = em_malloc_array((size_t)n_vocab, sizeof *v->type);
    if (!v->text || !v->score || !v->type) {
        vocab_free(v);
        return em_fail(err, "out of memory for the vocabulary");
    }
    v->n = n_vocab;
    size_t pos = 4;
    for (uint64_t id = 0; id < n_vocab; id++) {
        if (m->size - pos < 8) {
            em_fail(err, "%s: truncated llama2.c tokenizer: token %llu of %llu at offset %zu needs score and length",
                    path, (unsigned long long)id, (unsigned long long)n_vocab, pos);
            vocab_free(v);
            return -1;
        }
        float score;
        memcpy(&score, m->p + pos, 4);
        int32_t len = rd_i32(m->p + pos + 4);
        pos += 8;
        if (len < 0 || (size_t)len > m->size - pos) {
            em_fail(err, "%s: llama2.c tokenizer: token %llu at offset %zu has length %d but %zu bytes remain%s", path,
                    (unsigned long long)id, pos - 4, len, m->size - pos, len < 0 ? "" : " (truncated)");
            vocab_free(v);
            return -1;
        }
        const uint8_t *txt = m->p + pos;
        pos += (size_t)len;
        const char *special = NULL;
        int32_t type;
        if (id == 0) { special = "<unk>"; type = TT_UNKNOWN; }
        else if (id == 1) { special = "<s>"; type = TT_CONTROL; }
        else if (id == 2) { special = "</s>"; type = TT_CONTROL; }
        else if (len == 0) type = TT_CONTROL;
        else type = TT_NORMAL; /* byte check below, on the C string */
        char *s = special ? escape_ws((const uint8_t *)special, strlen(special)) : escape_ws(txt, (size_t)len);
        if (!s) {
            vocab_free(v);
            return em_fail(err, "out of memory for the vocabulary");
        }
        /* llama.cpp runs sscanf on the unescaped C string; escaping only
         * changes spaces, which cannot occur in a match before the digit
         * except as leading whitespace after "<0x". */
        if (type == TT_NORMAL) {
            char *raw = malloc((size_t)len + 1);
            if (!raw) {
                free(s);
                vocab_free(v);
                return em_fail(err, "out of memory for the vocabulary");
            }
            memcpy(raw, txt, (size_t)len);
            raw[len] = 0;
            if (is_byte_token(raw)) type = TT_BYTE;
            free(raw);
        }
        v->text[id] = s;
        v->score[id] = score;
        v->type[id] = type;
    }
    return 0;
}

/* ---- conversion ---- */

static int add_tensor(em_gguf_writer *w, const char *name, const float *data, int64_t ne0, int64_t ne1,
                      em_err *err) {
    int64_t ne[2] = {ne0, ne1};
    return em_gguf_write_tensor(w, name, EM_TYPE_F32, ne1 > 0 ? 2 : 1, ne, data, err);
}

static int write_gguf(const em_llama2c_config *c, const float *wts, const vocab *v, uint32_t n_ctx, const char *out,
                      em_err *err) {
    em_gguf_writer *w = em_gguf_writer_new(EM_GGUF_DEFAULT_ALIGNMENT);
    if (!w) return em_fail(err, "out of memory");
    const uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    const uint64_t V = (uint64_t)c->vocab_size, head = dim / (uint64_t)c->n_heads;
    const uint64_t kv_dim = head * (uint64_t)c->n_kv_heads;
    /* Offsets of each array (in floats); sizes were validated against the
     * file size, so none of this overflows. */
    const float *emb = wts;
    const float *rms_att = emb + V * dim;
    const float *wq = rms_att + L * dim;
    const float *wk = wq + L * dim * dim;
    const float *wv = wk + L * kv_dim * dim;
    const float *wo = wv + L * kv_dim * dim;
    const float *rms_ffn = wo + L * dim * dim;
    const float *w1 = rms_ffn + L * dim;
    const float *w2 = w1 + L * hid * dim;
    const float *w3 = w2 + L * dim * hid;
    const float *rms_final = w3 + L * hid * dim;
    const float *freq = rms_final + dim;
    const float *wcls = c->shared_classifier ? emb : freq + (uint64_t)c->seq_len * head;

    int rc = -1;
    const uint32_t n_rot = head < 64 ? (uint32_t)head : 64;
    if (em_gguf_write_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->text, v->n, err) ||
        em_gguf_write_arr(w, "tokenizer.ggml.scores", EM_GGUF_F32, v->score, v->n, err) ||
        em_gguf_write_arr(w, "tokenizer.ggml.token_type", EM_GGUF_I32, v->type, v->n, err) ||
        em_gguf_write_str(w, "tokenizer.ggml.model", "llama", err) ||
        em_gguf_write_str(w, "general.architecture", "llama", err) ||
        em_gguf_write_str(w, "general.name", "llama", err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.unknown_token_id", 0, err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.bos_token_id", 1, err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.eos_token_id", 2, err) ||
        /* sic: llama.cpp's key spelling; LLAMA_TOKEN_NULL (-1) stored as u32 */
        em_gguf_write_u32(w, "tokenizer.ggml.seperator_token_id", UINT32_MAX, err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.padding_token_id", UINT32_MAX, err) ||
        em_gguf_write_u32(w, "llama.context_length", n_ctx, err) ||
        em_gguf_write_u32(w, "llama.embedding_length", (uint32_t)dim, err) ||
        em_gguf_write_u32(w, "llama.feed_forward_length", (uint32_t)hid, err) ||
        em_gguf_write_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads, err) ||
        em_gguf_write_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads, err) ||
        em_gguf_write_u32(w, "llama.block_count", (uint32_t)L, err) ||
        em_gguf_write_u32(w, "llama.rope.dimension_count", n_rot, err) ||
        em_gguf_write_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, err))
        goto done;

    if (add_tensor(w, "token_embd.weight", emb, (int64_t)dim, (int64_t)V, err) ||
        add_tensor(w, "output_norm.weight", rms_final, (int64_t)dim, 0, err) ||
        add_tensor(w, "output.weight", wcls, (int64_t)dim, (int64_t)V, err))
        goto done;
    for (uint64_t l = 0; l < L; l++) {
        char name[EM_GGUF_MAX_NAME];
#define T(fmt, ptr, n0, n1)                                                          \
    do {                                                                             \
        snprintf(name, sizeof name, fmt, (unsigned long long)l);                     \
        if (add_tensor(w, name, ptr, (int64_t)(n0), (int64_t)(n1), err)) goto done; \
    } while (0)
        T("blk.%llu.attn_q.weight", wq + l * dim * dim, dim, dim);
        T("blk.%llu.attn_k.weight", wk + l * kv_dim * dim, dim, kv_dim);
        T("blk.%llu.attn_v.weight", wv + l * kv_dim * dim, dim, kv_dim);
        T("blk.%llu.attn_output.weight", wo + l * dim * dim, dim, dim);
        T("blk.%llu.attn_norm.weight", rms_att + l * dim, dim, 0);
        T("blk.%llu.ffn_gate.weight", w1 + l * hid * dim, dim, hid);
        T("blk.%llu.ffn_down.weight", w2 + l * dim * hid, hid, dim);
        T("blk.%llu.ffn_up.weight", w3 + l * hid * dim, dim, hid);
        T("blk.%llu.ffn_norm.weight", rms_ffn + l * dim, dim, 0);
#undef T
    }
    rc = em_gguf_writer_finish(w, out, err);
done:
    em_gguf_writer_free(w);
    return rc;
}

int em_llama2c_convert(const char *model_path, const char *tokenizer_path, const char *out_path,
                       const em_llama2c_opts *opts, em_err *err) {
    if (!model_path || !tokenizer_path || !out_path) return em_fail(err, "llama2c convert: missing path");
    mapped mm, tm;
    if (map_file(model_path, &mm, err)) return -1;
    em_llama2c_config c;
    if (em_llama2c_parse_config(mm.p, mm.size, &c, err)) {
        em_fail_ctx(err, "%s", model_path);
        unmap_file(&mm);
        return -1;
    }
    /* The header's fields are all <= INT32_MAX, so they fit the u32 keys. */
    if (map_file(tokenizer_path, &tm, err)) {
        unmap_file(&mm);
        return -1;
    }
    vocab v;
    int rc = load_vocab(tokenizer_path, &tm, (uint64_t)c.vocab_size, &v, err);
    unmap_file(&tm);
    if (rc == 0) {
        uint32_t n_ctx = opts && opts->n_ctx ? opts->n_ctx : (uint32_t)c.seq_len;
        /* Float data starts at offset 28: 4-byte aligned within the page-
         * aligned mapping. */
        rc = write_gguf(&c, (const float *)(const void *)(mm.p + 28), &v, n_ctx, out_path, err);
        vocab_free(&v);
    }
    unmap_file(&mm);
    return rc;
}
