/* gguf.h - read (mmap + validate) and write GGUF v2/v3 files.
 *
 * The reader validates the whole file up front: every length, count and
 * offset is checked against the file size with overflow-checked arithmetic,
 * so afterwards every pointer it hands out is in bounds. Strings in the file
 * are not NUL-terminated: they come back as em_str (pointer + length into the
 * mapping), valid until em_gguf_close(). A parsed em_gguf is read-only and
 * safe to share between threads. */
#ifndef EM_GGUF_H
#define EM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define EM_GGUF_MAGIC 0x46554747u /* "GGUF" little endian */
#define EM_GGUF_DEFAULT_ALIGNMENT 32
#define EM_GGUF_MAX_DIMS 4
#define EM_GGUF_MAX_NAME 64          /* tensor names are shorter than this (ggml's GGML_MAX_NAME) */
#define EM_GGUF_MAX_KEY 65535        /* longest metadata key */
#define EM_GGUF_MAX_STRING (64u << 20)  /* longest string value (64 MiB) */
#define EM_GGUF_MAX_ARRAY_DEPTH 8    /* nesting of arrays in arrays */
#define EM_GGUF_MAX_COUNT (1u << 24) /* most metadata pairs or tensors in one file */

/* Metadata value types (GGUF spec). */
enum em_gguf_vtype {
    EM_GGUF_U8 = 0, EM_GGUF_I8 = 1, EM_GGUF_U16 = 2, EM_GGUF_I16 = 3,
    EM_GGUF_U32 = 4, EM_GGUF_I32 = 5, EM_GGUF_F32 = 6, EM_GGUF_BOOL = 7,
    EM_GGUF_STRING = 8, EM_GGUF_ARRAY = 9, EM_GGUF_U64 = 10, EM_GGUF_I64 = 11,
    EM_GGUF_F64 = 12,
    EM_GGUF_VTYPE_COUNT
};

/* ggml tensor types (numbering is ggml's, fixed by the file format). */
enum em_type {
    EM_TYPE_F32 = 0, EM_TYPE_F16 = 1, EM_TYPE_Q4_0 = 2, EM_TYPE_Q4_1 = 3,
    EM_TYPE_Q5_0 = 6, EM_TYPE_Q5_1 = 7, EM_TYPE_Q8_0 = 8, EM_TYPE_Q8_1 = 9,
    EM_TYPE_Q2_K = 10, EM_TYPE_Q3_K = 11, EM_TYPE_Q4_K = 12, EM_TYPE_Q5_K = 13,
    EM_TYPE_Q6_K = 14, EM_TYPE_Q8_K = 15, EM_TYPE_IQ2_XXS = 16, EM_TYPE_IQ2_XS = 17,
    EM_TYPE_IQ3_XXS = 18, EM_TYPE_IQ1_S = 19, EM_TYPE_IQ4_NL = 20, EM_TYPE_IQ3_S = 21,
    EM_TYPE_IQ2_S = 22, EM_TYPE_IQ4_XS = 23, EM_TYPE_I8 = 24, EM_TYPE_I16 = 25,
    EM_TYPE_I32 = 26, EM_TYPE_I64 = 27, EM_TYPE_F64 = 28, EM_TYPE_IQ1_M = 29,
    EM_TYPE_BF16 = 30, EM_TYPE_TQ1_0 = 34, EM_TYPE_TQ2_0 = 35, EM_TYPE_MXFP4 = 39,
    EM_TYPE_COUNT = 40
};

/* Storage layout of a ggml type: elements per block and bytes per block.
 * Returns false for numbers that are not a known type. */
bool em_type_layout(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes);
/* "F32", "Q4_K", ... or NULL for an unknown number. */
const char *em_type_name(uint32_t type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * or the type is unknown. */
uint64_t em_type_row_bytes(uint32_t type, uint64_t n);

typedef struct em_str {
    const char *ptr; /* not NUL-terminated; points into the file mapping */
    uint64_t len;
} em_str;

bool em_str_eq(em_str s, const char *z);

typedef struct em_gguf_kv {
    em_str key;
    uint32_t type;         /* enum em_gguf_vtype */
    uint64_t file_offset;  /* where the key/value pair starts, for messages */
    union {
        uint64_t u64;      /* U8..U64 and BOOL, zero-extended */
        int64_t i64;       /* I8..I64, sign-extended */
        double f64;        /* F32, F64 */
        em_str str;        /* STRING */
    } v;
    /* ARRAY only: */
    uint32_t arr_type;     /* element type */
    uint64_t arr_n;        /* element count */
    const uint8_t *arr_data; /* raw elements (for fixed-size element types) */
    em_str *arr_strs;      /* STRING arrays: arr_n decoded strings (owned by the em_gguf) */
} em_gguf_kv;

typedef struct em_gguf_tensor {
    char name[EM_GGUF_MAX_NAME]; /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[EM_GGUF_MAX_DIMS]; /* ne[0] is the row length (fastest); unused dims are 1 */
    uint32_t type;          /* enum em_type */
    uint64_t offset;        /* relative to the data section */
    uint64_t nbytes;
    const void *data;       /* in the mapping, in bounds */
    uint64_t file_offset;   /* of the tensor info record, for messages */
} em_gguf_tensor;

typedef struct em_gguf {
    uint32_t version;
    uint64_t n_kv;
    em_gguf_kv *kv;
    uint64_t n_tensors;
    em_gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset;   /* file offset of the tensor data section */
    const uint8_t *base;    /* whole file */
    uint64_t size;
    /* private */
    int mapped;             /* base came from mmap and is unmapped at close */
    uint32_t *tensor_hash;  /* open-addressing index over tensor names */
    uint64_t tensor_hash_cap;
} em_gguf;

/* Maps and validates the file at path. On failure returns NULL and err names
 * the field and its file offset. */
em_gguf *em_gguf_open(const char *path, em_err *err);
/* Validates a caller-owned buffer (not copied; must outlive the em_gguf).
 * Used by the fuzzer and tests. */
em_gguf *em_gguf_open_mem(const void *data, size_t size, em_err *err);
void em_gguf_close(em_gguf *g);

/* Lookups return NULL / -1 when absent. */
const em_gguf_kv *em_gguf_find(const em_gguf *g, const char *key);
const em_gguf_tensor *em_gguf_find_tensor(const em_gguf *g, const char *name);

/* Typed getters. Absent key: return 0 and leave *out alone when the key is
 * optional (ok_missing), else fail. Integer getters accept any integer type
 * whose value fits; wrong type or out of range fails with the key named. */
int em_gguf_get_u32(const em_gguf *g, const char *key, uint32_t *out, bool ok_missing, em_err *err);
int em_gguf_get_u64(const em_gguf *g, const char *key, uint64_t *out, bool ok_missing, em_err *err);
int em_gguf_get_i32(const em_gguf *g, const char *key, int32_t *out, bool ok_missing, em_err *err);
int em_gguf_get_f32(const em_gguf *g, const char *key, float *out, bool ok_missing, em_err *err);
int em_gguf_get_bool(const em_gguf *g, const char *key, bool *out, bool ok_missing, em_err *err);
int em_gguf_get_str(const em_gguf *g, const char *key, em_str *out, bool ok_missing, em_err *err);
/* Array of the given element type; *out NULL if absent and ok_missing. */
int em_gguf_get_arr(const em_gguf *g, const char *key, uint32_t elem_type, const em_gguf_kv **out,
                    bool ok_missing, em_err *err);

const char *em_gguf_vtype_name(uint32_t t);

/* ---- writer ----
 * Builds a file in memory-light fashion: metadata and tensor infos are kept
 * until em_gguf_writer_finish(), tensor data is copied into an owned buffer.
 * All functions return 0 / -1 (err filled). */
typedef struct em_gguf_writer em_gguf_writer;

em_gguf_writer *em_gguf_writer_new(uint32_t alignment);
void em_gguf_writer_free(em_gguf_writer *w);
int em_gguf_write_u32(em_gguf_writer *w, const char *key, uint32_t v, em_err *err);
int em_gguf_write_i32(em_gguf_writer *w, const char *key, int32_t v, em_err *err);
int em_gguf_write_u64(em_gguf_writer *w, const char *key, uint64_t v, em_err *err);
int em_gguf_write_f32(em_gguf_writer *w, const char *key, float v, em_err *err);
int em_gguf_write_bool(em_gguf_writer *w, const char *key, bool v, em_err *err);
int em_gguf_write_str(em_gguf_writer *w, const char *key, const char *v, em_err *err);
/* Array of fixed-size elements (elem_type not STRING/ARRAY); data is copied. */
int em_gguf_write_arr(em_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                      uint64_t n, em_err *err);
/* Array of n NUL-terminated strings. */
int em_gguf_write_arr_str(em_gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                          em_err *err);
/* Adds a tensor; data (row_bytes(type, ne[0]) * ne[1] * ... bytes) is copied. */
int em_gguf_write_tensor(em_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                         const int64_t *ne, const void *data, em_err *err);
/* Streaming: declares a tensor whose bytes are produced while the file is
 * written. fill(user, index, name, dst, nbytes, err) must write all nbytes
 * bytes of tensor number `index` (in the order tensors were added) to dst
 * and return 0, or fill err and return -1 (the write then fails and no file
 * is left behind). Tensors are filled one at a time, in order, into a buffer
 * the writer reuses, so peak memory is the largest tensor. */
typedef int (*em_gguf_fill_fn)(void *user, uint64_t index, const char *name, void *dst, uint64_t nbytes,
                               em_err *err);
int em_gguf_write_tensor_fn(em_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, em_gguf_fill_fn fill, void *user, em_err *err);
uint64_t em_gguf_writer_n_tensors(const em_gguf_writer *w);
/* Copies one metadata pair from a parsed file (any type but arrays of
 * arrays; general.alignment is refused). */
int em_gguf_write_kv_copy(em_gguf_writer *w, const em_gguf_kv *kv, em_err *err);
/* Writes the file (v3). */
int em_gguf_writer_finish(em_gguf_writer *w, const char *path, em_err *err);

#endif
