/* dot_ggml.h - the parts of llama.cpp's CPU numerics that are not a plain
 * per-row vec_dot, in exactly the order of the build the oracle was made
 * with (ggml CPU backend, AVX-512):
 *
 *  - "gemm" order: llamafile's tinyBLAS, used for prompt batches (>= 2
 *    tokens) when the weight has rows % 4 == 0 and cols % 16 == 0 (BF16: 32):
 *    one 16-lane FMA accumulator, lane = i % 16, reduced as GCC's
 *    _mm512_reduce_add_ps.
 *  - the single-token order (ggml_vec_dot_*) is the type table's vec_dot
 *    (src/tensor/types.h), shared by every caller.
 *  - ggml's vectorized exp used by softmax and SiLU.
 *
 * F16 rounding of activations and of the KV cache turns last-bit
 * differences into visible ones, so matching the order is what keeps the
 * logits within 1e-6 instead of 1e-2. Lane-wise FMA is IEEE, so these give
 * the same bits on AVX2 and in portable C. Thread safe, no state. */
#ifndef EM_DOT_GGML_H
#define EM_DOT_GGML_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/half.h"

float em_dot_f32_gemm(int64_t n, const float *a, const float *b);  /* n % 16 == 0 */
/* fma_tail: the n % 64 tail as an FMA chain (what the prompt-batch path of
 * the reference build computes) or as rounded products (single-token). */
float em_dot_f32_vec(int64_t n, const float *a, const float *b, bool fma_tail);
float em_dot_f16_gemm(int64_t n, const em_f16 *a, const em_f16 *b); /* n % 16 == 0 */
/* out[t] = em_dot_f16_gemm(n, a[t], b) for t < 4, bit for bit (attention:
 * four keys against one query, the query converted once). */
void em_dot_f16_gemm4(int64_t n, const em_f16 *const *a, const em_f16 *b, float *out);
float em_dot_f16_vec(int64_t n, const em_f16 *a, const em_f16 *b);

/* BF16 (AVX512-BF16 VDPBF16PS: per lane, acc += odd product, then += even
 * product, each rounded; products of bf16 are exact in f32). gemm order
 * needs n % 32 == 0. */
float em_dot_bf16_gemm(int64_t n, const em_bf16 *a, const em_bf16 *b);

/* a[d] = fmaf(v[d], p, a[d]) for d < n: one rounding per element, as
 * ggml's vector FMA accumulators; v in F16 (converted exactly) or F32. */
void em_axpy_f16(int64_t n, float *a, const em_f16 *v, float p);
/* em_axpy_f16(n, acc + (j % rows) * n, v[j], p[j]) for j = 0..nj-1, the same
 * bits (each row's keys in order), faster. */
void em_axpy_f16_rows(int64_t n, float *acc, int rows, const em_f16 *const *v, const float *p, int nj);
/* out[d] = em_reduce16 of the 16 lanes of column d of acc (rows x n): the
 * rows themselves (rows == 16), or for rows == 64 lane l = (row l + row
 * 32+l) + (row 16+l + row 48+l), as ggml's 64-wide accumulators reduce. */
void em_reduce16_rows(const float *acc, int rows, int64_t n, float *out);
void em_axpy_f32(int64_t n, float *a, const float *v, float p);

/* The 16-lane reduction itself (for callers that accumulate elsewhere). */
float em_reduce16(const float acc[16]);



/* ggml's vectorized expf (AVX-512 variant, from ARM's optimized routines:
 * max error 1.45 + 0.5 ulp), evaluated lane by lane. llama.cpp uses it
 * for softmax and SiLU on 16-element chunks and libm expf on the rest. */
float em_ggml_v_expf(float x);
/* ggml_vec_soft_max_f32: y = exp(x - max), returns the sum (in double, as
 * 16-lane chunk sums then tail), chunks through em_ggml_v_expf. */
double em_ggml_softmax_exp(int64_t n, float *y, const float *x, float max);
/* ggml_vec_swiglu_f32: y = silu(x) * g, chunks of 16 through the vector
 * SiLU x / (1 + v_expf(-x)), the tail through x / (1 + expf(-x)). */
void em_ggml_swiglu(int64_t n, float *y, const float *x, const float *g);
#endif
