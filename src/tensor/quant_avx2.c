/* quant_avx2.c - AVX2 + FMA + F16C kernels. Each function carries a target
 * attribute, so this file builds with the project's portable flags and is
 * only called after types.c has checked the CPU at run time.
 *
 * The operations and their order are those of quant_scalar.c (see there:
 * the order of the llama.cpp build behind ../shared/oracle), so both kernel
 * sets give identical bits; the AVX2 integer dots are ggml's AVX2 kernels.
 * Contraction is off so that what is written as separate multiply and add
 * stays that way; FMAs are explicit. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant.h"

#if EM_HAVE_AVX2_KERNELS

#include <math.h>
#include <stdlib.h>

#include "simd_avx2.h"

/* ---------------------------------------------------------------- helpers */

/* 32 nibbles -> 32 bytes in [0, 15]: low nibbles (elements 0..15) in the
 * low 128-bit lane, high nibbles (elements 16..31) in the high lane. */
static inline EM_AVX2 __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits (little endian) -> 32 bytes, 0xFF where the bit is set. */
static inline EM_AVX2 __m256i expand_bits(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    const __m256i sel = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                          0x0101010101010101LL, 0x0000000000000000LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), sel); /* byte k = bits byte k/8 */
    /* every byte all ones except bit k%8 of byte k */
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* int32 lane l = sum of products of bytes 4l..4l+3, unsigned u x signed s. */
static inline EM_AVX2 __m256 dot_u8_i8(__m256i u, __m256i s) {
    const __m256i p16 = _mm256_maddubs_epi16(u, s); /* |pairs| <= 2*255*128: see callers */
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Same for signed x signed: |x| as the unsigned operand, y takes x's sign. */
static inline EM_AVX2 __m256 dot_i8_i8(__m256i x, __m256i y) {
    return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

static inline EM_AVX2 int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* ----------------------------------------------------- conversions (F16C) */

EM_AVX2 void em_to_f32_f16_avx2(const void *src, float *dst, int64_t n) {
    const em_f16 *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) dst[i] = em_f16_to_f32(h[i]);
}

/* vcvtps2ph rounds to nearest even exactly like em_f32_to_f16; only NaN
 * payloads may differ (both give a quiet NaN). */
EM_AVX2 void em_from_f32_f16_avx2(const float *src, void *dst, int64_t n) {
    em_f16 *h = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = em_f32_to_f16(src[i]);
}

/* em_f32_to_bf16 (ggml's rounding) on 8 values. */
static inline EM_AVX2 __m256i bf16_round8(__m256i u) {
    const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    const __m256i nan_v = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rnd = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
    return _mm256_blendv_epi8(rnd, nan_v, is_nan);
}

EM_AVX2 void em_from_f32_bf16_avx2(const float *src, void *dst, int64_t n) {
    em_bf16 *h = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = bf16_round8(_mm256_loadu_si256((const __m256i *)(src + i)));
        const __m256i b = bf16_round8(_mm256_loadu_si256((const __m256i *)(src + i + 8)));
        /* values fit in 16 bits, so the unsigned-saturating pack is exact */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((__m256i *)(h + i), p);
    }
    for (; i < n; i++) h[i] = em_f32_to_bf16(src[i]);
}

/* ------------------------------------------------- activation quantizers */

/* One block of 32: amax, scale, and the 4 vectors of rounded int32 values. */
static inline EM_AVX2 void q8_block(const float *x, __m256i q[4], float *d_out) {
    __m256 v[4];
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
    __m256 m = _mm256_andnot_ps(sign, v[0]);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[1]));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[2]));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[3]));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const __m256 mul = _mm256_set1_ps(id);
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(
            _mm256_round_ps(_mm256_mul_ps(v[k], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *d_out = d;
}

/* int32 x 32 -> int8 x 32 with saturation, in element order. */
static inline EM_AVX2 void q8_store(int8_t *dst, const __m256i q[4]) {
    const __m256i a = _mm256_packs_epi32(q[0], q[1]); /* 0-3 8-11 | 4-7 12-15 */
    const __m256i b = _mm256_packs_epi32(q[2], q[3]); /* 16-19 24-27 | 20-23 28-31 */
    __m256i c = _mm256_packs_epi16(a, b);
    c = _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)dst, c);
}

EM_AVX2 void em_from_f32_q8_0_avx2(const float *src, void *dst, int64_t n) {
    em_block_q8_0 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        __m256i q[4];
        float d;
        q8_block(src, q, &d);
        y[i].d = em_f32_to_f16(d);
        q8_store(y[i].qs, q);
    }
}

EM_AVX2 void em_from_f32_q8_1_avx2(const float *src, void *dst, int64_t n) {
    em_block_q8_1 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        __m256i q[4];
        float d;
        q8_block(src, q, &d);
        y[i].d = em_f32_to_f16(d);
        const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        y[i].s = em_f32_to_f16(d * (float)sum);
        q8_store(y[i].qs, q);
    }
}

/* ------------------------------------------------------------- float dots */

/* GCC's _mm512_reduce_add_ps over the 16 lanes (lo = 0..7, hi = 8..15):
 * t3 = hi + lo, then reduce16_t3. */
static inline EM_AVX2 float reduce16_t3(__m256 t3) {
    const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1));
}
static inline EM_AVX2 float reduce16(__m256 lo, __m256 hi) { return reduce16_t3(_mm256_add_ps(hi, lo)); }

/* 4 accumulators of 16 lanes: accumulator r is (c[2r], c[2r+1]); folded
 * 0+2, 1+3, then 0+1, then reduce16 (GGML_F32x16_REDUCE). fold4x16_t3 stops
 * after reduce16's first step (hi + lo), for callers that finish several
 * reductions side by side. */
static inline EM_AVX2 __m256 fold4x16_t3(const __m256 c[8]) {
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(c[0], c[4]), _mm256_add_ps(c[2], c[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(c[1], c[5]), _mm256_add_ps(c[3], c[7]));
    return _mm256_add_ps(hi, lo);
}
static inline EM_AVX2 float fold4x16(const __m256 c[8]) { return reduce16_t3(fold4x16_t3(c)); }

EM_AVX2 void em_dot_f32_avx2(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    const int64_t np = n & ~(int64_t)63;
    __m256 c[8]; /* unrolled, or GCC keeps them in memory */
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) c[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64)
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
            c[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k), c[k]);
    float sum = fold4x16(c);
    for (int64_t i = np; i < n; i++) {
        const float p = a[i] * b[i];
        sum += p;
    }
    *s = sum;
}

EM_AVX2 void em_dot_f16_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_f16 *a = w, *b = x;
#define LD(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
    const int64_t np = n & ~(int64_t)63;
    __m256 c[8];
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) c[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64)
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) c[k] = _mm256_fmadd_ps(LD(a + i + 8 * k), LD(b + i + 8 * k), c[k]);
#undef LD
    double sum = fold4x16(c);
    for (int64_t i = np; i < n; i++) sum += (double)(em_f16_to_f32(a[i]) * em_f16_to_f32(b[i]));
    *s = (float)sum;
}

/* s[j] = em_dot_f16_avx2(n, w, x[j]) for j < 4, bit for bit: w is converted
 * once (attention: one query against four keys), and the four final
 * reductions run side by side, each lane seeing reduce16's additions in
 * reduce16's order. Rows whose length is not a multiple of 64 (a tail) or
 * too long for the stack copy take the single-row kernel. */
EM_AVX2 void em_dot4_f16_avx2(int64_t n, float *s, const void *w, const void *const *x) {
    enum { MAXN = 1024 };
    if (n % 64 != 0 || n > MAXN) {
        for (int j = 0; j < 4; j++) em_dot_f16_avx2(n, &s[j], w, x[j]);
        return;
    }
    const em_f16 *a = w;
    float af[MAXN];
    for (int64_t i = 0; i < n; i += 8)
        _mm256_storeu_ps(af + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))));
    __m256 t3[4]; /* fold4x16_t3 per row; reduce16_t3 of the four below, side by side */
    _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
        const em_f16 *b = x[j];
        __m256 c[8];
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) c[k] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n; i += 64)
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
                c[k] = _mm256_fmadd_ps(_mm256_loadu_ps(af + i + 8 * k),
                                       _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8 * k))), c[k]);
        t3[j] = fold4x16_t3(c);
    }
    /* reduce16 per row: t6 = high 128 + low 128, t8 = t6 + t6[2,3,0,1],
     * result t8[0] + t8[1]. Rows 0,1 and 2,3 share a register per step. */
    const __m256 s01 = _mm256_add_ps(_mm256_permute2f128_ps(t3[0], t3[1], 0x20), _mm256_permute2f128_ps(t3[0], t3[1], 0x31));
    const __m256 s23 = _mm256_add_ps(_mm256_permute2f128_ps(t3[2], t3[3], 0x20), _mm256_permute2f128_ps(t3[2], t3[3], 0x31));
    /* lanes: [t6_0 | t6_1] and [t6_2 | t6_3]; t8 for all four: */
    const __m256 t8 = _mm256_add_ps(_mm256_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm256_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
    /* t8 lanes: [t8_0[0], t8_0[1], t8_2[0], t8_2[1] | t8_1[0], t8_1[1], t8_3[0], t8_3[1]] */
    const __m256 r = _mm256_add_ps(t8, _mm256_permute_ps(t8, _MM_SHUFFLE(2, 3, 0, 1)));
    float out[8];
    _mm256_storeu_ps(out, r);
    s[0] = out[0];
    s[1] = out[4];
    s[2] = out[2];
    s[3] = out[6];
}

/* vdpbf16ps on 8 lanes: lane j += a[2j+1]*b[2j+1], then += a[2j]*b[2j]
 * (exact products, so each FMA is one rounded add). */
static inline EM_AVX2 __m256 dpbf16_8(__m256 acc, const em_bf16 *a, const em_bf16 *b) {
    const __m256i va = _mm256_loadu_si256((const __m256i *)a);
    const __m256i vb = _mm256_loadu_si256((const __m256i *)b);
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(va, hi)),
                          _mm256_castsi256_ps(_mm256_and_si256(vb, hi)), acc);
    return _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(va, 16)),
                           _mm256_castsi256_ps(_mm256_slli_epi32(vb, 16)), acc);
}

EM_AVX2 void em_dot_bf16_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_bf16 *a = w, *b = x;
    __m256 c1lo = _mm256_setzero_ps(), c1hi = c1lo, c2lo = c1lo, c2hi = c1lo;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        c1lo = dpbf16_8(c1lo, a + i, b + i);
        c1hi = dpbf16_8(c1hi, a + i + 16, b + i + 16);
        c2lo = dpbf16_8(c2lo, a + i + 32, b + i + 32);
        c2hi = dpbf16_8(c2hi, a + i + 48, b + i + 48);
    }
    double sum = 0.0;
    sum += (double)reduce16(c1lo, c1hi);
    sum += (double)reduce16(c2lo, c2hi);
    for (; i < n; i++) sum += (double)(em_bf16_to_f32(a[i]) * em_bf16_to_f32(b[i]));
    *s = (float)sum;
}

/* ----------------------------------------------------------- integer dots */

/* Block decoders: the 32 weight values as bytes, element e in byte e.
 * Signed formats give q - offset as int8; Q4_1/Q5_1 give q as uint8. */
static inline EM_AVX2 __m256i dec_q4_0(const em_block_q4_0 *b) {
    return _mm256_sub_epi8(unpack_nibbles(b->qs), _mm256_set1_epi8(8)); /* [-8, 7] */
}
static inline EM_AVX2 __m256i dec_q4_1(const em_block_q4_1 *b) { return unpack_nibbles(b->qs); }
static inline EM_AVX2 __m256i dec_q5_0(const em_block_q5_0 *b) {
    /* q - 16 as int8: where the 5th bit is clear, set the top nibble */
    return _mm256_or_si256(unpack_nibbles(b->qs), _mm256_andnot_si256(expand_bits(b->qh), _mm256_set1_epi8((char)0xF0)));
}
static inline EM_AVX2 __m256i dec_q5_1(const em_block_q5_1 *b) {
    return _mm256_or_si256(unpack_nibbles(b->qs), _mm256_and_si256(expand_bits(b->qh), _mm256_set1_epi8(0x10)));
}
static inline EM_AVX2 __m256i dec_q8_0(const em_block_q8_0 *b) {
    return _mm256_loadu_si256((const __m256i *)b->qs);
}

/* Lane sums of one block: signed weights use ggml's sign trick (|w| as the
 * unsigned operand, so a Q8_0 weight of -128 still works), unsigned ones go
 * straight into maddubs. Either way the int32 lanes are exact. */
#define LANES_S(qx, qy) dot_i8_i8(qx, qy)
#define LANES_U(qx, qy) dot_u8_i8(qx, qy)

/* Single row: ggml's kernel. d = d_w * d_x per block, one FMA per block into
 * 8 float lanes, hsum_float_8; with an offset m: summs = fma(m_w, s_x). */
#define DEF_DOT(name, WT, XT, LANES, HAS_M)                                                      \
    EM_AVX2 void em_dot_##name##_avx2(int64_t n, float *s, const void *w, const void *x) {       \
        const WT *a = w;                                                                           \
        const XT *b = x;                                                                           \
        const int64_t nb = n / EM_QK;                                                              \
        __m256 acc = _mm256_setzero_ps();                                                          \
        float summs = 0.0f;                                                                        \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            _mm_prefetch((const char *)&a[i] + EM_PF_DIST, _MM_HINT_T0);                            \
            if (HAS_M) summs = fmaf(f16f(QM(a[i])), f16f(QS(b[i])), summs);                        \
            const __m256 d = _mm256_set1_ps(f16f(a[i].d) * f16f(b[i].d));                          \
            const __m256i qy = _mm256_loadu_si256((const __m256i *)b[i].qs);                       \
            acc = _mm256_fmadd_ps(d, LANES(dec_##name(&a[i]), qy), acc);                           \
        }                                                                                          \
        *s = HAS_M ? hsum8(acc) + summs : hsum8(acc);                                              \
    }

/* One weight row against four activation rows (prompt batches): the block
 * is decoded once for the four, and each output follows exactly the
 * single-row kernel's operations, so the results are bit-identical to four
 * em_dot_*_avx2 calls. Only the offset formats (Q4_1, Q5_1) use it: the
 * signed ones have row x token tiles (DEF_GEMM below). */
#define DEF_DOT4(name, WT, XT)                                                                   \
    EM_AVX2 void em_dot4_##name##_avx2(int64_t n, float *s, const void *w, const void *const *x) { \
        const WT *a = w;                                                                           \
        const XT *b0 = x[0], *b1 = x[1], *b2 = x[2], *b3 = x[3];                                   \
        const int64_t nb = n / EM_QK;                                                              \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;                  \
        float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f;                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            _mm_prefetch((const char *)&a[i] + EM_PF_DIST, _MM_HINT_T0);                            \
            const float dw = f16f(a[i].d);                                                         \
            const __m256i qx = dec_##name(&a[i]);                                                  \
            const float mw = f16f(QM(a[i]));                                                       \
            m0 = fmaf(mw, f16f(QS(b0[i])), m0);                                                    \
            m1 = fmaf(mw, f16f(QS(b1[i])), m1);                                                    \
            m2 = fmaf(mw, f16f(QS(b2[i])), m2);                                                    \
            m3 = fmaf(mw, f16f(QS(b3[i])), m3);                                                    \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {                                 \
                const XT *bj = j == 0 ? b0 : j == 1 ? b1 : j == 2 ? b2 : b3;                       \
                const __m256i qy = _mm256_loadu_si256((const __m256i *)bj[i].qs);                  \
                const __m256 lanes = dot_u8_i8(qx, qy);                                          \
                const __m256 d = _mm256_set1_ps(dw * f16f(bj[i].d));                               \
                if (j == 0) acc0 = _mm256_fmadd_ps(d, lanes, acc0);                                \
                else if (j == 1) acc1 = _mm256_fmadd_ps(d, lanes, acc1);                           \
                else if (j == 2) acc2 = _mm256_fmadd_ps(d, lanes, acc2);                           \
                else acc3 = _mm256_fmadd_ps(d, lanes, acc3);                                       \
            }                                                                                      \
        }                                                                                          \
        s[0] = hsum8(acc0) + m0;                                                              \
        s[1] = hsum8(acc1) + m1;                                                              \
        s[2] = hsum8(acc2) + m2;                                                              \
        s[3] = hsum8(acc3) + m3;                                                              \
    }

/* field accessors for the offset formats (unused expansions compile away) */
#define QM(blk) ((blk).d)
#define QS(blk) ((blk).d)
DEF_DOT(q5_0, em_block_q5_0, em_block_q8_0, LANES_S, 0)
DEF_DOT(q8_0, em_block_q8_0, em_block_q8_0, LANES_S, 0)
#undef QM
#undef QS
#define QM(blk) ((blk).m)
#define QS(blk) ((blk).s)
DEF_DOT(q4_1, em_block_q4_1, em_block_q8_1, LANES_U, 1)
DEF_DOT(q5_1, em_block_q5_1, em_block_q8_1, LANES_U, 1)
DEF_DOT4(q4_1, em_block_q4_1, em_block_q8_1)
DEF_DOT4(q5_1, em_block_q5_1, em_block_q8_1)
#undef QM
#undef QS

/* ------------------------------------------------------------------ Q4_0
 * Q4_0 sums each block's 32 products exactly in integers and adds them with
 * one FMA per block, in block order:
 *     s = fma((float)isum_k, d_w,k * d_x,k, s)    for k = 0 .. nb-1
 * (quant_scalar.c em_dot_q4_0 is the reference). That is the shape of
 * llama.cpp's repacked Q4_0 kernels, and it is what lets eight weight rows
 * share one vector: with the rows in the 32-bit lanes, a block's products
 * reduce inside each lane (no horizontal sums) and one FMA serves eight
 * outputs. Integer sums are exact however they are grouped, so every kernel
 * below gives the same bits as the scalar one, for any batch size. */

/* 8 * (sum of the 32 activation bytes): the offset of unsigned nibbles
 * (q - 8 = u - 8) moved to the activation side. */
static inline EM_AVX2 int32_t q8_sum8(const em_block_q8_0 *b) {
    const __m256i qy = _mm256_loadu_si256((const __m256i *)b->qs);
    return 8 * hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), qy), _mm256_set1_epi16(1)));
}

EM_AVX2 void em_dot_q4_0_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q4_0 *a = w;
    const em_block_q8_0 *b = x;
    const int64_t nb = n / EM_QK;
    float acc = 0.0f;
    for (int64_t k = 0; k < nb; k++) {
        const __m256i qy = _mm256_loadu_si256((const __m256i *)b[k].qs);
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(unpack_nibbles(a[k].qs), qy), _mm256_set1_epi16(1));
        const int32_t isum = hsum_i32(p) - q8_sum8(&b[k]);
        acc = fmaf((float)isum, f16f(a[k].d) * f16f(b[k].d), acc);
    }
    *s = acc;
}

/* Prefetch distance when eight rows stream together. The eight rows of a
 * group are one contiguous run of 8 * ws bytes (every GGUF tensor's rows are
 * packed; a padded stride would only thin the prefetch), read at 8 * ws / nb
 * bytes per block, so the prefetch runs linearly that far ahead of the
 * group's start: one sequential stream, the 144 bytes of each block's
 * eight rows (three lines) per block.
 * Per-row prefetches of each row at +16 KiB (eight streams, four
 * instructions per block) ran at 66% of the bandwidth bound; the linear
 * stream, 1B Q4_0 decode, 2 threads, medians of 5 alternating runs: 16.6 ->
 * 20.1 tok/s (8 KiB 19.5, 12 KiB 19.4, 32 KiB 16.9); 1 thread 10.1 -> 13.7.
 * Without software prefetch the kernel runs at half speed: the hardware
 * prefetcher does not follow eight interleaved rows. */
#ifndef Q4X8_PF_DIST
#define Q4X8_PF_DIST 16384
#endif

static inline int ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Eight rows' block k (row i at blk + i * ws) with the rows in the 32-bit
 * lanes: P[g] lane i = bytes 4g..4g+3 of row i's nibbles (low nibbles:
 * elements 4g..4g+3, high: 16+4g..16+4g+3); d lane i = row i's scale. */
static inline __attribute__((always_inline)) EM_AVX2 void q4x8_gather(const uint8_t *blk, size_t ws, __m256i P[4],
                                                                     __m256 *d) {
#define Q4X8_ROWS(i, j)                                                                                   \
    _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(blk + (i) * ws + 2))), \
                            _mm_loadu_si128((const __m128i *)(blk + (j) * ws + 2)), 1)
    const __m256i A = Q4X8_ROWS(0, 4), B = Q4X8_ROWS(1, 5), C = Q4X8_ROWS(2, 6), D = Q4X8_ROWS(3, 7);
#undef Q4X8_ROWS
    const __m256i t0 = _mm256_unpacklo_epi32(A, B), t1 = _mm256_unpackhi_epi32(A, B);
    const __m256i t2 = _mm256_unpacklo_epi32(C, D), t3 = _mm256_unpackhi_epi32(C, D);
    P[0] = _mm256_unpacklo_epi64(t0, t2);
    P[1] = _mm256_unpackhi_epi64(t0, t2);
    P[2] = _mm256_unpacklo_epi64(t1, t3);
    P[3] = _mm256_unpackhi_epi64(t1, t3);
    /* inserted one by one: eight 2-byte stores read back as 16 bytes would
     * stall store forwarding (measured: decode 30% slower) */
    __m128i h = _mm_cvtsi32_si128(ld16(blk));
    h = _mm_insert_epi16(h, ld16(blk + ws), 1);
    h = _mm_insert_epi16(h, ld16(blk + 2 * ws), 2);
    h = _mm_insert_epi16(h, ld16(blk + 3 * ws), 3);
    h = _mm_insert_epi16(h, ld16(blk + 4 * ws), 4);
    h = _mm_insert_epi16(h, ld16(blk + 5 * ws), 5);
    h = _mm_insert_epi16(h, ld16(blk + 6 * ws), 6);
    h = _mm_insert_epi16(h, ld16(blk + 7 * ws), 7);
    *d = _mm256_cvtph_ps(h);
}

/* One block of eight rows against T activation rows: acc[t] lane i +=
 * isum(row i, token t) * (d_w,i * dx[t]). xq[t]: the token's 32 bytes,
 * sx8[t]: 8 * their sum. Each 16-bit lane adds 8 pair sums of at most
 * 2 * 15 * 128: below 2^15. */
static inline __attribute__((always_inline)) EM_AVX2 void q4x8_block(const int T, const __m256i P[4], __m256 d,
                                                                    const int8_t *const *xq, const int32_t *sx8,
                                                                    const float *dx, __m256 acc[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i L[4], H[4];
    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
        L[g] = _mm256_and_si256(P[g], m4);
        H[g] = _mm256_and_si256(_mm256_srli_epi16(P[g], 4), m4);
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) {
        const int8_t *q = xq[t];
        const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(L[0], bcast32(q + 0)), _mm256_maddubs_epi16(L[1], bcast32(q + 4)));
        const __m256i b = _mm256_add_epi16(_mm256_maddubs_epi16(L[2], bcast32(q + 8)), _mm256_maddubs_epi16(L[3], bcast32(q + 12)));
        const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(H[0], bcast32(q + 16)), _mm256_maddubs_epi16(H[1], bcast32(q + 20)));
        const __m256i e = _mm256_add_epi16(_mm256_maddubs_epi16(H[2], bcast32(q + 24)), _mm256_maddubs_epi16(H[3], bcast32(q + 28)));
        const __m256i s16 = _mm256_add_epi16(_mm256_add_epi16(a, b), _mm256_add_epi16(c, e));
        const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(sx8[t]));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(dx[t])), acc[t]);
    }
}

/* Eight rows x T tokens over all nb blocks. PACKED: src is the group's
 * packed copy (per block 4 x 32 bytes of P and 8 floats of d, 160 bytes,
 * gathered once and reused for every group of tokens), and pf, if not NULL,
 * the next group's first row (row i at pf + i * ws), fetched block by block
 * so its memory time overlaps this compute. Otherwise src is the group's
 * first row and each block is gathered from the rows as it goes. */
enum { Q4X8_PACK = 160 };

static inline __attribute__((always_inline)) EM_AVX2 void q4x8_rows(const int T, const bool PACKED, int64_t nb,
                                                                   const uint8_t *src, size_t ws, const uint8_t *pf,
                                                                   const em_block_q8_0 *const *xb,
                                                                   const int32_t *const *sx8, const float *const *dxs,
                                                                   float *const *y, int64_t r) {
    __m256 acc[8];
    _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const size_t step = nb == 0 ? 0 : 8 * ws / (size_t)nb; /* bytes of a group per block */
    for (int64_t k = 0; k < nb; k++) {
        __m256i P[4];
        __m256 d;
        if (PACKED) {
            const uint8_t *pk = src + (size_t)k * Q4X8_PACK;
            if (pf) pf_span(pf + (size_t)k * step, step); /* the next group, contiguous: fetched linearly */
            _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) P[g] = _mm256_load_si256((const __m256i *)pk + g);
            d = _mm256_load_ps((const float *)(pk + 128));
        } else {
            const uint8_t *blk = src + (size_t)k * sizeof(em_block_q4_0);
            pf_span(src + Q4X8_PF_DIST + (size_t)k * step, step);
            q4x8_gather(blk, ws, P, &d);
        }
        const int8_t *xq[8];
        int32_t s8[8];
        float dx[8];
        _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) {
            xq[t] = xb[t][k].qs;
            s8[t] = sx8[t][k];
            dx[t] = dxs[t][k];
        }
        q4x8_block(T, P, d, xq, s8, dx, acc);
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) _mm256_storeu_ps(y[t] + r, acc[t]);
}

/* One group of eight rows (outputs r..r+7) for all nt tokens: eight at a
 * time while eight are left (one gather or pack read for all of them), then
 * four, then the rest. pf (packed only) goes with the first pass. */
static inline __attribute__((always_inline)) EM_AVX2 void q4x8_group(const bool packed, int nt, int64_t nb,
                                                                    const uint8_t *src, size_t ws, const uint8_t *pf,
                                                                    const em_block_q8_0 *const *xb,
                                                                    const int32_t *const *sx8, const float *const *dxs,
                                                                    float *const *y, int64_t r) {
    for (int t0 = 0; t0 < nt;) {
        const int T = nt - t0 >= 8 ? 8 : nt - t0 < 4 ? nt - t0 : 4;
        const uint8_t *p = t0 == 0 ? pf : NULL;
#define Q4X8_PASS(TT)                                                                                 \
    (packed ? q4x8_rows(TT, true, nb, src, ws, p, xb + t0, sx8 + t0, dxs + t0, y + t0, r)             \
            : q4x8_rows(TT, false, nb, src, ws, NULL, xb + t0, sx8 + t0, dxs + t0, y + t0, r))
        switch (T) {
        case 8: Q4X8_PASS(8); break;
        case 4: Q4X8_PASS(4); break;
        case 3: Q4X8_PASS(3); break;
        case 2: Q4X8_PASS(2); break;
        default: Q4X8_PASS(1); break;
        }
#undef Q4X8_PASS
        t0 += T;
    }
}

/* Up to this many tokens gather straight from the rows (one gather per four
 * tokens) rather than pack: 8 sequences decoding together ran 10% faster
 * that way (1B, 1 thread, alternating medians); prompt chunks pack. */
#ifndef Q4X8_DIRECT_MAX
#define Q4X8_DIRECT_MAX 8
#endif

size_t em_gemm_aux_size_q4_0(int64_t n) { return (size_t)(n / EM_QK) * (sizeof(int32_t) + sizeof(float)); }

/* The kernels' per-block activation data: 8 x each block's byte sum (the
 * nibble offset moved to the activation side) and its scale as a float. */
EM_AVX2 void em_gemm_aux_q4_0_avx2(int64_t n, const void *x, void *aux) {
    const em_block_q8_0 *b = x;
    const int64_t nb = n / EM_QK;
    int32_t *sx8 = aux;
    float *dx = (float *)(sx8 + nb);
    for (int64_t k = 0; k < nb; k++) {
        sx8[k] = q8_sum8(&b[k]);
        dx[k] = f16f(b[k].d);
    }
}

/* Rows in groups of eight (the rest one at a time), any number of tokens:
 * up to eight tokens read the weights directly; more pack each group of
 * eight rows (160 bytes per block) and pass over the copy in groups of four
 * tokens. The activation sums and scales come from aux (once per matmul) or
 * are computed here. Scratch: those (without aux) and one packed group. */
EM_AVX2 void em_gemm_q4_0_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt, const void *const *x,
                               const void *const *aux, float *const *y, bool cold) {
    (void)cold;
    enum { MAXT = 64 }; /* tokens per call at most (the caller's GEMM_TOKENS) */
    const int64_t nb = n / EM_QK, ng = nr / 8;
    const uint8_t *wb = w;
    const em_block_q8_0 *const *xb = (const em_block_q8_0 *const *)x;
    const bool pack = nt > Q4X8_DIRECT_MAX && ng > 0;
    const size_t per = em_gemm_aux_size_q4_0(n);
    const size_t act = aux ? 0 : (size_t)nt * per;
    const size_t packed = pack ? (size_t)nb * Q4X8_PACK : 0; /* one group */
    uint8_t stack_act[8 * 1024] __attribute__((aligned(32)));
    uint8_t *heap = NULL, *own = stack_act;
    if (nt > MAXT || act > sizeof stack_act || pack) {
        heap = nt > MAXT ? NULL : aligned_alloc(32, (packed + act + 31) & ~(size_t)31);
        if (!heap) { /* no scratch: the single-row kernel gives the same bits */
            for (int t = 0; t < nt; t++)
                for (int64_t r = 0; r < nr; r++) em_dot_q4_0_avx2(n, &y[t][r], wb + (size_t)r * ws, x[t]);
            return;
        }
        own = heap + packed;
    }
    const int32_t *sx8[MAXT];
    const float *dxs[MAXT];
    for (int t = 0; t < nt; t++) {
        const uint8_t *a;
        if (aux) {
            a = aux[t];
        } else {
            uint8_t *m = own + (size_t)t * per;
            em_gemm_aux_q4_0_avx2(n, x[t], m);
            a = m;
        }
        sx8[t] = (const int32_t *)a;
        dxs[t] = (const float *)(a + (size_t)nb * sizeof(int32_t));
    }
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *rows = wb + (size_t)g * 8 * ws;
        if (!pack) {
            q4x8_group(false, nt, nb, rows, ws, NULL, xb, sx8, dxs, y, 8 * g);
            continue;
        }
        /* pack this group; the next group's rows are fetched while it computes
         * (past the last group too: the next call's rows; a prefetch never faults) */
        for (int64_t k = 0; k < nb; k++) {
            __m256i P[4];
            __m256 d;
            q4x8_gather(rows + (size_t)k * sizeof(em_block_q4_0), ws, P, &d);
            for (int q = 0; q < 4; q++) _mm256_store_si256((__m256i *)(heap + (size_t)k * Q4X8_PACK) + q, P[q]);
            _mm256_store_ps((float *)(heap + (size_t)k * Q4X8_PACK + 128), d);
        }
        q4x8_group(true, nt, nb, heap, ws, rows + 8 * ws, xb, sx8, dxs, y, 8 * g);
    }
    for (int64_t r = 8 * ng; r < nr; r++)
        for (int t = 0; t < nt; t++) em_dot_q4_0_avx2(n, &y[t][r], wb + (size_t)r * ws, x[t]);
    free(heap);
}

/* ------------------------------------------------------- Q5_0/Q8_0 tiles
 * RM weight rows x RN activation rows per pass over the blocks, each output
 * with its own 8-lane accumulator that sees exactly the single-row kernel's
 * operations: the same int32 lanes (integer arithmetic is exact whichever
 * way it is grouped), the same float scale d_w * d_x, one FMA per block,
 * the same hsum8. So a tile gives the bits of RM x RN em_dot_*_avx2 calls;
 * what it saves is work: a weight block is decoded once for RN tokens, an
 * activation block is loaded once for RM rows. The formats are signed:
 * ggml's sign trick as in the single-row kernel.
 *
 * The activations are first copied four tokens at a time into one array
 * (x4_blk: the four scales as floats, then the four tokens' quants), so the
 * inner loop walks one pointer instead of four and broadcasts the
 * RM x RN scale products from a small stack array (a load, not an ALU
 * operation). Measured on Zen 3: 10-15% faster than reading the tokens'
 * own blocks, the results bit-identical. */

#define GEMM_MAX_NB 1024 /* activation blocks packed on the stack: cols <= 32768 */

enum { G_Q5_0, G_Q8_0 };

typedef struct {
    float d[4];
    int8_t qs[4][EM_QK];
} x4_blk; /* 144 bytes: block k of four activation rows */

/* Packs block 0..nb-1 of nt <= 4 activation rows; missing rows repeat the
 * last one (their outputs are not stored). */
static EM_AVX2 void pack_x4(int64_t nb, const void *const *x, int nt, x4_blk *out) {
    const em_block_q8_0 *b[4];
    for (int t = 0; t < 4; t++) b[t] = x[t < nt ? t : nt - 1];
    for (int64_t k = 0; k < nb; k++) { /* written in order: one block of the four rows at a time */
        _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++)
            _mm256_storeu_si256((__m256i *)out[k].qs[t], _mm256_loadu_si256((const __m256i *)b[t][k].qs));
        const __m128i d = _mm_setr_epi16((short)b[0][k].d, (short)b[1][k].d, (short)b[2][k].d, (short)b[3][k].d, 0, 0, 0, 0);
        _mm_storeu_ps(out[k].d, _mm_cvtph_ps(d));
    }
}

static inline __attribute__((always_inline)) EM_AVX2 void gemm_tile(const int KIND, const int RM, const int RN,
                                                                   int64_t nb, const uint8_t *w, size_t ws,
                                                                   const x4_blk *xp, float *const *y, int64_t r) {
    const size_t bw = KIND == G_Q5_0 ? sizeof(em_block_q5_0) : sizeof(em_block_q8_0);
    __m256 acc[4][4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < RN; t++) acc[i][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *wr = w + (size_t)r * ws;
    for (int64_t k = 0; k < nb; k++, wr += bw) {
        __m256i qx[4], ux[4];
        float prod[4][4] __attribute__((aligned(16)));
        const __m128 dx4 = _mm_loadu_ps(xp[k].d);
        _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) {
            const uint8_t *blk = wr + (size_t)i * ws;
            if (RM == 1) _mm_prefetch((const char *)blk + EM_PF_DIST, _MM_HINT_T0); /* streaming rows */
            em_f16 d;
            memcpy(&d, blk, sizeof d);
            qx[i] = KIND == G_Q5_0 ? dec_q5_0((const em_block_q5_0 *)blk) : dec_q8_0((const em_block_q8_0 *)blk);
            ux[i] = _mm256_sign_epi8(qx[i], qx[i]);
            _mm_store_ps(prod[i], _mm_mul_ps(_mm_set1_ps(f16f(d)), dx4));
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < RN; t++) {
            const __m256i qy = _mm256_loadu_si256((const __m256i *)xp[k].qs[t]);
            _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) {
                const __m256i p = _mm256_maddubs_epi16(ux[i], _mm256_sign_epi8(qy, qx[i]));
                const __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[i][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(&prod[i][t]), lanes, acc[i][t]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < RN; t++) y[t][r + i] = hsum8(acc[i][t]);
}

/* One activation row (decode): the single-row kernel's per-output
 * operations, one weight row at a time (weights stream from memory here,
 * and one sequential row at a time prefetches best: 2 or 4 rows measured
 * 30-40% slower decode on Zen 3). */
static inline __attribute__((always_inline)) EM_AVX2 void gemv_rows(const int KIND, int64_t nb, int64_t nr,
                                                                   const uint8_t *w, size_t ws, const void *x,
                                                                   float *y) {
    const size_t bw = KIND == G_Q5_0 ? sizeof(em_block_q5_0) : sizeof(em_block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1);
    const em_block_q8_0 *xb = x;
    for (int64_t r = 0; r < nr; r++) {
        __m256 acc = _mm256_setzero_ps();
        const uint8_t *blk = w + (size_t)r * ws;
        for (int64_t k = 0; k < nb; k++, blk += bw) {
            _mm_prefetch((const char *)blk + EM_PF_DIST, _MM_HINT_T0);
            const __m256i qy = _mm256_loadu_si256((const __m256i *)xb[k].qs);
            em_f16 d;
            memcpy(&d, blk, sizeof d);
            const __m256i qx = KIND == G_Q5_0 ? dec_q5_0((const em_block_q5_0 *)blk) : dec_q8_0((const em_block_q8_0 *)blk);
            const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
            const __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(f16f(d) * f16f(xb[k].d)), lanes, acc);
        }
        y[r] = hsum8(acc);
    }
}

/* All nr rows against one packed group of RN tokens: RM rows at a time,
 * the remainder one by one. */
static inline __attribute__((always_inline)) EM_AVX2 void gemm_rows(const int KIND, const int RM, const int RN,
                                                                   int64_t nb, int64_t nr, const uint8_t *w, size_t ws,
                                                                   const x4_blk *xp, float *const *y) {
    int64_t r = 0;
    for (; r + RM <= nr; r += RM) gemm_tile(KIND, RM, RN, nb, w, ws, xp, y, r);
    for (; r < nr; r++) gemm_tile(KIND, 1, RN, nb, w, ws, xp, y, r);
}

/* One packed group of g <= 4 tokens against all rows, RM rows per tile (a
 * constant at each call, so the tile unrolls). */
static inline __attribute__((always_inline)) EM_AVX2 void gemm_group(const int KIND, const int RM, int g, int64_t nb,
                                                                    int64_t nr, const uint8_t *w, size_t ws,
                                                                    const x4_blk *xp, float *const *y) {
    switch (g) {
    case 4: gemm_rows(KIND, RM, 4, nb, nr, w, ws, xp, y); break;
    case 3: gemm_rows(KIND, RM, 3, nb, nr, w, ws, xp, y); break;
    case 2: gemm_rows(KIND, RM, 2, nb, nr, w, ws, xp, y); break;
    default: gemm_rows(KIND, RM, 1, nb, nr, w, ws, xp, y); break;
    }
}

/* RM rows per tile for the main loop (registers: RM x 4 accumulators plus
 * the decoded rows; the signed formats keep two vectors per row). A group
 * of fewer than four tokens runs a narrower tile. When `cold`, the first
 * group streams one row at a time (what streams best from memory); the
 * later groups find the rows in cache. */
#define DEF_GEMM(name, KIND, RM, single)                                                                 \
    EM_AVX2 void em_gemm_##name##_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt,          \
                                       const void *const *x, const void *const *aux, float *const *y,    \
                                       bool cold) {                                                      \
        (void)aux;                                                                                        \
        const int64_t nb = n / EM_QK;                                                                     \
        if (nb > GEMM_MAX_NB) {                                                                           \
            for (int t = 0; t < nt; t++)                                                                  \
                for (int64_t r = 0; r < nr; r++) single(n, &y[t][r], (const uint8_t *)w + (size_t)r * ws, x[t]); \
            return;                                                                                       \
        }                                                                                                 \
        if (nt == 1) {                                                                                    \
            gemv_rows(KIND, nb, nr, w, ws, x[0], y[0]);                                                   \
            return;                                                                                       \
        }                                                                                                 \
        x4_blk xp[GEMM_MAX_NB];                                                                           \
        for (int t0 = 0; t0 < nt; t0 += 4) {                                                              \
            const int g = nt - t0 < 4 ? nt - t0 : 4;                                                      \
            pack_x4(nb, x + t0, g, xp);                                                                   \
            if (cold && t0 == 0) gemm_group(KIND, 1, g, nb, nr, w, ws, xp, y);                            \
            else gemm_group(KIND, RM, g, nb, nr, w, ws, xp, y + t0);                                      \
        }                                                                                                 \
    }

DEF_GEMM(q5_0, G_Q5_0, 2, em_dot_q5_0_avx2)
DEF_GEMM(q8_0, G_Q8_0, 2, em_dot_q8_0_avx2)

#else
typedef int em_quant_avx2_unused; /* keeps the translation unit non-empty */
#endif
