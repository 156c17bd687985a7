#include "integrity.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "../gguf/gguf.h"
#include "ember.h"

int em_sha256_file(const char *path, uint8_t digest[EM_SHA256_LEN], uint64_t *size, em_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return em_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return em_fail(err, "%s: not a regular file", path);
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    int ret = -1;
    uint64_t total = 0;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        em_fail(err, "%s: cannot start SHA-256", path);
        goto done;
    }
    for (;;) {
        ssize_t k = read(fd, buf, CHUNK);
        if (k < 0) {
            if (errno == EINTR) continue;
            em_fail(err, "%s: read: %s", path, strerror(errno));
            goto done;
        }
        if (k == 0) break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)k) != 1) { em_fail(err, "%s: SHA-256 failed", path); goto done; }
        total += (uint64_t)k;
    }
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx, digest, &n) != 1 || n != EM_SHA256_LEN) {
        em_fail(err, "%s: SHA-256 failed", path);
        goto done;
    }
    if (size) *size = total;
    ret = 0;
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return ret;
}

int em_sha256_parse(const char *hex, uint8_t digest[EM_SHA256_LEN], em_err *err) {
    if (!hex) return em_fail(err, "no SHA-256 given");
    while (isspace((unsigned char)*hex)) hex++;
    size_t n = strlen(hex);
    while (n > 0 && isspace((unsigned char)hex[n - 1])) n--;
    if (em_hex_decode(hex, n, digest, EM_SHA256_LEN))
        return em_fail(err, "'%.*s' is not a SHA-256 digest (64 hex digits)", (int)(n > 80 ? 80 : n), hex);
    return 0;
}

int em_integrity_verify(const char *path, const uint8_t *expected, unsigned what, em_integrity_report *rep,
                        em_err *err) {
    memset(rep, 0, sizeof *rep);
    int ret = 0;
    em_err first = {{0}};
    if (what & EM_VERIFY_HASH) {
        uint8_t d[EM_SHA256_LEN];
        if (em_sha256_file(path, d, &rep->size, err)) return -1;
        em_hex_encode(d, EM_SHA256_LEN, rep->sha256_hex);
        if (expected) {
            rep->hash_checked = true;
            rep->hash_ok = memcmp(d, expected, EM_SHA256_LEN) == 0;
            if (!rep->hash_ok) {
                char want[2 * EM_SHA256_LEN + 1];
                em_hex_encode(expected, EM_SHA256_LEN, want);
                em_fail(&first, "%s: SHA-256 mismatch: expected %s, got %s (the file was modified or is not the "
                                "model the manifest names)", path, want, rep->sha256_hex);
                ret = -1;
            }
        }
    }
    if (what & EM_VERIFY_GGUF) {
        rep->gguf_checked = true;
        em_err ge;
        em_gguf *g = em_gguf_open(path, &ge);
        if (g) {
            rep->gguf_ok = true;
            rep->gguf_version = g->version;
            rep->n_tensors = g->n_tensors;
            rep->n_kv = g->n_kv;
            em_gguf_close(g);
        } else {
            snprintf(rep->gguf_error, sizeof rep->gguf_error, "%s", ge.msg);
            if (!ret) em_fail(&first, "%s", ge.msg);
            ret = -1;
        }
    }
    if ((what & EM_VERIFY_MODEL) && (!rep->gguf_checked || rep->gguf_ok)) {
        rep->model_checked = true;
        ember_error me;
        ember_model *m = ember_model_load(path, &me);
        if (m) {
            rep->model_ok = true;
            snprintf(rep->model_desc, sizeof rep->model_desc, "%s", ember_model_desc(m));
            ember_model_free(m);
        } else {
            snprintf(rep->model_error, sizeof rep->model_error, "%s", me.msg);
            if (!ret) em_fail(&first, "%s", me.msg);
            ret = -1;
        }
    }
    if (ret && err) *err = first;
    return ret;
}

/* ---- manifest ----------------------------------------------------------- */

void em_manifest_free(em_manifest *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->entries[i].name);
        free(m->entries[i].path);
    }
    free(m->entries);
    free(m);
}

static char *join_path(const char *dir, const char *p) {
    size_t n;
    char *s;
    if (p[0] == '/' || !dir || !*dir) return strdup(p);
    n = strlen(dir) + strlen(p) + 2;
    if (!(s = malloc(n))) return NULL;
    snprintf(s, n, "%s/%s", dir, p);
    return s;
}

em_manifest *em_manifest_parse(const char *json, size_t len, const char *base_dir, em_err *err) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) { em_fail(err, "manifest: not valid JSON"); return NULL; }
    em_manifest *m = calloc(1, sizeof *m);
    if (!m) { cJSON_Delete(root); em_fail(err, "out of memory"); return NULL; }
    const cJSON *models = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "models") : NULL;
    if (!models) models = root;
    if (!cJSON_IsObject(models)) { em_fail(err, "manifest: expected an object of models"); goto fail; }
    size_t count = (size_t)cJSON_GetArraySize(models);
    if (count == 0) { em_fail(err, "manifest: no models"); goto fail; }
    if (!(m->entries = calloc(count, sizeof *m->entries))) { em_fail(err, "out of memory"); goto fail; }
    const cJSON *it;
    cJSON_ArrayForEach(it, models) {
        const char *name = it->string;
        if (!name || !*name) { em_fail(err, "manifest: a model has an empty name"); goto fail; }
        if (em_manifest_find(m, name)) { em_fail(err, "manifest: model '%s' appears twice", name); goto fail; }
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "path");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "sha256");
        if (!cJSON_IsObject(it) || !cJSON_IsString(p) || !*p->valuestring) {
            em_fail(err, "manifest: model '%s' needs a \"path\" string", name);
            goto fail;
        }
        if (!cJSON_IsString(h)) { em_fail(err, "manifest: model '%s' needs a \"sha256\" string", name); goto fail; }
        em_manifest_entry *e = &m->entries[m->n];
        em_err he;
        if (em_sha256_parse(h->valuestring, e->sha256, &he)) {
            em_fail(err, "manifest: model '%s': %s", name, he.msg);
            goto fail;
        }
        e->name = strdup(name);
        e->path = join_path(base_dir, p->valuestring);
        m->n++;
        if (!e->name || !e->path) { em_fail(err, "out of memory"); goto fail; }
    }
    cJSON_Delete(root);
    return m;
fail:
    cJSON_Delete(root);
    em_manifest_free(m);
    return NULL;
}

em_manifest *em_manifest_load(const char *path, em_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { em_fail(err, "%s: %s", path, strerror(errno)); return NULL; }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? 2 * cap : 8192;
            if (cap > (16u << 20)) { free(buf); fclose(f); em_fail(err, "%s: manifest larger than 16 MiB", path); return NULL; }
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); em_fail(err, "out of memory"); return NULL; }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    bool rerr = ferror(f);
    fclose(f);
    if (rerr) { free(buf); em_fail(err, "%s: read error", path); return NULL; }
    char *dir = strdup(path);
    if (!dir) { free(buf); em_fail(err, "out of memory"); return NULL; }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    em_manifest *m = em_manifest_parse(buf, n, dir, err);
    if (!m) em_fail_ctx(err, "%s", path);
    free(dir);
    free(buf);
    return m;
}

const em_manifest_entry *em_manifest_find(const em_manifest *m, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].name, name)) return &m->entries[i];
    return NULL;
}

const em_manifest_entry *em_manifest_find_path(const em_manifest *m, const char *path) {
    struct stat a, b;
    if (stat(path, &a) != 0) return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (stat(m->entries[i].path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return &m->entries[i];
    return NULL;
}
