/* quant_scalar.c - portable reference kernels: conversions, ggml's
 * reference quantizers for weight formats, the activation quantizers
 * (bit-exact with ggml's x86 AVX2 quantize_row_q8_0/q8_1) and the dot
 * products. This file must not be compiled with FMA enabled implicitly by
 * the code itself: dequantization computes q*d + m as a rounded multiply
 * followed by a rounded add, as ggml's dequantize_row_* does, and the
 * activation quantizer rounds x * id before rounding to an integer. So
 * floating-point contraction (a*b+c -> fma) is switched off for this file,
 * in case it is built with -march=native or the like. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>
#include <math.h>
#include <string.h>

#include "quant.h"

/* ---------------------------------------------------------------- helpers */

/* Float -> int truncation toward zero as C casts do, without the undefined
 * behaviour for NaN / out-of-range values (garbage in, garbage out). Only
 * reached with in-range values for finite inputs. */
static inline int trunc_to_int(float v) {
    return (v > -2147483648.0f && v < 2147483648.0f) ? (int)v : 0;
}

/* What _mm256_round_ps(v, _MM_ROUND_NEAREST) followed by _mm256_cvtps_epi32
 * yields: round half to even; NaN and values outside int32 give INT32_MIN
 * (the "integer indefinite" value). */
static inline int32_t round_nearest_even_i32(float v) {
    const float a = fabsf(v);
    if (a < 4194304.0f) { /* 2^22: adding 1.5*2^23 rounds to an integer, ties to even */
        const float r = (v + 12582912.0f) - 12582912.0f;
        return (int32_t)r;
    }
    if (!(a < 2147483648.0f)) return INT32_MIN;
    return (int32_t)nearbyintf(v);
}

/* _mm_max_ps semantics: the second operand unless the first is greater
 * (so a NaN in either operand propagates like the instruction does). */
static inline float x86_max(float a, float b) { return a > b ? a : b; }

/* max |x[0..31]| computed with the same reduction tree as ggml's AVX path
 * (8 lanes, then 4, 2, 1), so NaN handling matches the instructions too. */
static inline float block_amax_x86(const float *x) {
    float m[8];
    for (int l = 0; l < 8; l++) {
        float v = fabsf(x[l]);
        v = x86_max(v, fabsf(x[8 + l]));
        v = x86_max(v, fabsf(x[16 + l]));
        v = x86_max(v, fabsf(x[24 + l]));
        m[l] = v;
    }
    float m4[4];
    for (int l = 0; l < 4; l++) m4[l] = x86_max(m[4 + l], m[l]);
    const float m2_0 = x86_max(m4[0], m4[2]);
    const float m2_1 = x86_max(m4[1], m4[3]);
    return x86_max(m2_0, m2_1);
}

static inline int8_t sat_i8(int32_t v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }

/* ------------------------------------------------------------------ to_f32 */

void em_to_f32_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void em_to_f32_f16(const void *src, float *dst, int64_t n) {
    const em_f16 *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = em_f16_to_f32(h[i]);
}

void em_to_f32_bf16(const void *src, float *dst, int64_t n) {
    const em_bf16 *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = em_bf16_to_f32(h[i]);
}

void em_to_f32_q4_0(const void *src, float *dst, int64_t n) {
    const em_block_q4_0 *b = src;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, dst += EM_QK) {
        const float d = em_f16_to_f32(b[i].d);
        for (int j = 0; j < EM_QK / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            dst[j + EM_QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void em_to_f32_q4_1(const void *src, float *dst, int64_t n) {
    const em_block_q4_1 *b = src;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, dst += EM_QK) {
        const float d = em_f16_to_f32(b[i].d);
        const float m = em_f16_to_f32(b[i].m);
        for (int j = 0; j < EM_QK / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0x0F) * d + m;
            dst[j + EM_QK / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void em_to_f32_q5_0(const void *src, float *dst, int64_t n) {
    const em_block_q5_0 *b = src;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, dst += EM_QK) {
        const float d = em_f16_to_f32(b[i].d);
        uint32_t qh;
        memcpy(&qh, b[i].qh, sizeof qh);
        for (int j = 0; j < EM_QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            dst[j] = (float)(((b[i].qs[j] & 0x0F) | h0) - 16) * d;
            dst[j + EM_QK / 2] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void em_to_f32_q5_1(const void *src, float *dst, int64_t n) {
    const em_block_q5_1 *b = src;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, dst += EM_QK) {
        const float d = em_f16_to_f32(b[i].d);
        const float m = em_f16_to_f32(b[i].m);
        uint32_t qh;
        memcpy(&qh, b[i].qh, sizeof qh);
        for (int j = 0; j < EM_QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            dst[j] = (float)((b[i].qs[j] & 0x0F) | h0) * d + m;
            dst[j + EM_QK / 2] = (float)((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void em_to_f32_q8_0(const void *src, float *dst, int64_t n) {
    const em_block_q8_0 *b = src;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, dst += EM_QK) {
        const float d = em_f16_to_f32(b[i].d);
        for (int j = 0; j < EM_QK; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void em_to_f32_q8_1(const void *src, float *dst, int64_t n) {
    const em_block_q8_1 *b = src;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, dst += EM_QK) {
        const float d = em_f16_to_f32(b[i].d);
        for (int j = 0; j < EM_QK; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

/* ---------------------------------------------------------------- from_f32 */

void em_from_f32_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void em_from_f32_f16(const float *src, void *dst, int64_t n) {
    em_f16 *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = em_f32_to_f16(src[i]);
}

void em_from_f32_bf16(const float *src, void *dst, int64_t n) {
    em_bf16 *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = em_f32_to_bf16(src[i]);
}

/* ggml quantize_row_q4_0_ref */
void em_from_f32_q4_0(const float *src, void *dst, int64_t n) {
    em_block_q4_0 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < EM_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = em_f32_to_f16(d);
        for (int j = 0; j < EM_QK / 2; j++) {
            int q0 = trunc_to_int(src[j] * id + 8.5f);
            int q1 = trunc_to_int(src[j + EM_QK / 2] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ggml quantize_row_q4_1_ref */
void em_from_f32_q4_1(const float *src, void *dst, int64_t n) {
    em_block_q4_1 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < EM_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = em_f32_to_f16(d);
        y[i].m = em_f32_to_f16(min);
        for (int j = 0; j < EM_QK / 2; j++) {
            int q0 = trunc_to_int((src[j] - min) * id + 0.5f);
            int q1 = trunc_to_int((src[j + EM_QK / 2] - min) * id + 0.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ggml quantize_row_q5_0_ref */
void em_from_f32_q5_0(const float *src, void *dst, int64_t n) {
    em_block_q5_0 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < EM_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = em_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < EM_QK / 2; j++) {
            int q0 = trunc_to_int(src[j] * id + 16.5f);
            int q1 = trunc_to_int(src[j + EM_QK / 2] * id + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + EM_QK / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

/* ggml quantize_row_q5_1_ref */
void em_from_f32_q5_1(const float *src, void *dst, int64_t n) {
    em_block_q5_1 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < EM_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = em_f32_to_f16(d);
        y[i].m = em_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < EM_QK / 2; j++) {
            /* ggml converts straight to uint8_t (no clamp) */
            const int q0 = trunc_to_int((src[j] - min) * id + 0.5f) & 0xFF;
            const int q1 = trunc_to_int((src[j + EM_QK / 2] - min) * id + 0.5f) & 0xFF;
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + EM_QK / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

/* Activation quantizer, ggml x86 quantize_row_q8_0: d = amax/127,
 * q = round-half-even(x * (127/amax)), saturated to int8. */
void em_from_f32_q8_0(const float *src, void *dst, int64_t n) {
    em_block_q8_0 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        const float amax = block_amax_x86(src);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = em_f32_to_f16(d);
        for (int j = 0; j < EM_QK; j++) y[i].qs[j] = sat_i8(round_nearest_even_i32(src[j] * id));
    }
}

/* Activation quantizer, ggml x86 quantize_row_q8_1: as Q8_0, plus
 * s = fp16(d * sum), the sum taken over the (unsaturated) int32 values. */
void em_from_f32_q8_1(const float *src, void *dst, int64_t n) {
    em_block_q8_1 *y = dst;
    const int64_t nb = n / EM_QK;
    for (int64_t i = 0; i < nb; i++, src += EM_QK) {
        const float amax = block_amax_x86(src);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = em_f32_to_f16(d);
        uint32_t sum = 0; /* wraps like the vector adds */
        for (int j = 0; j < EM_QK; j++) {
            const int32_t q = round_nearest_even_i32(src[j] * id);
            sum += (uint32_t)q;
            y[i].qs[j] = sat_i8(q);
        }
        y[i].s = em_f32_to_f16(d * (float)(int32_t)sum);
    }
}

/* ------------------------------------------------------------------ vec_dot */

/* The dots below define the numerics; quant_avx2.c computes the same
 * operations in the same order, so both sets give identical bits. The order
 * is the one of the llama.cpp build behind ../shared/oracle (x86 with
 * AVX-512 incl. BF16 and VNNI, -march=native, vec_dot path):
 *  - F32 / F16: ggml_vec_dot_f32/f16 with 512-bit vectors: four 16-lane FMA
 *    accumulators over chunks of 64, folded (0+2, 1+3, 0+1), reduced like
 *    _mm512_reduce_add_ps; the n % 64 tail sequentially (F32: rounded
 *    products added in float; F16: exact products summed in double);
 *  - BF16: ggml_vec_dot_bf16 with AVX512_BF16: two 16-lane accumulators fed
 *    by vdpbf16ps (lane j takes elements 2j+1 then 2j of each 32), each
 *    reduced to double; tail in double. (vdpbf16ps flushes denormals, which
 *    is not reproduced; products of normal bf16 values are exact.)
 *  - quantized: ggml's AVX2 kernels (also used by AVX-512 builds): int32
 *    lane l of a block = exact sum over elements 4l..4l+3; per block
 *    acc[l] = fma(d_w * d_x, lane, acc[l]); hsum_float_8 at the end; Q4_1 /
 *    Q5_1 add summs = fma(m_w, s_x, summs) afterwards. */

/* GCC's _mm512_reduce_add_ps: halves of 512, of 256, then {2,3,0,1}. */
static inline float reduce16(const float a[16]) {
    float t3[8], t6[4];
    for (int l = 0; l < 8; l++) t3[l] = a[l + 8] + a[l];
    for (int l = 0; l < 4; l++) t6[l] = t3[l + 4] + t3[l];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}

/* ggml's hsum_float_8 */
static inline float hsum8(const float a[8]) {
    float r[4];
    for (int k = 0; k < 4; k++) r[k] = a[4 + k] + a[k];
    return (r[0] + r[2]) + (r[1] + r[3]);
}

/* fold of the 4 x 16 accumulators (GGML_F32x16_REDUCE), then reduce16 */
static inline float fold4x16(float acc[4][16]) {
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    return reduce16(v);
}

void em_dot_f32(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    const int64_t np = n & ~(int64_t)63;
    float acc[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64)
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 16; l++) acc[r][l] = fmaf(a[i + 16 * r + l], b[i + 16 * r + l], acc[r][l]);
    float sum = fold4x16(acc);
    /* the tail as rounded products: matches the reference build's
     * single-token results bit for bit (an FMA chain does not) */
    for (int64_t i = np; i < n; i++) {
        const float p = a[i] * b[i];
        sum += p;
    }
    *s = sum;
}

/* fp16 x fp16 products are exact in float, so a*b + c rounds once, like fma */
void em_dot_f16(int64_t n, float *s, const void *w, const void *x) {
    const em_f16 *a = w, *b = x;
    const int64_t np = n & ~(int64_t)63;
    float acc[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64)
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 16; l++)
                acc[r][l] += em_f16_to_f32(a[i + 16 * r + l]) * em_f16_to_f32(b[i + 16 * r + l]);
    double sum = fold4x16(acc);
    for (int64_t i = np; i < n; i++) sum += (double)(em_f16_to_f32(a[i]) * em_f16_to_f32(b[i]));
    *s = (float)sum;
}

static inline void dpbf16(float acc[16], const em_bf16 *a, const em_bf16 *b) {
    for (int j = 0; j < 16; j++) {
        acc[j] = fmaf(em_bf16_to_f32(a[2 * j + 1]), em_bf16_to_f32(b[2 * j + 1]), acc[j]);
        acc[j] = fmaf(em_bf16_to_f32(a[2 * j]), em_bf16_to_f32(b[2 * j]), acc[j]);
    }
}

void em_dot_bf16(int64_t n, float *s, const void *w, const void *x) {
    const em_bf16 *a = w, *b = x;
    float c1[16] = {0}, c2[16] = {0};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        dpbf16(c1, a + i, b + i);
        dpbf16(c2, a + i + 32, b + i + 32);
    }
    double sum = 0.0;
    sum += (double)reduce16(c1);
    sum += (double)reduce16(c2);
    for (; i < n; i++) sum += (double)(em_bf16_to_f32(a[i]) * em_bf16_to_f32(b[i]));
    *s = (float)sum;
}

/* One block of the integer dots: q[32] are the weight's integer values
 * (signed, or unsigned for Q4_1/Q5_1), y the activation's. */
static inline void block_lanes(float acc[8], float d, const int8_t q[32], const int8_t *y) {
    for (int l = 0; l < 8; l++) {
        int lane = 0;
        for (int e = 4 * l; e < 4 * l + 4; e++) lane += q[e] * y[e];
        acc[l] = fmaf(d, (float)lane, acc[l]);
    }
}

static inline void nibbles(int8_t q[32], const uint8_t qs[16], int offset) {
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0x0F) - offset);
        q[j + 16] = (int8_t)((qs[j] >> 4) - offset);
    }
}

static inline void nibbles5(int8_t q[32], const uint8_t qs[16], const uint8_t qh_bytes[4], int offset) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4)) - offset);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - offset);
    }
}

/* Q4_0 in block order (the order of llama.cpp's repacked Q4_0 kernels, see
 * quant_avx2.c): each block's products summed exactly as integers, then one
 * FMA per block into a single accumulator. */
void em_dot_q4_0(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q4_0 *a = w;
    const em_block_q8_0 *b = x;
    const int64_t nb = n / EM_QK;
    float acc = 0.0f;
    int8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        nibbles(q, a[i].qs, 8);
        int32_t isum = 0;
        for (int e = 0; e < 32; e++) isum += q[e] * b[i].qs[e];
        acc = fmaf((float)isum, em_f16_to_f32(a[i].d) * em_f16_to_f32(b[i].d), acc);
    }
    *s = acc;
}

void em_dot_q4_1(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q4_1 *a = w;
    const em_block_q8_1 *b = x;
    const int64_t nb = n / EM_QK;
    float acc[8] = {0}, summs = 0.0f;
    int8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        summs = fmaf(em_f16_to_f32(a[i].m), em_f16_to_f32(b[i].s), summs);
        nibbles(q, a[i].qs, 0);
        block_lanes(acc, em_f16_to_f32(a[i].d) * em_f16_to_f32(b[i].d), q, b[i].qs);
    }
    *s = hsum8(acc) + summs;
}

void em_dot_q5_0(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q5_0 *a = w;
    const em_block_q8_0 *b = x;
    const int64_t nb = n / EM_QK;
    float acc[8] = {0};
    int8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        nibbles5(q, a[i].qs, a[i].qh, 16);
        block_lanes(acc, em_f16_to_f32(a[i].d) * em_f16_to_f32(b[i].d), q, b[i].qs);
    }
    *s = hsum8(acc);
}

void em_dot_q5_1(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q5_1 *a = w;
    const em_block_q8_1 *b = x;
    const int64_t nb = n / EM_QK;
    float acc[8] = {0}, summs = 0.0f;
    int8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        summs = fmaf(em_f16_to_f32(a[i].m), em_f16_to_f32(b[i].s), summs);
        nibbles5(q, a[i].qs, a[i].qh, 0);
        block_lanes(acc, em_f16_to_f32(a[i].d) * em_f16_to_f32(b[i].d), q, b[i].qs);
    }
    *s = hsum8(acc) + summs;
}

void em_dot_q8_0(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q8_0 *a = w;
    const em_block_q8_0 *b = x;
    const int64_t nb = n / EM_QK;
    float acc[8] = {0};
    for (int64_t i = 0; i < nb; i++)
        block_lanes(acc, em_f16_to_f32(a[i].d) * em_f16_to_f32(b[i].d), a[i].qs, b[i].qs);
    *s = hsum8(acc);
}

/* Q8_1 is only an activation format (ggml has no Q8_1 weight kernel); this
 * dot exists so every row of the table is complete (Q8_0's algorithm, the
 * s fields unused). */
void em_dot_q8_1(int64_t n, float *s, const void *w, const void *x) {
    const em_block_q8_1 *a = w;
    const em_block_q8_1 *b = x;
    const int64_t nb = n / EM_QK;
    float acc[8] = {0};
    for (int64_t i = 0; i < nb; i++)
        block_lanes(acc, em_f16_to_f32(a[i].d) * em_f16_to_f32(b[i].d), a[i].qs, b[i].qs);
    *s = hsum8(acc);
}
