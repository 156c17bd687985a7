/* api.c - the public API (include/ember.h) over the internal layers. */
#include "ember.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../model/context.h"
#include "../model/model.h"
#include "../sample/sampler.h"

_Static_assert(sizeof(ember_error) == sizeof(em_err), "ember_error mirrors em_err");
#define ERR(e) ((em_err *)(void *)(e))

struct ember_model {
    em_model *m;
    char desc[256];
};
struct ember_ctx {
    em_ctx *c;
    const ember_model *model;
};
struct ember_sampler {
    em_sampler *s;
};

ember_model *ember_model_load(const char *path, ember_error *err) { return ember_model_load_ex(path, NULL, err); }

ember_model *ember_model_load_ex(const char *path, const ember_model_params *p, ember_error *err) {
    ember_model *em = calloc(1, sizeof *em);
    if (!em) { em_fail(ERR(err), "out of memory"); return NULL; }
    em->m = em_model_load(path, ERR(err));
    if (!em->m) { free(em); return NULL; }
    if (p && p->mlock && em_model_mlock(em->m, ERR(err))) {
        em_model_free(em->m);
        free(em);
        return NULL;
    }
    const em_hparams *hp = &em->m->hp;
    const char *tname = em_type_name(em->m->layers[0].wq.tt->type);
    snprintf(em->desc, sizeof em->desc, "%s, %u layers, %u embd, %u heads (%u kv), ff %u, vocab %u, %s, %.2f M params",
             em->m->arch->name, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_vocab,
             tname ? tname : "?", (double)em->m->n_params / 1e6);
    return em;
}

void ember_model_free(ember_model *m) {
    if (!m) return;
    em_model_free(m->m);
    free(m);
}

int32_t ember_model_n_vocab(const ember_model *m) { return (int32_t)m->m->hp.n_vocab; }
int32_t ember_model_n_ctx_train(const ember_model *m) { return (int32_t)m->m->hp.n_ctx_train; }
const char *ember_model_desc(const ember_model *m) { return m->desc; }

long ember_model_meta_str(const ember_model *m, const char *key, char *buf, size_t cap) {
    const em_gguf_kv *kv = em_gguf_find(m->m->gguf, key);
    if (!kv || kv->type != EM_GGUF_STRING || kv->v.str.len > (uint64_t)LONG_MAX) return -1;
    size_t n = (size_t)kv->v.str.len;
    if (buf && cap > 0) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(buf, kv->v.str.ptr, c);
        buf[c] = 0;
    }
    return (long)n;
}

int ember_tokenize(const ember_model *m, const char *text, size_t len, bool add_special, bool parse_special,
                   int32_t **ids, size_t *n_ids, ember_error *err) {
    return em_tokenize(m->m->tok, text, len, add_special, parse_special, ids, n_ids, ERR(err));
}

int ember_token_to_piece(const ember_model *m, int32_t id, bool render_special, char *buf, size_t cap) {
    return em_token_to_piece(m->m->tok, id, render_special, buf, cap);
}

bool ember_token_is_eog(const ember_model *m, int32_t id) { return em_tokenizer_is_eog(m->m->tok, id); }
int32_t ember_token_bos(const ember_model *m) { return em_tokenizer_bos(m->m->tok); }

ember_ctx *ember_ctx_new(const ember_model *m, const ember_ctx_params *p, ember_error *err) {
    ember_ctx *c = calloc(1, sizeof *c);
    if (!c) { em_fail(ERR(err), "out of memory"); return NULL; }
    em_ctx_params ip = {0};
    if (p) {
        ip.n_ctx = p->n_ctx;
        ip.n_batch = p->n_batch;
        ip.n_seqs = p->n_seqs;
        ip.n_threads = p->n_threads;
        ip.kv_type = p->kv_type == EMBER_KV_F32 ? EM_KV_F32 : EM_KV_F16;
    }
    c->c = em_ctx_new(m->m, &ip, ERR(err));
    if (!c->c) { free(c); return NULL; }
    c->model = m;
    return c;
}

void ember_ctx_free(ember_ctx *c) {
    if (!c) return;
    em_ctx_free(c->c);
    free(c);
}

uint32_t ember_ctx_n_ctx(const ember_ctx *c) { return c->c->p.n_ctx; }
uint32_t ember_ctx_n_batch(const ember_ctx *c) { return c->c->p.n_batch; }
const ember_model *ember_ctx_model(const ember_ctx *c) { return c->model; }
uint64_t ember_ctx_kv_bytes(const ember_ctx *c) {
    const em_kv *kv = &c->c->kv;
    return 2ull * kv->n_layer * (uint64_t)kv->n_blocks * EM_KV_BLOCK * kv->kv_dim * kv->elt;
}

int ember_decode(ember_ctx *c, const ember_batch *b, ember_error *err) {
    em_batch ib = {b->n, b->token, b->pos, b->seq, b->want_logits, b->prefill};
    return em_ctx_decode(c->c, &ib, ERR(err));
}

const float *ember_logits(const ember_ctx *c, int32_t i) { return em_ctx_logits(c->c, i); }

int32_t ember_seq_len(const ember_ctx *c, int32_t seq) {
    if (seq < 0 || seq >= c->c->kv.n_seqs) return -1;
    return c->c->kv.seqs[seq].n_pos;
}

void ember_seq_truncate(ember_ctx *c, int32_t seq, int32_t n_pos) { em_kv_truncate(&c->c->kv, seq, n_pos); }

int ember_seq_fork(ember_ctx *c, int32_t src, int32_t dst, int32_t n_pos, ember_error *err) {
    return em_kv_fork(&c->c->kv, src, dst, n_pos, ERR(err));
}

int32_t ember_kv_blocks_used(const ember_ctx *c) { return em_kv_blocks_used(&c->c->kv); }
int32_t ember_kv_blocks_total(const ember_ctx *c) { return c->c->kv.n_blocks; }
int32_t ember_kv_block_size(void) { return EM_KV_BLOCK; }
int32_t ember_ctx_n_seqs(const ember_ctx *c) { return c->c->kv.n_seqs; }

int32_t ember_kv_blocks_needed(const ember_ctx *c, int32_t seq, int32_t n_new) {
    const em_kv *kv = &c->c->kv;
    if (seq < 0 || seq >= kv->n_seqs || n_new < 0) return -1;
    int32_t from = kv->seqs[seq].n_pos;
    return em_kv_blocks_needed(kv, seq, from, from + n_new);
}

ember_sampler_params ember_sampler_defaults(void) {
    em_sampler_params d = em_sampler_defaults();
    ember_sampler_params p = {d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.frequency_penalty,
                              d.presence_penalty, d.penalty_last_n, d.seed};
    return p;
}

ember_sampler *ember_sampler_new(const ember_sampler_params *p, int32_t n_vocab) {
    em_sampler_params ip = {p->temperature, p->top_k, p->top_p, p->min_p, p->repeat_penalty, p->frequency_penalty,
                            p->presence_penalty, p->penalty_last_n, p->seed};
    ember_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->s = em_sampler_new(&ip, n_vocab);
    if (!s->s) { free(s); return NULL; }
    return s;
}

void ember_sampler_free(ember_sampler *s) {
    if (!s) return;
    em_sampler_free(s->s);
    free(s);
}

void ember_sampler_accept(ember_sampler *s, int32_t token) { em_sampler_accept(s->s, token); }
int32_t ember_sampler_sample(ember_sampler *s, const float *logits, float *logprob) {
    return em_sampler_sample(s->s, logits, logprob);
}

const char *ember_kernels(void) { return em_kernels_isa(); }

uint64_t ember_debug_expert_bytes(const ember_ctx *c) { return c->c->expert_bytes; }
float ember_debug_router_margin(const ember_ctx *c) { return c->c->router_margin; }

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int ember_generate(ember_ctx *c, ember_sampler *s, const int32_t *prompt, size_t n_prompt, int32_t n_predict,
                   const char *const *stops, size_t n_stops, ember_text_cb cb, void *user, ember_gen_stats *stats,
                   ember_error *err) {
    ember_gen_stats st = {0};
    st.stop_reason = "length";
    if (n_prompt == 0) return em_fail(ERR(err), "empty prompt");
    const uint32_t n_ctx = c->c->p.n_ctx;
    if (n_prompt > n_ctx)
        return em_fail(ERR(err), "prompt of %zu tokens does not fit the context of %u", n_prompt, n_ctx);
    em_stop *stop = em_stop_new(stops, n_stops);
    if (!stop) return em_fail(ERR(err), "invalid stop strings (at most 16, each at most 256 bytes)");
    ember_seq_truncate(c, 0, 0);
    const uint32_t nb = c->c->p.n_batch;
    int32_t *tok = malloc(sizeof(int32_t) * nb * 2);
    int32_t *pos = tok + nb;
    int32_t *seq = calloc(nb, sizeof(int32_t));
    char *piece = malloc(256);
    int rc = -1;
    if (!tok || !seq || !piece) { em_fail(ERR(err), "out of memory"); goto done; }
    double t0 = now_ms();
    for (size_t i = 0; i < n_prompt; i += nb) {
        int32_t n = (int32_t)(n_prompt - i < nb ? n_prompt - i : nb);
        for (int32_t j = 0; j < n; j++) {
            tok[j] = prompt[i + j];
            pos[j] = (int32_t)(i + j);
        }
        ember_batch b = {.n = n, .token = tok, .pos = pos, .seq = seq, .want_logits = NULL};
        if (ember_decode(c, &b, err)) goto done;
    }
    for (size_t i = 0; i < n_prompt; i++) ember_sampler_accept(s, prompt[i]);
    st.n_prompt = (int32_t)n_prompt;
    st.prompt_ms = now_ms() - t0;
    t0 = now_ms();
    int32_t p = (int32_t)n_prompt;
    const float *logits = ember_logits(c, (int32_t)((n_prompt - 1) % nb));
    for (int32_t g = 0; n_predict < 0 || g < n_predict; g++) {
        int32_t t = ember_sampler_sample(s, logits, NULL);
        ember_sampler_accept(s, t);
        st.n_gen++;
        if (ember_token_is_eog(c->model, t)) { st.stop_reason = "eos"; break; }
        int len = ember_token_to_piece(c->model, t, false, piece, 256);
        if (len < 0) len = 0;
        if (len > 256) len = 256;
        const char *out;
        size_t out_len;
        bool hit = em_stop_feed(stop, piece, (size_t)len, &out, &out_len);
        if (out_len && cb && !cb(out, out_len, user)) { st.stop_reason = "callback"; break; }
        if (hit) { st.stop_reason = "stop"; break; }
        if ((uint32_t)p >= n_ctx) { st.stop_reason = "length"; break; }
        if (n_predict >= 0 && g + 1 >= n_predict) break;
        tok[0] = t;
        pos[0] = p++;
        ember_batch b = {.n = 1, .token = tok, .pos = pos, .seq = seq, .want_logits = NULL};
        if (ember_decode(c, &b, err)) goto done;
        logits = ember_logits(c, 0);
    }
    if (strcmp(st.stop_reason, "stop") != 0) {
        const char *out;
        size_t out_len;
        em_stop_flush(stop, &out, &out_len);
        if (out_len && cb) cb(out, out_len, user);
    }
    st.gen_ms = now_ms() - t0;
    rc = 0;
done:
    if (stats) *stats = st;
    em_stop_free(stop);
    free(tok);
    free(seq);
    free(piece);
    return rc;
}
