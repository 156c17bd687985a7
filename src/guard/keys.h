/* keys.h - API keys in the guard database (db.h).
 *
 * A key is 256 random bits (OpenSSL RAND_bytes) shown to the operator once,
 * at creation, as "em-" followed by 43 base64url characters. Only its
 * SHA-256 is stored; authentication hashes the presented token, looks the
 * hash up and compares it in constant time (CRYPTO_memcmp).
 *
 * Server use (per request):
 *     const char *tok; size_t n;
 *     em_auth_bearer(header_value, &tok, &n);          // NULL header -> missing
 *     em_key key;
 *     em_auth_result r = em_keys_authenticate(db, tok, n, em_now_s(), &key, &err);
 *     if (r != EM_AUTH_OK) -> 401 with em_auth_code(r) / em_auth_message(r)
 *     if (!em_key_allows_model(&key, model)) -> 404 model_not_found (or 403)
 * then the rate limiter (ratelimit.h) with key.id and em_key_limits(&key).
 *
 * All functions are thread-safe (they lock the em_db). Every em_key is a
 * plain value: copy it freely, nothing to free. */
#ifndef EM_GUARD_KEYS_H
#define EM_GUARD_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define EM_KEY_PREFIX "em-"
#define EM_KEY_TOKEN_LEN 46   /* "em-" + 43 base64url characters */
#define EM_KEY_NAME_MAX 64
#define EM_KEY_MODELS_MAX 1024

typedef struct em_key {
    int64_t id;
    char name[EM_KEY_NAME_MAX + 1];
    char models[EM_KEY_MODELS_MAX + 1]; /* "*" or "a,b,c" */
    int64_t rpm, tpm, max_concurrent;   /* 0: unlimited */
    bool admin;
    int64_t created_at;                 /* Unix seconds */
    int64_t expires_at;                 /* 0: never */
    int64_t revoked_at;                 /* 0: active */
    char fingerprint[17];               /* first 16 hex digits of the stored hash, for display */
} em_key;

typedef struct em_key_spec {
    const char *name;    /* required: 1-64 of [A-Za-z0-9._-], not all digits */
    const char *models;  /* NULL or "*": all; else comma-separated model names */
    int64_t rpm, tpm, max_concurrent; /* 0: unlimited; must be >= 0 */
    int64_t expires_at;  /* 0: never */
    bool admin;
} em_key_spec;

/* Creates a key. token receives the secret (NUL-terminated, shown once and
 * never recoverable); out (may be NULL) the stored record. Fails if an
 * active key already has the name. */
int em_keys_create(em_db *d, const em_key_spec *spec, int64_t now, char token[EM_KEY_TOKEN_LEN + 1], em_key *out,
                   em_err *err);

/* Every key (revoked ones too) by id; *keys is the caller's to free(). */
int em_keys_list(em_db *d, em_key **keys, size_t *n, em_err *err);

/* Revokes the active key with this name, or the key with this id when
 * name_or_id is all digits. out (may be NULL) gets the record. Fails when
 * nothing matches or the key was already revoked. */
int em_keys_revoke(em_db *d, const char *name_or_id, int64_t now, em_key *out, em_err *err);

/* Looks up one key (active or not) by name or id, like em_keys_revoke. */
int em_keys_get(em_db *d, const char *name_or_id, em_key *out, em_err *err);

typedef enum {
    EM_AUTH_OK = 0,
    EM_AUTH_MISSING,  /* no token */
    EM_AUTH_INVALID,  /* malformed or unknown token */
    EM_AUTH_REVOKED,
    EM_AUTH_EXPIRED,
    EM_AUTH_ERROR,    /* database failure: err says why (answer 500, not 401) */
} em_auth_result;

/* Authenticates a token (token may be NULL / not NUL-terminated; len bytes).
 * On EM_AUTH_OK *out is the key; for REVOKED / EXPIRED it is filled too (for
 * the audit log). */
em_auth_result em_keys_authenticate(em_db *d, const char *token, size_t len, int64_t now, em_key *out, em_err *err);

/* Machine code for an error body ("missing_api_key", "invalid_api_key",
 * "revoked_api_key", "expired_api_key", "internal_error") and a sentence. */
const char *em_auth_code(em_auth_result r);
const char *em_auth_message(em_auth_result r);

/* The token of an "Authorization: Bearer TOKEN" value (scheme is case-
 * insensitive, surrounding blanks ignored). Returns false (and *tok = NULL,
 * *len = 0) when value is NULL, empty or not a Bearer credential. */
bool em_auth_bearer(const char *value, const char **tok, size_t *len);

/* Whether the key may use model (exact name match or "*"). */
bool em_key_allows_model(const em_key *k, const char *model);

/* Validates a key name / model list the way em_keys_create does. */
int em_key_check_name(const char *name, em_err *err);
int em_key_check_models(const char *models, em_err *err);

#endif
