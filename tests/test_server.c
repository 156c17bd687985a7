/* test_server.c - pieces of `ember serve` without HTTP: chat template
 * detection and rendering for every family, the UTF-8 helpers, and the
 * scheduler driven directly with the bundled model (batched, chunked,
 * prefix-cached and preempted sequences give ember_generate's tokens;
 * stop strings; cancellation; invalid prompts). The HTTP side is covered
 * end to end by tests/cli_server.sh. */
#include "testutil.h"

#include "engine/aggregate.h"
#include "engine/scheduler.h"
#include "server/server.h"

#define MODEL "models/stories260K.gguf"

/* ------------------------------------------------------------ templates -- */

static const em_chat_msg CONV[] = {
    {"system", "Be brief.", 9},
    {"user", "Hello", 5},
    {"assistant", " Hi! ", 5},
    {"user", "Bye", 3},
};

static void render_is(em_tmpl t, const char *want) {
    size_t len = 0;
    char *got = em_tmpl_render(t, CONV, 4, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
}

static void test_templates_render(void **state) {
    (void)state;
    render_is(EM_TMPL_PLAIN, "system: Be brief.\nuser: Hello\nassistant:  Hi! \nuser: Bye\nassistant:");
    render_is(EM_TMPL_CHATML, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                              "<|im_start|>assistant\n Hi! <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                              "<|im_start|>assistant\n");
    render_is(EM_TMPL_LLAMA2_SYS, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]  Hi!  </s><s>[INST] Bye [/INST]");
    render_is(EM_TMPL_LLAMA2, "[INST] Be brief.\nHello [/INST]  Hi!  </s><s>[INST] Bye [/INST]");
    render_is(EM_TMPL_LLAMA3, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                              "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                              "<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>"
                              "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    render_is(EM_TMPL_LLAMA4, "<|header_start|>system<|header_end|>\n\nBe brief.<|eot|>"
                              "<|header_start|>user<|header_end|>\n\nHello<|eot|>"
                              "<|header_start|>assistant<|header_end|>\n\nHi!<|eot|>"
                              "<|header_start|>user<|header_end|>\n\nBye<|eot|>"
                              "<|header_start|>assistant<|header_end|>\n\n");
    render_is(EM_TMPL_MISTRAL_V7, "[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hello[/INST]  Hi! </s>[INST] Bye[/INST]");
    render_is(EM_TMPL_MISTRAL_V3, "[INST] Be brief.\n\nHello[/INST] Hi!</s>[INST] Bye[/INST]");
    render_is(EM_TMPL_MISTRAL_V1, " [INST] Be brief.\n\nHello [/INST]  Hi! </s> [INST] Bye [/INST]");
    render_is(EM_TMPL_MISTRAL_V3_TEKKEN, "[INST]Be brief.\n\nHello[/INST] Hi! </s>[INST]Bye[/INST]");
    render_is(EM_TMPL_GEMMA, "<start_of_turn>user\nBe brief.\n\nHello<end_of_turn>\n<start_of_turn>model\nHi!<end_of_turn>\n"
                             "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
    render_is(EM_TMPL_PHI3, "<|system|>\nBe brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\n Hi! <|end|>\n"
                            "<|user|>\nBye<|end|>\n<|assistant|>\n");
    const char *stops[4];
    assert_int_equal(em_tmpl_stops(EM_TMPL_PLAIN, stops, 4), 1);
    assert_string_equal(stops[0], "\nuser:");
    assert_int_equal(em_tmpl_stops(EM_TMPL_CHATML, stops, 4), 0);
}

static void test_templates_detect(void **state) {
    (void)state;
    assert_int_equal(em_tmpl_detect(NULL), EM_TMPL_PLAIN);
    assert_int_equal(em_tmpl_detect(""), EM_TMPL_PLAIN);
    assert_int_equal(em_tmpl_detect("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"),
                     EM_TMPL_CHATML);
    assert_int_equal(em_tmpl_detect("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
                                    "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"),
                     EM_TMPL_LLAMA3);
    assert_int_equal(em_tmpl_detect("<|header_start|>{{ role }}<|header_end|>"), EM_TMPL_LLAMA4);
    assert_int_equal(em_tmpl_detect("{% if system %}<<SYS>>\n{{ system }}\n<</SYS>>{% endif %}[INST] {{ c }} [/INST]"),
                     EM_TMPL_LLAMA2_SYS);
    assert_int_equal(em_tmpl_detect("{{ bos_token }}[INST] {{ c }} [/INST]"), EM_TMPL_LLAMA2);
    assert_int_equal(em_tmpl_detect("[SYSTEM_PROMPT]{{ s }}[/SYSTEM_PROMPT][INST]{{ c }}[/INST]"), EM_TMPL_MISTRAL_V7);
    assert_int_equal(em_tmpl_detect("[AVAILABLE_TOOLS] [INST] x"), EM_TMPL_MISTRAL_V1);
    assert_int_equal(em_tmpl_detect("[AVAILABLE_TOOLS][INST]x"), EM_TMPL_MISTRAL_V3);
    assert_int_equal(em_tmpl_detect("<start_of_turn>user\n{{ c }}<end_of_turn>"), EM_TMPL_GEMMA);
    assert_int_equal(em_tmpl_detect("<|user|>\n{{ c }}<|end|>\n<|assistant|>\n"), EM_TMPL_PHI3);
    assert_int_equal(em_tmpl_detect("{{ something else entirely }}"), EM_TMPL_UNKNOWN);
    assert_int_equal(em_tmpl_from_name("qwen"), EM_TMPL_CHATML);
    assert_int_equal(em_tmpl_from_name("mistral"), EM_TMPL_MISTRAL_V7);
    assert_int_equal(em_tmpl_from_name("llama3"), EM_TMPL_LLAMA3);
    assert_int_equal(em_tmpl_from_name("nope"), EM_TMPL_UNKNOWN);
    assert_int_equal(em_tmpl_from_name(NULL), EM_TMPL_UNKNOWN);
    for (int t = EM_TMPL_PLAIN; t < EM_TMPL_COUNT; t++) assert_int_equal(em_tmpl_from_name(em_tmpl_name((em_tmpl)t)), t);
}

static void test_utf8(void **state) {
    (void)state;
    assert_true(em_utf8_valid("", 0));
    assert_true(em_utf8_valid("abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(em_utf8_valid("\xff", 1));
    assert_false(em_utf8_valid("\xc3", 1));          /* truncated */
    assert_false(em_utf8_valid("\xc0\xaf", 2));      /* overlong */
    assert_false(em_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
    assert_false(em_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    size_t n;
    char *s = em_utf8_sanitize("a\xffz\xe2\x82", 5, &n);
    assert_string_equal(s, "a\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_int_equal(n, strlen(s));
    free(s);
}

/* ------------------------------------------------------------ scheduler -- */

typedef struct fixture {
    ember_model *m;
} fixture;

static int setup(void **state) {
    ember_error err;
    fixture *f = calloc(1, sizeof *f);
    f->m = ember_model_load(MODEL, &err);
    if (!f->m) {
        fprintf(stderr, "%s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    ember_model_free(f->m);
    free(f);
    return 0;
}

typedef struct textbuf {
    char s[8192];
    size_t n;
} textbuf;

static bool collect(const char *t, size_t len, void *user) {
    textbuf *b = user;
    if (b->n + len < sizeof b->s) {
        memcpy(b->s + b->n, t, len);
        b->n += len;
        b->s[b->n] = 0;
    }
    return true;
}

static int32_t *tokenize(const ember_model *m, const char *text, size_t *n) {
    int32_t *ids;
    ember_error err;
    assert_int_equal(ember_tokenize(m, text, strlen(text), true, false, &ids, n, &err), 0);
    return ids;
}

/* The reference: ember_generate alone in a fresh context. */
static void reference(const ember_model *m, const char *prompt, int32_t n_predict, const ember_sampler_params *sp,
                      const char *const *stops, size_t n_stops, textbuf *out, int32_t *n_gen) {
    ember_error err;
    ember_ctx *c = ember_ctx_new(m, NULL, &err);
    assert_non_null(c);
    ember_sampler *s = ember_sampler_new(sp, ember_model_n_vocab(m));
    size_t n;
    int32_t *ids = tokenize(m, prompt, &n);
    ember_gen_stats st;
    memset(out, 0, sizeof *out);
    assert_int_equal(ember_generate(c, s, ids, n, n_predict, stops, n_stops, collect, out, &st, &err), 0);
    *n_gen = st.n_gen;
    free(ids);
    ember_sampler_free(s);
    ember_ctx_free(c);
}

static em_request *submit(em_sched *s, const ember_model *m, const char *prompt, int32_t max_tokens,
                          const ember_sampler_params *sp, const char *const *stops, size_t n_stops) {
    em_gen_params gp = {.max_tokens = max_tokens, .sp = *sp, .top_logprobs = -1};
    for (size_t i = 0; i < n_stops; i++) gp.stops[i] = (char *)stops[i];
    gp.n_stops = n_stops;
    em_request *r = em_request_new(1, &gp);
    assert_non_null(r);
    size_t n;
    int32_t *ids = tokenize(m, prompt, &n);
    assert_int_equal(em_request_set_choice(r, 0, ids, n, sp->seed), 0);
    free(ids);
    assert_int_equal(em_sched_submit(s, r), EM_SUBMIT_OK);
    return r;
}

static void wait_done(em_request *r) {
    uint64_t v = 0;
    for (int i = 0; i < 3000; i++) {
        v = em_request_wait(r, v, 10);
        pthread_mutex_lock(&r->mu);
        bool done = em_request_done(r);
        pthread_mutex_unlock(&r->mu);
        if (done) return;
    }
    fail_msg("request did not finish");
}

static const char *PROMPTS[] = {"Once upon a time", "The little dog", "Lily and Ben", "One day, a big",
                                "The sun was", "Tom had a red", "In the park,", "A small bird"};

/* Runs the eight prompts concurrently through a scheduler with the given
 * shape and compares every sequence with ember_generate. */
static void run_batch(const ember_model *m, int32_t slots, int32_t pool, int32_t chunk, int32_t n_predict,
                      bool sample, bool expect_preemption) {
    em_sched_params p = {.n_slots = slots, .n_ctx_seq = 256, .n_ctx_pool = pool, .prefill_chunk = chunk};
    ember_error err;
    em_sched *s = em_sched_new(m, &p, &err);
    assert_non_null(s);
    ember_sampler_params sp = ember_sampler_defaults();
    em_request *r[8];
    for (int i = 0; i < 8; i++) {
        sp.temperature = sample ? 0.9f : 0.0f;
        sp.seed = 100 + (uint64_t)i;
        r[i] = submit(s, m, PROMPTS[i], n_predict, &sp, NULL, 0);
    }
    for (int i = 0; i < 8; i++) {
        wait_done(r[i]);
        textbuf ref;
        int32_t n_gen;
        sp.temperature = sample ? 0.9f : 0.0f;
        sp.seed = 100 + (uint64_t)i;
        reference(m, PROMPTS[i], n_predict, &sp, NULL, 0, &ref, &n_gen);
        assert_string_equal(r[i]->out[0].text ? r[i]->out[0].text : "", ref.s);
        assert_int_equal(r[i]->out[0].n_gen, n_gen);
        assert_string_equal(r[i]->out[0].finish, n_gen < n_predict ? "stop" : "length");
        em_request_release(r[i]);
    }
    em_sched_stats st;
    em_sched_get_stats(s, &st);
    if (expect_preemption) assert_true(st.preemptions > 0);
    assert_int_equal(st.n_running, 0);
    em_sched_free(s);
}

static void test_sched_matches_generate(void **state) {
    fixture *f = *state;
    run_batch(f->m, 4, 0, 128, 40, false, false);  /* greedy, batched */
    run_batch(f->m, 3, 0, 5, 40, true, false);     /* sampled, tiny prefill chunks */
    run_batch(f->m, 8, 256, 32, 48, true, true);   /* a pool of 16 blocks: sampled and preempted */
}

/* ember_generate evaluates prompts in chunks of 512 and a chunk of one token
 * in decode order: prompts of 1 and 513 tokens exercise that rule. */
static void test_sched_single_token_chunks(void **state) {
    fixture *f = *state;
    em_sched_params p = {.n_slots = 2, .n_ctx_seq = 1024, .prefill_chunk = 100};
    ember_error err;
    em_sched *s = em_sched_new(f->m, &p, &err);
    assert_non_null(s);
    size_t n;
    int32_t *story = tokenize(f->m, "Once upon a time, there was a little girl named Lily. She loved to play.", &n);
    int32_t ids[513];
    for (int i = 0; i < 513; i++) ids[i] = i == 0 ? story[0] : story[1 + (size_t)(i - 1) % (n - 1)];
    free(story);
    const size_t lens[] = {1, 513, 512};
    for (int k = 0; k < 3; k++) {
        ember_sampler_params sp = ember_sampler_defaults();
        sp.temperature = 0;
        em_gen_params gp = {.max_tokens = 8, .sp = sp, .top_logprobs = -1};
        em_request *r = em_request_new(1, &gp);
        em_request_set_choice(r, 0, ids, lens[k], 0);
        assert_int_equal(em_sched_submit(s, r), EM_SUBMIT_OK);
        wait_done(r);
        ember_ctx_params cp = {.n_ctx = 1024};
        ember_ctx *c = ember_ctx_new(f->m, &cp, &err);
        ember_sampler *smp = ember_sampler_new(&sp, ember_model_n_vocab(f->m));
        textbuf ref = {0};
        ember_gen_stats st;
        assert_int_equal(ember_generate(c, smp, ids, lens[k], 8, NULL, 0, collect, &ref, &st, &err), 0);
        assert_string_equal(r->out[0].text ? r->out[0].text : "", ref.s);
        assert_int_equal(r->out[0].n_gen, st.n_gen);
        ember_sampler_free(smp);
        ember_ctx_free(c);
        em_request_release(r);
    }
    em_sched_free(s);
}

static void test_sched_prefix_cache(void **state) {
    fixture *f = *state;
    em_sched_params p = {.n_slots = 2};
    ember_error err;
    em_sched *s = em_sched_new(f->m, &p, &err);
    assert_non_null(s);
    ember_sampler_params sp = ember_sampler_defaults();
    sp.temperature = 0;
    const char *base = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    char longer[512];
    snprintf(longer, sizeof longer, "%s One day, she saw", base);
    em_request *a = submit(s, f->m, base, 10, &sp, NULL, 0);
    wait_done(a);
    em_request *b = submit(s, f->m, longer, 10, &sp, NULL, 0);
    wait_done(b);
    em_sched_stats st;
    em_sched_get_stats(s, &st);
    assert_true(st.prompt_tokens_cached >= (uint64_t)a->n_prompt_total - 1);
    textbuf ref;
    int32_t n_gen;
    reference(f->m, longer, 10, &sp, NULL, 0, &ref, &n_gen);
    assert_string_equal(b->out[0].text, ref.s);
    em_request_release(a);
    em_request_release(b);
    em_sched_free(s);
}

static void test_sched_stop_and_cancel(void **state) {
    fixture *f = *state;
    em_sched_params p = {.n_slots = 2, .n_ctx_seq = 512};
    ember_error err;
    em_sched *s = em_sched_new(f->m, &p, &err);
    assert_non_null(s);
    ember_sampler_params sp = ember_sampler_defaults();
    sp.temperature = 0;
    const char *stops[] = {"named", "zzz"};
    em_request *r = submit(s, f->m, "Once upon a time", 60, &sp, stops, 2);
    wait_done(r);
    textbuf ref;
    int32_t n_gen;
    reference(f->m, "Once upon a time", 60, &sp, stops, 2, &ref, &n_gen);
    assert_string_equal(r->out[0].text, ref.s);
    assert_string_equal(r->out[0].finish, "stop");
    assert_int_equal(r->out[0].n_gen, n_gen);
    em_request_release(r);

    /* cancellation: a long request stops early */
    em_gen_params gp = {.max_tokens = 400, .sp = sp, .top_logprobs = 2, .ignore_eos = true};
    em_request *c = em_request_new(1, &gp);
    size_t n;
    int32_t *ids = tokenize(f->m, "Once upon a time", &n);
    em_request_set_choice(c, 0, ids, n, 0);
    free(ids);
    assert_int_equal(em_sched_submit(s, c), EM_SUBMIT_OK);
    uint64_t v = em_request_wait(c, 0, 2000);
    (void)v;
    em_request_cancel(c);
    wait_done(c);
    assert_string_equal(c->out[0].finish, "cancelled");
    assert_true(c->out[0].n_gen < 400);
    assert_true(c->out[0].n_lp <= (size_t)c->out[0].n_gen);
    if (c->out[0].n_lp) assert_int_equal(c->out[0].lp[0].n_top, 2);
    em_request_release(c);

    /* invalid prompts are refused */
    em_request *e = em_request_new(1, &gp);
    assert_int_equal(em_sched_submit(s, e), EM_SUBMIT_INVALID); /* empty */
    int32_t big[600] = {0};
    em_request_set_choice(e, 0, big, 600, 0);
    assert_int_equal(em_sched_submit(s, e), EM_SUBMIT_INVALID); /* longer than the context */
    int32_t bad[2] = {1, 99999};
    em_request_set_choice(e, 0, bad, 2, 0);
    assert_int_equal(em_sched_submit(s, e), EM_SUBMIT_INVALID); /* token id out of range */
    em_request_release(e);

    /* draining refuses new work; freeing cancels what is queued */
    em_request *q = submit(s, f->m, "Once upon a time", 400, &sp, NULL, 0);
    em_sched_drain(s);
    em_request *x = em_request_new(1, &gp);
    ids = tokenize(f->m, "Hi", &n);
    em_request_set_choice(x, 0, ids, n, 0);
    free(ids);
    assert_int_equal(em_sched_submit(s, x), EM_SUBMIT_CLOSED);
    em_request_release(x);
    em_sched_free(s);
    assert_true(em_request_done(q));
    assert_non_null(q->out[0].finish);
    em_request_release(q);
}

/* ------------------------------------------------------- contemplation -- */

/* The reference: ember_contemplate alone on a context of its own. */
static void contemplate_ref(const ember_model *m, const int32_t *ids, size_t n, int nb, ember_aggregate agg,
                            bool early, const ember_sampler_params *sp, int32_t max_tokens, const char *const *stops,
                            size_t n_stops, ember_contemplation *out) {
    ember_error err;
    ember_ctx_params cp = {.n_ctx = 1024, .n_seqs = nb};
    ember_ctx *c = ember_ctx_new(m, &cp, &err);
    assert_non_null(c);
    ember_contemplate_params p = {.n_branches = nb, .max_branch_tokens = max_tokens, .aggregate = agg,
                                  .early_stop = early, .sampling = *sp, .stops = stops, .n_stops = n_stops};
    if (ember_contemplate(c, ids, n, &p, NULL, NULL, out, &err)) fail_msg("%s", err.msg);
    ember_ctx_free(c);
}

static em_request *submit_contemplate(em_sched *s, const int32_t *ids, size_t n, int nb, ember_aggregate agg,
                                      bool early, const ember_sampler_params *sp, int32_t max_tokens,
                                      const char *const *stops, size_t n_stops) {
    em_gen_params gp = {.max_tokens = max_tokens, .sp = *sp, .top_logprobs = -1};
    for (size_t i = 0; i < n_stops; i++) gp.stops[i] = (char *)stops[i];
    gp.n_stops = n_stops;
    em_request *r = em_request_new_contemplate(&gp, nb, agg, early, 0, ids, n, sp->seed);
    assert_non_null(r);
    assert_int_equal(em_sched_submit(s, r), EM_SUBMIT_OK);
    return r;
}

/* Every branch (bytes, tokens, mean log-probability, finish, answer) and the
 * aggregate are those of ember_contemplate. Returns the branches cut by the
 * early stop. */
static int same_contemplation(const em_request *r, const ember_contemplation *c) {
    assert_int_equal(r->n_branches, c->n_branches);
    assert_true(r->agg_ready);
    int cut = 0;
    int64_t tokens = 0;
    for (int i = 0; i < r->n_choices; i++) tokens += r->out[i].n_gen;
    for (int i = 0; i < c->n_branches; i++) {
        const em_choice_out *o = &r->out[i];
        const ember_branch *b = &c->branches[i];
        assert_int_equal(o->raw_len, b->len);
        if (b->len) assert_memory_equal(o->raw, b->text, b->len);
        assert_int_equal(o->n_gen, b->n_tokens);
        const char *want = !strcmp(b->finish, "eos") ? "stop" : !strcmp(b->finish, "cancelled") ? "early_stop" : b->finish;
        assert_string_equal(o->finish, want);
        cut += !strcmp(want, "early_stop");
        if (em_agg_mean_lp(o->lp_sum, o->n_gen) != b->mean_logprob)
            fail_msg("branch %d: mean logprob %.17g vs %.17g", i, em_agg_mean_lp(o->lp_sum, o->n_gen), b->mean_logprob);
        assert_string_equal(o->answer.kind == EM_ANS_NONE ? "" : o->answer.text, b->answer);
    }
    assert_string_equal(r->agg_answer, c->answer);
    assert_int_equal(r->agg_winner, c->winner);
    assert_true(r->agg_agreement == c->agreement);
    assert_int_equal(tokens, c->tokens_generated);
    assert_int_equal(r->early_stopped, cut > 0);
    return cut;
}

typedef struct ct_case {
    const char *prompt;
    int nb;
    ember_aggregate agg;
    bool early;
    float temp;
    uint64_t seed;
    int32_t max_tokens;
    const char *stop;
} ct_case;

static const ct_case CT_CASES[] = {
    {"Once upon a time", 8, EMBER_AGG_VOTE, true, 0.5f, 1, 64, "."}, /* early stop cuts a branch */
    {"The little dog", 4, EMBER_AGG_VOTE, false, 1.0f, 7, 24, NULL},
    {"Lily and Ben", 4, EMBER_AGG_BEST, true, 0.9f, 3, 20, NULL},
    {"Once upon a time", 3, EMBER_AGG_SYNTHESIZE, true, 1.0f, 5, 16, "."},
    {"Once upon a time", 4, EMBER_AGG_VOTE, true, 0.5f, 2, 64, "."}, /* early stop with 4 */
    {"The little dog", 4, EMBER_AGG_VOTE, true, 1.0f, 11, 64, NULL},   /* long enough to be preempted */
};

/* Alone, with 7 other requests, and in a pool small enough to preempt: the
 * scheduler's contemplation equals ember_contemplate's. */
static void test_sched_contemplate(void **state) {
    fixture *f = *state;
    const size_t NC = sizeof CT_CASES / sizeof CT_CASES[0];
    ember_contemplation ref[sizeof CT_CASES / sizeof CT_CASES[0]];
    int32_t *ids[sizeof CT_CASES / sizeof CT_CASES[0]];
    size_t nids[sizeof CT_CASES / sizeof CT_CASES[0]];
    int cut_total = 0;
    for (size_t k = 0; k < NC; k++) {
        const ct_case *t = &CT_CASES[k];
        ember_sampler_params sp = ember_sampler_defaults();
        sp.temperature = t->temp;
        sp.seed = t->seed;
        const char *stops[1] = {t->stop};
        ids[k] = tokenize(f->m, t->prompt, &nids[k]);
        contemplate_ref(f->m, ids[k], nids[k], t->nb, t->agg, t->early, &sp, t->max_tokens, stops, t->stop ? 1 : 0,
                        &ref[k]);
    }
    /* shape: slots, pool, prefill chunk, other requests, their tokens, cases;
     * the third has a pool of 32 blocks, too small for everything: the group
     * (the youngest) is preempted */
    const int32_t shapes[3][6] = {{8, 0, 128, 0, 0, 0x1f}, {8, 0, 7, 7, 40, 0x1f}, {8, 512, 32, 3, 160, 0x30}};
    for (int sh = 0; sh < 3; sh++) {
        em_sched_params p = {.n_slots = shapes[sh][0], .n_ctx_seq = 512, .n_ctx_pool = shapes[sh][1],
                             .prefill_chunk = shapes[sh][2]};
        ember_error err;
        em_sched *s = em_sched_new(f->m, &p, &err);
        assert_non_null(s);
        for (size_t k = 0; k < NC; k++) {
            if (!(shapes[sh][5] >> k & 1)) continue;
            const ct_case *t = &CT_CASES[k];
            ember_sampler_params sp = ember_sampler_defaults();
            sp.temperature = t->temp;
            sp.seed = t->seed;
            const char *stops[1] = {t->stop};
            em_request *others[8];
            const int n_others = shapes[sh][3];
            em_request *r = NULL;
            for (int o = 0; o < n_others; o++) {
                ember_sampler_params op = ember_sampler_defaults();
                op.seed = 50 + (uint64_t)o;
                em_gen_params gp = {.max_tokens = shapes[sh][4] + 4 * o, .sp = op, .top_logprobs = -1,
                                    .ignore_eos = true};
                size_t on;
                int32_t *oids = tokenize(f->m, PROMPTS[o], &on);
                others[o] = em_request_new(1, &gp);
                em_request_set_choice(others[o], 0, oids, on, op.seed);
                free(oids);
                assert_int_equal(em_sched_submit(s, others[o]), EM_SUBMIT_OK);
                if (o == (sh == 2 ? n_others - 1 : 2)) /* shape 2: the youngest, preempted first */
                    r = submit_contemplate(s, ids[k], nids[k], t->nb, t->agg, t->early, &sp, t->max_tokens,
                                                   stops, t->stop ? 1 : 0);
            }
            if (!r)
                r = submit_contemplate(s, ids[k], nids[k], t->nb, t->agg, t->early, &sp, t->max_tokens, stops,
                                       t->stop ? 1 : 0);
            wait_done(r);
            cut_total += same_contemplation(r, &ref[k]);
            assert_true(r->kv_blocks_peak > 0);
            em_request_release(r);
            for (int o = 0; o < n_others; o++) {
                wait_done(others[o]);
                em_request_release(others[o]);
            }
        }
        em_sched_stats st;
        for (int w = 0; w < 200; w++) { /* the gauges follow the step */
            em_sched_get_stats(s, &st);
            if (st.n_running == 0) break;
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (sh == 2) assert_true(st.preemptions > 0);
        assert_int_equal(st.n_running, 0);
        em_sched_free(s);
    }
    assert_true(cut_total >= 5); /* cases 0 and 4 */
    for (size_t k = 0; k < NC; k++) {
        ember_contemplation_free(&ref[k]);
        free(ids[k]);
    }
}

/* More branches than slots, or than the pool holds, are refused; a cancelled
 * contemplation ends every branch (and the synthesis pass). */
static void test_sched_contemplate_limits(void **state) {
    fixture *f = *state;
    em_sched_params p = {.n_slots = 4, .n_ctx_seq = 256, .n_ctx_pool = 256};
    ember_error err;
    em_sched *s = em_sched_new(f->m, &p, &err);
    assert_non_null(s);
    size_t n;
    int32_t *ids = tokenize(f->m, "Once upon a time", &n);
    ember_sampler_params sp = ember_sampler_defaults();
    em_gen_params gp = {.max_tokens = 20, .sp = sp, .top_logprobs = -1};
    em_request *r = em_request_new_contemplate(&gp, 5, EMBER_AGG_VOTE, true, 0, ids, n, 1);
    assert_int_equal(em_sched_submit(s, r), EM_SUBMIT_INVALID); /* 5 branches, 4 slots */
    em_request_release(r);
    gp.max_tokens = 200;
    r = em_request_new_contemplate(&gp, 4, EMBER_AGG_VOTE, true, 0, ids, n, 1);
    assert_true(em_sched_contemplate_blocks(s, (int32_t)n, 4, 200) > em_sched_kv_blocks_total(s));
    assert_int_equal(em_sched_submit(s, r), EM_SUBMIT_INVALID); /* 4 x 200 tokens in a pool of 256 */
    em_request_release(r);
    gp.top_logprobs = 0;
    assert_null(em_request_new_contemplate(&gp, 2, EMBER_AGG_VOTE, true, 0, ids, n, 1));
    gp.top_logprobs = -1;
    gp.max_tokens = 40;
    gp.ignore_eos = true;
    r = em_request_new_contemplate(&gp, 3, EMBER_AGG_SYNTHESIZE, true, 0, ids, n, 1);
    assert_int_equal(r->n_choices, 4);
    assert_int_equal(em_sched_submit(s, r), EM_SUBMIT_OK);
    em_request_wait(r, 0, 2000);
    em_request_cancel(r);
    wait_done(r);
    for (int i = 0; i < 4; i++) assert_string_equal(r->out[i].finish, "cancelled");
    assert_false(r->agg_ready);
    em_request_release(r);
    free(ids);
    em_sched_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates_render),
        cmocka_unit_test(test_templates_detect),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test_setup_teardown(test_sched_matches_generate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_single_token_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_prefix_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_stop_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_contemplate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_contemplate_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
