#include "context.h"

#include <stdlib.h>
#include <string.h>

#include "../base/checked.h"

em_ctx *em_ctx_new(const em_model *m, const em_ctx_params *pp, em_err *err) {
    em_ctx *c = calloc(1, sizeof *c);
    if (!c) { em_fail(err, "out of memory"); return NULL; }
    c->m = m;
    c->p = *pp;
    const em_hparams *hp = &m->hp;
    if (c->p.n_ctx == 0) c->p.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (c->p.n_batch == 0) c->p.n_batch = 512;
    if (c->p.n_seqs <= 0) c->p.n_seqs = 1;
    if (c->p.n_threads <= 0) c->p.n_threads = 1;
    if (c->p.n_ctx > (1u << 24)) { em_fail(err, "context of %u positions is too large", c->p.n_ctx); goto fail; }
    if (c->p.n_batch > 65536) { em_fail(err, "batch of %u is too large", c->p.n_batch); goto fail; }
    if (c->p.n_threads > 256) { em_fail(err, "%d threads is too many", c->p.n_threads); goto fail; }
    if (em_kv_init(&c->kv, c->p.kv_type, hp->n_layer, hp->n_head_kv * hp->head_dim, c->p.n_ctx, c->p.n_seqs, err))
        goto fail;
    c->pool = em_pool_new(c->p.n_threads);
    if (!c->pool) { em_fail(err, "cannot start %d threads", c->p.n_threads); goto fail; }
    const size_t B = c->p.n_batch, E = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim;
    const size_t KV = (size_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    const size_t K = hp->n_expert ? hp->n_expert_used : 1, FE = hp->n_expert ? hp->n_ff_exp : 0;
    size_t maxc = E > Q ? E : Q;
    if (F > maxc) maxc = F;
    /* FFN hidden rows: one per token (dense) or per token and chosen expert */
    size_t ffw = F > K * FE ? F : K * FE;
    /* dimensions are capped at load, so these products cannot overflow size_t */
    c->x = malloc(B * E * sizeof(float));
    c->xb = malloc(B * maxc * sizeof(float));
    c->q = malloc(B * Q * sizeof(float));
    c->k = malloc(B * KV * sizeof(float));
    c->v = malloc(B * KV * sizeof(float));
    c->att = malloc(B * Q * sizeof(float));
    c->hb = malloc(B * ffw * sizeof(float));
    c->hb2 = malloc(B * ffw * sizeof(float));
    size_t xqw = maxc > ffw ? maxc : ffw;
    if (K * E > xqw) xqw = K * E;
    c->xq = malloc(B * xqw * 4 + 64);
    /* the largest gemm aux any weight type asks for, at the widest input */
    c->xaux_row = 32;
    for (uint32_t t = 0; t < EM_TYPE_COUNT; t++) {
        const em_type_traits *tt = em_type_traits_get(t);
        if (tt && tt->gemm_aux_size && tt->gemm_aux_size((int64_t)xqw) > c->xaux_row)
            c->xaux_row = tt->gemm_aux_size((int64_t)xqw);
    }
    c->xaux = aligned_alloc(32, (B * c->xaux_row + 31) / 32 * 32);
    c->zeros = calloc(B * K, 1);
    c->mm_share = aligned_alloc(64, (size_t)EM_MM_BATCH * (size_t)c->p.n_threads * sizeof(em_mm_share));
    if (hp->n_expert) {
        c->router = malloc(B * hp->n_expert * sizeof(float));
        c->moe_sel = malloc(B * K * sizeof(int32_t));
        c->moe_w = malloc(B * K * sizeof(float));
        c->moe_idx = malloc(2 * B * K * sizeof(int32_t));
        c->moe_out = malloc(B * K * E * sizeof(float));
        c->moe_in = malloc(B * K * E * sizeof(float));
        if (!c->router || !c->moe_sel || !c->moe_w || !c->moe_idx || !c->moe_out || !c->moe_in) {
            em_fail(err, "out of memory for expert scratch (batch %u)", c->p.n_batch);
            goto fail;
        }
    }
    c->scores = malloc((size_t)c->p.n_threads * c->p.n_ctx * sizeof(float));
    c->q16 = malloc((size_t)c->p.n_threads * hp->head_dim * sizeof(em_f16));
    c->attn_acc = malloc((size_t)c->p.n_threads * 64 * hp->head_dim * sizeof(float));
    c->out_row = malloc(B * sizeof(int32_t));
    c->ord_in = malloc(3 * B);
    c->seq_cnt = malloc(2 * (size_t)c->p.n_seqs * sizeof(int32_t));
    c->rows = malloc((B + (size_t)c->p.n_seqs) * sizeof(int32_t));
    if (!c->x || !c->xb || !c->q || !c->k || !c->v || !c->att || !c->hb || !c->hb2 || !c->xq || !c->scores ||
        !c->q16 || !c->attn_acc || !c->out_row || !c->rows || !c->ord_in || !c->seq_cnt || !c->zeros ||
        !c->mm_share || !c->xaux) {
        em_fail(err, "out of memory for context scratch (batch %u)", c->p.n_batch);
        goto fail;
    }
    for (size_t i = 0; i < B; i++) c->out_row[i] = -1;
    return c;
fail:
    em_ctx_free(c);
    return NULL;
}

void em_ctx_free(em_ctx *c) {
    if (!c) return;
    em_kv_free(&c->kv);
    em_pool_free(c->pool);
    free(c->x); free(c->xb); free(c->q); free(c->k); free(c->v); free(c->att); free(c->hb); free(c->hb2);
    free(c->xq); free(c->scores); free(c->q16); free(c->attn_acc); free(c->logits); free(c->out_row); free(c->rows); free(c->ord_in); free(c->seq_cnt);
    free(c->router); free(c->moe_sel); free(c->moe_w); free(c->moe_idx); free(c->moe_out); free(c->moe_in); free(c->zeros);
    free(c->mm_share); free(c->xaux);
    free(c);
}
