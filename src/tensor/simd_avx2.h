/* simd_avx2.h - private to src/tensor: the small AVX2 helpers that the two
 * kernel files (quant_avx2.c, quant_k_avx2.c) share. Include it inside
 * `#if EM_HAVE_AVX2_KERNELS`, after quant.h. Every function carries the
 * target attribute, so the rest of the file may be built without -mavx2. */
#ifndef EM_TENSOR_SIMD_AVX2_H
#define EM_TENSOR_SIMD_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../base/half.h"

#define EM_AVX2 __attribute__((target("avx2,fma,f16c")))

/* F16C conversion (exact, like the table, without its 256 KiB in cache) */
static inline EM_AVX2 float f16f(em_f16 h) { return _cvtsh_ss(h); }

/* ggml hsum_float_8 */
static inline EM_AVX2 float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* The 4 bytes at p (any alignment) in every 32-bit lane. */
static inline EM_AVX2 __m256i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* Prefetches the cache lines of [p, p + bytes) into L1. A hint: it never
 * faults, so p may point past the data. always_inline: as a plain static
 * function GCC finds it has no side effects (a prefetch is none to it) and
 * deletes the calls. */
static inline __attribute__((always_inline)) EM_AVX2 void pf_span(const void *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

#endif
