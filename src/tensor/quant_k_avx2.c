/* quant_k_avx2.c - AVX2 + FMA kernels for the K-quants: the dots and the
 * Q8_K activation quantizer. Same operations in the same order as
 * quant_k.c (see there), so the bits are identical: the integer lanes are
 * exact (maddubs pairs stay far below int16 saturation for these formats:
 * |q| <= 63, |x| <= 128), the float steps are the same FMAs and sums. Each
 * function carries a target attribute; types.c calls them only after
 * checking the CPU. */
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

/* F16C conversion (exact, like the table, without its 256 KiB in cache) */
static inline EM_AVX2 float f16f(em_f16 h) { return _cvtsh_ss(h); }

/* prefetch the lines of one super-block EM_PF_DIST bytes ahead */
static inline EM_AVX2 void pf_block(const void *p, size_t size) {
    for (size_t o = 0; o < size; o += 64) _mm_prefetch((const char *)p + EM_PF_DIST + o, _MM_HINT_T0);
}

/* ggml hsum_float_8 */
static inline EM_AVX2 float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* int16 scale a for the low 16 bytes (elements 0..15 of a chunk), b for
 * the high 16 */
static inline EM_AVX2 __m256i scale_pair(int a, int b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)a)), _mm_set1_epi16((short)b), 1);
}

/* 8 int32 lanes: lane l = sc * sum of u[e] * x[e] over bytes 4l..4l+3 */
static inline EM_AVX2 __m256i lanes(__m256i u, __m256i x, __m256i sc) {
    return _mm256_madd_epi16(sc, _mm256_maddubs_epi16(u, x));
}

static inline EM_AVX2 __m256i ld(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* bits v >> sh of every byte, masked (shift done on 16-bit lanes, so the
 * mask must drop what crosses from the neighbouring byte) */
static inline EM_AVX2 __m256i shr_mask(__m256i v, int sh, __m256i mask) {
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(sh)), mask);
}

/* 0xFF in every byte of v that has bit `bit` set */
static inline EM_AVX2 __m256i bit_set(__m256i v, int bit) {
    const __m256i m = _mm256_set1_epi8((char)(1 << bit));
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m);
}

/* ------------------------------------------------------------------- Q8_K */

/* quantize_row_q8_K_ref, vectorized: same amax (NaN ignored: vmaxps returns
 * its second operand, the running maximum, when the first is NaN), same
 * signed max (first element of that magnitude), same nearest_int bit trick,
 * same cap at 127 and truncation to int8. */
EM_AVX2 void em_from_f32_q8_K_avx2(const float *src, void *dst, int64_t n) {
    em_block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / EM_QK_K; i++, src += EM_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < EM_QK_K; k += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(src + k)), m);
        float lanes_max[8], amax = 0.0f;
        _mm256_storeu_ps(lanes_max, m);
        for (int l = 0; l < 8; l++)
            if (lanes_max[l] > amax) amax = lanes_max[l];
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m256 va = _mm256_set1_ps(amax);
        float max = 0.0f;
        for (int k = 0; k < EM_QK_K; k += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(src + k)), va, _CMP_EQ_OQ));
            if (hit) {
                max = src[k + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.0f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), off = _mm256_set1_epi32(0x00400000);
        const __m256i cap = _mm256_set1_epi32(127), low8 = _mm256_set1_epi32(0xFF);
        const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (int k = 0; k < EM_QK_K; k += 32) {
            __m256i q[4];
            for (int t = 0; t < 4; t++) {
                const __m256 v = _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(src + k + 8 * t)), magic);
                __m256i iv = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mant), off);
                iv = _mm256_min_epi32(iv, cap);
                q[t] = _mm256_and_si256(iv, low8); /* the int8 truncation, as 0..255 */
            }
            const __m256i a = _mm256_packus_epi32(q[0], q[1]); /* exact: values < 256 */
            const __m256i b = _mm256_packus_epi32(q[2], q[3]);
            const __m256i c = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), perm);
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), c);
        }
        /* bsums: sums of 16 int8 (maddubs with ones gives pair sums, madd
         * quads; then the two quads of each 16-group are added) */
        const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
        for (int k = 0; k < EM_QK_K; k += 64) {
            const __m256i s0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, ld(y[i].qs + k)), ones16);
            const __m256i s1 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, ld(y[i].qs + k + 32)), ones16);
            /* s0 lanes 0-3: group k/16, lanes 4-7: group k/16+1; s1 likewise */
            __m256i h = _mm256_hadd_epi32(s0, s1); /* [g0 g0 g2 g2 | g1 g1 g3 g3] pairs */
            h = _mm256_hadd_epi32(h, h);           /* [g0 g2 g0 g2 | g1 g3 g1 g3] */
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, h);
            y[i].bsums[k / 16 + 0] = (int16_t)t[0];
            y[i].bsums[k / 16 + 1] = (int16_t)t[4];
            y[i].bsums[k / 16 + 2] = (int16_t)t[1];
            y[i].bsums[k / 16 + 3] = (int16_t)t[5];
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------------- dots */

EM_AVX2 void em_dot_q2_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q2_K *a = w;
    const em_block_q8_K *b = x;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float d = b[i].d * f16f(a[i].d);
        const float dmin = -b[i].d * f16f(a[i].dmin);
        const __m128i sm = _mm_loadu_si128((const __m128i *)a[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), m4));
        const __m256i prod = _mm256_madd_epi16(mins, ld(b[i].bsums));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        const uint8_t *sc = a[i].scales;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            for (int k = 0; k < 4; k++) {
                const int is = 8 * j + 2 * k;
                const __m256i q = shr_mask(bits, 2 * k, m3);
                const __m256i y8 = ld(b[i].qs + 128 * j + 32 * k);
                sumi = _mm256_add_epi32(sumi, lanes(q, y8, scale_pair(sc[is] & 0x0F, sc[is + 1] & 0x0F)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc);
}

EM_AVX2 void em_dot_q3_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q3_K *a = w;
    const em_block_q8_K *b = x;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float d = b[i].d * f16f(a[i].d);
        int8_t sc[16];
        em_q3k_scales(a[i].scales, sc);
        const __m256i hm = ld(a[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            for (int k = 0; k < 4; k++) {
                const int is = 8 * j + 2 * k;
                const __m256i lo = shr_mask(bits, 2 * k, m3);
                const __m256i sub = _mm256_andnot_si256(bit_set(hm, 4 * j + k), four); /* 4 where the high bit is clear */
                const __m256i y8 = ld(b[i].qs + 128 * j + 32 * k);
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(lo, y8), _mm256_maddubs_epi16(sub, y8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair(sc[is], sc[is + 1]), p16));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc);
}

/* Q4_K/Q5_K 12-byte scales -> scales in bytes 0..7 (u[0], u[1]), mins in
 * bytes 8..15 (u[2], u[3]), as em_k4_scale_min decodes them. */
static inline void k4_unpack(const uint8_t s[12], uint32_t u[4]) {
    const uint32_t km1 = 0x3f3f3f3f, km2 = 0x0f0f0f0f, km3 = 0x03030303;
    memcpy(u, s, 12);
    u[3] = ((u[2] >> 4) & km2) | (((u[1] >> 6) & km3) << 4);
    const uint32_t mins_lo = u[1] & km1;
    u[1] = (u[2] & km2) | (((u[0] >> 6) & km3) << 4);
    u[2] = mins_lo;
    u[0] &= km1;
}

/* 4 int32 lanes of the Q4_K/Q5_K min term (see k4_min_prod in quant_k.c) */
static inline EM_AVX2 __m128i k4_min_prod(const uint32_t u[4], const int16_t bsums[16]) {
    const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]));
    const __m128i q8s = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums), _mm_loadu_si128((const __m128i *)(bsums + 8)));
    return _mm_madd_epi16(mins, q8s);
}

EM_AVX2 void em_dot_q4_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q4_K *a = w;
    const em_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float d = b[i].d * f16f(a[i].d);
        const float dmin = -b[i].d * f16f(a[i].dmin);
        uint32_t u[4];
        k4_unpack(a[i].scales, u);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_min_prod(u, b[i].bsums)), acc_m);
        uint8_t sc[8];
        memcpy(sc, u, 8);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            const __m256i lo = _mm256_and_si256(bits, m4), hi = shr_mask(bits, 4, m4);
            const __m256i pl = lanes(lo, ld(b[i].qs + 64 * j), _mm256_set1_epi16(sc[2 * j]));
            const __m256i ph = lanes(hi, ld(b[i].qs + 64 * j + 32), _mm256_set1_epi16(sc[2 * j + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
    *s = hsum8(acc) + _mm_cvtss_f32(acc_m);
}

/* One Q4_K row against four Q8_K rows: the 4-bit weights and the scales are
 * unpacked once, and each output repeats em_dot_q4_K_avx2's exact operations
 * (bit-identical results). */
static inline __attribute__((always_inline)) EM_AVX2 void dotn_q4_K(const int NT, int64_t n, float *s, const void *w,
                                                                       const void *const *x) {
    const em_block_q4_K *a = w;
    const em_block_q8_K *bb[4] = {x[0], x[1], NT > 2 ? x[2] : x[0], NT > 3 ? x[3] : x[0]};
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4];
    __m128 acc_m[4];
    for (int t = 0; t < NT; t++) {
        acc[t] = _mm256_setzero_ps();
        acc_m[t] = _mm_setzero_ps();
    }
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float ad = f16f(a[i].d), admin = f16f(a[i].dmin);
        uint32_t u[4];
        k4_unpack(a[i].scales, u);
        uint8_t sc[8];
        memcpy(sc, u, 8);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const float dmin = -bb[t][i].d * admin;
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_min_prod(u, bb[t][i].bsums)), acc_m[t]);
        }
        /* 32 quants (low and high nibbles) at a time, all four tokens */
        __m256i sumi[4];
        for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            const __m256i lo = _mm256_and_si256(bits, m4), hi = shr_mask(bits, 4, m4);
            const __m256i sl = _mm256_set1_epi16(sc[2 * j]), sh = _mm256_set1_epi16(sc[2 * j + 1]);
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
                const int8_t *qs = bb[t][i].qs + 64 * j;
                const __m256i pl = lanes(lo, ld(qs), sl), ph = lanes(hi, ld(qs + 32), sh);
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(pl, ph));
            }
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const float d = bb[t][i].d * ad;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) {
        __m128 m = acc_m[t];
        m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        s[t] = hsum8(acc[t]) + _mm_cvtss_f32(m);
    }
}
EM_AVX2 void em_dot4_q4_K_avx2(int64_t n, float *s, const void *w, const void *const *x) { dotn_q4_K(4, n, s, w, x); }
EM_AVX2 void em_dot2_q4_K_avx2(int64_t n, float *s, const void *w, const void *const *x) { dotn_q4_K(2, n, s, w, x); }

EM_AVX2 void em_dot_q5_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q5_K *a = w;
    const em_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float d = b[i].d * f16f(a[i].d);
        const float dmin = -b[i].d * f16f(a[i].dmin);
        uint32_t u[4];
        k4_unpack(a[i].scales, u);
        __m128i p = k4_min_prod(u, b[i].bsums);
        p = _mm_hadd_epi32(_mm_hadd_epi32(p, _mm_setzero_si128()), _mm_setzero_si128());
        summs = fmaf(dmin, (float)_mm_cvtsi128_si32(p), summs);
        uint8_t sc[8];
        memcpy(sc, u, 8);
        const __m256i hb = ld(a[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_and_si256(bit_set(hb, 2 * j), b16));
            const __m256i hi = _mm256_or_si256(shr_mask(bits, 4, m4), _mm256_and_si256(bit_set(hb, 2 * j + 1), b16));
            const __m256i pl = lanes(lo, ld(b[i].qs + 64 * j), _mm256_set1_epi16(sc[2 * j]));
            const __m256i ph = lanes(hi, ld(b[i].qs + 64 * j + 32), _mm256_set1_epi16(sc[2 * j + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc) + summs;
}

EM_AVX2 void em_dot_q6_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q6_K *a = w;
    const em_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float d = b[i].d * f16f(a[i].d);
        const int8_t *sc = a[i].scales;
        /* the -32 offset per lane: 32 * (bsums . scales) pairwise */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(ld(b[i].bsums), sc16), 5);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++) {
            const __m256i l0 = ld(a[i].ql + 64 * j), l1 = ld(a[i].ql + 64 * j + 32), h = ld(a[i].qh + 32 * j);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(shr_mask(h, 2, m3), 4));
            q[2] = _mm256_or_si256(shr_mask(l0, 4, m4), _mm256_slli_epi16(shr_mask(h, 4, m3), 4));
            q[3] = _mm256_or_si256(shr_mask(l1, 4, m4), _mm256_slli_epi16(shr_mask(h, 6, m3), 4));
            for (int k = 0; k < 4; k++) {
                const int is = 8 * j + 2 * k;
                const __m256i y8 = ld(b[i].qs + 128 * j + 32 * k);
                sumi = _mm256_add_epi32(sumi, lanes(q[k], y8, scale_pair(sc[is], sc[is + 1])));
            }
        }
        sumi = _mm256_sub_epi32(sumi, off);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc);
}

/* Q6_K against four Q8_K rows: the weight quants and scale pairs are
 * unpacked once for the four, each output repeats em_dot_q6_K_avx2's
 * operations (integer sums exact in any grouping, one FMA per super-block),
 * so the results are bit-identical. */
static inline __attribute__((always_inline)) EM_AVX2 void dotn_q6_K(const int NT, int64_t n, float *s, const void *w,
                                                                       const void *const *x) {
    const em_block_q6_K *a = w;
    const em_block_q8_K *bb[4] = {x[0], x[1], NT > 2 ? x[2] : x[0], NT > 3 ? x[3] : x[0]};
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        const float ad = f16f(a[i].d);
        const int8_t *sc = a[i].scales;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i sumi[4];
        for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++) {
            const __m256i l0 = ld(a[i].ql + 64 * j), l1 = ld(a[i].ql + 64 * j + 32), h = ld(a[i].qh + 32 * j);
            __m256i q[4], sp[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(shr_mask(h, 2, m3), 4));
            q[2] = _mm256_or_si256(shr_mask(l0, 4, m4), _mm256_slli_epi16(shr_mask(h, 4, m3), 4));
            q[3] = _mm256_or_si256(shr_mask(l1, 4, m4), _mm256_slli_epi16(shr_mask(h, 6, m3), 4));
            for (int k = 0; k < 4; k++) sp[k] = scale_pair(sc[8 * j + 2 * k], sc[8 * j + 2 * k + 1]);
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
                const int8_t *qs = bb[t][i].qs + 128 * j;
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)
                    sumi[t] = _mm256_add_epi32(sumi[t], lanes(q[k], ld(qs + 32 * k), sp[k]));
            }
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const em_block_q8_K *b = bb[t];
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(ld(b[i].bsums), sc16), 5);
            const float d = b[i].d * ad;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[t], off)), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) s[t] = hsum8(acc[t]);
}
EM_AVX2 void em_dot4_q6_K_avx2(int64_t n, float *s, const void *w, const void *const *x) { dotn_q6_K(4, n, s, w, x); }
EM_AVX2 void em_dot2_q6_K_avx2(int64_t n, float *s, const void *w, const void *const *x) { dotn_q6_K(2, n, s, w, x); }

#else
typedef int em_quant_k_avx2_unused; /* keeps the translation unit non-empty */
#endif
