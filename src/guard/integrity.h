/* integrity.h - model file integrity: streaming SHA-256 of a file, checks
 * against an expected digest, GGUF structural checks, and the models
 * manifest the server verifies before serving.
 *
 * Manifest (JSON): model name -> path and SHA-256; relative paths are
 * relative to the manifest file's folder:
 *     {"models": {"stories": {"path": "stories260K.gguf", "sha256": "ab12..."}}}
 * (the top-level "models" wrapper is optional).
 *
 * Server use at start-up:
 *     em_manifest *m = em_manifest_load(path, &err);
 *     for each entry: em_integrity_verify(e->path, e->sha256, EM_VERIFY_HASH, &rep, &err)
 *     -> refuse to start with err.msg on failure; report rep.sha256_hex in /v1/models.
 * or, for --model-sha256 HEX: em_sha256_parse(HEX, digest) then em_integrity_verify.
 *
 * Everything here is thread-safe; returned objects are owned by the caller. */
#ifndef EM_GUARD_INTEGRITY_H
#define EM_GUARD_INTEGRITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "util.h"

/* Streams the file through SHA-256 (1 MiB reads). size may be NULL. */
int em_sha256_file(const char *path, uint8_t digest[EM_SHA256_LEN], uint64_t *size, em_err *err);
/* Parses 64 hex digits (either case, surrounding blanks ignored). */
int em_sha256_parse(const char *hex, uint8_t digest[EM_SHA256_LEN], em_err *err);

enum {
    EM_VERIFY_HASH = 1,  /* compute the digest (and compare it when expected != NULL) */
    EM_VERIFY_GGUF = 2,  /* parse and validate the GGUF container (em_gguf_open) */
    EM_VERIFY_MODEL = 4, /* load the model (ember_model_load: architecture, tensors, tokenizer) */
    EM_VERIFY_ALL = 7,
};

typedef struct em_integrity_report {
    uint64_t size;
    char sha256_hex[2 * EM_SHA256_LEN + 1];
    bool hash_checked, hash_ok;       /* hash_checked: an expected digest was given */
    bool gguf_checked, gguf_ok;
    uint32_t gguf_version;
    uint64_t n_tensors, n_kv;
    char gguf_error[512];
    bool model_checked, model_ok;
    char model_desc[256];
    char model_error[512];
} em_integrity_report;

/* Runs the checks in `what` (EM_VERIFY_*). Returns 0 when every check that
 * ran passed; else -1 with err naming the first failure (for a digest
 * mismatch: "PATH: SHA-256 mismatch: expected X, got Y"). The report is
 * filled either way. expected may be NULL. */
int em_integrity_verify(const char *path, const uint8_t *expected, unsigned what, em_integrity_report *rep,
                        em_err *err);

typedef struct em_manifest_entry {
    char *name;
    char *path; /* resolved */
    uint8_t sha256[EM_SHA256_LEN];
} em_manifest_entry;

typedef struct em_manifest {
    size_t n;
    em_manifest_entry *entries;
} em_manifest;

/* Parses a manifest; base_dir (may be NULL) resolves relative paths. */
em_manifest *em_manifest_parse(const char *json, size_t len, const char *base_dir, em_err *err);
em_manifest *em_manifest_load(const char *path, em_err *err);
const em_manifest_entry *em_manifest_find(const em_manifest *m, const char *name);
/* The entry whose path names the same file as path (by device and inode),
 * or NULL. */
const em_manifest_entry *em_manifest_find_path(const em_manifest *m, const char *path);
void em_manifest_free(em_manifest *m);

#endif
