/* gguf_read.c - GGUF v2/v3 reader. Every read goes through a cursor that
 * checks the remaining length first, so a hostile file can at worst produce
 * an error message naming the field and offset. */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/checked.h"

typedef struct {
    const uint8_t *p;
    uint64_t size, pos;
    em_err *err;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return em_fail(c->err, "truncated file: %s at offset %llu needs %llu bytes, %llu left", what,
                       (unsigned long long)c->pos, (unsigned long long)n,
                       (unsigned long long)(c->size - c->pos));
    return 0;
}

static int rd(cursor *c, void *out, uint64_t n, const char *what) {
    if (need(c, n, what)) return -1;
    memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static int rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static int rd_str(cursor *c, em_str *s, uint64_t max, const char *what) {
    uint64_t at = c->pos, len;
    if (rd_u64(c, &len, what)) return -1;
    if (len > max)
        return em_fail(c->err, "%s at offset %llu: string length %llu exceeds limit %llu", what,
                       (unsigned long long)at, (unsigned long long)len, (unsigned long long)max);
    if (need(c, len, what)) return -1;
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

bool em_str_eq(em_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && memcmp(s.ptr, z, n) == 0;
}

static const uint32_t vtype_size[EM_GGUF_VTYPE_COUNT] = {
    [EM_GGUF_U8] = 1, [EM_GGUF_I8] = 1, [EM_GGUF_U16] = 2, [EM_GGUF_I16] = 2,
    [EM_GGUF_U32] = 4, [EM_GGUF_I32] = 4, [EM_GGUF_F32] = 4, [EM_GGUF_BOOL] = 1,
    [EM_GGUF_U64] = 8, [EM_GGUF_I64] = 8, [EM_GGUF_F64] = 8,
};

const char *em_gguf_vtype_name(uint32_t t) {
    static const char *names[EM_GGUF_VTYPE_COUNT] = {"u8",   "i8",    "u16",   "i16", "u32",
                                                     "i32",  "f32",   "bool",  "str", "arr",
                                                     "u64",  "i64",   "f64"};
    return t < EM_GGUF_VTYPE_COUNT ? names[t] : "?";
}

/* Skips (validating) one array body of element type t and count n. Used for
 * nested arrays, whose contents nobody reads but which must be in bounds. */
static int skip_array(cursor *c, uint32_t t, uint64_t n, int depth, const char *key) {
    if (depth > EM_GGUF_MAX_ARRAY_DEPTH)
        return em_fail(c->err, "key '%s': arrays nested deeper than %d", key, EM_GGUF_MAX_ARRAY_DEPTH);
    if (t >= EM_GGUF_VTYPE_COUNT)
        return em_fail(c->err, "key '%s' at offset %llu: unknown array element type %u", key,
                       (unsigned long long)c->pos, t);
    if (t == EM_GGUF_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            em_str s;
            if (rd_str(c, &s, EM_GGUF_MAX_STRING, "array string")) return -1;
        }
        return 0;
    }
    if (t == EM_GGUF_ARRAY) {
        for (uint64_t i = 0; i < n; i++) {
            uint32_t et;
            uint64_t en;
            if (rd_u32(c, &et, "nested array type") || rd_u64(c, &en, "nested array count")) return -1;
            if (skip_array(c, et, en, depth + 1, key)) return -1;
        }
        return 0;
    }
    uint64_t bytes;
    if (!em_mul_u64(n, vtype_size[t], &bytes))
        return em_fail(c->err, "key '%s': array of %llu elements overflows", key, (unsigned long long)n);
    if (need(c, bytes, "array data")) return -1;
    c->pos += bytes;
    return 0;
}

static int read_kv(cursor *c, em_gguf_kv *kv) {
    kv->file_offset = c->pos;
    if (rd_str(c, &kv->key, EM_GGUF_MAX_KEY, "metadata key")) return -1;
    if (kv->key.len == 0)
        return em_fail(c->err, "metadata key at offset %llu is empty", (unsigned long long)kv->file_offset);
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 100 ? kv->key.len : 100), kv->key.ptr);
    if (rd_u32(c, &kv->type, "metadata value type")) return -1;
    switch (kv->type) {
    case EM_GGUF_U8: { uint8_t v; if (rd(c, &v, 1, key)) return -1; kv->v.u64 = v; break; }
    case EM_GGUF_I8: { int8_t v; if (rd(c, &v, 1, key)) return -1; kv->v.i64 = v; break; }
    case EM_GGUF_U16: { uint16_t v; if (rd(c, &v, 2, key)) return -1; kv->v.u64 = v; break; }
    case EM_GGUF_I16: { int16_t v; if (rd(c, &v, 2, key)) return -1; kv->v.i64 = v; break; }
    case EM_GGUF_U32: { uint32_t v; if (rd(c, &v, 4, key)) return -1; kv->v.u64 = v; break; }
    case EM_GGUF_I32: { int32_t v; if (rd(c, &v, 4, key)) return -1; kv->v.i64 = v; break; }
    case EM_GGUF_U64: { uint64_t v; if (rd(c, &v, 8, key)) return -1; kv->v.u64 = v; break; }
    case EM_GGUF_I64: { int64_t v; if (rd(c, &v, 8, key)) return -1; kv->v.i64 = v; break; }
    case EM_GGUF_F32: { float v; if (rd(c, &v, 4, key)) return -1; kv->v.f64 = v; break; }
    case EM_GGUF_F64: { double v; if (rd(c, &v, 8, key)) return -1; kv->v.f64 = v; break; }
    case EM_GGUF_BOOL: {
        uint8_t v;
        if (rd(c, &v, 1, key)) return -1;
        if (v > 1)
            return em_fail(c->err, "key '%s' at offset %llu: bool value %u is not 0 or 1", key,
                           (unsigned long long)(c->pos - 1), v);
        kv->v.u64 = v;
        break;
    }
    case EM_GGUF_STRING:
        if (rd_str(c, &kv->v.str, EM_GGUF_MAX_STRING, key)) return -1;
        break;
    case EM_GGUF_ARRAY: {
        uint64_t at = c->pos;
        if (rd_u32(c, &kv->arr_type, "array element type") || rd_u64(c, &kv->arr_n, "array count"))
            return -1;
        if (kv->arr_type >= EM_GGUF_VTYPE_COUNT)
            return em_fail(c->err, "key '%s' at offset %llu: unknown array element type %u", key,
                           (unsigned long long)at, kv->arr_type);
        kv->arr_data = c->p + c->pos;
        if (kv->arr_type == EM_GGUF_STRING) {
            /* Each string needs at least its 8-byte length: bound the count
             * by the bytes left before allocating the index. */
            if (kv->arr_n > (c->size - c->pos) / 8)
                return em_fail(c->err, "key '%s' at offset %llu: array count %llu exceeds what the file can hold",
                               key, (unsigned long long)at, (unsigned long long)kv->arr_n);
            kv->arr_strs = em_malloc_array(kv->arr_n ? kv->arr_n : 1, sizeof(em_str));
            if (!kv->arr_strs) return em_fail(c->err, "out of memory for array '%s'", key);
            for (uint64_t i = 0; i < kv->arr_n; i++)
                if (rd_str(c, &kv->arr_strs[i], EM_GGUF_MAX_STRING, key)) return -1;
        } else {
            if (skip_array(c, kv->arr_type, kv->arr_n, 1, key)) return -1;
        }
        break;
    }
    default:
        return em_fail(c->err, "key '%s' at offset %llu: unknown value type %u", key,
                       (unsigned long long)(c->pos - 4), kv->type);
    }
    return 0;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static const em_gguf_tensor *hash_lookup(const em_gguf *g, const char *name) {
    if (!g->tensor_hash_cap) return NULL;
    uint64_t mask = g->tensor_hash_cap - 1;
    for (uint64_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        uint32_t slot = g->tensor_hash[i];
        if (slot == 0) return NULL;
        if (strcmp(g->tensors[slot - 1].name, name) == 0) return &g->tensors[slot - 1];
    }
}

static int read_tensor_info(cursor *c, em_gguf_tensor *t) {
    em_str name;
    t->file_offset = c->pos;
    if (rd_str(c, &name, UINT64_MAX, "tensor name")) return -1;
    if (name.len == 0 || name.len >= EM_GGUF_MAX_NAME)
        return em_fail(c->err, "tensor name at offset %llu has length %llu (must be 1..%d)",
                       (unsigned long long)t->file_offset, (unsigned long long)name.len, EM_GGUF_MAX_NAME - 1);
    if (memchr(name.ptr, 0, name.len))
        return em_fail(c->err, "tensor name at offset %llu contains a NUL byte", (unsigned long long)t->file_offset);
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = 0;
    if (rd_u32(c, &t->n_dims, "tensor n_dims")) return -1;
    if (t->n_dims < 1 || t->n_dims > EM_GGUF_MAX_DIMS)
        return em_fail(c->err, "tensor '%s' at offset %llu: n_dims %u (must be 1..%d)", t->name,
                       (unsigned long long)t->file_offset, t->n_dims, EM_GGUF_MAX_DIMS);
    for (int d = 0; d < EM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        if (rd_u64(c, &v, "tensor dimension")) return -1;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return em_fail(c->err, "tensor '%s' at offset %llu: dimension %u is %llu", t->name,
                           (unsigned long long)t->file_offset, d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
    }
    if (rd_u32(c, &t->type, "tensor type")) return -1;
    uint32_t be, bb;
    if (!em_type_layout(t->type, &be, &bb))
        return em_fail(c->err, "tensor '%s' at offset %llu: unknown tensor type %u", t->name,
                       (unsigned long long)t->file_offset, t->type);
    if (rd_u64(c, &t->offset, "tensor data offset")) return -1;
    if ((uint64_t)t->ne[0] % be != 0)
        return em_fail(c->err, "tensor '%s': row length %lld is not a multiple of the %s block size %u",
                       t->name, (long long)t->ne[0], em_type_name(t->type), be);
    uint64_t nb;
    if (!em_mul_u64((uint64_t)t->ne[0] / be, bb, &nb))
        return em_fail(c->err, "tensor '%s': size overflows", t->name);
    for (uint32_t d = 1; d < t->n_dims; d++)
        if (!em_mul_u64(nb, (uint64_t)t->ne[d], &nb))
            return em_fail(c->err, "tensor '%s' at offset %llu: size overflows (dims too large)", t->name,
                           (unsigned long long)t->file_offset);
    /* ggml also requires the element count to fit in int64. */
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (!em_mul_u64(nel, (uint64_t)t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return em_fail(c->err, "tensor '%s' at offset %llu: element count overflows", t->name,
                           (unsigned long long)t->file_offset);
    t->nbytes = nb;
    return 0;
}

static void free_parsed(em_gguf *g) {
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free(g->kv[i].arr_strs);
    free(g->kv);
    free(g->tensors);
    free(g->tensor_hash);
}

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Inserts key i into the open-addressing set kh; true if already present. */
static bool key_seen(uint32_t *kh, uint64_t cap, const em_gguf_kv *kv, uint64_t i) {
    for (uint64_t s = hash_bytes(kv[i].key.ptr, kv[i].key.len) & (cap - 1);; s = (s + 1) & (cap - 1)) {
        if (kh[s] == 0) { kh[s] = (uint32_t)(i + 1); return false; }
        const em_gguf_kv *o = &kv[kh[s] - 1];
        if (o->key.len == kv[i].key.len && memcmp(o->key.ptr, kv[i].key.ptr, o->key.len) == 0) return true;
    }
}

static int parse_kvs(em_gguf *g, cursor *cp, uint32_t *kh, uint64_t khcap, em_err *err);
static int parse_tensors(em_gguf *g, cursor *cp, em_err *err);

static int parse(em_gguf *g, em_err *err) {
    cursor c = {g->base, g->size, 0, err};
    uint32_t magic;
    if (rd_u32(&c, &magic, "magic")) return -1;
    if (magic != EM_GGUF_MAGIC) return em_fail(err, "not a GGUF file (bad magic at offset 0)");
    if (rd_u32(&c, &g->version, "version")) return -1;
    if (g->version != 2 && g->version != 3)
        return em_fail(err, "unsupported GGUF version %u at offset 4 (supported: 2, 3)", g->version);
    if (rd_u64(&c, &g->n_tensors, "tensor count") || rd_u64(&c, &g->n_kv, "metadata count")) return -1;
    /* A key/value needs >= 12 bytes (8 length + 4 type) and a tensor info
     * >= 24: bound the counts by the file before allocating anything. */
    if (g->n_kv > EM_GGUF_MAX_COUNT || g->n_kv > (g->size - c.pos) / 12)
        return em_fail(err, "metadata count %llu at offset 16 exceeds what the file can hold",
                       (unsigned long long)g->n_kv);
    if (g->n_tensors > EM_GGUF_MAX_COUNT || g->n_tensors > (g->size - c.pos) / 24)
        return em_fail(err, "tensor count %llu at offset 8 exceeds what the file can hold",
                       (unsigned long long)g->n_tensors);
    g->kv = em_calloc_array(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = em_calloc_array(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return em_fail(err, "out of memory");

    g->alignment = EM_GGUF_DEFAULT_ALIGNMENT;
    uint64_t khcap = 16;
    while (khcap < g->n_kv * 2) khcap <<= 1;
    uint32_t *kh = em_calloc_array(khcap, sizeof *kh);
    if (!kh) return em_fail(err, "out of memory");
    int rc = parse_kvs(g, &c, kh, khcap, err);
    free(kh);
    if (rc) return -1;
    return parse_tensors(g, &c, err);
}

static int parse_kvs(em_gguf *g, cursor *cp, uint32_t *kh, uint64_t khcap, em_err *err) {
    cursor c = *cp;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (read_kv(&c, &g->kv[i])) return -1;
        if (key_seen(kh, khcap, g->kv, i))
                return em_fail(err, "duplicate metadata key '%.*s' at offset %llu",
                               (int)(g->kv[i].key.len > 100 ? 100 : g->kv[i].key.len), g->kv[i].key.ptr,
                               (unsigned long long)g->kv[i].file_offset);
        if (em_str_eq(g->kv[i].key, "general.alignment")) {
            if (g->kv[i].type != EM_GGUF_U32)
                return em_fail(err, "general.alignment at offset %llu has type %s, expected u32",
                               (unsigned long long)g->kv[i].file_offset, em_gguf_vtype_name(g->kv[i].type));
            uint64_t a = g->kv[i].v.u64;
            if (a == 0 || (a & (a - 1)) != 0)
                return em_fail(err, "general.alignment %llu at offset %llu is not a power of two",
                               (unsigned long long)a, (unsigned long long)g->kv[i].file_offset);
            g->alignment = (uint32_t)a;
        }
    }
    *cp = c;
    return 0;
}

static int parse_tensors(em_gguf *g, cursor *cp, em_err *err) {
    cursor c = *cp;

    uint64_t cap = 16;
    while (cap < g->n_tensors * 2) cap <<= 1;
    g->tensor_hash = em_calloc_array(cap, sizeof *g->tensor_hash);
    if (!g->tensor_hash) return em_fail(err, "out of memory");
    g->tensor_hash_cap = cap;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        em_gguf_tensor *t = &g->tensors[i];
        if (read_tensor_info(&c, t)) return -1;
        if (hash_lookup(g, t->name))
            return em_fail(err, "duplicate tensor name '%s' at offset %llu", t->name,
                           (unsigned long long)t->file_offset);
        uint64_t slot = hash_name(t->name) & (cap - 1);
        while (g->tensor_hash[slot]) slot = (slot + 1) & (cap - 1);
        g->tensor_hash[slot] = (uint32_t)(i + 1);
    }

    if (!em_align_u64(c.pos, g->alignment, &g->data_offset) || g->data_offset > g->size) {
        if (g->n_tensors == 0) {
            g->data_offset = g->size;
            return 0;
        }
        return em_fail(err, "truncated file: tensor data section would start at offset %llu, file has %llu bytes",
                       (unsigned long long)c.pos, (unsigned long long)g->size);
    }
    uint64_t data_size = g->size - g->data_offset;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        em_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return em_fail(err, "tensor '%s' (info at offset %llu): data offset %llu is not a multiple of the alignment %u",
                           t->name, (unsigned long long)t->file_offset, (unsigned long long)t->offset, g->alignment);
        uint64_t end;
        if (!em_add_u64(t->offset, t->nbytes, &end) || end > data_size)
            return em_fail(err, "tensor '%s' (info at offset %llu): data [%llu, +%llu) lies outside the %llu-byte data section",
                           t->name, (unsigned long long)t->file_offset, (unsigned long long)t->offset,
                           (unsigned long long)t->nbytes, (unsigned long long)data_size);
        t->data = g->base + g->data_offset + t->offset;
    }
    return 0;
}

em_gguf *em_gguf_open_mem(const void *data, size_t size, em_err *err) {
    em_gguf *g = calloc(1, sizeof *g);
    if (!g) { em_fail(err, "out of memory"); return NULL; }
    g->base = data;
    g->size = size;
    if (parse(g, err)) {
        free_parsed(g);
        free(g);
        return NULL;
    }
    return g;
}

em_gguf *em_gguf_open(const char *path, em_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { em_fail(err, "%s: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0) { em_fail(err, "%s: %s", path, strerror(errno)); close(fd); return NULL; }
    if (!S_ISREG(st.st_mode)) { em_fail(err, "%s: not a regular file", path); close(fd); return NULL; }
    if (st.st_size < 24) {
        /* Too short for a header (and mmap cannot map 0 bytes): parse a copy
         * so the message names the field that is cut off, as for
         * em_gguf_open_mem. */
        uint8_t small[24];
        ssize_t n = read(fd, small, sizeof small);
        close(fd);
        if (n < 0) { em_fail(err, "%s: %s", path, strerror(errno)); return NULL; }
        em_gguf *g = em_gguf_open_mem(small, (size_t)n, err);
        if (g) { /* impossible: a header alone is 24 bytes */
            em_gguf_close(g);
            em_fail(err, "truncated file: %lld bytes", (long long)n);
        }
        em_fail_ctx(err, "%s", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        em_fail(err, "%s: file too large to map", path);
        close(fd);
        return NULL;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) { em_fail(err, "%s: mmap: %s", path, strerror(errno)); return NULL; }
    em_gguf *g = em_gguf_open_mem(m, (size_t)st.st_size, err);
    if (!g) {
        em_fail_ctx(err, "%s", path);
        munmap(m, (size_t)st.st_size);
        return NULL;
    }
    g->mapped = 1;
    return g;
}

void em_gguf_close(em_gguf *g) {
    if (!g) return;
    free_parsed(g);
    if (g->mapped) munmap((void *)g->base, g->size);
    free(g);
}

const em_gguf_kv *em_gguf_find(const em_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (em_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const em_gguf_tensor *em_gguf_find_tensor(const em_gguf *g, const char *name) { return hash_lookup(g, name); }

static bool is_uint(uint32_t t) {
    return t == EM_GGUF_U8 || t == EM_GGUF_U16 || t == EM_GGUF_U32 || t == EM_GGUF_U64;
}
static bool is_sint(uint32_t t) {
    return t == EM_GGUF_I8 || t == EM_GGUF_I16 || t == EM_GGUF_I32 || t == EM_GGUF_I64;
}

static int get_int(const em_gguf *g, const char *key, int64_t lo, uint64_t hi, bool ok_missing, em_err *err,
                   const em_gguf_kv **out_kv, bool *neg, uint64_t *mag) {
    const em_gguf_kv *kv = em_gguf_find(g, key);
    *out_kv = kv;
    if (!kv) return ok_missing ? 0 : em_fail(err, "missing metadata key '%s'", key);
    if (is_uint(kv->type)) {
        *neg = false;
        *mag = kv->v.u64;
        if (kv->v.u64 > hi) return em_fail(err, "metadata '%s' = %llu is out of range", key, (unsigned long long)kv->v.u64);
    } else if (is_sint(kv->type)) {
        *neg = kv->v.i64 < 0;
        if (*neg && kv->v.i64 < lo) return em_fail(err, "metadata '%s' = %lld is out of range", key, (long long)kv->v.i64);
        if (!*neg && (uint64_t)kv->v.i64 > hi)
            return em_fail(err, "metadata '%s' = %lld is out of range", key, (long long)kv->v.i64);
        *mag = (uint64_t)kv->v.i64;
    } else {
        return em_fail(err, "metadata '%s' has type %s, expected an integer", key, em_gguf_vtype_name(kv->type));
    }
    return 0;
}

int em_gguf_get_u32(const em_gguf *g, const char *key, uint32_t *out, bool ok_missing, em_err *err) {
    const em_gguf_kv *kv; bool neg; uint64_t mag;
    if (get_int(g, key, 0, UINT32_MAX, ok_missing, err, &kv, &neg, &mag)) return -1;
    if (kv) *out = (uint32_t)mag;
    return 0;
}

int em_gguf_get_u64(const em_gguf *g, const char *key, uint64_t *out, bool ok_missing, em_err *err) {
    const em_gguf_kv *kv; bool neg; uint64_t mag;
    if (get_int(g, key, 0, UINT64_MAX, ok_missing, err, &kv, &neg, &mag)) return -1;
    if (kv) *out = mag;
    return 0;
}

int em_gguf_get_i32(const em_gguf *g, const char *key, int32_t *out, bool ok_missing, em_err *err) {
    const em_gguf_kv *kv; bool neg; uint64_t mag;
    if (get_int(g, key, INT32_MIN, INT32_MAX, ok_missing, err, &kv, &neg, &mag)) return -1;
    if (kv) *out = (int32_t)(int64_t)mag;
    return 0;
}

int em_gguf_get_f32(const em_gguf *g, const char *key, float *out, bool ok_missing, em_err *err) {
    const em_gguf_kv *kv = em_gguf_find(g, key);
    if (!kv) return ok_missing ? 0 : em_fail(err, "missing metadata key '%s'", key);
    if (kv->type == EM_GGUF_F32 || kv->type == EM_GGUF_F64) *out = (float)kv->v.f64;
    else if (is_uint(kv->type)) *out = (float)kv->v.u64;
    else if (is_sint(kv->type)) *out = (float)kv->v.i64;
    else return em_fail(err, "metadata '%s' has type %s, expected a number", key, em_gguf_vtype_name(kv->type));
    return 0;
}

int em_gguf_get_bool(const em_gguf *g, const char *key, bool *out, bool ok_missing, em_err *err) {
    const em_gguf_kv *kv = em_gguf_find(g, key);
    if (!kv) return ok_missing ? 0 : em_fail(err, "missing metadata key '%s'", key);
    if (kv->type != EM_GGUF_BOOL)
        return em_fail(err, "metadata '%s' has type %s, expected bool", key, em_gguf_vtype_name(kv->type));
    *out = kv->v.u64 != 0;
    return 0;
}

int em_gguf_get_str(const em_gguf *g, const char *key, em_str *out, bool ok_missing, em_err *err) {
    const em_gguf_kv *kv = em_gguf_find(g, key);
    if (!kv) return ok_missing ? 0 : em_fail(err, "missing metadata key '%s'", key);
    if (kv->type != EM_GGUF_STRING)
        return em_fail(err, "metadata '%s' has type %s, expected str", key, em_gguf_vtype_name(kv->type));
    *out = kv->v.str;
    return 0;
}

int em_gguf_get_arr(const em_gguf *g, const char *key, uint32_t elem_type, const em_gguf_kv **out,
                    bool ok_missing, em_err *err) {
    const em_gguf_kv *kv = em_gguf_find(g, key);
    *out = NULL;
    if (!kv) return ok_missing ? 0 : em_fail(err, "missing metadata key '%s'", key);
    if (kv->type != EM_GGUF_ARRAY)
        return em_fail(err, "metadata '%s' has type %s, expected an array", key, em_gguf_vtype_name(kv->type));
    if (kv->arr_type != elem_type)
        return em_fail(err, "metadata '%s' is an array of %s, expected %s", key, em_gguf_vtype_name(kv->arr_type),
                       em_gguf_vtype_name(elem_type));
    *out = kv;
    return 0;
}
