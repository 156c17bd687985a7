#include "dot_ggml.h"

#include <math.h>
#include <stdbool.h>


#if defined(__x86_64__)
#include <immintrin.h>
#define EM_AVX2 __attribute__((target("avx2,fma,f16c")))
static int have_avx2(void) {
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return v;
}
#endif

/* GCC's _mm512_reduce_add_ps: halves of 256, of 128, then {2,3,0,1}. */
float em_reduce16(const float a[16]) {
    float t3[8], t6[4];
    for (int l = 0; l < 8; l++) t3[l] = a[l + 8] + a[l];
    for (int l = 0; l < 4; l++) t6[l] = t3[l + 4] + t3[l];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}


/* ---- portable versions (the definition) ---- */

static float f32_gemm_c(int64_t n, const float *a, const float *b) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i++) acc[i & 15] = fmaf(a[i], b[i], acc[i & 15]);
    return em_reduce16(acc);
}

static float f16_gemm_c(int64_t n, const em_f16 *a, const em_f16 *b) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i++) acc[i & 15] = fmaf(em_f16_to_f32(a[i]), em_f16_to_f32(b[i]), acc[i & 15]);
    return em_reduce16(acc);
}

/* one VDPBF16PS step over 32 elements into 16 lanes */
static void dpbf16(float acc[16], const em_bf16 *a, const em_bf16 *b) {
    for (int l = 0; l < 16; l++) {
        acc[l] += em_bf16_to_f32(a[2 * l + 1]) * em_bf16_to_f32(b[2 * l + 1]);
        acc[l] += em_bf16_to_f32(a[2 * l]) * em_bf16_to_f32(b[2 * l]);
    }
}

float em_dot_bf16_gemm(int64_t n, const em_bf16 *a, const em_bf16 *b) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 32) dpbf16(acc, a + i, b + i);
    return em_reduce16(acc);
}

/* ---- AVX2: two 8-lane registers per 16-lane accumulator ---- */
#if defined(__x86_64__)
static inline EM_AVX2 float reduce16_avx(__m256 lo, __m256 hi) {
    __m256 t3 = _mm256_add_ps(hi, lo);
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1));
}

static EM_AVX2 float f32_gemm_avx(int64_t n, const float *a, const float *b) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
    }
    if (i == n) return reduce16_avx(lo, hi);
    /* masked tail chunk: lanes beyond n keep their sums */
    float acc[16];
    _mm256_storeu_ps(acc, lo);
    _mm256_storeu_ps(acc + 8, hi);
    for (; i < n; i++) acc[i & 15] = fmaf(a[i], b[i], acc[i & 15]);
    return em_reduce16(acc);
}

#define LDH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
static EM_AVX2 float f16_gemm_avx(int64_t n, const em_f16 *a, const em_f16 *b) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(LDH(a + i), LDH(b + i), lo);
        hi = _mm256_fmadd_ps(LDH(a + i + 8), LDH(b + i + 8), hi);
    }
    if (i == n) return reduce16_avx(lo, hi);
    float acc[16];
    _mm256_storeu_ps(acc, lo);
    _mm256_storeu_ps(acc + 8, hi);
    for (; i < n; i++) acc[i & 15] = fmaf(em_f16_to_f32(a[i]), em_f16_to_f32(b[i]), acc[i & 15]);
    return em_reduce16(acc);
}

/* Four rows of a against one b: b converted once for the four, each
 * output through f16_gemm_avx's operations (same bits). */
static EM_AVX2 void f16_gemm4_avx(int64_t n, const em_f16 *const *a, const em_f16 *b, float *out) {
    if (n % 16) {
        for (int t = 0; t < 4; t++) out[t] = f16_gemm_avx(n, a[t], b);
        return;
    }
    __m256 lo[4], hi[4];
    for (int t = 0; t < 4; t++) lo[t] = hi[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __m256 b0 = LDH(b + i), b1 = LDH(b + i + 8);
        _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++) {
            lo[t] = _mm256_fmadd_ps(LDH(a[t] + i), b0, lo[t]);
            hi[t] = _mm256_fmadd_ps(LDH(a[t] + i + 8), b1, hi[t]);
        }
    }
    for (int t = 0; t < 4; t++) out[t] = reduce16_avx(lo[t], hi[t]);
}

#undef LDH
#endif

float em_dot_f32_gemm(int64_t n, const float *a, const float *b) {
#if defined(__x86_64__)
    if (have_avx2()) return f32_gemm_avx(n, a, b);
#endif
    return f32_gemm_c(n, a, b);
}
float em_dot_f16_gemm(int64_t n, const em_f16 *a, const em_f16 *b) {
#if defined(__x86_64__)
    if (have_avx2()) return f16_gemm_avx(n, a, b);
#endif
    return f16_gemm_c(n, a, b);
}

void em_dot_f16_gemm4(int64_t n, const em_f16 *const *a, const em_f16 *b, float *out) {
#if defined(__x86_64__)
    if (have_avx2()) {
        f16_gemm4_avx(n, a, b, out);
        return;
    }
#endif
    for (int t = 0; t < 4; t++) out[t] = f16_gemm_c(n, a[t], b);
}

float em_ggml_v_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (!(fabsf(n) <= 192.0f)) return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

#if defined(__x86_64__)
/* em_ggml_v_expf on 8 lanes with the same operations: each fmaf is one FMA
 * instruction, and ldexpf of a normal result is an add to the exponent
 * field. Returns false, storing nothing, when a lane would leave that range
 * (n outside [-125, 126], NaN): the caller then takes the scalar path. */
static inline EM_AVX2 bool v_expf8(__m256 x, float *y) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-125.0f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(n, _mm256_set1_ps(126.0f), _CMP_LE_OQ));
    if (_mm256_movemask_ps(ok) != 0xff) return false;
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p1 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f));
    const __m256 p2 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f));
    const __m256 p3 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f));
    const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p1, u, p2), u, p3);
    const __m256i e = _mm256_slli_epi32(_mm256_cvttps_epi32(n), 23);
    _mm256_storeu_ps(y, _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(j), e)));
    return true;
}

static EM_AVX2 void softmax_chunk16_avx(float *y, const float *x, float max) {
    for (int h = 0; h < 16; h += 8)
        if (!v_expf8(_mm256_sub_ps(_mm256_loadu_ps(x + h), _mm256_set1_ps(max)), y + h))
            for (int l = h; l < h + 8; l++) y[l] = em_ggml_v_expf(x[l] - max);
}

static EM_AVX2 void swiglu_chunk16_avx(float *y, const float *x, const float *g) {
    for (int h = 0; h < 16; h += 8) {
        const __m256 v = _mm256_loadu_ps(x + h);
        float e[8];
        if (!v_expf8(_mm256_sub_ps(_mm256_setzero_ps(), v), e))
            for (int l = 0; l < 8; l++) e[l] = em_ggml_v_expf(0.0f - x[h + l]);
        const __m256 s = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_loadu_ps(e)));
        _mm256_storeu_ps(y + h, _mm256_mul_ps(s, _mm256_loadu_ps(g + h)));
    }
}
#endif

#if defined(__x86_64__)
static EM_AVX2 void axpy_f16_avx(int64_t n, float *a, const em_f16 *v, float p) {
    const __m256 pv = _mm256_set1_ps(p);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + d)));
        _mm256_storeu_ps(a + d, _mm256_fmadd_ps(x, pv, _mm256_loadu_ps(a + d)));
    }
    for (; d < n; d++) a[d] = fmaf(em_f16_to_f32(v[d]), p, a[d]);
}
/* Row u of acc takes the keys j = u, u + rows, ... in order, held in
 * registers across them (64 floats at a time) instead of a load and a store
 * of the row per key; each element sees the same FMAs in the same order as
 * one axpy_f16_avx per key. */
static EM_AVX2 void axpy_f16_rows_avx(int64_t n, float *acc, int rows, const em_f16 *const *v, const float *p, int nj) {
    if (n % 64) {
        for (int j = 0; j < nj; j++) axpy_f16_avx(n, acc + (size_t)(j % rows) * (size_t)n, v[j], p[j]);
        return;
    }
    for (int u = 0; u < rows && u < nj; u++) {
        float *a = acc + (size_t)u * (size_t)n;
        for (int64_t d0 = 0; d0 < n; d0 += 64) {
            __m256 r[8];
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(a + d0 + 8 * k);
            for (int j = u; j < nj; j += rows) {
                const __m256 pv = _mm256_set1_ps(p[j]);
                const em_f16 *vj = v[j] + d0;
                _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
                    r[k] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vj + 8 * k))), pv, r[k]);
            }
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) _mm256_storeu_ps(a + d0 + 8 * k, r[k]);
        }
    }
}
static EM_AVX2 void axpy_f32_avx(int64_t n, float *a, const float *v, float p) {
    const __m256 pv = _mm256_set1_ps(p);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8) _mm256_storeu_ps(a + d, _mm256_fmadd_ps(_mm256_loadu_ps(v + d), pv, _mm256_loadu_ps(a + d)));
    for (; d < n; d++) a[d] = fmaf(v[d], p, a[d]);
}
#endif

void em_axpy_f16(int64_t n, float *a, const em_f16 *v, float p) {
#if defined(__x86_64__)
    if (have_avx2()) { axpy_f16_avx(n, a, v, p); return; }
#endif
    for (int64_t d = 0; d < n; d++) a[d] = fmaf(em_f16_to_f32(v[d]), p, a[d]);
}

#if defined(__x86_64__)
/* em_reduce16_rows on 8 elements at a time: the same adds, elementwise */
static EM_AVX2 void reduce16_rows_avx(const float *acc, int rows, int64_t n, float *out) {
    for (int64_t d = 0; d < n; d += 8) {
        __m256 l[16];
        for (int k = 0; k < 16; k++) {
            if (rows == 16) {
                l[k] = _mm256_loadu_ps(acc + (size_t)k * (size_t)n + d);
            } else {
                const __m256 x0 = _mm256_add_ps(_mm256_loadu_ps(acc + (size_t)k * (size_t)n + d),
                                                _mm256_loadu_ps(acc + (size_t)(32 + k) * (size_t)n + d));
                const __m256 x1 = _mm256_add_ps(_mm256_loadu_ps(acc + (size_t)(16 + k) * (size_t)n + d),
                                                _mm256_loadu_ps(acc + (size_t)(48 + k) * (size_t)n + d));
                l[k] = _mm256_add_ps(x0, x1);
            }
        }
        __m256 t3[8], t6[4];
        for (int k = 0; k < 8; k++) t3[k] = _mm256_add_ps(l[k + 8], l[k]);
        for (int k = 0; k < 4; k++) t6[k] = _mm256_add_ps(t3[k + 4], t3[k]);
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(t6[0], t6[2]), _mm256_add_ps(t6[1], t6[3])));
    }
}
#endif

void em_reduce16_rows(const float *acc, int rows, int64_t n, float *out) {
#if defined(__x86_64__)
    if (have_avx2() && n % 8 == 0) {
        reduce16_rows_avx(acc, rows, n, out);
        return;
    }
#endif
    for (int64_t d = 0; d < n; d++) {
        float lanes[16];
        for (int k = 0; k < 16; k++)
            lanes[k] = rows == 16 ? acc[(size_t)k * (size_t)n + d]
                                  : (acc[(size_t)k * (size_t)n + d] + acc[(size_t)(32 + k) * (size_t)n + d]) +
                                        (acc[(size_t)(16 + k) * (size_t)n + d] + acc[(size_t)(48 + k) * (size_t)n + d]);
        out[d] = em_reduce16(lanes);
    }
}

void em_axpy_f16_rows(int64_t n, float *acc, int rows, const em_f16 *const *v, const float *p, int nj) {
#if defined(__x86_64__)
    if (have_avx2()) {
        axpy_f16_rows_avx(n, acc, rows, v, p, nj);
        return;
    }
#endif
    for (int j = 0; j < nj; j++) em_axpy_f16(n, acc + (size_t)(j % rows) * (size_t)n, v[j], p[j]);
}

void em_axpy_f32(int64_t n, float *a, const float *v, float p) {
#if defined(__x86_64__)
    if (have_avx2()) { axpy_f32_avx(n, a, v, p); return; }
#endif
    for (int64_t d = 0; d < n; d++) a[d] = fmaf(v[d], p, a[d]);
}

double em_ggml_softmax_exp(int64_t n, float *y, const float *x, float max) {
    int64_t i = 0;
    double sum = 0.0;
#if defined(__x86_64__)
    if (have_avx2())
        for (; i + 15 < n; i += 16) {
            softmax_chunk16_avx(y + i, x + i, max);
            sum += (double)em_reduce16(y + i);
        }
#endif
    for (; i + 15 < n; i += 16) {
        for (int l = 0; l < 16; l++) y[i + l] = em_ggml_v_expf(x[i + l] - max);
        sum += (double)em_reduce16(y + i);
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - max);
        sum += (double)y[i];
    }
    return sum;
}

void em_ggml_swiglu(int64_t n, float *y, const float *x, const float *g) {
    int64_t i = 0;
#if defined(__x86_64__)
    if (have_avx2())
        for (; i + 15 < n; i += 16) swiglu_chunk16_avx(y + i, x + i, g + i);
#endif
    for (; i + 15 < n; i += 16)
        for (int l = 0; l < 16; l++) {
            const float v = x[i + l];
            y[i + l] = (v / (1.0f + em_ggml_v_expf(0.0f - v))) * g[i + l];
        }
    for (; i < n; i++) y[i] = (x[i] / (1.0f + expf(-x[i]))) * g[i];
}
