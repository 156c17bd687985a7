/* types.c - the compute-side type table: one row per supported type, in a
 * scalar and (on x86) an AVX2 variant. Both tables are constant; selection
 * only picks which one em_type_traits_get() hands out, so it is thread safe
 * without locks beyond the one-time CPU probe. */
#include "types.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../base/half.h"
#include "quant.h"

#if EM_HAVE_AVX2_KERNELS
#include <cpuid.h>
#endif

#define ROW(t, nm, blck, bytes, vdt, to, from, dot) \
    [t] = {t, nm, blck, bytes, vdt, to, from, dot, NULL, NULL, NULL, NULL, NULL}
#define ROW4(t, nm, blck, bytes, vdt, to, from, dot, dot4) \
    [t] = {t, nm, blck, bytes, vdt, to, from, dot, dot4, NULL, NULL, NULL, NULL}
#define ROW42(t, nm, blck, bytes, vdt, to, from, dot, dot4, dot2) \
    [t] = {t, nm, blck, bytes, vdt, to, from, dot, dot4, dot2, NULL, NULL, NULL}
/* types with tile kernels: gemm serves every batch size, so no dot4/dot2 */
#define ROWG(t, nm, blck, bytes, vdt, to, from, dot, gemm) \
    [t] = {t, nm, blck, bytes, vdt, to, from, dot, NULL, NULL, gemm, NULL, NULL}
#define ROWGA(t, nm, blck, bytes, vdt, to, from, dot, gemm, aux_size, aux) \
    [t] = {t, nm, blck, bytes, vdt, to, from, dot, NULL, NULL, gemm, aux_size, aux}

static const em_type_traits scalar_table[EM_TYPE_COUNT] = {
    ROW(EM_TYPE_F32, "F32", 1, 4, EM_TYPE_F32, em_to_f32_f32, em_from_f32_f32, em_dot_f32),
    ROW(EM_TYPE_F16, "F16", 1, 2, EM_TYPE_F16, em_to_f32_f16, em_from_f32_f16, em_dot_f16),
    ROW(EM_TYPE_BF16, "BF16", 1, 2, EM_TYPE_BF16, em_to_f32_bf16, em_from_f32_bf16, em_dot_bf16),
    ROW(EM_TYPE_Q4_0, "Q4_0", 32, 18, EM_TYPE_Q8_0, em_to_f32_q4_0, em_from_f32_q4_0, em_dot_q4_0),
    ROW(EM_TYPE_Q4_1, "Q4_1", 32, 20, EM_TYPE_Q8_1, em_to_f32_q4_1, em_from_f32_q4_1, em_dot_q4_1),
    ROW(EM_TYPE_Q5_0, "Q5_0", 32, 22, EM_TYPE_Q8_0, em_to_f32_q5_0, em_from_f32_q5_0, em_dot_q5_0),
    ROW(EM_TYPE_Q5_1, "Q5_1", 32, 24, EM_TYPE_Q8_1, em_to_f32_q5_1, em_from_f32_q5_1, em_dot_q5_1),
    ROW(EM_TYPE_Q8_0, "Q8_0", 32, 34, EM_TYPE_Q8_0, em_to_f32_q8_0, em_from_f32_q8_0, em_dot_q8_0),
    ROW(EM_TYPE_Q8_1, "Q8_1", 32, 36, EM_TYPE_Q8_1, em_to_f32_q8_1, em_from_f32_q8_1, em_dot_q8_1),
    ROW(EM_TYPE_Q2_K, "Q2_K", 256, 84, EM_TYPE_Q8_K, em_to_f32_q2_K, em_from_f32_q2_K, em_dot_q2_K),
    ROW(EM_TYPE_Q3_K, "Q3_K", 256, 110, EM_TYPE_Q8_K, em_to_f32_q3_K, em_from_f32_q3_K, em_dot_q3_K),
    ROW(EM_TYPE_Q4_K, "Q4_K", 256, 144, EM_TYPE_Q8_K, em_to_f32_q4_K, em_from_f32_q4_K, em_dot_q4_K),
    ROW(EM_TYPE_Q5_K, "Q5_K", 256, 176, EM_TYPE_Q8_K, em_to_f32_q5_K, em_from_f32_q5_K, em_dot_q5_K),
    ROW(EM_TYPE_Q6_K, "Q6_K", 256, 210, EM_TYPE_Q8_K, em_to_f32_q6_K, em_from_f32_q6_K, em_dot_q6_K),
    ROW(EM_TYPE_Q8_K, "Q8_K", 256, 292, EM_TYPE_Q8_K, em_to_f32_q8_K, em_from_f32_q8_K, em_dot_q8_K),
};

#if EM_HAVE_AVX2_KERNELS
static const em_type_traits avx2_table[EM_TYPE_COUNT] = {
    ROW(EM_TYPE_F32, "F32", 1, 4, EM_TYPE_F32, em_to_f32_f32, em_from_f32_f32, em_dot_f32_avx2),
    ROW4(EM_TYPE_F16, "F16", 1, 2, EM_TYPE_F16, em_to_f32_f16_avx2, em_from_f32_f16_avx2, em_dot_f16_avx2,
         em_dot4_f16_avx2),
    ROW(EM_TYPE_BF16, "BF16", 1, 2, EM_TYPE_BF16, em_to_f32_bf16, em_from_f32_bf16_avx2, em_dot_bf16_avx2),
    ROWGA(EM_TYPE_Q4_0, "Q4_0", 32, 18, EM_TYPE_Q8_0, em_to_f32_q4_0, em_from_f32_q4_0, em_dot_q4_0_avx2,
          em_gemm_q4_0_avx2, em_gemm_aux_size_q4_0, em_gemm_aux_q4_0_avx2),
    ROW4(EM_TYPE_Q4_1, "Q4_1", 32, 20, EM_TYPE_Q8_1, em_to_f32_q4_1, em_from_f32_q4_1, em_dot_q4_1_avx2,
         em_dot4_q4_1_avx2),
    ROWG(EM_TYPE_Q5_0, "Q5_0", 32, 22, EM_TYPE_Q8_0, em_to_f32_q5_0, em_from_f32_q5_0, em_dot_q5_0_avx2,
         em_gemm_q5_0_avx2),
    ROW4(EM_TYPE_Q5_1, "Q5_1", 32, 24, EM_TYPE_Q8_1, em_to_f32_q5_1, em_from_f32_q5_1, em_dot_q5_1_avx2,
         em_dot4_q5_1_avx2),
    ROWG(EM_TYPE_Q8_0, "Q8_0", 32, 34, EM_TYPE_Q8_0, em_to_f32_q8_0, em_from_f32_q8_0_avx2, em_dot_q8_0_avx2,
         em_gemm_q8_0_avx2),
    ROW(EM_TYPE_Q8_1, "Q8_1", 32, 36, EM_TYPE_Q8_1, em_to_f32_q8_1, em_from_f32_q8_1_avx2, em_dot_q8_1),
    ROW(EM_TYPE_Q2_K, "Q2_K", 256, 84, EM_TYPE_Q8_K, em_to_f32_q2_K, em_from_f32_q2_K, em_dot_q2_K_avx2),
    ROW(EM_TYPE_Q3_K, "Q3_K", 256, 110, EM_TYPE_Q8_K, em_to_f32_q3_K, em_from_f32_q3_K, em_dot_q3_K_avx2),
    ROWG(EM_TYPE_Q4_K, "Q4_K", 256, 144, EM_TYPE_Q8_K, em_to_f32_q4_K, em_from_f32_q4_K, em_dot_q4_K_avx2,
         em_gemm_q4_K_avx2),
    ROW(EM_TYPE_Q5_K, "Q5_K", 256, 176, EM_TYPE_Q8_K, em_to_f32_q5_K, em_from_f32_q5_K, em_dot_q5_K_avx2),
    ROW42(EM_TYPE_Q6_K, "Q6_K", 256, 210, EM_TYPE_Q8_K, em_to_f32_q6_K, em_from_f32_q6_K, em_dot_q6_K_avx2,
          em_dot4_q6_K_avx2, em_dot2_q6_K_avx2),
    ROW(EM_TYPE_Q8_K, "Q8_K", 256, 292, EM_TYPE_Q8_K, em_to_f32_q8_K, em_from_f32_q8_K_avx2, em_dot_q8_K),
};
#endif

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool cpu_has_avx2;   /* set once by probe() */
static bool env_no_simd;    /* EMBER_NO_SIMD set to something other than "" / "0" */
static atomic_bool forced_scalar;

#if EM_HAVE_AVX2_KERNELS
/* F16C: CPUID leaf 1, ECX bit 29 (queried directly: clang's
 * __builtin_cpu_supports does not know "f16c"). */
static bool cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

static void probe(void) {
    em_half_init();
#if EM_HAVE_AVX2_KERNELS
    __builtin_cpu_init();
    /* "avx2" is only reported when the OS saves the YMM registers */
    cpu_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#endif
    const char *e = getenv("EMBER_NO_SIMD");
    env_no_simd = e && *e && strcmp(e, "0") != 0;
}

static bool use_avx2(void) {
    pthread_once(&probe_once, probe);
    return cpu_has_avx2 && !env_no_simd && !atomic_load_explicit(&forced_scalar, memory_order_relaxed);
}

const em_type_traits *em_type_traits_get(uint32_t type) {
    const bool simd = use_avx2(); /* also runs em_half_init() once */
    if (type >= EM_TYPE_COUNT || !scalar_table[type].name) return NULL;
#if EM_HAVE_AVX2_KERNELS
    if (simd) return &avx2_table[type];
#else
    (void)simd;
#endif
    return &scalar_table[type];
}

const em_type_traits *em_type_traits_scalar(uint32_t type) {
    pthread_once(&probe_once, probe);
    if (type >= EM_TYPE_COUNT || !scalar_table[type].name) return NULL;
    return &scalar_table[type];
}

const char *em_kernels_isa(void) { return use_avx2() ? "avx2" : "scalar"; }

void em_kernels_force_scalar(bool scalar) {
    atomic_store_explicit(&forced_scalar, scalar, memory_order_relaxed);
}
