/* test_convert.c - llama2.c -> GGUF conversion.
 *
 * The reference files in shared/models/ were written by llama.cpp's
 * llama-convert-llama2c-to-ggml. Our output must have every tensor
 * byte-identical (names, shapes, offsets, data) and every metadata key
 * identical (order, type, value) except llama.context_length, which we set
 * to the model's real seq_len; with the context length forced to llama.cpp's
 * 128 the whole file must be byte-identical. Synthetic checkpoints cover
 * GQA, an unshared classifier, the tokenizer type rules and input
 * validation. */
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "model/llama2c.h"

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char p[4][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-test-convert-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static int teardown_all(void **state) {
    (void)state;
    if (!tmpdir[0]) return 0;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static char *must_read(const char *path, size_t *n) {
    char *d = read_file(path, n);
    if (!d) fail_msg("missing file %s", path);
    return d;
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Compares two parsed files key by key and tensor by tensor. The key named
 * `skip` must exist in both with the same type; its value is not compared. */
static void compare_gguf(const em_gguf *a, const em_gguf *b, const char *skip) {
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->alignment, b->alignment);
    assert_int_equal(a->data_offset, b->data_offset);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->n_kv, b->n_kv);
    for (uint64_t i = 0; i < a->n_kv; i++) {
        const em_gguf_kv *x = &a->kv[i], *y = &b->kv[i];
        if (x->key.len != y->key.len || memcmp(x->key.ptr, y->key.ptr, x->key.len))
            fail_msg("key %llu: '%.*s' vs '%.*s'", (unsigned long long)i, (int)x->key.len, x->key.ptr,
                     (int)y->key.len, y->key.ptr);
        if (x->type != y->type) fail_msg("key '%.*s': type %u vs %u", (int)x->key.len, x->key.ptr, x->type, y->type);
        if (skip && em_str_eq(x->key, skip)) continue;
        switch (x->type) {
        case EM_GGUF_STRING:
            assert_int_equal(x->v.str.len, y->v.str.len);
            assert_memory_equal(x->v.str.ptr, y->v.str.ptr, x->v.str.len);
            break;
        case EM_GGUF_ARRAY:
            assert_int_equal(x->arr_type, y->arr_type);
            assert_int_equal(x->arr_n, y->arr_n);
            if (x->arr_type == EM_GGUF_STRING) {
                for (uint64_t j = 0; j < x->arr_n; j++) {
                    if (x->arr_strs[j].len != y->arr_strs[j].len ||
                        memcmp(x->arr_strs[j].ptr, y->arr_strs[j].ptr, x->arr_strs[j].len))
                        fail_msg("key '%.*s' string %llu differs", (int)x->key.len, x->key.ptr,
                                 (unsigned long long)j);
                }
            } else {
                assert_int_equal(x->arr_type == EM_GGUF_I32 || x->arr_type == EM_GGUF_F32, 1);
                assert_memory_equal(x->arr_data, y->arr_data, x->arr_n * 4);
            }
            break;
        default:
            /* scalars: compare the union's bytes (doubles by bit pattern) */
            assert_memory_equal(&x->v, &y->v, sizeof x->v.u64);
        }
    }
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const em_gguf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->n_dims, y->n_dims);
        for (int d = 0; d < EM_GGUF_MAX_DIMS; d++) assert_int_equal(x->ne[d], y->ne[d]);
        assert_int_equal(x->offset, y->offset);
        assert_int_equal(x->nbytes, y->nbytes);
        if (memcmp(x->data, y->data, x->nbytes)) fail_msg("tensor %s: data differs", x->name);
    }
}

static void convert_ok(const char *model, const char *tok, const char *out, uint32_t n_ctx) {
    em_llama2c_opts o = {n_ctx};
    em_err err = {{0}};
    char m[4096], t[4096];
    snprintf(m, sizeof m, "%s", shared_path(model));
    snprintf(t, sizeof t, "%s", shared_path(tok));
    if (em_llama2c_convert(m, t, out, &o, &err)) fail_msg("convert %s: %s", model, err.msg);
}

static void check_reference(const char *model, const char *tok, const char *ref, uint32_t seq_len) {
    char refp[4096];
    snprintf(refp, sizeof refp, "%s", shared_path(ref));
    em_err err = {{0}};
    em_gguf *r = em_gguf_open(refp, &err);
    if (!r) fail_msg("reference %s: %s", refp, err.msg);

    /* default: real context length, everything else identical */
    const char *out = tmp("out.gguf");
    convert_ok(model, tok, out, 0);
    em_gguf *g = em_gguf_open(out, &err);
    if (!g) fail_msg("%s", err.msg);
    compare_gguf(g, r, "llama.context_length");
    uint32_t ctx_ours, ctx_ref;
    assert_int_equal(em_gguf_get_u32(g, "llama.context_length", &ctx_ours, false, &err), 0);
    assert_int_equal(em_gguf_get_u32(r, "llama.context_length", &ctx_ref, false, &err), 0);
    assert_int_equal(ctx_ours, seq_len);
    assert_int_equal(ctx_ref, 128); /* llama.cpp's built-in default */
    em_gguf_close(g);

    /* with llama.cpp's 128 the file is byte-identical */
    convert_ok(model, tok, out, 128);
    size_t na = 0, nb = 0;
    char *a = must_read(out, &na), *b = must_read(refp, &nb);
    assert_int_equal(na, nb);
    if (memcmp(a, b, na)) fail_msg("%s: output differs from %s", model, ref);
    free(a);
    free(b);
    em_gguf_close(r);
    unlink(out);
}

static void test_stories260K(void **state) {
    (void)state;
    check_reference("models/stories260K.bin", "models/tok512.bin", "models/stories260K.gguf", 512);
}

static void test_aidreams260K(void **state) {
    (void)state;
    check_reference("models/aidreams260K.bin", "models/aidreams_tok512.bin", "models/aidreams260K.gguf", 128);
}

/* ---- synthetic checkpoints ---- */

typedef struct {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
} hdr7;

static uint64_t n_floats(hdr7 h) {
    uint64_t dim = (uint64_t)h.dim, hid = (uint64_t)h.hidden, L = (uint64_t)h.layers;
    uint64_t V = (uint64_t)(h.vocab < 0 ? -h.vocab : h.vocab), head = dim / (uint64_t)h.heads;
    uint64_t kv = head * (uint64_t)h.kv_heads;
    return V * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim + 3 * L * hid * dim + dim +
           (uint64_t)h.seq * head + (h.vocab < 0 ? V * dim : 0);
}

/* Writes a checkpoint whose i-th float is i (so positions are checkable),
 * with `delta` floats more (or fewer) than the header implies. */
static void write_model(const char *path, hdr7 h, int64_t delta) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&h, 4, 7, f), 7);
    int64_t n = (int64_t)n_floats(h) + delta;
    for (int64_t i = 0; i < n; i++) {
        float v = (float)i;
        assert_int_equal(fwrite(&v, 4, 1, f), 1);
    }
    assert_int_equal(fclose(f), 0);
}

static void write_raw(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

typedef struct {
    uint8_t p[4096];
    size_t len;
} tokbuf;

static void tb_i32(tokbuf *t, int32_t v) { memcpy(t->p + t->len, &v, 4); t->len += 4; }
static void tb_tok(tokbuf *t, float score, const char *s, size_t len) {
    memcpy(t->p + t->len, &score, 4);
    t->len += 4;
    tb_i32(t, (int32_t)len);
    memcpy(t->p + t->len, s, len);
    t->len += len;
}

#define SYN_VOCAB 12
static const char *const SYN_TOKS[SYN_VOCAB] = {
    "anything", "\n<s>\n", "\n</s>\n", "", "<0x0A>", " a b", "<0xZZ>", "<0x+1", "<0x 7", "<0xF", "x\0y", "<0x",
};
static const size_t SYN_LENS[SYN_VOCAB] = {8, 5, 6, 0, 6, 4, 6, 5, 5, 4, 3, 3};
/* llama.cpp's results: <unk>/<s>/</s>, empty -> control, sscanf("<0x%02hhX>") -> byte */
static const char *const SYN_EXPECT[SYN_VOCAB] = {
    "<unk>", "<s>", "</s>", "", "<0x0A>", "\xe2\x96\x81\x61\xe2\x96\x81\x62", "<0xZZ>", "<0x+1", "<0x\xe2\x96\x81\x37",
    "<0xF", "x", "<0x",
};
static const int32_t SYN_TYPES[SYN_VOCAB] = {2, 3, 3, 3, 6, 1, 1, 6, 6, 6, 1, 1};

static void write_tokenizer(const char *path, int n) {
    tokbuf t = {{0}, 0};
    tb_i32(&t, 8);
    for (int i = 0; i < n; i++) tb_tok(&t, -(float)i, SYN_TOKS[i], SYN_LENS[i]);
    write_raw(path, t.p, t.len);
}

static void test_synthetic_gqa_unshared(void **state) {
    (void)state;
    /* head size 4, 2 query heads share 1 kv head, unshared classifier */
    hdr7 h = {8, 12, 2, 2, 1, -SYN_VOCAB, 6};
    const char *model = tmp("syn.bin"), *tok = tmp("syn_tok.bin"), *out = tmp("syn.gguf");
    char mp[512], tp[512], op[512];
    snprintf(mp, sizeof mp, "%s", model);
    snprintf(tp, sizeof tp, "%s", tok);
    snprintf(op, sizeof op, "%s", out);
    write_model(mp, h, 0);
    write_tokenizer(tp, SYN_VOCAB);
    em_err err = {{0}};
    if (em_llama2c_convert(mp, tp, op, NULL, &err)) fail_msg("%s", err.msg);
    em_gguf *g = em_gguf_open(op, &err);
    if (!g) fail_msg("%s", err.msg);

    uint32_t v;
    struct { const char *k; uint32_t v; } u32s[] = {
        {"llama.context_length", 6}, {"llama.embedding_length", 8}, {"llama.feed_forward_length", 12},
        {"llama.attention.head_count", 2}, {"llama.attention.head_count_kv", 1}, {"llama.block_count", 2},
        {"llama.rope.dimension_count", 4}, {"tokenizer.ggml.unknown_token_id", 0},
        {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.eos_token_id", 2},
        {"tokenizer.ggml.seperator_token_id", UINT32_MAX}, {"tokenizer.ggml.padding_token_id", UINT32_MAX},
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
        if (em_gguf_get_u32(g, u32s[i].k, &v, false, &err)) fail_msg("%s", err.msg);
        if (v != u32s[i].v) fail_msg("%s = %u, expected %u", u32s[i].k, v, u32s[i].v);
    }
    float eps;
    assert_int_equal(em_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, false, &err), 0);
    assert_true(eps == 1e-5f);
    em_str s;
    assert_int_equal(em_gguf_get_str(g, "general.name", &s, false, &err), 0);
    assert_true(em_str_eq(s, "llama"));
    assert_int_equal(em_gguf_get_str(g, "tokenizer.ggml.model", &s, false, &err), 0);
    assert_true(em_str_eq(s, "llama"));

    const em_gguf_kv *toks, *scores, *types;
    assert_int_equal(em_gguf_get_arr(g, "tokenizer.ggml.tokens", EM_GGUF_STRING, &toks, false, &err), 0);
    assert_int_equal(em_gguf_get_arr(g, "tokenizer.ggml.scores", EM_GGUF_F32, &scores, false, &err), 0);
    assert_int_equal(em_gguf_get_arr(g, "tokenizer.ggml.token_type", EM_GGUF_I32, &types, false, &err), 0);
    assert_int_equal(toks->arr_n, SYN_VOCAB);
    for (int i = 0; i < SYN_VOCAB; i++) {
        if (!em_str_eq(toks->arr_strs[i], SYN_EXPECT[i]))
            fail_msg("token %d: '%.*s', expected '%s'", i, (int)toks->arr_strs[i].len, toks->arr_strs[i].ptr,
                     SYN_EXPECT[i]);
        int32_t ty;
        float sc;
        memcpy(&ty, types->arr_data + 4 * i, 4);
        memcpy(&sc, scores->arr_data + 4 * i, 4);
        if (ty != SYN_TYPES[i]) fail_msg("token %d ('%s'): type %d, expected %d", i, SYN_EXPECT[i], ty, SYN_TYPES[i]);
        assert_true(sc == -(float)i);
    }

    /* tensors: order, shapes and the float index where each one starts */
    const uint64_t dim = 8, hid = 12, L = 2, V = SYN_VOCAB, kv = 4;
    const uint64_t o_emb = 0, o_att = V * dim, o_wq = o_att + L * dim, o_wk = o_wq + L * dim * dim,
                   o_wv = o_wk + L * kv * dim, o_wo = o_wv + L * kv * dim, o_ffn = o_wo + L * dim * dim,
                   o_w1 = o_ffn + L * dim, o_w2 = o_w1 + L * hid * dim, o_w3 = o_w2 + L * dim * hid,
                   o_fin = o_w3 + L * hid * dim, o_cls = o_fin + dim + 6 * 4;
    struct { const char *name; int64_t ne0, ne1; uint64_t first; } exp[] = {
        {"token_embd.weight", 8, V, o_emb},
        {"output_norm.weight", 8, 1, o_fin},
        {"output.weight", 8, V, o_cls},
        {"blk.0.attn_q.weight", 8, 8, o_wq},
        {"blk.0.attn_k.weight", 8, 4, o_wk},
        {"blk.0.attn_v.weight", 8, 4, o_wv},
        {"blk.0.attn_output.weight", 8, 8, o_wo},
        {"blk.0.attn_norm.weight", 8, 1, o_att},
        {"blk.0.ffn_gate.weight", 8, 12, o_w1},
        {"blk.0.ffn_down.weight", 12, 8, o_w2},
        {"blk.0.ffn_up.weight", 8, 12, o_w3},
        {"blk.0.ffn_norm.weight", 8, 1, o_ffn},
        {"blk.1.attn_q.weight", 8, 8, o_wq + dim * dim},
        {"blk.1.attn_k.weight", 8, 4, o_wk + kv * dim},
        {"blk.1.attn_v.weight", 8, 4, o_wv + kv * dim},
        {"blk.1.attn_output.weight", 8, 8, o_wo + dim * dim},
        {"blk.1.attn_norm.weight", 8, 1, o_att + dim},
        {"blk.1.ffn_gate.weight", 8, 12, o_w1 + hid * dim},
        {"blk.1.ffn_down.weight", 12, 8, o_w2 + dim * hid},
        {"blk.1.ffn_up.weight", 8, 12, o_w3 + hid * dim},
        {"blk.1.ffn_norm.weight", 8, 1, o_ffn + dim},
    };
    assert_int_equal(g->n_tensors, sizeof exp / sizeof exp[0]);
    for (size_t i = 0; i < sizeof exp / sizeof exp[0]; i++) {
        const em_gguf_tensor *t = &g->tensors[i];
        assert_string_equal(t->name, exp[i].name);
        assert_int_equal(t->type, EM_TYPE_F32);
        assert_int_equal(t->n_dims, exp[i].ne1 == 1 && strstr(t->name, "norm") ? 1 : 2);
        assert_int_equal(t->ne[0], exp[i].ne0);
        assert_int_equal(t->ne[1], exp[i].ne1);
        /* contiguous copy of the checkpoint's floats, no permutation */
        uint64_t n = (uint64_t)(exp[i].ne0 * exp[i].ne1);
        for (uint64_t j = 0; j < n; j++) {
            float f;
            memcpy(&f, (const uint8_t *)t->data + 4 * j, 4);
            if (f != (float)(exp[i].first + j))
                fail_msg("%s[%llu] = %g, expected %llu", t->name, (unsigned long long)j, f,
                         (unsigned long long)(exp[i].first + j));
        }
    }
    em_gguf_close(g);

    /* shared classifier: output.weight is a copy of the embeddings */
    h.vocab = SYN_VOCAB;
    write_model(mp, h, 0);
    if (em_llama2c_convert(mp, tp, op, NULL, &err)) fail_msg("%s", err.msg);
    g = em_gguf_open(op, &err);
    assert_non_null(g);
    const em_gguf_tensor *emb = em_gguf_find_tensor(g, "token_embd.weight"), *outw = em_gguf_find_tensor(g, "output.weight");
    assert_non_null(emb);
    assert_non_null(outw);
    assert_int_equal(emb->nbytes, outw->nbytes);
    assert_memory_equal(emb->data, outw->data, emb->nbytes);
    em_gguf_close(g);
    unlink(mp);
    unlink(tp);
    unlink(op);
}

/* ---- validation ---- */

typedef struct {
    const char *name;
    hdr7 h;
    int full;            /* write the data too, with delta floats more/less than implied */
    int64_t delta;
    const char *expect[2];
} bad_model;

static const hdr7 OK = {8, 12, 2, 2, 1, SYN_VOCAB, 6};

static void expect_fail(const char *what, const char *model, const char *tok, const char *out, const char *e1,
                        const char *e2) {
    em_err err = {{0}};
    unlink(out);
    if (em_llama2c_convert(model, tok, out, NULL, &err) == 0) fail_msg("%s: conversion succeeded", what);
    if (e1 && !strstr(err.msg, e1)) fail_msg("%s: message \"%s\" lacks \"%s\"", what, err.msg, e1);
    if (e2 && !strstr(err.msg, e2)) fail_msg("%s: message \"%s\" lacks \"%s\"", what, err.msg, e2);
    if (file_exists(out)) fail_msg("%s: output file left behind", what);
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) fail_msg("%s: temporary file %s left behind", what, e->d_name);
    closedir(d);
}

static void test_bad_models(void **state) {
    (void)state;
    char mp[512], tp[512], op[512];
    snprintf(mp, sizeof mp, "%s", tmp("bad.bin"));
    snprintf(tp, sizeof tp, "%s", tmp("bad_tok.bin"));
    snprintf(op, sizeof op, "%s", tmp("bad.gguf"));
    write_tokenizer(tp, SYN_VOCAB);
    const bad_model cases[] = {
        {"dim 0", {0, 12, 2, 2, 1, 12, 6}, 0, 0, {"dim 0", "must be > 0"}},
        {"hidden negative", {8, -12, 2, 2, 1, 12, 6}, 0, 0, {"hidden_dim -12", NULL}},
        {"layers 0", {8, 12, 0, 2, 1, 12, 6}, 0, 0, {"n_layers 0", NULL}},
        {"heads 0", {8, 12, 2, 0, 1, 12, 6}, 0, 0, {"n_heads 0", NULL}},
        {"kv heads negative", {8, 12, 2, 2, -1, 12, 6}, 0, 0, {"n_kv_heads -1", NULL}},
        {"vocab 0", {8, 12, 2, 2, 1, 0, 6}, 0, 0, {"vocab_size 0", NULL}},
        {"vocab INT32_MIN", {8, 12, 2, 2, 1, INT32_MIN, 6}, 0, 0, {"vocab_size", NULL}},
        {"seq_len 0", {8, 12, 2, 2, 1, 12, 0}, 0, 0, {"seq_len 0", NULL}},
        {"dim not multiple of heads", {8, 12, 2, 3, 1, 12, 6}, 0, 0, {"not a multiple of n_heads", NULL}},
        {"odd head size", {6, 12, 2, 2, 1, 12, 6}, 0, 0, {"head size 3", "odd"}},
        {"kv heads do not divide", {12, 12, 2, 3, 2, 12, 6}, 0, 0, {"n_kv_heads 2", NULL}},
        {"kv heads > heads", {8, 12, 2, 2, 4, 12, 6}, 0, 0, {"n_kv_heads 4", NULL}},
        {"huge dims overflow", {INT32_MAX - 1, INT32_MAX, INT32_MAX, 1, 1, INT32_MAX, INT32_MAX}, 0, 0,
         {"too large", NULL}},
        {"big dims, small file", {65536, 65536, 1000, 64, 64, 32000, 4096}, 0, 0, {"truncated", "implies"}},
        {"one float missing", OK, 1, -1, {"truncated", "implies"}},
        {"one float extra", OK, 1, 1, {"trailing data", NULL}},
        {"unshared header, shared data", {8, 12, 2, 2, 1, -SYN_VOCAB, 6}, 1, -8 * SYN_VOCAB, {"truncated", "unshared"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* header-only files (plus a little data) unless the case is about the size */
        if (cases[i].full) {
            write_model(mp, cases[i].h, cases[i].delta);
        } else {
            float data[64] = {0};
            FILE *f = fopen(mp, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(&cases[i].h, 4, 7, f), 7);
            assert_int_equal(fwrite(data, 4, 64, f), 64);
            assert_int_equal(fclose(f), 0);
        }
        expect_fail(cases[i].name, mp, tp, op, cases[i].expect[0], cases[i].expect[1]);
    }

    /* short files */
    write_raw(mp, "", 0);
    expect_fail("empty model", mp, tp, op, "truncated header", "0 bytes");
    write_raw(mp, &OK, 20);
    expect_fail("short header", mp, tp, op, "truncated header", "20 bytes");
    expect_fail("missing model", "/nonexistent/ember/model.bin", tp, op, "/nonexistent/ember/model.bin", NULL);
    char gg[4096];
    snprintf(gg, sizeof gg, "%s", shared_path("models/stories260K.gguf"));
    expect_fail("GGUF as model", gg, tp, op, "already a GGUF file", NULL);

    /* the model is fine, the tokenizer is not */
    write_model(mp, OK, 0);
    expect_fail("missing tokenizer", mp, "/nonexistent/ember/tok.bin", op, "/nonexistent/ember/tok.bin", NULL);
    expect_fail("GGUF as tokenizer", mp, gg, op, "is a GGUF file", NULL);
    write_raw(tp, "", 0);
    expect_fail("empty tokenizer", mp, tp, op, "max_token_length", "truncated");
    int32_t neg = -5;
    uint8_t negbuf[64] = {0};
    memcpy(negbuf, &neg, 4);
    write_raw(tp, negbuf, sizeof negbuf);
    expect_fail("negative max_token_length", mp, tp, op, "max_token_length -5", NULL);
    write_tokenizer(tp, SYN_VOCAB - 1);
    expect_fail("too few tokens", mp, tp, op, "truncated", "token");

    tokbuf t = {{0}, 0};
    tb_i32(&t, 8);
    for (int i = 0; i < SYN_VOCAB; i++) tb_tok(&t, 0, "abcd", 4);
    size_t full = t.len;
    write_raw(tp, t.p, full - 2); /* cut inside the last token's bytes */
    expect_fail("token bytes truncated", mp, tp, op, "token 11", "truncated");
    write_raw(tp, t.p, full - 6); /* cut inside the last token's length */
    expect_fail("token length truncated", mp, tp, op, "token 11", "truncated");
    int32_t bad_len = -1;
    memcpy(t.p + 4 + 4, &bad_len, 4); /* token 0's length */
    write_raw(tp, t.p, full);
    expect_fail("negative token length", mp, tp, op, "token 0", "length -1");
    int32_t huge_len = 1000000;
    memcpy(t.p + 4 + 4, &huge_len, 4);
    write_raw(tp, t.p, full);
    expect_fail("token length past end", mp, tp, op, "token 0", "length 1000000");

    /* a good conversion into a missing directory */
    write_tokenizer(tp, SYN_VOCAB);
    em_err err;
    assert_int_equal(em_llama2c_convert(mp, tp, "/nonexistent/ember/out.gguf", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/ember/out.gguf"));
    /* trailing bytes after the last token are ignored, as llama.cpp does */
    t.len = 0;
    tb_i32(&t, 8);
    for (int i = 0; i < SYN_VOCAB; i++) tb_tok(&t, 0, "abcd", 4);
    tb_i32(&t, 12345);
    write_raw(tp, t.p, t.len);
    assert_int_equal(em_llama2c_convert(mp, tp, op, NULL, &err), 0);
    assert_true(file_exists(op));
    unlink(mp);
    unlink(tp);
    unlink(op);
}

static void test_parse_config(void **state) {
    (void)state;
    em_llama2c_config c;
    em_err err;
    char m[4096];
    size_t n = 0;
    snprintf(m, sizeof m, "%s", shared_path("models/stories260K.bin"));
    char *d = must_read(m, &n);
    assert_int_equal(em_llama2c_parse_config(d, n, &c, &err), 0);
    assert_int_equal(c.dim, 64);
    assert_int_equal(c.hidden_dim, 172);
    assert_int_equal(c.n_layers, 5);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.vocab_size, 512);
    assert_int_equal(c.seq_len, 512);
    assert_true(c.shared_classifier);
    assert_int_equal(em_llama2c_parse_config(d, n - 4, &c, &err), -1);
    assert_int_equal(em_llama2c_parse_config(d, 27, &c, &err), -1);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260K),
        cmocka_unit_test(test_aidreams260K),
        cmocka_unit_test(test_synthetic_gqa_unshared),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_parse_config),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
