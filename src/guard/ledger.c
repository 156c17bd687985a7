#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "util.h"

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

int em_ledger_record(em_db *d, const em_usage_row *row, const em_ledger_opts *opts, int64_t *row_id, em_err *err) {
    char *ptext = NULL, *ctext = NULL;
    if (opts && opts->audit_content) {
        if (!opts->redactor) return em_fail(err, "audit content needs a redactor");
        if (row->prompt_text && !(ptext = em_redact_string(opts->redactor, row->prompt_text, strlen(row->prompt_text),
                                                           NULL, NULL)))
            return em_fail(err, "out of memory");
        if (row->completion_text &&
            !(ctext = em_redact_string(opts->redactor, row->completion_text, strlen(row->completion_text), NULL,
                                       NULL))) {
            free(ptext);
            return em_fail(err, "out of memory");
        }
    }
    em_db_lock(d);
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(d->db,
                           "INSERT INTO usage_log(ts_ms, request_id, key_id, model, endpoint, prompt_tokens, "
                           "completion_tokens, latency_ms, status, guard, prompt_text, completion_text) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        em_db_fail(d, "cannot write the usage ledger", err);
        goto done;
    }
    sqlite3_bind_int64(st, 1, row->ts_ms ? row->ts_ms : em_now_ms());
    bind_text_or_null(st, 2, row->request_id);
    if (row->key_id > 0) sqlite3_bind_int64(st, 3, row->key_id);
    else sqlite3_bind_null(st, 3);
    bind_text_or_null(st, 4, row->model);
    bind_text_or_null(st, 5, row->endpoint);
    sqlite3_bind_int64(st, 6, row->prompt_tokens);
    sqlite3_bind_int64(st, 7, row->completion_tokens);
    sqlite3_bind_int64(st, 8, row->latency_ms);
    sqlite3_bind_int(st, 9, row->status);
    bind_text_or_null(st, 10, row->guard);
    bind_text_or_null(st, 11, ptext);
    bind_text_or_null(st, 12, ctext);
    /* Autocommit: the row is durable when step returns SQLITE_DONE. */
    if (sqlite3_step(st) != SQLITE_DONE) {
        em_db_fail(d, "cannot write the usage ledger", err);
        goto done;
    }
    if (row_id) *row_id = sqlite3_last_insert_rowid(d->db);
    ret = 0;
done:
    sqlite3_finalize(st);
    em_db_unlock(d);
    free(ptext);
    free(ctext);
    return ret;
}

int em_ledger_summary(em_db *d, int64_t key_id, int64_t since_ms, em_usage_sum **sums, size_t *n, em_err *err) {
    *sums = NULL;
    *n = 0;
    const char *sql =
        "SELECT COALESCE(u.key_id, 0), COALESCE(k.name, ''), COALESCE(u.model, ''), COUNT(*), "
        "SUM(u.status >= 400), SUM(u.prompt_tokens), SUM(u.completion_tokens), SUM(u.latency_ms), "
        "MIN(u.ts_ms), MAX(u.ts_ms) "
        "FROM usage_log u LEFT JOIN api_keys k ON k.id = u.key_id "
        "WHERE u.ts_ms >= ?1 AND (?2 <= 0 OR u.key_id = ?2) "
        "GROUP BY COALESCE(u.key_id, 0), COALESCE(u.model, '') ORDER BY 1, 3";
    em_db_lock(d);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
        em_db_unlock(d);
        return em_db_fail(d, "cannot read the usage ledger", err);
    }
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, key_id);
    int ret = -1, rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            em_usage_sum *ns = realloc(*sums, cap * sizeof *ns);
            if (!ns) { em_fail(err, "out of memory"); goto done; }
            *sums = ns;
        }
        em_usage_sum *s = &(*sums)[(*n)++];
        memset(s, 0, sizeof *s);
        s->key_id = sqlite3_column_int64(st, 0);
        snprintf(s->key_name, sizeof s->key_name, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(s->model, sizeof s->model, "%s", (const char *)sqlite3_column_text(st, 2));
        s->requests = sqlite3_column_int64(st, 3);
        s->errors = sqlite3_column_int64(st, 4);
        s->prompt_tokens = sqlite3_column_int64(st, 5);
        s->completion_tokens = sqlite3_column_int64(st, 6);
        s->latency_ms_total = sqlite3_column_int64(st, 7);
        s->first_ms = sqlite3_column_int64(st, 8);
        s->last_ms = sqlite3_column_int64(st, 9);
    }
    if (rc != SQLITE_DONE) { em_db_fail(d, "cannot read the usage ledger", err); goto done; }
    ret = 0;
done:
    sqlite3_finalize(st);
    em_db_unlock(d);
    if (ret) { free(*sums); *sums = NULL; *n = 0; }
    return ret;
}
