#include "db.h"

#include <stdlib.h>
#include <string.h>

static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS api_keys("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " hash BLOB NOT NULL UNIQUE,"           /* SHA-256 of the whole token; the token itself is never stored */
    " models TEXT NOT NULL DEFAULT '*',"
    " rpm INTEGER NOT NULL DEFAULT 0,"       /* 0: unlimited */
    " tpm INTEGER NOT NULL DEFAULT 0,"
    " max_concurrent INTEGER NOT NULL DEFAULT 0,"
    " admin INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"          /* Unix seconds */
    " expires_at INTEGER,"                   /* NULL: never */
    " revoked_at INTEGER);"                  /* NULL: active */
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;"
    "CREATE TABLE IF NOT EXISTS usage_log("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"               /* request start, Unix milliseconds */
    " request_id TEXT,"
    " key_id INTEGER,"                       /* NULL: unauthenticated */
    " model TEXT,"
    " endpoint TEXT,"
    " prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    " completion_tokens INTEGER NOT NULL DEFAULT 0,"
    " latency_ms INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER NOT NULL,"              /* HTTP status */
    " guard TEXT,"                           /* guard decisions, e.g. \"injection:flag:override.ignore_previous\" */
    " prompt_text TEXT,"                     /* only with audit-content, redacted */
    " completion_text TEXT);"
    "CREATE INDEX IF NOT EXISTS usage_log_key_ts ON usage_log(key_id, ts_ms);"
    "CREATE INDEX IF NOT EXISTS usage_log_ts ON usage_log(ts_ms);";

int em_db_fail(em_db *d, const char *what, em_err *err) {
    return em_fail(err, "%s: %s (%s)", d->path, what, d->db ? sqlite3_errmsg(d->db) : "out of memory");
}

int em_db_exec(em_db *d, const char *sql, const char *what, em_err *err) {
    char *msg = NULL;
    if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        em_fail(err, "%s: %s (%s)", d->path, what, msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int em_db_set_durable(em_db *d, bool full, em_err *err) {
    em_db_lock(d);
    int r = em_db_exec(d, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", "cannot set durability", err);
    em_db_unlock(d);
    return r;
}

void em_db_lock(em_db *d) { pthread_mutex_lock(&d->mu); }
void em_db_unlock(em_db *d) { pthread_mutex_unlock(&d->mu); }

static int user_version(em_db *d, int *v, em_err *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return em_db_fail(d, "cannot read the schema version", err);
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return em_db_fail(d, "cannot read the schema version", err);
    return 0;
}

em_db *em_db_open(const char *path, em_err *err) {
    if (!path || !*path) { em_fail(err, "no database path"); return NULL; }
    em_db *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        em_fail(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    int rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        em_db_fail(d, "cannot open the database", err);
        em_db_close(d);
        return NULL;
    }
    sqlite3_extended_result_codes(d->db, 1);
    sqlite3_busy_timeout(d->db, EM_DB_BUSY_TIMEOUT_MS);
    int v;
    /* journal_mode=WAL answers with a row; exec discards it. The first
     * statement that touches the file also detects "not a database". */
    if (em_db_exec(d, "PRAGMA journal_mode=WAL", "not a usable SQLite database", err) ||
        em_db_exec(d, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "cannot configure the database", err) ||
        user_version(d, &v, err))
        goto fail;
    if (v > EM_DB_SCHEMA_VERSION) {
        em_fail(err, "%s: schema version %d is newer than this ember understands (%d)", path, v,
                EM_DB_SCHEMA_VERSION);
        goto fail;
    }
    if (v < EM_DB_SCHEMA_VERSION) {
        if (em_db_exec(d, "BEGIN IMMEDIATE", "cannot create the schema", err)) goto fail;
        if (em_db_exec(d, schema_v1, "cannot create the schema", err) ||
            em_db_exec(d, "PRAGMA user_version=1", "cannot create the schema", err) ||
            em_db_exec(d, "COMMIT", "cannot create the schema", err)) {
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    return d;
fail:
    em_db_close(d);
    return NULL;
}

void em_db_close(em_db *d) {
    if (!d) return;
    if (d->db) sqlite3_close_v2(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d->path);
    free(d);
}
