/* test_model_load.c - well-formed GGUF files whose model is nonsense are
 * refused at load with an error naming the problem (llama.cpp aborts on
 * some of these). A valid tiny model built the same way loads and runs, so
 * each refusal is due to the one thing the case breaks. */
#include "testutil.h"

#include <unistd.h>

#include "ember.h"
#include "gguf/gguf.h"

typedef struct {
    uint32_t n_embd, n_head, n_head_kv, n_ff, n_layer_meta, n_layer_tensors, n_vocab_tokens, n_vocab_embd;
    bool has_key_length;
    uint32_t key_length;
    const char *arch;
    const char *skip_tensor;     /* leave this tensor out */
    const char *bad_shape;       /* give this tensor a wrong row count */
    uint32_t weight_type;        /* type of the 2-D weights */
    float rms_eps;
} spec;

static spec valid(void) {
    spec s = {.n_embd = 32, .n_head = 4, .n_head_kv = 2, .n_ff = 64, .n_layer_meta = 2, .n_layer_tensors = 2,
              .n_vocab_tokens = 16, .n_vocab_embd = 16, .arch = "llama", .weight_type = EM_TYPE_F32,
              .rms_eps = 1e-5f};
    return s;
}

static void add_tensor(em_gguf_writer *w, const spec *s, const char *name, int64_t cols, int64_t rows) {
    if (s->skip_tensor && !strcmp(name, s->skip_tensor)) return;
    if (s->bad_shape && !strcmp(name, s->bad_shape)) rows += 1;
    em_err err;
    int64_t ne[2] = {cols, rows};
    uint32_t type = rows > 1 ? s->weight_type : EM_TYPE_F32;
    size_t n = (size_t)(cols * rows);
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = (float)((i * 7919u) % 97) / 970.0f - 0.05f + (rows == 1 ? 1.0f : 0.0f);
    void *data = f;
    uint8_t *q = NULL;
    if (type == EM_TYPE_F16) {
        q = malloc(n * 2);
        for (size_t i = 0; i < n; i++) ((uint16_t *)q)[i] = 0x3c00; /* 1.0 */
        data = q;
    }
    if (em_gguf_write_tensor(w, name, type, rows > 1 ? 2 : 1, ne, data, &err)) fail_msg("%s", err.msg);
    free(f);
    free(q);
}

/* Writes the model described by s to a temp file; returns its path. */
static const char *build(const spec *s) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/ember-test-model-%d.gguf", (int)getpid());
    em_err err;
    em_gguf_writer *w = em_gguf_writer_new(32);
    char key[128];
#define K(suffix) (snprintf(key, sizeof key, "%s." suffix, s->arch), key)
    assert_int_equal(em_gguf_write_str(w, "general.architecture", s->arch, &err), 0);
    em_gguf_write_u32(w, K("embedding_length"), s->n_embd, &err);
    em_gguf_write_u32(w, K("block_count"), s->n_layer_meta, &err);
    em_gguf_write_u32(w, K("feed_forward_length"), s->n_ff, &err);
    em_gguf_write_u32(w, K("attention.head_count"), s->n_head, &err);
    em_gguf_write_u32(w, K("attention.head_count_kv"), s->n_head_kv, &err);
    em_gguf_write_u32(w, K("context_length"), 64, &err);
    em_gguf_write_f32(w, K("attention.layer_norm_rms_epsilon"), s->rms_eps, &err);
    if (s->has_key_length) em_gguf_write_u32(w, K("attention.key_length"), s->key_length, &err);
#undef K
    /* a tiny SentencePiece vocabulary */
    const char *toks[64];
    float scores[64];
    int32_t types[64];
    char names[64][8];
    assert_true(s->n_vocab_tokens <= 64);
    for (uint32_t i = 0; i < s->n_vocab_tokens; i++) {
        if (i == 0) snprintf(names[i], 8, "<unk>");
        else if (i == 1) snprintf(names[i], 8, "<s>");
        else if (i == 2) snprintf(names[i], 8, "</s>");
        else snprintf(names[i], 8, "\xe2\x96\x81%c", 'a' + (int)i);
        toks[i] = names[i];
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : (i < 3 ? 3 : 1);
    }
    em_gguf_write_str(w, "tokenizer.ggml.model", "llama", &err);
    em_gguf_write_arr_str(w, "tokenizer.ggml.tokens", toks, s->n_vocab_tokens, &err);
    em_gguf_write_arr(w, "tokenizer.ggml.scores", EM_GGUF_F32, scores, s->n_vocab_tokens, &err);
    em_gguf_write_arr(w, "tokenizer.ggml.token_type", EM_GGUF_I32, types, s->n_vocab_tokens, &err);
    em_gguf_write_u32(w, "tokenizer.ggml.bos_token_id", 1, &err);
    em_gguf_write_u32(w, "tokenizer.ggml.eos_token_id", 2, &err);
    uint32_t hd = s->has_key_length ? s->key_length : (s->n_head ? s->n_embd / s->n_head : 1);
    int64_t E = s->n_embd, Q = (int64_t)s->n_head * hd, KV = (int64_t)s->n_head_kv * hd;
    if (Q == 0) Q = 32;
    if (KV == 0) KV = 32;
    add_tensor(w, s, "token_embd.weight", E, s->n_vocab_embd);
    add_tensor(w, s, "output_norm.weight", E, 1);
    add_tensor(w, s, "output.weight", E, s->n_vocab_embd);
    for (uint32_t l = 0; l < s->n_layer_tensors; l++) {
        char n[64];
#define T(name, c, r) (snprintf(n, sizeof n, "blk.%u." name ".weight", l), add_tensor(w, s, n, c, r))
        T("attn_norm", E, 1);
        T("attn_q", E, Q);
        T("attn_k", E, KV);
        T("attn_v", E, KV);
        T("attn_output", Q, E);
        T("ffn_norm", E, 1);
        T("ffn_gate", E, s->n_ff);
        T("ffn_up", E, s->n_ff);
        T("ffn_down", s->n_ff, E);
#undef T
    }
    if (em_gguf_writer_finish(w, path, &err)) fail_msg("write: %s", err.msg);
    em_gguf_writer_free(w);
    return path;
}

static void expect_refused(const spec *s, const char *needle) {
    const char *path = build(s);
    ember_error err;
    ember_model *m = ember_model_load(path, &err);
    unlink(path);
    if (m) {
        ember_model_free(m);
        fail_msg("model loaded, expected an error containing '%s'", needle);
    }
    if (!strstr(err.msg, needle)) fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_valid_model_runs(void **state) {
    (void)state;
    spec s = valid();
    const char *path = build(&s);
    ember_error err;
    ember_model *m = ember_model_load(path, &err);
    unlink(path);
    if (!m) fail_msg("valid model refused: %s", err.msg);
    ember_ctx_params p = {.n_ctx = 64};
    ember_ctx *c = ember_ctx_new(m, &p, &err);
    assert_non_null(c);
    int32_t tok[3] = {1, 5, 7}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    ember_batch b = {.n = 3, .token = tok, .pos = pos, .seq = seq, .want_logits = NULL};
    assert_int_equal(ember_decode(c, &b, &err), 0);
    const float *l = ember_logits(c, 2);
    assert_non_null(l);
    for (int i = 0; i < 16; i++) assert_true(l[i] == l[i]); /* finite, not NaN */
    /* bad batches are refused without changing the sequence */
    int32_t bad_tok = 16, p3 = 3, p5 = 5, s0 = 0, s9 = 9;
    ember_batch b1 = {.n = 1, .token = &bad_tok, .pos = &p3, .seq = &s0, .want_logits = NULL};
    assert_int_equal(ember_decode(c, &b1, &err), -1);
    assert_non_null(strstr(err.msg, "token id 16"));
    ember_batch b2 = {.n = 1, .token = tok, .pos = &p5, .seq = &s0, .want_logits = NULL};
    assert_int_equal(ember_decode(c, &b2, &err), -1);
    assert_non_null(strstr(err.msg, "expected 3"));
    ember_batch b3 = {.n = 1, .token = tok, .pos = &p3, .seq = &s9, .want_logits = NULL};
    assert_int_equal(ember_decode(c, &b3, &err), -1);
    assert_non_null(strstr(err.msg, "sequence id 9"));
    assert_int_equal(ember_seq_len(c, 0), 3);
    ember_ctx_free(c);
    ember_model_free(m);
}

/* Without output.weight the model ties its output to token_embd, so the
 * logits are the final hidden state times each token's embedding row. */
static void test_tied_output(void **state) {
    (void)state;
    spec s = valid();
    s.skip_tensor = "output.weight";
    const char *path = build(&s);
    ember_error err;
    ember_model *m = ember_model_load(path, &err);
    unlink(path);
    if (!m) fail_msg("tied model refused: %s", err.msg);
    ember_ctx_params p = {.n_ctx = 64};
    ember_ctx *c = ember_ctx_new(m, &p, &err);
    assert_non_null(c);
    int32_t tok[2] = {1, 4}, pos[2] = {0, 1}, seq[2] = {0, 0};
    ember_batch b = {.n = 2, .token = tok, .pos = pos, .seq = seq};
    assert_int_equal(ember_decode(c, &b, &err), 0);
    const float *l = ember_logits(c, 1);
    assert_non_null(l);
    /* token_embd rows differ, so the logits must too */
    assert_true(l[3] != l[5]);
    ember_ctx_free(c);
    ember_model_free(m);
}

static void test_block_count_beyond_tensors(void **state) {
    (void)state;
    spec s = valid();
    s.n_layer_meta = 1000;
    expect_refused(&s, "missing tensor 'blk.2.attn_norm.weight' (block_count = 1000)");
}

static void test_head_count_zero(void **state) {
    (void)state;
    spec s = valid();
    s.n_head = 0;
    expect_refused(&s, "attention.head_count");
}

static void test_head_count_kv_not_divisor(void **state) {
    (void)state;
    spec s = valid();
    s.n_head_kv = 3;
    expect_refused(&s, "not a multiple of attention.head_count_kv");
}

static void test_embd_not_divisible(void **state) {
    (void)state;
    spec s = valid();
    s.n_embd = 30;
    expect_refused(&s, "embedding_length 30 is not divisible by attention.head_count 4");
}

static void test_vocab_shorter_than_embedding(void **state) {
    (void)state;
    spec s = valid();
    s.n_vocab_tokens = 10;
    expect_refused(&s, "vocabulary has 10 tokens but token_embd.weight has 16 rows");
}

static void test_shape_disagrees(void **state) {
    (void)state;
    spec s = valid();
    s.bad_shape = "blk.1.ffn_up.weight";
    expect_refused(&s, "tensor 'blk.1.ffn_up.weight' has shape [32, 65");
}

static void test_missing_tensor(void **state) {
    (void)state;
    spec s = valid();
    s.skip_tensor = "blk.0.attn_v.weight";
    expect_refused(&s, "missing tensor 'blk.0.attn_v.weight'");
    s = valid();
    s.skip_tensor = "output_norm.weight";
    expect_refused(&s, "missing tensor 'output_norm.weight'");
}

static void test_unknown_arch(void **state) {
    (void)state;
    spec s = valid();
    s.arch = "gpt-j";
    expect_refused(&s, "unsupported architecture 'gpt-j'");
}

static void test_bad_eps_and_key_length(void **state) {
    (void)state;
    spec s = valid();
    s.rms_eps = 0;
    expect_refused(&s, "layer_norm_rms_epsilon");
    s = valid();
    s.has_key_length = true;
    s.key_length = 5000;
    expect_refused(&s, "attention.key_length");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_model_runs),        cmocka_unit_test(test_tied_output),
        cmocka_unit_test(test_block_count_beyond_tensors),
        cmocka_unit_test(test_head_count_zero),         cmocka_unit_test(test_head_count_kv_not_divisor),
        cmocka_unit_test(test_embd_not_divisible),      cmocka_unit_test(test_vocab_shorter_than_embedding),
        cmocka_unit_test(test_shape_disagrees),         cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_unknown_arch),            cmocka_unit_test(test_bad_eps_and_key_length),
    };
    return cmocka_run_group_tests_name("model_load", tests, NULL, NULL);
}
