/* security.c - the security layer of `ember serve`, over the library in
 * src/guard/:
 *
 *  - API keys: `Authorization: Bearer` on every /v1 route when auth is on
 *    (401 in OpenAI's error shape for a missing, invalid, revoked or expired
 *    key), a key's model scope (403 for a completion, 404 from /v1/models),
 *    an admin key for /metrics with --metrics-admin; /health stays open.
 *  - Rate limits per key (ratelimit.h): a completion reserves its prompt
 *    plus its most completion tokens, corrected to the usage it returned
 *    when it ends; 429 (413 when it can never fit) with Retry-After, and the
 *    x-ratelimit-* headers on every response to a key.
 *  - The usage ledger (ledger.h): one row per /v1 request, committed before
 *    the last byte of its response is handed to the connection (streams:
 *    before `data: [DONE]`), so every answered request survives a crash. The
 *    ledger has its own database handle and one writer thread that commits
 *    the rows queued meanwhile together (one fsync per batch); key lookups
 *    use the other handle and never wait for it.
 *  - Redaction (redact.h): prompts before they are tokenized, completions
 *    (whole responses, and streams through one streaming redactor per choice,
 *    so part of a secret is never sent), the text of log lines.
 *  - The prompt-injection guard (injection.h): user messages and, judged
 *    more strictly, untrusted content (role: tool messages, and messages
 *    marked "untrusted": true, e.g. retrieved documents) are scored, a
 *    bounded window of each and a bounded total per request, newest first.
 *    block: 400 with the reason code; flag: an x-ember-guard header and the
 *    ledger; sanitize: invisible characters stripped, untrusted content
 *    wrapped in datamarked delimiters and a system notice that tells the
 *    model not to follow instructions inside them.
 *  - Model integrity (integrity.h): --model-sha256 / --models-manifest are
 *    checked before the server listens; the digest is shown in /v1/models.
 *
 * Per-request state (em_sec_req) is reference-counted: the connection holds
 * one reference until libmicrohttpd completes the request, a stream holds
 * one until it is freed; the request is finished (ledger row, rate-limit
 * correction) exactly once, by the first of: its response being queued
 * (non-streamed), its stream ending, its stream being freed early (499), the
 * last reference going (whatever status was sent). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../guard/db.h"
#include "../guard/injection.h"
#include "../guard/integrity.h"
#include "../guard/keys.h"
#include "../guard/ledger.h"
#include "../guard/ratelimit.h"
#include "../guard/redact.h"
#include "../guard/util.h"
#include "server.h"

#define DEFAULT_WINDOW 16384   /* bytes of one text the injection guard scans */
#define BUDGET_WINDOWS 4       /* ... and of one request: 4 windows */
#define AUDIT_MAX (64 * 1024)  /* audit text kept per request (after redaction) */
#define LOG_EXCERPT 120

typedef struct lrow {
    struct lrow *next;
    uint64_t seq;
    em_usage_row row;
    char *strs[6];
} lrow;

struct em_sec {
    em_server *s;
    bool auth, metrics_admin, audit;
    unsigned redact;
    em_db *keys_db;
    em_rl *rl;
    em_redactor *redactor;
    em_inj_guard *inj;
    em_guard_action act[2]; /* per em_inj_source */
    size_t window, budget;
    /* model file identity after verification */
    bool model_checked;
    struct stat model_st;
    /* the ledger and its writer */
    em_db *ledger_db;
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t lmu;
    pthread_cond_t lcv_work, lcv_done;
    lrow *head, *tail;
    uint64_t seq_queued, seq_committed;
    bool stop;
    /* decisions since start-up, for /metrics: finish() counts each request once */
    _Atomic uint64_t n_auth[EM_AUTH_ERROR + 1];
    _Atomic uint64_t n_rl[EM_RL_TOO_LARGE + 1];
    _Atomic uint64_t n_guard[2][EM_GUARD_BLOCK + 1];
    _Atomic uint64_t n_redacted[2];
};

typedef struct rstream {
    em_redact_stream *rs;
    char *out;
    size_t cap;
    char carry[4]; /* an incomplete UTF-8 sequence held for the next call */
    size_t n_carry;
} rstream;

struct em_sec_req {
    atomic_int refs;
    em_sec *g;
    pthread_mutex_t mu;
    bool finished;
    char id[40];
    int64_t t0_unix_ms;
    double t0_ms;
    char endpoint[32];
    char model[128];
    /* authentication */
    bool has_key;
    em_key key;
    int64_t ledger_key_id;
    int auth_result;
    /* rate limits */
    bool admitted, have_info;
    em_rl_ticket ticket;
    em_rl_info info;
    em_rl_status denied;
    int64_t prompt_tokens;
    bool have_usage;
    int64_t usage_pt, usage_ct;
    int fallback_status;
    /* guard decisions */
    em_guard_action worst;
    em_inj_source worst_src;
    float score;
    char reason[48];
    char rules[256];
    size_t budget;
    bool windowed, skipped, blocked;
    unsigned redacted_prompt, redacted_completion;
    /* audit text */
    char *ptext;
    size_t plen;
    char *ctext;
    /* text made for this request (sanitized, redacted), freed with it */
    char **owned;
    size_t n_owned, cap_owned;
    rstream *rs; /* [EM_SCHED_MAX_CHOICES], when completions are redacted in a stream */
};

static __thread em_sec_req *cur;

/* ------------------------------------------------------------ helpers -- */

static char *own(em_sec_req *q, char *p) {
    if (!p) return NULL;
    if (q->n_owned == q->cap_owned) {
        size_t cap = q->cap_owned ? 2 * q->cap_owned : 8;
        char **o = realloc(q->owned, cap * sizeof *o);
        if (!o) {
            free(p);
            return NULL;
        }
        q->owned = o;
        q->cap_owned = cap;
    }
    q->owned[q->n_owned++] = p;
    return p;
}

/* Length of the longest prefix of b[0, n) that does not end inside a UTF-8
 * sequence. */
static size_t utf8_whole(const char *b, size_t n) {
    size_t i = n, back = 0;
    while (i > 0 && back < 4) {
        unsigned char c = (unsigned char)b[i - 1];
        i--;
        back++;
        if ((c & 0xC0) != 0x80) {
            size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
            return back < want ? i : n;
        }
    }
    return n;
}

/* The start of text for one log line: redacted (--redact logs; a secret
 * cut by the excerpt's end is not recognized, so redact first), without
 * invisible characters, control characters as spaces. Caller frees. */
static char *log_text(const em_sec *g, const char *text, size_t len) {
    size_t n = len > 4 * LOG_EXCERPT ? 4 * LOG_EXCERPT : len;
    n = utf8_whole(text, n);
    char *r = (g->redact & EM_REDACT_LOGS) ? em_redact_string(g->redactor, text, n, &n, NULL) : strndup(text, n);
    char *v = r ? em_inj_strip_invisible(r, n, &n, NULL) : NULL;
    free(r);
    if (!v) return NULL;
    if (n > LOG_EXCERPT) v[n = utf8_whole(v, LOG_EXCERPT)] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) v[i] = ' ';
    return v;
}

static em_rl_limits key_limits(const em_key *k) { return (em_rl_limits){k->rpm, k->tpm, k->max_concurrent}; }

/* ------------------------------------------------------ ledger writer -- */

static void *writer_main(void *arg) {
    em_sec *g = arg;
    em_ledger_opts opts = {.audit_content = g->audit, .redactor = g->redactor};
    pthread_mutex_lock(&g->lmu);
    for (;;) {
        while (!g->head && !g->stop) pthread_cond_wait(&g->lcv_work, &g->lmu);
        if (!g->head) break;
        lrow *batch = g->head;
        g->head = g->tail = NULL;
        pthread_mutex_unlock(&g->lmu);
        em_err err;
        uint64_t last = 0;
        /* one transaction, one fsync, for every row queued meanwhile */
        const bool tx = em_db_exec(g->ledger_db, "BEGIN IMMEDIATE", "cannot start a ledger transaction", &err) == 0;
        if (!tx) fprintf(stderr, "ember: ledger: %s\n", err.msg);
        for (lrow *r = batch; r; r = r->next) {
            if (em_ledger_record(g->ledger_db, &r->row, &opts, NULL, &err))
                fprintf(stderr, "ember: ledger: request %s: %s\n", r->row.request_id ? r->row.request_id : "?", err.msg);
            last = r->seq;
        }
        if (tx && em_db_exec(g->ledger_db, "COMMIT", "cannot commit the ledger", &err)) {
            fprintf(stderr, "ember: ledger: %s\n", err.msg);
            em_db_exec(g->ledger_db, "ROLLBACK", "rollback", &err);
        }
        while (batch) {
            lrow *n = batch->next;
            for (size_t i = 0; i < 6; i++) free(batch->strs[i]);
            free(batch);
            batch = n;
        }
        pthread_mutex_lock(&g->lmu);
        g->seq_committed = last;
        pthread_cond_broadcast(&g->lcv_done);
    }
    pthread_mutex_unlock(&g->lmu);
    return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Queues a row and waits until it is committed. */
static void ledger_write(em_sec *g, const em_usage_row *row) {
    lrow *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "ember: ledger: out of memory; request %s not recorded\n", row->request_id);
        return;
    }
    r->row = *row;
    r->row.request_id = r->strs[0] = dup_or_null(row->request_id);
    r->row.model = r->strs[1] = dup_or_null(row->model);
    r->row.endpoint = r->strs[2] = dup_or_null(row->endpoint);
    r->row.guard = r->strs[3] = dup_or_null(row->guard);
    r->row.prompt_text = r->strs[4] = dup_or_null(row->prompt_text);
    r->row.completion_text = r->strs[5] = dup_or_null(row->completion_text);
    pthread_mutex_lock(&g->lmu);
    const uint64_t seq = r->seq = ++g->seq_queued; /* r is the writer's from here on */
    if (g->tail) g->tail->next = r;
    else g->head = r;
    g->tail = r;
    pthread_cond_signal(&g->lcv_work);
    while (g->seq_committed < seq) pthread_cond_wait(&g->lcv_done, &g->lmu);
    pthread_mutex_unlock(&g->lmu);
}

/* ---------------------------------------------------- set-up, tear-down -- */

int em_sec_parse_guard(const char *spec, int *user, int *untrusted, char *msg, size_t cap) {
    em_guard_action a;
    if (!strchr(spec, '=')) {
        if (em_guard_action_parse(spec, &a)) {
            snprintf(msg, cap, "'%s' is not allow, flag, sanitize or block", spec);
            return -1;
        }
        *user = *untrusted = (int)a;
        return 0;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) {
            snprintf(msg, cap, "'%s': expected user=MODE or untrusted=MODE", t);
            return -1;
        }
        *eq = 0;
        if (em_guard_action_parse(eq + 1, &a)) {
            snprintf(msg, cap, "'%s' is not allow, flag, sanitize or block", eq + 1);
            return -1;
        }
        if (!strcmp(t, "user")) *user = (int)a;
        else if (!strcmp(t, "untrusted") || !strcmp(t, "tool")) *untrusted = (int)a;
        else {
            snprintf(msg, cap, "'%s': the content kinds are user and untrusted (or tool)", t);
            return -1;
        }
    }
    return 0;
}

/* The policy for the strongest action allowed (em_inj_default_policy's
 * thresholds): flag or sanitize never block, block flags (users) or
 * sanitizes (untrusted content) the doubtful and blocks the clear cases. */
static em_inj_policy policy_for(em_inj_source src, em_guard_action most) {
    em_inj_policy p = em_inj_default_policy(src);
    if (most == EM_GUARD_FLAG || most == EM_GUARD_SANITIZE) p.on_flag = p.on_block = most;
    return p;
}

bool em_sec_auth_on(const em_server *s) { return s->sec && s->sec->auth; }

int em_sec_open(em_server *s, bool loopback) {
    const em_server_config *c = &s->cfg;
    em_sec *g = calloc(1, sizeof *g);
    if (!g) {
        fprintf(stderr, "ember: out of memory\n");
        return -1;
    }
    g->s = s;
    g->auth = c->auth < 0 ? !loopback : c->auth > 0;
    g->metrics_admin = c->metrics_admin;
    g->audit = c->audit_content;
    g->redact = c->redact;
    g->act[EM_INJ_USER] = (em_guard_action)c->guard_user;
    g->act[EM_INJ_UNTRUSTED] = (em_guard_action)c->guard_untrusted;
    g->window = c->guard_window ? c->guard_window : DEFAULT_WINDOW;
    if (g->window < 64) g->window = 64;
    g->budget = BUDGET_WINDOWS * g->window;
    pthread_mutex_init(&g->lmu, NULL);
    pthread_cond_init(&g->lcv_work, NULL);
    pthread_cond_init(&g->lcv_done, NULL);
    s->sec = g;
    em_err err;
    if (!(g->redactor = em_redactor_new(0, &err)) || !(g->rl = em_rl_new(NULL, NULL))) {
        fprintf(stderr, "ember: %s\n", g->redactor ? "out of memory" : err.msg);
        return -1;
    }
    if (g->act[EM_INJ_USER] != EM_GUARD_ALLOW || g->act[EM_INJ_UNTRUSTED] != EM_GUARD_ALLOW) {
        if (!(g->inj = em_inj_guard_new(&err))) {
            fprintf(stderr, "ember: %s\n", err.msg);
            return -1;
        }
        for (int src = 0; src < 2; src++) {
            em_inj_policy p = policy_for((em_inj_source)src, g->act[src]);
            em_inj_guard_set_policy(g->inj, (em_inj_source)src, &p);
        }
    }
    const char *path = c->db_path;
    if (!path && (g->auth || g->metrics_admin)) {
        path = getenv("EMBER_DB");
        if (!path || !*path) path = "ember.db";
    }
    if (g->audit && !path) {
        fprintf(stderr, "ember: --audit-content needs a ledger (--db FILE)\n");
        return -1;
    }
    if (!path) return 0;
    if (!(g->keys_db = em_db_open(path, &err)) || !(g->ledger_db = em_db_open(path, &err))) {
        fprintf(stderr, "ember: %s\n", err.msg);
        return -1;
    }
    if (pthread_create(&g->writer, NULL, writer_main, g)) {
        fprintf(stderr, "ember: cannot start the ledger thread\n");
        return -1;
    }
    g->writer_started = true;
    em_key *keys = NULL;
    size_t n = 0, active = 0;
    if (em_keys_list(g->keys_db, &keys, &n, &err)) {
        fprintf(stderr, "ember: %s\n", err.msg);
        return -1;
    }
    const int64_t now = em_now_s();
    for (size_t i = 0; i < n; i++)
        if (!keys[i].revoked_at && (!keys[i].expires_at || keys[i].expires_at > now)) active++;
    free(keys);
    fprintf(stderr, "ember: usage ledger in %s%s\n", path, g->audit ? " (with redacted prompt and completion text)" : "");
    if (g->auth) {
        fprintf(stderr, "ember: API keys required on /v1/* (%zu active in %s)\n", active, path);
        if (!active)
            fprintf(stderr, "ember: warning: no active API keys: every /v1 request gets 401 (ember keys create --name "
                            "NAME --db %s)\n",
                    path);
    }
    return 0;
}

void em_sec_close(em_server *s) {
    em_sec *g = s->sec;
    if (!g) return;
    if (g->writer_started) {
        pthread_mutex_lock(&g->lmu);
        g->stop = true;
        pthread_cond_signal(&g->lcv_work);
        pthread_mutex_unlock(&g->lmu);
        pthread_join(g->writer, NULL);
    }
    em_db_close(g->ledger_db);
    em_db_close(g->keys_db);
    em_inj_guard_free(g->inj);
    em_redactor_free(g->redactor);
    em_rl_free(g->rl);
    pthread_cond_destroy(&g->lcv_work);
    pthread_cond_destroy(&g->lcv_done);
    pthread_mutex_destroy(&g->lmu);
    free(g);
    s->sec = NULL;
}

/* ------------------------------------------------------ model integrity -- */

int em_sec_verify_model(em_server *s) {
    em_sec *g = s->sec;
    const char *hex = s->cfg.model_sha256, *man = s->cfg.models_manifest, *path = s->cfg.model_path;
    if (!g || (!hex && !man)) return 0;
    em_err err;
    uint8_t want[EM_SHA256_LEN], from_hex[EM_SHA256_LEN];
    if (hex && em_sha256_parse(hex, from_hex, &err)) {
        fprintf(stderr, "ember: --model-sha256: %s\n", err.msg);
        return -1;
    }
    memcpy(want, from_hex, sizeof want);
    if (man) {
        em_manifest *m = em_manifest_load(man, &err);
        if (!m) {
            fprintf(stderr, "ember: %s\n", err.msg);
            return -1;
        }
        const em_manifest_entry *e = em_manifest_find_path(m, path);
        if (!e && s->cfg.alias) e = em_manifest_find(m, s->cfg.alias);
        if (!e) {
            fprintf(stderr, "ember: %s is not listed in the models manifest %s; refusing to serve it\n", path, man);
            em_manifest_free(m);
            return -1;
        }
        if (hex && memcmp(e->sha256, from_hex, sizeof want)) {
            fprintf(stderr, "ember: --model-sha256 and the manifest %s disagree about %s ('%s')\n", man, path, e->name);
            em_manifest_free(m);
            return -1;
        }
        memcpy(want, e->sha256, sizeof want);
        em_manifest_free(m);
    }
    struct stat before;
    if (stat(path, &before)) {
        fprintf(stderr, "ember: %s: %s\n", path, strerror(errno));
        return -1;
    }
    em_integrity_report rep;
    if (em_integrity_verify(path, want, EM_VERIFY_HASH, &rep, &err)) {
        fprintf(stderr, "ember: refusing to serve: %s\n", err.msg);
        return -1;
    }
    if (stat(path, &g->model_st) || g->model_st.st_ino != before.st_ino || g->model_st.st_dev != before.st_dev ||
        g->model_st.st_size != before.st_size || g->model_st.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        g->model_st.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
        fprintf(stderr, "ember: refusing to serve: %s changed while it was being verified\n", path);
        return -1;
    }
    g->model_checked = true;
    snprintf(s->model_sha256, sizeof s->model_sha256, "%s", rep.sha256_hex);
    fprintf(stderr, "ember: %s: SHA-256 %s verified\n", path, rep.sha256_hex);
    return 0;
}

int em_sec_model_unchanged(em_server *s) {
    em_sec *g = s->sec;
    if (!g || !g->model_checked) return 0;
    struct stat now;
    if (stat(s->cfg.model_path, &now) || now.st_ino != g->model_st.st_ino || now.st_dev != g->model_st.st_dev ||
        now.st_size != g->model_st.st_size || now.st_mtim.tv_sec != g->model_st.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != g->model_st.st_mtim.tv_nsec) {
        fprintf(stderr, "ember: refusing to serve: %s changed after it was verified\n", s->cfg.model_path);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------- request state -- */

/* The guard decisions as a JSON object for the ledger (NULL: none). */
static char *guard_text(const em_sec_req *q) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (q->auth_result != EM_AUTH_OK) cJSON_AddStringToObject(o, "auth", em_auth_code((em_auth_result)q->auth_result));
    if (q->denied != EM_RL_OK)
        cJSON_AddStringToObject(o, "rate_limit", em_rl_status_name(q->denied));
    if (q->worst != EM_GUARD_ALLOW) {
        cJSON *i = cJSON_AddObjectToObject(o, "injection");
        cJSON_AddStringToObject(i, "decision", em_guard_action_name(q->worst));
        cJSON_AddStringToObject(i, "source", em_inj_source_name(q->worst_src));
        cJSON_AddNumberToObject(i, "score", (double)(int)(q->score * 1000 + 0.5) / 1000);
        cJSON_AddStringToObject(i, "reason", q->reason);
        cJSON_AddStringToObject(i, "rules", q->rules);
    }
    if (q->windowed || q->skipped)
        cJSON_AddStringToObject(o, "scan", q->skipped ? "partial (request budget)" : "windowed");
    if (q->redacted_prompt || q->redacted_completion) {
        cJSON *r = cJSON_AddObjectToObject(o, "redacted");
        if (q->redacted_prompt) cJSON_AddNumberToObject(r, "prompt", q->redacted_prompt);
        if (q->redacted_completion) cJSON_AddNumberToObject(r, "completion", q->redacted_completion);
    }
    char *t = o->child ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return t;
}

/* Ends the request once: gives its rate-limit reservation back corrected
 * to the tokens it used (have_usage) or kept (-1: unknown), and commits its
 * ledger row. */
static void finish(em_sec_req *q, int status, bool have_usage, int64_t pt, int64_t ct, const char *ctext) {
    pthread_mutex_lock(&q->mu);
    if (q->finished) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->finished = true;
    em_sec *g = q->g;
    if (q->auth_result > EM_AUTH_OK && q->auth_result <= EM_AUTH_ERROR) atomic_fetch_add(&g->n_auth[q->auth_result], 1);
    if (q->denied > EM_RL_OK && q->denied <= EM_RL_TOO_LARGE) atomic_fetch_add(&g->n_rl[q->denied], 1);
    if (q->worst > EM_GUARD_ALLOW && q->worst <= EM_GUARD_BLOCK) atomic_fetch_add(&g->n_guard[q->worst_src != 0][q->worst], 1);
    atomic_fetch_add(&g->n_redacted[0], q->redacted_prompt);
    atomic_fetch_add(&g->n_redacted[1], q->redacted_completion);
    if (q->admitted) {
        /* without usage: nothing was generated for a refusal, an unknown
         * amount for a request cut off or failed while generating */
        const bool maybe_generated = status == 200 || status == 499 || (status >= 500 && status != 503);
        const int64_t actual = have_usage ? pt + ct : maybe_generated ? -1 : 0;
        em_rl_release(g->rl, &q->ticket, actual, &q->info);
        q->have_info = true;
    }
    if (g->ledger_db) {
        char *gt = guard_text(q);
        char *ptext = NULL, *ctx = NULL;
        if (g->audit) {
            /* redact first, then cut: a cut must not hide part of a secret
             * from the redactor (the ledger redacts again) */
            if (q->ptext) ptext = em_redact_string(g->redactor, q->ptext, q->plen, NULL, NULL);
            if (ctext) ctx = em_redact_string(g->redactor, ctext, strlen(ctext), NULL, NULL);
            if (ptext && strlen(ptext) > AUDIT_MAX) ptext[utf8_whole(ptext, AUDIT_MAX)] = 0;
            if (ctx && strlen(ctx) > AUDIT_MAX) ctx[utf8_whole(ctx, AUDIT_MAX)] = 0;
        }
        em_usage_row row = {
            .ts_ms = q->t0_unix_ms,
            .request_id = q->id,
            .key_id = q->ledger_key_id,
            .model = q->model[0] ? q->model : NULL,
            .endpoint = q->endpoint,
            .prompt_tokens = have_usage ? pt : q->admitted ? q->prompt_tokens : 0,
            .completion_tokens = have_usage ? ct : 0,
            .latency_ms = (int64_t)(em_srv_now_ms() - q->t0_ms + 0.5),
            .status = status,
            .guard = gt,
            .prompt_text = ptext,
            .completion_text = ctx,
        };
        ledger_write(g, &row);
        free(gt);
        free(ptext);
        free(ctx);
    }
    pthread_mutex_unlock(&q->mu);
}

static void req_unref(em_sec_req *q) {
    if (!q || atomic_fetch_sub(&q->refs, 1) != 1) return;
    finish(q, q->fallback_status ? q->fallback_status : 499, false, 0, 0, NULL);
    if (q->rs) {
        for (int i = 0; i < EM_SCHED_MAX_CHOICES; i++) {
            em_redact_stream_free(q->rs[i].rs);
            free(q->rs[i].out);
        }
        free(q->rs);
    }
    for (size_t i = 0; i < q->n_owned; i++) free(q->owned[i]);
    free(q->owned);
    free(q->ptext);
    free(q->ctext);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static em_sec_req *req_new(em_sec *g, const char *url) {
    em_sec_req *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    atomic_init(&q->refs, 1);
    pthread_mutex_init(&q->mu, NULL);
    q->g = g;
    q->t0_unix_ms = em_now_ms();
    q->t0_ms = em_srv_now_ms();
    q->budget = g->budget;
    q->auth_result = EM_AUTH_OK;
    uint8_t rnd[12];
    if (em_random_bytes(rnd, sizeof rnd, NULL)) {
        static atomic_ulong ctr;
        unsigned long v = atomic_fetch_add(&ctr, 1);
        memcpy(rnd, &v, sizeof v < sizeof rnd ? sizeof v : sizeof rnd);
    }
    memcpy(q->id, "req_", 4);
    em_hex_encode(rnd, sizeof rnd, q->id + 4);
    snprintf(q->endpoint, sizeof q->endpoint, "%s", !strncmp(url, "/v1/models", 10) ? "/v1/models" : url);
    return q;
}

_Static_assert(EM_AUTH_ERROR == 5 && EM_RL_TOO_LARGE == 4 && EM_GUARD_BLOCK == 3 && EM_INJ_UNTRUSTED == 1,
               "em_sec_counts mirrors these enums");

void em_sec_counts_get(const em_server *s, em_sec_counts *out) {
    memset(out, 0, sizeof *out);
    const em_sec *g = s->sec;
    if (!g) return;
    for (int i = 0; i <= EM_AUTH_ERROR; i++) out->auth[i] = atomic_load(&g->n_auth[i]);
    for (int i = 0; i <= EM_RL_TOO_LARGE; i++) out->rate_limited[i] = atomic_load(&g->n_rl[i]);
    for (int src = 0; src < 2; src++)
        for (int a = 0; a <= EM_GUARD_BLOCK; a++) out->guard[src][a] = atomic_load(&g->n_guard[src][a]);
    out->redacted[0] = atomic_load(&g->n_redacted[0]);
    out->redacted[1] = atomic_load(&g->n_redacted[1]);
}

/* -------------------------------------------------------- http.c hooks -- */

static enum MHD_Result respond_401(em_server *s, struct MHD_Connection *c, em_auth_result r) {
    return em_respond_json(s, c, 401, em_error_json(em_auth_message(r), "invalid_request_error", NULL, em_auth_code(r)));
}

/* Authenticates the request's bearer token. Returns true when it answered. */
static bool authenticate(em_server *s, struct MHD_Connection *c, em_sec_req *q, enum MHD_Result *ret) {
    em_sec *g = s->sec;
    const char *hv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok;
    size_t n;
    em_auth_bearer(hv, &tok, &n);
    em_err err;
    em_key k;
    em_auth_result r = em_keys_authenticate(g->keys_db, tok, n, em_now_s(), &k, &err);
    q->auth_result = r;
    if (r == EM_AUTH_OK || r == EM_AUTH_REVOKED || r == EM_AUTH_EXPIRED) q->ledger_key_id = k.id;
    if (r == EM_AUTH_OK) {
        q->has_key = true;
        q->key = k;
        return false;
    }
    if (r == EM_AUTH_ERROR) {
        fprintf(stderr, "ember: auth: %s\n", err.msg);
        *ret = em_respond_error(s, c, 500, "server_error", NULL, "internal_error",
                                "The API key database is not available");
    } else {
        *ret = respond_401(s, c, r);
    }
    return true;
}

bool em_sec_begin(em_server *s, struct MHD_Connection *c, const char *url, em_sec_req **out, enum MHD_Result *ret) {
    em_sec *g = s->sec;
    if (!g) return false;
    em_sec_req *q = req_new(g, url);
    if (!q) {
        *ret = MHD_NO;
        return true;
    }
    *out = cur = q;
    return g->auth && authenticate(s, c, q, ret);
}

bool em_sec_metrics_denied(em_server *s, struct MHD_Connection *c, enum MHD_Result *ret) {
    em_sec *g = s->sec;
    if (!g || !g->metrics_admin) return false;
    const char *hv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok;
    size_t n;
    em_auth_bearer(hv, &tok, &n);
    em_err err;
    em_key k;
    em_auth_result r = em_keys_authenticate(g->keys_db, tok, n, em_now_s(), &k, &err);
    if (r == EM_AUTH_OK && k.admin) return false;
    if (r > EM_AUTH_OK && r <= EM_AUTH_ERROR) atomic_fetch_add(&g->n_auth[r], 1); /* no em_sec_req here to count it */
    if (r == EM_AUTH_OK)
        *ret = em_respond_error(s, c, 403, "invalid_request_error", NULL, "permission_denied",
                                "/metrics needs an admin API key");
    else if (r == EM_AUTH_ERROR)
        *ret = em_respond_error(s, c, 500, "server_error", NULL, "internal_error", "The API key database is not available");
    else
        *ret = respond_401(s, c, r);
    return true;
}

void em_sec_leave(void) { cur = NULL; }

void em_sec_conn_done(em_sec_req *q, struct MHD_Connection *c, enum MHD_RequestTerminationCode toe) {
    if (!q) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    const int st = ci ? (int)ci->http_status : 0;
    q->fallback_status = st == 0 || (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && st == 200) ? 499 : st;
    if (cur == q) cur = NULL;
    req_unref(q);
}

static void add_headers(em_sec_req *q, struct MHD_Response *r, int status) {
    em_sec *g = q->g;
    MHD_add_response_header(r, "x-request-id", q->id);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"ember\"");
    if (q->has_key) {
        if (!q->have_info) {
            em_rl_limits lim = key_limits(&q->key);
            em_rl_peek(g->rl, q->key.id, &lim, &q->info);
            q->have_info = true;
        }
        em_rl_header h[EM_RL_MAX_HEADERS];
        size_t n = em_rl_headers(&q->info, h);
        for (size_t i = 0; i < n; i++) MHD_add_response_header(r, h[i].name, h[i].value);
        if (q->info.limit_concurrent) {
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long)q->info.limit_concurrent);
            MHD_add_response_header(r, "x-ratelimit-limit-concurrency", v);
            int64_t left = q->info.limit_concurrent - q->info.in_flight;
            snprintf(v, sizeof v, "%lld", (long long)(left > 0 ? left : 0));
            MHD_add_response_header(r, "x-ratelimit-remaining-concurrency", v);
        }
    }
    if (q->worst != EM_GUARD_ALLOW) {
        char v[400];
        snprintf(v, sizeof v, "%s; source=%s; score=%.2f; reason=%s; rules=%s", em_guard_action_name(q->worst),
                 em_inj_source_name(q->worst_src), (double)q->score, q->reason, q->rules);
        MHD_add_response_header(r, "x-ember-guard", v);
    }
}

void em_sec_on_response(em_server *s, struct MHD_Response *r, int status, bool stream) {
    (void)s;
    em_sec_req *q = cur;
    if (!q || !r) return;
    if (!stream) finish(q, status, q->have_usage, q->usage_pt, q->usage_ct, q->ctext);
    add_headers(q, r, status);
}

static void redact_tree(const em_redactor *rd, cJSON *o, unsigned *count) {
    for (cJSON *c = o->child; c; c = c->next) {
        if (cJSON_IsString(c) && c->valuestring) {
            if (c->string && !strcmp(c->string, "finish_reason")) continue;
            size_t ns = 0;
            char *t = em_redact_string(rd, c->valuestring, strlen(c->valuestring), NULL, &ns);
            if (t && ns && cJSON_SetValuestring(c, t)) *count += (unsigned)ns;
            free(t);
        } else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            redact_tree(rd, c, count);
        }
    }
}

static void append_text(char **dst, const char *t, size_t n) {
    size_t old = *dst ? strlen(*dst) : 0;
    char *p = realloc(*dst, old + n + 3);
    if (!p) return;
    if (old) memcpy(p + old, "\n\n", 2), old += 2;
    memcpy(p + old, t, n);
    p[old + n] = 0;
    *dst = p;
}

void em_sec_filter_json(em_server *s, int status, cJSON *body) {
    (void)s;
    em_sec_req *q = cur;
    if (!q || !body) return;
    em_sec *g = q->g;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "usage");
    if (cJSON_IsObject(u)) {
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
        if (cJSON_IsNumber(pt) && cJSON_IsNumber(ct)) {
            q->have_usage = true;
            q->usage_pt = (int64_t)pt->valuedouble;
            q->usage_ct = (int64_t)ct->valuedouble;
        }
    }
    cJSON *ch = cJSON_GetObjectItemCaseSensitive(body, "choices");
    if (status == 200 && cJSON_IsArray(ch)) {
        if (g->redact & EM_REDACT_COMPLETIONS) redact_tree(g->redactor, ch, &q->redacted_completion);
        if (g->audit) {
            cJSON *c;
            cJSON_ArrayForEach(c, ch) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "text");
                if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "message"), "content");
                if (cJSON_IsString(t)) append_text(&q->ctext, t->valuestring, strlen(t->valuestring));
            }
        }
    }
    cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "error");
    if (q->blocked && cJSON_IsObject(e)) {
        cJSON_AddStringToObject(e, "reason", q->reason);
        cJSON_AddNumberToObject(e, "score", (double)(int)(q->score * 1000 + 0.5) / 1000);
        cJSON_AddStringToObject(e, "rules", q->rules);
    }
}

/* ------------------------------------------------------ openai.c hooks -- */

int em_sec_check_model(em_server *s, const char *model, em_sec_err *e) {
    (void)s;
    em_sec_req *q = cur;
    if (!q) return 0;
    snprintf(q->model, sizeof q->model, "%s", model);
    if (!q->has_key || em_key_allows_model(&q->key, model)) return 0;
    e->status = 403;
    e->code = "model_not_allowed";
    snprintf(e->param, sizeof e->param, "model");
    snprintf(e->msg, sizeof e->msg, "This API key may not use the model '%.200s'", model);
    return -1;
}

bool em_sec_model_visible(em_server *s, const char *model) {
    (void)s;
    em_sec_req *q = cur;
    return !q || !q->has_key || em_key_allows_model(&q->key, model);
}

int em_sec_check_request(em_server *s, bool logprobs, bool contemplate_stream, em_sec_err *e) {
    (void)s;
    em_sec_req *q = cur;
    if (!q || !(q->g->redact & EM_REDACT_COMPLETIONS)) return 0;
    e->status = 400;
    e->code = "unsupported_parameter";
    if (logprobs) {
        snprintf(e->param, sizeof e->param, "logprobs");
        snprintf(e->msg, sizeof e->msg,
                 "'logprobs' is not available on this server: it redacts completions, and token log-probabilities "
                 "would show what was redacted");
        return -1;
    }
    if (contemplate_stream) {
        snprintf(e->param, sizeof e->param, "stream");
        snprintf(e->msg, sizeof e->msg,
                 "contemplating with 'stream' is not available on this server, which redacts completions; ask "
                 "without 'stream'");
        return -1;
    }
    return 0;
}

static void fold_result(em_sec_req *q, const em_inj_result *res, em_inj_source src) {
    if (res->decision > q->worst || (res->decision == q->worst && res->score > q->score)) {
        q->worst = res->decision;
        q->worst_src = src;
        q->score = res->score;
        snprintf(q->reason, sizeof q->reason, "%s", res->reason);
    }
    char rules[256];
    em_inj_rules_str(res, rules, sizeof rules);
    for (char *save = NULL, *t = strtok_r(rules, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t tl = strlen(t), have = strlen(q->rules);
        bool dup = false;
        for (const char *p = q->rules; (p = strstr(p, t)); p += tl)
            if ((p == q->rules || p[-1] == ',') && (p[tl] == ',' || !p[tl])) dup = true;
        if (!dup && have + tl + 2 < sizeof q->rules) snprintf(q->rules + have, sizeof q->rules - have, "%s%s", have ? "," : "", t);
    }
}

/* Scores one text (a bounded window of it: head and tail) and folds the
 * result into q. Returns the decision. */
static em_guard_action scan(em_sec_req *q, const char *text, size_t len, em_inj_source src, const char *what) {
    em_sec *g = q->g;
    if (!g->inj || g->act[src] == EM_GUARD_ALLOW || !len) return EM_GUARD_ALLOW;
    if (!q->budget) {
        q->skipped = true;
        return EM_GUARD_ALLOW;
    }
    const size_t w = g->window < q->budget ? g->window : q->budget;
    em_inj_result res, tail;
    if (len <= w) {
        em_inj_scan(g->inj, text, len, src, &res);
        q->budget -= len;
    } else {
        q->windowed = true;
        size_t h = utf8_whole(text, w / 2), t0 = len - w / 2;
        while (t0 < len && ((unsigned char)text[t0] & 0xC0) == 0x80) t0++;
        em_inj_scan(g->inj, text, h, src, &res);
        em_inj_scan(g->inj, text + t0, len - t0, src, &tail);
        if (tail.decision > res.decision || (tail.decision == res.decision && tail.score > res.score)) res = tail;
        q->budget -= w;
    }
    if (res.decision != EM_GUARD_ALLOW) {
        fold_result(q, &res, src);
        char rules[256];
        em_inj_rules_str(&res, rules, sizeof rules);
        char *ex = log_text(g, text, len);
        fprintf(stderr, "ember: guard: %s: %s: %s (%s, score %.2f, rules %s): \"%s\"\n", q->id, what,
                em_guard_action_name(res.decision), res.reason, (double)res.score, rules, ex ? ex : "");
        free(ex);
    }
    return res.decision;
}

static void block_error(em_sec_req *q, const char *param, em_sec_err *e) {
    q->blocked = true;
    e->status = 400;
    e->code = "prompt_injection";
    snprintf(e->param, sizeof e->param, "%s", param);
    snprintf(e->msg, sizeof e->msg, "The request was blocked by the prompt-injection guard (%s in %s, score %.2f)",
             q->reason, param, (double)q->score);
}

/* Redacts text if prompts are redacted; returns it or its redacted copy
 * (owned by q); NULL when out of memory. */
static const char *redact_prompt(em_sec_req *q, const char *text, size_t *len) {
    if (!(q->g->redact & EM_REDACT_PROMPTS)) return text;
    size_t n, ns = 0;
    char *r = em_redact_string(q->g->redactor, text, *len, &n, &ns);
    if (!r) return NULL;
    if (!ns) {
        free(r);
        return text;
    }
    q->redacted_prompt += (unsigned)ns;
    *len = n;
    return own(q, r);
}

static int oom(em_sec_err *e) {
    e->status = 500;
    e->code = "out_of_memory";
    e->param[0] = 0;
    snprintf(e->msg, sizeof e->msg, "out of memory");
    return -1;
}

int em_sec_chat(em_server *s, const cJSON *messages, em_chat_msg *msgs, size_t *n, em_sec_err *e) {
    (void)s;
    em_sec_req *q = cur;
    if (!q || !*n) return 0;
    const size_t nm = *n;
    unsigned char *src = calloc(nm, 2); /* [i]: 0 trusted, 1 user, 2 untrusted; [nm + i]: decision */
    if (!src) return oom(e);
    unsigned char *dec = src + nm;
    size_t i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        if (i >= nm) break;
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(m, "untrusted");
        if (!strcmp(msgs[i].role, "tool") || cJSON_IsTrue(u)) src[i] = 2;
        else if (!strcmp(msgs[i].role, "user")) src[i] = 1;
        i++;
    }
    int rc = -1;
    /* newest first: the request's scanning budget goes to the latest turns */
    for (size_t k = nm; k-- > 0;) {
        if (!src[k]) continue;
        char what[64];
        snprintf(what, sizeof what, "messages[%zu] (%s)", k, src[k] == 2 ? "untrusted" : "user");
        dec[k] = (unsigned char)scan(q, msgs[k].content, msgs[k].len, src[k] == 2 ? EM_INJ_UNTRUSTED : EM_INJ_USER, what);
        if (dec[k] == EM_GUARD_BLOCK) {
            char param[48];
            snprintf(param, sizeof param, "messages[%zu].content", k);
            block_error(q, param, e);
            goto done;
        }
    }
    bool notice = false;
    char nonce[17] = "";
    for (size_t k = 0; k < nm; k++) {
        size_t len = msgs[k].len;
        const char *t = redact_prompt(q, msgs[k].content, &len);
        if (!t) goto nomem;
        if (dec[k] == EM_GUARD_SANITIZE) {
            char *c;
            if (src[k] == 2) {
                em_err err;
                if (!nonce[0] && em_inj_new_nonce(nonce, &err)) goto nomem;
                c = em_inj_wrap_untrusted(t, len, nonce, true, &len);
                notice = true;
            } else {
                c = em_inj_strip_invisible(t, len, &len, NULL);
            }
            if (!(t = own(q, c))) goto nomem;
        }
        msgs[k].content = t;
        msgs[k].len = len;
    }
    if (notice) {
        int nl = em_inj_untrusted_notice(nonce, true, NULL, 0);
        const bool sys = !strcmp(msgs[0].role, "system");
        size_t cap = (size_t)nl + (sys ? msgs[0].len + 2 : 0) + 1;
        char *t = own(q, malloc(cap));
        if (!t) goto nomem;
        em_inj_untrusted_notice(nonce, true, t, cap);
        if (sys) {
            memcpy(t + nl, "\n\n", 2);
            memcpy(t + nl + 2, msgs[0].content, msgs[0].len);
            t[cap - 1] = 0;
            msgs[0].content = t;
            msgs[0].len = cap - 1;
        } else {
            memmove(msgs + 1, msgs, nm * sizeof *msgs);
            msgs[0] = (em_chat_msg){"system", t, (size_t)nl};
            *n = nm + 1;
        }
    }
    rc = 0;
    goto done;
nomem:
    oom(e);
done:
    free(src);
    return rc;
}

const char *em_sec_prompt(em_server *s, const char *text, size_t *len, em_sec_err *e) {
    (void)s;
    em_sec_req *q = cur;
    if (!q) return text;
    const em_guard_action d = scan(q, text, *len, EM_INJ_USER, "prompt");
    if (d == EM_GUARD_BLOCK) {
        block_error(q, "prompt", e);
        return NULL;
    }
    const char *t = redact_prompt(q, text, len);
    if (t && d == EM_GUARD_SANITIZE) t = own(q, em_inj_strip_invisible(t, *len, len, NULL));
    if (!t) oom(e);
    return t;
}

void em_sec_note_prompt(const char *text, size_t len) {
    em_sec_req *q = cur;
    if (!q || !q->g->audit || q->plen > AUDIT_MAX) return;
    char *p = realloc(q->ptext, q->plen + len + 3);
    if (!p) return;
    if (q->plen) memcpy(p + q->plen, "\n\n", 2), q->plen += 2;
    memcpy(p + q->plen, text, len);
    q->plen += len;
    p[q->plen] = 0;
    q->ptext = p;
}

bool em_sec_admit(em_server *s, struct MHD_Connection *c, int64_t prompt_tokens, int64_t reserve, bool max_given,
                  enum MHD_Result *ret) {
    em_sec_req *q = cur;
    if (!q) return false;
    q->prompt_tokens = prompt_tokens;
    if (!q->has_key) return false;
    em_rl_limits lim = key_limits(&q->key);
    /* no max_tokens: the rest of the context is only an upper bound; wait
     * for at most a full bucket */
    if (!max_given && lim.tpm > 0 && reserve > lim.tpm) reserve = prompt_tokens > lim.tpm ? prompt_tokens : lim.tpm;
    const em_rl_status st = em_rl_acquire(q->g->rl, q->key.id, &lim, reserve, &q->ticket, &q->info);
    q->have_info = true;
    if (st == EM_RL_OK) {
        q->admitted = true;
        return false;
    }
    q->denied = st;
    char msg[400];
    if (st == EM_RL_TPM || st == EM_RL_TOO_LARGE)
        snprintf(msg, sizeof msg, "%s (limit %lld tokens per minute, requested %lld)", em_rl_status_message(st),
                 (long long)lim.tpm, (long long)reserve);
    else if (st == EM_RL_RPM)
        snprintf(msg, sizeof msg, "%s (limit %lld requests per minute)", em_rl_status_message(st), (long long)lim.rpm);
    else
        snprintf(msg, sizeof msg, "%s (limit %lld)", em_rl_status_message(st), (long long)lim.max_concurrent);
    *ret = em_respond_json(s, c, st == EM_RL_TOO_LARGE ? 413 : 429,
                           em_error_json(msg, st == EM_RL_TPM || st == EM_RL_TOO_LARGE ? "tokens" : "requests", NULL,
                                         em_rl_status_code(st)));
    return true;
}

/* --------------------------------------------------------- sse.c hooks -- */

em_sec_req *em_sec_stream_attach(void) {
    em_sec_req *q = cur;
    if (q) atomic_fetch_add(&q->refs, 1);
    return q;
}

const char *em_sec_stream_text(em_sec_req *q, int choice, const char *text, size_t *len, bool final) {
    if (!q || !(q->g->redact & EM_REDACT_COMPLETIONS) || choice < 0 || choice >= EM_SCHED_MAX_CHOICES) return text;
    if (!q->rs && !(q->rs = calloc(EM_SCHED_MAX_CHOICES, sizeof *q->rs))) return NULL;
    rstream *r = &q->rs[choice];
    if (!r->rs && !(r->rs = em_redact_stream_new(q->g->redactor))) return NULL;
    size_t a = 0, b = 0;
    const char *pa = *len ? em_redact_stream_feed(r->rs, text, *len, &a) : "";
    if (!pa) return NULL;
    /* copy now: finish reuses the stream's buffer */
    size_t need = r->n_carry + a + 1;
    if (need > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < need) cap *= 2;
        char *o = realloc(r->out, cap);
        if (!o) return NULL;
        r->out = o;
        r->cap = cap;
    }
    memcpy(r->out, r->carry, r->n_carry);
    memcpy(r->out + r->n_carry, pa, a);
    size_t n = r->n_carry + a;
    if (final) {
        const char *pb = em_redact_stream_finish(r->rs, &b);
        if (!pb) return NULL;
        if (n + b + 1 > r->cap) {
            char *o = realloc(r->out, n + b + 1);
            if (!o) return NULL;
            r->out = o;
            r->cap = n + b + 1;
        }
        memcpy(r->out + n, pb, b);
        n += b;
        r->n_carry = 0;
        q->redacted_completion += (unsigned)em_redact_stream_count(r->rs, NULL);
        *len = n;
        return r->out;
    }
    /* send whole characters only: the rest waits for the next call */
    size_t whole = utf8_whole(r->out, n);
    r->n_carry = n - whole;
    memcpy(r->carry, r->out + whole, r->n_carry);
    *len = whole;
    return r->out;
}

/* The usage a stream reports for r (em_oai_usage; a contemplation counts
 * its prompt once, as contemplate_api.c does), under r->mu. */
static void stream_usage(const em_oai_meta *m, const em_request *r, int64_t *pt, int64_t *ct) {
    if (r->n_branches > 0) {
        *pt = r->n_prompt_total / r->n_branches;
        *ct = 0;
        for (int i = 0; i < r->n_choices; i++) *ct += r->out[i].n_gen;
        return;
    }
    cJSON *u = em_oai_usage(m, r);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    *pt = cJSON_IsNumber(a) ? (int64_t)a->valuedouble : 0;
    *ct = cJSON_IsNumber(b) ? (int64_t)b->valuedouble : 0;
    cJSON_Delete(u);
}

void em_sec_stream_done(em_sec_req *q, const em_oai_meta *m, const em_request *r) {
    if (!q) return;
    int64_t pt, ct;
    stream_usage(m, r, &pt, &ct);
    const char *type, *code;
    char msg[400];
    const int st = em_oai_failure(r, &type, &code, msg, sizeof msg);
    char *text = NULL;
    if (q->g->audit)
        for (int i = 0; i < r->n_choices; i++) append_text(&text, r->out[i].text ? r->out[i].text : "", r->out[i].len);
    finish(q, st ? st : 200, true, pt, ct, text);
    free(text);
}

void em_sec_stream_detach(em_sec_req *q, const em_oai_meta *m, em_request *r) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    const bool done = q->finished;
    pthread_mutex_unlock(&q->mu);
    if (!done) {
        int64_t pt, ct;
        pthread_mutex_lock(&r->mu);
        stream_usage(m, r, &pt, &ct);
        pthread_mutex_unlock(&r->mu);
        finish(q, 499, true, pt, ct, NULL);
    }
    req_unref(q);
}
