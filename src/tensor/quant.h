/* quant.h - private to src/tensor: ggml's block layouts for the quantized
 * formats and the kernel entry points behind the type table (types.c).
 *
 * Layouts are ggml's (ggml-common.h), byte for byte, because weights come
 * straight from GGUF files. Every block of 32 elements stores its scale(s) as
 * fp16 first, then the quants:
 *   Q4_0 {d; qs[16]}          qs[j] low nibble = elem j, high = elem j+16;
 *                             value = (q - 8) * d
 *   Q4_1 {d, m; qs[16]}       value = q * d + m
 *   Q5_0 {d; qh[4]; qs[16]}   5th bit of elem j is bit j of qh (little
 *                             endian u32); value = (q - 16) * d
 *   Q5_1 {d, m; qh[4]; qs[16]} value = q * d + m
 *   Q8_0 {d; qs[32] int8}     value = q * d
 *   Q8_1 {d, s; qs[32] int8}  value = q * d; s = fp16(d * sum(q))
 *
 * (The K-quants, super-blocks of 256, are described further down.)
 *
 * Kernel naming: em_<what>_<type>[_<isa>]. The scalar set is portable C and
 * defines the numerics (see quant_scalar.c, quant_k.c); the AVX2 set
 * (quant_avx2.c, quant_k_avx2.c, compiled per function with a target
 * attribute) computes the same operations in the same order and gives
 * identical bits, for conversions, quantizers and dots alike (only NaN
 * payloads of F16 conversion may differ). Float sums use fmaf; on x86 glibc
 * dispatches it to the FMA instruction where the CPU has one. */
#ifndef EM_TENSOR_QUANT_H
#define EM_TENSOR_QUANT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../base/half.h"

#define EM_QK 32 /* elements per block of every format here */

/* Software prefetch distance (bytes ahead in a weight row) for kernels that
 * stream weights from memory: the hardware prefetcher alone left single-
 * token decode at ~50% of the measured read bandwidth; 4 KiB ahead took 1B
 * Q4_0 decode from 13.7 to 17.4 tok/s on 2 Zen 3 cores (1 KiB: less, 8 KiB:
 * the same). A hint: no effect on results. */
#define EM_PF_DIST 4096

typedef struct {
    em_f16 d;
    uint8_t qs[EM_QK / 2];
} em_block_q4_0;

typedef struct {
    em_f16 d;
    em_f16 m;
    uint8_t qs[EM_QK / 2];
} em_block_q4_1;

typedef struct {
    em_f16 d;
    uint8_t qh[4];
    uint8_t qs[EM_QK / 2];
} em_block_q5_0;

typedef struct {
    em_f16 d;
    em_f16 m;
    uint8_t qh[4];
    uint8_t qs[EM_QK / 2];
} em_block_q5_1;

typedef struct {
    em_f16 d;
    int8_t qs[EM_QK];
} em_block_q8_0;

typedef struct {
    em_f16 d;
    em_f16 s;
    int8_t qs[EM_QK];
} em_block_q8_1;

_Static_assert(sizeof(em_block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(em_block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(em_block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(em_block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(em_block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(em_block_q8_1) == 36, "block_q8_1 layout");

/* ---- K-quants: super-blocks of EM_QK_K = 256 elements (ggml-common.h) ----
 *   Q2_K {scales[16]; qs[64]; d, dmin}  16 sub-blocks of 16: scales[j] low
 *        nibble = scale, high = min; q 2 bits; value = d*sc*q - dmin*m
 *   Q3_K {hmask[32]; qs[64]; scales[12]; d}  16 sub-blocks of 16, 6-bit
 *        signed scales (stored +32); q = 2 low bits + high bit from hmask,
 *        value = d*(sc-32)*(q - 4)
 *   Q4_K {d, dmin; scales[12]; qs[128]}  8 sub-blocks of 32, 6-bit scale
 *        and min packed in 12 bytes; value = d*sc*q - dmin*m
 *   Q5_K {d, dmin; scales[12]; qh[32]; qs[128]}  as Q4_K, 5th bit in qh
 *   Q6_K {ql[128]; qh[64]; scales[16] int8; d}  16 sub-blocks of 16,
 *        value = d*sc*(q - 32)
 *   Q8_K {float d; qs[256] int8; bsums[16] int16}  activation format;
 *        bsums[j] = sum of qs[16j..16j+15]
 * Element order inside a super-block is ggml's (see the decoders in
 * quant_k.c). */
#define EM_QK_K 256

typedef struct {
    uint8_t scales[EM_QK_K / 16];
    uint8_t qs[EM_QK_K / 4];
    em_f16 d;
    em_f16 dmin;
} em_block_q2_K;

typedef struct {
    uint8_t hmask[EM_QK_K / 8];
    uint8_t qs[EM_QK_K / 4];
    uint8_t scales[12];
    em_f16 d;
} em_block_q3_K;

typedef struct {
    em_f16 d;
    em_f16 dmin;
    uint8_t scales[12];
    uint8_t qs[EM_QK_K / 2];
} em_block_q4_K;

typedef struct {
    em_f16 d;
    em_f16 dmin;
    uint8_t scales[12];
    uint8_t qh[EM_QK_K / 8];
    uint8_t qs[EM_QK_K / 2];
} em_block_q5_K;

typedef struct {
    uint8_t ql[EM_QK_K / 2];
    uint8_t qh[EM_QK_K / 4];
    int8_t scales[EM_QK_K / 16];
    em_f16 d;
} em_block_q6_K;

typedef struct {
    float d;
    int8_t qs[EM_QK_K];
    int16_t bsums[EM_QK_K / 16];
} em_block_q8_K;

_Static_assert(sizeof(em_block_q2_K) == 84, "block_q2_K layout");
_Static_assert(sizeof(em_block_q3_K) == 110, "block_q3_K layout");
_Static_assert(sizeof(em_block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(em_block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(em_block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(em_block_q8_K) == 292, "block_q8_K layout");

/* Scale and min of sub-block j (0..7) of Q4_K/Q5_K (ggml get_scale_min_k4). */
static inline void em_k4_scale_min(int j, const uint8_t q[12], uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The 16 signed scales of a Q3_K block (6 bits, minus 32): scale j has its
 * low nibble in byte j % 8 (high half for j >= 8) and its top 2 bits in
 * byte 8 + j % 4 at bit 2 * (j / 4). Decoded four at a time (little-endian
 * words, as ggml does). */
static inline void em_q3k_scales(const uint8_t s[12], int8_t out[16]) {
    uint32_t a[3], o[4];
    memcpy(a, s, 12);
    const uint32_t m2 = 0x03030303u, m4 = 0x0f0f0f0fu;
    o[0] = (a[0] & m4) | (((a[2] >> 0) & m2) << 4);
    o[1] = (a[1] & m4) | (((a[2] >> 2) & m2) << 4);
    o[2] = ((a[0] >> 4) & m4) | (((a[2] >> 4) & m2) << 4);
    o[3] = ((a[1] >> 4) & m4) | (((a[2] >> 6) & m2) << 4);
    uint8_t u[16];
    memcpy(u, o, 16);
    for (int j = 0; j < 16; j++) out[j] = (int8_t)(u[j] - 32);
}

/* x86 builds get the AVX2 set (selected at run time). */
#if defined(__x86_64__) || defined(__i386__)
#define EM_HAVE_AVX2_KERNELS 1
#else
#define EM_HAVE_AVX2_KERNELS 0
#endif

/* ---- scalar (quant_scalar.c) ---- */
/* to_f32: n elements, n % blck == 0 */
void em_to_f32_f32(const void *src, float *dst, int64_t n);
void em_to_f32_f16(const void *src, float *dst, int64_t n);
void em_to_f32_bf16(const void *src, float *dst, int64_t n);
void em_to_f32_q4_0(const void *src, float *dst, int64_t n);
void em_to_f32_q4_1(const void *src, float *dst, int64_t n);
void em_to_f32_q5_0(const void *src, float *dst, int64_t n);
void em_to_f32_q5_1(const void *src, float *dst, int64_t n);
void em_to_f32_q8_0(const void *src, float *dst, int64_t n);
void em_to_f32_q8_1(const void *src, float *dst, int64_t n);

/* from_f32: weight formats follow ggml's quantize_row_*_ref; Q8_0 and Q8_1
 * follow ggml's x86 quantize_row_q8_0/q8_1 (activation quantizers). */
void em_from_f32_f32(const float *src, void *dst, int64_t n);
void em_from_f32_f16(const float *src, void *dst, int64_t n);
void em_from_f32_bf16(const float *src, void *dst, int64_t n);
void em_from_f32_q4_0(const float *src, void *dst, int64_t n);
void em_from_f32_q4_1(const float *src, void *dst, int64_t n);
void em_from_f32_q5_0(const float *src, void *dst, int64_t n);
void em_from_f32_q5_1(const float *src, void *dst, int64_t n);
void em_from_f32_q8_0(const float *src, void *dst, int64_t n);
void em_from_f32_q8_1(const float *src, void *dst, int64_t n);

/* vec_dot: *s = dot(w, x) over n elements (w in the weight type, x in its
 * vec_dot_type). */
void em_dot_f32(int64_t n, float *s, const void *w, const void *x);
void em_dot_f16(int64_t n, float *s, const void *w, const void *x);
void em_dot_bf16(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_0(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_1(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_0(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_1(int64_t n, float *s, const void *w, const void *x);
void em_dot_q8_0(int64_t n, float *s, const void *w, const void *x);
void em_dot_q8_1(int64_t n, float *s, const void *w, const void *x);

/* ---- K-quants, scalar (quant_k.c) ----
 * to_f32: ggml dequantize_row_*; from_f32: ggml quantize_row_*_ref for the
 * weight formats (what llama-quantize writes without an imatrix) and
 * quantize_row_q8_K_ref for Q8_K (what ggml's x86 CPU backend uses for
 * activations); vec_dot: the operation order of ggml's AVX2
 * ggml_vec_dot_qX_K_q8_K (also what AVX-512 builds compile). */
void em_to_f32_q2_K(const void *src, float *dst, int64_t n);
void em_to_f32_q3_K(const void *src, float *dst, int64_t n);
void em_to_f32_q4_K(const void *src, float *dst, int64_t n);
void em_to_f32_q5_K(const void *src, float *dst, int64_t n);
void em_to_f32_q6_K(const void *src, float *dst, int64_t n);
void em_to_f32_q8_K(const void *src, float *dst, int64_t n);
void em_from_f32_q2_K(const float *src, void *dst, int64_t n);
void em_from_f32_q3_K(const float *src, void *dst, int64_t n);
void em_from_f32_q4_K(const float *src, void *dst, int64_t n);
void em_from_f32_q5_K(const float *src, void *dst, int64_t n);
void em_from_f32_q6_K(const float *src, void *dst, int64_t n);
void em_from_f32_q8_K(const float *src, void *dst, int64_t n);
void em_dot_q2_K(int64_t n, float *s, const void *w, const void *x);
void em_dot_q3_K(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_K(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_K(int64_t n, float *s, const void *w, const void *x);
void em_dot_q6_K(int64_t n, float *s, const void *w, const void *x);
void em_dot_q8_K(int64_t n, float *s, const void *w, const void *x);

#if EM_HAVE_AVX2_KERNELS
/* ---- AVX2 + FMA + F16C (quant_avx2.c, quant_k_avx2.c); call only when the
 * CPU has them ---- */
void em_from_f32_q8_K_avx2(const float *src, void *dst, int64_t n);
void em_dot_q2_K_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q3_K_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_K_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_K_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q6_K_avx2(int64_t n, float *s, const void *w, const void *x);

void em_to_f32_f16_avx2(const void *src, float *dst, int64_t n);
void em_from_f32_f16_avx2(const float *src, void *dst, int64_t n);
void em_from_f32_bf16_avx2(const float *src, void *dst, int64_t n);
void em_from_f32_q8_0_avx2(const float *src, void *dst, int64_t n);
void em_from_f32_q8_1_avx2(const float *src, void *dst, int64_t n);

void em_dot_f32_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_f16_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot4_f16_avx2(int64_t n, float *s, const void *w, const void *const *x);
void em_dot_bf16_avx2(int64_t n, float *s, const void *w, const void *x);
/* one weight row x four activation rows, bit-identical to four single calls */
void em_dot4_q4_1_avx2(int64_t n, float *s, const void *w, const void *const *x);
void em_dot4_q5_1_avx2(int64_t n, float *s, const void *w, const void *const *x);
void em_dot4_q6_K_avx2(int64_t n, float *s, const void *w, const void *const *x);
/* the same for two activation rows (x[0], x[1]) */
void em_dot2_q6_K_avx2(int64_t n, float *s, const void *w, const void *const *x);
/* nr rows x nt (any number of) activation rows (em_type_traits.gemm), bit-identical to vec_dot */
void em_gemm_q4_K_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt, const void *const *x,
                       const void *const *aux, float *const *y, bool cold);
/* Q4_0's gemm aux (em_type_traits.gemm_aux): per activation block, 8 x the
 * sum of its bytes (int32), then its scale (float): n / 32 * 8 bytes. */
size_t em_gemm_aux_size_q4_0(int64_t n);
void em_gemm_aux_q4_0_avx2(int64_t n, const void *x, void *aux);
void em_gemm_q4_0_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt, const void *const *x,
                       const void *const *aux, float *const *y, bool cold);
void em_gemm_q5_0_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt, const void *const *x,
                       const void *const *aux, float *const *y, bool cold);
void em_gemm_q8_0_avx2(int64_t n, int64_t nr, const void *w, size_t ws, int nt, const void *const *x,
                       const void *const *aux, float *const *y, bool cold);
void em_dot_q4_0_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_1_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_0_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_1_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q8_0_avx2(int64_t n, float *s, const void *w, const void *x);
#endif

#endif
