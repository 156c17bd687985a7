/* model_load.c - binds GGUF metadata and tensors to an em_model, refusing
 * any file whose metadata and tensors disagree. Every check here is one the
 * forward pass relies on to stay in bounds. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "../base/checked.h"
#include "../base/half.h"

/* Upper bounds far beyond any real model, so that products of them cannot
 * overflow and scratch sizes stay sane for hostile metadata. */
#define MAX_EMBD (1u << 16)
#define MAX_FF (1u << 18)
#define MAX_LAYERS 1024u
#define MAX_HEADS 1024u
#define MAX_HEAD_DIM ((uint32_t)EM_MAX_HEAD_DIM)
#define MAX_VOCAB (1u << 22)
#define MAX_CTX (1u << 24)
#define MAX_EXPERTS 256u

static int arch_key(char *buf, size_t cap, const em_arch *a, const char *suffix) {
    return snprintf(buf, cap, "%s.%s", a->name, suffix) >= (int)cap ? -1 : 0;
}

static int get_hp_u32(const em_gguf *g, const em_arch *a, const char *suffix, uint32_t *out, bool ok_missing,
                      uint32_t lo, uint32_t hi, em_err *err) {
    char key[128];
    arch_key(key, sizeof key, a, suffix);
    const em_gguf_kv *kv = em_gguf_find(g, key);
    if (kv && kv->type == EM_GGUF_ARRAY)
        return em_fail(err, "metadata '%s' is a per-layer array; only a single value is supported", key);
    bool present = kv != NULL;
    if (em_gguf_get_u32(g, key, out, ok_missing, err)) return -1;
    if (present && (*out < lo || *out > hi))
        return em_fail(err, "metadata '%s' = %u is out of range [%u, %u]", key, *out, lo, hi);
    return 0;
}

static int get_hp_f32(const em_gguf *g, const em_arch *a, const char *suffix, float *out, em_err *err) {
    char key[128];
    arch_key(key, sizeof key, a, suffix);
    if (em_gguf_get_f32(g, key, out, true, err)) return -1;
    if (!isfinite(*out)) return em_fail(err, "metadata '%s' is not a finite number", key);
    return 0;
}

/* Binds tensor `name` with the expected shape [cols, rows, n_mat] (n_mat 0
 * means a 2-D tensor, rows 0 a 1-D one). need_dot: must be usable as a
 * matmul weight; else (norms, rope factors) must be F32. */
static int bind(const em_model *m, em_weight *w, const char *name, int64_t cols, int64_t rows, int64_t n_mat,
                bool need_dot, bool optional, em_err *err) {
    const em_gguf_tensor *t = em_gguf_find_tensor(m->gguf, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (optional) return 0;
        return em_fail(err, "missing tensor '%s' (block_count = %u)", name, m->hp.n_layer);
    }
    int64_t want[4] = {cols, rows ? rows : 1, n_mat ? n_mat : 1, 1};
    if (memcmp(t->ne, want, sizeof want) != 0)
        return em_fail(err, "tensor '%s' has shape [%lld, %lld, %lld, %lld] but the metadata implies [%lld, %lld, %lld, 1]",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                       (long long)want[0], (long long)want[1], (long long)want[2]);
    if (need_dot) {
        w->tt = em_type_traits_get(t->type);
        if (!w->tt || !w->tt->vec_dot)
            return em_fail(err, "tensor '%s' uses unsupported tensor type %s", name,
                           em_type_name(t->type) ? em_type_name(t->type) : "?");
    } else if (t->type != EM_TYPE_F32) {
        return em_fail(err, "tensor '%s' has type %s; norm and rope-factor tensors must be F32", name,
                       em_type_name(t->type));
    } else {
        w->tt = em_type_traits_get(EM_TYPE_F32);
    }
    w->data = t->data;
    w->cols = t->ne[0];
    w->rows = t->ne[1];
    w->n_mat = t->ne[2];
    w->row_bytes = em_type_row_bytes(t->type, (uint64_t)t->ne[0]);
    w->name = t->name;
    return 0;
}

static int load_hparams(em_model *m, em_err *err) {
    const em_gguf *g = m->gguf;
    const em_arch *a = m->arch;
    em_hparams *hp = &m->hp;
    if (get_hp_u32(g, a, "embedding_length", &hp->n_embd, false, 1, MAX_EMBD, err)) return -1;
    if (get_hp_u32(g, a, "block_count", &hp->n_layer, false, 1, MAX_LAYERS, err)) return -1;
    if (get_hp_u32(g, a, "feed_forward_length", &hp->n_ff, false, 1, MAX_FF, err)) return -1;
    if (get_hp_u32(g, a, "attention.head_count", &hp->n_head, false, 1, MAX_HEADS, err)) return -1;
    hp->n_head_kv = hp->n_head;
    if (get_hp_u32(g, a, "attention.head_count_kv", &hp->n_head_kv, true, 1, MAX_HEADS, err)) return -1;
    if (hp->n_head % hp->n_head_kv != 0)
        return em_fail(err, "attention.head_count %u is not a multiple of attention.head_count_kv %u", hp->n_head,
                       hp->n_head_kv);
    hp->n_ctx_train = 2048;
    if (get_hp_u32(g, a, "context_length", &hp->n_ctx_train, true, 1, MAX_CTX, err)) return -1;
    uint32_t key_len = 0, val_len = 0;
    if (get_hp_u32(g, a, "attention.key_length", &key_len, true, 1, MAX_HEAD_DIM, err)) return -1;
    if (get_hp_u32(g, a, "attention.value_length", &val_len, true, 1, MAX_HEAD_DIM, err)) return -1;
    if (key_len == 0) {
        if (hp->n_embd % hp->n_head != 0)
            return em_fail(err, "embedding_length %u is not divisible by attention.head_count %u", hp->n_embd,
                           hp->n_head);
        key_len = hp->n_embd / hp->n_head;
    }
    if (val_len == 0) val_len = key_len;
    if (val_len != key_len)
        return em_fail(err, "attention.value_length %u differs from key_length %u (unsupported)", val_len, key_len);
    if (key_len > MAX_HEAD_DIM) return em_fail(err, "head dimension %u exceeds %u", key_len, MAX_HEAD_DIM);
    hp->head_dim = key_len;
    hp->n_rot = key_len;
    if (get_hp_u32(g, a, "rope.dimension_count", &hp->n_rot, true, 0, MAX_HEAD_DIM, err)) return -1;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return em_fail(err, "rope.dimension_count %u must be even and at most the head dimension %u", hp->n_rot,
                       hp->head_dim);
    if (get_hp_u32(g, a, "expert_count", &hp->n_expert, true, 0, MAX_EXPERTS, err)) return -1;
    if (hp->n_expert > 0) {
        if (get_hp_u32(g, a, "expert_used_count", &hp->n_expert_used, false, 1, hp->n_expert, err)) return -1;
        hp->n_ff_exp = hp->n_ff;
        if (get_hp_u32(g, a, "expert_feed_forward_length", &hp->n_ff_exp, true, 1, MAX_FF, err)) return -1;
        hp->moe_step = 1;
        if (a->moe_step_key &&
            get_hp_u32(g, a, "interleave_moe_layer_step", &hp->moe_step, true, 1, MAX_LAYERS, err))
            return -1;
    }
    hp->rms_eps = a->default_rms_eps;
    if (get_hp_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err)) return -1;
    if (!(hp->rms_eps > 0.0f && hp->rms_eps < 1.0f))
        return em_fail(err, "attention.layer_norm_rms_epsilon %g must be in (0, 1)", (double)hp->rms_eps);
    hp->rope_base = a->default_rope_base;
    if (get_hp_f32(g, a, "rope.freq_base", &hp->rope_base, err)) return -1;
    if (!(hp->rope_base > 1.0f)) return em_fail(err, "rope.freq_base %g must be > 1", (double)hp->rope_base);
    hp->rope_freq_scale = 1.0f;
    char key[128];
    em_str st = {0};
    arch_key(key, sizeof key, a, "rope.scaling.type");
    if (em_gguf_get_str(g, key, &st, true, err)) return -1;
    if (st.ptr && !em_str_eq(st, "none")) {
        if (!em_str_eq(st, "linear"))
            return em_fail(err, "%s '%.*s' is not supported (none, linear)", key, (int)(st.len > 32 ? 32 : st.len),
                           st.ptr);
        float factor = 1.0f;
        if (get_hp_f32(g, a, "rope.scaling.factor", &factor, err)) return -1;
        if (!(factor >= 1.0f)) return em_fail(err, "rope.scaling.factor %g must be >= 1", (double)factor);
        hp->rope_freq_scale = 1.0f / factor;
    }
    return 0;
}

static int bind_weights(em_model *m, em_err *err) {
    const em_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, F = hp->n_ff, V = hp->n_vocab;
    int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    if (bind(m, &m->tok_embd, "token_embd.weight", E, V, 0, true, false, err)) return -1;
    if (bind(m, &m->output_norm, "output_norm.weight", E, 0, 0, false, false, err)) return -1;
    if (bind(m, &m->output, "output.weight", E, V, 0, true, m->arch->tied_output_ok, err)) return -1;
    if (!m->output.data) m->output = m->tok_embd;
    em_weight rf;
    if (bind(m, &rf, "rope_freqs.weight", hp->n_rot / 2, 0, 0, false, true, err)) return -1;
    if (rf.data) {
        m->rope_freqs = (const float *)rf.data;
        for (uint32_t i = 0; i < hp->n_rot / 2; i++)
            if (!(m->rope_freqs[i] > 0.0f) || !isfinite(m->rope_freqs[i]))
                return em_fail(err, "rope_freqs.weight[%u] = %g is not a positive number", i,
                               (double)m->rope_freqs[i]);
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return em_fail(err, "out of memory");
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        em_layer *L = &m->layers[il];
        char n[EM_GGUF_MAX_NAME + 16];
#define B(field, suffix, cols, rows, dot)                                              \
    snprintf(n, sizeof n, "blk.%u." suffix ".weight", il);                             \
    if (bind(m, &L->field, n, cols, rows, 0, dot, false, err)) return -1;
        B(attn_norm, "attn_norm", E, 0, false);
        B(wq, "attn_q", E, Q, true);
        B(wk, "attn_k", E, KV, true);
        B(wv, "attn_v", E, KV, true);
        B(wo, "attn_output", Q, E, true);
        B(ffn_norm, "ffn_norm", E, 0, false);
        L->is_moe = hp->n_expert > 0 && (il + 1) % hp->moe_step == 0;
        L->use_rope = !(m->arch->no_rope_every && (il + 1) % (uint32_t)m->arch->no_rope_every == 0);
        L->chunk = L->use_rope ? m->arch->chunk_size : 0;
        if (!L->is_moe) {
            B(ffn_gate, "ffn_gate", E, F, true);
            B(ffn_up, "ffn_up", E, F, true);
            B(ffn_down, "ffn_down", F, E, true);
        } else {
            const int64_t X = hp->n_expert, FE = hp->n_ff_exp;
            B(ffn_gate_inp, "ffn_gate_inp", E, X, true);
#define BX(field, suffix, cols, rows)                                                  \
    snprintf(n, sizeof n, "blk.%u." suffix ".weight", il);                             \
    if (bind(m, &L->field, n, cols, rows, X, true, false, err)) return -1;
            BX(ffn_gate_exps, "ffn_gate_exps", E, FE);
            BX(ffn_up_exps, "ffn_up_exps", E, FE);
            BX(ffn_down_exps, "ffn_down_exps", FE, E);
#undef BX
            if (m->arch->shared_expert) {
                B(ffn_gate_shexp, "ffn_gate_shexp", E, FE, true);
                B(ffn_up_shexp, "ffn_up_shexp", E, FE, true);
                B(ffn_down_shexp, "ffn_down_shexp", FE, E, true);
            }
        }
#undef B
    }
    return 0;
}

em_model *em_model_from_gguf(em_gguf *g, em_err *err) {
    em_half_init();
    em_model *m = calloc(1, sizeof *m);
    if (!m) { em_gguf_close(g); em_fail(err, "out of memory"); return NULL; }
    m->gguf = g;
    em_str arch;
    if (em_gguf_get_str(g, "general.architecture", &arch, false, err)) goto fail;
    m->arch = em_arch_find(arch.ptr, arch.len);
    if (!m->arch) {
        em_fail(err, "unsupported architecture '%.*s' (supported: %s)", (int)(arch.len > 32 ? 32 : arch.len),
                arch.ptr, em_arch_list());
        goto fail;
    }
    em_str name = {0};
    if (em_gguf_get_str(g, "general.name", &name, true, err)) goto fail;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(name.len > 100 ? 100 : name.len), name.ptr ? name.ptr : "");
    if (load_hparams(m, err)) goto fail;
    m->tok = em_tokenizer_load(g, err);
    if (!m->tok) { em_fail_ctx(err, "tokenizer"); goto fail; }
    const em_gguf_tensor *te = em_gguf_find_tensor(g, "token_embd.weight");
    if (!te) { em_fail(err, "missing tensor 'token_embd.weight'"); goto fail; }
    int32_t nv = em_tokenizer_n_vocab(m->tok);
    if (te->ne[1] != nv) {
        em_fail(err, "vocabulary has %d tokens but token_embd.weight has %lld rows", nv, (long long)te->ne[1]);
        goto fail;
    }
    if ((uint32_t)nv > MAX_VOCAB) { em_fail(err, "vocabulary of %d tokens exceeds %u", nv, MAX_VOCAB); goto fail; }
    m->hp.n_vocab = (uint32_t)nv;
    uint32_t vs = 0;
    char key[128];
    arch_key(key, sizeof key, m->arch, "vocab_size");
    if (em_gguf_get_u32(g, key, &vs, true, err)) goto fail;
    if (vs && vs != m->hp.n_vocab) {
        em_fail(err, "%s = %u disagrees with the %u tokens of the vocabulary", key, vs, m->hp.n_vocab);
        goto fail;
    }
    if (bind_weights(m, err)) goto fail;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t nel = 1;
        for (int d = 0; d < 4; d++) nel *= (uint64_t)g->tensors[i].ne[d];
        m->n_params += nel;
        m->weight_bytes += g->tensors[i].nbytes;
    }
    return m;
fail:
    em_model_free(m);
    return NULL;
}

em_model *em_model_load(const char *path, em_err *err) {
    em_gguf *g = em_gguf_open(path, err);
    if (!g) return NULL;
    em_model *m = em_model_from_gguf(g, err);
    if (!m) em_fail_ctx(err, "%s", path);
    return m;
}

int em_model_mlock(const em_model *m, em_err *err) {
    const em_gguf *g = m->gguf;
    const double mib = (double)g->size / 1048576.0;
    if (mlock(g->base, (size_t)g->size) == 0) return 0;
    int e = errno;
    struct rlimit rl;
    if ((e == ENOMEM || e == EPERM || e == EAGAIN) && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
        rl.rlim_cur != RLIM_INFINITY)
        return em_fail(err,
                       "mlock of the %.1f MiB model failed (%s): RLIMIT_MEMLOCK is %llu KiB; raise it (ulimit -l, "
                       "limits.conf, systemd LimitMEMLOCK) or load without mlock",
                       mib, strerror(e), (unsigned long long)(rl.rlim_cur / 1024));
    return em_fail(err, "mlock of the %.1f MiB model failed: %s", mib, strerror(e));
}

void em_model_free(em_model *m) {
    if (!m) return;
    em_tokenizer_free(m->tok);
    free(m->layers);
    em_gguf_close(m->gguf);
    free(m);
}
