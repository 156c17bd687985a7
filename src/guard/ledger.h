/* ledger.h - the usage ledger and audit log (table usage_log in the guard
 * database, db.h): one row per request with time, key, model, token counts,
 * latency, HTTP status and the guard decisions. Each row is its own
 * transaction, committed (WAL, synchronous=FULL) before em_ledger_record
 * returns, so every request that was answered survives a crash.
 *
 * Prompt and completion text are stored only when opts.audit_content is
 * set, and then only after redaction (redact.h) with opts.redactor.
 *
 * Thread-safety: em_ledger_record and em_ledger_summary lock the em_db;
 * call them from any thread. Rows and strings passed in are only read
 * during the call. */
#ifndef EM_GUARD_LEDGER_H
#define EM_GUARD_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct em_redactor;

typedef struct em_usage_row {
    int64_t ts_ms;          /* request start, Unix ms (0: now) */
    const char *request_id; /* may be NULL */
    int64_t key_id;         /* <= 0: no key (auth off) */
    const char *model;      /* may be NULL */
    const char *endpoint;   /* "/v1/chat/completions", ...; may be NULL */
    int64_t prompt_tokens, completion_tokens;
    int64_t latency_ms;
    int status;             /* HTTP status sent */
    const char *guard;      /* guard decisions as text, may be NULL */
    const char *prompt_text, *completion_text; /* only kept with audit_content */
} em_usage_row;

typedef struct em_ledger_opts {
    bool audit_content;                /* keep prompt/completion text (redacted) */
    const struct em_redactor *redactor; /* required when audit_content */
} em_ledger_opts;

/* Appends and commits one row; *row_id (may be NULL) gets its id. */
int em_ledger_record(em_db *d, const em_usage_row *row, const em_ledger_opts *opts, int64_t *row_id, em_err *err);

typedef struct em_usage_sum {
    int64_t key_id;         /* 0: requests without a key */
    char key_name[72];      /* "" when unknown */
    char model[128];
    int64_t requests, errors; /* errors: status >= 400 */
    int64_t prompt_tokens, completion_tokens;
    int64_t latency_ms_total;
    int64_t first_ms, last_ms;
} em_usage_sum;

/* Totals per (key, model) of the rows with ts_ms >= since_ms, restricted to
 * one key when key_id > 0. *sums is the caller's to free(). */
int em_ledger_summary(em_db *d, int64_t key_id, int64_t since_ms, em_usage_sum **sums, size_t *n, em_err *err);

#endif
