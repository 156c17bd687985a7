/* gguf_write.c - GGUF v3 writer. Metadata is serialized as it is added (into
 * one growable buffer), tensor infos and copies of the tensor data are kept
 * until em_gguf_writer_finish(), which lays the file out as ggml's gguf
 * writer does:
 *
 *   header | kv pairs | tensor infos | zero pad to alignment |
 *   tensor 0 data | zero pad | tensor 1 data | zero pad | ...
 *
 * Each tensor's offset is the running total of the padded sizes before it.
 * A tensor added with em_gguf_write_tensor_fn() holds no data: its bytes are
 * produced by a callback while the file is written, one tensor at a time, so
 * a multi-gigabyte model never has to be in memory at once.
 * general.alignment is written (as the first pair) only when the alignment
 * is not the default 32. The file is written to a temporary file next to
 * the target and renamed over it on success, so a failed write never leaves
 * a partial output file behind. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/checked.h"

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

typedef struct {
    char name[EM_GGUF_MAX_NAME];
    uint32_t type, n_dims;
    int64_t ne[EM_GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    void *data;            /* owned copy, or NULL when fill produces it */
    em_gguf_fill_fn fill;
    void *fill_user;
} wtensor;

typedef struct {
    char *key;  /* owned copy, for duplicate detection */
    size_t len;
} wkey;

struct em_gguf_writer {
    uint32_t alignment;
    buf kv;              /* serialized pairs, in order */
    uint64_t n_kv;
    wkey *keys;
    size_t keys_cap;
    bool has_alignment_key;
    wtensor *tensors;
    uint64_t n_tensors;
    size_t tensors_cap;
    uint64_t data_size;  /* padded size of the data section so far */
};

static int buf_reserve(buf *b, size_t extra, em_err *err) {
    size_t need;
    if (!em_add_sz(b->len, extra, &need)) return em_fail(err, "gguf writer: metadata size overflows");
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (!em_mul_sz(cap, 2, &cap)) return em_fail(err, "gguf writer: metadata size overflows");
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return em_fail(err, "gguf writer: out of memory (%zu bytes of metadata)", cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(buf *b, const void *data, size_t n, em_err *err) {
    if (buf_reserve(b, n, err)) return -1;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int put_u32(buf *b, uint32_t v, em_err *err) { return buf_put(b, &v, 4, err); }
static int put_u64(buf *b, uint64_t v, em_err *err) { return buf_put(b, &v, 8, err); }
static int put_str(buf *b, const char *s, size_t n, em_err *err) {
    if (put_u64(b, n, err)) return -1;
    return buf_put(b, s, n, err);
}

em_gguf_writer *em_gguf_writer_new(uint32_t alignment) {
    if (alignment == 0) alignment = EM_GGUF_DEFAULT_ALIGNMENT;
    if ((alignment & (alignment - 1)) != 0) return NULL;
    em_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->alignment = alignment;
    return w;
}

void em_gguf_writer_free(em_gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i].key);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].data);
    free(w->tensors);
    free(w->kv.p);
    free(w);
}

/* Validates a new key and records it; the caller then serializes key+value.
 * On a later serialization failure the caller calls unbegin_kv(). */
static int begin_kv(em_gguf_writer *w, const char *key, size_t *mark, em_err *err) {
    if (!w) return em_fail(err, "gguf writer: NULL writer");
    if (!key) return em_fail(err, "gguf writer: NULL metadata key");
    size_t len = strlen(key);
    if (len == 0) return em_fail(err, "gguf writer: empty metadata key");
    if (len > EM_GGUF_MAX_KEY) return em_fail(err, "gguf writer: metadata key of %zu bytes is too long", len);
    if (w->n_kv >= EM_GGUF_MAX_COUNT) return em_fail(err, "gguf writer: too many metadata keys");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (w->keys[i].len == len && memcmp(w->keys[i].key, key, len) == 0)
            return em_fail(err, "gguf writer: duplicate metadata key '%s'", key);
    if (w->n_kv == w->keys_cap) {
        size_t cap = w->keys_cap ? w->keys_cap * 2 : 32;
        wkey *k = em_malloc_array(cap, sizeof *k);
        if (!k) return em_fail(err, "gguf writer: out of memory");
        if (w->n_kv) memcpy(k, w->keys, (size_t)w->n_kv * sizeof *k);
        free(w->keys);
        w->keys = k;
        w->keys_cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return em_fail(err, "gguf writer: out of memory");
    memcpy(copy, key, len + 1);
    *mark = w->kv.len;
    if (put_str(&w->kv, key, len, err)) {
        free(copy);
        return -1;
    }
    w->keys[w->n_kv].key = copy;
    w->keys[w->n_kv].len = len;
    w->n_kv++;
    return 0;
}

static int unbegin_kv(em_gguf_writer *w, size_t mark) {
    w->n_kv--;
    free(w->keys[w->n_kv].key);
    w->kv.len = mark;
    return -1;
}

static int write_scalar(em_gguf_writer *w, const char *key, uint32_t type, const void *v, size_t n, em_err *err) {
    size_t mark;
    if (begin_kv(w, key, &mark, err)) return -1;
    if (put_u32(&w->kv, type, err) || buf_put(&w->kv, v, n, err)) return unbegin_kv(w, mark);
    return 0;
}

int em_gguf_write_u32(em_gguf_writer *w, const char *key, uint32_t v, em_err *err) {
    if (w && key && strcmp(key, "general.alignment") == 0) {
        /* The alignment comes from the constructor; allow writing the same
         * value explicitly (then it is not added a second time). */
        if (v != w->alignment)
            return em_fail(err, "gguf writer: general.alignment %u differs from the writer's alignment %u", v,
                           w->alignment);
        if (write_scalar(w, key, EM_GGUF_U32, &v, 4, err)) return -1;
        w->has_alignment_key = true;
        return 0;
    }
    return write_scalar(w, key, EM_GGUF_U32, &v, 4, err);
}

static int reject_alignment(const char *key, em_err *err) {
    if (key && strcmp(key, "general.alignment") == 0)
        return em_fail(err, "gguf writer: general.alignment must be a u32 (set it through the constructor)");
    return 0;
}

int em_gguf_write_i32(em_gguf_writer *w, const char *key, int32_t v, em_err *err) {
    if (reject_alignment(key, err)) return -1;
    return write_scalar(w, key, EM_GGUF_I32, &v, 4, err);
}

int em_gguf_write_u64(em_gguf_writer *w, const char *key, uint64_t v, em_err *err) {
    if (reject_alignment(key, err)) return -1;
    return write_scalar(w, key, EM_GGUF_U64, &v, 8, err);
}

int em_gguf_write_f32(em_gguf_writer *w, const char *key, float v, em_err *err) {
    if (reject_alignment(key, err)) return -1;
    return write_scalar(w, key, EM_GGUF_F32, &v, 4, err);
}

int em_gguf_write_bool(em_gguf_writer *w, const char *key, bool v, em_err *err) {
    if (reject_alignment(key, err)) return -1;
    uint8_t b = v ? 1 : 0;
    return write_scalar(w, key, EM_GGUF_BOOL, &b, 1, err);
}

int em_gguf_write_str(em_gguf_writer *w, const char *key, const char *v, em_err *err) {
    if (reject_alignment(key, err)) return -1;
    if (!v) return em_fail(err, "gguf writer: NULL string value for '%s'", key ? key : "?");
    size_t len = strlen(v), mark;
    if (len > EM_GGUF_MAX_STRING)
        return em_fail(err, "gguf writer: string value of '%s' is too long (%zu bytes)", key ? key : "?", len);
    if (begin_kv(w, key, &mark, err)) return -1;
    if (put_u32(&w->kv, EM_GGUF_STRING, err) || put_str(&w->kv, v, len, err)) return unbegin_kv(w, mark);
    return 0;
}

static uint32_t fixed_size(uint32_t t) {
    switch (t) {
    case EM_GGUF_U8: case EM_GGUF_I8: case EM_GGUF_BOOL: return 1;
    case EM_GGUF_U16: case EM_GGUF_I16: return 2;
    case EM_GGUF_U32: case EM_GGUF_I32: case EM_GGUF_F32: return 4;
    case EM_GGUF_U64: case EM_GGUF_I64: case EM_GGUF_F64: return 8;
    default: return 0;
    }
}

int em_gguf_write_arr(em_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n,
                      em_err *err) {
    if (reject_alignment(key, err)) return -1;
    uint32_t es = fixed_size(elem_type);
    if (es == 0)
        return em_fail(err, "gguf writer: array '%s' has element type %u, expected a fixed-size type",
                       key ? key : "?", elem_type);
    uint64_t bytes;
    if (!em_mul_u64(n, es, &bytes) || bytes > SIZE_MAX)
        return em_fail(err, "gguf writer: array '%s' of %llu elements is too large", key ? key : "?",
                       (unsigned long long)n);
    if (n && !data) return em_fail(err, "gguf writer: NULL data for array '%s'", key ? key : "?");
    if (elem_type == EM_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return em_fail(err, "gguf writer: array '%s': bool element %llu is not 0 or 1", key ? key : "?",
                               (unsigned long long)i);
    size_t mark;
    if (begin_kv(w, key, &mark, err)) return -1;
    if (put_u32(&w->kv, EM_GGUF_ARRAY, err) || put_u32(&w->kv, elem_type, err) || put_u64(&w->kv, n, err) ||
        buf_put(&w->kv, data, (size_t)bytes, err))
        return unbegin_kv(w, mark);
    return 0;
}

int em_gguf_write_arr_str(em_gguf_writer *w, const char *key, const char *const *strs, uint64_t n, em_err *err) {
    if (reject_alignment(key, err)) return -1;
    if (n && !strs) return em_fail(err, "gguf writer: NULL strings for array '%s'", key ? key : "?");
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i])
            return em_fail(err, "gguf writer: array '%s': string %llu is NULL", key ? key : "?", (unsigned long long)i);
        if (strlen(strs[i]) > EM_GGUF_MAX_STRING)
            return em_fail(err, "gguf writer: array '%s': string %llu is too long", key ? key : "?",
                           (unsigned long long)i);
    }
    size_t mark;
    if (begin_kv(w, key, &mark, err)) return -1;
    if (put_u32(&w->kv, EM_GGUF_ARRAY, err) || put_u32(&w->kv, EM_GGUF_STRING, err) || put_u64(&w->kv, n, err))
        return unbegin_kv(w, mark);
    for (uint64_t i = 0; i < n; i++)
        if (put_str(&w->kv, strs[i], strlen(strs[i]), err)) return unbegin_kv(w, mark);
    return 0;
}

int em_gguf_write_kv_copy(em_gguf_writer *w, const em_gguf_kv *kv, em_err *err) {
    if (!kv) return em_fail(err, "gguf writer: NULL metadata pair");
    if (kv->key.len > EM_GGUF_MAX_KEY || memchr(kv->key.ptr, 0, (size_t)kv->key.len))
        return em_fail(err, "gguf writer: metadata key cannot be copied (too long or contains NUL)");
    char *key = malloc((size_t)kv->key.len + 1);
    if (!key) return em_fail(err, "gguf writer: out of memory");
    if (kv->key.len) memcpy(key, kv->key.ptr, (size_t)kv->key.len);
    key[kv->key.len] = 0;
    int rc = 0;
    uint32_t es = fixed_size(kv->type);
    size_t mark;
    if (strcmp(key, "general.alignment") == 0)
        rc = em_fail(err, "gguf writer: general.alignment is set through the constructor, not copied");
    else if (kv->type != EM_GGUF_STRING && kv->type != EM_GGUF_ARRAY && es == 0)
        rc = em_fail(err, "gguf writer: '%s' has unknown value type %u", key, kv->type);
    else if (kv->type == EM_GGUF_ARRAY && kv->arr_type != EM_GGUF_STRING && fixed_size(kv->arr_type) == 0)
        rc = em_fail(err, "gguf writer: '%s': copying arrays of %s is not supported", key,
                     em_gguf_vtype_name(kv->arr_type));
    else if (begin_kv(w, key, &mark, err))
        rc = -1;
    else if (put_u32(&w->kv, kv->type, err))
        rc = unbegin_kv(w, mark);
    if (rc) {
        free(key);
        return -1;
    }
    switch (kv->type) {
    case EM_GGUF_STRING:
        rc = put_str(&w->kv, kv->v.str.ptr, (size_t)kv->v.str.len, err);
        break;
    case EM_GGUF_F32: {
        float f = (float)kv->v.f64;
        rc = buf_put(&w->kv, &f, 4, err);
        break;
    }
    case EM_GGUF_F64:
        rc = buf_put(&w->kv, &kv->v.f64, 8, err);
        break;
    case EM_GGUF_I8: case EM_GGUF_I16: case EM_GGUF_I32: case EM_GGUF_I64: {
        int64_t v = kv->v.i64; /* little endian: the low es bytes are the value */
        rc = buf_put(&w->kv, &v, es, err);
        break;
    }
    case EM_GGUF_ARRAY: {
        if (put_u32(&w->kv, kv->arr_type, err) || put_u64(&w->kv, kv->arr_n, err)) { rc = -1; break; }
        if (kv->arr_type == EM_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n && rc == 0; i++)
                rc = put_str(&w->kv, kv->arr_strs[i].ptr, (size_t)kv->arr_strs[i].len, err);
        } else {
            uint64_t bytes;
            if (!em_mul_u64(kv->arr_n, fixed_size(kv->arr_type), &bytes) || bytes > SIZE_MAX)
                rc = em_fail(err, "gguf writer: array '%s' is too large", key);
            else
                rc = buf_put(&w->kv, kv->arr_data, (size_t)bytes, err);
        }
        break;
    }
    default: { /* unsigned integers and bool */
        uint64_t v = kv->v.u64;
        rc = buf_put(&w->kv, &v, es, err);
        break;
    }
    }
    free(key);
    if (rc) return unbegin_kv(w, mark);
    return 0;
}

/* Validates a tensor declaration and fills the next tensor slot (not yet
 * counted: commit_tensor() does that). data_ok: the caller has the bytes
 * (checked here so the messages keep their order). */
static wtensor *add_tensor_info(em_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const int64_t *ne, bool data_ok, em_err *err) {
    if (!w) { em_fail(err, "gguf writer: NULL writer"); return NULL; }
    if (!name) { em_fail(err, "gguf writer: NULL tensor name"); return NULL; }
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= EM_GGUF_MAX_NAME) {
        em_fail(err, "gguf writer: tensor name '%.80s' has length %zu (must be 1..%d)", name, nlen,
                EM_GGUF_MAX_NAME - 1);
        return NULL;
    }
    if (n_dims < 1 || n_dims > EM_GGUF_MAX_DIMS) {
        em_fail(err, "gguf writer: tensor '%s': n_dims %u (must be 1..%d)", name, n_dims, EM_GGUF_MAX_DIMS);
        return NULL;
    }
    if (!ne) { em_fail(err, "gguf writer: tensor '%s': NULL dims", name); return NULL; }
    uint32_t be, bb;
    if (!em_type_layout(type, &be, &bb)) {
        em_fail(err, "gguf writer: tensor '%s': unknown tensor type %u", name, type);
        return NULL;
    }
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0) {
            em_fail(err, "gguf writer: tensor '%s': dimension %u is %lld", name, d, (long long)ne[d]);
            return NULL;
        }
    if ((uint64_t)ne[0] % be != 0) {
        em_fail(err, "gguf writer: tensor '%s': row length %lld is not a multiple of the %s block size %u", name,
                (long long)ne[0], em_type_name(type), be);
        return NULL;
    }
    uint64_t nb, nel = 1;
    bool ok = em_mul_u64((uint64_t)ne[0] / be, bb, &nb);
    for (uint32_t d = 1; d < n_dims && ok; d++) ok = em_mul_u64(nb, (uint64_t)ne[d], &nb);
    for (uint32_t d = 0; d < n_dims && ok; d++) ok = em_mul_u64(nel, (uint64_t)ne[d], &nel) && nel <= INT64_MAX;
    if (!ok || nb > SIZE_MAX) { em_fail(err, "gguf writer: tensor '%s': size overflows", name); return NULL; }
    if (!data_ok) { em_fail(err, "gguf writer: tensor '%s': NULL data", name); return NULL; }
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) {
            em_fail(err, "gguf writer: duplicate tensor name '%s'", name);
            return NULL;
        }
    if (w->n_tensors >= EM_GGUF_MAX_COUNT) { em_fail(err, "gguf writer: too many tensors"); return NULL; }
    uint64_t padded, end;
    if (!em_align_u64(nb, w->alignment, &padded) || !em_add_u64(w->data_size, padded, &end)) {
        em_fail(err, "gguf writer: tensor '%s': data section size overflows", name);
        return NULL;
    }
    if (w->n_tensors == w->tensors_cap) {
        size_t cap = w->tensors_cap ? w->tensors_cap * 2 : 64;
        wtensor *t = em_malloc_array(cap, sizeof *t);
        if (!t) { em_fail(err, "gguf writer: out of memory"); return NULL; }
        if (w->n_tensors) memcpy(t, w->tensors, (size_t)w->n_tensors * sizeof *t);
        free(w->tensors);
        w->tensors = t;
        w->tensors_cap = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, nlen + 1);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < EM_GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->nbytes = nb;
    t->offset = w->data_size;
    return t;
}

/* Makes the slot add_tensor_info filled part of the file. */
static void commit_tensor(em_gguf_writer *w, wtensor *t) {
    uint64_t padded = t->nbytes;
    (void)em_align_u64(t->nbytes, w->alignment, &padded); /* cannot overflow: checked in add_tensor_info */
    w->data_size += padded;
    w->n_tensors++;
}

int em_gguf_write_tensor(em_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                         const void *data, em_err *err) {
    wtensor *t = add_tensor_info(w, name, type, n_dims, ne, data != NULL, err);
    if (!t) return -1;
    void *copy = malloc(t->nbytes ? (size_t)t->nbytes : 1);
    if (!copy) return em_fail(err, "gguf writer: out of memory for tensor '%s' (%llu bytes)", name,
                              (unsigned long long)t->nbytes);
    memcpy(copy, data, (size_t)t->nbytes);
    t->data = copy;
    commit_tensor(w, t);
    return 0;
}

int em_gguf_write_tensor_fn(em_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, em_gguf_fill_fn fill, void *user, em_err *err) {
    wtensor *t = add_tensor_info(w, name, type, n_dims, ne, fill != NULL, err);
    if (!t) return -1;
    t->fill = fill;
    t->fill_user = user;
    commit_tensor(w, t);
    return 0;
}

uint64_t em_gguf_writer_n_tensors(const em_gguf_writer *w) { return w ? w->n_tensors : 0; }

/* ---- output ---- */

typedef struct {
    FILE *f;
    uint64_t pos;
    em_err *err;
    const char *path;
    int failed;
} out;

static int out_put(out *o, const void *p, size_t n) {
    if (o->failed) return -1;
    if (n && fwrite(p, 1, n, o->f) != n) {
        o->failed = 1;
        return em_fail(o->err, "%s: write failed: %s", o->path, strerror(errno));
    }
    o->pos += n;
    return 0;
}

static int out_pad(out *o, uint32_t align) {
    static const uint8_t zeros[256];
    uint64_t target;
    if (!em_align_u64(o->pos, align, &target)) {
        o->failed = 1;
        return em_fail(o->err, "%s: file size overflows", o->path);
    }
    while (o->pos < target) {
        uint64_t n = target - o->pos;
        if (n > sizeof zeros) n = sizeof zeros;
        if (out_put(o, zeros, (size_t)n)) return -1;
    }
    return 0;
}

static int write_all(const em_gguf_writer *w, out *o) {
    uint32_t magic = EM_GGUF_MAGIC, version = 3, type = EM_GGUF_U32;
    uint64_t n_kv = w->n_kv + (w->alignment != EM_GGUF_DEFAULT_ALIGNMENT && !w->has_alignment_key ? 1 : 0);
    uint64_t n_tensors = w->n_tensors;
    if (out_put(o, &magic, 4) || out_put(o, &version, 4) || out_put(o, &n_tensors, 8) || out_put(o, &n_kv, 8))
        return -1;
    if (n_kv != w->n_kv) {
        static const char key[] = "general.alignment";
        uint64_t klen = sizeof key - 1;
        if (out_put(o, &klen, 8) || out_put(o, key, (size_t)klen) || out_put(o, &type, 4) ||
            out_put(o, &w->alignment, 4))
            return -1;
    }
    if (out_put(o, w->kv.p, w->kv.len)) return -1;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t nlen = strlen(t->name);
        if (out_put(o, &nlen, 8) || out_put(o, t->name, (size_t)nlen) || out_put(o, &t->n_dims, 4)) return -1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v = (uint64_t)t->ne[d];
            if (out_put(o, &v, 8)) return -1;
        }
        if (out_put(o, &t->type, 4) || out_put(o, &t->offset, 8)) return -1;
    }
    if (out_pad(o, w->alignment)) return -1;
    uint64_t data_start = o->pos;
    void *scratch = NULL;   /* reused for tensors produced by a callback */
    size_t scratch_cap = 0;
    int rc = 0;
    for (uint64_t i = 0; i < w->n_tensors && rc == 0; i++) {
        const wtensor *t = &w->tensors[i];
        if (o->pos - data_start != t->offset) {
            o->failed = 1;
            rc = em_fail(o->err, "%s: internal error: tensor '%s' offset mismatch", o->path, t->name);
            break;
        }
        const void *data = t->data;
        if (t->fill) {
            size_t need = t->nbytes ? (size_t)t->nbytes : 1;
            if (need > scratch_cap) {
                free(scratch);
                scratch = malloc(need);
                scratch_cap = scratch ? need : 0;
                if (!scratch) {
                    o->failed = 1;
                    rc = em_fail(o->err, "gguf writer: out of memory for tensor '%s' (%llu bytes)", t->name,
                                 (unsigned long long)t->nbytes);
                    break;
                }
            }
            if (t->fill(t->fill_user, i, t->name, scratch, t->nbytes, o->err)) {
                o->failed = 1;
                rc = -1;
                break;
            }
            data = scratch;
        }
        if (out_put(o, data, (size_t)t->nbytes) || out_pad(o, w->alignment)) rc = -1;
    }
    free(scratch);
    return rc;
}

int em_gguf_writer_finish(em_gguf_writer *w, const char *path, em_err *err) {
    if (!w) return em_fail(err, "gguf writer: NULL writer");
    if (!path || !*path) return em_fail(err, "gguf writer: empty output path");
    size_t plen = strlen(path);
    static const char suffix[] = ".tmp.XXXXXX";
    size_t tlen;
    if (!em_add_sz(plen, sizeof suffix, &tlen)) return em_fail(err, "gguf writer: path too long");
    char *tmp = malloc(tlen);
    if (!tmp) return em_fail(err, "gguf writer: out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        em_fail(err, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        em_fail(err, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    out o = {f, 0, err, path, 0};
    int rc = write_all(w, &o);
    if (fflush(f) != 0 && rc == 0) rc = em_fail(err, "%s: write failed: %s", path, strerror(errno));
    if (rc == 0 && fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS)
        rc = em_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && rc == 0) rc = em_fail(err, "%s: close failed: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = em_fail(err, "%s: cannot rename %s into place: %s", path, tmp,
                                                         strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}
