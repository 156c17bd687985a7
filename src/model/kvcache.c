#include "kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "../base/checked.h"

int em_kv_init(em_kv *kv, em_kv_type type, uint32_t n_layer, uint32_t kv_dim, uint32_t n_ctx, int32_t n_seqs,
               em_err *err) {
    memset(kv, 0, sizeof *kv);
    if (n_ctx == 0 || n_seqs <= 0) return em_fail(err, "KV cache needs a context size and at least one sequence");
    kv->type = type;
    kv->n_layer = n_layer;
    kv->kv_dim = kv_dim;
    kv->n_blocks = (int32_t)((n_ctx + EM_KV_BLOCK - 1) / EM_KV_BLOCK);
    kv->elt = type == EM_KV_F16 ? 2 : 4;
    size_t per_layer;
    if (!em_mul_sz((size_t)kv->n_blocks * EM_KV_BLOCK, kv_dim, &per_layer) ||
        !em_mul_sz(per_layer, kv->elt, &per_layer))
        return em_fail(err, "KV cache size overflows");
    kv->k = calloc(n_layer, sizeof *kv->k);
    kv->v = calloc(n_layer, sizeof *kv->v);
    kv->refcnt = calloc((size_t)kv->n_blocks, sizeof *kv->refcnt);
    kv->free_list = calloc((size_t)kv->n_blocks, sizeof *kv->free_list);
    kv->seqs = calloc((size_t)n_seqs, sizeof *kv->seqs);
    kv->n_seqs = n_seqs;
    if (!kv->k || !kv->v || !kv->refcnt || !kv->free_list || !kv->seqs) goto oom;
    for (uint32_t l = 0; l < n_layer; l++) {
        kv->k[l] = calloc(1, per_layer);
        kv->v[l] = calloc(1, per_layer);
        if (!kv->k[l] || !kv->v[l]) goto oom;
    }
    /* Lowest block ids are handed out first. */
    for (int32_t i = 0; i < kv->n_blocks; i++) kv->free_list[i] = kv->n_blocks - 1 - i;
    kv->n_free = kv->n_blocks;
    return 0;
oom:
    em_kv_free(kv);
    return em_fail(err, "out of memory for a KV cache of %u positions", n_ctx);
}

void em_kv_free(em_kv *kv) {
    if (kv->k)
        for (uint32_t l = 0; l < kv->n_layer; l++) free(kv->k[l]);
    if (kv->v)
        for (uint32_t l = 0; l < kv->n_layer; l++) free(kv->v[l]);
    free(kv->k);
    free(kv->v);
    if (kv->seqs)
        for (int32_t s = 0; s < kv->n_seqs; s++) free(kv->seqs[s].blocks);
    free(kv->seqs);
    free(kv->refcnt);
    free(kv->free_list);
    memset(kv, 0, sizeof *kv);
}

static void release_block(em_kv *kv, int32_t b) {
    if (--kv->refcnt[b] == 0) kv->free_list[kv->n_free++] = b;
}

static void copy_block(em_kv *kv, int32_t dst, int32_t src) {
    size_t bytes = (size_t)EM_KV_BLOCK * kv->kv_dim * kv->elt;
    for (uint32_t l = 0; l < kv->n_layer; l++) {
        memcpy(kv->k[l] + (size_t)dst * bytes, kv->k[l] + (size_t)src * bytes, bytes);
        memcpy(kv->v[l] + (size_t)dst * bytes, kv->v[l] + (size_t)src * bytes, bytes);
    }
}

int32_t em_kv_blocks_needed(const em_kv *kv, int32_t seq, int32_t from, int32_t to) {
    const em_kv_seq *s = &kv->seqs[seq];
    int32_t need = (to + EM_KV_BLOCK - 1) / EM_KV_BLOCK;
    int32_t want = need > s->n_blocks ? need - s->n_blocks : 0;
    for (int32_t b = from / EM_KV_BLOCK; b < s->n_blocks && b < need; b++)
        if (kv->refcnt[s->blocks[b]] > 1) want++;
    return want;
}

int em_kv_prepare(em_kv *kv, int32_t seq, int32_t from, int32_t to, em_err *err) {
    if (seq < 0 || seq >= kv->n_seqs) return em_fail(err, "sequence id %d out of range [0, %d)", seq, kv->n_seqs);
    if (from < 0 || to < from) return em_fail(err, "bad position range [%d, %d)", from, to);
    em_kv_seq *s = &kv->seqs[seq];
    int32_t need = (to + EM_KV_BLOCK - 1) / EM_KV_BLOCK;
    int32_t first_write = from / EM_KV_BLOCK;
    /* Count blocks needed first so failure leaves everything unchanged. */
    int32_t want = em_kv_blocks_needed(kv, seq, from, to);
    if (want > kv->n_free)
        return em_fail(err, "KV cache full: %d more blocks of %d positions needed, %d free", want, EM_KV_BLOCK,
                       kv->n_free);
    if (need > s->cap) {
        int32_t cap = s->cap ? s->cap : 8;
        while (cap < need) cap *= 2;
        int32_t *nb = realloc(s->blocks, (size_t)cap * sizeof *nb);
        if (!nb) return em_fail(err, "out of memory");
        s->blocks = nb;
        s->cap = cap;
    }
    for (int32_t b = first_write; b < s->n_blocks && b < need; b++) {
        int32_t old = s->blocks[b];
        if (kv->refcnt[old] > 1) {
            int32_t nb = kv->free_list[--kv->n_free];
            kv->refcnt[nb] = 1;
            copy_block(kv, nb, old);
            kv->refcnt[old]--;
            s->blocks[b] = nb;
        }
    }
    while (s->n_blocks < need) {
        int32_t nb = kv->free_list[--kv->n_free];
        kv->refcnt[nb] = 1;
        s->blocks[s->n_blocks++] = nb;
    }
    s->used = true;
    return 0;
}

void em_kv_truncate(em_kv *kv, int32_t seq, int32_t n_pos) {
    if (seq < 0 || seq >= kv->n_seqs) return;
    em_kv_seq *s = &kv->seqs[seq];
    if (n_pos < 0) n_pos = 0;
    if (n_pos > s->n_pos) return;
    int32_t keep = (n_pos + EM_KV_BLOCK - 1) / EM_KV_BLOCK;
    while (s->n_blocks > keep) release_block(kv, s->blocks[--s->n_blocks]);
    s->n_pos = n_pos;
    if (n_pos == 0) s->used = false;
}

int em_kv_fork(em_kv *kv, int32_t src, int32_t dst, int32_t n_pos, em_err *err) {
    if (src < 0 || src >= kv->n_seqs || dst < 0 || dst >= kv->n_seqs || src == dst)
        return em_fail(err, "bad sequence ids for fork (%d -> %d)", src, dst);
    em_kv_seq *s = &kv->seqs[src];
    if (n_pos < 0 || n_pos > s->n_pos) return em_fail(err, "fork of %d positions from a sequence of %d", n_pos, s->n_pos);
    em_kv_truncate(kv, dst, 0);
    em_kv_seq *d = &kv->seqs[dst];
    int32_t need = (n_pos + EM_KV_BLOCK - 1) / EM_KV_BLOCK;
    if (need > d->cap) {
        int32_t *nb = realloc(d->blocks, (size_t)(need ? need : 1) * sizeof *nb);
        if (!nb) return em_fail(err, "out of memory");
        d->blocks = nb;
        d->cap = need;
    }
    for (int32_t b = 0; b < need; b++) {
        d->blocks[b] = s->blocks[b];
        kv->refcnt[s->blocks[b]]++;
    }
    d->n_blocks = need;
    d->n_pos = n_pos;
    d->used = true;
    return 0;
}

int32_t em_kv_blocks_used(const em_kv *kv) { return kv->n_blocks - kv->n_free; }
