#include "keys.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util.h"

#define KEY_COLS "id, name, hash, models, rpm, tpm, max_concurrent, admin, created_at, expires_at, revoked_at"

static void read_row(sqlite3_stmt *st, em_key *k) {
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(st, 0);
    const unsigned char *s = sqlite3_column_text(st, 1);
    snprintf(k->name, sizeof k->name, "%s", s ? (const char *)s : "");
    const void *h = sqlite3_column_blob(st, 2);
    if (h && sqlite3_column_bytes(st, 2) >= 8) em_hex_encode(h, 8, k->fingerprint);
    s = sqlite3_column_text(st, 3);
    snprintf(k->models, sizeof k->models, "%s", s ? (const char *)s : "*");
    k->rpm = sqlite3_column_int64(st, 4);
    k->tpm = sqlite3_column_int64(st, 5);
    k->max_concurrent = sqlite3_column_int64(st, 6);
    k->admin = sqlite3_column_int(st, 7) != 0;
    k->created_at = sqlite3_column_int64(st, 8);
    k->expires_at = sqlite3_column_int64(st, 9); /* NULL reads as 0 */
    k->revoked_at = sqlite3_column_int64(st, 10);
}

int em_key_check_name(const char *name, em_err *err) {
    if (!name || !*name) return em_fail(err, "a key needs a name");
    size_t n = strlen(name);
    if (n > EM_KEY_NAME_MAX) return em_fail(err, "key name '%.64s...' is longer than %d characters", name, EM_KEY_NAME_MAX);
    bool nondigit = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return em_fail(err, "key name '%s': only letters, digits, '.', '_' and '-' are allowed", name);
        if (!isdigit(c)) nondigit = true;
    }
    if (!nondigit) return em_fail(err, "key name '%s' must not be all digits (digits name a key id)", name);
    return 0;
}

int em_key_check_models(const char *models, em_err *err) {
    if (!models || !strcmp(models, "*")) return 0;
    size_t n = strlen(models);
    if (n == 0) return em_fail(err, "empty model list (use '*' for all models)");
    if (n > EM_KEY_MODELS_MAX) return em_fail(err, "model list is longer than %d characters", EM_KEY_MODELS_MAX);
    const char *p = models;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0) return em_fail(err, "model list '%s' has an empty name", models);
        for (size_t i = 0; i < len; i++)
            if (isspace((unsigned char)p[i]) || (unsigned char)p[i] < 0x20)
                return em_fail(err, "model list '%s': names must not contain blanks", models);
        if (len == 1 && *p == '*') return em_fail(err, "model list '%s': '*' must stand alone", models);
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

static int find_key(em_db *d, const char *name_or_id, em_key *out, bool active_only, em_err *err) {
    bool numeric = *name_or_id != 0;
    for (const char *p = name_or_id; *p; p++)
        if (!isdigit((unsigned char)*p)) numeric = false;
    const char *sql = numeric ? "SELECT " KEY_COLS " FROM api_keys WHERE id = ?"
                      : active_only
                          ? "SELECT " KEY_COLS " FROM api_keys WHERE name = ? AND revoked_at IS NULL"
                          : "SELECT " KEY_COLS " FROM api_keys WHERE name = ? ORDER BY revoked_at IS NULL DESC, id DESC";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) return em_db_fail(d, "cannot look up the key", err);
    if (numeric) sqlite3_bind_int64(st, 1, strtoll(name_or_id, NULL, 10));
    else sqlite3_bind_text(st, 1, name_or_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_row(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return em_fail(err, "no %skey named '%s'", active_only && !numeric ? "active " : "", name_or_id);
    return em_db_fail(d, "cannot look up the key", err);
}

int em_keys_create(em_db *d, const em_key_spec *spec, int64_t now, char token[EM_KEY_TOKEN_LEN + 1], em_key *out,
                   em_err *err) {
    if (em_key_check_name(spec->name, err) || em_key_check_models(spec->models, err)) return -1;
    if (spec->rpm < 0 || spec->tpm < 0 || spec->max_concurrent < 0)
        return em_fail(err, "limits must not be negative");
    if (spec->expires_at != 0 && spec->expires_at <= now) return em_fail(err, "the expiry time is in the past");
    uint8_t raw[32], hash[EM_SHA256_LEN];
    if (em_random_bytes(raw, sizeof raw, err)) return -1;
    memcpy(token, EM_KEY_PREFIX, 3);
    size_t n = em_base64url_encode(raw, sizeof raw, token + 3);
    OPENSSL_cleanse(raw, sizeof raw);
    if (n + 3 != EM_KEY_TOKEN_LEN) return em_fail(err, "internal error: key length");
    if (em_sha256(token, EM_KEY_TOKEN_LEN, hash, err)) return -1;

    em_db_lock(d);
    int ret = -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(d->db,
                           "INSERT INTO api_keys(name, hash, models, rpm, tpm, max_concurrent, admin, created_at, "
                           "expires_at) VALUES(?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        em_db_fail(d, "cannot create the key", err);
        goto done;
    }
    sqlite3_bind_text(st, 1, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, spec->models ? spec->models : "*", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, spec->rpm);
    sqlite3_bind_int64(st, 5, spec->tpm);
    sqlite3_bind_int64(st, 6, spec->max_concurrent);
    sqlite3_bind_int(st, 7, spec->admin ? 1 : 0);
    sqlite3_bind_int64(st, 8, now);
    if (spec->expires_at) sqlite3_bind_int64(st, 9, spec->expires_at);
    else sqlite3_bind_null(st, 9);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT) {
        em_fail(err, "an active key named '%s' already exists (revoke it first)", spec->name);
        goto done;
    }
    if (rc != SQLITE_DONE) {
        em_db_fail(d, "cannot create the key", err);
        goto done;
    }
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)sqlite3_last_insert_rowid(d->db));
    em_key tmp;
    if (find_key(d, idbuf, out ? out : &tmp, false, err)) goto done;
    ret = 0;
done:
    sqlite3_finalize(st);
    em_db_unlock(d);
    if (ret) OPENSSL_cleanse(token, EM_KEY_TOKEN_LEN + 1);
    return ret;
}

int em_keys_list(em_db *d, em_key **keys, size_t *n, em_err *err) {
    *keys = NULL;
    *n = 0;
    em_db_lock(d);
    sqlite3_stmt *st;
    int ret = -1;
    size_t cap = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT " KEY_COLS " FROM api_keys ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
        em_db_unlock(d);
        return em_db_fail(d, "cannot list the keys", err);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            em_key *nk = realloc(*keys, cap * sizeof **keys);
            if (!nk) { em_fail(err, "out of memory"); goto done; }
            *keys = nk;
        }
        read_row(st, &(*keys)[(*n)++]);
    }
    if (rc != SQLITE_DONE) { em_db_fail(d, "cannot list the keys", err); goto done; }
    ret = 0;
done:
    sqlite3_finalize(st);
    em_db_unlock(d);
    if (ret) { free(*keys); *keys = NULL; *n = 0; }
    return ret;
}

int em_keys_get(em_db *d, const char *name_or_id, em_key *out, em_err *err) {
    em_db_lock(d);
    int r = find_key(d, name_or_id, out, false, err);
    em_db_unlock(d);
    return r;
}

int em_keys_revoke(em_db *d, const char *name_or_id, int64_t now, em_key *out, em_err *err) {
    if (!name_or_id || !*name_or_id) return em_fail(err, "which key? (give its name or id)");
    em_db_lock(d);
    int ret = -1;
    em_key k;
    sqlite3_stmt *st = NULL;
    if (em_db_exec(d, "BEGIN IMMEDIATE", "cannot revoke the key", err)) goto out;
    if (find_key(d, name_or_id, &k, true, err)) goto rollback;
    if (k.revoked_at) { em_fail(err, "key %lld ('%s') is already revoked", (long long)k.id, k.name); goto rollback; }
    if (sqlite3_prepare_v2(d->db, "UPDATE api_keys SET revoked_at = ? WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
        em_db_fail(d, "cannot revoke the key", err);
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, k.id);
    if (sqlite3_step(st) != SQLITE_DONE) { em_db_fail(d, "cannot revoke the key", err); goto rollback; }
    if (em_db_exec(d, "COMMIT", "cannot revoke the key", err)) goto rollback;
    k.revoked_at = now;
    if (out) *out = k;
    ret = 0;
    goto out;
rollback:
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    em_db_unlock(d);
    return ret;
}

static bool token_well_formed(const char *t, size_t len) {
    if (len != EM_KEY_TOKEN_LEN || memcmp(t, EM_KEY_PREFIX, 3) != 0) return false;
    for (size_t i = 3; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!isalnum(c) && c != '-' && c != '_') return false;
    }
    return true;
}

em_auth_result em_keys_authenticate(em_db *d, const char *token, size_t len, int64_t now, em_key *out, em_err *err) {
    if (!token || len == 0) return EM_AUTH_MISSING;
    if (!token_well_formed(token, len)) return EM_AUTH_INVALID;
    uint8_t hash[EM_SHA256_LEN];
    if (em_sha256(token, len, hash, err)) return EM_AUTH_ERROR;
    em_db_lock(d);
    sqlite3_stmt *st;
    em_auth_result r = EM_AUTH_INVALID;
    if (sqlite3_prepare_v2(d->db, "SELECT " KEY_COLS " FROM api_keys WHERE hash = ?", -1, &st, NULL) != SQLITE_OK) {
        em_db_fail(d, "cannot look up the key", err);
        em_db_unlock(d);
        return EM_AUTH_ERROR;
    }
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *stored = sqlite3_column_blob(st, 2);
        /* The index lookup found the row; the constant-time comparison is
         * what decides. */
        if (stored && sqlite3_column_bytes(st, 2) == EM_SHA256_LEN &&
            CRYPTO_memcmp(stored, hash, EM_SHA256_LEN) == 0) {
            em_key k;
            read_row(st, &k);
            if (out) *out = k;
            r = k.revoked_at ? EM_AUTH_REVOKED : (k.expires_at && k.expires_at <= now) ? EM_AUTH_EXPIRED : EM_AUTH_OK;
        }
    } else if (rc != SQLITE_DONE) {
        em_db_fail(d, "cannot look up the key", err);
        r = EM_AUTH_ERROR;
    }
    sqlite3_finalize(st);
    em_db_unlock(d);
    return r;
}

const char *em_auth_code(em_auth_result r) {
    switch (r) {
    case EM_AUTH_OK: return "ok";
    case EM_AUTH_MISSING: return "missing_api_key";
    case EM_AUTH_INVALID: return "invalid_api_key";
    case EM_AUTH_REVOKED: return "revoked_api_key";
    case EM_AUTH_EXPIRED: return "expired_api_key";
    default: return "internal_error";
    }
}

const char *em_auth_message(em_auth_result r) {
    switch (r) {
    case EM_AUTH_OK: return "ok";
    case EM_AUTH_MISSING:
        return "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer YOUR_KEY).";
    case EM_AUTH_INVALID: return "Incorrect API key provided.";
    case EM_AUTH_REVOKED: return "This API key has been revoked.";
    case EM_AUTH_EXPIRED: return "This API key has expired.";
    default: return "The server could not check the API key.";
    }
}

bool em_auth_bearer(const char *value, const char **tok, size_t *len) {
    *tok = NULL;
    *len = 0;
    if (!value) return false;
    while (*value == ' ' || *value == '\t') value++;
    if (strncasecmp(value, "bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t')) return false;
    const char *p = value + 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n')) n--;
    if (n == 0) return false;
    *tok = p;
    *len = n;
    return true;
}

bool em_key_allows_model(const em_key *k, const char *model) {
    if (!strcmp(k->models, "*")) return true;
    if (!model) return false;
    size_t ml = strlen(model);
    const char *p = k->models;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == ml && !memcmp(p, model, ml)) return true;
        if (!c) return false;
        p = c + 1;
    }
}
