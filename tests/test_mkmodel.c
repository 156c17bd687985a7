/* test_mkmodel.c - synthetic models (src/model/mkmodel.c) and the streaming
 * GGUF writer they use: a tiny model loads and decodes, the bytes depend on
 * the seed only (not the thread count), the tokenizer is copied from a
 * vocabulary file, the Q4_K_M mix picks llama.cpp's types (dense and
 * mixture of experts), MoE files have Mixtral's layout and run, and bad
 * options fail cleanly without leaving a file. */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember.h"
#include "gguf/gguf.h"
#include "model/mkmodel.h"
#include "tensor/types.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-mkmodel-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name) {
    static char buf[2][300];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static em_mkmodel_opts tiny_opts(const char *type, uint64_t seed) {
    em_mkmodel_opts o;
    memset(&o, 0, sizeof o);
    o.shape = *em_mkmodel_find_shape("tiny");
    o.ftype = em_mkmodel_find_ftype(type);
    assert_non_null(o.ftype);
    o.seed = seed;
    o.n_vocab = 512;
    o.n_threads = 2;
    return o;
}

static void write_ok(const char *path, const em_mkmodel_opts *o, em_mkmodel_stats *st) {
    em_err err = {{0}};
    if (em_mkmodel_write(path, o, st, &err)) fail_msg("mkmodel %s: %s", path, err.msg);
}

static bool file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

static void test_tiny_loads_and_decodes(void **state) {
    (void)state;
    em_mkmodel_opts o = tiny_opts("q8_0", 7);
    em_mkmodel_stats st;
    const char *path = tmp("tiny.gguf");
    write_ok(path, &o, &st);
    assert_int_equal(st.n_vocab, 512);
    assert_int_equal(st.n_tensors, 2 * 9 + 3);
    /* 2 * 512 * 256 (embeddings, output) + 2 * (4 * 256 * 256 / 2 ... ) counted by hand: */
    uint64_t E = 256, F = 768, KV = 128, V = 512;
    assert_int_equal(st.n_params, 2 * V * E + E + 2 * (2 * E + E * E * 2 + 2 * E * KV + 3 * E * F));

    ember_error err;
    ember_model *m = ember_model_load(path, &err);
    if (!m) fail_msg("load: %s", err.msg);
    assert_int_equal(ember_model_n_vocab(m), 512);
    assert_int_equal(ember_model_n_ctx_train(m), 2048);
    assert_non_null(strstr(ember_model_desc(m), "Q8_0"));
    ember_ctx_params p = {.n_ctx = 64, .n_threads = 2};
    ember_ctx *c = ember_ctx_new(m, &p, &err);
    if (!c) fail_msg("ctx: %s", err.msg);
    int32_t tok[4] = {1, 300, 301, 302}, pos[4] = {0, 1, 2, 3}, seq[4] = {0};
    ember_batch b = {.n = 4, .token = tok, .pos = pos, .seq = seq};
    if (ember_decode(c, &b, &err)) fail_msg("decode: %s", err.msg);
    const float *l = ember_logits(c, 3);
    assert_non_null(l);
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < 512; i++) {
        assert_true(isfinite(l[i]));
        if (l[i] < lo) lo = l[i];
        if (l[i] > hi) hi = l[i];
    }
    assert_true(hi > lo); /* random weights: not all logits equal */
    /* the synthetic vocabulary tokenizes through byte fallback */
    int32_t *ids = NULL;
    size_t n = 0;
    if (ember_tokenize(m, "Hi", 2, true, false, &ids, &n, &err)) fail_msg("tokenize: %s", err.msg);
    assert_true(n >= 2);
    assert_int_equal(ids[0], 1);
    free(ids);
    ember_ctx_free(c);
    ember_model_free(m);
}

static void test_deterministic(void **state) {
    (void)state;
    em_mkmodel_opts o = tiny_opts("q4_0", 42);
    write_ok(tmp("a.gguf"), &o, NULL);
    o.n_threads = 1; /* the bytes must not depend on the thread count */
    write_ok(tmp("b.gguf"), &o, NULL);
    o.seed = 43;
    write_ok(tmp("c.gguf"), &o, NULL);
    size_t na = 0, nb = 0, nc = 0;
    char *a = read_file(tmp("a.gguf"), &na), *b = read_file(tmp("b.gguf"), &nb), *c = read_file(tmp("c.gguf"), &nc);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    /* same layout, different weights (the description names the seed too) */
    assert_int_equal(na, nc);
    em_err err = {{0}};
    em_gguf *ga = em_gguf_open_mem(a, na, &err), *gc = em_gguf_open_mem(c, nc, &err);
    assert_non_null(ga);
    assert_non_null(gc);
    const em_gguf_tensor *ta = em_gguf_find_tensor(ga, "blk.1.ffn_down.weight");
    const em_gguf_tensor *tc = em_gguf_find_tensor(gc, "blk.1.ffn_down.weight");
    assert_non_null(ta);
    assert_non_null(tc);
    assert_int_equal(ta->nbytes, tc->nbytes);
    assert_true(memcmp(ta->data, tc->data, (size_t)ta->nbytes) != 0);
    /* the weights look like N(0, 0.02^2), the norms like 1 */
    const em_gguf_tensor *tq = em_gguf_find_tensor(ga, "blk.0.attn_q.weight");
    const em_gguf_tensor *tn = em_gguf_find_tensor(ga, "blk.0.attn_norm.weight");
    assert_non_null(tq);
    assert_non_null(tn);
    assert_int_equal(tq->type, EM_TYPE_Q4_0);
    assert_int_equal(tn->type, EM_TYPE_F32);
    int64_t nq = tq->ne[0] * tq->ne[1];
    float *f = malloc((size_t)nq * sizeof *f);
    assert_non_null(f);
    em_type_traits_get(EM_TYPE_Q4_0)->to_f32(tq->data, f, nq);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < nq; i++) {
        s += f[i];
        s2 += (double)f[i] * f[i];
    }
    double mean = s / (double)nq, sd = sqrt(s2 / (double)nq - mean * mean);
    assert_true(fabs(mean) < 1e-3);
    assert_true(sd > 0.017 && sd < 0.023);
    const float *norm = tn->data;
    for (int64_t i = 0; i < tn->ne[0]; i++) assert_true(norm[i] > 0.9f && norm[i] < 1.1f);
    free(f);
    em_gguf_close(ga);
    em_gguf_close(gc);
    free(a);
    free(b);
    free(c);
}

static void test_real_vocab(void **state) {
    (void)state;
    const char *vocab = shared_path("vocab/ggml-vocab-llama-spm.gguf");
    if (!file_exists(vocab)) fail_msg("missing reference file %s", vocab);
    em_mkmodel_opts o = tiny_opts("f16", 1);
    o.vocab_path = vocab;
    o.n_vocab = 0;
    em_mkmodel_stats st;
    write_ok(tmp("spm.gguf"), &o, &st);
    assert_int_equal(st.n_vocab, 32000);
    ember_error err;
    ember_model *m = ember_model_load(tmp("spm.gguf"), &err);
    if (!m) fail_msg("load: %s", err.msg);
    assert_int_equal(ember_model_n_vocab(m), 32000);
    int32_t *ids = NULL;
    size_t n = 0;
    if (ember_tokenize(m, "Hello world", 11, false, false, &ids, &n, &err)) fail_msg("tokenize: %s", err.msg);
    assert_int_equal(n, 2); /* as in vocab/ggml-vocab-llama-spm.gguf.out */
    assert_int_equal(ids[0], 15043);
    assert_int_equal(ids[1], 3186);
    free(ids);
    ember_model_free(m);
    /* every tokenizer.* key was copied, byte for byte */
    em_err e = {{0}};
    em_gguf *gv = em_gguf_open(vocab, &e), *gm = em_gguf_open(tmp("spm.gguf"), &e);
    assert_non_null(gv);
    assert_non_null(gm);
    int copied = 0;
    for (uint64_t i = 0; i < gv->n_kv; i++) {
        const em_gguf_kv *kv = &gv->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        const em_gguf_kv *k2 = em_gguf_find(gm, key);
        if (!k2) fail_msg("%s was not copied", key);
        assert_int_equal(k2->type, kv->type);
        if (kv->type == EM_GGUF_ARRAY) {
            assert_int_equal(k2->arr_type, kv->arr_type);
            assert_int_equal(k2->arr_n, kv->arr_n);
            if (kv->arr_type == EM_GGUF_STRING)
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    assert_int_equal(k2->arr_strs[j].len, kv->arr_strs[j].len);
                    assert_memory_equal(k2->arr_strs[j].ptr, kv->arr_strs[j].ptr, kv->arr_strs[j].len);
                }
        } else if (kv->type == EM_GGUF_STRING) {
            assert_true(k2->v.str.len == kv->v.str.len && !memcmp(k2->v.str.ptr, kv->v.str.ptr, kv->v.str.len));
        } else {
            assert_true(k2->v.u64 == kv->v.u64);
        }
        copied++;
    }
    assert_true(copied >= 5);
    const em_gguf_tensor *te = em_gguf_find_tensor(gm, "token_embd.weight");
    assert_non_null(te);
    assert_int_equal(te->type, EM_TYPE_F16);
    assert_int_equal(te->ne[1], 32000);
    em_gguf_close(gv);
    em_gguf_close(gm);
}

static bool k_available(void) {
    const em_type_traits *a = em_type_traits_get(EM_TYPE_Q4_K), *b = em_type_traits_get(EM_TYPE_Q6_K);
    return a && a->from_f32 && b && b->from_f32;
}

static void test_q4_k_m_mix(void **state) {
    (void)state;
    em_mkmodel_opts o = tiny_opts("q4_k_m", 1);
    o.shape.n_layer = 8;
    em_err err = {{0}};
    if (!k_available()) {
        assert_int_equal(em_mkmodel_write(tmp("km.gguf"), &o, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "not available"));
        assert_false(file_exists(tmp("km.gguf")));
        return;
    }
    write_ok(tmp("km.gguf"), &o, NULL);
    em_gguf *g = em_gguf_open(tmp("km.gguf"), &err);
    assert_non_null(g);
    /* llama.cpp's use_more_bits(i, 8): layers 0, 3, 6, 7 */
    static const bool more[8] = {true, false, false, true, false, false, true, true};
    for (int l = 0; l < 8; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        assert_int_equal(em_gguf_find_tensor(g, name)->type, more[l] ? EM_TYPE_Q6_K : EM_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        assert_int_equal(em_gguf_find_tensor(g, name)->type, more[l] ? EM_TYPE_Q6_K : EM_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        assert_int_equal(em_gguf_find_tensor(g, name)->type, EM_TYPE_Q4_K);
    }
    assert_int_equal(em_gguf_find_tensor(g, "output.weight")->type, EM_TYPE_Q6_K);
    assert_int_equal(em_gguf_find_tensor(g, "token_embd.weight")->type, EM_TYPE_Q4_K);
    uint32_t ft = 0;
    assert_int_equal(em_gguf_get_u32(g, "general.file_type", &ft, false, &err), 0);
    assert_int_equal(ft, 15);
    em_gguf_close(g);
}

static void test_llama3_rope(void **state) {
    (void)state;
    em_mkmodel_opts o = tiny_opts("q8_0", 1);
    o.shape.llama3_rope = true;
    o.shape.rope_base = 500000.0f;
    write_ok(tmp("rope.gguf"), &o, NULL);
    em_err err = {{0}};
    em_gguf *g = em_gguf_open(tmp("rope.gguf"), &err);
    assert_non_null(g);
    const em_gguf_tensor *t = em_gguf_find_tensor(g, "rope_freqs.weight");
    assert_non_null(t);
    assert_int_equal(t->type, EM_TYPE_F32);
    assert_int_equal(t->ne[0], 32); /* head dim 64 / 2 */
    const float *f = t->data;
    assert_true(f[0] == 1.0f);   /* high frequencies unchanged */
    assert_true(f[31] == 32.0f); /* low frequencies scaled by the factor */
    for (int i = 1; i < 32; i++) assert_true(f[i] >= f[i - 1]);
    em_gguf_close(g);
    ember_error e;
    ember_model *m = ember_model_load(tmp("rope.gguf"), &e);
    if (!m) fail_msg("load: %s", e.msg);
    ember_model_free(m);
}

static void expect_fail(const em_mkmodel_opts *o, const char *needle) {
    em_err err = {{0}};
    const char *path = tmp("bad.gguf");
    assert_int_equal(em_mkmodel_check(o, &err), -1);
    if (!strstr(err.msg, needle)) fail_msg("expected '%s' in: %s", needle, err.msg);
    assert_null(strchr(err.msg, '\n'));
    err.msg[0] = 0;
    assert_int_equal(em_mkmodel_write(path, o, NULL, &err), -1);
    if (!strstr(err.msg, needle)) fail_msg("expected '%s' in: %s", needle, err.msg);
    assert_false(file_exists(path));
}

static void test_bad_options(void **state) {
    (void)state;
    em_mkmodel_opts o = tiny_opts("q8_0", 1);
    o.shape.n_embd = 250;
    expect_fail(&o, "not a multiple of heads");
    o = tiny_opts("q8_0", 1);
    o.shape.n_head_kv = 3;
    expect_fail(&o, "kv-heads 3 must divide heads 4");
    o = tiny_opts("q8_0", 1);
    o.shape.n_head = 8;
    o.shape.n_head_kv = 8;
    o.shape.n_embd = 8 * 6 + 8 * 0; /* head size 6: fine, but rows of 48 are not Q8_0 blocks */
    expect_fail(&o, "block size");
    o = tiny_opts("q8_0", 1);
    o.shape.n_embd = 4 * 7; /* odd head size */
    expect_fail(&o, "must be even");
    o = tiny_opts("q8_0", 1);
    o.shape.n_layer = 0;
    expect_fail(&o, "layers 0");
    o = tiny_opts("q8_0", 1);
    o.n_vocab = 100;
    expect_fail(&o, "synthetic vocabulary");
    o = tiny_opts("q8_0", 1);
    o.vocab_path = tmp("no-such-vocab.gguf");
    expect_fail(&o, "no-such-vocab.gguf");
    const char *vocab = shared_path("vocab/ggml-vocab-llama-spm.gguf");
    if (file_exists(vocab)) {
        o = tiny_opts("q8_0", 1);
        o.vocab_path = vocab;
        o.n_vocab = 1000;
        expect_fail(&o, "does not match the 32000 tokens");
    }
    /* a vocabulary file without tokens */
    {
        em_gguf_writer *w = em_gguf_writer_new(32);
        em_err err = {{0}};
        assert_int_equal(em_gguf_write_str(w, "general.architecture", "llama", &err), 0);
        assert_int_equal(em_gguf_writer_finish(w, tmp("notok.gguf"), &err), 0);
        em_gguf_writer_free(w);
        o = tiny_opts("q8_0", 1);
        o.vocab_path = tmp("notok.gguf");
        o.n_vocab = 0;
        expect_fail(&o, "tokenizer.ggml.tokens");
    }
    /* unwritable output: error, nothing left behind */
    o = tiny_opts("q8_0", 1);
    em_err err = {{0}};
    assert_int_equal(em_mkmodel_write(tmp("no-such-dir/x.gguf"), &o, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no-such-dir"));
    assert_null(em_mkmodel_find_shape("nope"));
    assert_null(em_mkmodel_find_ftype("q9_9"));
}

/* ---- mixture of experts ---- */

static em_mkmodel_opts moe_opts(const char *type, uint32_t n_expert, uint32_t n_used) {
    em_mkmodel_opts o = tiny_opts(type, 3);
    o.shape = *em_mkmodel_find_shape("tiny-moe");
    o.shape.n_expert = n_expert;
    o.shape.n_expert_used = n_used;
    return o;
}

static uint32_t get_u32(const em_gguf *g, const char *key) {
    uint32_t v = 0;
    em_err err = {{0}};
    if (em_gguf_get_u32(g, key, &v, false, &err)) fail_msg("%s: %s", key, err.msg);
    return v;
}

static const em_gguf_tensor *tensor_dims(const em_gguf *g, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1,
                                         int64_t ne2) {
    const em_gguf_tensor *t = em_gguf_find_tensor(g, name);
    if (!t) fail_msg("no tensor %s", name);
    if (t->n_dims != n_dims || t->ne[0] != ne0 || (n_dims > 1 && t->ne[1] != ne1) || (n_dims > 2 && t->ne[2] != ne2))
        fail_msg("%s: %u dims %lld x %lld x %lld, expected %u dims %lld x %lld x %lld", name, t->n_dims,
                 (long long)t->ne[0], (long long)t->ne[1], (long long)(t->n_dims > 2 ? t->ne[2] : 1), n_dims,
                 (long long)ne0, (long long)ne1, (long long)ne2);
    return t;
}

/* Mixtral's layout: stacked experts [n_embd, n_ff, n_expert] (down:
 * [n_ff, n_embd, n_expert]), an F32 router [n_embd, n_expert], the expert
 * counts in the metadata; ember loads it, a decode step reads exactly the
 * chosen experts' slices, and it generates. */
static void test_moe_layout_and_decode(void **state) {
    (void)state;
    const uint32_t X = 4, U = 2;
    em_mkmodel_opts o = moe_opts("q8_0", X, U);
    em_mkmodel_stats st;
    const char *path = tmp("moe.gguf");
    write_ok(path, &o, &st);
    const uint64_t E = 256, F = 512, KV = 128, V = 512, L = 2;
    assert_int_equal(st.n_tensors, L * 10 + 3);
    assert_int_equal(st.n_params, 2 * V * E + E + L * (2 * E + 2 * E * E + 2 * E * KV + E * X + 3 * E * F * X));
    em_err err = {{0}};
    em_gguf *g = em_gguf_open(path, &err);
    if (!g) fail_msg("open: %s", err.msg);
    assert_int_equal(get_u32(g, "llama.expert_count"), X);
    assert_int_equal(get_u32(g, "llama.expert_used_count"), U);
    assert_int_equal(get_u32(g, "llama.feed_forward_length"), F);
    uint64_t expert_bytes = 0; /* per token: U of X experts of every layer */
    for (uint32_t l = 0; l < L; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%u.ffn_gate_inp.weight", l);
        assert_int_equal(tensor_dims(g, n, 2, E, X, 0)->type, EM_TYPE_F32);
        static const char *exps[] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "blk.%u.%s.weight", l, exps[k]);
            const em_gguf_tensor *t = k < 2 ? tensor_dims(g, n, 3, E, F, X) : tensor_dims(g, n, 3, F, E, X);
            assert_int_equal(t->type, EM_TYPE_Q8_0);
            /* every expert its own random weights */
            const uint64_t slice = t->nbytes / X;
            assert_true(memcmp(t->data, (const uint8_t *)t->data + slice, (size_t)slice) != 0);
            expert_bytes += slice * U;
        }
        static const char *dense[] = {"ffn_gate", "ffn_up", "ffn_down"};
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "blk.%u.%s.weight", l, dense[k]);
            assert_null(em_gguf_find_tensor(g, n));
        }
        snprintf(n, sizeof n, "blk.%u.attn_k.weight", l);
        assert_int_equal(tensor_dims(g, n, 2, E, KV, 0)->type, EM_TYPE_Q8_0);
    }
    em_gguf_close(g);

    ember_error e;
    ember_model *m = ember_model_load(path, &e);
    if (!m) fail_msg("load: %s", e.msg);
    ember_ctx_params p = {.n_ctx = 64, .n_threads = 2};
    ember_ctx *c = ember_ctx_new(m, &p, &e);
    if (!c) fail_msg("ctx: %s", e.msg);
    int32_t tok[3] = {1, 300, 301}, pos[3] = {0, 1, 2}, seq[3] = {0};
    ember_batch b = {.n = 3, .token = tok, .pos = pos, .seq = seq};
    if (ember_decode(c, &b, &e)) fail_msg("decode: %s", e.msg);
    /* greedy generation, one token at a time */
    int32_t next = 0;
    for (int step = 0; step < 4; step++) {
        const float *lg = ember_logits(c, step == 0 ? 2 : 0);
        assert_non_null(lg);
        float best = -INFINITY, lo = INFINITY;
        for (int i = 0; i < (int)V; i++) {
            assert_true(isfinite(lg[i]));
            if (lg[i] > best) { best = lg[i]; next = i; }
            if (lg[i] < lo) lo = lg[i];
        }
        assert_true(best > lo);
        int32_t p1 = 3 + step;
        ember_batch b1 = {.n = 1, .token = &next, .pos = &p1, .seq = seq};
        if (ember_decode(c, &b1, &e)) fail_msg("decode step %d: %s", step, e.msg);
        assert_int_equal(ember_debug_expert_bytes(c), expert_bytes);
    }
    ember_ctx_free(c);
    ember_model_free(m);
}

/* The Q4_K_M mix of a MoE is llama-quantize's: every tensor of the shared
 * synth-moe-Q4_K_M.gguf (1 layer, 8 experts, made by llama-quantize from an
 * F32 file) has the same type and shape in ours of the same dimensions. On 8
 * layers: ffn_down_exps follows ffn_down's use_more_bits rule, and with
 * 8 experts attn_k/attn_v are Q8_0 and attn_output Q5_K; with 4 experts the
 * dense rules apply. */
static void test_moe_q4_k_m_mix(void **state) {
    (void)state;
    if (!k_available()) fail_msg("this build has no K-quant quantizers");
    em_err err = {{0}};
    const char *ref_path = shared_path("models/synth/synth-moe-Q4_K_M.gguf");
    em_gguf *ref = em_gguf_open(ref_path, &err);
    if (!ref) fail_msg("%s: %s", ref_path, err.msg);
    em_mkmodel_opts o = moe_opts("q4_k_m", 8, 2);
    o.shape.n_layer = get_u32(ref, "llama.block_count");
    o.shape.n_embd = get_u32(ref, "llama.embedding_length");
    o.shape.n_ff = get_u32(ref, "llama.feed_forward_length");
    o.shape.n_head = get_u32(ref, "llama.attention.head_count");
    o.shape.n_head_kv = get_u32(ref, "llama.attention.head_count_kv");
    o.shape.n_expert = get_u32(ref, "llama.expert_count");
    o.shape.n_expert_used = get_u32(ref, "llama.expert_used_count");
    o.n_vocab = get_u32(ref, "llama.vocab_size");
    write_ok(tmp("moe-ref.gguf"), &o, NULL);
    em_gguf *g = em_gguf_open(tmp("moe-ref.gguf"), &err);
    assert_non_null(g);
    assert_int_equal(g->n_tensors, ref->n_tensors);
    for (uint64_t i = 0; i < ref->n_tensors; i++) {
        const em_gguf_tensor *r = &ref->tensors[i];
        const char *name = r->name;
        const em_gguf_tensor *t = em_gguf_find_tensor(g, name);
        if (!t) fail_msg("no %s", name);
        if (t->type != r->type)
            fail_msg("%s: %s, llama-quantize chose %s", name, em_type_name(t->type), em_type_name(r->type));
        assert_int_equal(t->n_dims, r->n_dims);
        for (uint32_t d = 0; d < r->n_dims; d++) assert_int_equal(t->ne[d], r->ne[d]);
    }
    assert_int_equal(get_u32(g, "general.file_type"), get_u32(ref, "general.file_type"));
    em_gguf_close(g);
    em_gguf_close(ref);

    static const bool more[8] = {true, false, false, true, false, false, true, true}; /* use_more_bits(i, 8) */
    for (int variant = 0; variant < 2; variant++) {
        const uint32_t X = variant == 0 ? 8 : 4;
        o = moe_opts("q4_k_m", X, 2);
        o.shape.n_layer = 8;
        write_ok(tmp("moe-km.gguf"), &o, NULL);
        g = em_gguf_open(tmp("moe-km.gguf"), &err);
        assert_non_null(g);
        for (int l = 0; l < 8; l++) {
            char n[64];
#define TYPE_OF(what) (snprintf(n, sizeof n, "blk.%d." what ".weight", l), em_gguf_find_tensor(g, n)->type)
            assert_int_equal(TYPE_OF("ffn_down_exps"), more[l] ? EM_TYPE_Q6_K : EM_TYPE_Q4_K);
            assert_int_equal(TYPE_OF("ffn_gate_exps"), EM_TYPE_Q4_K);
            assert_int_equal(TYPE_OF("ffn_up_exps"), EM_TYPE_Q4_K);
            assert_int_equal(TYPE_OF("ffn_gate_inp"), EM_TYPE_F32);
            assert_int_equal(TYPE_OF("attn_q"), EM_TYPE_Q4_K);
            if (X == 8) {
                assert_int_equal(TYPE_OF("attn_k"), EM_TYPE_Q8_0);
                assert_int_equal(TYPE_OF("attn_v"), EM_TYPE_Q8_0);
                assert_int_equal(TYPE_OF("attn_output"), EM_TYPE_Q5_K);
            } else {
                assert_int_equal(TYPE_OF("attn_k"), EM_TYPE_Q4_K);
                assert_int_equal(TYPE_OF("attn_v"), more[l] ? EM_TYPE_Q6_K : EM_TYPE_Q4_K);
                assert_int_equal(TYPE_OF("attn_output"), EM_TYPE_Q4_K);
            }
#undef TYPE_OF
        }
        assert_int_equal(em_gguf_find_tensor(g, "output.weight")->type, EM_TYPE_Q6_K);
        em_gguf_close(g);
    }
    /* plain types stay pure, the router F32 */
    o = moe_opts("q4_0", 8, 2);
    write_ok(tmp("moe-q4.gguf"), &o, NULL);
    g = em_gguf_open(tmp("moe-q4.gguf"), &err);
    assert_non_null(g);
    assert_int_equal(em_gguf_find_tensor(g, "blk.0.attn_k.weight")->type, EM_TYPE_Q4_0);
    assert_int_equal(em_gguf_find_tensor(g, "blk.1.ffn_down_exps.weight")->type, EM_TYPE_Q4_0);
    assert_int_equal(em_gguf_find_tensor(g, "blk.1.ffn_gate_inp.weight")->type, EM_TYPE_F32);
    em_gguf_close(g);
}

static void test_moe_bad_options(void **state) {
    (void)state;
    em_mkmodel_opts o = moe_opts("q8_0", 300, 2);
    expect_fail(&o, "experts 300 is out of range");
    o = moe_opts("q8_0", 4, 0);
    expect_fail(&o, "experts-used 0 must be in [1, experts 4]");
    o = moe_opts("q8_0", 4, 5);
    expect_fail(&o, "experts-used 5 must be in [1, experts 4]");
    o = moe_opts("q8_0", 0, 2);
    expect_fail(&o, "needs experts");
    const em_mkmodel_shape *s = em_mkmodel_find_shape("mixtral-mini");
    assert_non_null(s);
    assert_int_equal(s->n_expert, 8);
    assert_int_equal(s->n_expert_used, 2);
    assert_int_equal(em_mkmodel_find_shape("llama-3.2-1b")->n_expert, 0);
}

/* ---- streaming writer ---- */

static int fill_pattern(void *user, uint64_t index, const char *name, void *dst, uint64_t nbytes, em_err *err) {
    int *calls = user;
    (*calls)++;
    if (strcmp(name, "boom") == 0) return em_fail(err, "fill failed for %s", name);
    memset(dst, (int)(0x10 + index), (size_t)nbytes);
    return 0;
}

static void test_stream_writer(void **state) {
    (void)state;
    int calls = 0;
    em_err err = {{0}};
    em_gguf_writer *w = em_gguf_writer_new(64);
    int64_t ne[2] = {64, 3};
    float direct[64 * 3];
    for (int i = 0; i < 64 * 3; i++) direct[i] = (float)i;
    assert_int_equal(em_gguf_write_tensor_fn(w, "a", EM_TYPE_Q8_0, 2, ne, fill_pattern, &calls, &err), 0);
    assert_int_equal(em_gguf_write_tensor(w, "b", EM_TYPE_F32, 2, ne, direct, &err), 0);
    assert_int_equal(em_gguf_write_tensor_fn(w, "c", EM_TYPE_F16, 1, ne, fill_pattern, &calls, &err), 0);
    assert_int_equal(em_gguf_write_tensor_fn(w, "a", EM_TYPE_F16, 1, ne, fill_pattern, &calls, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(em_gguf_write_tensor_fn(w, "d", EM_TYPE_F16, 1, ne, NULL, &calls, &err), -1);
    assert_int_equal(em_gguf_writer_n_tensors(w), 3);
    assert_int_equal(em_gguf_writer_finish(w, tmp("s.gguf"), &err), 0);
    assert_int_equal(calls, 2);
    em_gguf_writer_free(w);
    em_gguf *g = em_gguf_open(tmp("s.gguf"), &err);
    assert_non_null(g);
    assert_int_equal(g->n_tensors, 3);
    const em_gguf_tensor *a = em_gguf_find_tensor(g, "a"), *b = em_gguf_find_tensor(g, "b"),
                         *c = em_gguf_find_tensor(g, "c");
    assert_int_equal(a->nbytes, 2 * 34 * 3);
    for (uint64_t i = 0; i < a->nbytes; i++) assert_int_equal(((const uint8_t *)a->data)[i], 0x10);
    assert_memory_equal(b->data, direct, sizeof direct);
    assert_int_equal(c->nbytes, 128);
    for (uint64_t i = 0; i < c->nbytes; i++) assert_int_equal(((const uint8_t *)c->data)[i], 0x12);
    assert_int_equal(a->offset % 64, 0);
    assert_int_equal(c->offset % 64, 0);
    em_gguf_close(g);

    /* a failing callback fails the write and leaves no file */
    w = em_gguf_writer_new(32);
    assert_int_equal(em_gguf_write_tensor_fn(w, "boom", EM_TYPE_F32, 2, ne, fill_pattern, &calls, &err), 0);
    assert_int_equal(em_gguf_writer_finish(w, tmp("boom.gguf"), &err), -1);
    assert_non_null(strstr(err.msg, "fill failed for boom"));
    assert_false(file_exists(tmp("boom.gguf")));
    em_gguf_writer_free(w);
}

/* em_gguf_write_kv_copy: every value type survives a copy byte for byte. */
static void test_kv_copy(void **state) {
    (void)state;
    em_err err = {{0}};
    /* a source file with one pair of each type, built by hand */
    uint8_t buf[1024];
    size_t n = 0;
#define PUT(p, len) (memcpy(buf + n, (p), (len)), n += (len))
#define PUT32(v) do { uint32_t x_ = (v); PUT(&x_, 4); } while (0)
#define PUT64(v) do { uint64_t x_ = (v); PUT(&x_, 8); } while (0)
#define KEY(k) do { PUT64(strlen(k)); PUT(k, strlen(k)); } while (0)
    PUT32(EM_GGUF_MAGIC);
    PUT32(3);
    PUT64(0);  /* tensors */
    PUT64(12); /* pairs */
    uint8_t u8 = 200; int8_t i8 = -5; uint16_t u16 = 60000; int16_t i16 = -30000;
    int32_t i32 = -2000000000; uint64_t u64 = 0x123456789abcdefull; int64_t i64 = -0x123456789abcdll;
    float f32 = 1.5f; double f64 = -2.25; uint8_t b = 1;
    KEY("a.u8"); PUT32(EM_GGUF_U8); PUT(&u8, 1);
    KEY("a.i8"); PUT32(EM_GGUF_I8); PUT(&i8, 1);
    KEY("a.u16"); PUT32(EM_GGUF_U16); PUT(&u16, 2);
    KEY("a.i16"); PUT32(EM_GGUF_I16); PUT(&i16, 2);
    KEY("a.u32"); PUT32(EM_GGUF_U32); PUT32(4000000000u);
    KEY("a.i32"); PUT32(EM_GGUF_I32); PUT(&i32, 4);
    KEY("a.u64"); PUT32(EM_GGUF_U64); PUT(&u64, 8);
    KEY("a.i64"); PUT32(EM_GGUF_I64); PUT(&i64, 8);
    KEY("a.f32"); PUT32(EM_GGUF_F32); PUT(&f32, 4);
    KEY("a.f64"); PUT32(EM_GGUF_F64); PUT(&f64, 8);
    KEY("a.bool"); PUT32(EM_GGUF_BOOL); PUT(&b, 1);
    KEY("a.str"); PUT32(EM_GGUF_STRING); PUT64(3); PUT("x\0y", 3); /* embedded NUL */
#undef PUT
#undef PUT32
#undef PUT64
#undef KEY
    em_gguf *src = em_gguf_open_mem(buf, n, &err);
    if (!src) fail_msg("source: %s", err.msg);
    em_gguf_writer *w = em_gguf_writer_new(32);
    for (uint64_t i = 0; i < src->n_kv; i++)
        if (em_gguf_write_kv_copy(w, &src->kv[i], &err)) fail_msg("copy %llu: %s", (unsigned long long)i, err.msg);
    assert_int_equal(em_gguf_write_kv_copy(w, &src->kv[0], &err), -1); /* duplicate */
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(em_gguf_writer_finish(w, tmp("kv.gguf"), &err), 0);
    em_gguf_writer_free(w);
    size_t len = 0;
    char *copy = read_file(tmp("kv.gguf"), &len);
    assert_non_null(copy);
    /* same header and pairs; the writer pads the (empty) data section */
    assert_true(len >= n);
    assert_memory_equal(copy, buf, n);
    free(copy);
    em_gguf_close(src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_loads_and_decodes),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_real_vocab),
        cmocka_unit_test(test_q4_k_m_mix),
        cmocka_unit_test(test_llama3_rope),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_moe_layout_and_decode),
        cmocka_unit_test(test_moe_q4_k_m_mix),
        cmocka_unit_test(test_moe_bad_options),
        cmocka_unit_test(test_stream_writer),
        cmocka_unit_test(test_kv_copy),
    };
    return cmocka_run_group_tests_name("mkmodel", tests, setup, teardown);
}
