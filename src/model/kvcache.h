/* kvcache.h - the KV cache as a pool of fixed-size blocks (EM_KV_BLOCK
 * positions each, every layer) with a block table per sequence and a
 * reference count per block. Forking a sequence shares its blocks; the first
 * write into a shared block copies it (copy-on-write), so sequences can share
 * a prompt prefix. Not thread safe: one owner (a context) mutates it. */
#ifndef EM_KVCACHE_H
#define EM_KVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define EM_KV_BLOCK 16

typedef enum { EM_KV_F16 = 0, EM_KV_F32 = 1 } em_kv_type;

typedef struct em_kv_seq {
    bool used;
    int32_t n_pos;      /* positions [0, n_pos) hold valid K/V */
    int32_t *blocks;    /* block table: position p lives in blocks[p / EM_KV_BLOCK] */
    int32_t n_blocks, cap;
} em_kv_seq;

typedef struct em_kv {
    em_kv_type type;
    uint32_t n_layer, kv_dim;  /* kv_dim = n_head_kv * head_dim */
    int32_t n_blocks;          /* pool size */
    size_t elt;                /* bytes per element (2 or 4) */
    uint8_t **k, **v;          /* per layer: n_blocks * EM_KV_BLOCK * kv_dim elements */
    int32_t *refcnt;
    int32_t *free_list, n_free;
    em_kv_seq *seqs;
    int32_t n_seqs;
} em_kv;

/* Allocates a pool of ceil(n_ctx / EM_KV_BLOCK) blocks for up to n_seqs
 * sequences. */
int em_kv_init(em_kv *kv, em_kv_type type, uint32_t n_layer, uint32_t kv_dim, uint32_t n_ctx, int32_t n_seqs,
               em_err *err);
void em_kv_free(em_kv *kv);

/* Makes positions [from, to) of seq writable: allocates missing blocks and
 * copies shared ones. Fails (nothing changed) if the pool is exhausted. */
int em_kv_prepare(em_kv *kv, int32_t seq, int32_t from, int32_t to, em_err *err);
/* Blocks em_kv_prepare(seq, from, to) would take from the free list. */
int32_t em_kv_blocks_needed(const em_kv *kv, int32_t seq, int32_t from, int32_t to);
/* Drops positions >= n_pos of seq (n_pos = 0 frees the sequence). */
void em_kv_truncate(em_kv *kv, int32_t seq, int32_t n_pos);
/* dst becomes a copy of src's first n_pos positions, sharing blocks. dst is
 * cleared first. */
int em_kv_fork(em_kv *kv, int32_t src, int32_t dst, int32_t n_pos, em_err *err);

int32_t em_kv_blocks_used(const em_kv *kv);

/* Element offset of position pos of seq within a layer's K or V array. */
static inline size_t em_kv_slot(const em_kv *kv, int32_t seq, int32_t pos) {
    const em_kv_seq *s = &kv->seqs[seq];
    return ((size_t)s->blocks[pos / EM_KV_BLOCK] * EM_KV_BLOCK + (size_t)(pos % EM_KV_BLOCK)) * kv->kv_dim;
}

#endif
