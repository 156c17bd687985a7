#include "half.h"

#include <pthread.h>

float em_f16_table[65536];

float em_f16_to_f32_slow(em_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            mant &= 0x3ff;
            u = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    return em_bits_f32(u);
}

em_f16 em_f32_to_f16(float f) {
    /* Same algorithm as ggml's fp32_to_fp16 (Maratyszcza's FP16 library):
     * exact round-to-nearest-even, as the F16C instruction does. */
    const float scale_to_inf = em_bits_f32(0x77800000u);
    const float scale_to_zero = em_bits_f32(0x08800000u);
    float base = (__builtin_fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = em_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = em_bits_f32((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = em_f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (em_f16)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static pthread_once_t half_once = PTHREAD_ONCE_INIT;

static void half_init_once(void) {
    for (uint32_t i = 0; i < 65536; i++) em_f16_table[i] = em_f16_to_f32_slow((em_f16)i);
}

void em_half_init(void) { pthread_once(&half_once, half_init_once); }
