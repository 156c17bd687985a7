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

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define EM_AVX2 __attribute__((target("avx2,fma,f16c")))

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

/* ggml hsum_float_8 */
static inline EM_AVX2 float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline EM_AVX2 int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* F16C conversion (exact, like the table, without its 256 KiB in cache) */
static inline EM_AVX2 float f16f(em_f16 h) { return _cvtsh_ss(h); }

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

/* GCC's _mm512_reduce_add_ps over the 16 lanes (lo = 0..7, hi = 8..15). */
static inline EM_AVX2 float reduce16(__m256 lo, __m256 hi) {
    const __m256 t3 = _mm256_add_ps(hi, lo);
    const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1));
}

/* 4 accumulators of 16 lanes: accumulator r is (c[2r], c[2r+1]); folded
 * 0+2, 1+3, then 0+1, then reduce16 (GGML_F32x16_REDUCE). */
static inline EM_AVX2 float fold4x16(const __m256 c[8]) {
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(c[0], c[4]), _mm256_add_ps(c[2], c[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(c[1], c[5]), _mm256_add_ps(c[3], c[7]));
    return reduce16(lo, hi);
}

EM_AVX2 void em_dot_f32_avx2(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    const int64_t np = n & ~(int64_t)63;
    __m256 c[8];
    for (int k = 0; k < 8; k++) c[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64)
        for (int k = 0; k < 8; k++)
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
    for (int k = 0; k < 8; k++) c[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64)
        for (int k = 0; k < 8; k++) c[k] = _mm256_fmadd_ps(LD(a + i + 8 * k), LD(b + i + 8 * k), c[k]);
#undef LD
    double sum = fold4x16(c);
    for (int64_t i = np; i < n; i++) sum += (double)(em_f16_to_f32(a[i]) * em_f16_to_f32(b[i]));
    *s = (float)sum;
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
DEF_DOT(q4_0, em_block_q4_0, em_block_q8_0, LANES_S, 0)
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

/* ------------------------------------------------------------ gemm tiles
 * RM weight rows x RN activation rows per pass over the blocks, each output
 * with its own 8-lane accumulator that sees exactly the single-row kernel's
 * operations: the same int32 lanes (integer arithmetic is exact whichever
 * way it is grouped), the same float scale d_w * d_x, one FMA per block,
 * the same hsum8. So a tile gives the bits of RM x RN em_dot_*_avx2 calls;
 * what it saves is work: a weight block is decoded once for RN tokens, an
 * activation block is loaded once for RM rows, and the RM x RN scales are
 * four vector multiplies stored to the stack and broadcast from there
 * (a load, not an ALU operation).
 *
 * Q4_0 uses its nibbles unsigned (0..15, the maddubs operand) and subtracts
 * 8 * (pair sums of y), computed once per token; the signed formats use the
 * sign trick of the single-row kernel. */

#define GEMM_MAX_NB 1024 /* activation scales kept on the stack: cols <= 32768 */

enum { G_Q4_0, G_Q5_0, G_Q8_0 };

static inline __attribute__((always_inline)) EM_AVX2 void gemm_tile(const int KIND, const int RM, const int RN,
                                                                   int64_t nb, const uint8_t *w, size_t ws,
                                                                   const void *const *x, const float *dxT,
                                                                   float *const *y, int64_t r) {
    const size_t bw = KIND == G_Q4_0 ? sizeof(em_block_q4_0) : KIND == G_Q5_0 ? sizeof(em_block_q5_0)
                                                                               : sizeof(em_block_q8_0);
    __m256 acc[4][4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < RN; t++) acc[i][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t k = 0; k < nb; k++) {
        __m256i qx[4], ux[4];
        float prod[4][4] __attribute__((aligned(16)));
        const __m128 dx4 = _mm_load_ps(dxT + 4 * k);
        _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) {
            const uint8_t *blk = w + (size_t)(r + i) * ws + (size_t)k * bw;
            if (RM == 1) _mm_prefetch((const char *)blk + EM_PF_DIST, _MM_HINT_T0); /* streaming rows */
            em_f16 d;
            memcpy(&d, blk, sizeof d);
            if (KIND == G_Q4_0) {
                ux[i] = unpack_nibbles(((const em_block_q4_0 *)blk)->qs);
                qx[i] = ux[i];
            } else {
                qx[i] = KIND == G_Q5_0 ? dec_q5_0((const em_block_q5_0 *)blk) : dec_q8_0((const em_block_q8_0 *)blk);
                ux[i] = _mm256_sign_epi8(qx[i], qx[i]);
            }
            _mm_store_ps(prod[i], _mm_mul_ps(_mm_set1_ps(f16f(d)), dx4));
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < RN; t++) {
            const em_block_q8_0 *bt = (const em_block_q8_0 *)x[t] + k;
            const __m256i qy = _mm256_loadu_si256((const __m256i *)bt->qs);
            __m256i c = _mm256_setzero_si256();
            if (KIND == G_Q4_0) c = _mm256_maddubs_epi16(_mm256_set1_epi8(8), qy);
            _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) {
                const __m256i p = KIND == G_Q4_0 ? _mm256_sub_epi16(_mm256_maddubs_epi16(ux[i], qy), c)
                                                 : _mm256_maddubs_epi16(ux[i], _mm256_sign_epi8(qy, qx[i]));
                const __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[i][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(&prod[i][t]), lanes, acc[i][t]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < RN; t++) y[t][r + i] = hsum8(acc[i][t]);
}

/* One activation row (decode): the single-row kernel's per-output
 * operations with fewer instructions (Q4_0: unsigned nibbles and the offset
 * correction instead of two sign operations). Called with RM = 1: weights
 * stream from memory here, and one sequential row at a time prefetches
 * best (RM = 2 or 4 measured 30-40% slower decode on Zen 3). */
static inline __attribute__((always_inline)) EM_AVX2 void gemv_tile(const int KIND, const int RM, int64_t nb,
                                                                   const uint8_t *w, size_t ws, const void *x,
                                                                   float *y, int64_t r) {
    const size_t bw = KIND == G_Q4_0 ? sizeof(em_block_q4_0) : KIND == G_Q5_0 ? sizeof(em_block_q5_0)
                                                                               : sizeof(em_block_q8_0);
    __m256 acc[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) acc[i] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const em_block_q8_0 *xb = x;
    const uint8_t *wr = w + (size_t)r * ws;
    for (int64_t k = 0; k < nb; k++, wr += bw) {
        _mm_prefetch((const char *)wr + EM_PF_DIST, _MM_HINT_T0);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)xb[k].qs);
        const float dx = f16f(xb[k].d);
        __m256i c = _mm256_setzero_si256();
        if (KIND == G_Q4_0) c = _mm256_maddubs_epi16(_mm256_set1_epi8(8), qy);
        _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) {
            const uint8_t *blk = wr + (size_t)i * ws;
            em_f16 d;
            memcpy(&d, blk, sizeof d);
            __m256i p;
            if (KIND == G_Q4_0) {
                p = _mm256_sub_epi16(_mm256_maddubs_epi16(unpack_nibbles(((const em_block_q4_0 *)blk)->qs), qy), c);
            } else {
                const __m256i qx = KIND == G_Q5_0 ? dec_q5_0((const em_block_q5_0 *)blk) : dec_q8_0((const em_block_q8_0 *)blk);
                p = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
            }
            const __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(f16f(d) * dx), lanes, acc[i]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RM; i++) y[r + i] = hsum8(acc[i]);
}

/* All nr rows: RM at a time, the remainder one by one. */
static inline __attribute__((always_inline)) EM_AVX2 void gemm_rows(const int KIND, const int RM, const int RN,
                                                                   int64_t nb, int64_t nr, const uint8_t *w, size_t ws,
                                                                   const void *const *x, const float *dxT,
                                                                   float *const *y) {
    int64_t r = 0;
    for (; r + RM <= nr; r += RM) gemm_tile(KIND, RM, RN, nb, w, ws, x, dxT, y, r);
    for (; r < nr; r++) gemm_tile(KIND, 1, RN, nb, w, ws, x, dxT, y, r);
}

/* RM rows per tile for the main loop (registers: RM x RN accumulators plus
 * the decoded rows; the signed formats keep two vectors per row). */
#define DEF_GEMM(name, KIND, RM, single)                                                                 \
    EM_AVX2 void em_gemm_##name##_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt,          \
                                       const void *const *x, float *const *y, bool cold) {               \
        const int64_t nb = n / EM_QK;                                                                     \
        if (nb > GEMM_MAX_NB || nt < 1 || nt > 4) {                                                       \
            for (int t = 0; t < nt; t++)                                                                  \
                for (int64_t r = 0; r < nr; r++) single(n, &y[t][r], (const uint8_t *)w + (size_t)r * ws, x[t]); \
            return;                                                                                       \
        }                                                                                                 \
        if (nt == 1) {                                                                                    \
            for (int64_t r = 0; r < nr; r++) gemv_tile(KIND, 1, nb, w, ws, x[0], y[0], r);               \
            return;                                                                                       \
        }                                                                                                 \
        float dxT[4 * GEMM_MAX_NB] __attribute__((aligned(32)));                                         \
        for (int64_t k = 0; k < nb; k++)                                                                  \
            for (int t = 0; t < 4; t++)                                                                   \
                dxT[4 * k + t] = t < nt ? f16f(((const em_block_q8_0 *)x[t])[k].d) : 0.0f;                \
        if (cold) { /* one row at a time streams best from memory */                                      \
            switch (nt) {                                                                                 \
            case 4: gemm_rows(KIND, 1, 4, nb, nr, w, ws, x, dxT, y); break;                               \
            case 3: gemm_rows(KIND, 1, 3, nb, nr, w, ws, x, dxT, y); break;                               \
            default: gemm_rows(KIND, 1, 2, nb, nr, w, ws, x, dxT, y); break;                              \
            }                                                                                             \
            return;                                                                                       \
        }                                                                                                 \
        switch (nt) {                                                                                     \
        case 4: gemm_rows(KIND, RM, 4, nb, nr, w, ws, x, dxT, y); break;                                  \
        case 3: gemm_rows(KIND, RM, 3, nb, nr, w, ws, x, dxT, y); break;                                  \
        case 2: gemm_rows(KIND, RM, 2, nb, nr, w, ws, x, dxT, y); break;                                  \
        default: gemm_rows(KIND, RM, 1, nb, nr, w, ws, x, dxT, y); break;                                 \
        }                                                                                                 \
    }

DEF_GEMM(q4_0, G_Q4_0, 3, em_dot_q4_0_avx2)
DEF_GEMM(q5_0, G_Q5_0, 2, em_dot_q5_0_avx2)
DEF_GEMM(q8_0, G_Q8_0, 2, em_dot_q8_0_avx2)

#else
typedef int em_quant_avx2_unused; /* keeps the translation unit non-empty */
#endif
