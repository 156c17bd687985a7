/* test_quant_ref.c - the K-quant weight quantizers (quant_k.c, which runs
 * the reference search eight sub-blocks at a time in vector lanes, in an AVX2
 * and a baseline build) produce exactly the bytes of a line-by-line scalar
 * port of ggml's quantize_row_qX_K_ref (below, as quant_k.c had it before it
 * was vectorized; test_kernels checks that port's output against
 * llama-quantize's files). Inputs include the cases where the reference
 * branches: all-zero, constant, tiny (< GROUP_MAX_EPS), one-signed,
 * sparse, exactly representable ties, huge and denormal values. Built with
 * -ffp-contract=off like the library. */

#include "testutil.h"

#include <math.h>
#include <stdbool.h>

#include "base/half.h"
#include "tensor/quant.h"
#include "tensor/types.h"

#define GROUP_MAX_EPS 1e-15f

static inline int nearest_int(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ---- the scalar reference port ---- */

/* make_qx_quants with rmse_type 1 and no importance weights (w = x^2) */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml quantize_row_q2_K_ref */
static void ref_from_f32_q2_K(const float *x, void *dst, int64_t n) {
    em_block_q2_K *y = dst;
    uint8_t L[EM_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
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
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
            }
        }
        for (int j = 0; j < EM_QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

/* 6-bit scale/min pairs of Q4_K/Q5_K, packed as get_scale_min_k4 reads them. */
static void pack_k4_scales(uint8_t s[12], const float *scales, const float *mins, float inv_scale, float inv_min) {
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

/* Shared body of quantize_row_q4_K_ref / q5_K_ref: fills scales, d, dmin
 * and the integer levels L (0..nmax). */
static void k4_quantize_block(const float *x, uint8_t s[12], em_f16 *d_out, em_f16 *dmin_out, uint8_t L[256],
                              int nmax, float rmin, int nstep) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    pack_k4_scales(s, scales, mins, inv_scale, inv_min);
    *d_out = em_f32_to_f16(max_scale / 63.f);
    *dmin_out = em_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        em_k4_scale_min(j, s, &sc, &m);
        const float d = em_f16_to_f32(*d_out) * (float)sc;
        if (d == 0.0f) continue;
        const float dm = em_f16_to_f32(*dmin_out) * (float)m;
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

/* ggml quantize_row_q4_K_ref */
static void ref_from_f32_q4_K(const float *x, void *dst, int64_t n) {
    em_block_q4_K *y = dst;
    uint8_t L[EM_QK_K];
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        k4_quantize_block(x, y[i].scales, &y[i].d, &y[i].dmin, L, 15, -1.f, 20);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < EM_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* ggml quantize_row_q5_K_ref */
static void ref_from_f32_q5_K(const float *x, void *dst, int64_t n) {
    em_block_q5_K *y = dst;
    uint8_t L[EM_QK_K];
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        k4_quantize_block(x, y[i].scales, &y[i].d, &y[i].dmin, L, 31, -0.5f, 15);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, EM_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < EM_QK_K; j += 64, ql += 32) {
            for (int l = 0; l < 32; ++l) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) { l1 -= 16; qh[l] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[l] |= m2; }
                ql[l] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

/* ggml quantize_row_q6_K_ref */
static void ref_from_f32_q6_K(const float *x, void *dst, int64_t n) {
    em_block_q6_K *y = dst;
    int8_t L[EM_QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / EM_QK_K; i++, x += EM_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
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
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
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


/* ---- inputs ---- */

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float unif(void) { return (float)(rnd() >> 40) / 16777216.0f; } /* [0, 1) */
static float gauss(void) { return (unif() + unif() + unif() + unif() - 2.0f) * 1.7320508f; }

#define N_CASES 40
#define BLK 256

/* Block c of the test input (c < N_CASES, several blocks per kind). */
static void make_block(int c, float *x) {
    const int kind = c % 20;
    for (int i = 0; i < BLK; i++) x[i] = 0.02f * gauss();
    switch (kind) {
    case 0: break;                                                       /* like mkmodel's weights */
    case 1: for (int i = 0; i < BLK; i++) x[i] = 0; break;              /* all zero */
    case 2: for (int i = 0; i < BLK; i++) x[i] = 0.5f; break;           /* constant positive */
    case 3: for (int i = 0; i < BLK; i++) x[i] = -0.25f; break;         /* constant negative */
    case 4: for (int i = 0; i < BLK; i++) x[i] = 1e-20f * gauss(); break; /* below GROUP_MAX_EPS */
    case 5: for (int i = 0; i < BLK; i++) x[i] = fabsf(x[i]); break;     /* all positive: min > 0 */
    case 6: for (int i = 0; i < BLK; i++) x[i] = -fabsf(x[i]); break;    /* all negative */
    case 7: for (int i = 0; i < BLK; i++) x[i] = (rnd() % 13 == 0) ? gauss() : 0.0f; break; /* sparse */
    case 8: for (int i = 0; i < BLK; i++) x[i] = 0.5f * (float)((int)(rnd() % 9) - 4); break; /* ties */
    case 9: for (int i = 0; i < BLK; i++) x[i] *= 1e15f; break;          /* huge */
    case 10: for (int i = 0; i < BLK; i++) x[i] = 1e-39f * gauss(); break; /* denormal */
    case 11: for (int i = 0; i < 32; i++) x[i] = 0; for (int i = 96; i < 128; i++) x[i] = 0; break; /* zero sub-blocks */
    case 12: for (int i = 0; i < 16; i++) x[16 * 5 + i] = 3.0f; for (int i = 0; i < 32; i++) x[32 * 6 + i] = -1.0f; break; /* flat sub-blocks */
    case 13: x[rnd() % BLK] = 50.0f; break;                              /* one outlier */
    case 14: for (int i = 0; i < BLK; i++) x[i] = gauss() * (i % 32 < 16 ? 1e-3f : 10.0f); break; /* mixed scales */
    case 15: for (int i = 0; i < BLK; i++) x[i] = (float)(i % 7) - 3.0f; break; /* small integers */
    case 16: for (int i = 0; i < BLK; i++) x[i] = unif(); break;         /* uniform [0,1) */
    case 17: for (int i = 0; i < BLK; i++) if (i % 16 != 3) x[i] = 0; break; /* one value per sub-block */
    case 18: for (int i = 0; i < BLK; i++) x[i] = 1e-14f * gauss(); break; /* around the eps */
    default: for (int i = 0; i < BLK; i++) x[i] = gauss(); break;
    }
}

typedef void (*quant_fn)(const float *, void *, int64_t);

static void check_type(const char *name, quant_fn ref, quant_fn got, size_t bytes) {
    /* blocks one at a time, then a long row of random blocks */
    float *x = malloc(sizeof(float) * BLK * 64);
    uint8_t *a = malloc(bytes * 64), *b = malloc(bytes * 64);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    for (int scalar = 0; scalar < 2; scalar++) {
        em_kernels_force_scalar(scalar);
        for (int c = 0; c < N_CASES; c++) {
            make_block(c, x);
            memset(a, 0xAA, bytes);
            memset(b, 0x55, bytes);
            ref(x, a, BLK);
            got(x, b, BLK);
            if (memcmp(a, b, bytes) != 0)
                fail_msg("%s (%s kernels): case %d differs from the scalar reference", name,
                         em_kernels_isa(), c);
        }
        for (int i = 0; i < BLK * 64; i++) x[i] = 0.02f * gauss();
        ref(x, a, BLK * 64);
        got(x, b, BLK * 64);
        if (memcmp(a, b, bytes * 64) != 0) fail_msg("%s (%s kernels): 64-block row differs", name, em_kernels_isa());
    }
    em_kernels_force_scalar(false);
    free(x), free(a), free(b);
}

static void test_q2_K(void **state) {
    (void)state;
    check_type("Q2_K", ref_from_f32_q2_K, em_from_f32_q2_K, sizeof(em_block_q2_K));
}
static void test_q4_K(void **state) {
    (void)state;
    check_type("Q4_K", ref_from_f32_q4_K, em_from_f32_q4_K, sizeof(em_block_q4_K));
}
static void test_q5_K(void **state) {
    (void)state;
    check_type("Q5_K", ref_from_f32_q5_K, em_from_f32_q5_K, sizeof(em_block_q5_K));
}
static void test_q6_K(void **state) {
    (void)state;
    check_type("Q6_K", ref_from_f32_q6_K, em_from_f32_q6_K, sizeof(em_block_q6_K));
}

/* Many random blocks of mkmodel's distribution with random scales. */
static void test_random_many(void **state) {
    (void)state;
    const int nb = 2000;
    float *x = malloc(sizeof(float) * BLK * (size_t)nb);
    uint8_t *a = malloc(210 * (size_t)nb), *b = malloc(210 * (size_t)nb);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < BLK * nb; i++) x[i] = gauss() * (i % BLK == 0 ? 1.0f : 0.05f) * (1 + (float)((i / 32) % 5));
    static const struct { quant_fn ref, got; size_t bytes; const char *name; } t[] = {
        {ref_from_f32_q2_K, em_from_f32_q2_K, sizeof(em_block_q2_K), "Q2_K"},
        {ref_from_f32_q4_K, em_from_f32_q4_K, sizeof(em_block_q4_K), "Q4_K"},
        {ref_from_f32_q5_K, em_from_f32_q5_K, sizeof(em_block_q5_K), "Q5_K"},
        {ref_from_f32_q6_K, em_from_f32_q6_K, sizeof(em_block_q6_K), "Q6_K"},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        t[k].ref(x, a, (int64_t)BLK * nb);
        t[k].got(x, b, (int64_t)BLK * nb);
        for (int i = 0; i < nb; i++)
            if (memcmp(a + t[k].bytes * (size_t)i, b + t[k].bytes * (size_t)i, t[k].bytes) != 0)
                fail_msg("%s: block %d differs from the scalar reference", t[k].name, i);
    }
    free(x), free(a), free(b);
}

int main(void) {
    (void)em_kernels_isa(); /* initializes the half-precision tables */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q2_K),        cmocka_unit_test(test_q4_K), cmocka_unit_test(test_q5_K),
        cmocka_unit_test(test_q6_K),        cmocka_unit_test(test_random_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
