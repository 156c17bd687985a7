/* test_parity.c - ember's logits against llama.cpp's (../shared/oracle).
 *
 * For every dense llama model in ../shared/models whose tensor types ember
 * supports: the logits at every prompt position (one batch), then teacher
 * forcing (feed the oracle's greedy ids one at a time and compare the top-5
 * logits llama.cpp saw), with 1 and 2 threads (which must agree bit for bit),
 * against the F16-cache dumps and, where they exist, the F32-cache dumps
 * (*.kvf32.json, run with an F32 cache). On the two real tiny models the
 * free-running greedy chain must equal llama.cpp's exactly.
 *
 * How close we are, and why the bounds are what they are:
 *  - ember reproduces the summation order of the reference build's kernels
 *    (tinyBLAS for prompt batches, ggml_vec_dot for single tokens, its
 *    vectorized exp in softmax/SiLU, see src/tensor/dot_ggml.h). The prompt
 *    rows of every synthetic model, in every type but Q4_0/Q4_K, match to the last
 *    bit (max |d| <= 6e-8, the print precision); test_bit_exact_prompts pins
 *    that. Q4_0 and Q4_K follow llama.cpp's repacked-kernel order instead
 *    (exact integer sums per block, one FMA per block for eight rows):
 *    1.2e-2 (Q4_0, the same as llama.cpp with repacking on) and 1.6e-2
 *    (Q4_K; llama.cpp repacked: 1.7e-2) from the oracle build.
 *  - With an F32 cache, prompt and decode of the F32 models match to 1e-5:
 *    bound 1e-4 (the F32 tolerance).
 *  - With an F16 cache, one ulp of difference upstream can flip an F16
 *    rounding of K, V, q or a softmax weight, and the model amplifies it:
 *    the oracle README measures 2.0e-2 (stories260K) for F16 vs F32 cache.
 *    The real tiny models (hd 8/16, ff 172) still differ from the reference
 *    by an ulp somewhere we have not pinned down, which such flips turn into
 *    <= 7e-3: bound 2e-2 for their F16-cache rows, plus identical greedy
 *    chains. Single-token decode with an F16 cache differs from the reference
 *    by up to 4e-4 (F32), 1.3e-3 (F16), 3.6e-3 (BF16) on the synthetic
 *    models although both the F32-cache decode and the F16-cache prompt are
 *    bit-exact; bound 1e-3 / 5e-3 there.
 *  - Quantized weights: activations are quantized to Q8 blocks as in ggml, so
 *    a flipped rounding moves logits by ~1e-2 (README: 1.2e-2..1.6e-2 between
 *    two llama.cpp configurations): bound 2e-2 max, 1e-3 mean. */
#include "testutil.h"

#include <math.h>

#include "ember.h"

typedef struct {
    const char *model; /* path under shared/ */
    const char *oracle_stem;
    double tol;        /* max |diff| of prompt rows (F16-cache dumps) */
    double mean_tol;   /* mean |diff| over everything compared */
    double decode_tol; /* max |diff| of teacher-forced steps (F16 cache) */
    bool exact_greedy; /* free-running greedy chain must equal llama.cpp's */
} parity_case;

#define F32_CACHE_TOL 1e-4 /* F32 models with an F32 cache, prompt and decode */

static ember_model *load(const char *rel) {
    ember_error err;
    ember_model *m = ember_model_load(shared_path(rel), &err);
    if (!m) fail_msg("load %s: %s", rel, err.msg);
    return m;
}

static ember_ctx *ctx_for(ember_model *m, int threads, bool kv_f32) {
    ember_error err;
    ember_ctx_params p = {.n_ctx = 512, .n_batch = 512, .n_seqs = 1, .n_threads = threads,
                          .kv_type = kv_f32 ? EMBER_KV_F32 : EMBER_KV_F16};
    ember_ctx *c = ember_ctx_new(m, &p, &err);
    if (!c) fail_msg("ctx: %s", err.msg);
    return c;
}

static int json_ints(const cJSON *arr, int32_t *out, int cap) {
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        assert_true(n < cap);
        out[n++] = (int32_t)e->valueint;
    }
    return n;
}

/* Runs one oracle file with the given thread count; returns all logits
 * produced (prompt rows then teacher-forced rows) for the cross-thread
 * comparison. */
static float *run_oracle(ember_model *m, const char *oracle_rel, int threads, const parity_case *pc, size_t *n_out,
                         double *prompt_max_out) {
    cJSON *j = load_json(shared_path(oracle_rel));
    const cJSON *kvt = cJSON_GetObjectItem(j, "kv_type");
    bool kv_f32 = kvt && !strcmp(kvt->valuestring, "f32");
    ember_ctx *c = ctx_for(m, threads, kv_f32);
    int32_t nv = ember_model_n_vocab(m);
    assert_int_equal(nv, cJSON_GetObjectItem(j, "n_vocab")->valueint);
    int32_t ids[1024], greedy[256];
    int n = json_ints(cJSON_GetObjectItem(j, "prompt_ids"), ids, 1024);
    int ng = json_ints(cJSON_GetObjectItem(j, "greedy_ids"), greedy, 256);
    const cJSON *logits = cJSON_GetObjectItem(j, "logits");
    const cJSON *top5 = cJSON_GetObjectItem(j, "greedy_logits_top5");
    float *all = malloc(sizeof(float) * (size_t)nv * (size_t)(n + ng));
    assert_non_null(all);
    int32_t pos[1024], seq[1024] = {0};
    int8_t want[1024];
    for (int i = 0; i < n; i++) { pos[i] = i; want[i] = 1; }
    ember_error err;
    ember_batch b = {.n = n, .token = ids, .pos = pos, .seq = seq, .want_logits = want};
    if (ember_decode(c, &b, &err)) fail_msg("decode: %s", err.msg);
    double max_diff = 0, dec_max = 0, sum_diff = 0;
    size_t n_cmp = 0;
    for (int i = 0; i < n; i++) {
        const float *l = ember_logits(c, i);
        assert_non_null(l);
        memcpy(all + (size_t)i * nv, l, sizeof(float) * (size_t)nv);
        if (logits) {
            const cJSON *row = cJSON_GetArrayItem(logits, i);
            assert_int_equal(cJSON_GetArraySize(row), nv);
            int t = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, row) {
                double d = fabs((double)l[t] - (double)(float)e->valuedouble);
                if (d > max_diff) max_diff = d;
                sum_diff += d;
                n_cmp++;
                t++;
            }
        }
    }
    /* teacher forcing: step k's distribution came after feeding greedy[k-1] */
    int greedy_ok = 1, router_flips = 0;
    const float *l = ember_logits(c, n - 1);
    for (int k = 0; k < ng; k++) {
        if (k > 0) {
            int32_t tok = greedy[k - 1], p = n + k - 1, s = 0;
            ember_batch bk = {.n = 1, .token = &tok, .pos = &p, .seq = &s, .want_logits = NULL};
            if (ember_decode(c, &bk, &err)) fail_msg("decode step %d: %s", k, err.msg);
            l = ember_logits(c, 0);
        }
        memcpy(all + (size_t)(n + k) * nv, l, sizeof(float) * (size_t)nv);
        const cJSON *pairs = cJSON_GetArrayItem(top5, k), *pr;
        double step_max = 0;
        cJSON_ArrayForEach(pr, pairs) {
            int id = cJSON_GetArrayItem(pr, 0)->valueint;
            double ref = (float)cJSON_GetArrayItem(pr, 1)->valuedouble;
            step_max = fmax(step_max, fabs((double)l[id] - ref));
        }
        /* A mixture-of-experts step may legitimately pick another expert when
         * the router is at a near tie (our single-token F16-cache decode differs
         * from llama.cpp's by ~1e-4, see above): such a step is excused only if
         * ember's router margin was below 1e-3 there, at most twice per run. */
        const double dtol_here = kv_f32 ? F32_CACHE_TOL : pc->decode_tol;
        if (k > 0 && step_max > dtol_here && ember_debug_router_margin(c) < 1e-3f && router_flips < 2) {
            router_flips++;
            print_message("    step %d: router near-tie (margin %.2g), expert choice flipped, |d| %.3g excused\n", k,
                          (double)ember_debug_router_margin(c), step_max);
            step_max = 0;
        }
        cJSON_ArrayForEach(pr, pairs) {
            int id = cJSON_GetArrayItem(pr, 0)->valueint;
            double ref = (float)cJSON_GetArrayItem(pr, 1)->valuedouble;
            double d = step_max == 0 ? 0 : fabs((double)l[id] - ref);
            if (d > dec_max) dec_max = d;
            sum_diff += d;
            n_cmp++;
        }
        int32_t am = 0;
        for (int32_t t = 1; t < nv; t++) if (l[t] > l[am]) am = t;
        if (am != greedy[k]) greedy_ok = 0;
    }
    double mean = n_cmp ? sum_diff / (double)n_cmp : 0;
    print_message("  %-34s t=%d kv=%s: %d prompt rows max |d| %.2g, %d forced steps max |d| %.2g, mean %.2g%s\n",
                  oracle_rel, threads, kv_f32 ? "f32" : "f16", n, max_diff, ng, dec_max, mean,
                  greedy_ok ? ", greedy chain equal" : "");
    const double ptol = kv_f32 ? F32_CACHE_TOL : pc->tol, dtol = kv_f32 ? F32_CACHE_TOL : pc->decode_tol;
    if (max_diff > ptol) fail_msg("%s: prompt max |diff| %.6g exceeds tolerance %.3g", oracle_rel, max_diff, ptol);
    if (dec_max > dtol) fail_msg("%s: decode max |diff| %.6g exceeds tolerance %.3g", oracle_rel, dec_max, dtol);
    if (mean > pc->mean_tol) fail_msg("%s: mean |diff| %.6g exceeds %.3g", oracle_rel, mean, pc->mean_tol);
    if (pc->exact_greedy && !greedy_ok) fail_msg("%s: argmax chain differs from llama.cpp's greedy ids", oracle_rel);
    ember_ctx_free(c);
    cJSON_Delete(j);
    *n_out = (size_t)nv * (size_t)(n + ng);
    if (prompt_max_out) *prompt_max_out = max_diff;
    return all;
}

/* prompt-row maxima of the F16-cache p120 runs, for test_bit_exact_prompts */
#define MAX_RECORDS 64
static struct {
    char stem[64];
    double prompt_max;
} records[MAX_RECORDS];
static int n_records;

static void check_case(const parity_case *pc) {
    ember_model *m = load(pc->model);
    const char *suffixes[] = {"p10.json", "p120.json", "p120.kvf32.json"};
    int ran = 0;
    for (int s = 0; s < 3; s++) {
        char rel[256];
        snprintf(rel, sizeof rel, "oracle/%s.%s", pc->oracle_stem, suffixes[s]);
        FILE *f = fopen(shared_path(rel), "r");
        if (!f) {
            if (s == 2) continue; /* kvf32 dumps exist only for F32 models */
            fail_msg("missing oracle file %s", rel);
        }
        fclose(f);
        size_t n1, n2;
        double pmax;
        float *a = run_oracle(m, rel, 1, pc, &n1, &pmax);
        if (s == 1 && n_records < MAX_RECORDS) {
            snprintf(records[n_records].stem, sizeof records[n_records].stem, "%s", pc->oracle_stem);
            records[n_records++].prompt_max = pmax;
        }
        float *b = run_oracle(m, rel, 2, pc, &n2, NULL);
        assert_int_equal(n1, n2);
        if (memcmp(a, b, n1 * sizeof(float)) != 0) fail_msg("%s: -t 1 and -t 2 results differ", rel);
        free(a);
        free(b);
        ran++;
    }
    assert_true(ran >= 2);
    ember_model_free(m);
}

/* prompt max, mean, decode max (F16 cache); see the header comment */
#define REAL_TOL 2e-2, 1e-3, 2e-2
#define F32_TOL 1e-4, 1e-5, 1e-3
#define F16_TOL 1e-3, 1e-4, 5e-3
#define Q_TOL 2e-2, 1e-3, 2e-2
/* Q4_K sums in the super-block order of llama.cpp's repacked kernels (see
 * src/tensor/quant_k_avx2.c). The oracle README measures llama.cpp itself
 * with repacking on at 1.7e-2 from the dump (synth-dense-Q4_K); one early
 * flip of an activation rounding then shifts every later prompt row a
 * little: measured mean 1.9e-3 (dense Q4_K, p120), so the mean bound is
 * 3e-3 here. */
#define Q4K_TOL 2e-2, 3e-3, 2e-2
/* F16 experts: the quantized MoE files are bit-exact, the F16 one is off by
 * 3e-4..1e-3 from the first position, with any summation order we tried and
 * with F32 activations too, so something in llama.cpp's F16 mul_mat_id
 * path differs that we have not identified: bound 2e-3. */
#define MOE_F16_TOL 2e-3, 3e-4, 5e-3

static const parity_case cases[] = {
    {"models/stories260K.gguf", "stories260K", REAL_TOL, true},
    {"models/aidreams260K.gguf", "aidreams260K", REAL_TOL, true},
    {"models/synth/synth-dense-F32.gguf", "synth-dense-F32", F32_TOL, false},
    {"models/synth/synth-rope3-F32.gguf", "synth-rope3-F32", F32_TOL, false},
    {"models/synth/synth-dense-F16.gguf", "synth-dense-F16", F16_TOL, false},
    {"models/synth/synth-dense-BF16.gguf", "synth-dense-BF16", F16_TOL, false},
    {"models/synth/synth-dense-Q8_0.gguf", "synth-dense-Q8_0", Q_TOL, false},
    {"models/synth/synth-dense-Q4_0.gguf", "synth-dense-Q4_0", Q_TOL, false},
    {"models/synth/synth-dense-Q4_1.gguf", "synth-dense-Q4_1", Q_TOL, false},
    {"models/synth/synth-dense-Q5_0.gguf", "synth-dense-Q5_0", Q_TOL, false},
    {"models/synth/synth-dense-Q5_1.gguf", "synth-dense-Q5_1", Q_TOL, false},
    {"models/synth/synth-rope3-Q8_0.gguf", "synth-rope3-Q8_0", Q_TOL, false},
    /* Llama 4: MoE every 2nd layer (top-1, sigmoid gating on the input, shared
     * expert), no RoPE + temperature on every 4th layer, Q/K norm, tied output */
    {"models/synth/synth-llama4-F32.gguf", "synth-llama4-F32", F32_TOL, false},
    {"models/synth/synth-llama4-Q8_0.gguf", "synth-llama4-Q8_0", Q_TOL, false},
    /* Mixtral-style mixture of experts (8 experts, top-2, softmax gating) */
    {"models/synth/synth-moe-F16.gguf", "synth-moe-F16", MOE_F16_TOL, false},
    {"models/synth/synth-moe-Q8_0.gguf", "synth-moe-Q8_0", Q_TOL, false},
    {"models/synth/synth-moe-Q4_0.gguf", "synth-moe-Q4_0", Q_TOL, false},
    {"models/synth/synth-moe-Q4_1.gguf", "synth-moe-Q4_1", Q_TOL, false},
    {"models/synth/synth-moe-Q5_0.gguf", "synth-moe-Q5_0", Q_TOL, false},
    {"models/synth/synth-moe-Q5_1.gguf", "synth-moe-Q5_1", Q_TOL, false},
    {"models/synth/synth-moe-Q2_K.gguf", "synth-moe-Q2_K", 2e-2, 1e-3, 3e-2, false},
    {"models/synth/synth-moe-Q3_K.gguf", "synth-moe-Q3_K", Q_TOL, false},
    {"models/synth/synth-moe-Q4_K.gguf", "synth-moe-Q4_K", Q4K_TOL, false},
    {"models/synth/synth-moe-Q5_K.gguf", "synth-moe-Q5_K", Q_TOL, false},
    {"models/synth/synth-moe-Q6_K.gguf", "synth-moe-Q6_K", Q_TOL, false},
    {"models/synth/synth-moe-Q4_K_M.gguf", "synth-moe-Q4_K_M", Q4K_TOL, false},
    /* decode bound 3e-2: 2-bit weights amplify the F16-cache decode flips (measured 2.03e-2) */
    {"models/synth/synth-dense-Q2_K.gguf", "synth-dense-Q2_K", 2e-2, 1e-3, 3e-2, false},
    {"models/synth/synth-dense-Q3_K.gguf", "synth-dense-Q3_K", Q_TOL, false},
    {"models/synth/synth-dense-Q4_K.gguf", "synth-dense-Q4_K", Q4K_TOL, false},
    {"models/synth/synth-dense-Q5_K.gguf", "synth-dense-Q5_K", Q_TOL, false},
    {"models/synth/synth-dense-Q6_K.gguf", "synth-dense-Q6_K", Q_TOL, false},
    {"models/synth/synth-dense-Q4_K_M.gguf", "synth-dense-Q4_K_M", Q4K_TOL, false},
    {"models/synth/synth-rope3-Q4_K.gguf", "synth-rope3-Q4_K", Q4K_TOL, false},
};

static void test_case(void **state) { check_case((const parity_case *)*state); }

/* The prompt rows of the synthetic models are bit-exact with llama.cpp's
 * (their logits are < 2 in magnitude, so 1e-6 is a few ulps; measured: the
 * print precision). A regression in any kernel's summation order shows here
 * first. */
static void test_bit_exact_prompts(void **state) {
    (void)state;
    /* Q4_0 and Q4_K (so Q4_K_M too) are absent on purpose: they sum in the
     * order of llama.cpp's repacked kernels (src/tensor/quant_avx2.c,
     * quant_k_avx2.c), not in the oracle build's lane order, for about twice
     * the prompt speed; their files are held to Q_TOL / Q4K_TOL. */
    const char *stems[] = {"synth-dense-F32", "synth-dense-F16", "synth-dense-BF16", "synth-dense-Q8_0",
                           "synth-dense-Q4_1", "synth-dense-Q5_0", "synth-dense-Q5_1",
                           "synth-rope3-F32", "synth-rope3-Q8_0", "synth-moe-Q8_0",
                           "synth-moe-Q4_1", "synth-moe-Q5_0", "synth-moe-Q5_1", "synth-llama4-F32",
                           "synth-llama4-Q8_0", "synth-dense-Q2_K", "synth-dense-Q3_K",
                           "synth-dense-Q5_K", "synth-dense-Q6_K",
                           "synth-moe-Q2_K", "synth-moe-Q3_K", "synth-moe-Q5_K", "synth-moe-Q6_K"};
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++) {
        /* the case table ran these already: reuse its measurement */
        double pmax = -1;
        for (int r = 0; r < n_records; r++)
            if (!strcmp(records[r].stem, stems[i])) pmax = records[r].prompt_max;
        if (pmax < 0) {
            char model[128], oracle[128];
            snprintf(model, sizeof model, "models/synth/%s.gguf", stems[i]);
            snprintf(oracle, sizeof oracle, "oracle/%s.p120.json", stems[i]);
            ember_model *m = load(model);
            parity_case pc = {model, stems[i], 1e-6, 1, 1, false};
            size_t n;
            free(run_oracle(m, oracle, 2, &pc, &n, &pmax));
            ember_model_free(m);
        }
        if (pmax > 1e-6) fail_msg("%s: prompt rows differ by %.3g", stems[i], pmax);
    }
}

/* During a decode step only the chosen experts' weights are read: the debug
 * counter equals (experts chosen) x (bytes of one expert's gate, up and down
 * matrices), far below the whole stack. */
static void test_expert_bytes(void **state) {
    (void)state;
    ember_model *m = load("models/synth/synth-moe-Q8_0.gguf");
    ember_ctx *c = ctx_for(m, 1, false);
    ember_error err;
    int32_t tok[3] = {1, 403, 407}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    ember_batch b = {.n = 3, .token = tok, .pos = pos, .seq = seq};
    assert_int_equal(ember_decode(c, &b, &err), 0);
    /* 256 x 512 Q8_0 matrix: 512 rows of 256/32 blocks of 34 bytes */
    const uint64_t one_matrix = 512ull * (256 / 32) * 34, per_expert = 3 * one_matrix;
    uint64_t prompt_bytes = ember_debug_expert_bytes(c);
    /* 3 tokens x top-2 touch between 2 and 6 distinct experts, not all 8 */
    assert_true(prompt_bytes >= 2 * per_expert && prompt_bytes <= 6 * per_expert);
    assert_int_equal(prompt_bytes % per_expert, 0);
    int32_t t = 261, p = 3, s0 = 0;
    ember_batch d = {.n = 1, .token = &t, .pos = &p, .seq = &s0};
    assert_int_equal(ember_decode(c, &d, &err), 0);
    assert_int_equal(ember_debug_expert_bytes(c), 2 * per_expert); /* one token, top-2 */
    ember_ctx_free(c);
    ember_model_free(m);
}

/* Free-running greedy generation from text prompts equals llama.cpp's. */
static void test_text_prompts(void **state) {
    (void)state;
    ember_model *m = load("models/stories260K.gguf");
    for (int t = 1; t <= 5; t++) {
        char rel[128];
        snprintf(rel, sizeof rel, "oracle/stories260K.text%d.json", t);
        cJSON *j = load_json(shared_path(rel));
        const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
        int32_t want_ids[256], greedy[256];
        int n = json_ints(cJSON_GetObjectItem(j, "prompt_ids"), want_ids, 256);
        int ng = json_ints(cJSON_GetObjectItem(j, "greedy_ids"), greedy, 256);
        ember_error err;
        int32_t *ids;
        size_t nids;
        if (ember_tokenize(m, prompt, strlen(prompt), true, false, &ids, &nids, &err)) fail_msg("%s", err.msg);
        assert_int_equal((int)nids, n);
        assert_memory_equal(ids, want_ids, sizeof(int32_t) * (size_t)n);
        ember_ctx *c = ctx_for(m, 2, false);
        ember_sampler_params sp = ember_sampler_defaults();
        sp.temperature = 0;
        ember_sampler *s = ember_sampler_new(&sp, ember_model_n_vocab(m));
        int32_t p = 0, seq = 0;
        int8_t want = 1;
        int32_t pos[256], seqs[256] = {0};
        for (int i = 0; i < n; i++) pos[i] = i;
        ember_batch b = {.n = n, .token = ids, .pos = pos, .seq = seqs, .want_logits = NULL};
        if (ember_decode(c, &b, &err)) fail_msg("%s", err.msg);
        const float *l = ember_logits(c, n - 1);
        p = n;
        for (int k = 0; k < ng; k++) {
            int32_t tok = ember_sampler_sample(s, l, NULL);
            if (tok != greedy[k]) fail_msg("%s: greedy token %d is %d, llama.cpp has %d", rel, k, tok, greedy[k]);
            ember_batch bk = {.n = 1, .token = &tok, .pos = &p, .seq = &seq, .want_logits = &want};
            if (ember_decode(c, &bk, &err)) fail_msg("%s", err.msg);
            p++;
            l = ember_logits(c, 0);
        }
        ember_sampler_free(s);
        ember_ctx_free(c);
        free(ids);
        cJSON_Delete(j);
    }
    ember_model_free(m);
}

/* A tensor type ember has no kernels for (IQ2_XXS) is refused at load with
 * a clear message. The file is a copy of a supported model with the type
 * field of one weight's tensor-info record patched (F32 -> IQ2_XXS, whose
 * data is smaller, so every offset stays in bounds). */
static void test_unsupported_types(void **state) {
    (void)state;
    size_t len = 0;
    char *buf = read_file(shared_path("models/synth/synth-dense-F32.gguf"), &len);
    assert_non_null(buf);
    /* tensor info: u64 name length, name, u32 n_dims, i64 ne[n_dims], u32 type, u64 offset (little endian) */
    static const char name[] = "blk.0.attn_q.weight";
    unsigned char rec[8 + sizeof name - 1] = {(unsigned char)(sizeof name - 1)};
    memcpy(rec + 8, name, sizeof name - 1);
    size_t at = len;
    for (size_t i = 0; i + sizeof rec <= len && at == len; i++)
        if (!memcmp(buf + i, rec, sizeof rec)) at = i;
    assert_true(at < len);
    const size_t type_at = at + sizeof rec + 4 + 8 * (size_t)(unsigned char)buf[at + sizeof rec];
    assert_true(type_at + 4 <= len);
    static const unsigned char f32[4] = {0, 0, 0, 0}, iq2_xxs[4] = {16, 0, 0, 0};
    assert_memory_equal(buf + type_at, f32, 4);
    memcpy(buf + type_at, iq2_xxs, 4);
    char path[] = "/tmp/ember-parity-iq2xxs-XXXXXX";
    FILE *f = fdopen(mkstemp(path), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
    ember_error err;
    ember_model *m = ember_model_load(path, &err);
    remove(path);
    if (m) {
        ember_model_free(m);
        fail_msg("a model with an IQ2_XXS weight loaded, but ember has no IQ2_XXS kernels");
    }
    if (!strstr(err.msg, "unsupported tensor type") || !strstr(err.msg, "IQ2_XXS"))
        fail_msg("unexpected error: %s", err.msg);
}

int main(void) {
    struct CMUnitTest tests[sizeof cases / sizeof cases[0] + 4];
    size_t n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_case, (void *)&cases[i]);
        tests[n].name = cases[i].oracle_stem;
        n++;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_bit_exact_prompts);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_expert_bytes);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_text_prompts);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_unsupported_types);
    return _cmocka_run_group_tests("parity", tests, n, NULL, NULL);
}
