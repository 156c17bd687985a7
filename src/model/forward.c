/* forward.c - the batched forward pass of the Llama family, numerically
 * following llama.cpp's CPU graph: RMSNorm with a double-precision sum,
 * RoPE angles built by repeated multiplication, activations converted once
 * per matmul to the weight's vec_dot_type, Q and the softmax weights rounded
 * to F16 when the KV cache is F16. Every output element is computed by the
 * same code whatever the thread count, so results do not depend on it. */
#include "context.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../base/checked.h"
#include "../tensor/dot_ggml.h"

#define MM_TILE 16 /* rows of a weight reused across the batch while cached */

/* ---- matmul: y[b][r] = dot(W row r, x[b]) for b < B ---- */

typedef struct {
    const em_weight *w;
    const uint8_t *ord; /* per row: 1 = prompt-batch (tinyBLAS) order, 0 = single-token order */
    bool gemm_ok;       /* the weight's shape allows tinyBLAS (rows % 4, cols % 16) */
    const uint8_t *x;
    size_t xs; /* bytes between activation rows */
    int B;
    float *y;
    size_t ys; /* floats between output rows */
    const int32_t *xidx, *yidx; /* optional gather/scatter: row b reads x row xidx[b], writes y row yidx[b] */
    em_mm_share *share; /* [n_threads] chunk counters (mm_shares) */
    const uint8_t *aux; /* NULL, or the weight type's gemm_aux of activation row b at aux + b * aux_stride */
    size_t aux_stride;
} mm_task;

/* Weight rows per work item with a tile kernel: a multiple of its row
 * blocking (2, 3, 8), small enough to stay in L2 while every group of
 * tokens passes over it. */
#define GEMM_TILE 48
#define GEMM_TOKENS 64 /* tokens per tile-kernel call (it reuses what it decodes across them) */

/* Rows [r0, r1) of the task's weight against all its activation rows. */
static void mm_rows(const mm_task *t, int64_t r0, int64_t r1) {
    const em_weight *w = t->w;
    if (w->tt->gemm) { /* quantized weights: tile kernels, same numbers as vec_dot */
        for (int b = 0; b < t->B; b += GEMM_TOKENS) {
            const int nt = t->B - b < GEMM_TOKENS ? t->B - b : GEMM_TOKENS;
            const void *xs[GEMM_TOKENS], *as[GEMM_TOKENS];
            float *ys[GEMM_TOKENS];
            for (int j = 0; j < nt; j++) {
                const size_t xi = (size_t)(t->xidx ? t->xidx[b + j] : b + j);
                xs[j] = t->x + xi * t->xs;
                as[j] = t->aux ? t->aux + xi * t->aux_stride : NULL;
                ys[j] = t->y + (size_t)(t->yidx ? t->yidx[b + j] : b + j) * t->ys + r0;
            }
            w->tt->gemm(w->cols, r1 - r0, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, nt, xs,
                        t->aux ? as : NULL, ys, b == 0);
        }
        return;
    }
    int b = 0;
    /* quantized weights: four activation rows per pass over a weight row
     * (same numbers as one at a time, fewer block decodes) */
    /* A last group of 2-3 rows repeats its last row to fill the four
     * (outputs are independent, so the copies change nothing): one pass
     * over the weights instead of 2-3, which is what counts when a few
     * sequences decode together. */
    /* float weights with tinyBLAS's shape have a prompt-batch order of
     * their own (below); integer sums are the same in any order */
    if (w->tt->vec_dot4 && (w->tt->blck > 1 || !t->gemm_ok))
        for (; b + 2 <= t->B; b += 4) {
            const int nt = t->B - b < 4 ? t->B - b : 4;
            const void *xs[4];
            float *ys[4];
            for (int j = 0; j < 4; j++) {
                const int bj = b + (j < nt ? j : nt - 1);
                xs[j] = t->x + (size_t)(t->xidx ? t->xidx[bj] : bj) * t->xs;
                ys[j] = t->y + (size_t)(t->yidx ? t->yidx[bj] : bj) * t->ys;
            }
            const uint8_t *wr = w->data + (size_t)r0 * w->row_bytes;
            /* two rows: the two-row kernel where there is one (half the work) */
            void (*dot)(int64_t, float *, const void *, const void *const *) =
                nt == 2 && w->tt->vec_dot2 ? w->tt->vec_dot2 : w->tt->vec_dot4;
            for (int64_t r = r0; r < r1; r++, wr += w->row_bytes) {
                float s4[4];
                dot(w->cols, s4, wr, xs);
                for (int j = 0; j < nt; j++) ys[j][r] = s4[j];
            }
        }
    for (; b < t->B; b++) {
        const uint8_t *xb = t->x + (size_t)(t->xidx ? t->xidx[b] : b) * t->xs;
        float *yb = t->y + (size_t)(t->yidx ? t->yidx[b] : b) * t->ys;
        const uint8_t *wr = w->data + (size_t)r0 * w->row_bytes;
        const bool gemm = t->gemm_ok && t->ord[b];
        switch (w->tt->type) {
        case EM_TYPE_F32:
            if (!gemm) goto vec;
            for (int64_t r = r0; r < r1; r++, wr += w->row_bytes)
                yb[r] = em_dot_f32_gemm(w->cols, (const float *)wr, (const float *)xb);
            break;
        case EM_TYPE_F16:
            if (!gemm) goto vec;
            for (int64_t r = r0; r < r1; r++, wr += w->row_bytes)
                yb[r] = em_dot_f16_gemm(w->cols, (const em_f16 *)wr, (const em_f16 *)xb);
            break;
        case EM_TYPE_BF16:
            if (!gemm || w->cols % 32 != 0) goto vec;
            for (int64_t r = r0; r < r1; r++, wr += w->row_bytes)
                yb[r] = em_dot_bf16_gemm(w->cols, (const em_bf16 *)wr, (const em_bf16 *)xb);
            break;
        default:
        vec: /* ggml_vec_dot order: quantized types always, floats for single tokens */
            for (int64_t r = r0; r < r1; r++, wr += w->row_bytes) w->tt->vec_dot(w->cols, &yb[r], wr, xb);
        }
    }
}

/* Rows per work item (chunk). */
static int64_t mm_chunk_rows(const em_weight *w) { return w->tt->gemm ? GEMM_TILE : MM_TILE; }

/* Each thread starts with a contiguous share of the chunks (em_split) and
 * claims them front to back from its own counter, on its own cache line:
 * contiguous rows stream best, and an uncontended atomic per chunk costs
 * nothing measurable (a single shared counter cost ~8% of decode speed in
 * cache-line traffic). A thread that is done then claims from the others'
 * shares, so a thread that was descheduled (the server's HTTP and client
 * threads share the cores) or simply slower no longer holds everyone at the
 * barrier. Who computes a row never changes its bits. */
static void mm_worker(void *arg, int ith, int nth) {
    const mm_task *t = arg;
    const int64_t rows_per = mm_chunk_rows(t->w);
    for (int v = 0; v < nth; v++) {
        em_mm_share *sh = &t->share[(ith + v) % nth];
        for (long ch; (ch = atomic_fetch_add_explicit(&sh->next, 1, memory_order_relaxed)) < sh->end;) {
            const int64_t r0 = (int64_t)ch * rows_per;
            mm_rows(t, r0, r0 + rows_per < t->w->rows ? r0 + rows_per : t->w->rows);
        }
    }
}

/* Slot `slot` of the context's chunk counters, set up for weight w (the
 * pool's start of a job publishes them to the workers). */
static em_mm_share *mm_shares(em_ctx *c, int slot, const em_weight *w) {
    const int nth = em_pool_size(c->pool);
    em_mm_share *sh = c->mm_share + (size_t)slot * (size_t)nth;
    const int64_t rows_per = mm_chunk_rows(w);
    const long n = (long)((w->rows + rows_per - 1) / rows_per);
    for (int i = 0; i < nth; i++) {
        long lo, hi;
        em_split(n, i, nth, &lo, &hi);
        atomic_store_explicit(&sh[i].next, lo, memory_order_relaxed);
        sh[i].end = hi;
    }
    return sh;
}

/* Converts B rows of x (cols floats each, stride xs floats) to the weight's
 * activation format; returns the rows and their byte stride. */
static const uint8_t *prepare_act(em_ctx *c, const em_weight *w, const float *x, size_t xs, int B, size_t *stride) {
    uint32_t vdt = w->tt->vec_dot_type;
    if (vdt == EM_TYPE_F32) {
        *stride = xs * sizeof(float);
        return (const uint8_t *)x;
    }
    const em_type_traits *at = em_type_traits_get(vdt);
    size_t rb = em_type_row_bytes(vdt, (uint64_t)w->cols);
    for (int b = 0; b < B; b++) at->from_f32(x + (size_t)b * xs, c->xq + (size_t)b * rb, w->cols);
    *stride = rb;
    return c->xq;
}

/* Several matmuls in one dispatch: each thread does its share of each in
 * turn (they write disjoint outputs), one wake-up and one barrier in all. */
#define MM_BATCH EM_MM_BATCH
typedef struct {
    mm_task t[MM_BATCH];
    em_weight w[MM_BATCH];
    int n;
} mm_batch;

static void mm_batch_worker(void *arg, int ith, int nth) {
    mm_batch *b = arg;
    for (int i = 0; i < b->n; i++) mm_worker(&b->t[i], ith, nth);
}

/* nw matmuls of one prepared input (Q/K/V, gate/up) in one dispatch:
 * y[i] = w[i] x, row stride ys[i]. ord[b]: summation order for row b (see
 * dot_ggml.h). llama.cpp picks it per mul_mat call from the number of
 * columns (tinyBLAS for 2+); we pick it per row from the token's role, so
 * that batching other sequences alongside never changes a sequence's
 * numbers. */
static void matmul_prepared_n(em_ctx *c, int nw, const em_weight *const *w, const uint8_t *xq, size_t xstride, int B,
                              float *const *y, const size_t *ys, const uint8_t *ord) {
    /* the gemm kernel's per-activation data, once for all the chunks and
     * threads (the weights share one input, so they share it if their type
     * asks for the same) */
    void (*aux_fn)(int64_t, const void *, void *) = NULL;
    size_t aux_row = 0;
    for (int i = 0; i < nw && !aux_fn; i++)
        if (w[i]->tt->gemm_aux && (aux_row = w[i]->tt->gemm_aux_size(w[i]->cols)) <= c->xaux_row) {
            aux_fn = w[i]->tt->gemm_aux;
            for (int b = 0; b < B; b++) aux_fn(w[i]->cols, xq + (size_t)b * xstride, c->xaux + (size_t)b * aux_row);
        }
    mm_batch b;
    b.n = nw;
    for (int i = 0; i < nw; i++) {
        const bool own = aux_fn && w[i]->tt->gemm_aux == aux_fn;
        b.t[i] = (mm_task){w[i], ord, w[i]->cols % 16 == 0 && w[i]->rows % 4 == 0, xq, xstride, B, y[i], ys[i],
                           NULL, NULL, mm_shares(c, i, w[i]), own ? c->xaux : NULL, own ? aux_row : 0};
    }
    em_pool_run(c->pool, mm_batch_worker, &b);
}

static void matmul_prepared(em_ctx *c, const em_weight *w, const uint8_t *xq, size_t xstride, int B, float *y,
                            size_t ys, const uint8_t *ord) {
    matmul_prepared_n(c, 1, &w, xq, xstride, B, &y, &ys, ord);
}

static void matmul(em_ctx *c, const em_weight *w, const float *x, size_t xs, int B, float *y, size_t ys,
                   const uint8_t *ord) {
    size_t stride;
    const uint8_t *xq = prepare_act(c, w, x, xs, B, &stride);
    matmul_prepared(c, w, xq, stride, B, y, ys, ord);
}

/* ---- elementwise ---- */

static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

/* cos/sin for the n_rot/2 rotation pairs at position pos, as ggml's rope
 * cache builds them (theta multiplied step by step, not powf per pair). */
static void rope_cache(const em_model *m, int32_t pos, float *cs, float *sn) {
    const em_hparams *hp = &m->hp;
    const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
        const float ff = m->rope_freqs ? m->rope_freqs[i] : 1.0f;
        const float th = hp->rope_freq_scale * (theta / ff);
        cs[i] = cosf(th);
        sn[i] = sinf(th);
        theta *= theta_scale;
    }
}

static void rope_apply(const em_model *m, float *v, int n_heads, const float *cs, const float *sn) {
    const uint32_t hd = m->hp.head_dim, half = m->hp.n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * hd;
        for (uint32_t i = 0; i < half; i++) {
            uint32_t a, b;
            if (m->arch->rope_mode == EM_ROPE_NORM) { a = 2 * i; b = 2 * i + 1; }
            else { a = i; b = i + half; }
            const float x0 = x[a], x1 = x[b];
            /* as GCC contracts ggml's x0*cos - x1*sin on FMA machines */
            x[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
            x[b] = fmaf(x0, sn[i], x1 * cs[i]);
        }
    }
}

/* RMS norm without a weight (Llama 4's L2 norm of Q and K per head). */
static void rmsnorm_plain(float *x, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) x[i] *= scale;
}

/* RoPE, or on no-RoPE layers the attention temperature (q only), then the
 * optional Q/K norm, in llama.cpp's order. v holds n_heads heads. */
static void pos_encode(const em_model *m, const em_layer *L, float *v, int n_heads, int32_t pos, bool is_q,
                       float *cs, float *sn) {
    const em_arch *a = m->arch;
    const uint32_t hd = m->hp.head_dim;
    if (L->use_rope) {
        rope_cache(m, pos, cs, sn);
        rope_apply(m, v, n_heads, cs, sn);
        if (a->qk_norm_rope_layers)
            for (int h = 0; h < n_heads; h++) rmsnorm_plain(v + (size_t)h * hd, hd, m->hp.rms_eps);
    } else if (is_q && a->attn_temp_scale > 0.0f) {
        const float scale =
            (float)(log(floor(((float)pos + 1.0f) / a->attn_temp_floor_scale) + 1.0) * a->attn_temp_scale + 1.0);
        for (size_t i = 0; i < (size_t)n_heads * hd; i++) v[i] *= scale;
    }
}

/* ---- attention ----
 * llama.cpp (flash attention off) computes KQ = K^T q and KQV = V p with
 * ggml mul_mat: for prompt batches through tinyBLAS ("gemm" order), for
 * single-token decodes through ggml_vec_dot ("vec" order), over the KV
 * length padded to KV_PAD with masked (zero-weight) entries. With an F16
 * cache, q and the softmax weights are rounded to F16 first. We follow the
 * same orders (see dot_ggml.h) so the F16 roundings agree bit for bit. */

#define KV_PAD 256

/* The KV length llama.cpp's kernels see: padded to KV_PAD, capped by the
 * cache size. */
static inline int64_t kv_len_padded(const em_ctx *c, int n_kv) {
    int64_t n = ((int64_t)n_kv + KV_PAD - 1) / KV_PAD * KV_PAD;
    return n < (int64_t)c->p.n_ctx ? n : (int64_t)c->p.n_ctx;
}

typedef struct {
    em_ctx *c;
    const em_batch *b;
    int il;
    int n_rows;
    const int32_t *rows; /* batch index of each q row */
    atomic_long next; /* next (row, head) task */
} attn_task;

/* out[d] = sum_j p[j] * v_j[d] in ggml's order; v_j is row j of the
 * sequence's V cache (F16 or F32), p already rounded if F16. acc is scratch
 * of 64 * hd floats. */
__attribute__((target_clones("fma", "default")))
static void weighted_sum(const em_ctx *c, int32_t seq, int kvh, int hd, const float *p, int n_kv, bool gemm,
                         const uint8_t *vc, float *acc, float *out) {
    const bool f16 = c->kv.type == EM_KV_F16;
    const int64_t n_pad = kv_len_padded(c, n_kv);
    const int64_t np = gemm ? n_pad : (n_pad & ~(int64_t)63);
    const int n_acc = gemm ? 16 : 64;
    memset(acc, 0, sizeof(float) * (size_t)n_acc * (size_t)hd);
    double tail[EM_MAX_HEAD_DIM];
    for (int d = 0; d < hd; d++) tail[d] = 0.0;
    bool has_tail = false;
    int j = 0;
    if (f16) { /* keys below np, KV_CHUNK at a time (a multiple of n_acc: key j goes to row j % n_acc) */
        enum { KV_CHUNK = 1024 };
        const int nj = n_kv < np ? n_kv : (int)np;
        for (; j < nj; j += KV_CHUNK) {
            const em_f16 *vp[KV_CHUNK];
            const int m = nj - j < KV_CHUNK ? nj - j : KV_CHUNK;
            for (int u = 0; u < m; u++) vp[u] = (const em_f16 *)vc + em_kv_slot(&c->kv, seq, j + u) + (size_t)kvh * hd;
            em_axpy_f16_rows(hd, acc, n_acc, vp, p + j, m);
        }
        j = nj;
    }
    for (; j < n_kv; j++) {
        const size_t slot = em_kv_slot(&c->kv, seq, j) + (size_t)kvh * hd;
        const float pj = p[j];
        if (j < np) { /* F32 only: F16 keys below np went through em_axpy_f16_rows above */
            em_axpy_f32(hd, acc + (size_t)(j % n_acc) * hd, (const float *)vc + slot, pj);
        } else if (f16) {
            has_tail = true;
            const em_f16 *vh = (const em_f16 *)vc + slot;
            for (int d = 0; d < hd; d++) tail[d] += (double)(em_f16_to_f32(vh[d]) * pj);
        } else {
            has_tail = true; /* F32 tail: an FMA chain after the reduction, below */
        }
    }
    if (np) em_reduce16_rows(acc, n_acc, hd, out);
    else memset(out, 0, sizeof(float) * (size_t)hd);
    if (has_tail && f16)
        for (int d = 0; d < hd; d++) out[d] = (float)((double)out[d] + tail[d]);
    if (has_tail && !f16) {
        for (int d = 0; d < hd; d++) {
            float sum = out[d];
            for (int j = (int)np; j < n_kv; j++) {
                const float *v = (const float *)vc + em_kv_slot(&c->kv, seq, j) + (size_t)kvh * hd;
                sum = fmaf(v[d], p[j], sum);
            }
            out[d] = sum;
        }
    }
}

static void attn_worker(void *arg, int ith, int nth) {
    const attn_task *t = arg;
    em_ctx *c = t->c;
    const em_hparams *hp = &c->m->hp;
    const int hd = (int)hp->head_dim, nh = (int)hp->n_head, group = (int)(hp->n_head / hp->n_head_kv);
    const size_t Q = (size_t)nh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const bool f16 = c->kv.type == EM_KV_F16;
    const em_type_traits *dt = em_type_traits_get(f16 ? EM_TYPE_F16 : EM_TYPE_F32);
    float *sc = c->scores + (size_t)ith * c->p.n_ctx;
    float *acc = c->attn_acc + (size_t)ith * 64 * hd;
    em_f16 *q16 = c->q16 + (size_t)ith * hd;
    const uint8_t *kc = c->kv.k[t->il], *vc = c->kv.v[t->il];
    (void)nth;
    const long n_tasks = (long)t->n_rows * nh;
    for (long task; (task = atomic_fetch_add_explicit(&((attn_task *)arg)->next, 1, memory_order_relaxed)) < n_tasks;) {
        const int r = (int)(task / nh), h = (int)(task % nh), kvh = h / group;
        const int32_t i = t->rows[r], seq = t->b->seq[i], pos = t->b->pos[i];
        const bool gemm = c->ord_in[i]; /* llama.cpp: tinyBLAS only for batches of 2+ tokens */
        const float *q = c->q + (size_t)r * Q + (size_t)h * hd;
        if (f16) dt->from_f32(q, q16, hd); /* round to nearest even, as ggml's F16 conversion */
        const int n_kv = pos + 1;
        const int chunk = c->m->layers[t->il].chunk;
        const int j0 = chunk ? pos / chunk * chunk : 0; /* chunked layers see only their chunk */
        float mx = -INFINITY;
        for (int j = 0; j < j0; j++) sc[j] = -INFINITY;
        int j = j0;
        /* four keys per call, same bits as one at a time: the prompt-batch
         * order, or a single token's (vec_dot) order where the kernel set has
         * a four-row F16 dot */
        const bool four = f16 && (gemm ? hd % 16 == 0 : dt->vec_dot4 != NULL);
        if (four)
            for (; j + 4 <= n_kv; j += 4) {
                const em_f16 *k4[4];
                for (int u = 0; u < 4; u++) k4[u] = (const em_f16 *)kc + em_kv_slot(&c->kv, seq, j + u) + (size_t)kvh * hd;
                float s4[4];
                if (gemm) em_dot_f16_gemm4(hd, k4, q16, s4);
                else dt->vec_dot4(hd, s4, q16, (const void *const *)k4);
                for (int u = 0; u < 4; u++) {
                    const float s = s4[u] * scale;
                    sc[j + u] = s;
                    if (s > mx) mx = s;
                }
            }
        for (; j < n_kv; j++) {
            const size_t slot = em_kv_slot(&c->kv, seq, j) + (size_t)kvh * hd;
            float s;
            if (f16 && gemm && hd % 16 == 0) {
                s = em_dot_f16_gemm(hd, (const em_f16 *)kc + slot, q16);
            } else {
                /* F32: q is a non-contiguous view, so ggml never takes tinyBLAS */
                dt->vec_dot(hd, &s, kc + slot * c->kv.elt, f16 ? (const void *)q16 : (const void *)q);
            }
            s *= scale;
            sc[j] = s;
            if (s > mx) mx = s;
        }
        /* ggml's softmax runs over the padded row, where masked entries give
         * exp = 0. It sums 16-element chunks, so the chunks past the last
         * one holding a real key add exactly 0: stop there (n_soft), the
         * same sum for a fraction of the exps. */
        const int n_pad = (int)kv_len_padded(c, n_kv);
        const int n_soft = (n_kv + 15) / 16 * 16 < n_pad ? (n_kv + 15) / 16 * 16 : n_pad;
        for (int j = n_kv; j < n_soft; j++) sc[j] = -INFINITY;
        const double sum = em_ggml_softmax_exp(n_soft, sc, sc, mx);
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_kv; j++) sc[j] *= inv;
        if (f16) /* the weights rounded to F16 (as ggml's F16 V product takes them) */
            for (int j = 0; j < n_kv; j += 256) {
                em_f16 t16[256];
                const int m = n_kv - j < 256 ? n_kv - j : 256;
                dt->from_f32(sc + j, t16, m);
                dt->to_f32(t16, sc + j, m);
            }
        weighted_sum(c, seq, kvh, hd, sc, n_kv, gemm, vc, acc, c->att + (size_t)r * Q + (size_t)h * hd);
    }
}

/* ---- FFN ---- */

static void swiglu(float *g, const float *u, int n_rows, size_t n) {
    for (int r = 0; r < n_rows; r++) em_ggml_swiglu((int64_t)n, g + (size_t)r * n, g + (size_t)r * n, u + (size_t)r * n);
}

/* ---- FFN variants: output in c->xb (n rows of n_embd) ---- */

static void ffn_dense(em_ctx *c, const em_weight *gate, const em_weight *up, const em_weight *down, int n,
                      const uint8_t *ord) {
    const size_t E = c->m->hp.n_embd, F = (size_t)gate->rows;
    size_t st;
    const uint8_t *xq = prepare_act(c, gate, c->xb, E, n, &st);
    if (up->tt->vec_dot_type == gate->tt->vec_dot_type) {
        const em_weight *w[2] = {gate, up};
        float *y[2] = {c->hb, c->hb2};
        const size_t ys[2] = {F, F};
        matmul_prepared_n(c, 2, w, xq, st, n, y, ys, ord);
    } else {
        matmul_prepared(c, gate, xq, st, n, c->hb, F, ord);
        xq = prepare_act(c, up, c->xb, E, n, &st);
        matmul_prepared(c, up, xq, st, n, c->hb2, F, ord);
    }
    swiglu(c->hb, c->hb2, n, F);
    matmul(c, down, c->hb, F, n, c->xb, E, ord);
}

/* Expert e's matrix of a stacked [cols, rows, n_expert] tensor. */
static em_weight expert_slice(const em_weight *w, int e) {
    em_weight s = *w;
    s.data = w->data + (size_t)e * (size_t)w->rows * w->row_bytes;
    s.n_mat = 1;
    return s;
}

/* For each expert chosen by any row, multiply only its rows: its weights
 * stream once for all the tokens that picked it, and unchosen experts are
 * never touched. Output row j = t * K + k (token t, k-th choice). ggml's
 * mul_mat_id always runs the single-token (vec_dot) kernels. */
/* nw (1 or 2) stacked weights that share the input xq (up and gate), each
 * with its output y[w]; all chosen experts of both in as few dispatches as
 * MM_BATCH allows. */
static void experts_matmul(em_ctx *c, int nw, const em_weight *const *stack, float *const *y, const uint8_t *xq,
                           size_t xs, const int32_t *sel, int n, int K, bool x_per_choice, size_t ys) {
    const int X = (int)c->m->hp.n_expert;
    /* each (token, choice) belongs to one expert: the experts' index lists
     * lie one after another in the n * K entries */
    int32_t *xidx = c->moe_idx, *yidx = c->moe_idx + (size_t)n * K;
    mm_batch b;
    b.n = 0;
    int off = 0;
    for (int e = 0; e < X; e++) {
        int cnt = 0;
        for (int j = 0; j < n * K; j++)
            if (sel[j] == e) {
                xidx[off + cnt] = x_per_choice ? j : j / K;
                yidx[off + cnt] = j;
                cnt++;
            }
        if (!cnt) continue;
        if (b.n + nw > MM_BATCH) {
            em_pool_run(c->pool, mm_batch_worker, &b);
            b.n = 0;
        }
        for (int w = 0; w < nw; w++, b.n++) {
            b.w[b.n] = expert_slice(stack[w], e);
            c->expert_bytes += (uint64_t)b.w[b.n].rows * b.w[b.n].row_bytes;
            b.t[b.n] = (mm_task){&b.w[b.n], c->zeros, false, xq, xs, cnt, y[w], ys, xidx + off, yidx + off,
                                 mm_shares(c, b.n, &b.w[b.n]), NULL, 0}; /* the kernel derives its aux */
        }
        off += cnt;
    }
    if (b.n) em_pool_run(c->pool, mm_batch_worker, &b);
}

static void ffn_moe(em_ctx *c, const em_layer *L, int n, const uint8_t *ord) {
    const em_hparams *hp = &c->m->hp;
    const em_arch *a = c->m->arch;
    const size_t E = hp->n_embd, FE = hp->n_ff_exp;
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    const bool sigmoid = a->gating == EM_GATE_SIGMOID_INPUT;
    /* router: Mixtral: softmax, top-K by probability, chosen weights
     * renormalized; Llama 4: top-K by logit, weight = sigmoid(logit). Ties go
     * to the lower expert id. */
    matmul(c, &L->ffn_gate_inp, c->xb, E, n, c->router, (size_t)X, ord);
    int32_t *sel = c->moe_sel;
    float *wts = c->moe_w;
    for (int t = 0; t < n; t++) {
        float *p = c->router + (size_t)t * X;
        if (!sigmoid) {
            float mx = -INFINITY;
            for (int e = 0; e < X; e++) mx = p[e] > mx ? p[e] : mx;
            const double sum = em_ggml_softmax_exp(X, p, p, mx);
            const float inv = (float)(1.0 / sum);
            for (int e = 0; e < X; e++) p[e] *= inv;
        }
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < X; e++) {
                bool taken = false;
                for (int j = 0; j < k; j++) taken |= sel[t * K + j] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            sel[t * K + k] = best;
            wts[t * K + k] = sigmoid ? 1.0f / (1.0f + expf(-p[best])) : p[best];
        }
        /* how close the choice was: last chosen vs best unchosen */
        float runner = -INFINITY;
        for (int e = 0; e < X; e++) {
            bool taken = false;
            for (int j = 0; j < K; j++) taken |= sel[t * K + j] == e;
            if (!taken && p[e] > runner) runner = p[e];
        }
        if (p[sel[t * K + K - 1]] - runner < c->router_margin) c->router_margin = p[sel[t * K + K - 1]] - runner;
        if (!sigmoid) {
            double ws = 0.0;
            for (int k = 0; k < K; k++) ws += (double)wts[t * K + k];
            const float wsf = (float)ws;
            for (int k = 0; k < K; k++) wts[t * K + k] /= wsf;
        }
    }
    size_t st;
    const uint8_t *xq;
    if (sigmoid) {
        /* the weight scales each chosen expert's input */
        for (int j = 0; j < n * K; j++)
            for (size_t d = 0; d < E; d++) c->moe_in[(size_t)j * E + d] = c->xb[(size_t)(j / K) * E + d] * wts[j];
        xq = prepare_act(c, &L->ffn_up_exps, c->moe_in, E, n * K, &st);
    } else {
        xq = prepare_act(c, &L->ffn_up_exps, c->xb, E, n, &st);
    }
    /* up and gate in one pass over the chosen experts when they take the
     * same activation format (prepare_act reuses one buffer) */
    const em_weight *ug[2] = {&L->ffn_up_exps, &L->ffn_gate_exps};
    float *ugy[2] = {c->hb2, c->hb};
    if (L->ffn_gate_exps.tt->vec_dot_type == L->ffn_up_exps.tt->vec_dot_type) {
        experts_matmul(c, 2, ug, ugy, xq, st, sel, n, K, sigmoid, FE);
    } else {
        experts_matmul(c, 1, &ug[0], &ugy[0], xq, st, sel, n, K, sigmoid, FE);
        xq = prepare_act(c, &L->ffn_gate_exps, sigmoid ? c->moe_in : c->xb, E, sigmoid ? n * K : n, &st);
        experts_matmul(c, 1, &ug[1], &ugy[1], xq, st, sel, n, K, sigmoid, FE);
    }
    swiglu(c->hb, c->hb2, n * K, FE);
    xq = prepare_act(c, &L->ffn_down_exps, c->hb, FE, n * K, &st);
    const em_weight *down = &L->ffn_down_exps;
    float *down_y = c->moe_out;
    experts_matmul(c, 1, &down, &down_y, xq, st, sel, n, K, true, E);
    /* (Mixtral: weight each expert's output,) add them in choice order; the
     * sum lands in row t*K of moe_out */
    for (int t = 0; t < n; t++) {
        float *o = c->moe_out + (size_t)t * K * E;
        for (size_t d = 0; d < E; d++) {
            float acc = sigmoid ? o[d] : o[d] * wts[t * K];
            for (int k = 1; k < K; k++) acc += sigmoid ? o[(size_t)k * E + d] : o[(size_t)k * E + d] * wts[t * K + k];
            o[d] = acc;
        }
    }
    if (a->shared_expert) {
        ffn_dense(c, &L->ffn_gate_shexp, &L->ffn_up_shexp, &L->ffn_down_shexp, n, ord);
        for (int t = 0; t < n; t++)
            for (size_t d = 0; d < E; d++) c->xb[(size_t)t * E + d] = c->moe_out[(size_t)t * K * E + d] + c->xb[(size_t)t * E + d];
    } else {
        for (int t = 0; t < n; t++) memcpy(c->xb + (size_t)t * E, c->moe_out + (size_t)t * K * E, E * sizeof(float));
    }
}

/* ---- the pass ---- */

static int validate(em_ctx *c, const em_batch *b, int32_t *seq_next, em_err *err) {
    const em_model *m = c->m;
    if (b->n < 1 || (uint32_t)b->n > c->p.n_batch)
        return em_fail(err, "batch of %d entries (allowed 1..%u)", b->n, c->p.n_batch);
    for (int32_t s = 0; s < c->p.n_seqs; s++) seq_next[s] = -1;
    int32_t need = 0;
    for (int32_t i = 0; i < b->n; i++) {
        if (b->token[i] < 0 || (uint32_t)b->token[i] >= m->hp.n_vocab)
            return em_fail(err, "token id %d out of range [0, %u)", b->token[i], m->hp.n_vocab);
        int32_t s = b->seq[i];
        if (s < 0 || s >= c->p.n_seqs) return em_fail(err, "sequence id %d out of range [0, %d)", s, c->p.n_seqs);
        if (seq_next[s] < 0) seq_next[s] = c->kv.seqs[s].n_pos;
        if (b->pos[i] != seq_next[s])
            return em_fail(err, "entry %d: position %d of sequence %d, expected %d", i, b->pos[i], s, seq_next[s]);
        if (seq_next[s] >= (int32_t)c->p.n_ctx)
            return em_fail(err, "sequence %d would exceed the context of %u positions", s, c->p.n_ctx);
        seq_next[s]++;
    }
    for (int32_t s = 0; s < c->p.n_seqs; s++)
        if (seq_next[s] >= 0) need += em_kv_blocks_needed(&c->kv, s, c->kv.seqs[s].n_pos, seq_next[s]);
    if (need > c->kv.n_free)
        return em_fail(err, "KV cache full: batch needs %d blocks, %d free", need, c->kv.n_free);
    return 0;
}

int em_ctx_decode(em_ctx *c, const em_batch *b, em_err *err) {
    const em_model *m = c->m;
    const em_hparams *hp = &m->hp;
    int32_t *seq_next = c->rows + c->p.n_batch; /* second half of the scratch index list */
    if (validate(c, b, seq_next, err)) return -1;
    int32_t n_want = 0;
    for (int i = 0; i < b->n; i++) n_want += (b->want_logits ? b->want_logits[i] != 0 : i == b->n - 1);
    if (n_want > c->logits_cap) {
        float *nl = em_malloc_array((size_t)n_want * m->hp.n_vocab, sizeof(float));
        if (!nl) return em_fail(err, "out of memory for %d rows of logits", n_want);
        free(c->logits);
        c->logits = nl;
        c->logits_cap = n_want;
    }
    for (int32_t s = 0; s < c->p.n_seqs; s++)
        if (seq_next[s] >= 0 && em_kv_prepare(&c->kv, s, c->kv.seqs[s].n_pos, seq_next[s], err)) return -1;

    const int B = b->n;
    const size_t E = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
    float cs[EM_MAX_HEAD_DIM / 2], sn[EM_MAX_HEAD_DIM / 2];

    c->expert_bytes = 0;
    c->router_margin = INFINITY;
    /* which entries produce logits */
    c->n_out = 0;
    for (int i = 0; i < B; i++) {
        bool want = b->want_logits ? b->want_logits[i] != 0 : i == B - 1;
        c->out_row[i] = want ? c->n_out++ : -1;
    }
    /* Summation order per entry: a sequence evaluating 2+ tokens in this call
     * (a prompt) gets llama.cpp's batched order, a single token its decode
     * order; the layers after the output selection use the batched order
     * only if the sequence also has 2+ outputs (llama.cpp's n_outputs). */
    int32_t *cnt = c->seq_cnt, *outs = c->seq_cnt + c->p.n_seqs;
    for (int32_t s = 0; s < c->p.n_seqs; s++) cnt[s] = outs[s] = 0;
    for (int i = 0; i < B; i++) {
        cnt[b->seq[i]]++;
        outs[b->seq[i]] += c->out_row[i] >= 0;
    }
    uint8_t *ord_out = c->ord_in + c->p.n_batch, *ord_rows = ord_out + c->p.n_batch;
    for (int i = 0; i < B; i++) {
        c->ord_in[i] = b->prefill ? b->prefill[i] != 0 : cnt[b->seq[i]] >= 2;
        ord_out[i] = c->ord_in[i] && outs[b->seq[i]] >= 2;
    }

    for (int i = 0; i < B; i++) {
        const em_weight *te = &m->tok_embd;
        te->tt->to_f32(te->data + (size_t)b->token[i] * te->row_bytes, c->x + (size_t)i * E, (int64_t)E);
    }

    int n_rows = B;
    int32_t *rows = c->rows;
    for (int i = 0; i < B; i++) rows[i] = i;

    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const em_layer *L = &m->layers[il];
        const bool last = il == hp->n_layer - 1;
        for (int i = 0; i < n_rows; i++)
            rmsnorm(c->xb + (size_t)i * E, c->x + (size_t)i * E, (const float *)L->attn_norm.data, (int64_t)E,
                    hp->rms_eps);
        /* K and V for every entry (later tokens attend to them) */
        size_t st;
        const uint8_t *xq = prepare_act(c, &L->wk, c->xb, E, n_rows, &st);
        const bool same_act = L->wv.tt->vec_dot_type == L->wk.tt->vec_dot_type &&
                              L->wq.tt->vec_dot_type == L->wk.tt->vec_dot_type;
        if (!last && same_act) { /* Q, K and V in one dispatch */
            const em_weight *w[3] = {&L->wk, &L->wv, &L->wq};
            float *y[3] = {c->k, c->v, c->q};
            const size_t ys[3] = {KV, KV, Q};
            matmul_prepared_n(c, 3, w, xq, st, n_rows, y, ys, c->ord_in);
        } else {
            matmul_prepared(c, &L->wk, xq, st, n_rows, c->k, KV, c->ord_in);
            if (L->wv.tt->vec_dot_type != L->wk.tt->vec_dot_type) xq = prepare_act(c, &L->wv, c->xb, E, n_rows, &st);
            matmul_prepared(c, &L->wv, xq, st, n_rows, c->v, KV, c->ord_in);
        }
        if (last) {
            /* Only entries that want logits go further (as llama.cpp's
             * inp_out_ids): compact their rows to the front. */
            int n = 0;
            for (int r = 0; r < n_rows; r++) {
                if (c->out_row[rows[r]] < 0) continue;
                if (n != r) {
                    memcpy(c->x + (size_t)n * E, c->x + (size_t)r * E, E * sizeof(float));
                    memcpy(c->xb + (size_t)n * E, c->xb + (size_t)r * E, E * sizeof(float));
                }
                rows[n++] = rows[r];
            }
            /* K/V rows stay indexed by batch entry below. */
            for (int r = 0; r < n; r++) ord_rows[r] = c->ord_in[rows[r]];
            if (n > 0) {
                if (L->wq.tt->vec_dot_type != L->wv.tt->vec_dot_type || n != B)
                    xq = prepare_act(c, &L->wq, c->xb, E, n, &st);
                matmul_prepared(c, &L->wq, xq, st, n, c->q, Q, ord_rows);
            }
            /* store K/V of all entries, then continue with the n rows */
            for (int i = 0; i < B; i++) pos_encode(m, L, c->k + (size_t)i * KV, (int)hp->n_head_kv, b->pos[i], false, cs, sn);
            for (int r = 0; r < n; r++) pos_encode(m, L, c->q + (size_t)r * Q, (int)hp->n_head, b->pos[rows[r]], true, cs, sn);
            n_rows = n;
        } else {
            if (!same_act) {
                if (L->wq.tt->vec_dot_type != L->wv.tt->vec_dot_type) xq = prepare_act(c, &L->wq, c->xb, E, n_rows, &st);
                matmul_prepared(c, &L->wq, xq, st, n_rows, c->q, Q, c->ord_in);
            }
            for (int i = 0; i < B; i++) {
                pos_encode(m, L, c->q + (size_t)i * Q, (int)hp->n_head, b->pos[i], true, cs, sn);
                pos_encode(m, L, c->k + (size_t)i * KV, (int)hp->n_head_kv, b->pos[i], false, cs, sn);
            }
        }
        /* write K/V into the cache */
        for (int i = 0; i < B; i++) {
            size_t slot = em_kv_slot(&c->kv, b->seq[i], b->pos[i]);
            const float *kr = c->k + (size_t)i * KV, *vr = c->v + (size_t)i * KV;
            if (c->kv.type == EM_KV_F16) { /* the F16 row's conversion (F16C where present): nearest even */
                const em_type_traits *ht = em_type_traits_get(EM_TYPE_F16);
                ht->from_f32(kr, (em_f16 *)c->kv.k[il] + slot, (int64_t)KV);
                ht->from_f32(vr, (em_f16 *)c->kv.v[il] + slot, (int64_t)KV);
            } else {
                memcpy((float *)c->kv.k[il] + slot, kr, KV * sizeof(float));
                memcpy((float *)c->kv.v[il] + slot, vr, KV * sizeof(float));
            }
        }
        if (n_rows == 0) break;
        attn_task at = {c, b, (int)il, n_rows, rows, 0};
        em_pool_run(c->pool, attn_worker, &at);
        /* llama.cpp selects its output rows after wo: wo keeps the batch order */
        matmul(c, &L->wo, c->att, Q, n_rows, c->xb, E, last ? ord_rows : c->ord_in);
        const uint8_t *ord_ffn = c->ord_in;
        if (last) {
            for (int r = 0; r < n_rows; r++) ord_rows[r] = ord_out[rows[r]];
            ord_ffn = ord_rows;
        }
        for (size_t j = 0; j < (size_t)n_rows * E; j++) c->x[j] += c->xb[j];
        /* FFN */
        for (int r = 0; r < n_rows; r++)
            rmsnorm(c->xb + (size_t)r * E, c->x + (size_t)r * E, (const float *)L->ffn_norm.data, (int64_t)E,
                    hp->rms_eps);
        if (L->is_moe) ffn_moe(c, L, n_rows, ord_ffn);
        else ffn_dense(c, &L->ffn_gate, &L->ffn_up, &L->ffn_down, n_rows, ord_ffn);
        for (size_t j = 0; j < (size_t)n_rows * E; j++) c->x[j] += c->xb[j];
    }
    for (int32_t s = 0; s < c->p.n_seqs; s++)
        if (seq_next[s] >= 0) c->kv.seqs[s].n_pos = seq_next[s];
    if (c->n_out > 0) {
        for (int r = 0; r < c->n_out; r++)
            rmsnorm(c->xb + (size_t)r * E, c->x + (size_t)r * E, (const float *)m->output_norm.data, (int64_t)E,
                    hp->rms_eps);
        /* after the last layer the rows are the outputs, in batch order */
        for (int i = 0, r = 0; i < B; i++)
            if (c->out_row[i] >= 0) ord_rows[r++] = ord_out[i];
        matmul(c, &m->output, c->xb, E, c->n_out, c->logits, hp->n_vocab, ord_rows);
    }
    return 0;
}

const float *em_ctx_logits(const em_ctx *c, int32_t i) {
    if (i < 0 || (uint32_t)i >= c->p.n_batch || c->out_row[i] < 0 || c->out_row[i] >= c->n_out) return NULL;
    return c->logits + (size_t)c->out_row[i] * c->m->hp.n_vocab;
}
