/* contemplate.c - self-consistency decoding: one prefill, N forked branches
 * decoded as one batch per step, answers extracted and aggregated. Uses only
 * the public API, so it runs on any context (CLI or server). */
#include "ember.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/err.h"
#include "../sample/sampler.h"
#include "aggregate.h"
#include "answer.h"

#define ERR(e) ((em_err *)(void *)(e))
#define PIECE_MAX 256

typedef struct {
    ember_sampler *s;
    em_stop *stop;
    char *text;
    size_t len, cap;
    int32_t last;      /* token to feed next */
    int32_t n_pos;     /* sequence length */
    double lp_sum;
    bool done;
} branch_state;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int append(branch_state *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) return -1;
        b->text = t;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = 0;
    return 0;
}

void ember_contemplation_free(ember_contemplation *r) {
    if (!r) return;
    for (int32_t i = 0; i < r->n_branches && r->branches; i++) free(r->branches[i].text);
    free(r->branches);
    free(r->answer);
    memset(r, 0, sizeof *r);
}

/* Takes one token for branch i from logits: sample, record, stream text. */
static void take_token(const ember_model *m, branch_state *b, int32_t i, const float *logits, int32_t max_tokens,
                       ember_branch *out, ember_branch_cb cb, void *user) {
    float lp = 0;
    int32_t t = ember_sampler_sample(b->s, logits, &lp);
    ember_sampler_accept(b->s, t);
    out->n_tokens++;
    b->lp_sum += em_agg_lp_term(lp);
    b->last = t;
    if (ember_token_is_eog(m, t)) {
        out->finish = "eos";
        b->done = true;
        return;
    }
    char piece[PIECE_MAX];
    int n = ember_token_to_piece(m, t, false, piece, sizeof piece);
    if (n < 0) n = 0;
    if (n > PIECE_MAX) n = PIECE_MAX;
    const char *emit;
    size_t emit_len;
    bool hit = em_stop_feed(b->stop, piece, (size_t)n, &emit, &emit_len);
    if (emit_len) {
        append(b, emit, emit_len);
        if (cb) cb(i, emit, emit_len, false, user);
    }
    if (hit) {
        out->finish = "stop";
        b->done = true;
    } else if (out->n_tokens >= max_tokens) {
        out->finish = "length";
        b->done = true;
    }
}

static void finish_branch(branch_state *b, int32_t i, ember_branch *out, ember_branch_cb cb, void *user) {
    if (strcmp(out->finish, "stop") != 0) {
        const char *rest;
        size_t n;
        em_stop_flush(b->stop, &rest, &n);
        if (n) {
            append(b, rest, n);
            if (cb) cb(i, rest, n, false, user);
        }
    }
    out->mean_logprob = em_agg_mean_lp(b->lp_sum, out->n_tokens);
    if (cb) cb(i, NULL, 0, true, user);
}

int ember_contemplate(ember_ctx *c, const int32_t *prompt, size_t n_prompt, const ember_contemplate_params *p,
                      ember_branch_cb cb, void *user, ember_contemplation *out, ember_error *err) {
    memset(out, 0, sizeof *out);
    const double t0 = now_ms();
    const int32_t N = p->n_branches;
    const ember_model *m = ember_ctx_model(c);
    if (N < 1 || N > ember_ctx_n_seqs(c))
        return em_fail(ERR(err), "contemplation needs 1..%d branches (the context's sequences), got %d",
                       ember_ctx_n_seqs(c), N);
    if (p->max_branch_tokens < 1) return em_fail(ERR(err), "max_branch_tokens must be at least 1");
    if (n_prompt == 0) return em_fail(ERR(err), "empty prompt");
    const uint32_t n_ctx = ember_ctx_n_ctx(c);
    if (n_prompt + 1 > n_ctx)
        return em_fail(ERR(err), "prompt of %zu tokens does not fit the context of %u", n_prompt, n_ctx);
    int rc = -1;
    branch_state *bs = calloc((size_t)N, sizeof *bs);
    int32_t *tok = malloc(sizeof(int32_t) * (n_prompt > (size_t)N ? n_prompt : (size_t)N) * 3);
    int8_t *want = calloc(n_prompt > (size_t)N ? n_prompt : (size_t)N, 1);
    em_answer *answers = calloc((size_t)N, sizeof *answers);
    bool *done = calloc((size_t)N, sizeof *done);
    out->branches = calloc((size_t)N, sizeof *out->branches);
    out->n_branches = N;
    out->n_prompt = (int32_t)n_prompt;
    out->winner = -1;
    if (!bs || !tok || !want || !answers || !done || !out->branches) {
        em_fail(ERR(err), "out of memory");
        goto done;
    }
    int32_t *pos = tok + (n_prompt > (size_t)N ? n_prompt : (size_t)N);
    int32_t *seq = pos + (n_prompt > (size_t)N ? n_prompt : (size_t)N);
    for (int32_t i = 0; i < N; i++) {
        ember_sampler_params sp = p->sampling;
        sp.seed = p->sampling.seed + (uint64_t)i;
        bs[i].s = ember_sampler_new(&sp, ember_model_n_vocab(m));
        bs[i].stop = em_stop_new(p->stops, p->n_stops);
        out->branches[i].finish = "length";
        if (!bs[i].s || !bs[i].stop) {
            em_fail(ERR(err), "cannot create sampler or stop matcher (at most 16 stop strings of 256 bytes)");
            goto done;
        }
        for (size_t k = 0; k < n_prompt; k++) ember_sampler_accept(bs[i].s, prompt[k]);
        ember_seq_truncate(c, i, 0);
    }
    /* one prefill of the prompt in sequence 0, in batches of n_batch */
    const uint32_t nb = ember_ctx_n_batch(c);
    for (size_t i0 = 0; i0 < n_prompt; i0 += nb) {
        int32_t n = (int32_t)(n_prompt - i0 < nb ? n_prompt - i0 : nb);
        for (int32_t j = 0; j < n; j++) { pos[j] = (int32_t)(i0 + j); seq[j] = 0; }
        ember_batch b = {.n = n, .token = prompt + i0, .pos = pos, .seq = seq};
        if (ember_decode(c, &b, err)) goto done;
    }
    const float *logits0 = ember_logits(c, (int32_t)((n_prompt - 1) % nb));
    /* every branch samples its first token from the same distribution, then
     * forks the prompt's blocks (copy-on-write: the partly filled last block
     * is copied on the branch's first write) */
    float *first = malloc(sizeof(float) * (size_t)ember_model_n_vocab(m));
    if (!first) { em_fail(ERR(err), "out of memory"); goto done; }
    memcpy(first, logits0, sizeof(float) * (size_t)ember_model_n_vocab(m));
    for (int32_t i = 0; i < N; i++) {
        if (i > 0 && ember_seq_fork(c, 0, i, (int32_t)n_prompt, err)) { free(first); goto done; }
        bs[i].n_pos = (int32_t)n_prompt;
        take_token(m, &bs[i], i, first, p->max_branch_tokens, &out->branches[i], cb, user);
        out->tokens_generated++;
    }
    free(first);
    out->kv_blocks_peak = ember_kv_blocks_used(c);
    const bool early = p->early_stop && p->aggregate == EMBER_AGG_VOTE;
    for (;;) {
        /* finished branches: extract answers; maybe decide early */
        int running = 0;
        for (int32_t i = 0; i < N; i++) {
            if (bs[i].done && !done[i]) {
                done[i] = true;
                finish_branch(&bs[i], i, &out->branches[i], cb, user);
                em_answer_extract(bs[i].text ? bs[i].text : "", bs[i].len, &answers[i]);
            }
            running += !done[i];
        }
        if (!running) break;
        if (early && em_answer_decided(answers, done, N)) {
            for (int32_t i = 0; i < N; i++)
                if (!done[i]) {
                    out->branches[i].finish = "cancelled";
                    bs[i].done = done[i] = true;
                    finish_branch(&bs[i], i, &out->branches[i], cb, user);
                    em_answer_extract(bs[i].text ? bs[i].text : "", bs[i].len, &answers[i]);
                    answers[i].kind = EM_ANS_NONE; /* a cancelled branch does not vote */
                }
            break;
        }
        /* one step: every running branch's last token, one batch */
        int32_t n = 0;
        for (int32_t i = 0; i < N; i++) {
            if (done[i]) continue;
            if ((uint32_t)bs[i].n_pos >= n_ctx) { /* context full */
                bs[i].done = true;
                continue;
            }
            tok[n] = bs[i].last;
            pos[n] = bs[i].n_pos;
            seq[n] = i;
            want[n] = 1;
            n++;
        }
        if (n == 0) continue;
        ember_batch b = {.n = n, .token = tok, .pos = pos, .seq = seq, .want_logits = want};
        if (ember_decode(c, &b, err)) goto done;
        int32_t used = ember_kv_blocks_used(c);
        if (used > out->kv_blocks_peak) out->kv_blocks_peak = used;
        for (int32_t j = 0; j < n; j++) {
            int32_t i = seq[j];
            bs[i].n_pos++;
            take_token(m, &bs[i], i, ember_logits(c, j), p->max_branch_tokens, &out->branches[i], cb, user);
            out->tokens_generated++;
        }
    }
    for (int32_t i = 0; i < N; i++) {
        ember_branch *br = &out->branches[i];
        br->text = bs[i].text ? bs[i].text : calloc(1, 1);
        br->len = bs[i].len;
        bs[i].text = NULL;
        snprintf(br->answer, sizeof br->answer, "%s", answers[i].kind == EM_ANS_NONE ? "" : answers[i].text);
    }
    double *lps = malloc(sizeof(double) * (size_t)N);
    int32_t *ntok = malloc(sizeof(int32_t) * (size_t)N);
    if (!lps || !ntok) { free(lps); free(ntok); em_fail(ERR(err), "out of memory"); goto done; }
    for (int32_t i = 0; i < N; i++) {
        lps[i] = out->branches[i].mean_logprob;
        ntok[i] = out->branches[i].n_tokens;
    }
    em_agg agg;
    em_agg_pick(p->aggregate, answers, lps, ntok, N, &agg);
    free(lps);
    free(ntok);
    out->winner = agg.winner;
    out->agreement = agg.agreement;
    out->answer = strdup(agg.answer);
    if (!out->answer) { em_fail(ERR(err), "out of memory"); goto done; }
    if (p->aggregate == EMBER_AGG_SYNTHESIZE) {
        /* one more pass: the model reads the candidates after the prompt and
         * writes the final answer greedily, in sequence 0 (aggregate.h) */
        size_t slen = 0;
        char *suffix = em_agg_synth_suffix(answers, N, &slen);
        if (!suffix) { em_fail(ERR(err), "out of memory"); goto done; }
        int32_t *sids = NULL;
        size_t ns = 0;
        int trc = ember_tokenize(m, suffix, slen, false, false, &sids, &ns, err);
        free(suffix);
        if (trc) goto done;
        if (ns == 0 || n_prompt + ns + 1 > n_ctx) {
            free(sids);
            em_fail(ERR(err), "the synthesis prompt (%zu tokens) does not fit the context of %u", n_prompt + ns, n_ctx);
            goto done;
        }
        for (int32_t i = 1; i < N; i++) ember_seq_truncate(c, i, 0);
        ember_seq_truncate(c, 0, (int32_t)n_prompt);
        ember_sampler_params gp = ember_sampler_defaults();
        gp.temperature = 0;
        ember_sampler *gs = ember_sampler_new(&gp, ember_model_n_vocab(m));
        uint8_t *pre = malloc(nb);
        int32_t *sp = malloc(sizeof(int32_t) * nb * 2);
        char *text = NULL;
        size_t tlen = 0;
        FILE *tf = open_memstream(&text, &tlen);
        int grc = !gs || !pre || !sp || !tf ? -1 : 0;
        if (grc) em_fail(ERR(err), "out of memory");
        /* the prompt is already cached: only the suffix is evaluated, as
         * prompt tokens (prefill order), in batches of n_batch */
        int32_t pp = (int32_t)n_prompt, gen = 0, maxg = p->synth_max_tokens > 0 ? p->synth_max_tokens : EM_SYNTH_MAX_TOKENS;
        int32_t last = 0;
        for (size_t k0 = 0; !grc && k0 < ns; k0 += nb) {
            int32_t n = (int32_t)(ns - k0 < nb ? ns - k0 : nb);
            for (int32_t j = 0; j < n; j++) {
                sp[j] = pp + j;
                sp[nb + j] = 0;
                pre[j] = 1;
            }
            ember_batch b = {.n = n, .token = sids + k0, .pos = sp, .seq = sp + nb, .prefill = pre};
            grc = ember_decode(c, &b, err);
            pp += n;
            last = n - 1;
        }
        free(sids);
        while (!grc && gen < maxg && (uint32_t)pp < n_ctx) {
            int32_t t = ember_sampler_sample(gs, ember_logits(c, last), NULL), s0 = 0;
            ember_sampler_accept(gs, t);
            gen++;
            if (ember_token_is_eog(m, t)) break;
            char piece[PIECE_MAX];
            int np = ember_token_to_piece(m, t, false, piece, sizeof piece);
            if (np < 0) np = 0;
            if (np > PIECE_MAX) np = PIECE_MAX;
            fwrite(piece, 1, (size_t)np, tf);
            if (em_agg_synth_ends(piece, (size_t)np, gen)) break;
            ember_batch b = {.n = 1, .token = &t, .pos = &pp, .seq = &s0};
            grc = ember_decode(c, &b, err);
            pp++;
            last = 0;
        }
        if (tf) fclose(tf);
        free(pre);
        free(sp);
        ember_sampler_free(gs);
        out->tokens_generated += gen;
        if (grc) { free(text); goto done; }
        em_agg_synth_result(text, text ? tlen : 0, answers, N, &agg);
        free(text);
        free(out->answer);
        out->answer = strdup(agg.answer);
        out->winner = agg.winner;
        out->agreement = agg.agreement;
        if (!out->answer) { em_fail(ERR(err), "out of memory"); goto done; }
    }
    rc = 0;
done:
    for (int32_t i = 0; bs && i < N; i++) {
        ember_sampler_free(bs[i].s);
        em_stop_free(bs[i].stop);
        free(bs[i].text);
    }
    free(bs);
    free(tok);
    free(want);
    free(answers);
    free(done);
    out->ms = now_ms() - t0;
    if (rc) ember_contemplation_free(out);
    return rc;
}
