/* contemplate_api.c - contemplating mode of POST /v1/chat/completions and
 * /v1/completions: the "contemplate" object and the "reasoning_effort"
 * shorthand, the request to the scheduler (which decodes the branches in the
 * continuous batch, see src/engine/scheduler.h), and the response: one
 * choice holding the aggregated answer plus a "contemplation" object, or a
 * stream of per-branch progress events followed by the answer.
 *
 *   "contemplate": {"branches": 1..64, "aggregate": "vote"|"best"|"synthesize",
 *                   "max_branch_tokens": N, "early_stop": bool}   (or true)
 *   "reasoning_effort": "low"|"medium"|"high" (branches from `ember serve
 *                   --contemplate-low/-medium/-high`, at most --slots;
 *                   "none"/"minimal": no contemplation)
 *
 * Stream (chat; /v1/completions carries the same "contemplation" objects in
 * the choice next to "text"):
 *   {"delta":{"role":"assistant","content":""}}                      once
 *   {"delta":{"contemplation":{"branch":i,"text":"..."}}}             branch text as it is generated
 *   {"delta":{"contemplation":{"branch":i,"finish_reason":"stop",
 *            "answer":"...","tokens":n,"mean_logprob":x}}}            when branch i ends
 *   {"delta":{"contemplation":{"synthesis":"..."}}}                   the synthesis pass (synthesize)
 *   {"delta":{"content":"<answer>"}}                                  the aggregated answer
 *   {"delta":{},"finish_reason":"stop"} + top-level "contemplation"   the summary (as non-streamed)
 *   usage chunk (stream_options.include_usage), then data: [DONE].
 * The event-stream plumbing (buffer, reader, disconnects) is sse.c's em_sse. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/aggregate.h"
#include "server.h"

#define DEFAULT_BRANCH_TOKENS 256

static const char *AGG_NAMES[] = {"vote", "best", "synthesize"};

/* ------------------------------------------------------------ parsing -- */

typedef struct perr {
    char *param;
    size_t pcap;
    const char **code;
    char *msg;
    size_t mcap;
} perr;

static int pfail(perr *e, const char *param, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int pfail(perr *e, const char *param, const char *code, const char *fmt, ...) {
    snprintf(e->param, e->pcap, "%s", param);
    *e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->mcap, fmt, ap);
    va_end(ap);
    return -1;
}

int em_contemplate_parse(const em_server *s, const cJSON *root, em_contemplate_opts *o, char *param, size_t pcap,
                         const char **code, char *msg, size_t mcap) {
    perr e = {param, pcap, code, msg, mcap};
    memset(o, 0, sizeof *o);
    o->aggregate = EMBER_AGG_VOTE;
    o->early_stop = true;
    const int slots = em_sched_get_params(s->sched)->n_slots;
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(root, "reasoning_effort");
    if (re && !cJSON_IsNull(re)) {
        if (!cJSON_IsString(re)) return pfail(&e, "reasoning_effort", "invalid_type", "'reasoning_effort' must be a string");
        const char *v = re->valuestring;
        int level = !strcmp(v, "low") ? 0 : !strcmp(v, "medium") ? 1 : !strcmp(v, "high") ? 2 : -1;
        if (level < 0 && strcmp(v, "none") && strcmp(v, "minimal"))
            return pfail(&e, "reasoning_effort", "invalid_value",
                         "'reasoning_effort' must be one of none, minimal, low, medium, high (got '%.40s')", v);
        if (level >= 0) {
            o->on = true;
            o->branches = s->cfg.contemplate_branches[level];
            if (o->branches > slots) o->branches = slots;
            if (o->branches < 1) o->branches = 1;
        }
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "contemplate");
    if (!c || cJSON_IsNull(c) || cJSON_IsFalse(c)) return 0;
    if (!o->on) {
        o->branches = s->cfg.contemplate_branches[1];
        if (o->branches > slots) o->branches = slots;
        if (o->branches < 1) o->branches = 1;
    }
    o->on = true;
    if (cJSON_IsTrue(c)) return 0;
    if (!cJSON_IsObject(c))
        return pfail(&e, "contemplate", "invalid_type", "'contemplate' must be an object (or true)");
    const cJSON *v;
    cJSON_ArrayForEach(v, c) {
        const char *k = v->string ? v->string : "";
        char pn[96];
        snprintf(pn, sizeof pn, "contemplate.%.60s", k);
        if (!strcmp(k, "branches")) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
                return pfail(&e, pn, "invalid_type", "'%s' must be an integer", pn);
            if (v->valuedouble < 1 || v->valuedouble > EM_SCHED_MAX_CHOICES)
                return pfail(&e, pn, "invalid_value", "'%s' must be between 1 and %d (got %.0f)", pn,
                             EM_SCHED_MAX_CHOICES, v->valuedouble);
            if (v->valuedouble > slots)
                return pfail(&e, pn, "invalid_value",
                             "'%s' is %.0f, but this server decodes at most %d sequences at once (--slots)", pn,
                             v->valuedouble, slots);
            o->branches = (int)v->valuedouble;
        } else if (!strcmp(k, "aggregate")) {
            if (!cJSON_IsString(v)) return pfail(&e, pn, "invalid_type", "'%s' must be a string", pn);
            int a = -1;
            for (int i = 0; i < 3; i++)
                if (!strcmp(v->valuestring, AGG_NAMES[i])) a = i;
            if (a < 0)
                return pfail(&e, pn, "invalid_value", "'%s' must be one of vote, best, synthesize (got '%.40s')", pn,
                             v->valuestring);
            o->aggregate = (ember_aggregate)a;
        } else if (!strcmp(k, "max_branch_tokens")) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
                return pfail(&e, pn, "invalid_type", "'%s' must be an integer", pn);
            if (v->valuedouble < 1 || v->valuedouble > (1 << 24))
                return pfail(&e, pn, "invalid_value", "'%s' must be between 1 and %d (got %.0f)", pn, 1 << 24,
                             v->valuedouble);
            o->max_branch_tokens = (int32_t)v->valuedouble;
        } else if (!strcmp(k, "early_stop")) {
            if (!cJSON_IsBool(v)) return pfail(&e, pn, "invalid_type", "'%s' must be a boolean", pn);
            o->early_stop = cJSON_IsTrue(v);
        } else {
            return pfail(&e, pn, "unsupported_parameter",
                         "'%s' is not a contemplation parameter (branches, aggregate, max_branch_tokens, early_stop)",
                         pn);
        }
    }
    return 0;
}

/* ---------------------------------------------------------- responses -- */

static const char *branch_finish(const char *f) {
    if (!f) return NULL;
    return !strcmp(f, "early_stop") ? "cancelled" : f;
}

static cJSON *usage_json(const em_request *r) {
    long long pt = r->n_prompt_total / (r->n_branches > 0 ? r->n_branches : 1), ct = 0;
    for (int i = 0; i < r->n_choices; i++) ct += r->out[i].n_gen;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)pt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)ct);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(pt + ct));
    return u;
}

static void add_text(cJSON *o, const char *key, const char *text, size_t len) {
    char *t = em_utf8_sanitize(text ? text : "", text ? len : 0, NULL);
    cJSON_AddStringToObject(o, key, t ? t : "");
    free(t);
}

/* One branch's summary (under r->mu, once it ended), its number under key. */
static cJSON *branch_json(const em_request *r, int i, const char *key, bool with_text) {
    const em_choice_out *o = &r->out[i];
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, key, i);
    if (with_text) add_text(b, "text", o->text, o->len);
    cJSON_AddStringToObject(b, "answer", o->answer.kind == EM_ANS_NONE ? "" : o->answer.text);
    cJSON_AddNumberToObject(b, "tokens", o->n_gen);
    cJSON_AddNumberToObject(b, "mean_logprob", em_agg_mean_lp(o->lp_sum, o->n_gen));
    const char *f = branch_finish(o->finish);
    if (f) cJSON_AddStringToObject(b, "finish_reason", f);
    else cJSON_AddNullToObject(b, "finish_reason");
    return b;
}

/* The "contemplation" object of a finished request (under r->mu). */
static cJSON *contemplation_json(const em_request *r) {
    const int N = r->n_branches;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "aggregate", AGG_NAMES[r->aggregate]);
    cJSON_AddStringToObject(c, "answer", r->agg_answer);
    cJSON_AddNumberToObject(c, "winner", r->agg_winner);
    cJSON_AddNumberToObject(c, "agreement", r->agg_agreement);
    int votes = 0;
    for (int i = 0; i < N; i++)
        votes += r->out[i].answer.kind != EM_ANS_NONE && !strcmp(r->out[i].answer.text, r->agg_answer);
    cJSON_AddNumberToObject(c, "votes", votes);
    cJSON_AddBoolToObject(c, "early_stopped", r->early_stopped);
    cJSON *bs = cJSON_AddArrayToObject(c, "branches");
    long long bt = 0, st = 0;
    for (int i = 0; i < N; i++) {
        cJSON_AddItemToArray(bs, branch_json(r, i, "index", true));
        bt += r->out[i].n_gen;
    }
    if (r->n_choices > N) {
        const em_choice_out *o = &r->out[N];
        cJSON *sy = cJSON_AddObjectToObject(c, "synthesis");
        add_text(sy, "text", o->text, o->len);
        cJSON_AddNumberToObject(sy, "tokens", o->n_gen);
        st = o->n_gen;
    }
    cJSON *tk = cJSON_AddObjectToObject(c, "tokens");
    cJSON_AddNumberToObject(tk, "prompt", (double)(r->n_prompt_total / (N > 0 ? N : 1)));
    cJSON_AddNumberToObject(tk, "branches", (double)bt);
    cJSON_AddNumberToObject(tk, "synthesis", (double)st);
    cJSON_AddNumberToObject(tk, "total", (double)(bt + st));
    cJSON_AddNumberToObject(c, "kv_blocks_peak", r->kv_blocks_peak);
    return c;
}

static cJSON *final_json(const em_oai_meta *m, const em_request *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "object", m->chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddStringToObject(o, "model", m->model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", "ember");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (m->chat) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        add_text(msg, "content", r->agg_answer, strlen(r->agg_answer));
    } else {
        add_text(c, "text", r->agg_answer, strlen(r->agg_answer));
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", "stop");
    cJSON_AddItemToArray(ch, c);
    cJSON_AddItemToObject(o, "usage", usage_json(r));
    cJSON_AddItemToObject(o, "contemplation", contemplation_json(r));
    return o;
}

/* Status of a finished request that has no answer (and fills the error), or 0. */
static int failure(const em_request *r, const char **type, const char **code, char *msg, size_t cap) {
    int st = em_oai_failure(r, type, code, msg, cap);
    if (st || r->agg_ready) return st;
    *type = "server_error";
    *code = "internal_error";
    snprintf(msg, cap, "Contemplation failed: %s", r->error[0] ? r->error : "no result");
    return 500;
}

/* ---------------------------------------------------------- streaming -- */

typedef struct cstream {
    em_sse base; /* first: the reader's em_sse * is this stream */
    size_t off[EM_SCHED_MAX_CHOICES + 1];
    bool fin[EM_SCHED_MAX_CHOICES + 1];
    bool role_sent;
} cstream;

/* A chunk of choice 0. chat: delta {content} or {contemplation: extra};
 * completions: text, plus "contemplation": extra in the choice. */
static cJSON *chunk(const cstream *st, bool role, const char *content, cJSON *extra, const char *finish) {
    cJSON *o = em_oai_chunk_base(&st->base.m);
    cJSON *chs = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (st->base.m.chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (content) add_text(d, "content", content, strlen(content));
        if (extra) cJSON_AddItemToObject(d, "contemplation", extra);
    } else {
        add_text(c, "text", content ? content : "", content ? strlen(content) : 0);
        if (extra) cJSON_AddItemToObject(c, "contemplation", extra);
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(chs, c);
    if (st->base.m.include_usage) cJSON_AddNullToObject(o, "usage");
    return o;
}

static void produce(em_sse *base) {
    cstream *st = (cstream *)base;
    em_request *r = st->base.r;
    const int N = r->n_branches;
    pthread_mutex_lock(&r->mu);
    st->base.version = r->version;
    if (st->base.m.chat && !st->role_sent) {
        em_sse_event(&st->base, chunk(st, true, "", NULL, NULL));
        st->role_sent = true;
    }
    for (int i = 0; i < r->n_choices; i++) {
        const em_choice_out *o = &r->out[i];
        if (o->len > st->off[i]) {
            cJSON *x = cJSON_CreateObject();
            if (i < N) {
                cJSON_AddNumberToObject(x, "branch", i);
                add_text(x, "text", o->text + st->off[i], o->len - st->off[i]);
            } else {
                add_text(x, "synthesis", o->text + st->off[i], o->len - st->off[i]);
            }
            em_sse_event(&st->base, chunk(st, false, NULL, x, NULL));
            st->off[i] = o->len;
        }
        const char *f = o->finish;
        if (i < N && f && !st->fin[i] &&
            (!strcmp(f, "stop") || !strcmp(f, "length") || !strcmp(f, "early_stop"))) {
            em_sse_event(&st->base, chunk(st, false, NULL, branch_json(r, i, "branch", false), NULL));
        }
        if (f) st->fin[i] = true;
    }
    if (em_request_done(r)) {
        em_sec_stream_done(st->base.sec, &st->base.m, r); /* the ledger row is committed before [DONE] */
        const char *type, *code;
        char msg[400];
        if (failure(r, &type, &code, msg, sizeof msg)) {
            em_sse_event(&st->base, em_error_json(msg, type, NULL, code));
        } else {
            em_sse_event(&st->base, chunk(st, false, r->agg_answer, NULL, NULL));
            cJSON *last = chunk(st, false, st->base.m.chat ? NULL : "", NULL, "stop");
            cJSON_AddItemToObject(last, "contemplation", contemplation_json(r));
            em_sse_event(&st->base, last);
        }
        if (st->base.m.include_usage) {
            cJSON *o = em_oai_chunk_base(&st->base.m);
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", usage_json(r));
            em_sse_event(&st->base, o);
        }
        em_sse_put(&st->base, "data: [DONE]\n\n", 14);
        st->base.ended = true;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Takes over the caller's reference to r. */
static enum MHD_Result stream_start(em_server *s, struct MHD_Connection *c, em_request *r, const em_oai_meta *m) {
    cstream *st = calloc(1, sizeof *st);
    if (!st) {
        em_request_cancel(r);
        em_request_release(r);
        return MHD_NO;
    }
    st->base = (em_sse){.s = s, .r = r, .m = *m, .produce = produce};
    return em_sse_start(&st->base, c);
}

/* ------------------------------------------------------------ serving -- */

enum MHD_Result em_contemplate_serve(em_server *s, struct MHD_Connection *c, const em_oai_meta *m,
                                     const em_gen_params *gp_in, const em_contemplate_opts *o, const int32_t *ids,
                                     size_t n_ids, uint64_t seed) {
    em_gen_params gp = *gp_in;
    gp.max_tokens = o->max_branch_tokens > 0 ? o->max_branch_tokens
                    : gp_in->max_tokens > 0  ? gp_in->max_tokens
                                             : DEFAULT_BRANCH_TOKENS;
    gp.top_logprobs = -1;
    const int32_t need = em_sched_contemplate_blocks(s->sched, (int32_t)n_ids, o->branches, gp.max_tokens);
    const int32_t have = em_sched_kv_blocks_total(s->sched);
    if (need > have)
        return em_respond_error(s, c, 400, "invalid_request_error", "contemplate", "invalid_value",
                                "%d branches of up to %d tokens over a prompt of %zu tokens need up to %d KV blocks; "
                                "this server's pool has %d (--kv-pool); ask for fewer branches or tokens",
                                o->branches, gp.max_tokens, n_ids, need, have);
    em_request *r = em_request_new_contemplate(&gp, o->branches, o->aggregate, o->early_stop, 0, ids, n_ids, seed);
    if (!r) return em_respond_error(s, c, 500, "server_error", NULL, "out_of_memory", "out of memory");
    int sub = em_sched_submit(s->sched, r);
    if (sub == EM_SUBMIT_FULL || sub == EM_SUBMIT_CLOSED) {
        em_request_release(r);
        return em_respond_not_admitted(s, c, sub == EM_SUBMIT_FULL);
    }
    if (sub != EM_SUBMIT_OK) {
        em_request_release(r);
        return em_respond_error(s, c, 400, "invalid_request_error", m->chat ? "messages" : "prompt", "invalid_value",
                                "The prompt does not fit the context");
    }
    if (m->stream) return stream_start(s, c, r, m);
    const int fd = em_conn_fd(c);
    uint64_t v = 0;
    for (;;) {
        v = em_request_wait(r, v, 100);
        pthread_mutex_lock(&r->mu);
        bool done = em_request_done(r);
        pthread_mutex_unlock(&r->mu);
        if (done) break;
        if (em_conn_closed(fd)) {
            em_request_cancel(r);
            em_request_release(r);
            return MHD_NO;
        }
    }
    enum MHD_Result ret;
    const char *type, *code;
    char msg[400];
    pthread_mutex_lock(&r->mu);
    int st = failure(r, &type, &code, msg, sizeof msg);
    cJSON *body = st ? NULL : final_json(m, r);
    pthread_mutex_unlock(&r->mu);
    if (st) ret = em_respond_error(s, c, st, type, NULL, code, "%s", msg);
    else ret = em_respond_json(s, c, 200, body);
    em_request_release(r);
    return ret;
}
