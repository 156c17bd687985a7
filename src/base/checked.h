/* checked.h - overflow-checked size arithmetic. Each returns false on overflow
 * (and leaves *out unspecified); use for every size or offset derived from
 * untrusted input. */
#ifndef EM_CHECKED_H
#define EM_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool em_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool em_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool em_add_sz(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool em_mul_sz(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* Rounds x up to a multiple of align (a power of two). False on overflow. */
static inline bool em_align_u64(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (!em_add_u64(x, align - 1, &t)) return false;
    *out = t & ~(align - 1);
    return true;
}

/* malloc(n * size) with overflow check; NULL on overflow or failure. */
void *em_malloc_array(size_t n, size_t size);
void *em_calloc_array(size_t n, size_t size);

#endif
