/* fuzz_gguf.c - libFuzzer target for the GGUF reader (`make fuzz-gguf`).
 *
 * Parses the input with em_gguf_open_mem; when it is accepted, touches
 * everything the reader hands out (keys, string values, every string of
 * string arrays, fixed-size array data, every tensor's first and last byte)
 * and the lookup and getter paths, so ASan flags any pointer or length that
 * escapes the buffer. Seeds: `EMBER_WRITE_CORPUS=DIR build/tests/test_gguf`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n) {
    if (!n) return;
    const uint8_t *b = p;
    sink ^= b[0];
    sink ^= b[n - 1];
}

static uint32_t elem_size(uint32_t t) {
    switch (t) {
    case EM_GGUF_U8: case EM_GGUF_I8: case EM_GGUF_BOOL: return 1;
    case EM_GGUF_U16: case EM_GGUF_I16: return 2;
    case EM_GGUF_U32: case EM_GGUF_I32: case EM_GGUF_F32: return 4;
    case EM_GGUF_U64: case EM_GGUF_I64: case EM_GGUF_F64: return 8;
    default: return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Exact-size copy: libFuzzer's buffer may be followed by readable bytes. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    em_err err;
    em_gguf *g = em_gguf_open_mem(copy, size, &err);
    if (!g) {
        /* Every rejection must say why. */
        if (err.msg[0] == 0 || memchr(err.msg, 0, sizeof err.msg) == NULL) __builtin_trap();
        free(copy);
        return 0;
    }
    if (g->alignment == 0 || (g->alignment & (g->alignment - 1)) || g->data_offset > g->size) __builtin_trap();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const em_gguf_kv *kv = &g->kv[i];
        touch(kv->key.ptr, kv->key.len);
        if (kv->type >= EM_GGUF_VTYPE_COUNT) __builtin_trap();
        if (kv->type == EM_GGUF_STRING) touch(kv->v.str.ptr, kv->v.str.len);
        if (kv->type == EM_GGUF_ARRAY) {
            if (kv->arr_type == EM_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->arr_n; j++) touch(kv->arr_strs[j].ptr, kv->arr_strs[j].len);
            } else if (elem_size(kv->arr_type)) {
                touch(kv->arr_data, kv->arr_n * elem_size(kv->arr_type));
            }
        }
        /* lookup by key (keys may contain NULs: only look up clean ones) */
        if (kv->key.len < 256 && !memchr(kv->key.ptr, 0, kv->key.len)) {
            char key[256];
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = 0;
            const em_gguf_kv *f = em_gguf_find(g, key);
            if (f != kv) __builtin_trap();
            uint32_t u32; uint64_t u64; int32_t i32; float f32; bool b; em_str s; const em_gguf_kv *a;
            (void)em_gguf_get_u32(g, key, &u32, false, &err);
            (void)em_gguf_get_u64(g, key, &u64, false, &err);
            (void)em_gguf_get_i32(g, key, &i32, false, &err);
            (void)em_gguf_get_f32(g, key, &f32, false, &err);
            (void)em_gguf_get_bool(g, key, &b, false, &err);
            if (em_gguf_get_str(g, key, &s, false, &err) == 0) touch(s.ptr, s.len);
            (void)em_gguf_get_arr(g, key, kv->arr_type, &a, false, &err);
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const em_gguf_tensor *t = &g->tensors[i];
        if (strlen(t->name) == 0 || strlen(t->name) >= EM_GGUF_MAX_NAME) __builtin_trap();
        if (em_gguf_find_tensor(g, t->name) != t) __builtin_trap();
        if (t->n_dims < 1 || t->n_dims > EM_GGUF_MAX_DIMS) __builtin_trap();
        if ((const uint8_t *)t->data < g->base + g->data_offset ||
            t->nbytes > g->size - (uint64_t)((const uint8_t *)t->data - g->base))
            __builtin_trap();
        touch(t->data, t->nbytes);
    }
    em_gguf_close(g);
    free(copy);
    return 0;
}
