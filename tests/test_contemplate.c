/* test_contemplate.c - contemplation on the bundled model: determinism
 * (same seed, same branches; thread count irrelevant), shared-prefix memory
 * (the prompt's KV blocks are held once, not once per branch), aggregation
 * modes, and argument errors. */
#include "testutil.h"

#include "ember.h"

static ember_model *model(void) {
    ember_error err;
    ember_model *m = ember_model_load("models/stories260K.gguf", &err);
    if (!m) fail_msg("%s", err.msg);
    return m;
}

static ember_ctx *ctx(ember_model *m, int threads, int32_t n_seqs, uint32_t n_ctx) {
    ember_error err;
    ember_ctx_params p = {.n_ctx = n_ctx, .n_seqs = n_seqs, .n_threads = threads};
    ember_ctx *c = ember_ctx_new(m, &p, &err);
    if (!c) fail_msg("%s", err.msg);
    return c;
}

static ember_contemplate_params params(int32_t n, ember_aggregate agg, uint64_t seed) {
    ember_contemplate_params p = {.n_branches = n, .max_branch_tokens = 24, .aggregate = agg, .early_stop = true};
    p.sampling = ember_sampler_defaults();
    p.sampling.temperature = 1.0f;
    p.sampling.seed = seed;
    return p;
}

static void run(ember_ctx *c, const int32_t *ids, size_t n, const ember_contemplate_params *p, ember_contemplation *r) {
    ember_error err;
    if (ember_contemplate(c, ids, n, p, NULL, NULL, r, &err)) fail_msg("%s", err.msg);
}

static void test_deterministic(void **state) {
    (void)state;
    ember_model *m = model();
    int32_t ids[] = {1, 403, 407, 261, 378};
    ember_contemplate_params p = params(6, EMBER_AGG_VOTE, 42);
    p.early_stop = false;
    ember_contemplation a, b, d;
    ember_ctx *c1 = ctx(m, 1, 8, 512), *c2 = ctx(m, 2, 8, 512);
    run(c1, ids, 5, &p, &a);
    run(c2, ids, 5, &p, &b);
    assert_int_equal(a.n_branches, 6);
    bool some_differ = false;
    for (int i = 0; i < 6; i++) {
        assert_string_equal(a.branches[i].text, b.branches[i].text);
        assert_int_equal(a.branches[i].n_tokens, b.branches[i].n_tokens);
        if (i && strcmp(a.branches[i].text, a.branches[0].text)) some_differ = true;
    }
    assert_true(some_differ); /* branches really are sampled independently */
    assert_string_equal(a.answer, b.answer);
    /* a different seed gives different branches */
    p.sampling.seed = 43;
    run(c1, ids, 5, &p, &d);
    bool any = false;
    for (int i = 0; i < 6; i++) any |= strcmp(a.branches[i].text, d.branches[i].text) != 0;
    assert_true(any);
    /* branch i equals a plain generation with seed + i (same prompt, same
     * sampler): contemplation is N independent samples */
    ember_sampler_params sp = p.sampling;
    sp.seed = 42 + 3;
    ember_sampler *s = ember_sampler_new(&sp, ember_model_n_vocab(m));
    typedef struct { char buf[4096]; size_t n; } sink;
    sink k = {{0}, 0};
    ember_gen_stats st;
    ember_error err;
    bool cb(const char *t, size_t n, void *u);
    assert_int_equal(ember_generate(c1, s, ids, 5, 24, NULL, 0, cb, &k, &st, &err), 0);
    assert_string_equal(k.buf, a.branches[3].text);
    ember_sampler_free(s);
    ember_contemplation_free(&a);
    ember_contemplation_free(&b);
    ember_contemplation_free(&d);
    ember_ctx_free(c1);
    ember_ctx_free(c2);
    ember_model_free(m);
}

bool cb(const char *t, size_t n, void *u) {
    struct { char buf[4096]; size_t n; } *k = u;
    if (k->n + n < sizeof k->buf) {
        memcpy(k->buf + k->n, t, n);
        k->n += n;
        k->buf[k->n] = 0;
    }
    return true;
}

/* 1,000-token prompt, 8 branches: the prompt's blocks are held once; each
 * branch owns only the copy of the prompt's partly filled last block and
 * the blocks of its own tokens. */
static void test_shared_prefix_memory(void **state) {
    (void)state;
    ember_model *m = model();
    ember_ctx *c = ctx(m, 2, 8, 2048);
    int32_t ids[1000];
    ids[0] = 1;
    for (int i = 1; i < 1000; i++) ids[i] = 260 + (i * 7) % 200;
    ember_contemplate_params p = params(8, EMBER_AGG_VOTE, 1);
    p.max_branch_tokens = 16;
    p.early_stop = false;
    ember_contemplation r;
    run(c, ids, 1000, &p, &r);
    const int bs = ember_kv_block_size();
    const int prompt_blocks = (1000 + bs - 1) / bs;  /* 63, the last one partly filled */
    const int own = (1000 % bs + 16 + bs - 1) / bs; /* per branch: copied tail + new */
    print_message("peak KV blocks %d (prompt %d once + 8 x %d own; 8 full copies would be %d)\n", r.kv_blocks_peak,
                  prompt_blocks, own, 8 * ((1000 + 16 + bs - 1) / bs));
    assert_true(r.kv_blocks_peak <= prompt_blocks + 8 * own);
    assert_true(r.kv_blocks_peak < 2 * prompt_blocks);
    ember_contemplation_free(&r);
    ember_ctx_free(c);
    ember_model_free(m);
}

static void test_aggregations(void **state) {
    (void)state;
    ember_model *m = model();
    ember_ctx *c = ctx(m, 1, 4, 512);
    int32_t ids[] = {1, 403, 407, 261, 378};
    ember_contemplation r;
    ember_contemplate_params p = params(4, EMBER_AGG_BEST, 5);
    run(c, ids, 5, &p, &r);
    /* best: the branch with the highest mean logprob */
    int best = 0;
    for (int i = 1; i < 4; i++)
        if (r.branches[i].mean_logprob > r.branches[best].mean_logprob) best = i;
    assert_int_equal(r.winner, best);
    assert_string_equal(r.answer, r.branches[best].answer);
    ember_contemplation_free(&r);
    p = params(4, EMBER_AGG_SYNTHESIZE, 5);
    run(c, ids, 5, &p, &r);
    assert_int_equal(r.winner, -1);
    assert_true(r.tokens_generated > 4 * 1);
    ember_contemplation_free(&r);
    /* greedy branches are identical: unanimous vote */
    p = params(3, EMBER_AGG_VOTE, 5);
    p.sampling.temperature = 0;
    run(c, ids, 5, &p, &r);
    assert_true(r.agreement == 1.0);
    assert_string_equal(r.branches[0].text, r.branches[2].text);
    ember_contemplation_free(&r);
    ember_ctx_free(c);
    ember_model_free(m);
}

static void test_errors(void **state) {
    (void)state;
    ember_model *m = model();
    ember_ctx *c = ctx(m, 1, 2, 512);
    int32_t ids[] = {1, 403};
    ember_contemplation r;
    ember_error err;
    ember_contemplate_params p = params(3, EMBER_AGG_VOTE, 1);
    assert_int_equal(ember_contemplate(c, ids, 2, &p, NULL, NULL, &r, &err), -1);
    assert_non_null(strstr(err.msg, "1..2 branches"));
    p = params(2, EMBER_AGG_VOTE, 1);
    p.max_branch_tokens = 0;
    assert_int_equal(ember_contemplate(c, ids, 2, &p, NULL, NULL, &r, &err), -1);
    p = params(2, EMBER_AGG_VOTE, 1);
    assert_int_equal(ember_contemplate(c, ids, 0, &p, NULL, NULL, &r, &err), -1);
    ember_ctx_free(c);
    ember_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_shared_prefix_memory),
        cmocka_unit_test(test_aggregations),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("contemplate", tests, NULL, NULL);
}
