/* half.h - IEEE fp16 and bfloat16 conversions, bit-exact with ggml's
 * (round to nearest even; NaN preserved). Pure functions, thread safe. */
#ifndef EM_HALF_H
#define EM_HALF_H

#include <stdint.h>
#include <string.h>

typedef uint16_t em_f16;
typedef uint16_t em_bf16;

static inline uint32_t em_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float em_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* fp16 -> fp32 (exact). Uses a 64K lookup table after em_half_init(). */
float em_f16_to_f32_slow(em_f16 h);
extern float em_f16_table[65536];
static inline float em_f16_to_f32(em_f16 h) { return em_f16_table[h]; }

/* fp32 -> fp16, round to nearest even (matches F16C vcvtps2ph). */
em_f16 em_f32_to_f16(float f);

static inline float em_bf16_to_f32(em_bf16 h) { return em_bits_f32((uint32_t)h << 16); }
static inline em_bf16 em_f32_to_bf16(float f) {
    uint32_t u = em_f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (em_bf16)((u >> 16) | 64); /* quiet NaN */
    return (em_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* Fills em_f16_table; idempotent and thread safe (pthread_once). Called by
 * every library entry point that computes; tests may call it directly. */
void em_half_init(void);

#endif
