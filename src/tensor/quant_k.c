/* quant_k.c - the K-quant formats (Q2_K..Q6_K weights, Q8_K activations),
 * portable reference kernels.
 *
 * Numerics are those of the llama.cpp build behind ../shared/oracle
 * (x86-64, -march=native with AVX-512, 1 thread, no repacking):
 *  - to_f32 is ggml's dequantize_row_qX_K (ggml-base, compiled without
 *    -march=native, so d*q - m is a rounded multiply then a rounded
 *    subtract: contraction is off in this file);
 *  - the Q8_K activation quantizer is quantize_row_q8_K_ref (the x86 CPU
 *    backend has no SIMD version of it);
 *  - the weight quantizers are quantize_row_qX_K_ref, what llama-quantize
 *    runs without an importance matrix;
 *  - the dots follow ggml's __AVX2__ ggml_vec_dot_qX_K_q8_K (the build has
 *    no AVX-512 variant of them; Q6_K in its form after llama.cpp PR
 *    #22345, which the prompt logits confirm): per super-block, eight int32
 *    lanes, lane l holding the exact sum over the 32-element chunks c of
 *    scale(sub-block) * sum_{e<4} w[32c+4l+e] * x[32c+4l+e]; then per block
 *    acc[l] = fma(d, lane[l], acc[l]) with d = d_x * d_w, the min terms as
 *    ggml combines them (see each dot), and hsum_float_8 at the end. The
 *    integer parts are exact, so any way of computing them gives the same
 *    bits; only the float steps and their order matter. quant_k_avx2.c
 *    computes the same steps with AVX2 and gives identical bits. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "quant.h"
#include "types.h"

/* ---------------------------------------------------------------- helpers */

/* ggml's nearest_int: round half to even through the 1.5 * 2^23 trick (exact
 * for |v| < 2^22; the same garbage as ggml beyond). */
static inline int nearest_int(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ggml's hsum_float_8 */
static inline float hsum8(const float a[8]) {
    float r[4];
    for (int k = 0; k < 4; k++) r[k] = a[4 + k] + a[k];
    return (r[0] + r[2]) + (r[1] + r[3]);
}

/* ---------------------------------------------------- integer decoders
 * The 256 integer weight values of a super-block in element order, as the
 * dots use them (Q3_K/Q6_K offsets applied, Q2_K/Q4_K/Q5_K unsigned). */

static void dec_q2_K(const em_block_q2_K *b, int8_t w[256]) {
    for (int j = 0; j < 2; j++)          /* 128-element halves */
        for (int k = 0; k < 4; k++)      /* 2-bit planes */
            for (int e = 0; e < 32; e++) w[128 * j + 32 * k + e] = (int8_t)((b->qs[32 * j + e] >> (2 * k)) & 3);
}

static void dec_q3_K(const em_block_q3_K *b, int8_t w[256]) {
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 4; k++)
            for (int e = 0; e < 32; e++) {
                const int lo = (b->qs[32 * j + e] >> (2 * k)) & 3;
                const int hi = (b->hmask[e] >> (4 * j + k)) & 1;
                w[128 * j + 32 * k + e] = (int8_t)(lo - (hi ? 0 : 4));
            }
}

static void dec_q4_K(const em_block_q4_K *b, int8_t w[256]) {
    for (int j = 0; j < 4; j++)
        for (int e = 0; e < 32; e++) {
            w[64 * j + e] = (int8_t)(b->qs[32 * j + e] & 0x0F);
            w[64 * j + 32 + e] = (int8_t)(b->qs[32 * j + e] >> 4);
        }
}

static void dec_q5_K(const em_block_q5_K *b, int8_t w[256]) {
    for (int j = 0; j < 4; j++)
        for (int e = 0; e < 32; e++) {
            w[64 * j + e] = (int8_t)((b->qs[32 * j + e] & 0x0F) | (((b->qh[e] >> (2 * j)) & 1) << 4));
            w[64 * j + 32 + e] = (int8_t)((b->qs[32 * j + e] >> 4) | (((b->qh[e] >> (2 * j + 1)) & 1) << 4));
        }
}

/* Q6_K levels 0..63 minus `offset` (32 for the signed values, 0 for the
 * unsigned ones the dot multiplies). */
static void dec_q6_K(const em_block_q6_K *b, int8_t w[256], int offset) {
    for (int j = 0; j < 2; j++) {
        const uint8_t *ql = b->ql + 64 * j, *qh = b->qh + 32 * j;
        int8_t *o = w + 128 * j;
        for (int e = 0; e < 32; e++) {
            o[e] = (int8_t)(((ql[e] & 0x0F) | (((qh[e] >> 0) & 3) << 4)) - offset);
            o[e + 32] = (int8_t)(((ql[e + 32] & 0x0F) | (((qh[e] >> 2) & 3) << 4)) - offset);
            o[e + 64] = (int8_t)(((ql[e] >> 4) | (((qh[e] >> 4) & 3) << 4)) - offset);
            o[e + 96] = (int8_t)(((ql[e + 32] >> 4) | (((qh[e] >> 6) & 3) << 4)) - offset);
        }
    }
}

/* Scale of each 16-element sub-block (Q4_K/Q5_K: each 32-scale twice). */
static void k4_scales16(const uint8_t s[12], int16_t sc16[16], uint8_t mins[8]) {
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        em_k4_scale_min(j, s, &sc, &m);
        sc16[2 * j] = sc16[2 * j + 1] = sc;
        mins[j] = m;
    }
}

/* The eight int32 lanes of one super-block (see the file comment). */
static void k_lanes(int32_t lane[8], const int8_t w[256], const int8_t q8[256], const int16_t sc16[16]) {
    for (int l = 0; l < 8; l++) lane[l] = 0;
    for (int c = 0; c < 8; c++)
        for (int l = 0; l < 8; l++) {
            const int base = 32 * c + 4 * l;
            int32_t p = 0;
            for (int e = 0; e < 4; e++) p += w[base + e] * q8[base + e];
            lane[l] += sc16[base / 16] * p;
        }
}

/* ------------------------------------------------------------------ to_f32 */

void em_to_f32_q2_K(const void *src, float *dst, int64_t n) {
    const em_block_q2_K *b = src;
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = em_f16_to_f32(b[i].d), min = em_f16_to_f32(b[i].dmin);
        int8_t w[256];
        dec_q2_K(&b[i], w);
        for (int j = 0; j < 16; j++) {
            const float dl = d * (float)(b[i].scales[j] & 0x0F), ml = min * (float)(b[i].scales[j] >> 4);
            for (int e = 0; e < 16; e++) *dst++ = dl * (float)w[16 * j + e] - ml;
        }
    }
}

void em_to_f32_q3_K(const void *src, float *dst, int64_t n) {
    const em_block_q3_K *b = src;
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = em_f16_to_f32(b[i].d);
        int8_t w[256], sc[16];
        dec_q3_K(&b[i], w);
        em_q3k_scales(b[i].scales, sc);
        for (int j = 0; j < 16; j++) {
            const float dl = d * (float)sc[j];
            for (int e = 0; e < 16; e++) *dst++ = dl * (float)w[16 * j + e];
        }
    }
}

void em_to_f32_q4_K(const void *src, float *dst, int64_t n) {
    const em_block_q4_K *b = src;
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = em_f16_to_f32(b[i].d), min = em_f16_to_f32(b[i].dmin);
        int8_t w[256];
        dec_q4_K(&b[i], w);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            em_k4_scale_min(j, b[i].scales, &sc, &m);
            const float dl = d * (float)sc, ml = min * (float)m;
            for (int e = 0; e < 32; e++) *dst++ = dl * (float)w[32 * j + e] - ml;
        }
    }
}

void em_to_f32_q5_K(const void *src, float *dst, int64_t n) {
    const em_block_q5_K *b = src;
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = em_f16_to_f32(b[i].d), min = em_f16_to_f32(b[i].dmin);
        int8_t w[256];
        dec_q5_K(&b[i], w);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            em_k4_scale_min(j, b[i].scales, &sc, &m);
            const float dl = d * (float)sc, ml = min * (float)m;
            for (int e = 0; e < 32; e++) *dst++ = dl * (float)w[32 * j + e] - ml;
        }
    }
}

/* ggml: y = d * sc * q, i.e. (d * sc) * q */
void em_to_f32_q6_K(const void *src, float *dst, int64_t n) {
    const em_block_q6_K *b = src;
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = em_f16_to_f32(b[i].d);
        int8_t w[256];
        dec_q6_K(&b[i], w, 32);
        for (int j = 0; j < 16; j++) {
            const float dl = d * (float)b[i].scales[j];
            for (int e = 0; e < 16; e++) *dst++ = dl * (float)w[16 * j + e];
        }
    }
}

void em_to_f32_q8_K(const void *src, float *dst, int64_t n) {
    const em_block_q8_K *b = src;
    for (int64_t i = 0; i < n / EM_QK_K; i++)
        for (int j = 0; j < EM_QK_K; j++) *dst++ = b[i].d * (float)b[i].qs[j];
}

/* ------------------------------------------------- Q8_K activation format */

/* quantize_row_q8_K_ref: scale from the signed element of largest
 * magnitude (first one on ties), iscale = -127/max, q = nearest_int(iscale
 * * x) capped at 127, d = 1/iscale. An all-zero block gets d = 0 and zero
 * quants; its bsums (which ggml leaves as they were) are zeroed here. */
void em_from_f32_q8_K(const float *src, void *dst, int64_t n) {
    em_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / EM_QK_K; i++, src += EM_QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < EM_QK_K; j++) {
            const float ax = fabsf(src[j]);
            if (ax > amax) {
                amax = ax;
                max = src[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < EM_QK_K; j++) y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * src[j]));
        for (int j = 0; j < EM_QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += y[i].qs[16 * j + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------- weight quantizers
 * Ports of ggml's reference quantizers, operation for operation (ggml-base
 * is built without FMA, so no contraction here either).
 *
 * The searches (make_qx_quants, make_qkx2_quants) run once per sub-block and
 * the sub-blocks are independent, so they run QK_LANES (8) at a time, one
 * sub-block per lane of an 8-float vector (GCC/clang vector extensions):
 * half the 16 sub-blocks of a Q2_K/Q6_K super-block, or the 8 of a
 * Q4_K/Q5_K one. Each lane performs exactly the scalar operations of the
 * reference in the reference's order (sequential sums, no reassociation, no
 * contraction; branches become per-lane selects of values computed either
 * way), so the bytes are those of llama-quantize. (4-6x faster than the
 * scalar loop: ~20 s instead of ~2 min for a Llama-3.2-1B Q4_K_M.) On x86 the row functions
 * are compiled twice, for AVX2 and for the baseline ISA, and chosen at run
 * time; both give the same bytes (tests/test_quant_ref.c checks this against
 * a line-by-line scalar port). */

#define GROUP_MAX_EPS 1e-15f

/* One AVX2 register (two SSE ones) per value. The code also works with 16
 * lanes (two Q4_K blocks per pass), but GCC lowers 64-byte vectors without
 * AVX-512 poorly (spills): 4x slower, measured. */
#define QK_LANES 8
typedef float vfl __attribute__((vector_size(4 * QK_LANES)));
typedef int32_t vil __attribute__((vector_size(4 * QK_LANES)));

/* Lane helpers are macros and the lane functions take vectors by pointer
 * (and are inlined into the ISA-specific row functions): no 32-byte vector
 * crosses a call boundary, so GCC's -Wpsabi note about their ABI without AVX
 * does not arise. */
#define QK_INLINE static inline __attribute__((always_inline))
#define VF_SET(a) ((vfl){0} + (float)(a))
#define VI_SET(a) ((vil){0} + (int32_t)(a))
/* m ? a : b per lane (m is 0 or -1 per lane, as vector compares give) */
#define VF_SEL(m, a, b) ((vfl)(((vil)(a) & (m)) | ((vil)(b) & ~(m))))
#define VI_SEL(m, a, b) (((a) & (m)) | ((b) & ~(m)))
#define VF_ABS(a) ((vfl)((vil)(a) & VI_SET(0x7fffffff)))
#define VF_CVT(a) __builtin_convertvector((a), vfl)
/* nearest_int, lane-wise */
#define VI_NINT(v) (((vil)((v) + VF_SET(12582912.0f)) & VI_SET(0x007fffff)) - VI_SET(0x00400000))
/* imax(lo, imin(hi, l)) */
#define VI_CLAMP(l, lo, hi)                                                                         \
    __extension__({                                                                                 \
        const vil h_ = VI_SET(hi), o_ = VI_SET(lo);                                                 \
        vil c_ = (l);                                                                               \
        c_ = VI_SEL(h_ < c_, h_, c_);                                                               \
        VI_SEL(c_ > o_, c_, o_);                                                                    \
    })
#define VF_LOAD(p)                                                                                  \
    __extension__({                                                                                 \
        vfl v_;                                                                                     \
        memcpy(&v_, (p), sizeof v_);                                                                \
        v_;                                                                                         \
    })

QK_INLINE int vi_any(const vil *m) {
    int r = 0;
    for (int j = 0; j < QK_LANES; j++) r |= (*m)[j];
    return r != 0;
}

/* make_qx_quants with rmse_type 1 and no importance weights (w = x^2), on
 * QK_LANES sub-blocks of n elements: x[i] lane j is element i of sub-block j;
 * L[i] gets its level (0..2*nmax-1). *scale_out gets the scales. */
QK_INLINE void qx_quants_lanes(int n, int nmax, const vfl *x, vil *L, vfl *scale_out) {
    vfl max = VF_SET(0), amax = VF_SET(0);
    for (int i = 0; i < n; ++i) {
        const vfl ax = VF_ABS(x[i]);
        const vil gt = ax > amax;
        amax = VF_SEL(gt, ax, amax);
        max = VF_SEL(gt, x[i], max);
    }
    const vil tiny = amax < VF_SET(GROUP_MAX_EPS);
    vfl iscale = VF_SET((float)-nmax) / max;
    vfl sumlx = VF_SET(0), suml2 = VF_SET(0);
    for (int i = 0; i < n; ++i) {
        const vil l = VI_CLAMP(VI_NINT(iscale * x[i]), -nmax, nmax - 1);
        L[i] = l + VI_SET(nmax);
        const vfl w = x[i] * x[i], fl = VF_CVT(l);
        sumlx = sumlx + w * x[i] * fl;
        suml2 = suml2 + w * fl * fl;
    }
    vfl scale = VF_SEL(suml2 != VF_SET(0), sumlx / suml2, VF_SET(0));
    vfl best = scale * sumlx;
    vil Lt[32];
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = VF_SET(-((float)nmax + 0.1f * (float)is)) / max;
        sumlx = suml2 = VF_SET(0);
        for (int i = 0; i < n; ++i) {
            const vil l = VI_CLAMP(VI_NINT(iscale * x[i]), -nmax, nmax - 1);
            Lt[i] = l;
            const vfl w = x[i] * x[i], fl = VF_CVT(l);
            sumlx = sumlx + w * x[i] * fl;
            suml2 = suml2 + w * fl * fl;
        }
        const vil upd = (suml2 > VF_SET(0)) & (sumlx * sumlx > best * suml2);
        if (!vi_any(&upd)) continue;
        for (int i = 0; i < n; ++i) L[i] = VI_SEL(upd, Lt[i] + VI_SET(nmax), L[i]);
        scale = VF_SEL(upd, sumlx / suml2, scale);
        best = VF_SEL(upd, scale * sumlx, best);
    }
    for (int i = 0; i < n; ++i) L[i] = VI_SEL(tiny, VI_SET(0), L[i]);
    *scale_out = VF_SEL(tiny, VF_SET(0), scale);
}

/* make_qkx2_quants on QK_LANES sub-blocks of n elements (x[i], w[i] lane j:
 * element i of sub-block j); L[i] gets the levels, *the_min the negated
 * mins, *scale_out the scales. */
QK_INLINE void qkx2_quants_lanes(int n, int nmax, const vfl *x, const vfl *weights, vil *L, vfl *scale_out,
                               vfl *the_min, float rmin, float rdelta, int nstep, bool use_mad) {
    vfl min = x[0], max = x[0];
    vfl sum_w = weights[0];
    vfl sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        min = VF_SEL(x[i] < min, x[i], min);
        max = VF_SEL(x[i] > max, x[i], max);
        const vfl w = weights[i];
        sum_w = sum_w + w;
        sum_x = sum_x + w * x[i];
    }
    min = VF_SEL(min > VF_SET(0), VF_SET(0), min);
    const vil flat = max == min;
    const vfl flat_min = min;
    vfl iscale = VF_SET((float)nmax) / (max - min);
    vfl scale = VF_SET(1) / iscale;
    vfl best_error = VF_SET(0);
    for (int i = 0; i < n; ++i) {
        const vil l = VI_CLAMP(VI_NINT(iscale * (x[i] - min)), 0, nmax);
        L[i] = l;
        vfl diff = scale * VF_CVT(l) + min - x[i];
        diff = use_mad ? VF_ABS(diff) : diff * diff;
        best_error = best_error + weights[i] * diff;
    }
    if (nstep >= 1) {
        vil Laux[32];
        for (int is = 0; is <= nstep; ++is) {
            iscale = VF_SET(rmin + rdelta * (float)is + (float)nmax) / (max - min);
            vfl sum_l = VF_SET(0), sum_l2 = VF_SET(0), sum_xl = VF_SET(0);
            for (int i = 0; i < n; ++i) {
                const vil l = VI_CLAMP(VI_NINT(iscale * (x[i] - min)), 0, nmax);
                Laux[i] = l;
                const vfl w = weights[i], fl = VF_CVT(l);
                sum_l = sum_l + w * fl;
                sum_l2 = sum_l2 + w * fl * fl;
                sum_xl = sum_xl + w * fl * x[i];
            }
            const vfl D = sum_w * sum_l2 - sum_l * sum_l;
            const vil dpos = D > VF_SET(0);
            if (!vi_any(&dpos)) continue;
            vfl this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            vfl this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            const vil mpos = this_min > VF_SET(0);
            this_min = VF_SEL(mpos, VF_SET(0), this_min);
            this_scale = VF_SEL(mpos, sum_xl / sum_l2, this_scale);
            vfl cur_error = VF_SET(0);
            for (int i = 0; i < n; ++i) {
                vfl diff = this_scale * VF_CVT(Laux[i]) + this_min - x[i];
                diff = use_mad ? VF_ABS(diff) : diff * diff;
                cur_error = cur_error + weights[i] * diff;
            }
            const vil upd = dpos & (cur_error < best_error);
            if (!vi_any(&upd)) continue;
            for (int i = 0; i < n; ++i) L[i] = VI_SEL(upd, Laux[i], L[i]);
            best_error = VF_SEL(upd, cur_error, best_error);
            scale = VF_SEL(upd, this_scale, scale);
            min = VF_SEL(upd, this_min, min);
        }
    }
    for (int i = 0; i < n; ++i) L[i] = VI_SEL(flat, VI_SET(0), L[i]);
    *the_min = -VF_SEL(flat, flat_min, min);
    *scale_out = VF_SEL(flat, VF_SET(0), scale);
}

/* nsub (<= QK_LANES) sub-blocks of n (<= 32) elements, sub-block j at x +
 * stride * j, in lane order (lanes past nsub get zeros), and back. */
QK_INLINE void lanes_load(vfl *t, const float *x, int n, int stride, int nsub) {
    for (int j = 0; j < QK_LANES; j++)
        for (int i = 0; i < n; i++) t[i][j] = j < nsub ? x[stride * j + i] : 0.0f;
}

QK_INLINE void lanes_store_u8(uint8_t *L, const vil *t, int n, int stride, int nsub) {
    for (int j = 0; j < nsub; j++)
        for (int i = 0; i < n; i++) L[stride * j + i] = (uint8_t)t[i][j];
}

/* make_q3_quants with do_rmse */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}


/* L[k] = imax(lo, imin(hi, nearest_int((x[k] + dm) / d))) + off for the
 * k < QK_LANES * nv */
QK_INLINE void quantize_run(uint8_t *L, const float *x, int nv, float dm, float d, int lo, int hi, int off) {
    for (int k = 0; k < nv; k++) {
        const vil l = VI_CLAMP(VI_NINT((VF_LOAD(x + QK_LANES * k) + VF_SET(dm)) / VF_SET(d)), lo, hi) + VI_SET(off);
        for (int e = 0; e < QK_LANES; e++) L[QK_LANES * k + e] = (uint8_t)l[e];
    }
}

/* x / d in the same form (ggml writes it without the "+ dm") */
QK_INLINE void quantize_run_nomin(uint8_t *L, const float *x, int nv, float d, int lo, int hi, int off) {
    for (int k = 0; k < nv; k++) {
        const vil l = VI_CLAMP(VI_NINT(VF_LOAD(x + QK_LANES * k) / VF_SET(d)), lo, hi) + VI_SET(off);
        for (int e = 0; e < QK_LANES; e++) L[QK_LANES * k + e] = (uint8_t)l[e];
    }
}

/* ggml quantize_row_q2_K_ref */
QK_INLINE void q2_K_rows(const float *x, void *dst, int64_t n) {
    em_block_q2_K *y = dst;
    uint8_t L[EM_QK_K];
    float mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        for (int g = 0; g < 16 / QK_LANES; g++) { /* QK_LANES sub-blocks at a time */
            vfl xt[16], wt[16], sc, mn;
            vil Lt[16];
            lanes_load(xt, x + 16 * QK_LANES * g, 16, 16, QK_LANES);
            for (int l = 0; l < 16; ++l) wt[l] = VF_ABS(xt[l]);
            qkx2_quants_lanes(16, 3, xt, wt, Lt, &sc, &mn, -0.5f, 0.1f, 15, true);
            lanes_store_u8(L + 16 * QK_LANES * g, Lt, 16, 16, QK_LANES);
            for (int j = 0; j < QK_LANES; j++) {
                scales[QK_LANES * g + j] = sc[j];
                mins[QK_LANES * g + j] = mn[j];
            }
        }
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; ++j) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = em_f32_to_f16(max_scale / q4scale);
        } else {
            for (int j = 0; j < 16; ++j) y[i].scales[j] = 0;
            y[i].d = em_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; ++j) y[i].scales[j] |= (uint8_t)((unsigned)nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = em_f32_to_f16(max_min / q4scale);
        } else {
            y[i].dmin = em_f32_to_f16(0.f);
        }
        for (int j = 0; j < 16; ++j) {
            const float d = em_f16_to_f32(y[i].d) * (float)(y[i].scales[j] & 0xF);
            if (d == 0.0f) continue;
            const float dm = em_f16_to_f32(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            quantize_run(L + 16 * j, x + 16 * j, 16 / QK_LANES, dm, d, 0, 3, 0);
        }
        for (int j = 0; j < EM_QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

/* ggml quantize_row_q3_K_ref */
void em_from_f32_q3_K(const float *x, void *dst, int64_t n) {
    em_block_q3_K *y = dst;
    int8_t L[EM_QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                int8_t l = (int8_t)nearest_int(iscale * scales[j]);
                l = (int8_t)(imax(-32, imin(31, l)) + 32);
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                l = (int8_t)(l >> 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            y[i].d = em_f32_to_f16(1 / iscale);
        } else {
            y[i].d = em_f32_to_f16(0.f);
        }
        int8_t sc[16];
        em_q3k_scales(y[i].scales, sc);
        for (int j = 0; j < 16; ++j) {
            const float d = em_f16_to_f32(y[i].d) * (float)sc[j];
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
            }
        }
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        int m = 0;
        uint8_t hm = 1;
        for (int j = 0; j < EM_QK_K; ++j) {
            if (L[j] > 3) {
                y[i].hmask[m] |= hm;
                L[j] = (int8_t)(L[j] - 4);
            }
            if (++m == EM_QK_K / 8) {
                m = 0;
                hm = (uint8_t)(hm << 1);
            }
        }
        for (int j = 0; j < EM_QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}


/* 6-bit scale/min pairs of Q4_K/Q5_K, packed as get_scale_min_k4 reads them. */
QK_INLINE void pack_k4_scales(uint8_t s[12], const float *scales, const float *mins, float inv_scale, float inv_min) {
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = (uint8_t)imin(63, ls);
        lm = (uint8_t)imin(63, lm);
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
}

/* Shared body of quantize_row_q4_K_ref / q5_K_ref, for nb (<= K4_BLOCKS)
 * consecutive super-blocks at once: the search of their 8 sub-blocks each
 * (one lane each), then per block its scales, d, dmin and the integer
 * levels L + 256 * b (0..nmax). */
#define K4_BLOCKS (QK_LANES / 8)
QK_INLINE void k4_quantize_blocks(const float *x, int nb, uint8_t *s[K4_BLOCKS], em_f16 *d_out[K4_BLOCKS],
                                  em_f16 *dmin_out[K4_BLOCKS], uint8_t *L, int nmax, float rmin, int nstep) {
    vfl xt[32], wt[32], sc, mn;
    vil Lt[32];
    lanes_load(xt, x, 32, 32, 8 * nb);
    vfl sum_x2 = VF_SET(0);
    for (int l = 0; l < 32; ++l) sum_x2 = sum_x2 + xt[l] * xt[l];
    const vfl ms = sum_x2 / VF_SET(32);
    vfl av_x;
    for (int j = 0; j < QK_LANES; ++j) av_x[j] = sqrtf(ms[j]);
    for (int l = 0; l < 32; ++l) wt[l] = av_x + VF_ABS(xt[l]);
    qkx2_quants_lanes(32, nmax, xt, wt, Lt, &sc, &mn, rmin, 0.1f, nstep, false);
    lanes_store_u8(L, Lt, 32, 32, 8 * nb);
    for (int b = 0; b < nb; b++, x += EM_QK_K, L += EM_QK_K) {
        float mins[8], scales[8];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            scales[j] = sc[8 * b + j];
            mins[j] = mn[8 * b + j];
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        pack_k4_scales(s[b], scales, mins, inv_scale, inv_min);
        *d_out[b] = em_f32_to_f16(max_scale / 63.f);
        *dmin_out[b] = em_f32_to_f16(max_min / 63.f);
        for (int j = 0; j < 8; ++j) {
            uint8_t sc6, m6;
            em_k4_scale_min(j, s[b], &sc6, &m6);
            const float d = em_f16_to_f32(*d_out[b]) * (float)sc6;
            if (d == 0.0f) continue;
            const float dm = em_f16_to_f32(*dmin_out[b]) * (float)m6;
            quantize_run(L + 32 * j, x + 32 * j, 32 / QK_LANES, dm, d, 0, nmax, 0);
        }
    }
}

/* ggml quantize_row_q4_K_ref */
QK_INLINE void q4_K_rows(const float *x, void *dst, int64_t n) {
    em_block_q4_K *y = dst;
    uint8_t L[K4_BLOCKS * EM_QK_K];
    const int64_t nb = n / EM_QK_K;
    for (int64_t i = 0; i < nb; i += K4_BLOCKS, x += K4_BLOCKS * EM_QK_K) {
        const int m = nb - i >= K4_BLOCKS ? K4_BLOCKS : (int)(nb - i);
        uint8_t *s[K4_BLOCKS];
        em_f16 *d[K4_BLOCKS], *dmin[K4_BLOCKS];
        for (int b = 0; b < m; b++) {
            s[b] = y[i + b].scales;
            d[b] = &y[i + b].d;
            dmin[b] = &y[i + b].dmin;
        }
        k4_quantize_blocks(x, m, s, d, dmin, L, 15, -1.f, 20);
        for (int b = 0; b < m; b++) {
            uint8_t *q = y[i + b].qs;
            const uint8_t *Lb = L + EM_QK_K * b;
            for (int j = 0; j < EM_QK_K; j += 64, q += 32)
                for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(Lb[j + l] | (Lb[j + l + 32] << 4));
        }
    }
}

/* ggml quantize_row_q5_K_ref */
QK_INLINE void q5_K_rows(const float *x, void *dst, int64_t n) {
    em_block_q5_K *y = dst;
    uint8_t L[K4_BLOCKS * EM_QK_K];
    const int64_t nb = n / EM_QK_K;
    for (int64_t i = 0; i < nb; i += K4_BLOCKS, x += K4_BLOCKS * EM_QK_K) {
        const int m = nb - i >= K4_BLOCKS ? K4_BLOCKS : (int)(nb - i);
        uint8_t *s[K4_BLOCKS];
        em_f16 *d[K4_BLOCKS], *dmin[K4_BLOCKS];
        for (int b = 0; b < m; b++) {
            s[b] = y[i + b].scales;
            d[b] = &y[i + b].d;
            dmin[b] = &y[i + b].dmin;
        }
        k4_quantize_blocks(x, m, s, d, dmin, L, 31, -0.5f, 15);
        for (int b = 0; b < m; b++) {
            const uint8_t *Lb = L + EM_QK_K * b;
            uint8_t *qh = y[i + b].qh, *ql = y[i + b].qs;
            memset(qh, 0, EM_QK_K / 8);
            uint8_t m1 = 1, m2 = 2;
            for (int j = 0; j < EM_QK_K; j += 64, ql += 32) {
                for (int l = 0; l < 32; ++l) {
                    int l1 = Lb[j + l], l2 = Lb[j + l + 32];
                    if (l1 > 15) { l1 -= 16; qh[l] |= m1; }
                    if (l2 > 15) { l2 -= 16; qh[l] |= m2; }
                    ql[l] = (uint8_t)(l1 | (l2 << 4));
                }
                m1 = (uint8_t)(m1 << 2);
                m2 = (uint8_t)(m2 << 2);
            }
        }
    }
}

/* ggml quantize_row_q6_K_ref */
QK_INLINE void q6_K_rows(const float *x, void *dst, int64_t n) {
    em_block_q6_K *y = dst;
    uint8_t L[EM_QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        for (int g = 0; g < 16 / QK_LANES; g++) { /* QK_LANES sub-blocks at a time */
            vfl xt[16], sc;
            vil Lt[16];
            lanes_load(xt, x + 16 * QK_LANES * g, 16, 16, QK_LANES);
            qx_quants_lanes(16, 32, xt, Lt, &sc);
            lanes_store_u8(L + 16 * QK_LANES * g, Lt, 16, 16, QK_LANES);
            for (int j = 0; j < QK_LANES; j++) scales[QK_LANES * g + j] = sc[j];
        }
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            const float abs_scale = fabsf(scales[ib]);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = em_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < 16; ++ib) y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; ++j) {
            const float d = em_f16_to_f32(y[i].d) * (float)y[i].scales[j];
            if (d == 0.0f) continue;
            quantize_run_nomin(L + 16 * j, x + 16 * j, 16 / QK_LANES, d, -32, 31, 32);
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < EM_QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
    }
}

/* The row functions: on x86 one copy for AVX2 and one for the baseline ISA
 * (identical bytes), chosen with the rest of the kernel set. */
#if EM_HAVE_AVX2_KERNELS
#define QK_ROWS(fn, body)                                                                               \
    static __attribute__((target("avx2"))) void fn##_avx2(const float *x, void *dst, int64_t n) {      \
        body(x, dst, n);                                                                                \
    }                                                                                                   \
    static void fn##_base(const float *x, void *dst, int64_t n) { body(x, dst, n); }                    \
    void fn(const float *x, void *dst, int64_t n) {                                                     \
        if (strcmp(em_kernels_isa(), "avx2") == 0) fn##_avx2(x, dst, n);                                \
        else fn##_base(x, dst, n);                                                                      \
    }
#else
#define QK_ROWS(fn, body) \
    void fn(const float *x, void *dst, int64_t n) { body(x, dst, n); }
#endif

QK_ROWS(em_from_f32_q2_K, q2_K_rows)
QK_ROWS(em_from_f32_q4_K, q4_K_rows)
QK_ROWS(em_from_f32_q5_K, q5_K_rows)
QK_ROWS(em_from_f32_q6_K, q6_K_rows)

/* ------------------------------------------------------------------ vec_dot */

/* Q2_K: the min term enters the same accumulator first, per block:
 * acc = fma(-d_x*dmin, mins . bsums (pairwise lanes), acc), then
 * acc = fma(d_x*d, lanes, acc). */
void em_dot_q2_K(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q2_K *a = w;
    const em_block_q8_K *b = x;
    float acc[8] = {0};
    int8_t q[256];
    int16_t sc16[16];
    int32_t lane[8];
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = b[i].d * em_f16_to_f32(a[i].d);
        const float dmin = -b[i].d * em_f16_to_f32(a[i].dmin);
        for (int l = 0; l < 8; l++) {
            const int32_t prod = (a[i].scales[2 * l] >> 4) * b[i].bsums[2 * l] +
                                 (a[i].scales[2 * l + 1] >> 4) * b[i].bsums[2 * l + 1];
            acc[l] = fmaf(dmin, (float)prod, acc[l]);
        }
        for (int j = 0; j < 16; j++) sc16[j] = a[i].scales[j] & 0x0F;
        dec_q2_K(&a[i], q);
        k_lanes(lane, q, b[i].qs, sc16);
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    *s = hsum8(acc);
}

void em_dot_q3_K(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q3_K *a = w;
    const em_block_q8_K *b = x;
    float acc[8] = {0};
    int8_t q[256], sc[16];
    int16_t sc16[16];
    int32_t lane[8];
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = b[i].d * em_f16_to_f32(a[i].d);
        em_q3k_scales(a[i].scales, sc);
        for (int j = 0; j < 16; j++) sc16[j] = sc[j];
        dec_q3_K(&a[i], q);
        k_lanes(lane, q, b[i].qs, sc16);
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    *s = hsum8(acc);
}

/* Q4_K/Q5_K min term: mins[k] (k < 8) times the 32-element sums of x
 * (bsums added in pairs as int16), multiplied-added in pairs into 4 int32
 * lanes. */
static inline void k4_min_prod(int32_t prod[4], const uint8_t mins[8], const int16_t bsums[16]) {
    int16_t q8s[8];
    for (int k = 0; k < 8; k++) q8s[k] = (int16_t)(bsums[2 * k] + bsums[2 * k + 1]);
    for (int l = 0; l < 4; l++) prod[l] = mins[2 * l] * q8s[2 * l] + mins[2 * l + 1] * q8s[2 * l + 1];
}

/* Q4_K in super-block order (the order of llama.cpp's repacked Q4_K
 * kernels, see quant_k_avx2.c): per super-block the scaled products and the
 * min term as exact integers, isum = sum_j sc_j * (q . x over sub-block j),
 * imin = sum_j m_j * (x sum over sub-block j); then one FMA each into two
 * accumulators, s = fma(isum, d_w * d_x, s), m = fma(imin, dmin_w * d_x, m);
 * result s - m. */
void em_dot_q4_K(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q4_K *a = w;
    const em_block_q8_K *b = x;
    float acc = 0.0f, acc_m = 0.0f;
    int8_t q[256];
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        dec_q4_K(&a[i], q);
        int32_t isum = 0, imin = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            em_k4_scale_min(j, a[i].scales, &sc, &m);
            int32_t dot = 0;
            for (int e = 32 * j; e < 32 * j + 32; e++) dot += q[e] * b[i].qs[e];
            isum += sc * dot;
            imin += m * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        acc = fmaf((float)isum, em_f16_to_f32(a[i].d) * b[i].d, acc);
        acc_m = fmaf((float)imin, em_f16_to_f32(a[i].dmin) * b[i].d, acc_m);
    }
    *s = acc - acc_m;
}

/* Q5_K: the min term summed to one integer per block ((p0 + p1) + (p2 +
 * p3)) and accumulated in a scalar, summs = fma(-d_x*dmin, sum, summs) (GCC
 * contracts ggml's summs += dmin * sum); result hsum8(acc) + summs. */
void em_dot_q5_K(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q5_K *a = w;
    const em_block_q8_K *b = x;
    float acc[8] = {0}, summs = 0.0f;
    int8_t q[256];
    int16_t sc16[16];
    uint8_t mins[8];
    int32_t lane[8], prod[4];
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = b[i].d * em_f16_to_f32(a[i].d);
        const float dmin = -b[i].d * em_f16_to_f32(a[i].dmin);
        k4_scales16(a[i].scales, sc16, mins);
        k4_min_prod(prod, mins, b[i].bsums);
        summs = fmaf(dmin, (float)((prod[0] + prod[1]) + (prod[2] + prod[3])), summs);
        dec_q5_K(&a[i], q);
        k_lanes(lane, q, b[i].qs, sc16);
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    *s = hsum8(acc) + summs;
}

/* Q6_K (ggml after PR #22345, "optimize avx2 q6_k", which the oracle build
 * has): lanes over the unsigned levels 0..63, then the -32 offset taken out
 * per lane through bsums: lane[l] -= 32 * (bsums[2l] * sc[2l] + bsums[2l+1]
 * * sc[2l+1]). The total is the same integer as with signed levels, but its
 * split over the lanes (and so the float rounding) is not. */
void em_dot_q6_K(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q6_K *a = w;
    const em_block_q8_K *b = x;
    float acc[8] = {0};
    int8_t q[256];
    int16_t sc16[16];
    int32_t lane[8];
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = b[i].d * em_f16_to_f32(a[i].d);
        for (int j = 0; j < 16; j++) sc16[j] = a[i].scales[j];
        dec_q6_K(&a[i], q, 0);
        k_lanes(lane, q, b[i].qs, sc16);
        for (int l = 0; l < 8; l++) {
            const int32_t off = b[i].bsums[2 * l] * sc16[2 * l] + b[i].bsums[2 * l + 1] * sc16[2 * l + 1];
            lane[l] -= 32 * off;
            acc[l] = fmaf(d, (float)lane[l], acc[l]);
        }
    }
    *s = hsum8(acc);
}

/* Q8_K is only an activation format (ggml has no Q8_K weight kernel); this
 * dot completes its table row: lanes with unit scales, d = d_w * d_x. */
void em_dot_q8_K(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q8_K *a = w;
    const em_block_q8_K *b = x;
    static const int16_t ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    float acc[8] = {0};
    int32_t lane[8];
    for (int64_t i = 0; i < n / EM_QK_K; i++) {
        const float d = a[i].d * b[i].d;
        k_lanes(lane, a[i].qs, b[i].qs, ones);
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    *s = hsum8(acc);
}
