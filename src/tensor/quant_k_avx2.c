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

#include <math.h>
#include <stdlib.h>

#include "simd_avx2.h"

/* prefetch the lines of one super-block EM_PF_DIST bytes ahead */
static inline __attribute__((always_inline)) EM_AVX2 void pf_block(const void *p, size_t size) {
    pf_span((const char *)p + EM_PF_DIST, size);
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

/* The eight sub-block scales (u[0], u[1] of k4_unpack) as int16, in both
 * 128-bit halves; k4_scale(v, j) then puts scale j in every int16 lane
 * with one shuffle (instead of a byte load, a move to a vector register and
 * a broadcast per scale: the bytes also went through a stack copy that
 * stalled on store forwarding). */
static inline EM_AVX2 __m256i k4_scales16(const uint32_t u[4]) {
    return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[1], (int)u[0])));
}
static inline __attribute__((always_inline)) EM_AVX2 __m256i k4_scale(__m256i sc16, int j) {
    return _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((2 * j + 1) << 8 | 2 * j)));
}

/* 4 int32 lanes of the Q4_K/Q5_K min term (see k4_min_prod in quant_k.c) */
static inline EM_AVX2 __m128i k4_min_prod(const uint32_t u[4], const int16_t bsums[16]) {
    const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]));
    const __m128i q8s = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums), _mm_loadu_si128((const __m128i *)(bsums + 8)));
    return _mm_madd_epi16(mins, q8s);
}

/* ------------------------------------------------------------------ Q4_K
 * Super-block order (quant_k.c em_dot_q4_K): per super-block the exact
 * integers isum (scaled products) and imin (mins x sub-block sums of x),
 * then s = fma(isum, d_w * d_x, s) and m = fma(imin, dmin_w * d_x, m);
 * result s - m. That is the shape of llama.cpp's repacked Q4_K kernels and
 * it lets eight rows share a vector (rows in the 32-bit lanes, no
 * horizontal sums, one FMA per eight outputs); integer sums are exact in
 * any grouping, so every kernel here gives the scalar kernel's bits. */

/* One row against NT (1..4) tokens: ggml's AVX2 loop for the integers,
 * the row's quants and scales decoded once for the NT tokens, each token's
 * integers reduced per super-block (value and min term in one reduction, both
 * FMAs in one 4-lane FMA: lane 0 s, lane 1 m). Streams the row like decode
 * does: for a few tokens this beats packing eight rows (x2 and x4 decode
 * ~25% faster, 1B, 2 threads). */
static inline __attribute__((always_inline)) EM_AVX2 void dotn_q4_K(const int NT, int64_t n, float *s,
                                                                   const void *w, const em_block_q8_K *const *x) {
    const em_block_q4_K *a = w;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m128 acc2[4];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc2[t] = _mm_setzero_ps();
    _Static_assert(offsetof(em_block_q4_K, dmin) == offsetof(em_block_q4_K, d) + 2, "d, dmin adjacent");
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        pf_block(&a[i], sizeof a[i]);
        uint32_t u[4];
        k4_unpack(a[i].scales, u);
        const __m256i sc16 = k4_scales16(u);
        int32_t dm;
        memcpy(&dm, &a[i].d, sizeof dm);
        const __m128 dd0 = _mm_cvtph_ps(_mm_cvtsi32_si128(dm));
        __m256i sumi[4];
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            const __m256i lo = _mm256_and_si256(bits, m4), hi = shr_mask(bits, 4, m4);
            const __m256i sl = k4_scale(sc16, 2 * j), sh = k4_scale(sc16, 2 * j + 1);
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
                const int8_t *qs = x[t][i].qs + 64 * j;
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(lanes(lo, ld(qs), sl), lanes(hi, ld(qs + 32), sh)));
            }
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const __m128i mp = k4_min_prod(u, x[t][i].bsums);
            const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sumi[t]), _mm256_extracti128_si256(sumi[t], 1));
            const __m128i h = _mm_hadd_epi32(s4, mp);
            const __m128 dd = _mm_mul_ps(dd0, _mm_set1_ps(x[t][i].d));
            acc2[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_hadd_epi32(h, h)), dd, acc2[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)
        s[t] = _mm_cvtss_f32(acc2[t]) - _mm_cvtss_f32(_mm_movehdup_ps(acc2[t]));
}

EM_AVX2 void em_dot_q4_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q8_K *xb = x;
    dotn_q4_K(1, n, s, w, &xb);
}

/* Eight rows' super-block packed with the rows in the 32-bit lanes:
 *   p[c][g]  lane i = bytes 32c+4g..32c+4g+3 of row i's quants (low nibbles:
 *            elements 64c+4g.., sub-block 2c; high: 64c+32+4g.., 2c+1)
 *   sc[j]    lane i = scale j of row i, in both 16-bit halves (for madd)
 *   mn[p]    lane i = mins 2p, 2p+1 of row i as two int16
 *   d, dmin  the rows' super-block scales as floats */
#ifndef Q4KX8_T
#define Q4KX8_T 3 /* tokens per pass: 3 measured best on Zen 3 (4 spills registers) */
#endif

typedef struct {
    __m256i p[4][8];
    __m256i sc[8];
    __m256i mn[4];
    __m256 d, dmin;
} q4kx8;

static inline __attribute__((always_inline)) EM_AVX2 void q4kx8_pack(q4kx8 *o, const uint8_t *blk, size_t ws) {
    for (int c = 0; c < 4; c++) {
        __m256i r[8];
        for (int i = 0; i < 8; i++) r[i] = ld(((const em_block_q4_K *)(blk + (size_t)i * ws))->qs + 32 * c);
        __m256i t[8], v[8];
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
        }
        for (int h = 0; h < 8; h += 4) { /* rows h..h+3: v[h + g'] = dword group g' (and g' + 4 in the high lane) */
            v[h + 0] = _mm256_unpacklo_epi64(t[h], t[h + 2]);
            v[h + 1] = _mm256_unpackhi_epi64(t[h], t[h + 2]);
            v[h + 2] = _mm256_unpacklo_epi64(t[h + 1], t[h + 3]);
            v[h + 3] = _mm256_unpackhi_epi64(t[h + 1], t[h + 3]);
        }
        for (int g = 0; g < 4; g++) {
            o->p[c][g] = _mm256_permute2x128_si256(v[g], v[4 + g], 0x20);
            o->p[c][g + 4] = _mm256_permute2x128_si256(v[g], v[4 + g], 0x31);
        }
    }
    /* scales and mins of the eight rows transposed in registers (built
     * through stack arrays, each vector load waited for eight scalar stores
     * to retire: store forwarding cannot merge them) */
    __m128i S[8], M[8];
    em_f16 d16[8], m16[8];
    for (int i = 0; i < 8; i++) {
        const em_block_q4_K *b = (const em_block_q4_K *)(blk + (size_t)i * ws);
        uint32_t u[4];
        k4_unpack(b->scales, u);
        const __m128i r = _mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]);
        S[i] = _mm_cvtepu8_epi16(r);                    /* scales 0..7 as int16 */
        M[i] = _mm_cvtepu8_epi16(_mm_srli_si128(r, 8)); /* mins 0..7 */
        d16[i] = b->d;
        m16[i] = b->dmin;
    }
    __m128i a[8], c[8];
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm_unpacklo_epi16(S[i], S[i + 1]);
        a[i + 1] = _mm_unpackhi_epi16(S[i], S[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) { /* rows h..h+3: c[h + k] = scales 2k, 2k+1 of the four rows */
        c[h + 0] = _mm_unpacklo_epi32(a[h], a[h + 2]);
        c[h + 1] = _mm_unpackhi_epi32(a[h], a[h + 2]);
        c[h + 2] = _mm_unpacklo_epi32(a[h + 1], a[h + 3]);
        c[h + 3] = _mm_unpackhi_epi32(a[h + 1], a[h + 3]);
    }
    for (int k = 0; k < 4; k++) {
        const __m128i t0 = _mm_unpacklo_epi64(c[k], c[4 + k]), t1 = _mm_unpackhi_epi64(c[k], c[4 + k]);
        /* t: scale 2k (2k+1) of rows 0..7 as int16; each in both halves of its row's 32-bit lane */
        o->sc[2 * k] = _mm256_set_m128i(_mm_unpackhi_epi16(t0, t0), _mm_unpacklo_epi16(t0, t0));
        o->sc[2 * k + 1] = _mm256_set_m128i(_mm_unpackhi_epi16(t1, t1), _mm_unpacklo_epi16(t1, t1));
    }
    __m128i e[8];
    for (int i = 0; i < 8; i += 2) {
        e[i] = _mm_unpacklo_epi32(M[i], M[i + 1]);
        e[i + 1] = _mm_unpackhi_epi32(M[i], M[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) { /* reuse c: c[h + q] = min pair q of rows h..h+3 */
        c[h + 0] = _mm_unpacklo_epi64(e[h], e[h + 2]);
        c[h + 1] = _mm_unpackhi_epi64(e[h], e[h + 2]);
        c[h + 2] = _mm_unpacklo_epi64(e[h + 1], e[h + 3]);
        c[h + 3] = _mm_unpackhi_epi64(e[h + 1], e[h + 3]);
    }
    for (int q = 0; q < 4; q++) o->mn[q] = _mm256_set_m128i(c[4 + q], c[q]);
    o->d = _mm256_cvtph_ps(_mm_set_epi16((short)d16[7], (short)d16[6], (short)d16[5], (short)d16[4], (short)d16[3],
                                         (short)d16[2], (short)d16[1], (short)d16[0]));
    o->dmin = _mm256_cvtph_ps(_mm_set_epi16((short)m16[7], (short)m16[6], (short)m16[5], (short)m16[4], (short)m16[3],
                                            (short)m16[2], (short)m16[1], (short)m16[0]));
}

/* One packed super-block against T tokens (x[t]: the token's Q8_K block,
 * bs[t]: its eight sub-block sums as int16). Each 16-bit lane adds eight
 * maddubs pairs of at most 2 * 15 * 128: below 2^15. */
static inline __attribute__((always_inline)) EM_AVX2 void q4kx8_block(const int T, const q4kx8 *o,
                                                                     const em_block_q8_K *const *x,
                                                                     const __m128i *bs, __m256 acc[4],
                                                                     __m256 accm[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i isum[4];
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) { /* sub-block j: low nibbles of chunk j/2 for even j, high for odd */
        const int c = j / 2, sh = 4 * (j & 1);
        __m256i a[4];
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) a[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) {
            const __m256i v = shr_mask(o->p[c][g], sh, m4);
            _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)
                a[t] = _mm256_add_epi16(a[t], _mm256_maddubs_epi16(v, bcast32(x[t]->qs + 32 * j + 4 * g)));
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(a[t], o->sc[j]));
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
        int32_t b4[4];
        memcpy(b4, &bs[t], sizeof b4);
        __m256i im = _mm256_add_epi32(_mm256_madd_epi16(o->mn[0], _mm256_set1_epi32(b4[0])),
                                      _mm256_madd_epi16(o->mn[1], _mm256_set1_epi32(b4[1])));
        im = _mm256_add_epi32(im, _mm256_add_epi32(_mm256_madd_epi16(o->mn[2], _mm256_set1_epi32(b4[2])),
                                                   _mm256_madd_epi16(o->mn[3], _mm256_set1_epi32(b4[3]))));
        const __m256 dx = _mm256_set1_ps(x[t]->d);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(o->d, dx), acc[t]);
        accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(im), _mm256_mul_ps(o->dmin, dx), accm[t]);
    }
}

/* pf: the next group's first row (row i at pf + i * ws), fetched a super-
 * block per step so that its memory time overlaps this group's compute;
 * NULL: nothing to fetch. */
static inline __attribute__((always_inline)) EM_AVX2 void q4kx8_rows(const int T, int64_t nb, const q4kx8 *pk,
                                                                    const em_block_q8_K *const *x, const __m128i *bs,
                                                                    float *const *y, int64_t r, const uint8_t *pf,
                                                                    size_t ws) {
    __m256 acc[4], accm[4];
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) acc[t] = accm[t] = _mm256_setzero_ps();
    const size_t step = nb ? 8 * ws / (size_t)nb : 0;
    for (int64_t k = 0; k < nb; k++) {
        if (pf) pf_span(pf + (size_t)k * step, step); /* the next group: its eight rows are one contiguous run */
        const em_block_q8_K *xk[4];
        __m128i bk[4];
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
            xk[t] = x[t] + k;
            bk[t] = bs[(size_t)t * nb + k];
        }
        q4kx8_block(T, &pk[k], xk, bk, acc, accm);
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) _mm256_storeu_ps(y[t] + r, _mm256_sub_ps(acc[t], accm[t]));
}

/* nr rows x nt tokens. Up to four tokens (decode, a few sequences) stream
 * row by row through the one-row kernels; five or more pack each group of
 * eight rows (1472 bytes
 * per super-block, L1/L2-sized) and pass over the copy four tokens at a
 * time, fetching the next group's rows meanwhile. */
EM_AVX2 void em_gemm_q4_K_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt, const void *const *x,
                               const void *const *aux, float *const *y, bool cold) {
    (void)cold;
    (void)aux;
    const int64_t nb = n / EM_QK_K, ng = nr / 8;
    const uint8_t *wb = w;
    if (nt >= 2 && nt <= 4) { /* a few tokens: stream each row once for all of them */
        const em_block_q8_K *const *xb = (const em_block_q8_K *const *)x;
        for (int64_t r = 0; r < nr; r++) {
            float s4[4];
            const uint8_t *row = wb + (size_t)r * ws;
            switch (nt) {
            case 4: dotn_q4_K(4, n, s4, row, xb); break;
            case 3: dotn_q4_K(3, n, s4, row, xb); break;
            default: dotn_q4_K(2, n, s4, row, xb); break;
            }
            for (int t = 0; t < nt; t++) y[t][r] = s4[t];
        }
        return;
    }
    q4kx8 *pk = NULL;
    __m128i *bs = NULL;
    if (nt > 1 && ng > 0) {
        pk = aligned_alloc(32, (size_t)nb * sizeof *pk);
        bs = aligned_alloc(16, (size_t)nt * (size_t)nb * sizeof *bs);
    }
    if (!pk || !bs) { /* one token, few rows, or no scratch: the same bits row by row */
        free(pk);
        free(bs);
        for (int64_t r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) em_dot_q4_K_avx2(n, &y[t][r], wb + (size_t)r * ws, x[t]);
        return;
    }
    const em_block_q8_K *const *xb = (const em_block_q8_K *const *)x;
    for (int t = 0; t < nt; t++)
        for (int64_t k = 0; k < nb; k++) {
            const int16_t *b16 = xb[t][k].bsums;
            bs[(size_t)t * nb + k] = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)b16),
                                                    _mm_loadu_si128((const __m128i *)(b16 + 8)));
        }
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *rows = wb + (size_t)g * 8 * ws;
        for (int64_t k = 0; k < nb; k++) q4kx8_pack(&pk[k], rows + (size_t)k * sizeof(em_block_q4_K), ws);
        const uint8_t *next = rows + 8 * ws; /* past the last group too: the next call's rows (a prefetch never faults) */
        for (int t0 = 0; t0 < nt; t0 += Q4KX8_T) {
            const int T = nt - t0 < Q4KX8_T ? nt - t0 : Q4KX8_T;
            const __m128i *bt = bs + (size_t)t0 * nb;
            const uint8_t *pf = t0 == 0 ? next : NULL;
            switch (T) {
            case 4: q4kx8_rows(4, nb, pk, xb + t0, bt, y + t0, 8 * g, pf, ws); break;
            case 3: q4kx8_rows(3, nb, pk, xb + t0, bt, y + t0, 8 * g, pf, ws); break;
            case 2: q4kx8_rows(2, nb, pk, xb + t0, bt, y + t0, 8 * g, pf, ws); break;
            default: q4kx8_rows(1, nb, pk, xb + t0, bt, y + t0, 8 * g, pf, ws); break;
            }
        }
    }
    for (int64_t r = 8 * ng; r < nr; r++)
        for (int t = 0; t < nt; t++) em_dot_q4_K_avx2(n, &y[t][r], wb + (size_t)r * ws, x[t]);
    free(pk);
    free(bs);
}

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
        const __m256i sc16 = k4_scales16(u);
        const __m256i hb = ld(a[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            const __m256i bits = ld(a[i].qs + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_and_si256(bit_set(hb, 2 * j), b16));
            const __m256i hi = _mm256_or_si256(shr_mask(bits, 4, m4), _mm256_and_si256(bit_set(hb, 2 * j + 1), b16));
            const __m256i pl = lanes(lo, ld(b[i].qs + 64 * j), k4_scale(sc16, 2 * j));
            const __m256i ph = lanes(hi, ld(b[i].qs + 64 * j + 32), k4_scale(sc16, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc) + summs;
}

/* Q6_K scale pairs: sc16 holds the 16 scales as int16 (0..7 low half,
 * 8..15 high); q6_half(sc16, j) repeats half j in both halves, and
 * q6_pair(h, k) is scale_pair(sc[8j + 2k], sc[8j + 2k + 1]) by one shuffle
 * (scale_pair from the bytes costs a load, a move and two broadcasts). */
static inline __attribute__((always_inline)) EM_AVX2 __m256i q6_half(__m256i sc16, int j) {
    return j == 0 ? _mm256_permute4x64_epi64(sc16, 0x44) : _mm256_permute4x64_epi64(sc16, 0xEE);
}
static inline __attribute__((always_inline)) EM_AVX2 __m256i q6_pair(__m256i half, int k) {
    const __m128i lo = _mm_set1_epi16((short)((4 * k + 1) << 8 | 4 * k)), hi = _mm_set1_epi16((short)((4 * k + 3) << 8 | (4 * k + 2)));
    return _mm256_shuffle_epi8(half, _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
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
        _Pragma("GCC unroll 2") for (int j = 0; j < 2; j++) {
            const __m256i l0 = ld(a[i].ql + 64 * j), l1 = ld(a[i].ql + 64 * j + 32), h = ld(a[i].qh + 32 * j);
            const __m256i half = q6_half(sc16, j);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(shr_mask(h, 2, m3), 4));
            q[2] = _mm256_or_si256(shr_mask(l0, 4, m4), _mm256_slli_epi16(shr_mask(h, 4, m3), 4));
            q[3] = _mm256_or_si256(shr_mask(l1, 4, m4), _mm256_slli_epi16(shr_mask(h, 6, m3), 4));
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                const __m256i y8 = ld(b[i].qs + 128 * j + 32 * k);
                sumi = _mm256_add_epi32(sumi, lanes(q[k], y8, q6_pair(half, k)));
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
        _Pragma("GCC unroll 2") for (int j = 0; j < 2; j++) {
            const __m256i l0 = ld(a[i].ql + 64 * j), l1 = ld(a[i].ql + 64 * j + 32), h = ld(a[i].qh + 32 * j);
            const __m256i half = q6_half(sc16, j);
            __m256i q[4], sp[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(shr_mask(h, 2, m3), 4));
            q[2] = _mm256_or_si256(shr_mask(l0, 4, m4), _mm256_slli_epi16(shr_mask(h, 4, m3), 4));
            q[3] = _mm256_or_si256(shr_mask(l1, 4, m4), _mm256_slli_epi16(shr_mask(h, 6, m3), 4));
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) sp[k] = q6_pair(half, k);
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
