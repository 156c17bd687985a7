/* sse.c - streaming responses as Server-Sent Events in OpenAI's chunk format:
 * one `data: {json}` event per update and choice (chat: a first delta with
 * the role, then content deltas, then a delta-less chunk with the
 * finish_reason), an optional usage chunk (stream_options.include_usage),
 * and `data: [DONE]`. A request that ends badly (timeout, shutdown) sends an
 * `data: {"error": ...}` event before [DONE].
 *
 * The connection's thread blocks in the content reader until the scheduler
 * appends text; while waiting it checks that the client is still there, so
 * a client that disconnects cancels its sequences within a step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define KEEPALIVE_MS 10000

typedef struct stream {
    em_sse base; /* first: the reader's em_sse * is this stream */
    size_t *text_off, *lp_off;
    bool *fin_sent, *role_sent;
    bool error_sent;
} stream;

/* ------------------------------------------------- the shared plumbing -- */

void em_sse_put(em_sse *st, const char *b, size_t n) {
    if (st->oom) return;
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + n + 1) cap *= 2;
        char *p = realloc(st->buf, cap);
        if (!p) {
            st->oom = true;
            return;
        }
        st->buf = p;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, b, n);
    st->len += n;
}

void em_sse_event(em_sse *st, cJSON *obj) {
    char *txt = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!txt) {
        st->oom = true;
        return;
    }
    em_sse_put(st, "data: ", 6);
    em_sse_put(st, txt, strlen(txt));
    em_sse_put(st, "\n\n", 2);
    free(txt);
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    em_sse *st = cls;
    for (;;) {
        if (st->oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (st->pos < st->len) {
            size_t n = st->len - st->pos;
            if (n > max) n = max;
            memcpy(out, st->buf + st->pos, n);
            st->pos += n;
            st->last_out = em_srv_now_ms();
            return (ssize_t)n;
        }
        st->pos = st->len = 0;
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        st->produce(st);
        if (st->len) continue;
        em_request_wait(st->r, st->version, 100);
        if (em_conn_closed(st->fd)) {
            em_request_cancel(st->r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (em_srv_now_ms() - st->last_out > KEEPALIVE_MS) em_sse_put(st, ": keep-alive\n\n", 14);
    }
}

void em_sse_discard(em_sse *st) {
    if (!st->ended) em_request_cancel(st->r);
    em_sec_stream_detach(st->sec, &st->m, st->r);
    em_request_release(st->r);
    if (st->free_fields) st->free_fields(st);
    free(st->buf);
    free(st);
}

static void sse_free(void *cls) { em_sse_discard(cls); }

enum MHD_Result em_sse_start(em_sse *st, struct MHD_Connection *c) {
    em_server *s = st->s;
    st->fd = em_conn_fd(c);
    st->last_out = em_srv_now_ms();
    st->sec = em_sec_stream_attach();
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, st, sse_free);
    if (!resp) {
        em_sse_discard(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return em_queue_response(s, c, 200, resp, true);
}

/* ------------------------------------------------ completions and chat -- */

/* A chunk for choice i: delta text (may be empty), logprob entries, finish. */
static cJSON *chunk(stream *st, int i, const char *text, size_t len, bool role, const em_lp_entry *lp, size_t n_lp,
                    const char *finish) {
    cJSON *o = em_oai_chunk_base(&st->base.m);
    cJSON *chs = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", i);
    char *t = NULL;
    if (text) {
        t = malloc(len + 1);
        if (t) {
            memcpy(t, text, len);
            t[len] = 0;
        }
    }
    if (st->base.m.chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (text) cJSON_AddStringToObject(d, "content", t ? t : "");
    } else {
        cJSON_AddStringToObject(c, "text", t ? t : "");
    }
    free(t);
    if (st->base.m.logprobs && n_lp) cJSON_AddItemToObject(c, "logprobs", em_oai_logprobs(st->base.s, &st->base.m, lp, n_lp, st->text_off[i]));
    else cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(chs, c);
    if (st->base.m.include_usage) cJSON_AddNullToObject(o, "usage");
    return o;
}

/* Turns whatever the scheduler appended since the last call into events. */
static void produce(em_sse *base) {
    stream *st = (stream *)base;
    em_request *r = st->base.r;
    pthread_mutex_lock(&r->mu);
    st->base.version = r->version;
    for (int i = 0; i < r->n_choices; i++) {
        const em_choice_out *o = &r->out[i];
        if (st->base.m.chat && !st->role_sent[i]) {
            em_sse_event(&st->base, chunk(st, i, "", 0, true, NULL, 0, NULL));
            st->role_sent[i] = true;
        }
        size_t nt = o->len - st->text_off[i], nl = o->n_lp - st->lp_off[i];
        const char *tx = nt ? o->text + st->text_off[i] : "";
        if (st->base.sec) {
            /* completion redaction holds back what may be the start of a secret */
            if (!(tx = em_sec_stream_text(st->base.sec, i, tx, &nt, o->finish && !st->fin_sent[i]))) st->base.oom = true;
            st->text_off[i] = o->len;
        }
        if (nt || nl) {
            em_sse_event(&st->base, chunk(st, i, tx, nt, false, o->lp + st->lp_off[i], nl, NULL));
            st->text_off[i] = o->len;
            st->lp_off[i] = o->n_lp;
        }
        if (o->finish && !st->fin_sent[i]) {
            st->fin_sent[i] = true;
            if (!strcmp(o->finish, "stop") || !strcmp(o->finish, "length")) {
                em_sse_event(&st->base, chunk(st, i, st->base.m.chat ? NULL : "", 0, false, NULL, 0, o->finish));
            } else if (!st->error_sent) {
                const char *type, *code;
                char msg[400];
                if (em_oai_failure(r, &type, &code, msg, sizeof msg)) {
                    em_sse_event(&st->base, em_error_json(msg, type, NULL, code));
                    st->error_sent = true;
                }
            }
        }
    }
    const bool done = em_request_done(r);
    if (done) {
        em_sec_stream_done(st->base.sec, &st->base.m, r); /* the ledger row is committed before [DONE] */
        if (st->base.m.include_usage) {
            cJSON *o = em_oai_chunk_base(&st->base.m);
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", em_oai_usage(&st->base.m, r));
            em_sse_event(&st->base, o);
        }
        em_sse_put(&st->base, "data: [DONE]\n\n", 14);
        st->base.ended = true;
    }
    pthread_mutex_unlock(&r->mu);
}

static void free_fields(em_sse *base) {
    stream *st = (stream *)base;
    free(st->text_off);
    free(st->lp_off);
    free(st->fin_sent);
    free(st->role_sent);
}

enum MHD_Result em_stream_start(em_server *s, struct MHD_Connection *c, em_request *r, const em_oai_meta *m) {
    stream *st = calloc(1, sizeof *st);
    if (!st) {
        em_request_cancel(r);
        em_request_release(r);
        return MHD_NO;
    }
    st->base = (em_sse){.s = s, .r = r, .m = *m, .produce = produce, .free_fields = free_fields};
    const size_t n = (size_t)r->n_choices;
    st->text_off = calloc(n, sizeof(size_t));
    st->lp_off = calloc(n, sizeof(size_t));
    st->fin_sent = calloc(n, sizeof(bool));
    st->role_sent = calloc(n, sizeof(bool));
    if (!st->text_off || !st->lp_off || !st->fin_sent || !st->role_sent) {
        em_sse_discard(&st->base);
        return MHD_NO;
    }
    return em_sse_start(&st->base, c);
}
