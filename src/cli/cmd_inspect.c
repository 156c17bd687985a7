/* cmd_inspect.c - `ember inspect FILE`: prints a GGUF file's header, every
 * metadata pair (arrays abbreviated), the tensor table and a summary. */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../base/checked.h"
#include "../gguf/gguf.h"

#define STR_SHOW 64   /* characters of a string value shown before "..." */
#define ARR_SHOW 8    /* array elements shown before "..." */

/* Prints at most max bytes of s, quoted, with control characters, quotes
 * and backslashes escaped (UTF-8 passes through). */
static void print_str(FILE *f, const char *p, uint64_t len, uint64_t max) {
    uint64_t n = len < max ? len : max;
    fputc('"', f);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        switch (ch) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\x%02x", ch);
            else fputc(ch, f);
        }
    }
    fputc('"', f);
    if (len > n) fprintf(f, "... (%" PRIu64 " bytes)", len);
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

/* One fixed-size element at p (unaligned, little endian). */
static void print_elem(FILE *f, uint32_t t, const uint8_t *p) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64; } v;
    memcpy(&v, p, elem_size(t));
    switch (t) {
    case EM_GGUF_U8: fprintf(f, "%u", v.u8); break;
    case EM_GGUF_I8: fprintf(f, "%d", v.i8); break;
    case EM_GGUF_U16: fprintf(f, "%u", v.u16); break;
    case EM_GGUF_I16: fprintf(f, "%d", v.i16); break;
    case EM_GGUF_U32: fprintf(f, "%" PRIu32, v.u32); break;
    case EM_GGUF_I32: fprintf(f, "%" PRId32, v.i32); break;
    case EM_GGUF_F32: fprintf(f, "%.9g", v.f32); break;
    case EM_GGUF_BOOL: fputs(v.u8 ? "true" : "false", f); break;
    case EM_GGUF_U64: fprintf(f, "%" PRIu64, v.u64); break;
    case EM_GGUF_I64: fprintf(f, "%" PRId64, v.i64); break;
    case EM_GGUF_F64: fprintf(f, "%.17g", v.f64); break;
    default: fputs("?", f);
    }
}

/* Bounded walker over raw array bodies (the reader validated them, but the
 * walker re-checks against end rather than trusting that). Returns the byte
 * size of an array body of type t and count n at p, or 0 on inconsistency. */
static uint64_t body_size(const uint8_t *p, const uint8_t *end, uint32_t t, uint64_t n, int depth) {
    if (depth > EM_GGUF_MAX_ARRAY_DEPTH) return 0;
    uint64_t left = (uint64_t)(end - p), used = 0;
    if (t == EM_GGUF_STRING || t == EM_GGUF_ARRAY) {
        for (uint64_t i = 0; i < n; i++) {
            if (t == EM_GGUF_STRING) {
                uint64_t len;
                if (left - used < 8) return 0;
                memcpy(&len, p + used, 8);
                used += 8;
                if (len > left - used) return 0;
                used += len;
            } else {
                uint32_t et;
                uint64_t en, sub;
                if (left - used < 12) return 0;
                memcpy(&et, p + used, 4);
                memcpy(&en, p + used + 4, 8);
                used += 12;
                if (en == 0) continue;
                sub = body_size(p + used, end, et, en, depth + 1);
                if (sub == 0) return 0;
                used += sub;
            }
        }
        return used;
    }
    uint32_t es = elem_size(t);
    if (es == 0 || n > left / es) return 0;
    return n * es;
}

/* Prints the elements of an array whose body starts at p, as [a, b, ...];
 * nested arrays as arr[type,n] [...]. */
static void print_array(FILE *f, const em_gguf *g, const uint8_t *p, uint32_t t, uint64_t n, int depth) {
    const uint8_t *end = g->base + g->size;
    fputc('[', f);
    uint64_t show = n < ARR_SHOW ? n : ARR_SHOW;
    for (uint64_t i = 0; i < show; i++) {
        if (i) fputs(", ", f);
        if (t == EM_GGUF_STRING) {
            uint64_t len;
            if (end - p < 8) { fputs("?", f); break; }
            memcpy(&len, p, 8);
            p += 8;
            if (len > (uint64_t)(end - p)) { fputs("?", f); break; }
            print_str(f, (const char *)p, len, 32);
            p += len;
        } else if (t == EM_GGUF_ARRAY) {
            uint32_t et;
            uint64_t en;
            if (end - p < 12 || depth >= EM_GGUF_MAX_ARRAY_DEPTH) { fputs("...", f); break; }
            memcpy(&et, p, 4);
            memcpy(&en, p + 4, 8);
            p += 12;
            fprintf(f, "arr[%s,%" PRIu64 "] ", em_gguf_vtype_name(et), en);
            print_array(f, g, p, et, en, depth + 1);
            if (en) {
                uint64_t sz = body_size(p, end, et, en, depth + 1);
                if (sz == 0) { fputs(", ?", f); break; }
                p += sz;
            }
        } else {
            uint32_t es = elem_size(t);
            if (es == 0 || (uint64_t)(end - p) < es) { fputs("?", f); break; }
            print_elem(f, t, p);
            p += es;
        }
    }
    if (n > show) fputs(", ...", f);
    fputc(']', f);
}

/* Keys are printed as they are unless they hold spaces, quotes or control
 * bytes (then quoted and escaped). */
static void print_key(FILE *f, em_str k) {
    bool plain = k.len > 0 && k.len <= 200;
    for (uint64_t i = 0; plain && i < k.len; i++) {
        unsigned char ch = (unsigned char)k.ptr[i];
        if (ch <= ' ' || ch == '"' || ch == '\\' || ch == 0x7f) plain = false;
    }
    if (plain) fwrite(k.ptr, 1, (size_t)k.len, f);
    else print_str(f, k.ptr, k.len, 200);
}

static void print_kv(FILE *f, const em_gguf *g, const em_gguf_kv *kv) {
    fputs("  ", f);
    print_key(f, kv->key);
    if (kv->type == EM_GGUF_ARRAY)
        fprintf(f, " arr[%s,%" PRIu64 "] = ", em_gguf_vtype_name(kv->arr_type), kv->arr_n);
    else
        fprintf(f, " %s = ", em_gguf_vtype_name(kv->type));
    switch (kv->type) {
    case EM_GGUF_U8: case EM_GGUF_U16: case EM_GGUF_U32: case EM_GGUF_U64:
        fprintf(f, "%" PRIu64, kv->v.u64);
        break;
    case EM_GGUF_I8: case EM_GGUF_I16: case EM_GGUF_I32: case EM_GGUF_I64:
        fprintf(f, "%" PRId64, kv->v.i64);
        break;
    case EM_GGUF_F32: fprintf(f, "%.9g", kv->v.f64); break;
    case EM_GGUF_F64: fprintf(f, "%.17g", kv->v.f64); break;
    case EM_GGUF_BOOL: fputs(kv->v.u64 ? "true" : "false", f); break;
    case EM_GGUF_STRING: print_str(f, kv->v.str.ptr, kv->v.str.len, STR_SHOW); break;
    case EM_GGUF_ARRAY:
        if (kv->arr_type == EM_GGUF_STRING) {
            /* Use the decoded strings (no re-walk needed). */
            uint64_t show = kv->arr_n < ARR_SHOW ? kv->arr_n : ARR_SHOW;
            fputc('[', f);
            for (uint64_t i = 0; i < show; i++) {
                if (i) fputs(", ", f);
                print_str(f, kv->arr_strs[i].ptr, kv->arr_strs[i].len, 32);
            }
            if (kv->arr_n > show) fputs(", ...", f);
            fputc(']', f);
        } else {
            print_array(f, g, kv->arr_data, kv->arr_type, kv->arr_n, 1);
        }
        break;
    default: fputs("?", f);
    }
    fputc('\n', f);
}

/* Prints "<arch>.<suffix>" as an expert count line when present. */
static void print_expert_key(FILE *f, const em_gguf *g, em_str arch, const char *suffix, const char *label) {
    char key[256];
    if (arch.len > 200) return;
    snprintf(key, sizeof key, "%.*s.%s", (int)arch.len, arch.ptr, suffix);
    uint64_t v;
    em_err err;
    const em_gguf_kv *kv = em_gguf_find(g, key);
    if (!kv) return;
    if (em_gguf_get_u64(g, key, &v, false, &err) == 0) fprintf(f, "  %s: %" PRIu64 " (%s)\n", label, v, key);
    else fprintf(f, "  %s: invalid (%s)\n", label, err.msg);
}

int cmd_inspect(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            printf("usage: ember inspect FILE.gguf\n");
            return 0;
        }
        fprintf(stderr, "usage: ember inspect FILE.gguf\n");
        return 2;
    }
    em_err err = {{0}};
    em_gguf *g = em_gguf_open(argv[1], &err);
    if (!g) {
        fprintf(stderr, "ember inspect: %s\n", err.msg);
        return 1;
    }
    FILE *f = stdout;
    fprintf(f, "file: %s (%" PRIu64 " bytes)\n", argv[1], g->size);
    fprintf(f, "GGUF version: %" PRIu32 "\n", g->version);
    fprintf(f, "alignment: %" PRIu32 "\n", g->alignment);
    fprintf(f, "data offset: %" PRIu64 "\n", g->data_offset);
    fprintf(f, "metadata: %" PRIu64 " keys\n", g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) print_kv(f, g, &g->kv[i]);

    fprintf(f, "tensors: %" PRIu64 "\n", g->n_tensors);
    fprintf(f, "  %-5s %-32s %-7s %-24s %12s %12s\n", "#", "name", "type", "dims", "offset", "bytes");
    uint64_t total = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const em_gguf_tensor *t = &g->tensors[i];
        char dims[128];
        int n = 0;
        for (uint32_t d = 0; d < t->n_dims && n < (int)sizeof dims; d++)
            n += snprintf(dims + n, sizeof dims - (size_t)n, "%s%" PRId64, d ? " x " : "", t->ne[d]);
        const char *tn = em_type_name(t->type);
        fprintf(f, "  %-5" PRIu64 " %-32s %-7s %-24s %12" PRIu64 " %12" PRIu64 "\n", i, t->name, tn ? tn : "?", dims,
                t->offset, t->nbytes);
        if (!em_add_u64(total, t->nbytes, &total)) total = UINT64_MAX; /* overlapping tensors */
    }
    fprintf(f, "summary:\n");
    fprintf(f, "  tensors: %" PRIu64 "\n", g->n_tensors);
    fprintf(f, "  tensor bytes: %" PRIu64 "\n", total);
    em_str arch = {0};
    if (em_gguf_get_str(g, "general.architecture", &arch, true, &err) == 0 && arch.ptr) {
        fprintf(f, "  architecture: ");
        print_str(f, arch.ptr, arch.len, STR_SHOW);
        fputc('\n', f);
        print_expert_key(f, g, arch, "expert_count", "experts");
        print_expert_key(f, g, arch, "expert_used_count", "experts used per token");
    }
    int rc = 0;
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "ember inspect: error writing output\n");
        rc = 1;
    }
    em_gguf_close(g);
    return rc;
}
