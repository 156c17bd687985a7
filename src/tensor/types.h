/* types.h - the compute side of the tensor-type table (cf. ggml's
 * type_traits): per weight type, how to dequantize a row, which activation
 * format it multiplies against, and its dot kernel for the best ISA found at
 * run time. A new type is one row in this table plus its kernels.
 *
 * Numerics follow ggml's CPU backend: activations are converted to
 * `vec_dot_type` once per matmul (F16 rows for F16 weights, BF16 for BF16,
 * Q8_0 blocks for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K super-blocks for
 * the K-quants Q2_K..Q6_K), then integer or float dot products run per
 * weight row. All functions are thread safe. */
#ifndef EM_TYPES_H
#define EM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h"

typedef struct em_type_traits {
    uint32_t type;           /* enum em_type */
    const char *name;
    uint32_t blck;           /* elements per block */
    uint32_t bytes;          /* bytes per block */
    uint32_t vec_dot_type;   /* format activations are converted to before vec_dot */
    /* Dequantizes n elements (n % blck == 0) from src to dst. */
    void (*to_f32)(const void *src, float *dst, int64_t n);
    /* Quantizes n floats (n % blck == 0) into this format; NULL if the type
     * cannot be produced (only needed for activation formats and convert). */
    void (*from_f32)(const float *src, void *dst, int64_t n);
    /* *s = dot(w, x) over n elements; w in this type, x in vec_dot_type. */
    void (*vec_dot)(int64_t n, float *s, const void *w, const void *x);
    /* Optional (NULL if absent): s[j] = dot(w, x[j]) for j < 4, bit-identical
     * to four vec_dot calls; decodes each weight block once for the four. */
    void (*vec_dot4)(int64_t n, float *s, const void *w, const void *const *x);
    /* Optional: the same for two activation rows x[0], x[1] (s[0], s[1]). */
    void (*vec_dot2)(int64_t n, float *s, const void *w, const void *const *x);
    /* Optional (NULL if absent): nr weight rows (row r at w + r * wstride)
     * times nt >= 1 activation rows: y[t][r] = dot(w row r, x[t]),
     * bit-identical to vec_dot. Decodes each weight block once for several
     * tokens and each activation block once for several rows. `cold`: the
     * rows are not in cache (first pass over them), so stream one at a time
     * (the tile kernels of Q5_0/Q8_0; Q4_0/Q4_K decide for themselves). aux:
     * NULL, or aux[t] = gemm_aux's output for x[t] (what the kernel would
     * otherwise derive from the activations on every call). May allocate
     * scratch; without it falls back to vec_dot, same bits. */
    void (*gemm)(int64_t n, int64_t nr, const void *w, size_t wstride, int nt, const void *const *x,
                 const void *const *aux, float *const *y, bool cold);
    /* Optional (NULL if absent): per-activation-row data for gemm, computed
     * once per matmul instead of once per gemm call (a matmul calls gemm once
     * per chunk of rows): gemm_aux_size(n) bytes, filled by gemm_aux(n, x). */
    size_t (*gemm_aux_size)(int64_t n);
    void (*gemm_aux)(int64_t n, const void *x, void *aux);
} em_type_traits;

/* Traits for a type the engine can compute with, or NULL (the caller reports
 * "unsupported tensor type"). Selects SIMD kernels on first use. */
const em_type_traits *em_type_traits_get(uint32_t type);

/* Which kernel set is active: "avx2" or "scalar". */
const char *em_kernels_isa(void);
/* Forces the portable scalar kernels (for tests comparing ISAs); call before
 * the first em_type_traits_get in the process, or between test phases. */
void em_kernels_force_scalar(bool scalar);

/* Scalar reference traits, regardless of ISA (for tests). */
const em_type_traits *em_type_traits_scalar(uint32_t type);

#endif
