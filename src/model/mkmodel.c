/* mkmodel.c - random-weight Llama GGUF files (see mkmodel.h). */
#include "mkmodel.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/checked.h"
#include "../gguf/gguf.h"
#include "../tensor/types.h"
#include "model.h"

/* Limits as the loader applies them (model_load.c), so a file we write is one
 * ember can load. */
#define MK_MAX_EMBD (1u << 16)
#define MK_MAX_FF (1u << 18)
#define MK_MAX_LAYERS 1024u
#define MK_MAX_HEADS 1024u
#define MK_MAX_VOCAB (1u << 22)
#define MK_MIN_SYNTH_VOCAB 260u
#define MK_MAX_THREADS 256
#define MK_MAX_EXPERTS 256u

/* llama_token_type values. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

static const em_mkmodel_shape shapes[] = {
    /* meta-llama/Llama-3.2-1B: rope_scaling llama3 (factor 32, low 1, high 4, original 8192) */
    {"llama-3.2-1b", 16, 2048, 32, 8, 8192, 500000.0f, true, 131072, 0, 0},
    /* small shapes for tests and quick runs (rows multiples of 256 so every type fits) */
    {"tiny", 2, 256, 4, 2, 768, 10000.0f, false, 2048, 0, 0},
    {"small", 4, 512, 8, 4, 1536, 10000.0f, false, 4096, 0, 0},
    {"medium", 8, 1024, 16, 4, 4096, 500000.0f, true, 8192, 0, 0},
    /* Mixtral-8x7B's layout (8 experts, top-2, rope base 1e6, no rope
     * factors) scaled down to Llama-3.2-1B's attention: ~3.9 B parameters,
     * ~0.6 B active per token */
    {"mixtral-mini", 16, 2048, 32, 8, 4096, 1000000.0f, false, 32768, 8, 2},
    {"tiny-moe", 2, 256, 4, 2, 512, 10000.0f, false, 2048, 4, 2},
};

/* general.file_type values are llama.cpp's llama_ftype. */
static const em_mkmodel_ftype ftypes[] = {
    {"f32", EM_TYPE_F32, false, 0},     {"f16", EM_TYPE_F16, false, 1},    {"bf16", EM_TYPE_BF16, false, 32},
    {"q8_0", EM_TYPE_Q8_0, false, 7},   {"q4_0", EM_TYPE_Q4_0, false, 2},  {"q4_1", EM_TYPE_Q4_1, false, 3},
    {"q5_0", EM_TYPE_Q5_0, false, 8},   {"q5_1", EM_TYPE_Q5_1, false, 9},  {"q2_k", EM_TYPE_Q2_K, false, 10},
    {"q3_k", EM_TYPE_Q3_K, false, 11},  {"q4_k", EM_TYPE_Q4_K, false, 14}, {"q5_k", EM_TYPE_Q5_K, false, 16},
    {"q6_k", EM_TYPE_Q6_K, false, 18},  {"q4_k_m", EM_TYPE_Q4_K, true, 15}, {"q5_k_m", EM_TYPE_Q5_K, true, 17},
};

const em_mkmodel_shape *em_mkmodel_find_shape(const char *name) {
    for (size_t i = 0; name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcmp(shapes[i].name, name) == 0) return &shapes[i];
    return NULL;
}

const em_mkmodel_shape *em_mkmodel_shape_at(size_t i) {
    return i < sizeof shapes / sizeof shapes[0] ? &shapes[i] : NULL;
}

const em_mkmodel_ftype *em_mkmodel_find_ftype(const char *name) {
    for (size_t i = 0; name && i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (strcmp(ftypes[i].name, name) == 0) return &ftypes[i];
    return NULL;
}

const em_mkmodel_ftype *em_mkmodel_ftype_at(size_t i) {
    return i < sizeof ftypes / sizeof ftypes[0] ? &ftypes[i] : NULL;
}

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

typedef struct { uint64_t s[4]; } xoshiro;

/* xoshiro256++ */
static inline uint64_t xo_next(xoshiro *x) {
    uint64_t *s = x->s;
    uint64_t r = rotl64(s[0] + s[3], 23) + s[0], t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return r;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* The generator of one row: depends only on (seed, tensor name, row). */
static void xo_seed_row(xoshiro *x, uint64_t seed, uint64_t name_hash, uint64_t row) {
    uint64_t st = seed;
    uint64_t a = splitmix64(&st);
    st = a ^ name_hash ^ (row * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++) x->s[i] = splitmix64(&st);
}

/* n values ~ mean + sigma * N(0,1), the normal approximated by the sum of
 * four 16-bit uniforms (Irwin-Hall, n = 4): one 64-bit draw per value. */
static void fill_normal(xoshiro *x, float *dst, int64_t n, float mean, float sigma) {
    /* The sum of four uniforms on {0..65535} has mean 131070 and standard
     * deviation sqrt(4 * (65536^2 - 1) / 12). */
    const float scale = sigma / 37837.23f;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = xo_next(x);
        int32_t s = (int32_t)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) - 131070;
        dst[i] = mean + (float)s * scale;
    }
}

/* ---- tensor plan ---- */

enum { K_MATRIX, K_NORM, K_ROPE };

typedef struct {
    char name[EM_GGUF_MAX_NAME];
    int kind;
    uint32_t type;
    int64_t ne[3];  /* rows of ne[0] values: ne[1] * ne[2] of them */
    uint32_t n_dims;
} tdesc;

typedef struct {
    const em_mkmodel_opts *o;
    tdesc *t;
    size_t n;
    uint32_t n_vocab;
    int n_threads;
} plan;

static bool use_more_bits(uint32_t i, uint32_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* llama.cpp's fallback when a row length is not a multiple of 256. */
static uint32_t k_fallback(uint32_t type) {
    switch (type) {
    case EM_TYPE_Q4_K: return EM_TYPE_Q5_0;
    case EM_TYPE_Q5_K: return EM_TYPE_Q5_1;
    case EM_TYPE_Q6_K: return EM_TYPE_Q8_0;
    default: return type;
    }
}

/* llama_tensor_get_type for the tensors we write (what: the name between
 * "blk.N." and ".weight"). */
static uint32_t pick_type(const em_mkmodel_ftype *ft, const char *what, uint32_t layer, uint32_t n_layer,
                          int64_t ne0, uint32_t n_expert) {
    uint32_t t = ft->base, be = 1, bb;
    if (ft->km_mix) {
        if (strcmp(what, "output") == 0) {
            em_type_layout(ft->base, &be, &bb);
            return ne0 % be ? EM_TYPE_Q8_0 : EM_TYPE_Q6_K;
        }
        /* ffn_down_exps goes through the ffn_down rule, its layer parsed from the name */
        if ((strcmp(what, "attn_v") == 0 || strncmp(what, "ffn_down", 8) == 0) && use_more_bits(layer, n_layer))
            t = EM_TYPE_Q6_K;
        if (n_expert == 8) { /* "for the 8-expert model, bumping this to Q8_0 trades just ~128MB" */
            if (strcmp(what, "attn_v") == 0 || strcmp(what, "attn_k") == 0) t = EM_TYPE_Q8_0;
            if (strcmp(what, "attn_output") == 0 && ft->base == EM_TYPE_Q4_K) t = EM_TYPE_Q5_K; /* Q4_K_M only */
        }
    }
    em_type_layout(t, &be, &bb);
    if (ne0 % be) t = k_fallback(t);
    return t;
}

/* ne1 <= 0: a vector; ne2 > 0: a stack of ne2 matrices */
static int add(plan *p, const char *name, int kind, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2) {
    tdesc *d = &p->t[p->n++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->kind = kind;
    d->type = type;
    d->ne[0] = ne0;
    d->ne[1] = ne1 > 0 ? ne1 : 1;
    d->ne[2] = ne2 > 0 ? ne2 : 1;
    d->n_dims = ne2 > 0 ? 3 : ne1 > 0 ? 2 : 1;
    return 0;
}

static int check_shape(const em_mkmodel_shape *s, em_err *err) {
    if (s->n_layer < 1 || s->n_layer > MK_MAX_LAYERS)
        return em_fail(err, "layers %u is out of range [1, %u]", s->n_layer, MK_MAX_LAYERS);
    if (s->n_embd < 1 || s->n_embd > MK_MAX_EMBD)
        return em_fail(err, "embd %u is out of range [1, %u]", s->n_embd, MK_MAX_EMBD);
    if (s->n_head < 1 || s->n_head > MK_MAX_HEADS)
        return em_fail(err, "heads %u is out of range [1, %u]", s->n_head, MK_MAX_HEADS);
    if (s->n_head_kv < 1 || s->n_head_kv > s->n_head || s->n_head % s->n_head_kv)
        return em_fail(err, "kv-heads %u must divide heads %u", s->n_head_kv, s->n_head);
    if (s->n_embd % s->n_head)
        return em_fail(err, "embd %u is not a multiple of heads %u", s->n_embd, s->n_head);
    uint32_t hd = s->n_embd / s->n_head;
    if (hd % 2 || hd > EM_MAX_HEAD_DIM)
        return em_fail(err, "head size %u (embd / heads) must be even and at most %d", hd, EM_MAX_HEAD_DIM);
    if (s->n_ff < 1 || s->n_ff > MK_MAX_FF) return em_fail(err, "ff %u is out of range [1, %u]", s->n_ff, MK_MAX_FF);
    if (!(s->rope_base > 1.0f) || !isfinite(s->rope_base))
        return em_fail(err, "rope base %g must be > 1", (double)s->rope_base);
    if (s->n_ctx_train < 1) return em_fail(err, "context length must be >= 1");
    if (s->n_expert > MK_MAX_EXPERTS)
        return em_fail(err, "experts %u is out of range [0, %u]", s->n_expert, MK_MAX_EXPERTS);
    if (s->n_expert > 0 && (s->n_expert_used < 1 || s->n_expert_used > s->n_expert))
        return em_fail(err, "experts-used %u must be in [1, experts %u]", s->n_expert_used, s->n_expert);
    if (s->n_expert == 0 && s->n_expert_used != 0)
        return em_fail(err, "experts-used %u needs experts (a dense model has none)", s->n_expert_used);
    return 0;
}

/* Builds the tensor list (names, shapes, types) and checks every type. */
static int make_plan(plan *p, const em_mkmodel_opts *o, uint32_t n_vocab, em_err *err) {
    const em_mkmodel_shape *s = &o->shape;
    const em_mkmodel_ftype *ft = o->ftype ? o->ftype : &ftypes[0];
    memset(p, 0, sizeof *p);
    p->o = o;
    p->n_vocab = n_vocab;
    p->t = em_calloc_array((size_t)s->n_layer * 10 + 4, sizeof *p->t);
    if (!p->t) return em_fail(err, "out of memory");
    const int64_t E = s->n_embd, F = s->n_ff, V = n_vocab, L = s->n_layer, X = s->n_expert;
    const int64_t KV = (int64_t)(s->n_embd / s->n_head) * s->n_head_kv;
    const uint32_t nx = s->n_expert;
    char name[EM_GGUF_MAX_NAME];
    if (s->llama3_rope) add(p, "rope_freqs.weight", K_ROPE, EM_TYPE_F32, (int64_t)(s->n_embd / s->n_head) / 2, 0, 0);
    add(p, "token_embd.weight", K_MATRIX, pick_type(ft, "token_embd", 0, (uint32_t)L, E, nx), E, V, 0);
    static const struct { const char *what; int kind; int rows; int cols; bool moe, dense, stacked; } blk[] = {
        /* rows/cols: 0 = none (1-D), 1 = E, 2 = KV, 3 = F, 4 = X (experts) */
        {"attn_norm", K_NORM, 0, 1, true, true, false},      {"attn_q", K_MATRIX, 1, 1, true, true, false},
        {"attn_k", K_MATRIX, 2, 1, true, true, false},       {"attn_v", K_MATRIX, 2, 1, true, true, false},
        {"attn_output", K_MATRIX, 1, 1, true, true, false},  {"ffn_norm", K_NORM, 0, 1, true, true, false},
        {"ffn_gate", K_MATRIX, 3, 1, false, true, false},    {"ffn_up", K_MATRIX, 3, 1, false, true, false},
        {"ffn_down", K_MATRIX, 1, 3, false, true, false},    {"ffn_gate_inp", K_MATRIX, 4, 1, true, false, false},
        {"ffn_gate_exps", K_MATRIX, 3, 1, true, false, true}, {"ffn_down_exps", K_MATRIX, 1, 3, true, false, true},
        {"ffn_up_exps", K_MATRIX, 3, 1, true, false, true},
    };
    for (int64_t l = 0; l < L; l++)
        for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++) {
            if (!(X > 0 ? blk[i].moe : blk[i].dense)) continue;
            const int64_t dims[5] = {0, E, KV, F, X};
            int64_t ne0 = dims[blk[i].cols], ne1 = dims[blk[i].rows];
            snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, blk[i].what);
            /* norms and the router stay F32 */
            uint32_t t = blk[i].kind == K_NORM || strcmp(blk[i].what, "ffn_gate_inp") == 0
                             ? EM_TYPE_F32
                             : pick_type(ft, blk[i].what, (uint32_t)l, (uint32_t)L, ne0, nx);
            add(p, name, blk[i].kind, t, ne0, ne1, blk[i].stacked ? X : 0);
        }
    add(p, "output_norm.weight", K_NORM, EM_TYPE_F32, E, 0, 0);
    add(p, "output.weight", K_MATRIX, pick_type(ft, "output", 0, (uint32_t)L, E, nx), E, V, 0);

    for (size_t i = 0; i < p->n; i++) {
        const tdesc *d = &p->t[i];
        const char *tn = em_type_name(d->type);
        const em_type_traits *tr = em_type_traits_get(d->type);
        if (!tr || !tr->from_f32)
            return em_fail(err, "type %s is not available: this build has no %s quantizer (needed for %s)", tn, tn,
                           d->name);
        if ((uint64_t)d->ne[0] % tr->blck)
            return em_fail(err, "%s: row length %lld is not a multiple of the %s block size %u", d->name,
                           (long long)d->ne[0], tn, tr->blck);
    }
    return 0;
}

/* Llama 3 RoPE frequency factors, as convert_hf_to_gguf.py computes them for
 * rope_scaling {factor 32, low_freq_factor 1, high_freq_factor 4,
 * original_max_position_embeddings 8192}. */
static void llama3_rope_factors(float *dst, int64_t n, uint32_t head_dim, float base) {
    const double factor = 32.0, low = 1.0, high = 4.0, old_ctx = 8192.0;
    const double low_wl = old_ctx / low, high_wl = old_ctx / high;
    for (int64_t i = 0; i < n; i++) {
        double freq = 1.0 / pow((double)base, (double)(2 * i) / (double)head_dim);
        double wl = 2.0 * M_PI / freq;
        double f;
        if (wl < high_wl) f = 1.0;
        else if (wl > low_wl) f = factor;
        else {
            double smooth = (old_ctx / wl - low) / (high - low);
            f = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        dst[i] = (float)f;
    }
}

/* ---- parallel fill ---- */

typedef struct {
    const plan *p;
    const tdesc *d;
    const em_type_traits *tr;
    uint8_t *dst;
    uint64_t row_bytes, name_hash;
    int64_t lo, hi;
    int failed;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    const tdesc *d = j->d;
    float *row = malloc((size_t)d->ne[0] * sizeof *row);
    if (!row) {
        j->failed = 1;
        return NULL;
    }
    const float mean = d->kind == K_NORM ? 1.0f : 0.0f;
    for (int64_t r = j->lo; r < j->hi; r++) {
        xoshiro x;
        xo_seed_row(&x, j->p->o->seed, j->name_hash, (uint64_t)r);
        fill_normal(&x, row, d->ne[0], mean, 0.02f);
        j->tr->from_f32(row, j->dst + (uint64_t)r * j->row_bytes, d->ne[0]);
    }
    free(row);
    return NULL;
}

static int fill_tensor(void *user, uint64_t index, const char *name, void *dst, uint64_t nbytes, em_err *err) {
    const plan *p = user;
    if (index >= p->n || strcmp(p->t[index].name, name) != 0)
        return em_fail(err, "mkmodel: internal error: tensor %llu is not '%s'", (unsigned long long)index, name);
    const tdesc *d = &p->t[index];
    const em_type_traits *tr = em_type_traits_get(d->type);
    uint64_t row_bytes = em_type_row_bytes(d->type, (uint64_t)d->ne[0]);
    const int64_t n_rows = d->ne[1] * d->ne[2];
    if (!tr || row_bytes * (uint64_t)n_rows != nbytes)
        return em_fail(err, "mkmodel: internal error: size of '%s'", name);
    if (d->kind == K_ROPE) {
        const em_mkmodel_shape *s = &p->o->shape;
        llama3_rope_factors(dst, d->ne[0], s->n_embd / s->n_head, s->rope_base);
        return 0;
    }
    int nth = p->n_threads;
    if (n_rows < nth * 4) nth = 1; /* not worth a thread */
    job jobs[MK_MAX_THREADS];
    pthread_t th[MK_MAX_THREADS];
    bool started[MK_MAX_THREADS] = {false};
    uint64_t h = fnv1a(name);
    for (int i = 0; i < nth; i++) {
        int64_t n = n_rows, per = n / nth, rem = n % nth;
        jobs[i] = (job){.p = p, .d = d, .tr = tr, .dst = dst, .row_bytes = row_bytes, .name_hash = h};
        jobs[i].lo = i * per + (i < rem ? i : rem);
        jobs[i].hi = jobs[i].lo + per + (i < rem ? 1 : 0);
    }
    for (int i = 1; i < nth; i++) started[i] = pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0;
    for (int i = 1; i < nth; i++)
        if (!started[i]) run_job(&jobs[i]); /* could not start a thread: do its share here */
    run_job(&jobs[0]);
    int failed = jobs[0].failed;
    for (int i = 1; i < nth; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
    }
    if (failed) return em_fail(err, "mkmodel: out of memory while generating '%s'", name);
    return 0;
}

/* ---- metadata ---- */

static int write_synthetic_vocab(em_gguf_writer *w, uint32_t n, em_err *err) {
    char **toks = em_calloc_array(n, sizeof *toks);
    float *scores = em_malloc_array(n, sizeof *scores);
    int32_t *types = em_malloc_array(n, sizeof *types);
    int rc = -1;
    if (!toks || !scores || !types) {
        em_fail(err, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        char buf[32];
        int32_t type = TT_NORMAL;
        if (i == 0) { snprintf(buf, sizeof buf, "<unk>"); type = TT_UNKNOWN; }
        else if (i == 1) { snprintf(buf, sizeof buf, "<s>"); type = TT_CONTROL; }
        else if (i == 2) { snprintf(buf, sizeof buf, "</s>"); type = TT_CONTROL; }
        else if (i < 259) { snprintf(buf, sizeof buf, "<0x%02X>", i - 3); type = TT_BYTE; }
        else snprintf(buf, sizeof buf, "\xe2\x96\x81w%u", i - 259); /* U+2581 "w<n>" */
        toks[i] = strdup(buf);
        if (!toks[i]) {
            em_fail(err, "out of memory");
            goto done;
        }
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
        types[i] = type;
    }
    if (em_gguf_write_str(w, "tokenizer.ggml.model", "llama", err) ||
        em_gguf_write_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, n, err) ||
        em_gguf_write_arr(w, "tokenizer.ggml.scores", EM_GGUF_F32, scores, n, err) ||
        em_gguf_write_arr(w, "tokenizer.ggml.token_type", EM_GGUF_I32, types, n, err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.bos_token_id", 1, err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.eos_token_id", 2, err) ||
        em_gguf_write_u32(w, "tokenizer.ggml.unknown_token_id", 0, err) ||
        em_gguf_write_bool(w, "tokenizer.ggml.add_bos_token", true, err) ||
        em_gguf_write_bool(w, "tokenizer.ggml.add_eos_token", false, err))
        goto done;
    rc = 0;
done:
    if (toks)
        for (uint32_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    return rc;
}

/* Opens the vocabulary file and returns its token count. */
static em_gguf *open_vocab(const char *path, uint32_t *n_vocab, em_err *err) {
    em_gguf *g = em_gguf_open(path, err);
    if (!g) {
        em_fail_ctx(err, "vocabulary");
        return NULL;
    }
    const em_gguf_kv *toks;
    if (em_gguf_get_arr(g, "tokenizer.ggml.tokens", EM_GGUF_STRING, &toks, false, err)) {
        em_fail_ctx(err, "%s", path);
        em_gguf_close(g);
        return NULL;
    }
    if (toks->arr_n < 1 || toks->arr_n > MK_MAX_VOCAB) {
        em_fail(err, "%s: vocabulary of %llu tokens (must be 1..%u)", path, (unsigned long long)toks->arr_n,
                MK_MAX_VOCAB);
        em_gguf_close(g);
        return NULL;
    }
    *n_vocab = (uint32_t)toks->arr_n;
    return g;
}

static int resolve_vocab(const em_mkmodel_opts *o, em_gguf **g, uint32_t *n_vocab, em_err *err) {
    *g = NULL;
    if (o->vocab_path) {
        if (!(*g = open_vocab(o->vocab_path, n_vocab, err))) return -1;
        if (o->n_vocab && o->n_vocab != *n_vocab) {
            em_fail(err, "vocab %u does not match the %u tokens of %s", o->n_vocab, *n_vocab, o->vocab_path);
            em_gguf_close(*g);
            *g = NULL;
            return -1;
        }
        return 0;
    }
    if (o->n_vocab < MK_MIN_SYNTH_VOCAB || o->n_vocab > MK_MAX_VOCAB)
        return em_fail(err, "a synthetic vocabulary needs vocab in [%u, %u] (got %u)", MK_MIN_SYNTH_VOCAB,
                       MK_MAX_VOCAB, o->n_vocab);
    *n_vocab = o->n_vocab;
    return 0;
}

int em_mkmodel_check(const em_mkmodel_opts *o, em_err *err) {
    if (!o) return em_fail(err, "mkmodel: NULL options");
    if (check_shape(&o->shape, err)) return -1;
    em_gguf *g;
    uint32_t n_vocab;
    if (resolve_vocab(o, &g, &n_vocab, err)) return -1;
    em_gguf_close(g);
    plan p;
    int rc = make_plan(&p, o, n_vocab, err);
    free(p.t);
    return rc;
}

int em_mkmodel_write(const char *path, const em_mkmodel_opts *o, em_mkmodel_stats *stats, em_err *err) {
    if (!o) return em_fail(err, "mkmodel: NULL options");
    if (!path || !*path) return em_fail(err, "mkmodel: empty output path");
    if (check_shape(&o->shape, err)) return -1;
    em_gguf *vg;
    uint32_t n_vocab;
    if (resolve_vocab(o, &vg, &n_vocab, err)) return -1;
    plan p;
    em_gguf_writer *w = NULL;
    int rc = -1;
    if (make_plan(&p, o, n_vocab, err)) goto done;
    p.n_threads = o->n_threads < 1 ? 1 : o->n_threads > MK_MAX_THREADS ? MK_MAX_THREADS : o->n_threads;
    w = em_gguf_writer_new(EM_GGUF_DEFAULT_ALIGNMENT);
    if (!w) {
        em_fail(err, "out of memory");
        goto done;
    }
    const em_mkmodel_shape *s = &o->shape;
    const em_mkmodel_ftype *ft = o->ftype ? o->ftype : &ftypes[0];
    const uint32_t hd = s->n_embd / s->n_head;
    char name[128], desc[160];
    snprintf(name, sizeof name, "%s", o->name ? o->name : s->name ? s->name : "mkmodel");
    snprintf(desc, sizeof desc, "random weights (ember mkmodel, %s, seed %llu)", ft->name,
             (unsigned long long)o->seed);
    if (em_gguf_write_str(w, "general.architecture", "llama", err) ||
        em_gguf_write_str(w, "general.name", name, err) ||
        em_gguf_write_str(w, "general.description", desc, err) ||
        em_gguf_write_u32(w, "llama.block_count", s->n_layer, err) ||
        em_gguf_write_u32(w, "llama.context_length", s->n_ctx_train, err) ||
        em_gguf_write_u32(w, "llama.embedding_length", s->n_embd, err) ||
        em_gguf_write_u32(w, "llama.feed_forward_length", s->n_ff, err) ||
        em_gguf_write_u32(w, "llama.attention.head_count", s->n_head, err) ||
        em_gguf_write_u32(w, "llama.attention.head_count_kv", s->n_head_kv, err) ||
        em_gguf_write_f32(w, "llama.rope.freq_base", s->rope_base, err) ||
        em_gguf_write_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, err) ||
        em_gguf_write_u32(w, "llama.attention.key_length", hd, err) ||
        em_gguf_write_u32(w, "llama.attention.value_length", hd, err) ||
        em_gguf_write_u32(w, "general.file_type", ft->file_type, err) ||
        em_gguf_write_u32(w, "llama.vocab_size", n_vocab, err) ||
        em_gguf_write_u32(w, "llama.rope.dimension_count", hd, err))
        goto done;
    if (s->n_expert > 0 && (em_gguf_write_u32(w, "llama.expert_count", s->n_expert, err) ||
                            em_gguf_write_u32(w, "llama.expert_used_count", s->n_expert_used, err)))
        goto done;
    if (vg) {
        for (uint64_t i = 0; i < vg->n_kv; i++) {
            const em_gguf_kv *kv = &vg->kv[i];
            if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0 && em_gguf_write_kv_copy(w, kv, err)) {
                em_fail_ctx(err, "%s", o->vocab_path);
                goto done;
            }
        }
    } else if (write_synthetic_vocab(w, n_vocab, err)) {
        goto done;
    }
    if (ft->base != EM_TYPE_F32 && ft->base != EM_TYPE_F16 && ft->base != EM_TYPE_BF16 &&
        em_gguf_write_u32(w, "general.quantization_version", 2, err))
        goto done;
    uint64_t n_params = 0, n_bytes = 0;
    for (size_t i = 0; i < p.n; i++) {
        const tdesc *d = &p.t[i];
        if (em_gguf_write_tensor_fn(w, d->name, d->type, d->n_dims, d->ne, fill_tensor, &p, err)) goto done;
        const uint64_t rows = (uint64_t)d->ne[1] * (uint64_t)d->ne[2];
        n_params += (uint64_t)d->ne[0] * rows;
        n_bytes += em_type_row_bytes(d->type, (uint64_t)d->ne[0]) * rows;
    }
    if (em_gguf_writer_finish(w, path, err)) goto done;
    if (stats) {
        stats->n_params = n_params;
        stats->n_bytes = n_bytes;
        stats->n_vocab = n_vocab;
        stats->n_tensors = (uint32_t)p.n;
    }
    rc = 0;
done:
    em_gguf_writer_free(w);
    em_gguf_close(vg);
    free(p.t);
    return rc;
}
