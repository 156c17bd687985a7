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
 * Kernel naming: em_<what>_<type>[_<isa>]. The scalar set is portable C and
 * defines the numerics (see quant_scalar.c); the AVX2 set (quant_avx2.c,
 * compiled per function with a target attribute) computes the same
 * operations in the same order and gives identical bits, for conversions,
 * quantizers and dots alike (only NaN payloads of F16 conversion may
 * differ). Float sums use fmaf; on x86 glibc dispatches it to the FMA
 * instruction where the CPU has one. */
#ifndef EM_TENSOR_QUANT_H
#define EM_TENSOR_QUANT_H

#include <stdint.h>

#include "../base/half.h"

#define EM_QK 32 /* elements per block of every format here */

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

#if EM_HAVE_AVX2_KERNELS
/* ---- AVX2 + FMA + F16C (quant_avx2.c); call only when the CPU has them ---- */
void em_to_f32_f16_avx2(const void *src, float *dst, int64_t n);
void em_from_f32_f16_avx2(const float *src, void *dst, int64_t n);
void em_from_f32_bf16_avx2(const float *src, void *dst, int64_t n);
void em_from_f32_q8_0_avx2(const float *src, void *dst, int64_t n);
void em_from_f32_q8_1_avx2(const float *src, void *dst, int64_t n);

void em_dot_f32_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_f16_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_bf16_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_0_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q4_1_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_0_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q5_1_avx2(int64_t n, float *s, const void *w, const void *x);
void em_dot_q8_0_avx2(int64_t n, float *s, const void *w, const void *x);
#endif

#endif
