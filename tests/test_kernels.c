/* test_kernels.c - the tensor-type table and its kernels (src/tensor/).
 *
 * What is checked:
 *  - the table: supported types, layouts, vec_dot_type, NULL for the rest;
 *  - fp16 / bf16 conversion: all 65536 halves, rounding ties, subnormals,
 *    overflow, inf, NaN, against em_f16_to_f32_slow and hand values;
 *  - block layouts: hand-built byte blocks dequantize to hand-computed
 *    values, and dot with hand-built activation blocks to exact results;
 *  - quantizers: ggml's reference weight quantizer on a hand example; the
 *    Q8_0/Q8_1 activation quantizer on hand vectors (round half to even,
 *    127/amax rather than 1/d, s = d * sum); scalar and AVX2 quantizers give
 *    identical bytes on random and adversarial data;
 *  - round trips quantize -> dequantize within per-format error bounds;
 *  - vec_dot of both kernel sets against a double-precision reference on
 *    the dequantized operands, for n = 32, 256, 4096, 11008 (and odd n for
 *    the float types);
 *  - AVX2 against scalar: identical bits (both compute the same operations
 *    in the same order);
 *  - both against an emulation, written here from ggml's code, of the
 *    kernels of the llama.cpp build behind ../shared/oracle (AVX-512 vec_dot
 *    for F32/F16, AVX512_BF16 vdpbf16ps for BF16, ggml's AVX2 kernels for
 *    the quantized types): identical bits again. This is what makes the
 *    engine's logits match llama.cpp's.
 *  - K-quants (Q2_K..Q6_K, Q8_K activations): hand-made super-blocks
 *    dequantize to hand-computed values and dot to exact sums; the Q8_K
 *    quantizer (quantize_row_q8_K_ref) on hand vectors, and its AVX2
 *    version byte-identical to the scalar one on random and adversarial
 *    data; round-trip error bounds; the dots at n = 256..11008 against the
 *    double reference, AVX2 against scalar, and both against an emulation
 *    of ggml's kernels (above); the weight quantizers byte-identical to what
 *    llama-quantize wrote into the shared K-quant models.
 *
 * Tolerance against the double reference (float summation is the only
 * difference): with A = sum |w_i * x_i| over the dequantized operands, a
 * dot must be within 1e-5 * A. For Q4_1/Q5_1 the activation sum s is stored
 * in fp16, which adds up to sum_b |m_b * s_b| * 2^-11. A layout or sign bug
 * produces errors of the order of A itself, far above these bounds. */

/* The oracle emulation below relies on a*b+c being two roundings unless
 * written as fmaf(). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "base/half.h"
#include "gguf/gguf.h"
#include "tensor/quant.h"
#include "tensor/types.h"
#include "tensor/dot_ggml.h"

/* ------------------------------------------------------------------ utils */

static uint64_t rng_state;

static void rng_seed(uint64_t s) { rng_state = s; }

static uint64_t rng_u64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unit(void) { return (float)(rng_u64() >> 40) / 16777216.0f; } /* [0, 1) */

static float rng_gauss(void) {
    float u = rng_unit(), v = rng_unit();
    if (u < 1e-7f) u = 1e-7f;
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* Activation/weight-like data: gaussian, scale varying per 32-block, a few
 * outliers, some exact zeros. */
static void fill_data(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        const float block_scale = 0.25f + (float)((i / 32) % 7) * 0.5f;
        float v = rng_gauss() * scale * block_scale;
        const uint64_t r = rng_u64() % 1000;
        if (r < 3) v *= 12.0f;
        else if (r < 6) v = 0.0f;
        x[i] = v;
    }
}

static bool cpu_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __get_cpuid(1, &a, &b, &c, &d) &&
           (c & (1u << 29)); /* F16C */
#else
    return false;
#endif
}

/* EMBER_NO_SIMD set to something other than "" or "0": kernels forced scalar */
static bool env_no_simd(void) {
    const char *env = getenv("EMBER_NO_SIMD");
    return env && *env && strcmp(env, "0") != 0;
}

/* The AVX2 traits of a type, or NULL (scalar only) only where the AVX2
 * set cannot be tested: a CPU without AVX2/FMA/F16C, or EMBER_NO_SIMD set.
 * Its absence anywhere else fails the test: no comparison against the
 * scalar kernels is ever skipped on a machine that can run it. */
static const em_type_traits *avx2_traits(uint32_t type) {
    em_kernels_force_scalar(false);
    if (strcmp(em_kernels_isa(), "avx2") == 0) return em_type_traits_get(type);
    if (cpu_avx2() && !env_no_simd()) fail_msg("the CPU has AVX2/FMA/F16C but the AVX2 kernel set is not active");
    return NULL;
}

/* For the tests that only compare AVX2 against scalar: says why, then skips. */
static void skip_without_avx2(void) {
    print_message("skipped: %s\n", env_no_simd() ? "EMBER_NO_SIMD is set" : "this CPU lacks AVX2/FMA/F16C");
    skip();
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static const uint32_t weight_types[] = {EM_TYPE_F32, EM_TYPE_F16, EM_TYPE_BF16, EM_TYPE_Q8_0,
                                        EM_TYPE_Q4_0, EM_TYPE_Q4_1, EM_TYPE_Q5_0, EM_TYPE_Q5_1};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

static bool is_block_type(uint32_t t) { return t != EM_TYPE_F32 && t != EM_TYPE_F16 && t != EM_TYPE_BF16; }

/* K-quant weight types (super-blocks of 256, activations Q8_K) */
static const uint32_t k_types[] = {EM_TYPE_Q2_K, EM_TYPE_Q3_K, EM_TYPE_Q4_K, EM_TYPE_Q5_K, EM_TYPE_Q6_K};
#define N_K_TYPES (sizeof k_types / sizeof k_types[0])

/* ------------------------------------------------------------ type table */

static void test_table(void **state) {
    (void)state;
    static const struct { uint32_t type, vdt; } expect[] = {
        {EM_TYPE_F32, EM_TYPE_F32},   {EM_TYPE_F16, EM_TYPE_F16},   {EM_TYPE_BF16, EM_TYPE_BF16},
        {EM_TYPE_Q8_0, EM_TYPE_Q8_0}, {EM_TYPE_Q4_0, EM_TYPE_Q8_0}, {EM_TYPE_Q5_0, EM_TYPE_Q8_0},
        {EM_TYPE_Q4_1, EM_TYPE_Q8_1}, {EM_TYPE_Q5_1, EM_TYPE_Q8_1}, {EM_TYPE_Q8_1, EM_TYPE_Q8_1},
        {EM_TYPE_Q2_K, EM_TYPE_Q8_K}, {EM_TYPE_Q3_K, EM_TYPE_Q8_K}, {EM_TYPE_Q4_K, EM_TYPE_Q8_K},
        {EM_TYPE_Q5_K, EM_TYPE_Q8_K}, {EM_TYPE_Q6_K, EM_TYPE_Q8_K}, {EM_TYPE_Q8_K, EM_TYPE_Q8_K},
    };
    for (int pass = 0; pass < 2; pass++) {
        em_kernels_force_scalar(pass == 0);
        for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
            const em_type_traits *t = em_type_traits_get(expect[i].type);
            const em_type_traits *s = em_type_traits_scalar(expect[i].type);
            assert_non_null(t);
            assert_non_null(s);
            uint32_t be, bb;
            assert_true(em_type_layout(expect[i].type, &be, &bb));
            assert_int_equal(t->type, expect[i].type);
            assert_int_equal(t->blck, be);
            assert_int_equal(t->bytes, bb);
            assert_string_equal(t->name, em_type_name(expect[i].type));
            assert_int_equal(t->vec_dot_type, expect[i].vdt);
            assert_non_null(t->to_f32);
            assert_non_null(t->from_f32);
            assert_non_null(t->vec_dot);
            /* the activation format is itself in the table */
            assert_non_null(em_type_traits_get(t->vec_dot_type));
            assert_non_null(em_type_traits_get(t->vec_dot_type)->from_f32);
        }
    }
    em_kernels_force_scalar(false);
    static const uint32_t unsupported[] = {EM_TYPE_IQ2_XXS, EM_TYPE_IQ2_XS, EM_TYPE_IQ3_XXS, EM_TYPE_IQ1_S,
                                           EM_TYPE_IQ4_NL, EM_TYPE_IQ3_S, EM_TYPE_IQ2_S, EM_TYPE_IQ4_XS,
                                           EM_TYPE_IQ1_M, EM_TYPE_TQ1_0, EM_TYPE_TQ2_0, EM_TYPE_I8,
                                           EM_TYPE_I32, EM_TYPE_F64, EM_TYPE_MXFP4, 4, 5, EM_TYPE_COUNT,
                                           1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        assert_null(em_type_traits_get(unsupported[i]));
        assert_null(em_type_traits_scalar(unsupported[i]));
    }
}

static void test_isa_switch(void **state) {
    (void)state;
    em_kernels_force_scalar(true);
    assert_string_equal(em_kernels_isa(), "scalar");
    assert_ptr_equal(em_type_traits_get(EM_TYPE_Q4_0), em_type_traits_scalar(EM_TYPE_Q4_0));
    em_kernels_force_scalar(false);
    if (cpu_avx2() && !env_no_simd()) {
        assert_string_equal(em_kernels_isa(), "avx2");
        const em_type_traits *t = em_type_traits_get(EM_TYPE_Q4_0);
        assert_ptr_not_equal(t->vec_dot, em_type_traits_scalar(EM_TYPE_Q4_0)->vec_dot);
    } else {
        assert_string_equal(em_kernels_isa(), "scalar");
    }
}

/* --------------------------------------------------------- fp16 and bf16 */

static void test_f16_exhaustive(void **state) {
    (void)state;
    em_half_init();
    for (uint32_t h = 0; h < 65536; h++) {
        const float slow = em_f16_to_f32_slow((em_f16)h);
        assert_int_equal(f2u(em_f16_to_f32((em_f16)h)), f2u(slow));
        const bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0;
        if (nan) {
            assert_true(isnan(slow));
            const em_f16 r = em_f32_to_f16(slow);
            assert_int_equal(r & 0x7c00, 0x7c00);
            assert_int_not_equal(r & 0x03ff, 0);
        } else {
            assert_int_equal(em_f32_to_f16(slow), h);
        }
    }
}

static void test_f16_edges(void **state) {
    (void)state;
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x00000000, 0x0000}, {0x80000000, 0x8000},
        {0x33800000, 0x0001}, /* 2^-24: smallest subnormal */
        {0xb3800000, 0x8001},
        {0x33000000, 0x0000}, /* 2^-25: tie between 0 and 0x0001 -> even (0) */
        {0x33000001, 0x0001}, /* just above the tie */
        {0x33c00000, 0x0002}, /* 1.5 * 2^-24: tie between 1 and 2 -> 2 */
        {0x32800000, 0x0000}, /* 2^-26 */
        {0x387fc000, 0x03ff}, /* largest subnormal */
        {0x38800000, 0x0400}, /* smallest normal 2^-14 */
        {0x3f800000, 0x3c00}, /* 1 */
        {0x3f801000, 0x3c00}, /* 1 + 2^-11: tie -> even (1) */
        {0x3f801001, 0x3c01},
        {0x3f803000, 0x3c02}, /* 1 + 3*2^-11: tie -> even (0x3c02) */
        {0xc0000000, 0xc000}, /* -2 */
        {0x477fe000, 0x7bff}, /* 65504: largest finite */
        {0x477fefff, 0x7bff}, /* just below 65520 */
        {0x477ff000, 0x7c00}, /* 65520: tie -> rounds to inf */
        {0x49742400, 0x7c00}, /* 1e6 */
        {0x7f800000, 0x7c00}, {0xff800000, 0xfc00},
    };
    const em_type_traits *sc = em_type_traits_scalar(EM_TYPE_F16);
    const em_type_traits *vx = avx2_traits(EM_TYPE_F16);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const float f = u2f(cases[i].in);
        assert_int_equal(em_f32_to_f16(f), cases[i].out);
        em_f16 h;
        sc->from_f32(&f, &h, 1);
        assert_int_equal(h, cases[i].out);
        /* the vector path takes 8 at a time */
        if (vx) {
            float v8[8];
            em_f16 h8[8];
            for (int k = 0; k < 8; k++) v8[k] = f;
            vx->from_f32(v8, h8, 8);
            for (int k = 0; k < 8; k++) assert_int_equal(h8[k], cases[i].out);
            float back[8];
            vx->to_f32(h8, back, 8);
            for (int k = 0; k < 8; k++) assert_int_equal(f2u(back[k]), f2u(em_f16_to_f32_slow(cases[i].out)));
        }
    }
    const em_f16 qnan = em_f32_to_f16(u2f(0x7fc00000));
    assert_int_equal(qnan & 0x7c00, 0x7c00);
    assert_int_not_equal(qnan & 0x3ff, 0);
}

static void test_bf16_edges(void **state) {
    (void)state;
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, /* tie -> even */
        {0x3f818000, 0x3f82},                       /* tie -> even (up) */
        {0x3f808001, 0x3f81}, {0xbf80ffff, 0xbf81}, {0x00000001, 0x0000},
        {0x7f7fffff, 0x7f80},                       /* FLT_MAX rounds to inf */
        {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
        {0x7fa00000, 0x7fe0},                       /* signalling NaN -> quiet */
        {0xffc00001, 0xffc0},
    };
    const em_type_traits *sc = em_type_traits_scalar(EM_TYPE_BF16);
    const em_type_traits *vx = avx2_traits(EM_TYPE_BF16);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const float f = u2f(cases[i].in);
        em_bf16 h;
        sc->from_f32(&f, &h, 1);
        assert_int_equal(h, cases[i].out);
        if (vx) {
            float v[16];
            em_bf16 hv[16];
            for (int k = 0; k < 16; k++) v[k] = f;
            vx->from_f32(v, hv, 16);
            for (int k = 0; k < 16; k++) assert_int_equal(hv[k], cases[i].out);
        }
        float back;
        sc->to_f32(&cases[i].out, &back, 1);
        assert_int_equal(f2u(back), (uint32_t)cases[i].out << 16);
    }
}

/* Random bit patterns through both conversion paths (F16: NaNs excluded,
 * their payload may differ; BF16: everything). */
static void test_half_avx2_matches_scalar(void **state) {
    (void)state;
    const em_type_traits *v16 = avx2_traits(EM_TYPE_F16), *vbf = avx2_traits(EM_TYPE_BF16);
    if (!v16) skip_without_avx2();
    const em_type_traits *s16 = em_type_traits_scalar(EM_TYPE_F16), *sbf = em_type_traits_scalar(EM_TYPE_BF16);
    enum { N = 50003 };
    float *x = malloc(N * sizeof *x);
    uint16_t *a = malloc(N * 2), *b = malloc(N * 2);
    float *fa = malloc(N * sizeof *fa), *fb = malloc(N * sizeof *fb);
    rng_seed(7);
    for (int i = 0; i < N; i++) {
        uint32_t u = (uint32_t)rng_u64();
        if (i % 3 == 0) u = (u & 0x8001ffff) | ((uint32_t)(100 + rng_u64() % 50) << 23); /* near fp16 range */
        if (i % 5 == 0) u &= 0xffffe000u | (1u << 12);                                  /* exact ties */
        x[i] = u2f(u);
    }
    sbf->from_f32(x, a, N);
    vbf->from_f32(x, b, N);
    assert_memory_equal(a, b, N * 2);
    for (int i = 0; i < N; i++)
        if (isnan(x[i])) x[i] = 1.0f;
    s16->from_f32(x, a, N);
    v16->from_f32(x, b, N);
    assert_memory_equal(a, b, N * 2);
    s16->to_f32(a, fa, N);
    v16->to_f32(a, fb, N);
    assert_memory_equal(fa, fb, N * sizeof(float));
    free(x), free(a), free(b), free(fa), free(fb);
}

/* ------------------------------------------------ block layouts (by hand) */

static void check_values(const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        if (f2u(got[i]) != f2u(want[i])) fail_msg("element %d: got %.9g want %.9g", i, got[i], want[i]);
}

/* An activation block Q8_0 with d = 1 and qs[j] = (j % 5) - 2, and the
 * matching Q8_1 (s = sum = 32 elements: pattern sums to 0 per 5, plus the
 * first two of the 7th group: -2 + -1 = -3). */
static const int8_t act_q[32] = {-2, -1, 0, 1, 2, -2, -1, 0, 1, 2, -2, -1, 0, 1, 2, -2,
                                 -1, 0, 1, 2, -2, -1, 0, 1, 2, -2, -1, 0, 1, 2, -2, -1};

static void make_act_q8_0(uint8_t blk[34]) {
    wr16(blk, 0x3c00);
    memcpy(blk + 2, act_q, 32);
}

static void make_act_q8_1(uint8_t blk[36]) {
    wr16(blk, 0x3c00);
    wr16(blk + 2, 0xc200); /* fp16(-3) */
    memcpy(blk + 4, act_q, 32);
}

static double dot_with_act(const float *v) {
    double s = 0;
    for (int i = 0; i < 32; i++) s += (double)v[i] * act_q[i];
    return s;
}

/* vec_dot of one hand block with the hand activation, both kernel sets. */
static void check_block_dot(uint32_t type, const uint8_t *blk, const float *want) {
    uint8_t act[36];
    if (em_type_traits_scalar(type)->vec_dot_type == EM_TYPE_Q8_1) make_act_q8_1(act);
    else make_act_q8_0(act);
    const double expect = dot_with_act(want);
    float s;
    em_type_traits_scalar(type)->vec_dot(32, &s, blk, act);
    assert_float_equal(s, expect, 1e-6);
    const em_type_traits *vx = avx2_traits(type);
    if (vx) {
        vx->vec_dot(32, &s, blk, act);
        assert_float_equal(s, expect, 1e-6);
    }
}

static void test_layout_q4_0(void **state) {
    (void)state;
    uint8_t blk[18];
    wr16(blk, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 16; j++) blk[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    static const float want[32] = {-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5,
                                   3.5, 3, 2.5, 2, 1.5, 1, 0.5, 0, -0.5, -1, -1.5, -2, -2.5, -3, -3.5, -4};
    float got[32];
    em_type_traits_scalar(EM_TYPE_Q4_0)->to_f32(blk, got, 32);
    check_values(got, want, 32);
    check_block_dot(EM_TYPE_Q4_0, blk, want);
}

static void test_layout_q4_1(void **state) {
    (void)state;
    uint8_t blk[20];
    wr16(blk, 0x3400);     /* d = 0.25 */
    wr16(blk + 2, 0xbc00); /* m = -1 */
    for (int j = 0; j < 16; j++) blk[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    static const float want[32] = {-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75,
                                   2.75, 2.5, 2.25, 2, 1.75, 1.5, 1.25, 1, 0.75, 0.5, 0.25, 0, -0.25, -0.5, -0.75, -1};
    float got[32];
    em_type_traits_scalar(EM_TYPE_Q4_1)->to_f32(blk, got, 32);
    check_values(got, want, 32);
    check_block_dot(EM_TYPE_Q4_1, blk, want);
}

/* qs[j] = j | j << 4 and qh bits 0, 9, 18, 31 set (bytes 01 02 04 80):
 * 5-bit values per element, by hand. */
static const int q5_vals[32] = {16, 1, 2, 3, 4, 5, 6, 7, 8, 25, 10, 11, 12, 13, 14, 15,
                                0, 1, 18, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 31};

static void test_layout_q5_0(void **state) {
    (void)state;
    uint8_t blk[22];
    wr16(blk, 0x3c00); /* d = 1 */
    blk[2] = 0x01, blk[3] = 0x02, blk[4] = 0x04, blk[5] = 0x80;
    for (int j = 0; j < 16; j++) blk[6 + j] = (uint8_t)(j | (j << 4));
    float want[32], got[32];
    for (int i = 0; i < 32; i++) want[i] = (float)(q5_vals[i] - 16);
    em_type_traits_scalar(EM_TYPE_Q5_0)->to_f32(blk, got, 32);
    check_values(got, want, 32);
    check_block_dot(EM_TYPE_Q5_0, blk, want);
}

static void test_layout_q5_1(void **state) {
    (void)state;
    uint8_t blk[24];
    wr16(blk, 0x3800);     /* d = 0.5 */
    wr16(blk + 2, 0x3400); /* m = 0.25 */
    blk[4] = 0x01, blk[5] = 0x02, blk[6] = 0x04, blk[7] = 0x80;
    for (int j = 0; j < 16; j++) blk[8 + j] = (uint8_t)(j | (j << 4));
    float want[32], got[32];
    for (int i = 0; i < 32; i++) want[i] = (float)q5_vals[i] * 0.5f + 0.25f;
    em_type_traits_scalar(EM_TYPE_Q5_1)->to_f32(blk, got, 32);
    check_values(got, want, 32);
    check_block_dot(EM_TYPE_Q5_1, blk, want);
}

static void test_layout_q8_0(void **state) {
    (void)state;
    uint8_t blk[34];
    wr16(blk, 0x3000); /* d = 0.125 */
    static const int8_t q[32] = {-128, -127, -1, 0, 1, 127, 5, -5, 64, -64, 3, 2, 1, 0, -1, -2,
                                 -3, 100, -100, 7, 8, 9, 10, -11, 12, -13, 14, -15, 16, -17, 18, 19};
    memcpy(blk + 2, q, 32);
    float want[32], got[32];
    for (int i = 0; i < 32; i++) want[i] = (float)q[i] / 8.0f;
    em_type_traits_scalar(EM_TYPE_Q8_0)->to_f32(blk, got, 32);
    check_values(got, want, 32);
    check_block_dot(EM_TYPE_Q8_0, blk, want);
}

/* Several blocks: the dot must use each block's own scales, in order. */
static void test_layout_multiblock(void **state) {
    (void)state;
    uint8_t w[3 * 18], act[3 * 34];
    for (int b = 0; b < 3; b++) {
        wr16(w + 18 * b, (uint16_t)(0x3c00 + (b << 10))); /* d = 1, 2, 4 */
        for (int j = 0; j < 16; j++) w[18 * b + 2 + j] = 0x99; /* all elements q = 9 -> value d */
        wr16(act + 34 * b, (uint16_t)(0x3800 - (b << 10)));  /* d = 0.5, 0.25, 0.125 */
        for (int j = 0; j < 32; j++) act[34 * b + 2 + j] = (uint8_t)(b + 1); /* q = 1, 2, 3 */
    }
    /* block b: 32 * (d_w * 1) * (d_x * q) = 32 * 2^b * 2^-(b+1) * (b+1) = 16 (b+1) */
    const float expect = 16.0f * (1 + 2 + 3);
    float s;
    em_type_traits_scalar(EM_TYPE_Q4_0)->vec_dot(96, &s, w, act);
    assert_float_equal(s, expect, 0);
    const em_type_traits *vx = avx2_traits(EM_TYPE_Q4_0);
    if (vx) {
        vx->vec_dot(96, &s, w, act);
        assert_float_equal(s, expect, 0);
    }
    em_type_traits_scalar(EM_TYPE_Q4_0)->vec_dot(0, &s, w, act);
    assert_float_equal(s, 0.0f, 0);
}

/* ------------------------------------------------------------ quantizers */

/* ggml quantize_row_q4_0_ref on a hand example: max-magnitude element 8
 * gives d = 8 / -8 = -1, q = trunc(x * -1 + 8.5) clamped to 15. */
static void test_quantize_q4_0_ref(void **state) {
    (void)state;
    float x[32] = {0};
    x[0] = 8, x[1] = -7, x[2] = -8, x[3] = 0.5f, x[4] = 1.5f, x[5] = 2.4f;
    x[16] = -3, x[17] = 4;
    uint8_t blk[18];
    em_type_traits_get(EM_TYPE_Q4_0)->from_f32(x, blk, 32);
    assert_int_equal(rd16(blk), 0xbc00);
    static const uint8_t want[16] = {0xB0, 0x4F, 0x8F, 0x88, 0x87, 0x86, 0x88, 0x88,
                                     0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
    assert_memory_equal(blk + 2, want, 16);
}

/* Runs the activation quantizer of `type` (Q8_0 or Q8_1) of every active
 * kernel set on x (n = 32 * nb) and compares with the expected blocks. */
static void check_act_quant(uint32_t type, const float *x, int nb, const uint8_t *want) {
    const size_t bs = type == EM_TYPE_Q8_0 ? 34 : 36;
    uint8_t got[8 * 36];
    em_type_traits_scalar(type)->from_f32(x, got, 32 * nb);
    for (int b = 0; b < nb; b++)
        if (memcmp(got + b * bs, want + b * bs, bs) != 0) fail_msg("scalar %s block %d differs", type == EM_TYPE_Q8_0 ? "Q8_0" : "Q8_1", b);
    const em_type_traits *vx = avx2_traits(type);
    if (vx) {
        vx->from_f32(x, got, 32 * nb);
        for (int b = 0; b < nb; b++)
            if (memcmp(got + b * bs, want + b * bs, bs) != 0) fail_msg("avx2 %s block %d differs", type == EM_TYPE_Q8_0 ? "Q8_0" : "Q8_1", b);
    }
}

static void test_quantize_q8_activation(void **state) {
    (void)state;
    float x[4 * 32] = {0};
    int8_t q[4][32] = {{0}};
    /* block 0: amax 127 -> d = 1, id = 1: ties round to even */
    static const float b0[14] = {127, 2.5f, 3.5f, -2.5f, -0.5f, 1.5f, 0.49f, -127, 0.5f, -1.5f, 126.5f, -126.5f, 100.4f, 100.6f};
    static const int8_t q0[14] = {127, 2, 4, -2, 0, 2, 0, -127, 0, -2, 126, -126, 100, 101};
    for (int j = 0; j < 14; j++) x[j] = b0[j], q[0][j] = q0[j];
    for (int j = 14; j < 32; j++) x[j] = (float)(j - 20), q[0][j] = (int8_t)(j - 20);
    /* block 1: amax 1 -> d = 1/127, id = 127 */
    static const float b1[6] = {1, -1, 0.5f, -0.5f, 0.25f, -0.75f};
    static const int8_t q1[6] = {127, -127, 64, -64, 32, -95};
    for (int j = 0; j < 6; j++) x[32 + j] = b1[j], q[1][j] = q1[j];
    /* block 2: amax 1.8125: x * (127 / amax) = 63.4999962 -> 63, whereas
     * x * (1 / d) = 63.5000038 would give 64 */
    x[64] = 1.8125f, q[2][0] = 127;
    x[65] = 0.90625f, q[2][1] = 63;
    x[66] = -0.90625f, q[2][2] = -63;
    /* block 3: all zero -> d = 0, q = 0 */
    static const uint16_t d16[4] = {0x3c00, 0x2008, 0x234f, 0x0000};
    /* sums: block 0 = 205 + 45 = 250, block 1 = 127-127+64-64+32-95 = -63,
     * block 2 = 127; s = fp16(d * sum) */
    static const uint16_t s16[4] = {0x5bd0, 0xb7f0 /* -63/127 = -0.496 */, 0x3f40 /* 1.8125 */, 0};
    uint8_t w0[4 * 34], w1[4 * 36];
    for (int b = 0; b < 4; b++) {
        wr16(w0 + 34 * b, d16[b]);
        memcpy(w0 + 34 * b + 2, q[b], 32);
        wr16(w1 + 36 * b, d16[b]);
        wr16(w1 + 36 * b + 2, s16[b]);
        memcpy(w1 + 36 * b + 4, q[b], 32);
    }
    check_act_quant(EM_TYPE_Q8_0, x, 4, w0);
    check_act_quant(EM_TYPE_Q8_1, x, 4, w1);
}

/* Scalar and AVX2 activation quantizers: identical bytes on random data
 * and on adversarial blocks (exact ties, tiny, huge, inf, NaN). */
static void test_quantize_q8_avx2_matches_scalar(void **state) {
    (void)state;
    if (!avx2_traits(EM_TYPE_Q8_0)) skip_without_avx2();
    enum { NB = 344 + 8, N = NB * 32 };
    float *x = malloc(N * sizeof *x);
    uint8_t *a = malloc(NB * 36), *b = malloc(NB * 36);
    rng_seed(11);
    fill_data(x, 344 * 32, 1.0f);
    float *t = x + 344 * 32;
    /* ties: multiples of amax/254 */
    for (int j = 0; j < 32; j++) t[j] = (float)(j * 8 - 127) * 0.5f;
    t[0] = 127.0f;
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = (float)j * 1e-39f; /* subnormal: 127/amax overflows */
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = (j & 1 ? -3e38f : 1e37f * (float)j);
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = (float)j;
    t[5] = INFINITY;
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = (float)j;
    t[9] = NAN;
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = -0.0f;
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = (float)(j - 16) * 0.1f;
    t[31] = -NAN;
    t += 32;
    for (int j = 0; j < 32; j++) t[j] = 1e-3f * (float)(j % 3);
    for (int pass = 0; pass < 2; pass++) {
        const uint32_t type = pass ? EM_TYPE_Q8_1 : EM_TYPE_Q8_0;
        const size_t bs = pass ? 36 : 34;
        em_type_traits_scalar(type)->from_f32(x, a, N);
        avx2_traits(type)->from_f32(x, b, N);
        for (int i = 0; i < NB; i++)
            if (memcmp(a + i * bs, b + i * bs, bs) != 0) fail_msg("%s block %d differs", pass ? "Q8_1" : "Q8_0", i);
    }
    free(x), free(a), free(b);
}

/* ------------------------------------------------------------ round trips */

static void test_roundtrip(void **state) {
    (void)state;
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    rng_seed(3);
    fill_data(x, N, 1.0f);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const uint32_t type = weight_types[ti];
        const em_type_traits *t = em_type_traits_scalar(type);
        t->from_f32(x, q, N);
        t->to_f32(q, y, N);
        double sq_err = 0, sq_step = 0;
        for (int b = 0; b < N / 32; b++) {
            const float *xb = x + 32 * b, *yb = y + 32 * b;
            float amax = 0, mn = xb[0], mx = xb[0];
            for (int j = 0; j < 32; j++) {
                amax = fmaxf(amax, fabsf(xb[j]));
                mn = fminf(mn, xb[j]);
                mx = fmaxf(mx, xb[j]);
            }
            for (int j = 0; j < 32; j++) {
                const float ax = fabsf(xb[j]);
                float bound = 0, step = 0;
                switch (type) {
                case EM_TYPE_F32: bound = 0; break;
                case EM_TYPE_F16: bound = fmaxf(ax * 0x1p-11f, 0x1p-25f); break;
                case EM_TYPE_BF16: bound = ax * 0x1p-8f; break;
                case EM_TYPE_Q8_0: step = amax / 127; bound = 0.57f * step; break;
                case EM_TYPE_Q4_0: step = amax / 8; bound = 1.01f * step; break;  /* +8 clips to 7 */
                case EM_TYPE_Q5_0: step = amax / 16; bound = 1.01f * step; break; /* +16 clips to 15 */
                case EM_TYPE_Q4_1: step = (mx - mn) / 15; bound = 0.51f * step + fabsf(mn) * 0x1p-10f; break;
                case EM_TYPE_Q5_1: step = (mx - mn) / 31; bound = 0.51f * step + fabsf(mn) * 0x1p-10f; break;
                default: fail();
                }
                const float err = fabsf(yb[j] - xb[j]);
                if (!(err <= bound))
                    fail_msg("%s: element %d: %.9g -> %.9g (err %.3g > %.3g)", t->name, 32 * b + j, xb[j], yb[j], err, bound);
                sq_err += (double)err * err;
                sq_step += (double)step * step;
            }
            if (type == EM_TYPE_Q4_0 || type == EM_TYPE_Q5_0 || type == EM_TYPE_Q8_0) {
                /* the largest-magnitude element is reproduced up to fp16 rounding of d */
                for (int j = 0; j < 32; j++)
                    if (fabsf(xb[j]) == amax) assert_true(fabsf(yb[j] - xb[j]) <= amax * 0x1p-10f);
            }
        }
        /* rounding error is roughly uniform in [-step/2, step/2]: mean square
         * ~ step^2 / 12; a biased or misplaced quantizer is far above */
        if (sq_step > 0 && sq_err / sq_step > 0.11)
            fail_msg("%s: mean square error %.3f step^2", t->name, sq_err / sq_step);
    }
    free(x), free(y), free(q);
}

/* --------------------------------------------------------------- vec_dot */

typedef struct {
    int64_t n;
    uint32_t type;
    const em_type_traits *wt, *xt; /* scalar traits of weight / activation type */
    void *wq, *xq;                 /* quantized operands */
    float *wd, *xd;                /* their dequantized values */
    double ref;                    /* sum wd * xd in double */
    double abs_sum;                /* sum |wd * xd| */
    double ms_err;                 /* Q8_1: bound on the fp16 rounding of s contributions */
} dot_case;

static void dot_case_make(dot_case *c, uint32_t type, int64_t n, uint64_t seed) {
    c->n = n;
    c->type = type;
    c->wt = em_type_traits_scalar(type);
    c->xt = em_type_traits_scalar(c->wt->vec_dot_type);
    float *w = malloc((size_t)n * sizeof *w), *x = malloc((size_t)n * sizeof *x);
    rng_seed(seed);
    fill_data(w, n, 0.05f);
    fill_data(x, n, 1.0f);
    if (type == EM_TYPE_Q4_1 || type == EM_TYPE_Q5_1)
        for (int64_t i = 0; i < n; i++) w[i] += 0.02f; /* give m a sign bias */
    c->wq = malloc(em_type_row_bytes(type, (uint64_t)n));
    c->xq = malloc(em_type_row_bytes(c->wt->vec_dot_type, (uint64_t)n));
    c->wt->from_f32(w, c->wq, n);
    c->xt->from_f32(x, c->xq, n);
    c->wd = w, c->xd = x; /* reuse the buffers */
    c->wt->to_f32(c->wq, c->wd, n);
    c->xt->to_f32(c->xq, c->xd, n);
    c->ref = c->abs_sum = c->ms_err = 0;
    for (int64_t i = 0; i < n; i++) {
        const double p = (double)c->wd[i] * c->xd[i];
        c->ref += p;
        c->abs_sum += fabs(p);
    }
    if (c->wt->vec_dot_type == EM_TYPE_Q8_1) {
        const em_block_q8_1 *xb = c->xq;
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *wb = (const uint8_t *)c->wq + (size_t)b * c->wt->bytes;
            const double m = em_f16_to_f32(rd16(wb + 2));
            c->ms_err += fabs(m * em_f16_to_f32(xb[b].s)) * 0x1p-11 + 1e-12;
        }
    }
}

static void dot_case_free(dot_case *c) {
    free(c->wq), free(c->xq), free(c->wd), free(c->xd);
}

static const int64_t block_lengths[] = {32, 256, 4096, 11008};
static const int64_t float_lengths[] = {1, 7, 32, 37, 256, 1000, 4096, 11008};
static const int64_t k_lengths[] = {256, 512, 768, 1024, 2048, 4096, 8192, 11008};

static void run_dot_cases(void (*check)(dot_case *)) {
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const uint32_t type = weight_types[ti];
        const bool blk = is_block_type(type);
        const int64_t *lens = blk ? block_lengths : float_lengths;
        const size_t nl = blk ? sizeof block_lengths / sizeof *block_lengths : sizeof float_lengths / sizeof *float_lengths;
        for (size_t li = 0; li < nl; li++) {
            dot_case c;
            dot_case_make(&c, type, lens[li], 1000 + 17 * ti + li);
            check(&c);
            dot_case_free(&c);
        }
    }
    for (size_t ti = 0; ti < N_K_TYPES; ti++)
        for (size_t li = 0; li < sizeof k_lengths / sizeof *k_lengths; li++) {
            dot_case c;
            dot_case_make(&c, k_types[ti], k_lengths[li], 5000 + 31 * ti + li);
            check(&c);
            dot_case_free(&c);
        }
}

static void check_vs_reference(dot_case *c) {
    const em_type_traits *sets[2] = {em_type_traits_scalar(c->type), avx2_traits(c->type)};
    for (int k = 0; k < 2; k++) {
        if (!sets[k]) continue;
        float s = NAN;
        sets[k]->vec_dot(c->n, &s, c->wq, c->xq);
        const double tol = 1e-5 * c->abs_sum + c->ms_err + 1e-30;
        if (!(fabs(s - c->ref) <= tol))
            fail_msg("%s %s n=%lld: %.9g vs reference %.9g (tol %.3g)", k ? "avx2" : "scalar", c->wt->name,
                     (long long)c->n, s, c->ref, tol);
    }
}

static void test_vec_dot_reference(void **state) {
    (void)state;
    run_dot_cases(check_vs_reference);
}

static void check_avx2_vs_scalar(dot_case *c) {
    float a = NAN, s = NAN;
    em_type_traits_scalar(c->type)->vec_dot(c->n, &s, c->wq, c->xq);
    avx2_traits(c->type)->vec_dot(c->n, &a, c->wq, c->xq);
    if (f2u(a) != f2u(s))
        fail_msg("%s n=%lld: avx2 %.9g vs scalar %.9g", c->wt->name, (long long)c->n, a, s);
}

static void test_vec_dot_avx2_vs_scalar(void **state) {
    (void)state;
    if (!avx2_traits(EM_TYPE_F32)) skip_without_avx2();
    run_dot_cases(check_avx2_vs_scalar);
}

/* Emulation of the oracle's kernels, from ggml's source. Quantized: lane l
 * of block b holds the exact integer sum over elements 4l..4l+3,
 * accumulated with one fmaf per block; then hsum_float_8. Q4_0 instead
 * follows llama.cpp's repacked kernels (see emulate_oracle). */
static float emu_hsum8(const float a[8]) {
    float r[4];
    for (int k = 0; k < 4; k++) r[k] = a[4 + k] + a[k];
    return (r[0] + r[2]) + (r[1] + r[3]);
}

/* _mm512_reduce_add_ps */
static float emu_reduce16(const float a[16]) {
    float h[8], q[4];
    for (int k = 0; k < 8; k++) h[k] = a[k] + a[k + 8];
    for (int k = 0; k < 4; k++) q[k] = h[k] + h[k + 4];
    const float p0 = q[0] + q[2], p1 = q[1] + q[3];
    return p0 + p1;
}

/* signed integer weight value of element e of block b, and whether the
 * format is unsigned with an offset m (Q4_1/Q5_1) */
static int weight_int(uint32_t type, const uint8_t *blk, int e) {
    const int j = e & 15, hi = e >= 16;
    uint32_t qh = 0;
    switch (type) {
    case EM_TYPE_Q8_0: return (int8_t)blk[2 + e];
    case EM_TYPE_Q4_0: return ((hi ? blk[2 + j] >> 4 : blk[2 + j] & 15)) - 8;
    case EM_TYPE_Q4_1: return hi ? blk[4 + j] >> 4 : blk[4 + j] & 15;
    case EM_TYPE_Q5_0:
        memcpy(&qh, blk + 2, 4);
        return ((hi ? blk[6 + j] >> 4 : blk[6 + j] & 15) | (int)(((qh >> e) & 1) << 4)) - 16;
    case EM_TYPE_Q5_1:
        memcpy(&qh, blk + 4, 4);
        return (hi ? blk[8 + j] >> 4 : blk[8 + j] & 15) | (int)(((qh >> e) & 1) << 4);
    default: fail(); return 0;
    }
}

static float emulate_oracle_k(const dot_case *c);

static float emulate_oracle(const dot_case *c) {
    if (c->wt->vec_dot_type == EM_TYPE_Q8_K) return emulate_oracle_k(c);
    const int64_t n = c->n;
    const float *w = c->wd, *x = c->xd; /* exact values of the operands */
    if (c->type == EM_TYPE_BF16) {
        /* two __m512 accumulators, vdpbf16ps over 32 elements each */
        float acc[2][16] = {{0}};
        int64_t i = 0;
        for (; i + 64 <= n; i += 64)
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < 16; j++) {
                    const int64_t e = i + 32 * h + 2 * j;
                    acc[h][j] = fmaf(w[e + 1], x[e + 1], acc[h][j]);
                    acc[h][j] = fmaf(w[e], x[e], acc[h][j]);
                }
        double sum = 0;
        sum += emu_reduce16(acc[0]);
        sum += emu_reduce16(acc[1]);
        for (; i < n; i++) sum += (double)(w[i] * x[i]);
        return (float)sum;
    }
    if (c->type == EM_TYPE_F32 || c->type == EM_TYPE_F16) {
        /* GGML_F32_STEP 64 = 4 x __m512 */
        const int64_t np = n & ~(int64_t)63;
        float acc[4][16] = {{0}};
        for (int64_t i = 0; i < np; i += 64)
            for (int r = 0; r < 4; r++)
                for (int l = 0; l < 16; l++) acc[r][l] = fmaf(w[i + 16 * r + l], x[i + 16 * r + l], acc[r][l]);
        for (int l = 0; l < 16; l++) {
            acc[0][l] = acc[0][l] + acc[2][l];
            acc[1][l] = acc[1][l] + acc[3][l];
        }
        for (int l = 0; l < 16; l++) acc[0][l] = acc[0][l] + acc[1][l];
        const float red = emu_reduce16(acc[0]);
        if (c->type == EM_TYPE_F32) {
            float sum = red; /* float, leftovers contracted to FMA by -march=native */
            for (int64_t i = np; i < n; i++) {
                const float p = w[i] * x[i];
                sum += p;
            }
            return sum;
        }
        double sum = red; /* ggml_float */
        for (int64_t i = np; i < n; i++) sum += (double)(w[i] * x[i]);
        return (float)sum;
    }
    if (c->type == EM_TYPE_Q4_0) {
        /* llama.cpp's repacked Q4_0 kernels (ggml_gemm_q4_0_8x8_q8_0): the
         * block's exact integer sum, one fmaf per block, no lanes */
        float acc = 0;
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *wb = (const uint8_t *)c->wq + (size_t)b * c->wt->bytes;
            const uint8_t *xb = (const uint8_t *)c->xq + (size_t)b * c->xt->bytes;
            int isum = 0;
            for (int e = 0; e < 32; e++) isum += weight_int(c->type, wb, e) * ((const int8_t *)(xb + 2))[e];
            acc = fmaf((float)isum, em_f16_to_f32(rd16(wb)) * em_f16_to_f32(rd16(xb)), acc);
        }
        return acc;
    }
    const bool q81 = c->wt->vec_dot_type == EM_TYPE_Q8_1;
    float acc[8] = {0}, summs = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *wb = (const uint8_t *)c->wq + (size_t)b * c->wt->bytes;
        const uint8_t *xb = (const uint8_t *)c->xq + (size_t)b * c->xt->bytes;
        const int8_t *xq = (const int8_t *)(xb + (q81 ? 4 : 2));
        const float d = em_f16_to_f32(rd16(wb)) * em_f16_to_f32(rd16(xb));
        if (q81) summs = fmaf(em_f16_to_f32(rd16(wb + 2)), em_f16_to_f32(rd16(xb + 2)), summs);
        for (int l = 0; l < 8; l++) {
            int lane = 0;
            for (int e = 4 * l; e < 4 * l + 4; e++) lane += weight_int(c->type, wb, e) * xq[e];
            acc[l] = fmaf(d, (float)lane, acc[l]);
        }
    }
    return q81 ? emu_hsum8(acc) + summs : emu_hsum8(acc);
}

static void check_oracle_order(dot_case *c) {
    const float e = emulate_oracle(c);
    const em_type_traits *sets[2] = {em_type_traits_scalar(c->type), avx2_traits(c->type)};
    for (int k = 0; k < 2; k++) {
        if (!sets[k]) continue;
        float a = NAN;
        sets[k]->vec_dot(c->n, &a, c->wq, c->xq);
        if (f2u(a) != f2u(e))
            fail_msg("%s %s n=%lld: %.9g vs oracle emulation %.9g", k ? "avx2" : "scalar", c->wt->name,
                     (long long)c->n, a, e);
    }
}

static void test_vec_dot_oracle_order(void **state) {
    (void)state;
    run_dot_cases(check_oracle_order);
}

/* ------------------------------------------------------------ K-quants */

/* Raw byte offsets of the K-quant blocks (ggml-common.h). */
enum {
    Q2K_SCALES = 0, Q2K_QS = 16, Q2K_D = 80, Q2K_DMIN = 82,
    Q3K_HMASK = 0, Q3K_QS = 32, Q3K_SCALES = 96, Q3K_D = 108,
    Q4K_D = 0, Q4K_DMIN = 2, Q4K_SCALES = 4, Q4K_QS = 16,
    Q5K_D = 0, Q5K_DMIN = 2, Q5K_SCALES = 4, Q5K_QH = 16, Q5K_QS = 48,
    Q6K_QL = 0, Q6K_QH = 128, Q6K_SCALES = 192, Q6K_D = 208,
    Q8K_D = 0, Q8K_QS = 4, Q8K_BSUMS = 260,
};

static int16_t rdi16(const uint8_t *p) { return (int16_t)rd16(p); }

/* A super-block by its parts: stored level q of each element (Q3_K: 0..7,
 * value q - 4; Q6_K: 0..63, value q - 32), the stored scale and min code of
 * each sub-block (Q3_K: 0..63, value sc - 32; Q6_K: int8), d and dmin. */
typedef struct {
    uint16_t d, dmin;
    int sc[16], m[16];
    int q[256];
} kspec;

static int k_sub(uint32_t type) { return type == EM_TYPE_Q4_K || type == EM_TYPE_Q5_K ? 32 : 16; }

/* Packs a kspec into ggml's bytes, written from the format description. */
static void k_encode(uint32_t type, const kspec *k, uint8_t *b) {
    memset(b, 0, em_type_traits_scalar(type)->bytes);
    for (int e = 0; e < 256; e++) {
        const int q = k->q[e], half = e / 128, quarter = (e % 128) / 32, l = e % 32;
        switch (type) {
        case EM_TYPE_Q2_K: b[Q2K_QS + 32 * half + l] |= (uint8_t)(q << (2 * quarter)); break;
        case EM_TYPE_Q3_K:
            b[Q3K_QS + 32 * half + l] |= (uint8_t)((q & 3) << (2 * quarter));
            b[Q3K_HMASK + l] |= (uint8_t)((q >> 2) << (4 * half + quarter));
            break;
        case EM_TYPE_Q4_K: b[Q4K_QS + 32 * (e / 64) + l] |= (uint8_t)(q << (4 * ((e % 64) / 32))); break;
        case EM_TYPE_Q5_K:
            b[Q5K_QS + 32 * (e / 64) + l] |= (uint8_t)((q & 15) << (4 * ((e % 64) / 32)));
            b[Q5K_QH + l] |= (uint8_t)((q >> 4) << (2 * (e / 64) + (e % 64) / 32));
            break;
        case EM_TYPE_Q6_K:
            b[Q6K_QL + 64 * half + 32 * (quarter & 1) + l] |= (uint8_t)((q & 15) << (4 * (quarter >> 1)));
            b[Q6K_QH + 32 * half + l] |= (uint8_t)((q >> 4) << (2 * quarter));
            break;
        default: fail();
        }
    }
    switch (type) {
    case EM_TYPE_Q2_K:
        for (int j = 0; j < 16; j++) b[Q2K_SCALES + j] = (uint8_t)(k->sc[j] | (k->m[j] << 4));
        wr16(b + Q2K_D, k->d), wr16(b + Q2K_DMIN, k->dmin);
        break;
    case EM_TYPE_Q3_K:
        for (int j = 0; j < 16; j++) {
            if (j < 8) b[Q3K_SCALES + j] |= (uint8_t)(k->sc[j] & 15);
            else b[Q3K_SCALES + j - 8] |= (uint8_t)((k->sc[j] & 15) << 4);
            b[Q3K_SCALES + 8 + j % 4] |= (uint8_t)((k->sc[j] >> 4) << (2 * (j / 4)));
        }
        wr16(b + Q3K_D, k->d);
        break;
    case EM_TYPE_Q4_K:
    case EM_TYPE_Q5_K: {
        uint8_t *s = b + Q4K_SCALES; /* same offset in both */
        for (int j = 0; j < 4; j++) {
            s[j] = (uint8_t)(k->sc[j] | ((k->sc[j + 4] >> 4) << 6));
            s[j + 4] = (uint8_t)(k->m[j] | ((k->m[j + 4] >> 4) << 6));
            s[j + 8] = (uint8_t)((k->sc[j + 4] & 15) | ((k->m[j + 4] & 15) << 4));
        }
        wr16(b + Q4K_D, k->d), wr16(b + Q4K_DMIN, k->dmin);
        break;
    }
    case EM_TYPE_Q6_K:
        for (int j = 0; j < 16; j++) b[Q6K_SCALES + j] = (uint8_t)(int8_t)k->sc[j];
        wr16(b + Q6K_D, k->d);
        break;
    default: fail();
    }
}

/* The value of element e, as ggml's dequantize_row_* computes it. */
static float k_value(uint32_t type, const kspec *k, int e) {
    const float d = em_f16_to_f32(k->d), dmin = em_f16_to_f32(k->dmin);
    const int j = e / k_sub(type);
    switch (type) {
    case EM_TYPE_Q2_K:
    case EM_TYPE_Q4_K:
    case EM_TYPE_Q5_K: return d * (float)k->sc[j] * (float)k->q[e] - dmin * (float)k->m[j];
    case EM_TYPE_Q3_K: return d * (float)(k->sc[j] - 32) * (float)(k->q[e] - 4);
    case EM_TYPE_Q6_K: return d * (float)k->sc[j] * (float)(k->q[e] - 32);
    default: fail(); return 0;
    }
}

/* Hand-picked parts: extreme and mid levels, scales that need the high
 * bits, negative Q6_K scales; `v` varies the pattern per block. */
static void k_hand_spec(uint32_t type, int v, kspec *k) {
    static const int sc6[16] = {0, 63, 32, 31, 33, 1, 62, 40, 20, 10, 50, 45, 5, 15, 25, 35};
    static const int m6[16] = {0, 1, 5, 63, 16, 20, 2, 47, 9, 8, 7, 6, 5, 4, 3, 2};
    static const int sc8[16] = {1, -1, 2, -3, 127, -128, 5, 0, 7, -7, 64, -64, 9, 10, -11, 12};
    memset(k, 0, sizeof *k);
    const int qmax = type == EM_TYPE_Q2_K ? 3 : type == EM_TYPE_Q3_K ? 7 : type == EM_TYPE_Q4_K ? 15
                   : type == EM_TYPE_Q5_K ? 31 : 63;
    for (int e = 0; e < 256; e++) k->q[e] = (e * (7 + 2 * v) + 3 * v + (e >> 5)) % (qmax + 1);
    k->q[0] = qmax, k->q[1] = 0; /* both ends */
    for (int j = 0; j < 16; j++) {
        const int r = (j + 5 * v) % 16;
        switch (type) {
        case EM_TYPE_Q2_K: k->sc[j] = (j * 7 + v) % 16, k->m[j] = (15 - j + v) % 16; break;
        case EM_TYPE_Q3_K: k->sc[j] = sc6[r]; break;
        case EM_TYPE_Q4_K:
        case EM_TYPE_Q5_K: k->sc[j] = sc6[r], k->m[j] = m6[r]; break; /* first 8 used */
        case EM_TYPE_Q6_K: k->sc[j] = sc8[r]; break;
        default: fail();
        }
    }
    k->d = v ? 0x3c00 : 0x3800;    /* 1, 0.5 */
    k->dmin = v ? 0x3000 : 0x3400; /* 0.125, 0.25 */
}

/* A hand activation block: d, qs[e] from a pattern, bsums summed here. */
static void k_hand_act(uint8_t *b, float d, int v, float *xd) {
    memcpy(b + Q8K_D, &d, 4);
    for (int e = 0; e < 256; e++) {
        const int q = (e * (37 + 4 * v) + 11 * v) % 255 - 127;
        b[Q8K_QS + e] = (uint8_t)(int8_t)q;
        xd[e] = d * (float)q;
    }
    for (int j = 0; j < 16; j++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += (int8_t)b[Q8K_QS + 16 * j + i];
        wr16(b + Q8K_BSUMS + 2 * j, (uint16_t)(int16_t)sum);
    }
}

/* Hand-made blocks dequantize to the hand-computed values, bit for bit, and
 * their dot with a hand activation equals the exact sum (two super-blocks,
 * each with its own scales, so the block stride is checked too). */
static void test_k_layouts(void **state) {
    (void)state;
    for (size_t ti = 0; ti < N_K_TYPES; ti++) {
        const uint32_t type = k_types[ti];
        const em_type_traits *sc = em_type_traits_scalar(type), *vx = avx2_traits(type);
        const size_t bs = sc->bytes;
        _Alignas(16) uint8_t w[2 * 210], act[2 * 292];
        float want[512], got[512], xd[512];
        for (int v = 0; v < 2; v++) {
            kspec k;
            k_hand_spec(type, v, &k);
            k_encode(type, &k, w + v * bs);
            for (int e = 0; e < 256; e++) want[256 * v + e] = k_value(type, &k, e);
            k_hand_act(act + 292 * v, v ? 0.25f : 0.5f, v, xd + 256 * v);
        }
        sc->to_f32(w, got, 512);
        for (int i = 0; i < 512; i++)
            if (f2u(got[i]) != f2u(want[i])) fail_msg("%s element %d: got %.9g want %.9g", sc->name, i, got[i], want[i]);
        double ref = 0, abs_sum = 0;
        for (int i = 0; i < 512; i++) ref += (double)want[i] * xd[i], abs_sum += fabs((double)want[i] * xd[i]);
        const em_type_traits *sets[2] = {sc, vx};
        for (int k = 0; k < 2; k++) {
            if (!sets[k]) continue;
            float s = NAN;
            sets[k]->vec_dot(512, &s, w, act);
            if (!(fabs(s - ref) <= 1e-6 * abs_sum))
                fail_msg("%s %s: dot %.9g, exact %.9g", k ? "avx2" : "scalar", sc->name, s, ref);
        }
    }
    /* Q8_K itself: value = d * q */
    _Alignas(16) uint8_t a[292];
    float xd[256], got[256];
    k_hand_act(a, -0.375f, 0, xd);
    em_type_traits_scalar(EM_TYPE_Q8_K)->to_f32(a, got, 256);
    check_values(got, xd, 256);
}

/* ggml's quantize_row_q8_K_ref on hand vectors: the signed element of
 * largest magnitude (the first one on ties) sets iscale = -127 / max,
 * q = round-half-even(iscale * x) capped at 127, d = 1 / iscale. */
static void test_quantize_q8_K(void **state) {
    (void)state;
    float x[3 * 256] = {0};
    int8_t q[3][256] = {{0}};
    /* block 0: max = -127 (index 5; the +127 later does not replace it),
     * iscale = 1, so the products are exact and the ties visible */
    static const float b0[14] = {2.5f, 3.5f, -2.5f, 0.5f, -0.5f, -127, 1.5f, 126.5f, 100.4f, 127, -1.5f, 0.49f, 0, -126.5f};
    static const int8_t q0[14] = {2, 4, -2, 0, 0, -127, 2, 126, 100, 127, -2, 0, 0, -126};
    for (int j = 0; j < 14; j++) x[j] = b0[j], q[0][j] = q0[j];
    for (int j = 14; j < 256; j++) x[j] = (float)(j % 50 - 25), q[0][j] = (int8_t)(j % 50 - 25);
    /* block 1: max = +4: iscale = -31.75, signs flip, d < 0 */
    static const float b1[7] = {4, 2, -2, 1, -4, 0.5f, 3};
    static const int8_t q1[7] = {-127, -64 /* -63.5 */, 64 /* 63.5 */, -32 /* -31.75 */, 127, -16 /* -15.875 */, -95 /* -95.25 */};
    for (int j = 0; j < 7; j++) x[256 + j] = b1[j], q[1][j] = q1[j];
    /* block 2: all zero -> d = 0, zero quants and sums */
    const float d[3] = {1.0f, 1.0f / (-127.0f / 4.0f), 0.0f};
    const em_type_traits *sets[2] = {em_type_traits_scalar(EM_TYPE_Q8_K), avx2_traits(EM_TYPE_Q8_K)};
    for (int k = 0; k < 2; k++) {
        if (!sets[k]) continue;
        _Alignas(16) uint8_t got[3 * 292];
        memset(got, 0x55, sizeof got); /* stale data must not survive */
        sets[k]->from_f32(x, got, 3 * 256);
        for (int b = 0; b < 3; b++) {
            const uint8_t *g = got + 292 * b;
            float gd;
            memcpy(&gd, g + Q8K_D, 4);
            if (f2u(gd) != f2u(d[b])) fail_msg("%s block %d: d %.9g want %.9g", k ? "avx2" : "scalar", b, gd, d[b]);
            for (int j = 0; j < 256; j++)
                if ((int8_t)g[Q8K_QS + j] != q[b][j])
                    fail_msg("%s block %d element %d: %d want %d", k ? "avx2" : "scalar", b, j, (int8_t)g[Q8K_QS + j], q[b][j]);
            for (int j = 0; j < 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += q[b][16 * j + i];
                assert_int_equal(rdi16(g + Q8K_BSUMS + 2 * j), sum);
            }
        }
    }
}

/* Scalar and AVX2 Q8_K quantizers: identical bytes on random data and on
 * adversarial blocks (ties, equal +-max, tiny, huge, inf, NaN, -0). */
static void test_quantize_q8_K_avx2_matches_scalar(void **state) {
    (void)state;
    if (!avx2_traits(EM_TYPE_Q8_K)) skip_without_avx2();
    enum { NR = 64, NA = 10, NB = NR + NA, N = NB * 256 };
    float *x = malloc(N * sizeof *x);
    uint8_t *a = malloc(NB * 292), *b = malloc(NB * 292);
    rng_seed(21);
    fill_data(x, NR * 256, 1.0f);
    float *t = x + NR * 256;
    for (int j = 0; j < 256; j++) t[j] = (float)(j - 128) * 0.5f; /* max -64 first: iscale 127/64 */
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = (j & 1 ? 1.0f : -1.0f) * (float)(j % 7); /* +-6 repeated */
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = (float)j * 1e-40f; /* subnormal max: iscale overflows */
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = (j & 1 ? -3e38f : 1e37f * (float)j);
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = (float)j;
    t[77] = INFINITY;
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = (float)(j - 100);
    t[3] = NAN, t[200] = -NAN;
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = -0.0f;
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = NAN;
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = (float)((int)(rng_u64() % 255) - 127) + 0.5f; /* ties with iscale 1 */
    t[0] = -127.0f;
    t += 256;
    for (int j = 0; j < 256; j++) t[j] = 1e-3f * (float)(j % 3);
    em_type_traits_scalar(EM_TYPE_Q8_K)->from_f32(x, a, N);
    avx2_traits(EM_TYPE_Q8_K)->from_f32(x, b, N);
    for (int i = 0; i < NB; i++)
        if (memcmp(a + 292 * i, b + 292 * i, 292) != 0) fail_msg("Q8_K block %d differs", i);
    /* a dot through either kernel set sees the same activations */
    free(x), free(a), free(b);
}

/* quantize -> dequantize of the weight formats. Per element the error is
 * bounded by the sub-block's nominal step (range / nmax for Q2_K, Q4_K,
 * Q5_K, the range including 0; amax / nmax for Q3_K, Q6_K) plus what the
 * quantized super-block scales add: a scale is off by up to half its
 * resolution (largest step / scale levels), times a level up to nmax, and
 * a min by half of (largest min / levels). Measured <= 0.83 of that sum
 * over several seeds; bound 1x. The mean square error must be near that
 * of uniform rounding (step^2 / 12 = 0.083; measured 0.054..0.082; bound
 * 0.1): a misplaced or biased quantizer is far above both. */
static void test_k_roundtrip(void **state) {
    (void)state;
    enum { N = 32768 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 2);
    rng_seed(3);
    fill_data(x, N, 1.0f);
    for (size_t ti = 0; ti < N_K_TYPES; ti++) {
        const uint32_t type = k_types[ti];
        const em_type_traits *t = em_type_traits_scalar(type);
        const int sub = k_sub(type);
        const bool has_min = type == EM_TYPE_Q2_K || type == EM_TYPE_Q4_K || type == EM_TYPE_Q5_K;
        const float nmax = type == EM_TYPE_Q2_K ? 3 : type == EM_TYPE_Q3_K ? 4 : type == EM_TYPE_Q4_K ? 15
                         : type == EM_TYPE_Q5_K ? 31 : 32;
        const float levels = type == EM_TYPE_Q2_K ? 15 : type == EM_TYPE_Q3_K ? 32 : type == EM_TYPE_Q6_K ? 127 : 63;
        t->from_f32(x, q, N);
        t->to_f32(q, y, N);
        double sq_err = 0, sq_step = 0;
        for (int B = 0; B < N / 256; B++) {
            float step[16], smax = 0, mmax = 0;
            for (int j = 0; j < 256 / sub; j++) {
                const float *xb = x + 256 * B + sub * j;
                float mn = 0, mx = 0, amax = 0;
                for (int i = 0; i < sub; i++) {
                    mn = fminf(mn, xb[i]), mx = fmaxf(mx, xb[i]), amax = fmaxf(amax, fabsf(xb[i]));
                }
                step[j] = has_min ? (mx - mn) / nmax : amax / nmax;
                smax = fmaxf(smax, step[j]);
                if (has_min) mmax = fmaxf(mmax, -mn);
            }
            for (int e = 0; e < 256; e++) {
                const int i = 256 * B + e;
                const float st = step[e / sub], bound = st + (nmax * smax + mmax) / levels;
                const float err = fabsf(y[i] - x[i]);
                if (!(err <= bound))
                    fail_msg("%s: element %d: %.9g -> %.9g (err %.3g > %.3g)", t->name, i, x[i], y[i], err, bound);
                sq_err += (double)err * err;
                sq_step += (double)st * st;
            }
        }
        if (sq_err / sq_step > 0.1) fail_msg("%s: mean square error %.3f step^2", t->name, sq_err / sq_step);
    }
    /* Q8_K: |err| <= |d| / 2 (plus the rounding of d * q) */
    const em_type_traits *t = em_type_traits_scalar(EM_TYPE_Q8_K);
    t->from_f32(x, q, 4096);
    t->to_f32(q, y, 4096);
    for (int B = 0; B < 16; B++) {
        float amax = 0;
        for (int e = 0; e < 256; e++) amax = fmaxf(amax, fabsf(x[256 * B + e]));
        for (int e = 0; e < 256; e++) {
            const int i = 256 * B + e;
            if (!(fabsf(y[i] - x[i]) <= amax / 254 * 1.0001f)) fail_msg("Q8_K element %d: %.9g -> %.9g", i, x[i], y[i]);
        }
    }
    free(x), free(y), free(q);
}

/* The weight quantizers are ggml's reference ones, so they reproduce what
 * llama-quantize wrote (no imatrix) from the F32 synthetic models, byte for
 * byte, for every K-quant tensor of the shared files. */
static void test_k_quantize_matches_llama_quantize(void **state) {
    (void)state;
    static const char *files[] = {"synth-dense-Q2_K", "synth-dense-Q3_K", "synth-dense-Q4_K", "synth-dense-Q5_K",
                                  "synth-dense-Q6_K", "synth-dense-Q4_K_M", "synth-rope3-Q4_K"};
    for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
        char rel[128];
        em_err err;
        snprintf(rel, sizeof rel, "models/synth/synth-%s-F32.gguf", strncmp(files[fi], "synth-rope3", 11) ? "dense" : "rope3");
        em_gguf *f32 = em_gguf_open(shared_path(rel), &err);
        if (!f32) fail_msg("%s: %s", rel, err.msg);
        snprintf(rel, sizeof rel, "models/synth/%s.gguf", files[fi]);
        em_gguf *qf = em_gguf_open(shared_path(rel), &err);
        if (!qf) fail_msg("%s: %s", rel, err.msg);
        int n_checked = 0;
        for (uint64_t i = 0; i < qf->n_tensors; i++) {
            const em_gguf_tensor *tq = &qf->tensors[i];
            if (tq->type == EM_TYPE_F32) continue;
            const em_type_traits *tt = em_type_traits_scalar(tq->type);
            const em_gguf_tensor *tf = em_gguf_find_tensor(f32, tq->name);
            assert_non_null(tt);
            assert_non_null(tf);
            assert_int_equal(tf->type, EM_TYPE_F32);
            uint8_t *buf = malloc(tq->nbytes);
            tt->from_f32(tf->data, buf, tq->ne[0] * tq->ne[1]);
            for (uint64_t b = 0; b < tq->nbytes / tt->bytes; b++)
                if (memcmp(buf + b * tt->bytes, (const uint8_t *)tq->data + b * tt->bytes, tt->bytes) != 0)
                    fail_msg("%s: %s (%s) block %llu differs from llama-quantize's", files[fi], tq->name, tt->name,
                             (unsigned long long)b);
            free(buf);
            n_checked++;
        }
        assert_true(n_checked >= 16);
        em_gguf_close(qf);
        em_gguf_close(f32);
    }
}

/* Emulation of the oracle's K-quant dots, written from ggml's code (its
 * __AVX2__ kernels, which AVX-512 builds compile; Q6_K as of PR #22345).
 * Elements are decoded with ggml's dequantize_row_* loop structure into
 * level Q, sub-block scale S and min M; then per super-block, int32 lane l
 * = sum over the elements e with (e % 32) / 4 == l of S * Q * x. */
static void k_emu_decode(uint32_t type, const uint8_t *b, int Q[256], int S[256], int M[256]) {
    int e = 0;
    switch (type) {
    case EM_TYPE_Q2_K: {
        const uint8_t *q = b + Q2K_QS;
        int is = 0;
        for (int n = 0; n < 256; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int h = 0; h < 2; h++, is++)
                    for (int l = 0; l < 16; l++, e++) {
                        Q[e] = (q[l + 16 * h] >> shift) & 3;
                        S[e] = b[Q2K_SCALES + is] & 0xF;
                        M[e] = b[Q2K_SCALES + is] >> 4;
                    }
        break;
    }
    case EM_TYPE_Q3_K: {
        uint32_t aux[4];
        memcpy(aux, b + Q3K_SCALES, 12);
        const uint32_t tmp = aux[2], km1 = 0x03030303, km2 = 0x0f0f0f0f;
        aux[2] = ((aux[0] >> 4) & km2) | (((tmp >> 4) & km1) << 4);
        aux[3] = ((aux[1] >> 4) & km2) | (((tmp >> 6) & km1) << 4);
        aux[0] = (aux[0] & km2) | (((tmp >> 0) & km1) << 4);
        aux[1] = (aux[1] & km2) | (((tmp >> 2) & km1) << 4);
        const int8_t *scales = (const int8_t *)aux;
        const uint8_t *q = b + Q3K_QS, *hm = b + Q3K_HMASK;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < 256; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1))
                for (int h = 0; h < 2; h++, is++)
                    for (int l = 0; l < 16; l++, e++) {
                        Q[e] = ((q[l + 16 * h] >> shift) & 3) - ((hm[l + 16 * h] & m) ? 0 : 4);
                        S[e] = scales[is] - 32;
                        M[e] = 0;
                    }
        break;
    }
    case EM_TYPE_Q4_K:
    case EM_TYPE_Q5_K: {
        const bool q5 = type == EM_TYPE_Q5_K;
        const uint8_t *sc = b + Q4K_SCALES, *ql = b + (q5 ? Q5K_QS : Q4K_QS), *qh = b + Q5K_QH;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2))
            for (int h = 0; h < 2; h++) {
                const int jj = j + h;
                const int s6 = jj < 4 ? sc[jj] & 63 : (sc[jj + 4] & 0xF) | ((sc[jj - 4] >> 6) << 4);
                const int m6 = jj < 4 ? sc[jj + 4] & 63 : (sc[jj + 4] >> 4) | ((sc[jj] >> 6) << 4);
                for (int l = 0; l < 32; l++, e++) {
                    Q[e] = h ? ql[l] >> 4 : ql[l] & 0xF;
                    if (q5) Q[e] += (qh[l] & (h ? u2 : u1)) ? 16 : 0;
                    S[e] = s6;
                    M[e] = m6;
                }
            }
        break;
    }
    case EM_TYPE_Q6_K: {
        const uint8_t *ql = b + Q6K_QL, *qh = b + Q6K_QH;
        const int8_t *sc = (const int8_t *)(b + Q6K_SCALES);
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                Q[n + l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4); /* unsigned: the kernel takes 32 off via bsums */
                Q[n + l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                Q[n + l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                Q[n + l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                S[n + l] = sc[is], S[n + l + 32] = sc[is + 2], S[n + l + 64] = sc[is + 4], S[n + l + 96] = sc[is + 6];
                M[n + l] = M[n + l + 32] = M[n + l + 64] = M[n + l + 96] = 0;
            }
        break;
    }
    default: fail();
    }
}

static float emulate_oracle_k(const dot_case *c) {
    const uint32_t type = c->type;
    float acc[8] = {0}, summs = 0;
    int Q[256], S[256], M[256];
    float s4k = 0, m4k = 0; /* Q4_K */
    for (int64_t i = 0; i < c->n / 256; i++) {
        const uint8_t *wb = (const uint8_t *)c->wq + (size_t)i * c->wt->bytes;
        const uint8_t *xb = (const uint8_t *)c->xq + (size_t)i * 292;
        float yd;
        memcpy(&yd, xb + Q8K_D, 4);
        const int8_t *q8 = (const int8_t *)(xb + Q8K_QS);
        int bsums[16];
        for (int j = 0; j < 16; j++) bsums[j] = rdi16(xb + Q8K_BSUMS + 2 * j);
        k_emu_decode(type, wb, Q, S, M);
        int32_t lane[8] = {0};
        for (int e = 0; e < 256; e++) lane[(e % 32) / 4] += S[e] * Q[e] * q8[e];
        if (type == EM_TYPE_Q4_K) {
            /* llama.cpp's repacked Q4_K kernels: exact integers per super-block,
             * one fmaf each for the scaled products and the min term */
            int32_t isum = 0, imin = 0;
            for (int l = 0; l < 8; l++) isum += lane[l];
            for (int j = 0; j < 8; j++) imin += M[32 * j] * (bsums[2 * j] + bsums[2 * j + 1]);
            s4k = fmaf((float)isum, em_f16_to_f32(rd16(wb + Q4K_D)) * yd, s4k);
            m4k = fmaf((float)imin, em_f16_to_f32(rd16(wb + Q4K_DMIN)) * yd, m4k);
            continue;
        }
        const int doff = type == EM_TYPE_Q2_K ? Q2K_D : type == EM_TYPE_Q3_K ? Q3K_D : type == EM_TYPE_Q6_K ? Q6K_D : 0;
        const float d = yd * em_f16_to_f32(rd16(wb + doff));
        if (type == EM_TYPE_Q2_K) {
            const float dmin = -yd * em_f16_to_f32(rd16(wb + Q2K_DMIN));
            for (int l = 0; l < 8; l++) acc[l] = fmaf(dmin, (float)(M[32 * l] * bsums[2 * l] + M[32 * l + 16] * bsums[2 * l + 1]), acc[l]);
        } else if (type == EM_TYPE_Q5_K) {
            const float dmin = -yd * em_f16_to_f32(rd16(wb + Q4K_DMIN));
            int32_t prod[4];
            for (int l = 0; l < 4; l++)
                prod[l] = M[64 * l] * (bsums[4 * l] + bsums[4 * l + 1]) + M[64 * l + 32] * (bsums[4 * l + 2] + bsums[4 * l + 3]);
            summs = fmaf(dmin, (float)((prod[0] + prod[1]) + (prod[2] + prod[3])), summs); /* contracted */
        } else if (type == EM_TYPE_Q6_K) {
            for (int l = 0; l < 8; l++) lane[l] -= 32 * (bsums[2 * l] * S[32 * l] + bsums[2 * l + 1] * S[32 * l + 16]);
        }
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    if (type == EM_TYPE_Q4_K) return s4k - m4k;
    float s = emu_hsum8(acc);
    if (type == EM_TYPE_Q5_K) s += summs;
    return s;
}

/* vec_dot4 (one weight row x four activation rows) is bit-identical to four
 * vec_dot calls for every type that has it. Float types (F16: attention's
 * query against four keys) also at head-dimension lengths, with and without
 * a tail, and past the four-row kernel's stack copy. */
static void test_vec_dot4(void **state) {
    (void)state;
    uint64_t seed = 12345;
    for (uint32_t type = 0; type < EM_TYPE_COUNT; type++) {
        const em_type_traits *tt = em_type_traits_get(type);
        if (!tt || !tt->vec_dot4) continue;
        const em_type_traits *at = em_type_traits_get(tt->vec_dot_type);
        static const int64_t ns_block[] = {256, 1024, 4096}; /* multiples of every block size */
        static const int64_t ns_float[] = {16, 64, 96, 128, 256, 1024, 1088, 4096};
        const bool fl = tt->blck == 1;
        const size_t nn = fl ? sizeof ns_float / sizeof *ns_float : sizeof ns_block / sizeof *ns_block;
        for (size_t in = 0; in < nn; in++) {
            const int64_t n = fl ? ns_float[in] : ns_block[in];
            float *w = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n * 4);
            uint8_t *wq = malloc(em_type_row_bytes(type, (uint64_t)n));
            size_t xb = em_type_row_bytes(tt->vec_dot_type, (uint64_t)n);
            uint8_t *xq = malloc(xb * 4);
            for (int64_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                w[i] = (float)((int64_t)(seed >> 33) % 2000 - 1000) / 997.0f;
            }
            for (int64_t i = 0; i < 4 * n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                x[i] = (float)((int64_t)(seed >> 33) % 2000 - 1000) / 311.0f;
            }
            tt->from_f32(w, wq, n);
            const void *xs[4];
            for (int j = 0; j < 4; j++) {
                at->from_f32(x + (size_t)j * n, xq + (size_t)j * xb, n);
                xs[j] = xq + (size_t)j * xb;
            }
            float s4[4], s1, s2[2];
            if (tt->vec_dot2) {
                tt->vec_dot2(n, s2, wq, xs);
                for (int j = 0; j < 2; j++) {
                    tt->vec_dot(n, &s1, wq, xs[j]);
                    if (memcmp(&s1, &s2[j], sizeof s1) != 0)
                        fail_msg("%s n=%lld row %d: vec_dot2 %.9g vs vec_dot %.9g", tt->name, (long long)n, j,
                                 (double)s2[j], (double)s1);
                }
            }
            tt->vec_dot4(n, s4, wq, xs);
            for (int j = 0; j < 4; j++) {
                tt->vec_dot(n, &s1, wq, xs[j]);
                if (memcmp(&s1, &s4[j], sizeof s1) != 0)
                    fail_msg("%s n=%lld row %d: vec_dot4 %.9g vs vec_dot %.9g", tt->name, (long long)n, j, (double)s4[j],
                             (double)s1);
            }
            free(w); free(x); free(wq); free(xq);
        }
    }
}


/* gemm (rows x any number of activation rows) is bit-identical to vec_dot
 * for every row count (tile remainders: tiles of 2, 3 and 8 rows) and token
 * count (groups of four and eight tokens and their remainders, and Q4_0's
 * packed path from nine tokens on), on rows of several lengths. */
static void test_gemm_tiles(void **state) {
    (void)state;
    uint64_t seed = 777;
    int n_types = 0;
    for (uint32_t type = 0; type < EM_TYPE_COUNT; type++) {
        const em_type_traits *tt = em_type_traits_get(type);
        if (!tt || !tt->gemm) continue;
        n_types++;
        const em_type_traits *at = em_type_traits_get(tt->vec_dot_type);
        for (int64_t n = 256; n <= 8192; n *= 2) {
            enum { R = 19, NT = 17 };
            const size_t wb = em_type_row_bytes(type, (uint64_t)n), xb = em_type_row_bytes(tt->vec_dot_type, (uint64_t)n);
            float *f = malloc(sizeof(float) * (size_t)n);
            uint8_t *wq = malloc(wb * R), *xq = malloc(xb * NT);
            for (int r = 0; r < R + NT; r++) {
                for (int64_t i = 0; i < n; i++) {
                    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                    f[i] = (float)((int64_t)(seed >> 33) % 2000 - 1000) / (r < R ? 997.0f : 311.0f);
                }
                if (r < R) tt->from_f32(f, wq + (size_t)r * wb, n);
                else at->from_f32(f, xq + (size_t)(r - R) * xb, n);
            }
            /* with the per-activation aux precomputed (where the type has one) and without */
            uint8_t *aux = NULL;
            const void *as[NT];
            if (tt->gemm_aux) {
                const size_t per = tt->gemm_aux_size(n);
                aux = malloc(per * NT);
                for (int t = 0; t < NT; t++) {
                    tt->gemm_aux(n, xq + (size_t)t * xb, aux + (size_t)t * per);
                    as[t] = aux + (size_t)t * per;
                }
            }
            for (int use_aux = 0; use_aux <= (aux != NULL); use_aux++)
            for (int nt = 1; nt <= NT; nt++)
                for (int nr = 1; nr <= R; nr++) {
                    float out[NT][R];
                    const void *xs[NT];
                    float *ys[NT];
                    for (int t = 0; t < NT; t++) { xs[t] = xq + (size_t)t * xb; ys[t] = out[t]; }
                    memset(out, 0xff, sizeof out);
                    /* both the cold and the cached path */
                    tt->gemm(n, nr, wq, wb, nt, xs, use_aux ? as : NULL, ys, nr % 2 == 0);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < nr; r++) {
                            float s1;
                            tt->vec_dot(n, &s1, wq + (size_t)r * wb, xs[t]);
                            if (memcmp(&s1, &out[t][r], sizeof s1) != 0)
                                fail_msg("%s n=%lld nr=%d nt=%d aux %d row %d tok %d: gemm %.9g vs vec_dot %.9g",
                                         tt->name, (long long)n, nr, nt, use_aux, r, t, (double)out[t][r], (double)s1);
                        }
                    for (int t = 0; t < NT; t++) /* nothing written past nt tokens or nr rows */
                        for (int r = t < nt ? nr : 0; r < R; r++) {
                            uint32_t u;
                            memcpy(&u, &out[t][r], sizeof u);
                            assert_int_equal(u, 0xffffffffu);
                        }
                }
            free(f); free(wq); free(xq); free(aux);
        }
    }
    if (strcmp(em_kernels_isa(), "avx2") == 0) assert_true(n_types >= 3); /* Q4_0, Q5_0, Q8_0 at least */
}

/* softmax and SwiGLU take 8-lane FMA paths on AVX2; both must give the
 * bits of the element-by-element em_ggml_v_expf definition, including
 * chunks where a lane under- or overflows (the scalar fallback). */
static void test_vexp_paths(void **state) {
    (void)state;
    enum { N = 4096 + 13 };
    float *x = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    uint64_t seed = 99;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const double u = (double)(seed >> 11) / 9007199254740992.0; /* [0, 1) */
        x[i] = (float)((u - 0.5) * (i % 97 == 0 ? 400.0 : 60.0)); /* some lanes past the exp range */
        g[i] = (float)(u * 3.0 - 1.0);
    }
    x[5] = -1000.0f; x[100] = 90.0f; x[200] = -87.5f; x[300] = 0.0f; x[301] = -0.0f;
    float max = x[0];
    for (int i = 1; i < N; i++) max = x[i] > max ? x[i] : max;
    double sum = em_ggml_softmax_exp(N, y, x, max), ref_sum = 0.0;
    for (int i = 0; i + 15 < N; i += 16) {
        float chunk[16];
        for (int l = 0; l < 16; l++) chunk[l] = em_ggml_v_expf(x[i + l] - max);
        for (int l = 0; l < 16; l++)
            if (memcmp(&chunk[l], &y[i + l], 4) != 0) fail_msg("softmax lane %d: %.9g vs %.9g", i + l, (double)y[i + l], (double)chunk[l]);
        ref_sum += (double)em_reduce16(chunk);
    }
    for (int i = N / 16 * 16; i < N; i++) ref_sum += (double)expf(x[i] - max);
    assert_true(sum == ref_sum);
    /* shift so that many lanes land near exp's under/overflow edges */
    for (int i = 0; i < N; i++) x[i] *= 0.25f;
    em_ggml_swiglu(N, y, x, g);
    for (int i = 0; i + 15 < N; i += 16)
        for (int l = 0; l < 16; l++) {
            const float v = x[i + l], r = (v / (1.0f + em_ggml_v_expf(0.0f - v))) * g[i + l];
            if (memcmp(&r, &y[i + l], 4) != 0) fail_msg("swiglu lane %d: %.9g vs %.9g", i + l, (double)y[i + l], (double)r);
        }
    free(x); free(g); free(y);
}

/* em_axpy_f16/f32 (attention's V accumulation): one fmaf per element, on
 * every length (vector body and scalar tail). */
static void test_axpy(void **state) {
    (void)state;
    uint64_t seed = 4242;
    for (int n = 1; n <= 80; n += 7) {
        float a[80], b[80], v[80], p;
        em_f16 vh[80];
        for (int d = 0; d < n; d++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            a[d] = b[d] = (float)((int64_t)(seed >> 33) % 20000 - 10000) / 997.0f;
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            v[d] = (float)((int64_t)(seed >> 33) % 20000 - 10000) / 311.0f;
            vh[d] = em_f32_to_f16(v[d]);
        }
        p = 0.3183099f;
        em_axpy_f32(n, a, v, p);
        for (int d = 0; d < n; d++) {
            const float r = fmaf(v[d], p, b[d]);
            if (memcmp(&r, &a[d], 4) != 0) fail_msg("axpy_f32 n=%d d=%d: %.9g vs %.9g", n, d, (double)a[d], (double)r);
        }
        memcpy(a, b, sizeof a);
        em_axpy_f16(n, a, vh, p);
        for (int d = 0; d < n; d++) {
            const float r = fmaf(em_f16_to_f32(vh[d]), p, b[d]);
            if (memcmp(&r, &a[d], 4) != 0) fail_msg("axpy_f16 n=%d d=%d: %.9g vs %.9g", n, d, (double)a[d], (double)r);
        }
    }
}

/* The attention helpers: four keys per call and register-held V rows give
 * the bits of one key at a time (em_dot_f16_gemm, em_axpy_f16 per key into
 * row j % rows), for the head sizes with a fast path (64, 128) and one
 * without (80), both row counts the attention uses (16 and 64), and key
 * counts that leave rows short. */
static void test_attention_helpers(void **state) {
    (void)state;
    uint64_t seed = 99;
    enum { NJ = 150, MAXN = 128 };
    static em_f16 vh[NJ][MAXN], qh[MAXN];
    static float p[NJ], acc[64 * MAXN], ref[64 * MAXN];
    const int ns[] = {64, 128, 80};
    for (int in = 0; in < 3; in++) {
        const int n = ns[in];
        for (int j = 0; j < NJ; j++) {
            for (int d = 0; d < n; d++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                vh[j][d] = em_f32_to_f16((float)((int64_t)(seed >> 33) % 20000 - 10000) / 1311.0f);
            }
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            p[j] = (float)((seed >> 40) % 10000) / 9973.0f;
        }
        for (int d = 0; d < n; d++) qh[d] = vh[7][(d * 5) % n];
        if (n % 16 == 0)
            for (int j = 0; j + 4 <= NJ; j += 4) {
                const em_f16 *k4[4] = {vh[j], vh[j + 1], vh[j + 2], vh[j + 3]};
                float s4[4];
                em_dot_f16_gemm4(n, k4, qh, s4);
                for (int u = 0; u < 4; u++) {
                    const float r = em_dot_f16_gemm(n, vh[j + u], qh);
                    if (memcmp(&r, &s4[u], 4) != 0)
                        fail_msg("dot_f16_gemm4 n=%d key %d: %.9g vs %.9g", n, j + u, (double)s4[u], (double)r);
                }
            }
        const int rows_list[] = {16, 64};
        for (int ir = 0; ir < 2; ir++)
            for (int nj = 1; nj <= NJ; nj += 37) {
                const int rows = rows_list[ir];
                const em_f16 *vp[NJ];
                for (int j = 0; j < NJ; j++) vp[j] = vh[j];
                for (size_t i = 0; i < (size_t)rows * (size_t)n; i++) acc[i] = ref[i] = (float)(i % 13) * 0.25f;
                for (int j = 0; j < nj; j++) em_axpy_f16(n, ref + (size_t)(j % rows) * (size_t)n, vh[j], p[j]);
                em_axpy_f16_rows(n, acc, rows, vp, p, nj);
                if (memcmp(acc, ref, sizeof(float) * (size_t)rows * (size_t)n) != 0)
                    fail_msg("axpy_f16_rows n=%d rows=%d keys=%d differs from one axpy per key", n, rows, nj);
                float out[MAXN];
                em_reduce16_rows(acc, rows, n, out);
                for (int d = 0; d < n; d++) {
                    float lanes[16];
                    for (int k = 0; k < 16; k++) {
                        const float *col = acc + d;
                        lanes[k] = rows == 16 ? col[(size_t)k * (size_t)n]
                                              : (col[(size_t)k * (size_t)n] + col[(size_t)(32 + k) * (size_t)n]) +
                                                    (col[(size_t)(16 + k) * (size_t)n] + col[(size_t)(48 + k) * (size_t)n]);
                    }
                    const float r = em_reduce16(lanes);
                    if (memcmp(&r, &out[d], 4) != 0)
                        fail_msg("reduce16_rows n=%d rows=%d d=%d: %.9g vs %.9g", n, rows, d, (double)out[d], (double)r);
                }
            }
    }
}

int main(void) {
    em_half_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_vec_dot4),
        cmocka_unit_test(test_gemm_tiles),
        cmocka_unit_test(test_vexp_paths),
        cmocka_unit_test(test_axpy),
        cmocka_unit_test(test_attention_helpers),
        cmocka_unit_test(test_isa_switch),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_f16_edges),
        cmocka_unit_test(test_bf16_edges),
        cmocka_unit_test(test_half_avx2_matches_scalar),
        cmocka_unit_test(test_layout_q4_0),
        cmocka_unit_test(test_layout_q4_1),
        cmocka_unit_test(test_layout_q5_0),
        cmocka_unit_test(test_layout_q5_1),
        cmocka_unit_test(test_layout_q8_0),
        cmocka_unit_test(test_layout_multiblock),
        cmocka_unit_test(test_quantize_q4_0_ref),
        cmocka_unit_test(test_quantize_q8_activation),
        cmocka_unit_test(test_quantize_q8_avx2_matches_scalar),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_vec_dot_reference),
        cmocka_unit_test(test_vec_dot_avx2_vs_scalar),
        cmocka_unit_test(test_vec_dot_oracle_order),
        cmocka_unit_test(test_k_layouts),
        cmocka_unit_test(test_quantize_q8_K),
        cmocka_unit_test(test_quantize_q8_K_avx2_matches_scalar),
        cmocka_unit_test(test_k_roundtrip),
        cmocka_unit_test(test_k_quantize_matches_llama_quantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
