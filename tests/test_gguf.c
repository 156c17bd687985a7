/* test_gguf.c - GGUF reader and writer.
 *
 * A corpus of hand-made malformed files (built in code, never committed as
 * binaries): each must be rejected by em_gguf_open_mem and by em_gguf_open
 * with a message naming the offending field. Positive tests: files written
 * by the writer round-trip, a hand-built file with every value type and
 * nested arrays parses, v2 is accepted, the getters check types and ranges,
 * and the real model files open.
 *
 * With EMBER_WRITE_CORPUS=DIR the malformed and valid files are also written
 * to DIR (created if missing) as seeds for the fuzz target. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf/gguf.h"

/* ---- byte builder ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb;

static void b_raw(bb *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void b_u8(bb *b, uint8_t v) { b_raw(b, &v, 1); }
static void b_u32(bb *b, uint32_t v) { b_raw(b, &v, 4); }
static void b_u64(bb *b, uint64_t v) { b_raw(b, &v, 8); }
static void b_str(bb *b, const char *s) {
    b_u64(b, strlen(s));
    b_raw(b, s, strlen(s));
}
static void b_zeros(bb *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}
static void b_pad(bb *b, size_t align) {
    while (b->len % align) b_u8(b, 0);
}
static void b_set_u32(bb *b, size_t at, uint32_t v) { memcpy(b->p + at, &v, 4); }
static void b_set_u64(bb *b, size_t at, uint64_t v) { memcpy(b->p + at, &v, 8); }

static void hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_u32(b, EM_GGUF_MAGIC);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void kv_u32(bb *b, const char *k, uint32_t v) { b_str(b, k); b_u32(b, EM_GGUF_U32); b_u32(b, v); }
static void kv_str(bb *b, const char *k, const char *v) { b_str(b, k); b_u32(b, EM_GGUF_STRING); b_str(b, v); }
static void ti(bb *b, const char *name, uint32_t n_dims, const uint64_t *dims, uint32_t type, uint64_t off) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) b_u64(b, dims[d]);
    b_u32(b, type);
    b_u64(b, off);
}

/* The standard valid file, with the offset of every field recorded. */
#define LONG_NAME "a model name long enough to keep the counts plausible"
static struct {
    size_t n_tensors, n_kv;
    size_t kv1, kv1_type, kv1_val;           /* test.u32 */
    size_t kv2_val, kv2_bytes;               /* test.str: length, bytes */
    size_t kv3_atype, kv3_n, kv3_data;       /* test.arr: i32 x 4 */
    size_t kv4_n, kv4_elem1;                 /* test.strs: str x 3 */
    size_t t0, t0_ndims, t0_dims, t0_type, t0_off;
    size_t t1, t1_name, t1_off;
    size_t infos_end, data, t1_data, end;
} M;

static const uint64_t T0_DIMS[2] = {8, 2};  /* F32: 64 bytes at 0 */
static const uint64_t T1_DIMS[1] = {32};    /* Q8_0: 34 bytes at 64 */

static void good_ex(bb *b, uint32_t version, bool with_data) {
    hdr(b, version, 2, 5);
    M.n_tensors = 8;
    M.n_kv = 16;
    kv_str(b, "general.name", LONG_NAME);
    M.kv1 = b->len;
    b_str(b, "test.u32");
    M.kv1_type = b->len;
    b_u32(b, EM_GGUF_U32);
    M.kv1_val = b->len;
    b_u32(b, 7);
    b_str(b, "test.str");
    b_u32(b, EM_GGUF_STRING);
    M.kv2_val = b->len;
    b_u64(b, 5);
    M.kv2_bytes = b->len;
    b_raw(b, "hello", 5);
    b_str(b, "test.arr");
    b_u32(b, EM_GGUF_ARRAY);
    M.kv3_atype = b->len;
    b_u32(b, EM_GGUF_I32);
    M.kv3_n = b->len;
    b_u64(b, 4);
    M.kv3_data = b->len;
    for (int32_t i = 1; i <= 4; i++) b_u32(b, (uint32_t)-i);
    b_str(b, "test.strs");
    b_u32(b, EM_GGUF_ARRAY);
    b_u32(b, EM_GGUF_STRING);
    M.kv4_n = b->len;
    b_u64(b, 3);
    b_str(b, "a");
    M.kv4_elem1 = b->len;
    b_str(b, "bb");
    b_str(b, "ccc");
    M.t0 = b->len;
    b_str(b, "t0");
    M.t0_ndims = b->len;
    b_u32(b, 2);
    M.t0_dims = b->len;
    b_u64(b, T0_DIMS[0]);
    b_u64(b, T0_DIMS[1]);
    M.t0_type = b->len;
    b_u32(b, EM_TYPE_F32);
    M.t0_off = b->len;
    b_u64(b, 0);
    M.t1 = b->len;
    M.t1_name = b->len + 8;
    M.t1_off = M.t1 + 8 + 2 + 4 + 8 + 4;
    ti(b, "t1", 1, T1_DIMS, EM_TYPE_Q8_0, 64);
    M.infos_end = b->len;
    b_pad(b, 32);
    M.data = b->len;
    if (!with_data) return;
    for (int i = 0; i < 16; i++) {
        float f = (float)i * 0.5f;
        b_raw(b, &f, 4);
    }
    M.t1_data = b->len;
    for (int i = 0; i < 34; i++) b_u8(b, (uint8_t)(i * 7 + 1));
    b_pad(b, 32);
    M.end = b->len;
}
static void good(bb *b) { good_ex(b, 3, true); }

/* A file with one tensor described by the arguments, after one kv. */
static void one_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *dims, uint32_t type, uint64_t off) {
    hdr(b, 3, 1, 1);
    kv_str(b, "general.name", LONG_NAME);
    ti(b, name, n_dims, dims, type, off);
    b_pad(b, 32);
    b_zeros(b, 128);
}

/* A file with a single kv whose bytes (after the key) the caller appends. */
static void one_kv(bb *b, const char *key) {
    hdr(b, 3, 0, 1);
    b_str(b, key);
}

/* ---- the malformed corpus ---- */

typedef struct {
    const char *name;
    const char *expect[3]; /* substrings the message must contain */
    void (*build)(bb *b);
} bad_case;

#define TRUNC(fn, at) static void fn(bb *b) { good(b); b->len = (at); }
TRUNC(c_empty, 0)
TRUNC(c_trunc_magic, 2)
TRUNC(c_trunc_version, 6)
TRUNC(c_trunc_n_tensors, 12)
TRUNC(c_trunc_n_kv, 20)
TRUNC(c_trunc_key_len, M.kv1 + 3)
TRUNC(c_trunc_key_bytes, M.kv1 + 8 + 4)
TRUNC(c_trunc_value_type, M.kv1_type + 2)
TRUNC(c_trunc_u32_value, M.kv1_val + 3)
TRUNC(c_trunc_str_len, M.kv2_val + 4)
TRUNC(c_trunc_str_bytes, M.kv2_bytes + 2)
TRUNC(c_trunc_arr_type, M.kv3_atype + 1)
TRUNC(c_trunc_arr_count, M.kv3_n + 5)
TRUNC(c_trunc_arr_data, M.kv3_data + 6)
TRUNC(c_trunc_arr_str, M.kv4_elem1 + 9)
TRUNC(c_trunc_arr_str_len, M.kv4_elem1 + 4)
TRUNC(c_trunc_tensor_name, M.t0 + 9)
TRUNC(c_trunc_tensor_ndims, M.t0_ndims + 2)
TRUNC(c_trunc_tensor_dim, M.t0_dims + 12)
TRUNC(c_trunc_tensor_type, M.t0_type + 3)
TRUNC(c_trunc_tensor_offset, M.t0_off + 7)
TRUNC(c_trunc_before_data, M.infos_end + 1)
TRUNC(c_trunc_data, M.t1_data + 10)

static void c_bad_magic(bb *b) { good(b); b->p[3] = 'X'; }
static void c_version1(bb *b) { good(b); b_set_u32(b, 4, 1); }
static void c_version4(bb *b) { good(b); b_set_u32(b, 4, 4); }
static void c_version0(bb *b) { good(b); b_set_u32(b, 4, 0); }
static void c_huge_n_tensors(bb *b) { good(b); b_set_u64(b, M.n_tensors, UINT64_MAX); }
static void c_huge_n_kv(bb *b) { good(b); b_set_u64(b, M.n_kv, UINT64_MAX); }
/* 12 * n wraps around to a small number */
static void c_n_kv_mul_overflow(bb *b) { good(b); b_set_u64(b, M.n_kv, UINT64_MAX / 12 + 2); }
static void c_n_kv_over_limit(bb *b) {
    hdr(b, 3, 0, (uint64_t)EM_GGUF_MAX_COUNT + 1);
    b_zeros(b, 64);
}
/* One more pair announced than present: the tensor infos are read as a key. */
static void c_n_kv_plus_one(bb *b) {
    hdr(b, 3, 0, 2);
    kv_str(b, "general.name", LONG_NAME);
}
/* One more tensor announced: the zero padding is read as a tensor name. */
static void c_n_tensors_plus_one(bb *b) { good(b); b_set_u64(b, M.n_tensors, 3); }
static void c_str_len_huge(bb *b) { good(b); b_set_u64(b, M.kv2_val, UINT64_MAX); }
static void c_str_len_past_end(bb *b) { good(b); b_set_u64(b, M.kv2_val, 100000); }
static void c_key_len_huge(bb *b) { good(b); b_set_u64(b, M.kv1, UINT64_MAX - 3); }
static void c_key_empty(bb *b) {
    hdr(b, 3, 0, 2);
    kv_str(b, "general.name", LONG_NAME);
    kv_u32(b, "", 1);
}
static void c_duplicate_key(bb *b) {
    hdr(b, 3, 0, 3);
    kv_str(b, "general.name", LONG_NAME);
    kv_u32(b, "test.a", 1);
    kv_u32(b, "test.a", 2);
}
static void c_arr_count_huge_fixed(bb *b) { good(b); b_set_u64(b, M.kv3_n, UINT64_MAX / 2); }
static void c_arr_count_past_end(bb *b) { good(b); b_set_u64(b, M.kv3_n, 1u << 20); }
static void c_arr_str_past_end(bb *b) { good(b); b_set_u64(b, M.kv4_elem1, 1000); }
static void c_arr_str_len_huge(bb *b) { good(b); b_set_u64(b, M.kv4_elem1, UINT64_MAX); }
static void c_arr_count_huge_str(bb *b) { good(b); b_set_u64(b, M.kv4_n, UINT64_MAX); }
static void c_nested_too_deep(bb *b) {
    one_kv(b, "test.deep");
    b_u32(b, EM_GGUF_ARRAY);
    for (int d = 0; d < EM_GGUF_MAX_ARRAY_DEPTH; d++) { /* depth 1..8 are arrays of arrays */
        b_u32(b, EM_GGUF_ARRAY);
        b_u64(b, 1);
    }
    b_u32(b, EM_GGUF_U8); /* depth 9 */
    b_u64(b, 1);
    b_u8(b, 1);
}
static void c_nested_truncated(bb *b) {
    one_kv(b, "test.nested");
    b_u32(b, EM_GGUF_ARRAY);
    b_u32(b, EM_GGUF_ARRAY);
    b_u64(b, 2);
    b_u32(b, EM_GGUF_U16);
    b_u64(b, 2);
    b_u32(b, 0x00050005); /* 2 x u16 */
    b_u32(b, EM_GGUF_U16);
    b_u64(b, 3);
    b_u32(b, 1);          /* 3 x u16 needs 6 bytes, 4 present */
}
static void c_unknown_value_type(bb *b) { good(b); b_set_u32(b, M.kv1_type, EM_GGUF_VTYPE_COUNT); }
static void c_unknown_value_type_huge(bb *b) { good(b); b_set_u32(b, M.kv1_type, 0xffffffffu); }
static void c_unknown_array_type(bb *b) { good(b); b_set_u32(b, M.kv3_atype, 13); }
static void c_unknown_nested_type(bb *b) {
    one_kv(b, "test.nested");
    b_u32(b, EM_GGUF_ARRAY);
    b_u32(b, EM_GGUF_ARRAY);
    b_u64(b, 1);
    b_u32(b, 77);
    b_u64(b, 1);
    b_zeros(b, 16);
}
static void c_bool_not_01(bb *b) {
    one_kv(b, "test.flag");
    b_u32(b, EM_GGUF_BOOL);
    b_u8(b, 2);
    b_zeros(b, 8);
}
static void c_align_zero(bb *b) {
    hdr(b, 3, 0, 2);
    kv_str(b, "general.name", LONG_NAME);
    kv_u32(b, "general.alignment", 0);
}
static void c_align_not_pow2(bb *b) {
    hdr(b, 3, 0, 2);
    kv_str(b, "general.name", LONG_NAME);
    kv_u32(b, "general.alignment", 48);
}
static void c_align_wrong_type(bb *b) {
    hdr(b, 3, 0, 2);
    kv_str(b, "general.name", LONG_NAME);
    b_str(b, "general.alignment");
    b_u32(b, EM_GGUF_U64);
    b_u64(b, 32);
}
static void c_align_string(bb *b) {
    hdr(b, 3, 0, 2);
    kv_str(b, "general.name", LONG_NAME);
    kv_str(b, "general.alignment", "32");
}
/* alignment 64 makes tensor t1's offset 64 fine but t0 moves: use offset 32 */
static void c_align_misaligned_offset(bb *b) {
    static const uint64_t d[1] = {8};
    hdr(b, 3, 2, 2);
    kv_str(b, "general.name", LONG_NAME);
    kv_u32(b, "general.alignment", 64);
    ti(b, "a", 1, d, EM_TYPE_F32, 0);
    ti(b, "b", 1, d, EM_TYPE_F32, 32);
    b_pad(b, 64);
    b_zeros(b, 128);
}
static void c_ndims_0(bb *b) { good(b); b_set_u32(b, M.t0_ndims, 0); }
static void c_ndims_5(bb *b) {
    static const uint64_t d[5] = {1, 1, 1, 1, 1};
    one_tensor(b, "x", 5, d, EM_TYPE_F32, 0);
}
static void c_ndims_huge(bb *b) { good(b); b_set_u32(b, M.t0_ndims, 0x80000000u); }
static void c_dim_0(bb *b) { good(b); b_set_u64(b, M.t0_dims + 8, 0); }
static void c_dim_negative(bb *b) { good(b); b_set_u64(b, M.t0_dims, (uint64_t)INT64_MAX + 1); }
static void c_dims_overflow_u64(bb *b) {
    static const uint64_t d[3] = {1ull << 32, 1ull << 32, 4};
    one_tensor(b, "x", 3, d, EM_TYPE_F32, 0);
}
static void c_dims_overflow_i64(bb *b) {
    /* Q4_0: bytes = n/32*18 fit in u64, but the element count 2^63 does not fit in int64 */
    static const uint64_t d[2] = {1ull << 32, 1ull << 31};
    one_tensor(b, "x", 2, d, EM_TYPE_Q4_0, 0);
}
static void c_row_not_block_multiple(bb *b) {
    static const uint64_t d[1] = {33};
    one_tensor(b, "x", 1, d, EM_TYPE_Q8_0, 0);
}
static void c_unknown_tensor_type(bb *b) { good(b); b_set_u32(b, M.t0_type, 4); /* removed Q4_2 */ }
static void c_unknown_tensor_type_huge(bb *b) { good(b); b_set_u32(b, M.t0_type, 1000); }
static void c_offset_misaligned(bb *b) { good(b); b_set_u64(b, M.t1_off, 65); }
static void c_offset_past_end(bb *b) { good(b); b_set_u64(b, M.t1_off, 4096); }
static void c_offset_size_overflow(bb *b) { good(b); b_set_u64(b, M.t1_off, UINT64_MAX - 31); }
static void c_tensor_end_past_end(bb *b) { good(b); b_set_u64(b, M.t1_off, 96); } /* 96 + 34 > 128 */
static void c_duplicate_tensor(bb *b) { good(b); memcpy(b->p + M.t1_name, "t0", 2); }
static void c_tensor_name_too_long(bb *b) {
    char name[EM_GGUF_MAX_NAME + 1];
    memset(name, 'n', EM_GGUF_MAX_NAME);
    name[EM_GGUF_MAX_NAME] = 0;
    static const uint64_t d[1] = {4};
    one_tensor(b, name, 1, d, EM_TYPE_F32, 0);
}
static void c_tensor_name_nul(bb *b) { good(b); b->p[M.t1_name + 1] = 0; }
static void c_tensor_name_empty(bb *b) {
    static const uint64_t d[1] = {4};
    one_tensor(b, "", 1, d, EM_TYPE_F32, 0);
}
static void c_tensor_name_len_huge(bb *b) { good(b); b_set_u64(b, M.t0, UINT64_MAX); }

static const bad_case BAD[] = {
    {"empty", {"magic", "truncated"}, c_empty},
    {"trunc-magic", {"magic", "truncated"}, c_trunc_magic},
    {"bad-magic", {"magic"}, c_bad_magic},
    {"trunc-version", {"version", "truncated"}, c_trunc_version},
    {"version-1", {"version 1"}, c_version1},
    {"version-4", {"version 4"}, c_version4},
    {"version-0", {"version 0"}, c_version0},
    {"trunc-tensor-count", {"tensor count", "truncated"}, c_trunc_n_tensors},
    {"trunc-kv-count", {"metadata count", "truncated"}, c_trunc_n_kv},
    {"huge-tensor-count", {"tensor count"}, c_huge_n_tensors},
    {"huge-kv-count", {"metadata count"}, c_huge_n_kv},
    {"kv-count-mul-overflow", {"metadata count"}, c_n_kv_mul_overflow},
    {"kv-count-over-limit", {"metadata count"}, c_n_kv_over_limit},
    {"kv-count-plus-one", {"metadata key", "truncated"}, c_n_kv_plus_one},
    {"tensor-count-plus-one", {"tensor name"}, c_n_tensors_plus_one},
    {"trunc-key-length", {"metadata key", "truncated"}, c_trunc_key_len},
    {"trunc-key-bytes", {"metadata key", "truncated"}, c_trunc_key_bytes},
    {"trunc-value-type", {"value type", "truncated"}, c_trunc_value_type},
    {"trunc-u32-value", {"test.u32", "truncated"}, c_trunc_u32_value},
    {"trunc-string-length", {"test.str", "truncated"}, c_trunc_str_len},
    {"trunc-string-bytes", {"test.str", "truncated"}, c_trunc_str_bytes},
    {"trunc-array-type", {"array element type", "truncated"}, c_trunc_arr_type},
    {"trunc-array-count", {"array count", "truncated"}, c_trunc_arr_count},
    {"trunc-array-data", {"array data", "truncated"}, c_trunc_arr_data},
    {"trunc-array-string", {"test.strs", "array count"}, c_trunc_arr_str},
    {"trunc-array-string-length", {"test.strs", "array count"}, c_trunc_arr_str_len},
    {"array-string-past-end", {"test.strs", "truncated"}, c_arr_str_past_end},
    {"array-string-length-huge", {"test.strs", "string length"}, c_arr_str_len_huge},
    {"trunc-tensor-name", {"tensor name", "truncated"}, c_trunc_tensor_name},
    {"trunc-tensor-ndims", {"n_dims", "truncated"}, c_trunc_tensor_ndims},
    {"trunc-tensor-dim", {"tensor dimension", "truncated"}, c_trunc_tensor_dim},
    {"trunc-tensor-type", {"tensor type", "truncated"}, c_trunc_tensor_type},
    {"trunc-tensor-offset", {"tensor data offset", "truncated"}, c_trunc_tensor_offset},
    {"trunc-before-data", {"data section", "truncated"}, c_trunc_before_data},
    {"trunc-data", {"data section", "t1"}, c_trunc_data},
    {"string-length-huge", {"test.str", "string length"}, c_str_len_huge},
    {"string-length-past-end", {"test.str", "truncated"}, c_str_len_past_end},
    {"key-length-huge", {"metadata key", "string length"}, c_key_len_huge},
    {"key-empty", {"metadata key", "empty"}, c_key_empty},
    {"duplicate-key", {"duplicate metadata key", "test.a"}, c_duplicate_key},
    {"array-count-huge", {"test.arr", "overflows"}, c_arr_count_huge_fixed},
    {"array-count-past-end", {"array data", "truncated"}, c_arr_count_past_end},
    {"string-array-count-huge", {"test.strs", "array count"}, c_arr_count_huge_str},
    {"nested-array-too-deep", {"test.deep", "nested deeper"}, c_nested_too_deep},
    {"nested-array-truncated", {"array data", "truncated"}, c_nested_truncated},
    {"unknown-value-type", {"test.u32", "unknown value type 13"}, c_unknown_value_type},
    {"unknown-value-type-huge", {"test.u32", "unknown value type"}, c_unknown_value_type_huge},
    {"unknown-array-type", {"test.arr", "unknown array element type 13"}, c_unknown_array_type},
    {"unknown-nested-array-type", {"test.nested", "unknown array element type 77"}, c_unknown_nested_type},
    {"bool-not-0-or-1", {"test.flag", "bool"}, c_bool_not_01},
    {"alignment-zero", {"general.alignment", "power of two"}, c_align_zero},
    {"alignment-not-power-of-two", {"general.alignment 48", "power of two"}, c_align_not_pow2},
    {"alignment-wrong-type", {"general.alignment", "u64"}, c_align_wrong_type},
    {"alignment-string", {"general.alignment", "str"}, c_align_string},
    {"alignment-64-misaligned-offset", {"'b'", "offset", "alignment 64"}, c_align_misaligned_offset},
    {"tensor-ndims-0", {"t0", "n_dims 0"}, c_ndims_0},
    {"tensor-ndims-5", {"n_dims 5"}, c_ndims_5},
    {"tensor-ndims-huge", {"t0", "n_dims"}, c_ndims_huge},
    {"tensor-dim-0", {"t0", "dimension 1 is 0"}, c_dim_0},
    {"tensor-dim-over-int64", {"t0", "dimension 0"}, c_dim_negative},
    {"tensor-dims-overflow-u64", {"'x'", "size overflows"}, c_dims_overflow_u64},
    {"tensor-dims-overflow-i64", {"'x'", "element count overflows"}, c_dims_overflow_i64},
    {"tensor-row-not-block-multiple", {"row length 33", "block size 32"}, c_row_not_block_multiple},
    {"tensor-type-unknown", {"t0", "unknown tensor type 4"}, c_unknown_tensor_type},
    {"tensor-type-huge", {"t0", "unknown tensor type 1000"}, c_unknown_tensor_type_huge},
    {"tensor-offset-misaligned", {"t1", "offset 65", "alignment"}, c_offset_misaligned},
    {"tensor-offset-past-end", {"t1", "4096", "data section"}, c_offset_past_end},
    {"tensor-offset-size-overflow", {"t1", "data section"}, c_offset_size_overflow},
    {"tensor-end-past-end", {"t1", "data section"}, c_tensor_end_past_end},
    {"tensor-duplicate-name", {"duplicate tensor name", "t0"}, c_duplicate_tensor},
    {"tensor-name-too-long", {"tensor name", "length 64"}, c_tensor_name_too_long},
    {"tensor-name-nul", {"tensor name", "NUL"}, c_tensor_name_nul},
    {"tensor-name-empty", {"tensor name", "length 0"}, c_tensor_name_empty},
    {"tensor-name-length-huge", {"tensor name"}, c_tensor_name_len_huge},
};
#define N_BAD (sizeof BAD / sizeof BAD[0])

static char tmpdir[256];

static void make_tmpdir(void) {
    if (tmpdir[0]) return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-test-gguf-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void) {
    if (!tmpdir[0]) return;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static const char *tmp_path(const char *name) {
    static char p[512];
    make_tmpdir();
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static void expect_msg(const char *what, const char *msg, const char *const *expect) {
    for (int i = 0; i < 3 && expect[i]; i++)
        if (!strstr(msg, expect[i])) fail_msg("%s: message \"%s\" lacks \"%s\"", what, msg, expect[i]);
}

static void test_malformed_corpus(void **state) {
    (void)state;
    assert_true(N_BAD >= 45);
    for (size_t i = 0; i < N_BAD; i++) {
        bb b = {0};
        BAD[i].build(&b);
        em_err err = {{0}};
        /* Exact-size heap copy so ASan sees any read past the end. */
        uint8_t *copy = malloc(b.len ? b.len : 1);
        assert_non_null(copy);
        if (b.len) memcpy(copy, b.p, b.len);
        em_gguf *g = em_gguf_open_mem(copy, b.len, &err);
        if (g) fail_msg("case %s: accepted by em_gguf_open_mem", BAD[i].name);
        expect_msg(BAD[i].name, err.msg, BAD[i].expect);
        free(copy);

        const char *path = tmp_path("bad.gguf");
        write_bytes(path, b.p, b.len);
        memset(&err, 0, sizeof err);
        g = em_gguf_open(path, &err);
        if (g) fail_msg("case %s: accepted by em_gguf_open", BAD[i].name);
        expect_msg(BAD[i].name, err.msg, BAD[i].expect);
        if (!strstr(err.msg, path)) fail_msg("case %s: message \"%s\" lacks the path", BAD[i].name, err.msg);
        unlink(path);
        free(b.p);
    }
}

/* Every prefix of a valid file that cuts into the header, the metadata, the
 * tensor infos or the tensor data is rejected, from memory and from disk.
 * (Only the zero padding after the last tensor may be missing.) */
static void test_every_truncation(void **state) {
    (void)state;
    bb b = {0};
    good(&b);
    const char *path = tmp_path("prefix.gguf");
    size_t data_end = M.t1_data + 34;
    for (size_t n = data_end; n <= b.len; n++) {
        em_err err;
        em_gguf *g = em_gguf_open_mem(b.p, n, &err);
        if (!g) fail_msg("prefix of %zu bytes (all data present) rejected: %s", n, err.msg);
        em_gguf_close(g);
    }
    for (size_t n = 0; n < data_end; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.p, n);
        em_err err = {{0}};
        em_gguf *g = em_gguf_open_mem(copy, n, &err);
        if (g) fail_msg("prefix of %zu bytes accepted", n);
        assert_true(err.msg[0] != 0);
        free(copy);
        write_bytes(path, b.p, n);
        memset(&err, 0, sizeof err);
        g = em_gguf_open(path, &err);
        if (g) fail_msg("prefix file of %zu bytes accepted", n);
        assert_true(err.msg[0] != 0);
    }
    unlink(path);
    free(b.p);
}

static void check_good(const em_gguf *g, uint32_t version) {
    assert_int_equal(g->version, version);
    assert_int_equal(g->n_kv, 5);
    assert_int_equal(g->n_tensors, 2);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset, M.data);
    em_err err;
    em_str s;
    assert_int_equal(em_gguf_get_str(g, "general.name", &s, false, &err), 0);
    assert_true(em_str_eq(s, LONG_NAME));
    const em_gguf_kv *a;
    assert_int_equal(em_gguf_get_arr(g, "test.strs", EM_GGUF_STRING, &a, false, &err), 0);
    assert_int_equal(a->arr_n, 3);
    assert_true(em_str_eq(a->arr_strs[2], "ccc"));
    assert_int_equal(em_gguf_get_arr(g, "test.arr", EM_GGUF_I32, &a, false, &err), 0);
    int32_t v[4];
    memcpy(v, a->arr_data, sizeof v);
    assert_int_equal(v[0], -1);
    assert_int_equal(v[3], -4);
    const em_gguf_tensor *t = em_gguf_find_tensor(g, "t1");
    assert_non_null(t);
    assert_int_equal(t->type, EM_TYPE_Q8_0);
    assert_int_equal(t->nbytes, 34);
    assert_int_equal(t->offset, 64);
    assert_int_equal(((const uint8_t *)t->data)[33], (uint8_t)(33 * 7 + 1));
    t = em_gguf_find_tensor(g, "t0");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 8);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(t->ne[2], 1);
    float f;
    memcpy(&f, (const uint8_t *)t->data + 15 * 4, 4);
    assert_true(f == 7.5f);
    assert_null(em_gguf_find_tensor(g, "t2"));
    assert_null(em_gguf_find(g, "nope"));
}

static void test_good_v3_and_v2(void **state) {
    (void)state;
    for (uint32_t version = 2; version <= 3; version++) {
        bb b = {0};
        good_ex(&b, version, true);
        em_err err = {{0}};
        em_gguf *g = em_gguf_open_mem(b.p, b.len, &err);
        if (!g) fail_msg("v%u: %s", version, err.msg);
        check_good(g, version);
        em_gguf_close(g);
        const char *path = tmp_path("good.gguf");
        write_bytes(path, b.p, b.len);
        g = em_gguf_open(path, &err);
        if (!g) fail_msg("v%u file: %s", version, err.msg);
        check_good(g, version);
        em_gguf_close(g);
        unlink(path);
        free(b.p);
    }
}

/* Every scalar type, nested arrays (depth 8 is the limit), empty arrays, a
 * file with no tensors and no data section. */
static void build_all_types(bb *b) {
    hdr(b, 3, 0, 18);
    b_str(b, "u8"); b_u32(b, EM_GGUF_U8); b_u8(b, 200);
    b_str(b, "i8"); b_u32(b, EM_GGUF_I8); b_u8(b, (uint8_t)-100);
    b_str(b, "u16"); b_u32(b, EM_GGUF_U16); uint16_t u16 = 60000; b_raw(b, &u16, 2);
    b_str(b, "i16"); b_u32(b, EM_GGUF_I16); int16_t i16 = -30000; b_raw(b, &i16, 2);
    b_str(b, "u32"); b_u32(b, EM_GGUF_U32); b_u32(b, 4000000000u);
    b_str(b, "i32"); b_u32(b, EM_GGUF_I32); b_u32(b, (uint32_t)-2000000000);
    b_str(b, "f32"); b_u32(b, EM_GGUF_F32); float f = 1.5f; b_raw(b, &f, 4);
    b_str(b, "bool"); b_u32(b, EM_GGUF_BOOL); b_u8(b, 1);
    b_str(b, "str"); b_u32(b, EM_GGUF_STRING); b_str(b, "");
    b_str(b, "u64"); b_u32(b, EM_GGUF_U64); b_u64(b, UINT64_MAX);
    b_str(b, "i64"); b_u32(b, EM_GGUF_I64); b_u64(b, (uint64_t)INT64_MIN);
    b_str(b, "f64"); b_u32(b, EM_GGUF_F64); double d = -2.25; b_raw(b, &d, 8);
    b_str(b, "arr.empty"); b_u32(b, EM_GGUF_ARRAY); b_u32(b, EM_GGUF_F64); b_u64(b, 0);
    b_str(b, "arr.empty_str"); b_u32(b, EM_GGUF_ARRAY); b_u32(b, EM_GGUF_STRING); b_u64(b, 0);
    b_str(b, "arr.bool"); b_u32(b, EM_GGUF_ARRAY); b_u32(b, EM_GGUF_BOOL); b_u64(b, 3);
    b_u8(b, 0); b_u8(b, 1); b_u8(b, 0);
    /* [[1, 2], [], [[ "x" ]]] */
    b_str(b, "arr.nested"); b_u32(b, EM_GGUF_ARRAY); b_u32(b, EM_GGUF_ARRAY); b_u64(b, 3);
    b_u32(b, EM_GGUF_I16); b_u64(b, 2); b_u32(b, 0x00020001);
    b_u32(b, EM_GGUF_U8); b_u64(b, 0);
    b_u32(b, EM_GGUF_ARRAY); b_u64(b, 1); b_u32(b, EM_GGUF_STRING); b_u64(b, 1); b_str(b, "x");
    /* the deepest nesting accepted: 8 levels */
    b_str(b, "arr.deep"); b_u32(b, EM_GGUF_ARRAY);
    for (int i = 1; i < EM_GGUF_MAX_ARRAY_DEPTH; i++) { b_u32(b, EM_GGUF_ARRAY); b_u64(b, 1); }
    b_u32(b, EM_GGUF_U8); b_u64(b, 2); b_u8(b, 1); b_u8(b, 2);
    b_str(b, "key with \xe2\x96\x81 utf8"); b_u32(b, EM_GGUF_U32); b_u32(b, 1);
}

static void test_all_value_types(void **state) {
    (void)state;
    bb b = {0};
    build_all_types(&b);
    em_err err = {{0}};
    em_gguf *g = em_gguf_open_mem(b.p, b.len, &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(g->n_kv, 18);
    assert_int_equal(g->n_tensors, 0);
    assert_int_equal(em_gguf_find(g, "u8")->v.u64, 200);
    assert_int_equal(em_gguf_find(g, "i8")->v.i64, -100);
    assert_int_equal(em_gguf_find(g, "u16")->v.u64, 60000);
    assert_int_equal(em_gguf_find(g, "i16")->v.i64, -30000);
    assert_int_equal(em_gguf_find(g, "i32")->v.i64, -2000000000);
    assert_true(em_gguf_find(g, "i64")->v.i64 == INT64_MIN);
    assert_true(em_gguf_find(g, "u64")->v.u64 == UINT64_MAX);
    assert_true(em_gguf_find(g, "f32")->v.f64 == 1.5);
    assert_true(em_gguf_find(g, "f64")->v.f64 == -2.25);
    assert_int_equal(em_gguf_find(g, "str")->v.str.len, 0);
    const em_gguf_kv *n = em_gguf_find(g, "arr.nested");
    assert_int_equal(n->arr_type, EM_GGUF_ARRAY);
    assert_int_equal(n->arr_n, 3);
    assert_int_equal(em_gguf_find(g, "arr.deep")->arr_n, 1);
    assert_int_equal(em_gguf_find(g, "arr.empty_str")->arr_n, 0);
    assert_non_null(em_gguf_find(g, "key with \xe2\x96\x81 utf8"));

    /* getters: type and range checks */
    uint32_t u32 = 99;
    uint64_t u64;
    int32_t i32;
    float fl;
    bool bo;
    em_str s;
    const em_gguf_kv *kv;
    assert_int_equal(em_gguf_get_u32(g, "u8", &u32, false, &err), 0);
    assert_int_equal(u32, 200);
    assert_int_equal(em_gguf_get_u32(g, "u32", &u32, false, &err), 0);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(em_gguf_get_u32(g, "u64", &u32, false, &err), -1);
    assert_non_null(strstr(err.msg, "'u64'"));
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(em_gguf_get_u32(g, "i8", &u32, false, &err), -1); /* negative */
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(em_gguf_get_u32(g, "f32", &u32, false, &err), -1);
    assert_non_null(strstr(err.msg, "expected an integer"));
    assert_int_equal(em_gguf_get_u32(g, "str", &u32, false, &err), -1);
    assert_int_equal(em_gguf_get_u32(g, "absent", &u32, false, &err), -1);
    assert_non_null(strstr(err.msg, "missing metadata key 'absent'"));
    u32 = 12345;
    assert_int_equal(em_gguf_get_u32(g, "absent", &u32, true, &err), 0);
    assert_int_equal(u32, 12345);
    assert_int_equal(em_gguf_get_u64(g, "u64", &u64, false, &err), 0);
    assert_true(u64 == UINT64_MAX);
    assert_int_equal(em_gguf_get_u64(g, "i64", &u64, false, &err), -1);
    assert_int_equal(em_gguf_get_i32(g, "i8", &i32, false, &err), 0);
    assert_int_equal(i32, -100);
    assert_int_equal(em_gguf_get_i32(g, "i16", &i32, false, &err), 0);
    assert_int_equal(i32, -30000);
    assert_int_equal(em_gguf_get_i32(g, "u32", &i32, false, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(em_gguf_get_i32(g, "i64", &i32, false, &err), -1);
    assert_int_equal(em_gguf_get_f32(g, "f64", &fl, false, &err), 0);
    assert_true(fl == -2.25f);
    assert_int_equal(em_gguf_get_f32(g, "u16", &fl, false, &err), 0);
    assert_true(fl == 60000.0f);
    assert_int_equal(em_gguf_get_f32(g, "bool", &fl, false, &err), -1);
    assert_non_null(strstr(err.msg, "expected a number"));
    assert_int_equal(em_gguf_get_bool(g, "bool", &bo, false, &err), 0);
    assert_true(bo);
    assert_int_equal(em_gguf_get_bool(g, "u8", &bo, false, &err), -1);
    assert_non_null(strstr(err.msg, "expected bool"));
    assert_int_equal(em_gguf_get_str(g, "str", &s, false, &err), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(em_gguf_get_str(g, "u8", &s, false, &err), -1);
    assert_non_null(strstr(err.msg, "expected str"));
    assert_int_equal(em_gguf_get_arr(g, "arr.bool", EM_GGUF_BOOL, &kv, false, &err), 0);
    assert_int_equal(kv->arr_n, 3);
    assert_int_equal(em_gguf_get_arr(g, "arr.bool", EM_GGUF_U8, &kv, false, &err), -1);
    assert_null(kv);
    assert_non_null(strstr(err.msg, "array of bool, expected u8"));
    assert_int_equal(em_gguf_get_arr(g, "u8", EM_GGUF_U8, &kv, false, &err), -1);
    assert_non_null(strstr(err.msg, "expected an array"));
    assert_int_equal(em_gguf_get_arr(g, "absent", EM_GGUF_U8, &kv, true, &err), 0);
    assert_null(kv);
    em_gguf_close(g);
    free(b.p);
}

/* ---- writer ---- */

static void test_writer_roundtrip(void **state) {
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t align = pass ? 64 : 0; /* 0 = default 32 */
        em_gguf_writer *w = em_gguf_writer_new(align);
        assert_non_null(w);
        em_err err = {{0}};
        assert_int_equal(em_gguf_write_u32(w, "k.u32", 0xdeadbeefu, &err), 0);
        assert_int_equal(em_gguf_write_i32(w, "k.i32", -7, &err), 0);
        assert_int_equal(em_gguf_write_u64(w, "k.u64", 1ull << 40, &err), 0);
        assert_int_equal(em_gguf_write_f32(w, "k.f32", 0.25f, &err), 0);
        assert_int_equal(em_gguf_write_bool(w, "k.bool", true, &err), 0);
        assert_int_equal(em_gguf_write_str(w, "k.str", "h\xc3\xa9llo", &err), 0);
        assert_int_equal(em_gguf_write_str(w, "k.empty", "", &err), 0);
        /* every fixed-size element type */
        static const uint8_t a8[3] = {1, 0, 255};
        static const int8_t ai8[2] = {-128, 127};
        static const uint16_t a16[2] = {1, 65535};
        static const int16_t ai16[2] = {-32768, 5};
        static const uint32_t a32[2] = {7, 4000000000u};
        static const int32_t ai32[3] = {-1, 0, 1};
        static const float af[2] = {1.0f, -0.5f};
        static const uint8_t ab[4] = {1, 0, 0, 1};
        static const uint64_t a64[1] = {UINT64_MAX};
        static const int64_t ai64[2] = {INT64_MIN, 3};
        static const double ad[2] = {1e300, -0.0};
        struct { const char *k; uint32_t t; const void *d; uint64_t n; size_t es; } arrs[] = {
            {"a.u8", EM_GGUF_U8, a8, 3, 1},     {"a.i8", EM_GGUF_I8, ai8, 2, 1},
            {"a.u16", EM_GGUF_U16, a16, 2, 2},  {"a.i16", EM_GGUF_I16, ai16, 2, 2},
            {"a.u32", EM_GGUF_U32, a32, 2, 4},  {"a.i32", EM_GGUF_I32, ai32, 3, 4},
            {"a.f32", EM_GGUF_F32, af, 2, 4},   {"a.bool", EM_GGUF_BOOL, ab, 4, 1},
            {"a.u64", EM_GGUF_U64, a64, 1, 8},  {"a.i64", EM_GGUF_I64, ai64, 2, 8},
            {"a.f64", EM_GGUF_F64, ad, 2, 8},   {"a.empty", EM_GGUF_F32, NULL, 0, 4},
        };
        for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++)
            assert_int_equal(em_gguf_write_arr(w, arrs[i].k, arrs[i].t, arrs[i].d, arrs[i].n, &err), 0);
        const char *strs[] = {"zero", "", "two \xe2\x96\x81"};
        assert_int_equal(em_gguf_write_arr_str(w, "a.str", strs, 3, &err), 0);

        /* tensors: odd sizes so the padding matters */
        float t0[3 * 5];
        for (int i = 0; i < 15; i++) t0[i] = (float)i - 3.0f;
        uint8_t q[2 * 34 * 3];
        for (size_t i = 0; i < sizeof q; i++) q[i] = (uint8_t)(i * 13);
        uint16_t h[7];
        for (int i = 0; i < 7; i++) h[i] = (uint16_t)(0x3c00 + i);
        int64_t ne0[2] = {3, 5}, ne1[3] = {64, 1, 3}, ne2[1] = {7}, ne3[4] = {1, 1, 1, 1};
        assert_int_equal(em_gguf_write_tensor(w, "t.f32", EM_TYPE_F32, 2, ne0, t0, &err), 0);
        assert_int_equal(em_gguf_write_tensor(w, "t.q8", EM_TYPE_Q8_0, 3, ne1, q, &err), 0);
        assert_int_equal(em_gguf_write_tensor(w, "t.f16", EM_TYPE_F16, 1, ne2, h, &err), 0);
        assert_int_equal(em_gguf_write_tensor(w, "t.4d", EM_TYPE_F32, 4, ne3, t0, &err), 0);
        const char *path = tmp_path("written.gguf");
        if (em_gguf_writer_finish(w, path, &err)) fail_msg("%s", err.msg);
        em_gguf_writer_free(w);

        em_gguf *g = em_gguf_open(path, &err);
        if (!g) fail_msg("%s", err.msg);
        uint32_t A = pass ? 64 : 32;
        assert_int_equal(g->version, 3);
        assert_int_equal(g->alignment, A);
        const em_gguf_kv *ak = em_gguf_find(g, "general.alignment");
        if (pass) {
            assert_non_null(ak);
            assert_int_equal(ak->type, EM_GGUF_U32);
            assert_int_equal(ak->v.u64, 64);
            assert_ptr_equal(ak, &g->kv[0]);
        } else {
            assert_null(ak); /* not written for the default */
        }
        assert_int_equal(g->n_kv, 7 + 12 + 1 + (pass ? 1 : 0));
        assert_int_equal(g->data_offset % A, 0);
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        float f;
        bool bo;
        em_str s;
        assert_int_equal(em_gguf_get_u32(g, "k.u32", &u32, false, &err), 0);
        assert_int_equal(u32, 0xdeadbeefu);
        assert_int_equal(em_gguf_get_i32(g, "k.i32", &i32, false, &err), 0);
        assert_int_equal(i32, -7);
        assert_int_equal(em_gguf_get_u64(g, "k.u64", &u64, false, &err), 0);
        assert_true(u64 == 1ull << 40);
        assert_int_equal(em_gguf_get_f32(g, "k.f32", &f, false, &err), 0);
        assert_true(f == 0.25f);
        assert_int_equal(em_gguf_get_bool(g, "k.bool", &bo, false, &err), 0);
        assert_true(bo);
        assert_int_equal(em_gguf_get_str(g, "k.str", &s, false, &err), 0);
        assert_true(em_str_eq(s, "h\xc3\xa9llo"));
        assert_int_equal(em_gguf_get_str(g, "k.empty", &s, false, &err), 0);
        assert_int_equal(s.len, 0);
        for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
            const em_gguf_kv *kv;
            if (em_gguf_get_arr(g, arrs[i].k, arrs[i].t, &kv, false, &err)) fail_msg("%s", err.msg);
            assert_int_equal(kv->arr_n, arrs[i].n);
            if (arrs[i].n) assert_memory_equal(kv->arr_data, arrs[i].d, arrs[i].n * arrs[i].es);
        }
        const em_gguf_kv *kv;
        assert_int_equal(em_gguf_get_arr(g, "a.str", EM_GGUF_STRING, &kv, false, &err), 0);
        assert_int_equal(kv->arr_n, 3);
        for (int i = 0; i < 3; i++) assert_true(em_str_eq(kv->arr_strs[i], strs[i]));

        assert_int_equal(g->n_tensors, 4);
        const char *names[4] = {"t.f32", "t.q8", "t.f16", "t.4d"};
        const void *datas[4] = {t0, q, h, t0};
        uint64_t sizes[4] = {60, sizeof q, 14, 4};
        uint64_t expect_off = 0;
        for (int i = 0; i < 4; i++) {
            const em_gguf_tensor *t = &g->tensors[i];
            assert_string_equal(t->name, names[i]);
            assert_int_equal(t->nbytes, sizes[i]);
            assert_int_equal(t->offset, expect_off); /* laid out in order, padded */
            assert_memory_equal(t->data, datas[i], sizes[i]);
            expect_off += (sizes[i] + A - 1) / A * A;
        }
        assert_int_equal(g->tensors[1].ne[2], 3);
        assert_int_equal(g->tensors[3].n_dims, 4);
        /* the last tensor is padded too (as ggml's writer does) */
        assert_int_equal(g->size, g->data_offset + expect_off);
        em_gguf_close(g);
        unlink(path);
    }
}

static void test_writer_empty(void **state) {
    (void)state;
    em_gguf_writer *w = em_gguf_writer_new(32);
    em_err err;
    const char *path = tmp_path("empty.gguf");
    assert_int_equal(em_gguf_writer_finish(w, path, &err), 0);
    em_gguf_writer_free(w);
    size_t n = 0;
    char *d = read_file(path, &n);
    assert_non_null(d);
    assert_int_equal(n, 32); /* 24-byte header padded to the alignment */
    free(d);
    em_gguf *g = em_gguf_open(path, &err);
    assert_non_null(g);
    assert_int_equal(g->n_kv, 0);
    assert_int_equal(g->n_tensors, 0);
    em_gguf_close(g);
    unlink(path);
}

static void test_writer_rejects(void **state) {
    (void)state;
    assert_null(em_gguf_writer_new(3));
    assert_null(em_gguf_writer_new(48));
    em_gguf_writer *w = em_gguf_writer_new(32);
    assert_non_null(w);
    em_err err = {{0}};
    assert_int_equal(em_gguf_write_u32(w, "a", 1, &err), 0);
    assert_int_equal(em_gguf_write_u32(w, "a", 2, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate metadata key 'a'"));
    assert_int_equal(em_gguf_write_str(w, "a", "x", &err), -1);
    assert_int_equal(em_gguf_write_u32(w, "", 2, &err), -1);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(em_gguf_write_u32(w, "general.alignment", 64, &err), -1);
    assert_non_null(strstr(err.msg, "alignment"));
    assert_int_equal(em_gguf_write_u64(w, "general.alignment", 32, &err), -1);
    assert_int_equal(em_gguf_write_arr(w, "arr", EM_GGUF_STRING, "x", 1, &err), -1);
    assert_int_equal(em_gguf_write_arr(w, "arr", EM_GGUF_ARRAY, "x", 1, &err), -1);
    assert_int_equal(em_gguf_write_arr(w, "arr", 99, "x", 1, &err), -1);
    static const uint8_t bad_bool[2] = {0, 2};
    assert_int_equal(em_gguf_write_arr(w, "arr", EM_GGUF_BOOL, bad_bool, 2, &err), -1);
    assert_non_null(strstr(err.msg, "bool"));
    assert_int_equal(em_gguf_write_arr(w, "arr", EM_GGUF_U64, bad_bool, UINT64_MAX / 4, &err), -1);
    const char *strs[2] = {"a", NULL};
    assert_int_equal(em_gguf_write_arr_str(w, "arr", strs, 2, &err), -1);
    /* the failed calls left no trace: "arr" is still free */
    assert_int_equal(em_gguf_write_arr_str(w, "arr", strs, 1, &err), 0);

    float d[64] = {0};
    int64_t ne[4] = {4, 2, 1, 1};
    assert_int_equal(em_gguf_write_tensor(w, "t", EM_TYPE_F32, 2, ne, d, &err), 0);
    assert_int_equal(em_gguf_write_tensor(w, "t", EM_TYPE_F32, 2, ne, d, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate tensor name 't'"));
    assert_int_equal(em_gguf_write_tensor(w, "", EM_TYPE_F32, 2, ne, d, &err), -1);
    char longname[EM_GGUF_MAX_NAME + 1];
    memset(longname, 'x', EM_GGUF_MAX_NAME);
    longname[EM_GGUF_MAX_NAME] = 0;
    assert_int_equal(em_gguf_write_tensor(w, longname, EM_TYPE_F32, 2, ne, d, &err), -1);
    longname[EM_GGUF_MAX_NAME - 1] = 0; /* 63 characters: the longest allowed */
    assert_int_equal(em_gguf_write_tensor(w, longname, EM_TYPE_F32, 2, ne, d, &err), 0);
    assert_int_equal(em_gguf_write_tensor(w, "u", EM_TYPE_F32, 0, ne, d, &err), -1);
    assert_non_null(strstr(err.msg, "n_dims"));
    assert_int_equal(em_gguf_write_tensor(w, "u", EM_TYPE_F32, 5, ne, d, &err), -1);
    assert_int_equal(em_gguf_write_tensor(w, "u", 4, 2, ne, d, &err), -1);
    assert_non_null(strstr(err.msg, "unknown tensor type"));
    assert_int_equal(em_gguf_write_tensor(w, "u", EM_TYPE_Q8_0, 2, ne, d, &err), -1);
    assert_non_null(strstr(err.msg, "block size"));
    int64_t zero[2] = {4, 0}, neg[2] = {-4, 1}, big[3] = {1ll << 40, 1ll << 40, 1ll << 40};
    assert_int_equal(em_gguf_write_tensor(w, "u", EM_TYPE_F32, 2, zero, d, &err), -1);
    assert_int_equal(em_gguf_write_tensor(w, "u", EM_TYPE_F32, 2, neg, d, &err), -1);
    assert_int_equal(em_gguf_write_tensor(w, "u", EM_TYPE_F32, 3, big, d, &err), -1);
    assert_non_null(strstr(err.msg, "overflows"));

    /* output into a missing directory: error, nothing created */
    const char *bad = "/nonexistent-dir-ember/x.gguf";
    assert_int_equal(em_gguf_writer_finish(w, bad, &err), -1);
    assert_non_null(strstr(err.msg, "nonexistent-dir-ember"));
    /* the writer is still usable */
    const char *path = tmp_path("after-error.gguf");
    assert_int_equal(em_gguf_writer_finish(w, path, &err), 0);
    em_gguf *g = em_gguf_open(path, &err);
    assert_non_null(g);
    assert_int_equal(g->n_tensors, 2);
    assert_int_equal(g->n_kv, 2);
    em_gguf_close(g);
    unlink(path);
    em_gguf_writer_free(w);
}

/* A write that fails half way (file size limit) leaves neither the output
 * nor the temporary file behind. Run in a child: setrlimit is per process. */
static void test_writer_no_partial_output(void **state) {
    (void)state;
    make_tmpdir();
    const char *path = tmp_path("partial.gguf");
    char out[512];
    snprintf(out, sizeof out, "%s", path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
        em_gguf_writer *w = em_gguf_writer_new(32);
        static float big[16384];
        int64_t ne[1] = {16384};
        em_err err;
        if (!w || em_gguf_write_tensor(w, "big", EM_TYPE_F32, 1, ne, big, &err)) _exit(4);
        int rc = em_gguf_writer_finish(w, out, &err);
        em_gguf_writer_free(w);
        _exit(rc == -1 && strstr(err.msg, "write failed") ? 0 : 5);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(access(out, F_OK), -1);
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, "partial")) fail_msg("left behind: %s", e->d_name);
    closedir(d);
}

/* Overwriting an existing file replaces it atomically. */
static void test_writer_replaces(void **state) {
    (void)state;
    const char *path = tmp_path("replace.gguf");
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    write_bytes(p, "old", 3);
    em_gguf_writer *w = em_gguf_writer_new(32);
    em_err err;
    assert_int_equal(em_gguf_write_str(w, "general.name", "new", &err), 0);
    assert_int_equal(em_gguf_writer_finish(w, p, &err), 0);
    em_gguf_writer_free(w);
    em_gguf *g = em_gguf_open(p, &err);
    assert_non_null(g);
    em_gguf_close(g);
    unlink(p);
}

/* ---- real files ---- */

static void test_real_models(void **state) {
    (void)state;
    em_err err = {{0}};
    em_gguf *g = em_gguf_open(shared_path("models/stories260K.gguf"), &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(g->n_tensors, 48);
    assert_int_equal(g->n_kv, 19);
    uint32_t n;
    assert_int_equal(em_gguf_get_u32(g, "llama.block_count", &n, false, &err), 0);
    assert_int_equal(n, 5);
    const em_gguf_kv *toks;
    assert_int_equal(em_gguf_get_arr(g, "tokenizer.ggml.tokens", EM_GGUF_STRING, &toks, false, &err), 0);
    assert_int_equal(toks->arr_n, 512);
    assert_true(em_str_eq(toks->arr_strs[1], "<s>"));
    const em_gguf_tensor *t = em_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    em_gguf_close(g);

    /* every synthetic model opens */
    const char *dirs[2] = {"models/synth", "models/mmproj"};
    int opened = 0;
    for (int i = 0; i < 2; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", shared_path(dirs[i]));
        DIR *d = opendir(dir);
        if (!d) fail_msg("missing %s", dir);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 5, ".gguf")) continue;
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            g = em_gguf_open(p, &err);
            if (!g) fail_msg("%s", err.msg);
            assert_true(g->n_tensors > 0);
            em_gguf_close(g);
            opened++;
        }
        closedir(d);
    }
    assert_true(opened >= 30);
}

/* ---- fuzz seeds ---- */

static void test_write_corpus(void **state) {
    (void)state;
    const char *dir = getenv("EMBER_WRITE_CORPUS");
    if (!dir || !*dir) return;
    char p[4096];
    snprintf(p, sizeof p, "%s", dir); /* mkdir -p */
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) fail_msg("cannot create %s: %s", p, strerror(errno));
            *s = c;
            if (!c) break;
        }
    }
    for (size_t i = 0; i < N_BAD; i++) {
        bb b = {0};
        BAD[i].build(&b);
        snprintf(p, sizeof p, "%s/bad-%02zu-%s.gguf", dir, i, BAD[i].name);
        write_bytes(p, b.p, b.len);
        free(b.p);
    }
    struct { const char *name; void (*build)(bb *); } goods[] = {{"good-v3", good}, {"good-types", build_all_types}};
    for (size_t i = 0; i < 2; i++) {
        bb b = {0};
        goods[i].build(&b);
        snprintf(p, sizeof p, "%s/%s.gguf", dir, goods[i].name);
        write_bytes(p, b.p, b.len);
        free(b.p);
    }
    bb b = {0};
    good_ex(&b, 2, true);
    snprintf(p, sizeof p, "%s/good-v2.gguf", dir);
    write_bytes(p, b.p, b.len);
    free(b.p);
    printf("wrote %zu seed files to %s\n", N_BAD + 3, dir);
}

static int teardown_all(void **state) {
    (void)state;
    rm_tmpdir();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_corpus),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_good_v3_and_v2),
        cmocka_unit_test(test_all_value_types),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_empty),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_writer_no_partial_output),
        cmocka_unit_test(test_writer_replaces),
        cmocka_unit_test(test_real_models),
        cmocka_unit_test(test_write_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
