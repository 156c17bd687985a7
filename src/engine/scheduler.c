/* scheduler.c - continuous batching with chunked prefill, a prefix cache and
 * preemption over one ember_ctx (see scheduler.h). */
#include "scheduler.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../sample/sampler.h"
#include "aggregate.h"

/* ember_generate evaluates a prompt in chunks of the context's default
 * n_batch; a chunk of a single token runs in decode order. Prompt tokens
 * get the same flags here so that results match `ember run` bit for bit. */
#define RUN_BATCH 512

const double em_sched_ttft_bounds[EM_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1.0,  2.5,   5.0,  10.0, 30.0};
const double em_sched_itl_bounds[EM_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

/* J_FORK: a contemplation branch holding a sequence while another branch of
 * its group prefills the prompt; J_WAIT: a synthesis pass waiting for its
 * branches (in no list). */
enum { J_QUEUED, J_PREFILL, J_GEN, J_DONE, J_FORK, J_WAIT };
enum { S_FREE, S_ACTIVE, S_CACHE };

typedef struct em_job {
    em_request *req;
    int idx;
    int32_t *prompt;
    int32_t n_prompt;
    uint64_t seed;
    int state;
    int32_t seq;       /* sequence id while running, else -1 */
    int32_t n_past;    /* positions of seq holding valid K/V */
    int32_t next_tok;  /* J_GEN: the token to evaluate next */
    int32_t n_entries; /* batch entries this step */
    ember_sampler *smp;
    em_stop *stop;
    unsigned char u8[4]; /* incomplete UTF-8 sequence held back */
    int n_u8;
    int32_t *gen; /* every token sampled (kept across a restart) */
    int32_t n_gen, cap_gen;
    int32_t replay;    /* after a restart: gen[0..replay) are regenerated silently */
    int32_t n_sampled; /* tokens sampled in the current run */
    bool started;      /* admitted at least once */
    bool stop_hit;     /* ended by a stop string (held-back text is dropped, not flushed) */
    bool fork_counted; /* contemplation branch: its prompt was counted as served from shared blocks */
    int32_t base;      /* synthesis pass: the length of the original prompt (prefix of prompt) */
    uint64_t order;    /* arrival order; the youngest is preempted first */
    double t_last;
    struct em_job *next; /* pending list */
} em_job;

typedef struct seq_slot {
    int state;
    int32_t *tokens; /* S_CACHE: the cached prompt prefix */
    int32_t n;
    uint64_t last_used;
    em_job *job; /* S_ACTIVE */
} seq_slot;

struct em_sched {
    const ember_model *m;
    ember_ctx *ctx;
    em_sched_params p;
    int32_t n_vocab, n_seqs, n_batch;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    bool stop, draining;
    const char *cancel_reason;
    em_job *in_head, *in_tail;
    int n_waiting, n_running_pub;
    uint64_t order;
    /* scheduler thread only */
    em_job *pend_head;
    em_job **running;
    int n_running;
    seq_slot *seqs;
    uint64_t tick;
    int32_t *b_tok, *b_pos, *b_seq;
    int8_t *b_want;
    uint8_t *b_pre;
    em_job **b_job;
    char *piece;
    size_t piece_cap;
    float *lg;       /* logits scratch (ignore_eos) */
    int32_t *eog;    /* end-of-generation token ids */
    int32_t n_eog;
    /* statistics */
    pthread_mutex_t st_mu;
    em_sched_stats st;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint8_t prefill_flag(int32_t n_prompt, int32_t pos) { return !(pos == n_prompt - 1 && n_prompt % RUN_BATCH == 1); }
/* Prompt positions whose K/V were computed in prefill order (reusable). */
static int32_t cacheable(int32_t n_prompt) { return n_prompt - (n_prompt % RUN_BATCH == 1); }

static bool is_branch(const em_job *j) { return j->req->n_branches > 0 && j->idx < j->req->n_branches; }
static bool is_synth(const em_job *j) { return j->req->n_branches > 0 && j->idx >= j->req->n_branches; }
/* A synthesis pass keeps the original prompt's flags for its positions and
 * evaluates the suffix as prompt tokens (aggregate.h). */
static uint8_t job_prefill_flag(const em_job *j, int32_t pos) {
    if (j->base > 0) return pos < j->base ? prefill_flag(j->base, pos) : 1;
    return prefill_flag(j->n_prompt, pos);
}
static int32_t job_cacheable(const em_job *j) { return cacheable(j->base > 0 ? j->base : j->n_prompt); }

static int32_t lcp(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    int32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static int32_t free_blocks(const em_sched *s) {
    return ember_kv_blocks_total(s->ctx) - ember_kv_blocks_used(s->ctx);
}

/* ------------------------------------------------------------ requests -- */

static em_request *request_alloc(int n_choices, const em_gen_params *p) {
    em_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->n_choices = n_choices;
    r->p = *p;
    for (size_t i = 0; i < EM_SCHED_MAX_STOPS; i++) r->p.stops[i] = NULL;
    r->out = calloc((size_t)n_choices, sizeof *r->out);
    r->jobs = calloc((size_t)n_choices, sizeof *r->jobs);
    bool ok = r->out && r->jobs;
    for (size_t i = 0; ok && i < p->n_stops; i++) ok = (r->p.stops[i] = strdup(p->stops[i] ? p->stops[i] : "")) != NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancel, 0);
    if (!ok) {
        em_request_release(r);
        return NULL;
    }
    for (int i = 0; i < n_choices; i++) {
        r->jobs[i].req = r;
        r->jobs[i].idx = i;
        r->jobs[i].seq = -1;
    }
    r->agg_winner = -1;
    return r;
}

em_request *em_request_new(int n_choices, const em_gen_params *p) {
    if (n_choices < 1 || n_choices > EM_SCHED_MAX_CHOICES || !p || p->n_stops > EM_SCHED_MAX_STOPS) return NULL;
    return request_alloc(n_choices, p);
}

em_request *em_request_new_contemplate(const em_gen_params *p, int n_branches, ember_aggregate aggregate,
                                       bool early_stop, int32_t synth_max_tokens, const int32_t *ids, size_t n_ids,
                                       uint64_t seed) {
    if (n_branches < 1 || n_branches > EM_SCHED_MAX_CHOICES || !p || p->n_stops > EM_SCHED_MAX_STOPS ||
        p->max_tokens < 1 || p->top_logprobs >= 0 || !ids || n_ids == 0 || n_ids > (size_t)INT32_MAX / 2 ||
        (aggregate != EMBER_AGG_VOTE && aggregate != EMBER_AGG_BEST && aggregate != EMBER_AGG_SYNTHESIZE))
        return NULL;
    const bool synth = aggregate == EMBER_AGG_SYNTHESIZE;
    em_request *r = request_alloc(n_branches + synth, p);
    if (!r) return NULL;
    r->n_branches = n_branches;
    r->aggregate = aggregate;
    r->early_stop = early_stop && aggregate == EMBER_AGG_VOTE;
    r->synth_max_tokens = synth_max_tokens > 0 ? synth_max_tokens : EM_SYNTH_MAX_TOKENS;
    bool ok = true;
    for (int i = 0; ok && i < n_branches; i++) ok = !em_request_set_choice(r, i, ids, n_ids, seed + (uint64_t)i);
    if (ok && synth) {
        /* the synthesis pass: the prompt now, the candidates appended later */
        em_job *j = &r->jobs[n_branches];
        ok = (j->prompt = malloc(sizeof(int32_t) * n_ids)) != NULL;
        if (ok) {
            memcpy(j->prompt, ids, sizeof(int32_t) * n_ids);
            j->n_prompt = j->base = (int32_t)n_ids;
            j->state = J_WAIT;
        }
    }
    if (!ok) {
        em_request_release(r);
        return NULL;
    }
    return r;
}

int em_request_set_choice(em_request *r, int i, const int32_t *ids, size_t n_ids, uint64_t seed) {
    if (!r || i < 0 || i >= r->n_choices || n_ids > (size_t)INT32_MAX / 2) return -1;
    em_job *j = &r->jobs[i];
    int32_t *cp = malloc(sizeof(int32_t) * (n_ids ? n_ids : 1));
    if (!cp) return -1;
    if (n_ids) memcpy(cp, ids, sizeof(int32_t) * n_ids);
    r->n_prompt_total -= j->n_prompt;
    free(j->prompt);
    j->prompt = cp;
    j->n_prompt = (int32_t)n_ids;
    j->seed = seed;
    r->n_prompt_total += j->n_prompt;
    return 0;
}

void em_request_release(em_request *r) {
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    for (int i = 0; r->jobs && i < r->n_choices; i++) {
        em_job *j = &r->jobs[i];
        free(j->prompt);
        free(j->gen);
        ember_sampler_free(j->smp);
        em_stop_free(j->stop);
    }
    for (int i = 0; r->out && i < r->n_choices; i++) {
        free(r->out[i].text);
        free(r->out[i].lp);
        free(r->out[i].raw);
    }
    for (size_t i = 0; i < EM_SCHED_MAX_STOPS; i++) free(r->p.stops[i]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->jobs);
    free(r->out);
    free(r);
}

void em_request_cancel(em_request *r) {
    if (!r) return;
    atomic_store(&r->cancel, 1);
    em_sched *s = r->sched;
    if (s) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

uint64_t em_request_wait(em_request *r, uint64_t seen, int timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (r->version == seen && !em_request_done(r))
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    uint64_t v = r->version;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* ------------------------------------------------------ output helpers -- */

static int out_reserve(em_choice_out *o, size_t extra) {
    if (o->len + extra + 1 <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + extra + 1) cap *= 2;
    char *t = realloc(o->text, cap);
    if (!t) return -1;
    o->text = t;
    o->cap = cap;
    return 0;
}

static void out_bytes(em_choice_out *o, const char *b, size_t n) {
    if (!n || out_reserve(o, n)) return;
    memcpy(o->text + o->len, b, n);
    o->len += n;
    o->text[o->len] = 0;
}

/* Contemplation: the raw bytes answers are extracted from. */
static void raw_bytes(const em_request *r, em_choice_out *o, const char *b, size_t n) {
    if (!r->n_branches || !n) return;
    if (o->raw_len + n + 1 > o->raw_cap) {
        size_t cap = o->raw_cap ? o->raw_cap : 256;
        while (cap < o->raw_len + n + 1) cap *= 2;
        char *t = realloc(o->raw, cap);
        if (!t) return;
        o->raw = t;
        o->raw_cap = cap;
    }
    memcpy(o->raw + o->raw_len, b, n);
    o->raw_len += n;
    o->raw[o->raw_len] = 0;
}

/* Length of the valid UTF-8 sequence starting at p (n bytes available):
 * > 0 complete, 0 incomplete but valid so far, -1 invalid. */
static int utf8_seq(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        unsigned b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
    }
    return len;
}

/* Appends bytes to the choice's text as valid UTF-8: complete sequences go
 * out, an incomplete tail waits for the next piece (or becomes U+FFFD at the
 * end), invalid bytes become U+FFFD. */
static void out_utf8(em_job *j, em_choice_out *o, const char *data, size_t len, bool final) {
    unsigned char stackbuf[512];
    size_t n = (size_t)j->n_u8 + len;
    unsigned char *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return;
    memcpy(buf, j->u8, (size_t)j->n_u8);
    if (len) memcpy(buf + j->n_u8, data, len);
    j->n_u8 = 0;
    size_t i = 0, start = 0;
    while (i < n) {
        int k = utf8_seq(buf + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (k == 0 && !final) { /* incomplete tail: keep it */
            out_bytes(o, (const char *)buf + start, i - start);
            j->n_u8 = (int)(n - i);
            memcpy(j->u8, buf + i, n - i);
            start = i = n;
            break;
        }
        out_bytes(o, (const char *)buf + start, i - start);
        out_bytes(o, "\xEF\xBF\xBD", 3);
        i++;
        start = i;
    }
    out_bytes(o, (const char *)buf + start, i - start);
    if (buf != stackbuf) free(buf);
}

/* log-softmax of the raw logits at tok, plus the n_top most likely tokens
 * (ties: lower id first). */
static void compute_lp(const float *lg, int32_t n_vocab, int32_t tok, int n_top, em_lp_entry *e) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (lg[i] > mx) mx = lg[i];
    double sum = 0.0;
    if (isfinite(mx))
        for (int32_t i = 0; i < n_vocab; i++)
            if (!isnan(lg[i])) sum += exp((double)lg[i] - (double)mx);
    const double lse = isfinite(mx) && sum > 0 ? (double)mx + log(sum) : 0.0;
#define LP(i) (isnan(lg[i]) || !isfinite(mx) ? -INFINITY : (float)((double)lg[i] - lse))
    e->token = tok;
    e->logprob = LP(tok);
    e->n_top = 0;
    if (n_top > EM_SCHED_MAX_TOP_LOGPROBS) n_top = EM_SCHED_MAX_TOP_LOGPROBS;
    if (n_top > n_vocab) n_top = n_vocab;
    for (int32_t i = 0; i < n_vocab && n_top > 0; i++) {
        float v = isnan(lg[i]) ? -INFINITY : lg[i];
        int k = e->n_top;
        if (k == n_top) {
            float last = e->top_lp[k - 1];
            if (!(v > last)) continue;
            k--;
        } else {
            e->n_top++;
        }
        while (k > 0 && v > e->top_lp[k - 1]) {
            e->top_lp[k] = e->top_lp[k - 1];
            e->top_id[k] = e->top_id[k - 1];
            k--;
        }
        e->top_lp[k] = v;
        e->top_id[k] = i;
    }
    for (int k = 0; k < e->n_top; k++) e->top_lp[k] = LP(e->top_id[k]);
#undef LP
}

/* ----------------------------------------------------------- the pool -- */

static void hist_add(em_hist *h, const double *bounds, double v) {
    int b = 0;
    while (b < EM_HIST_BUCKETS && v > bounds[b]) b++;
    h->count[b]++;
    h->sum += v;
    h->n++;
}

static void running_remove(em_sched *s, em_job *j) {
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == j) {
            memmove(s->running + i, s->running + i + 1, sizeof(em_job *) * (size_t)(s->n_running - i - 1));
            s->n_running--;
            return;
        }
}

static void running_insert(em_sched *s, em_job *j) {
    int i = s->n_running;
    while (i > 0 && s->running[i - 1]->order > j->order) {
        s->running[i] = s->running[i - 1];
        i--;
    }
    s->running[i] = j;
    s->n_running++;
}

static void slot_clear(em_sched *s, int32_t sid) {
    seq_slot *sl = &s->seqs[sid];
    ember_seq_truncate(s->ctx, sid, 0);
    free(sl->tokens);
    sl->tokens = NULL;
    sl->n = 0;
    sl->job = NULL;
    sl->state = S_FREE;
}

/* Evicts the least recently used cache entry other than keep. */
static bool evict_lru(em_sched *s, int32_t keep) {
    int32_t best = -1;
    for (int32_t i = 0; i < s->n_seqs; i++)
        if (s->seqs[i].state == S_CACHE && i != keep && (best < 0 || s->seqs[i].last_used < s->seqs[best].last_used))
            best = i;
    if (best < 0) return false;
    slot_clear(s, best);
    return true;
}

/* A job gives up its sequence; its evaluated prompt prefix stays as a cache
 * entry (unless another entry already holds it). */
static void release_seq(em_sched *s, em_job *j) {
    int32_t sid = j->seq;
    if (sid < 0) return;
    j->seq = -1;
    seq_slot *sl = &s->seqs[sid];
    int32_t keep = j->state == J_GEN ? job_cacheable(j) : j->n_past;
    if (keep > job_cacheable(j)) keep = job_cacheable(j);
    if (keep > j->n_past) keep = j->n_past;
    sl->job = NULL;
    if (keep <= 0) {
        slot_clear(s, sid);
        return;
    }
    for (int32_t i = 0; i < s->n_seqs; i++) {
        seq_slot *o = &s->seqs[i];
        if (o->state != S_CACHE) continue;
        int32_t l = lcp(o->tokens, o->n, j->prompt, keep);
        if (l >= keep) { /* already cached */
            o->last_used = ++s->tick;
            slot_clear(s, sid);
            return;
        }
        if (l >= o->n) slot_clear(s, i); /* the new entry extends it */
    }
    int32_t *t = malloc(sizeof(int32_t) * (size_t)keep);
    if (!t) {
        slot_clear(s, sid);
        return;
    }
    memcpy(t, j->prompt, sizeof(int32_t) * (size_t)keep);
    ember_seq_truncate(s->ctx, sid, keep);
    sl->state = S_CACHE;
    sl->tokens = t;
    sl->n = keep;
    sl->last_used = ++s->tick;
}

static bool normal_end(const char *reason) { return !strcmp(reason, "stop") || !strcmp(reason, "length"); }

/* Under r->mu: contemplation choice j ended (o->finish is set). A branch's
 * answer is extracted; after the last branch the answers are aggregated, and
 * with synthesize the synthesis pass is returned: to be queued (*spawn) or,
 * if a branch ended badly, to be finished with the same reason. */
static em_job *contemplation_ended(em_request *r, em_job *j, const char *reason, bool *spawn) {
    const int N = r->n_branches;
    em_choice_out *o = &r->out[j->idx];
    em_answer ans[EM_SCHED_MAX_CHOICES];
    double lps[EM_SCHED_MAX_CHOICES];
    int32_t nt[EM_SCHED_MAX_CHOICES];
    em_agg a;
    *spawn = false;
    if (j->idx >= N) { /* the synthesis pass */
        if (!normal_end(reason)) return NULL;
        for (int i = 0; i < N; i++) ans[i] = r->out[i].answer;
        em_agg_synth_result(o->raw, o->raw_len, ans, N, &a);
        r->agg_winner = a.winner;
        r->agg_agreement = a.agreement;
        memcpy(r->agg_answer, a.answer, sizeof a.answer);
        r->agg_ready = true;
        return NULL;
    }
    if (!strcmp(reason, "early_stop")) {
        memset(&o->answer, 0, sizeof o->answer); /* a cancelled branch does not vote */
    } else {
        em_answer_extract(o->raw ? o->raw : "", o->raw_len, &o->answer);
        if (normal_end(reason)) r->c_check = true;
    }
    bool ok = true;
    for (int i = 0; i < N; i++) {
        const char *f = r->out[i].finish;
        if (!f) return NULL; /* branches still running */
        ok &= normal_end(f) || !strcmp(f, "early_stop");
    }
    for (int i = 0; i < N; i++) {
        ans[i] = r->out[i].answer;
        nt[i] = r->out[i].n_gen;
        lps[i] = em_agg_mean_lp(r->out[i].lp_sum, r->out[i].n_gen);
    }
    em_agg_pick(r->aggregate, ans, lps, nt, N, &a);
    r->agg_winner = a.winner;
    r->agg_agreement = a.agreement;
    memcpy(r->agg_answer, a.answer, sizeof a.answer);
    if (r->aggregate != EMBER_AGG_SYNTHESIZE) {
        r->agg_ready = ok;
        return NULL;
    }
    *spawn = ok;
    return &r->jobs[N];
}

static void finish_job(em_sched *s, em_job *j, const char *reason, const char *errmsg);

/* Queues the synthesis pass: the prompt plus the candidate answers. */
static void spawn_synthesis(em_sched *s, em_job *sj) {
    em_request *r = sj->req;
    const int N = r->n_branches;
    em_answer ans[EM_SCHED_MAX_CHOICES];
    for (int i = 0; i < N; i++) ans[i] = r->out[i].answer; /* final: written by this thread only */
    size_t slen = 0, ns = 0;
    char *suffix = em_agg_synth_suffix(ans, N, &slen);
    int32_t *sids = NULL;
    ember_error err;
    if (!suffix || ember_tokenize(s->m, suffix, slen, false, false, &sids, &ns, &err)) {
        free(suffix);
        finish_job(s, sj, "error", "cannot build the synthesis prompt");
        return;
    }
    free(suffix);
    const int64_t total = (int64_t)sj->base + (int64_t)ns;
    int32_t *prompt = ns && total < s->p.n_ctx_seq ? malloc(sizeof(int32_t) * (size_t)total) : NULL;
    if (!prompt) {
        char msg[160];
        snprintf(msg, sizeof msg, "the synthesis prompt (%lld tokens) does not fit the context of %d", (long long)total,
                 s->p.n_ctx_seq);
        free(sids);
        finish_job(s, sj, "error", msg);
        return;
    }
    memcpy(prompt, sj->prompt, sizeof(int32_t) * (size_t)sj->base);
    memcpy(prompt + sj->base, sids, sizeof(int32_t) * ns);
    free(sids);
    free(sj->prompt);
    sj->prompt = prompt;
    sj->n_prompt = (int32_t)total;
    sj->state = J_QUEUED;
    sj->order = r->jobs[0].order; /* as old as its request */
    sj->next = s->pend_head;
    s->pend_head = sj;
    pthread_mutex_lock(&s->mu);
    s->n_waiting++;
    pthread_mutex_unlock(&s->mu);
}

static void finish_job(em_sched *s, em_job *j, const char *reason, const char *errmsg) {
    em_request *r = j->req;
    em_choice_out *o = &r->out[j->idx];
    bool was_waiting = j->state == J_QUEUED;
    if (j->seq >= 0) release_seq(s, j);
    running_remove(s, j);
    em_job *synth = NULL;
    bool spawn = false;
    pthread_mutex_lock(&r->mu);
    if (j->stop && !j->stop_hit) { /* the end of text or a limit: held-back text was not a stop string */
        const char *b;
        size_t n;
        em_stop_flush(j->stop, &b, &n);
        out_utf8(j, o, b, n, false);
        raw_bytes(r, o, b, n);
    }
    out_utf8(j, o, NULL, 0, true);
    o->finish = reason;
    if (errmsg && !r->error[0]) snprintf(r->error, sizeof r->error, "%s", errmsg);
    if (r->n_branches) synth = contemplation_ended(r, j, reason, &spawn);
    r->n_done++;
    r->version++;
    bool all = em_request_done(r);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    ember_sampler_free(j->smp);
    j->smp = NULL;
    em_stop_free(j->stop);
    j->stop = NULL;
    j->state = J_DONE;
    pthread_mutex_lock(&s->st_mu);
    if (!strcmp(reason, "stop")) s->st.finished_stop++;
    else if (!strcmp(reason, "length")) s->st.finished_length++;
    else if (!strcmp(reason, "cancelled") || !strcmp(reason, "early_stop")) s->st.finished_cancelled++;
    else if (!strcmp(reason, "timeout")) s->st.finished_timeout++;
    else s->st.finished_other++;
    pthread_mutex_unlock(&s->st_mu);
    pthread_mutex_lock(&s->mu);
    if (was_waiting) s->n_waiting--;
    s->n_running_pub = s->n_running;
    pthread_mutex_unlock(&s->mu);
    if (all) em_request_release(r); /* the scheduler's reference */
    else if (synth && spawn) spawn_synthesis(s, synth);
    else if (synth) {
        /* a branch ended badly: so does the synthesis pass, the same way */
        const char *why = reason;
        for (int i = 0; i < r->n_branches; i++)
            if (!normal_end(r->out[i].finish) && strcmp(r->out[i].finish, "early_stop") != 0) {
                why = r->out[i].finish;
                break;
            }
        finish_job(s, synth, why, NULL);
    }
}

static void pending_remove(em_sched *s, em_job *j) {
    for (em_job **pp = &s->pend_head; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
}

/* Frees a running job's blocks and puts it back at the head of the queue;
 * it will regenerate its tokens silently when it runs again. */
static void preempt_one(em_sched *s, em_job *j) {
    release_seq(s, j);
    running_remove(s, j);
    ember_sampler_free(j->smp);
    j->smp = NULL;
    j->replay = j->n_gen;
    j->state = J_QUEUED;
    j->next = s->pend_head;
    s->pend_head = j;
    pthread_mutex_lock(&s->mu);
    s->n_waiting++;
    s->n_running_pub = s->n_running;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->st_mu);
    s->st.preemptions++;
    pthread_mutex_unlock(&s->st_mu);
}

/* A contemplation branch goes with its whole group (the branches decode in
 * lockstep, so that early stopping decides at the same step as
 * ember_contemplate): the group is queued again in index order. */
static void preempt(em_sched *s, em_job *j) {
    if (!is_branch(j)) {
        preempt_one(s, j);
        return;
    }
    em_request *r = j->req;
    for (int i = s->n_running - 1; i >= 0; i--)
        if (s->running[i]->req == r && is_branch(s->running[i])) preempt_one(s, s->running[i]);
}

static const char *abort_reason(const em_job *j, double now) {
    if (atomic_load(&j->req->cancel)) return "cancelled";
    if (is_branch(j) && j->req->error[0]) return "error"; /* a branch failed: so does its group */
    if (j->req->p.timeout_ms > 0 && now - j->req->t_submit_ms > j->req->p.timeout_ms) return "timeout";
    return NULL;
}

/* Starts a job on sequence sid whose first n_cached positions already hold
 * its prompt's K/V. */
static int start_job(em_sched *s, em_job *j, int32_t sid, int32_t n_cached) {
    em_request *r = j->req;
    ember_sampler_params sp = r->p.sp;
    sp.seed = j->seed;
    if (is_synth(j)) { /* greedy, no stop strings (aggregate.h) */
        sp = ember_sampler_defaults();
        sp.temperature = 0;
    }
    j->smp = ember_sampler_new(&sp, s->n_vocab);
    if (!j->stop && !j->started)
        j->stop = is_synth(j) ? em_stop_new(NULL, 0) : em_stop_new((const char *const *)r->p.stops, r->p.n_stops);
    if (!j->smp || (!j->stop && !j->started)) {
        ember_sampler_free(j->smp);
        j->smp = NULL;
        return -1;
    }
    for (int32_t i = 0; i < j->n_prompt; i++) ember_sampler_accept(j->smp, j->prompt[i]);
    seq_slot *sl = &s->seqs[sid];
    sl->state = S_ACTIVE;
    sl->job = j;
    free(sl->tokens);
    sl->tokens = NULL;
    sl->n = 0;
    j->seq = sid;
    j->n_past = n_cached;
    j->state = J_PREFILL;
    j->n_sampled = 0;
    pthread_mutex_lock(&s->st_mu);
    if (!j->started) {
        s->st.prompt_tokens += (uint64_t)j->n_prompt;
        s->st.prompt_tokens_cached += (uint64_t)n_cached;
    }
    pthread_mutex_unlock(&s->st_mu);
    j->started = true;
    running_insert(s, j);
    return 0;
}

/* The longest prefix of j's prompt (at most want positions) held by a cache
 * entry or a running sequence: its length, and that sequence in *sid. */
static int32_t find_prefix(const em_sched *s, const em_job *j, int32_t want, int32_t *sid) {
    int32_t best = 0;
    *sid = -1;
    for (int32_t i = 0; i < s->n_seqs; i++) {
        const seq_slot *sl = &s->seqs[i];
        const int32_t *t;
        int32_t avail;
        if (sl->state == S_CACHE) {
            t = sl->tokens;
            avail = sl->n;
        } else if (sl->state == S_ACTIVE) {
            t = sl->job->prompt;
            avail = sl->job->state == J_GEN ? job_cacheable(sl->job) : sl->job->n_past;
            if (avail > job_cacheable(sl->job)) avail = job_cacheable(sl->job);
        } else {
            continue;
        }
        int32_t l = lcp(t, avail, j->prompt, want);
        if (l > best) {
            best = l;
            *sid = i;
        }
    }
    return best;
}

/* A prompt still being evaluated will soon offer a longer prefix: wait for
 * it rather than computing the same positions twice. */
static bool should_defer(const em_sched *s, const em_job *j, int32_t want, int32_t best) {
    for (int i = 0; i < s->n_running; i++) {
        const em_job *q = s->running[i];
        if (q->state == J_PREFILL && lcp(q->prompt, job_cacheable(q), j->prompt, want) >= best + ember_kv_block_size())
            return true;
    }
    return false;
}

/* Admits the queued branches of a contemplation request together: the first
 * prefills the prompt (from the prefix cache where it can), the others wait
 * in J_FORK for its logits. Returns 1 if admitted (the branches are taken
 * out of the pending list), 0 if the group should wait for a prompt being
 * evaluated, -1 if it must wait for slots or memory. */
static int admit_group(em_sched *s, em_request *r, int32_t *reserved) {
    const int32_t bs = ember_kv_block_size();
    em_job *g[EM_SCHED_MAX_CHOICES];
    int k = 0;
    for (em_job *q = s->pend_head; q && k < EM_SCHED_MAX_CHOICES; q = q->next)
        if (q->req == r && is_branch(q)) g[k++] = q;
    if (k == 0) return 0;
    if (s->n_running + k > s->p.n_slots) return -1;
    em_job *lead = g[0];
    const int32_t want = lead->n_prompt - 1;
    int32_t best_sid, best = find_prefix(s, lead, want, &best_sid);
    if (should_defer(s, lead, want, best)) return 0;
    int32_t sids[EM_SCHED_MAX_CHOICES];
    int nf;
    for (;;) {
        nf = 0;
        for (int32_t i = 0; i < s->n_seqs && nf < k; i++)
            if (s->seqs[i].state == S_FREE) sids[nf++] = i;
        if (nf == k || !evict_lru(s, best_sid)) break;
    }
    bool takeover = false;
    if (nf < k) {
        if (nf == k - 1 && best_sid >= 0 && s->seqs[best_sid].state == S_CACHE) takeover = true;
        else return -1;
    }
    /* memory: the rest of the prompt, a block per branch for its first
     * token (the copy of the prompt's last block), headroom as admit() */
    int32_t need = (lead->n_prompt + bs - 1) / bs - best / bs + 1 + k + s->n_running;
    while (free_blocks(s) - *reserved < need && evict_lru(s, best_sid)) {}
    if (takeover && s->seqs[best_sid].state != S_CACHE) return -1;
    if (free_blocks(s) - *reserved < need && s->n_running > 0) return -1;
    *reserved += need - s->n_running;
    int32_t lsid, cached = best;
    int next_sid = 0;
    if (takeover) {
        lsid = best_sid;
        ember_seq_truncate(s->ctx, lsid, best);
        s->seqs[lsid].n = best;
    } else {
        lsid = sids[next_sid++];
        if (best > 0) {
            ember_error err;
            if (ember_seq_fork(s->ctx, best_sid, lsid, best, &err)) cached = 0;
        }
    }
    if (cached == 0) ember_seq_truncate(s->ctx, lsid, 0);
    for (int m = 0; m < k; m++) pending_remove(s, g[m]);
    pthread_mutex_lock(&s->mu);
    s->n_waiting -= k;
    pthread_mutex_unlock(&s->mu);
    bool ok = !start_job(s, lead, lsid, cached);
    if (!ok) {
        slot_clear(s, lsid);
        lead->state = J_PREFILL;
    }
    for (int m = 1; m < k; m++) {
        const int32_t sid = sids[next_sid++];
        ember_seq_truncate(s->ctx, sid, 0);
        if (ok && !start_job(s, g[m], sid, 0)) {
            g[m]->state = J_FORK;
        } else {
            slot_clear(s, sid);
            g[m]->state = J_PREFILL; /* not waiting any more */
            ok = false;
        }
    }
    if (!ok)
        for (int m = 0; m < k; m++)
            if (g[m]->state != J_DONE) finish_job(s, g[m], "error", "out of memory");
    pthread_mutex_lock(&s->mu);
    s->n_running_pub = s->n_running;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static void admit(em_sched *s) {
    const int32_t bs = ember_kv_block_size();
    int32_t reserved = 0; /* blocks promised to the jobs admitted in this call */
    em_job **pp = &s->pend_head;
    while (*pp && s->n_running < s->p.n_slots) {
        em_job *j = *pp;
        if (is_branch(j)) {
            int g = admit_group(s, j->req, &reserved);
            if (g < 0) break; /* waits for slots or memory */
            if (g == 0) {
                em_request *r = j->req;
                while (*pp && (*pp)->req == r) pp = &(*pp)->next;
            }
            continue; /* admitted: *pp is the next job */
        }
        const int32_t want = j->n_prompt - 1; /* the last prompt token is always evaluated */
        int32_t best_sid = -1, best = find_prefix(s, j, want, &best_sid);
        bool defer = should_defer(s, j, want, best);
        if (defer) {
            pp = &j->next;
            continue;
        }
        int32_t sid = -1;
        for (int32_t i = 0; i < s->n_seqs && sid < 0; i++)
            if (s->seqs[i].state == S_FREE) sid = i;
        if (sid < 0 && evict_lru(s, best_sid))
            for (int32_t i = 0; i < s->n_seqs && sid < 0; i++)
                if (s->seqs[i].state == S_FREE) sid = i;
        if (sid < 0 && best_sid >= 0 && s->seqs[best_sid].state == S_CACHE) {
            sid = best_sid; /* take the cache entry over */
            ember_seq_truncate(s->ctx, sid, best);
            s->seqs[sid].n = best;
        }
        if (sid < 0) break;
        /* memory: the blocks the rest of the prompt needs, roughly, plus a
         * block of headroom per running sequence (admitting a prompt only to
         * preempt it at the next step would waste its prefill) */
        int32_t need = (j->n_prompt + bs - 1) / bs - best / bs + 1 + s->n_running;
        while (free_blocks(s) - reserved < need && evict_lru(s, best_sid)) {}
        if (free_blocks(s) - reserved < need && s->n_running > 0) break; /* wait for memory */
        reserved += need - s->n_running;
        int32_t cached = best;
        if (best > 0 && sid != best_sid) {
            ember_error err;
            if (ember_seq_fork(s->ctx, best_sid, sid, best, &err)) cached = 0;
        }
        if (cached == 0) ember_seq_truncate(s->ctx, sid, 0);
        *pp = j->next;
        j->next = NULL;
        pthread_mutex_lock(&s->mu);
        s->n_waiting--;
        pthread_mutex_unlock(&s->mu);
        if (start_job(s, j, sid, cached)) {
            slot_clear(s, sid);
            j->state = J_PREFILL; /* not waiting any more */
            finish_job(s, j, "error", "out of memory");
            continue;
        }
        pthread_mutex_lock(&s->mu);
        s->n_running_pub = s->n_running;
        pthread_mutex_unlock(&s->mu);
    }
}

/* Fills the batch arrays: every generating job's next token, then up to the
 * prefill budget of prompt tokens, oldest jobs first. If the KV pool cannot
 * take them: evict cache entries, shrink the prefill budget, and finally
 * preempt the youngest job. Returns the number of entries. */
static int32_t build_batch(em_sched *s) {
    int32_t budget = s->p.prefill_chunk;
    for (;;) {
        int32_t n = 0;
        for (int i = 0; i < s->n_running; i++) {
            em_job *j = s->running[i];
            j->n_entries = 0;
            if (j->state != J_GEN) continue;
            s->b_tok[n] = j->next_tok;
            s->b_pos[n] = j->n_past;
            s->b_seq[n] = j->seq;
            s->b_want[n] = 1;
            s->b_pre[n] = 0;
            s->b_job[n] = j;
            j->n_entries = 1;
            n++;
        }
        const int32_t n_dec = n;
        int32_t b = budget;
        for (int i = 0; i < s->n_running && b > 0; i++) {
            em_job *j = s->running[i];
            if (j->state != J_PREFILL) continue;
            int32_t k = j->n_prompt - j->n_past;
            if (k > b) k = b;
            for (int32_t q = 0; q < k; q++) {
                int32_t pos = j->n_past + q;
                s->b_tok[n] = j->prompt[pos];
                s->b_pos[n] = pos;
                s->b_seq[n] = j->seq;
                s->b_want[n] = pos == j->n_prompt - 1;
                s->b_pre[n] = job_prefill_flag(j, pos);
                s->b_job[n] = j;
                n++;
            }
            j->n_entries = k;
            b -= k;
        }
        int32_t need = 0;
        for (int i = 0; i < s->n_running; i++) {
            em_job *j = s->running[i];
            if (j->n_entries) need += ember_kv_blocks_needed(s->ctx, j->seq, j->n_entries);
        }
        if (need <= free_blocks(s)) return n;
        if (evict_lru(s, -1)) continue;
        if (n > n_dec && budget > 0) {
            budget = budget > ember_kv_block_size() ? budget / 2 : 0;
            continue;
        }
        if (s->n_running == 0) return 0;
        preempt(s, s->running[s->n_running - 1]);
        budget = s->p.prefill_chunk;
    }
}

static const char *token_piece(em_sched *s, int32_t t, size_t *len) {
    int n = ember_token_to_piece(s->m, t, false, s->piece, s->piece_cap);
    if (n < 0) n = 0;
    if ((size_t)n > s->piece_cap) {
        char *p = realloc(s->piece, (size_t)n);
        if (p) {
            s->piece = p;
            s->piece_cap = (size_t)n;
            n = ember_token_to_piece(s->m, t, false, s->piece, s->piece_cap);
            if (n < 0) n = 0;
        } else {
            n = (int)s->piece_cap;
        }
    }
    *len = (size_t)n;
    return s->piece;
}

/* Samples job j's next token from logits and handles what it means. */
static void on_logits(em_sched *s, em_job *j, const float *logits, double now) {
    em_request *r = j->req;
    em_choice_out *o = &r->out[j->idx];
    if (r->p.ignore_eos && s->n_eog) {
        memcpy(s->lg, logits, sizeof(float) * (size_t)s->n_vocab);
        for (int32_t i = 0; i < s->n_eog; i++) s->lg[s->eog[i]] = -INFINITY;
        logits = s->lg;
    }
    float lp = 0;
    int32_t t = ember_sampler_sample(j->smp, logits, r->n_branches ? &lp : NULL);
    if (j->n_sampled < j->replay) {
        /* regenerating after a restart: the same numbers give the same
         * token; the recorded one is what the client saw */
        t = j->gen[j->n_sampled];
        ember_sampler_accept(j->smp, t);
        j->n_sampled++;
        j->next_tok = t;
        j->state = J_GEN;
        j->t_last = now;
        return;
    }
    ember_sampler_accept(j->smp, t);
    j->n_sampled++;
    if (j->n_gen == j->cap_gen) {
        int32_t cap = j->cap_gen ? j->cap_gen * 2 : 64;
        int32_t *g = realloc(j->gen, sizeof(int32_t) * (size_t)cap);
        if (!g) {
            finish_job(s, j, "error", "out of memory");
            return;
        }
        j->gen = g;
        j->cap_gen = cap;
    }
    j->gen[j->n_gen++] = t;
    pthread_mutex_lock(&s->st_mu);
    s->st.gen_tokens++;
    if (j->n_gen == 1) hist_add(&s->st.ttft, em_sched_ttft_bounds, (now - r->t_submit_ms) / 1e3);
    else hist_add(&s->st.itl, em_sched_itl_bounds, (now - j->t_last) / 1e3);
    pthread_mutex_unlock(&s->st_mu);
    j->t_last = now;

    const bool eog = ember_token_is_eog(s->m, t);
    em_lp_entry lpe;
    const bool want_lp = r->p.top_logprobs >= 0 && !eog;
    if (want_lp) compute_lp(logits, s->n_vocab, t, r->p.top_logprobs, &lpe);
    bool hit = false, synth_end = false;
    pthread_mutex_lock(&r->mu);
    o->n_gen++;
    if (is_branch(j)) o->lp_sum += em_agg_lp_term(lp);
    if (!eog) {
        size_t plen;
        const char *piece = token_piece(s, t, &plen);
        const char *b;
        size_t n;
        if (is_synth(j)) synth_end = em_agg_synth_ends(piece, plen, o->n_gen);
        hit = em_stop_feed(j->stop, piece, plen, &b, &n);
        out_utf8(j, o, b, n, false);
        raw_bytes(r, o, b, n);
        if (want_lp) {
            if (o->n_lp == o->cap_lp) {
                size_t cap = o->cap_lp ? o->cap_lp * 2 : 16;
                em_lp_entry *e = realloc(o->lp, sizeof *e * cap);
                if (e) {
                    o->lp = e;
                    o->cap_lp = cap;
                }
            }
            if (o->n_lp < o->cap_lp) o->lp[o->n_lp++] = lpe;
        }
    }
    r->version++;
    pthread_cond_broadcast(&r->cv);
    const int32_t n_out = o->n_gen;
    pthread_mutex_unlock(&r->mu);
    const int32_t max_tokens = is_synth(j) ? r->synth_max_tokens : r->p.max_tokens;
    j->stop_hit = hit;
    if (eog || hit || synth_end) finish_job(s, j, "stop", NULL);
    else if (max_tokens >= 0 && n_out >= max_tokens) finish_job(s, j, "length", NULL);
    else if (j->n_past >= s->p.n_ctx_seq) finish_job(s, j, "length", NULL);
    else {
        j->next_tok = t;
        j->state = J_GEN;
    }
}

static void cancel_everything(em_sched *s, const char *reason) {
    while (s->n_running > 0) finish_job(s, s->running[0], reason, NULL);
    while (s->pend_head) {
        em_job *j = s->pend_head;
        s->pend_head = j->next;
        j->next = NULL;
        finish_job(s, j, reason, NULL);
    }
}

/* The prompt of contemplation branch j is evaluated: every branch of its
 * group waiting in J_FORK takes j's first n_prompt positions (shared blocks),
 * then j and they sample their first token from the same logits. */
static void fork_branches(em_sched *s, em_job *j, const float *lg, double now) {
    em_request *r = j->req;
    em_job *sib[EM_SCHED_MAX_CHOICES];
    int n = 0;
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i]->req == r && s->running[i]->state == J_FORK) sib[n++] = s->running[i];
    for (int i = 0; i < n; i++) {
        ember_error err;
        if (ember_seq_fork(s->ctx, j->seq, sib[i]->seq, j->n_prompt, &err)) {
            finish_job(s, sib[i], "error", err.msg);
            sib[i] = NULL;
            continue;
        }
        sib[i]->n_past = j->n_prompt;
        sib[i]->state = J_PREFILL;
        if (!sib[i]->fork_counted) {
            sib[i]->fork_counted = true;
            pthread_mutex_lock(&s->st_mu);
            s->st.prompt_tokens_cached += (uint64_t)j->n_prompt;
            pthread_mutex_unlock(&s->st_mu);
        }
    }
    on_logits(s, j, lg, now);
    for (int i = 0; i < n; i++)
        if (sib[i]) on_logits(s, sib[i], lg, now);
}

/* After a step: for each contemplation request (vote, early_stop) whose
 * branches ended in it, cancel the branches still running once the leading
 * answer cannot be overtaken, as ember_contemplate does between steps. */
static void early_stops(em_sched *s) {
    em_answer ans[EM_SCHED_MAX_CHOICES];
    bool done[EM_SCHED_MAX_CHOICES];
    for (int i = 0; i < s->n_running; i++) {
        em_request *r = s->running[i]->req;
        if (!r->c_check) continue;
        r->c_check = false;
        if (!r->early_stop) continue;
        const int N = r->n_branches;
        pthread_mutex_lock(&r->mu);
        for (int b = 0; b < N; b++) {
            done[b] = r->out[b].finish != NULL;
            if (done[b]) ans[b] = r->out[b].answer;
            else memset(&ans[b], 0, sizeof ans[b]);
        }
        const bool decided = em_answer_decided(ans, done, N);
        if (decided) r->early_stopped = true;
        pthread_mutex_unlock(&r->mu);
        if (!decided) continue;
        em_job *cut[EM_SCHED_MAX_CHOICES];
        int nc = 0;
        for (int b = 0; b < N; b++)
            if (r->jobs[b].state != J_DONE) cut[nc++] = &r->jobs[b];
        for (int c = 0; c < nc; c++) { /* the last one may release r */
            if (cut[c]->state == J_QUEUED) pending_remove(s, cut[c]);
            finish_job(s, cut[c], "early_stop", NULL);
        }
        i = -1; /* the running list changed */
    }
    for (int i = 0; i < s->n_running; i++) s->running[i]->req->c_check = false;
}

static void step(em_sched *s) {
    double now = now_ms();
    for (int i = 0; i < s->n_running;) {
        em_job *j = s->running[i];
        const char *why = abort_reason(j, now);
        if (why) finish_job(s, j, why, NULL);
        else i++;
    }
    for (em_job *j = s->pend_head, *nx; j; j = nx) {
        nx = j->next;
        const char *why = abort_reason(j, now);
        if (why) {
            pending_remove(s, j);
            finish_job(s, j, why, NULL);
        }
    }
    admit(s);
    if (s->n_running == 0) return;
    int32_t n = build_batch(s);
    if (n == 0) return;
    ember_batch b = {.n = n, .token = s->b_tok, .pos = s->b_pos, .seq = s->b_seq, .want_logits = s->b_want,
                     .prefill = s->b_pre};
    ember_error err;
    if (ember_decode(s->ctx, &b, &err)) {
        /* should not happen (memory was checked): fail the jobs involved */
        for (int32_t i = 0; i < n; i++) {
            em_job *j = s->b_job[i];
            if (i == 0 || s->b_job[i - 1] != j) finish_job(s, j, "error", err.msg); /* a job's entries are adjacent */
        }
        return;
    }
    for (int32_t i = 0; i < n; i++) s->b_job[i]->n_past++;
    const int32_t used = ember_kv_blocks_used(s->ctx);
    for (int i = 0; i < s->n_running; i++) {
        em_request *r = s->running[i]->req;
        if (r->n_branches && used > r->kv_blocks_peak) r->kv_blocks_peak = used;
    }
    pthread_mutex_lock(&s->st_mu);
    if (used > s->st.kv_blocks_peak) s->st.kv_blocks_peak = used;
    pthread_mutex_unlock(&s->st_mu);
    now = now_ms();
    for (int32_t i = 0; i < n; i++) {
        if (!s->b_want[i]) continue;
        const float *lg = ember_logits(s->ctx, i);
        if (!lg) continue;
        em_job *j = s->b_job[i];
        if (j->state == J_PREFILL && is_branch(j)) fork_branches(s, j, lg, now);
        else on_logits(s, j, lg, now);
    }
    early_stops(s);
    pthread_mutex_lock(&s->st_mu);
    s->st.steps++;
    pthread_mutex_unlock(&s->st_mu);
}

static void update_gauges(em_sched *s) {
    int32_t cached = 0;
    for (int32_t i = 0; i < s->n_seqs; i++) cached += s->seqs[i].state == S_CACHE;
    pthread_mutex_lock(&s->st_mu);
    s->st.n_running = s->n_running;
    s->st.n_cached = cached;
    s->st.kv_blocks_used = ember_kv_blocks_used(s->ctx);
    s->st.kv_blocks_total = ember_kv_blocks_total(s->ctx);
    if (s->st.kv_blocks_used > s->st.kv_blocks_peak) s->st.kv_blocks_peak = s->st.kv_blocks_used;
    pthread_mutex_unlock(&s->st_mu);
}

static void *sched_main(void *arg) {
    em_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->in_head) {
            em_job *j = s->in_head;
            s->in_head = j->next;
            j->next = NULL;
            em_job **pp = &s->pend_head;
            while (*pp) pp = &(*pp)->next;
            *pp = j;
        }
        s->in_tail = NULL;
        const char *reason = s->cancel_reason;
        s->cancel_reason = NULL;
        const bool stop = s->stop;
        if (!stop && !reason && s->n_running == 0 && !s->pend_head) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        if (reason) cancel_everything(s, reason);
        if (stop) {
            cancel_everything(s, "shutdown");
            update_gauges(s);
            return NULL;
        }
        step(s);
        update_gauges(s);
        pthread_mutex_lock(&s->mu);
    }
}

/* ----------------------------------------------------------- lifecycle -- */

em_sched *em_sched_new(const ember_model *m, const em_sched_params *p, ember_error *err) {
    em_sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NULL;
    }
    s->m = m;
    s->p = *p;
    if (s->p.n_slots <= 0) s->p.n_slots = 4;
    if (s->p.n_ctx_seq <= 0) {
        int32_t t = ember_model_n_ctx_train(m);
        s->p.n_ctx_seq = t > 0 && t < 4096 ? t : 4096;
    }
    if (s->p.n_cache < 0) s->p.n_cache = 0;
    else if (s->p.n_cache == 0) s->p.n_cache = s->p.n_slots;
    if (s->p.prefill_chunk <= 0) s->p.prefill_chunk = 128;
    if (s->p.max_queue <= 0) s->p.max_queue = 64;
    if (s->p.n_threads <= 0) s->p.n_threads = 1;
    int64_t pool = s->p.n_ctx_pool > 0 ? s->p.n_ctx_pool : (int64_t)s->p.n_slots * s->p.n_ctx_seq;
    if (pool < s->p.n_ctx_seq) pool = s->p.n_ctx_seq;
    pool = (pool + 255) / 256 * 256;
    if (pool > (1 << 24)) {
        snprintf(err->msg, sizeof err->msg, "KV pool of %lld positions is too large", (long long)pool);
        free(s);
        return NULL;
    }
    s->p.n_ctx_pool = (int32_t)pool;
    s->n_seqs = s->p.n_slots + s->p.n_cache;
    s->n_batch = s->p.n_slots + s->p.prefill_chunk;
    s->n_vocab = ember_model_n_vocab(m);
    ember_ctx_params cp = {.n_ctx = (uint32_t)pool, .n_batch = (uint32_t)s->n_batch, .n_seqs = s->n_seqs,
                           .n_threads = s->p.n_threads, .kv_type = s->p.kv_type};
    s->ctx = ember_ctx_new(m, &cp, err);
    if (!s->ctx) {
        free(s);
        return NULL;
    }
    s->running = calloc((size_t)s->p.n_slots, sizeof *s->running);
    s->seqs = calloc((size_t)s->n_seqs, sizeof *s->seqs);
    s->b_tok = malloc(sizeof(int32_t) * (size_t)s->n_batch * 3);
    s->b_want = malloc((size_t)s->n_batch);
    s->b_pre = malloc((size_t)s->n_batch);
    s->b_job = malloc(sizeof(em_job *) * (size_t)s->n_batch);
    s->piece_cap = 256;
    s->piece = malloc(s->piece_cap);
    s->lg = malloc(sizeof(float) * (size_t)(s->n_vocab > 0 ? s->n_vocab : 1));
    s->eog = malloc(sizeof(int32_t) * (size_t)(s->n_vocab > 0 ? s->n_vocab : 1));
    for (int32_t i = 0; s->eog && i < s->n_vocab; i++)
        if (ember_token_is_eog(m, i)) s->eog[s->n_eog++] = i;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->st_mu, NULL);
    if (!s->running || !s->seqs || !s->b_tok || !s->b_want || !s->b_pre || !s->b_job || !s->piece || !s->lg || !s->eog) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        em_sched_free(s);
        return NULL;
    }
    s->b_pos = s->b_tok + s->n_batch;
    s->b_seq = s->b_pos + s->n_batch;
    s->st.n_slots = s->p.n_slots;
    update_gauges(s);
    if (pthread_create(&s->th, NULL, sched_main, s)) {
        snprintf(err->msg, sizeof err->msg, "cannot start the scheduler thread");
        em_sched_free(s);
        return NULL;
    }
    s->th_started = true;
    return s;
}

void em_sched_free(em_sched *s) {
    if (!s) return;
    if (s->th_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        s->draining = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    /* jobs submitted after the thread's last look at the inbox */
    while (s->in_head) {
        em_job *j = s->in_head;
        s->in_head = j->next;
        j->next = s->pend_head;
        s->pend_head = j;
    }
    cancel_everything(s, "shutdown");
    for (int32_t i = 0; s->seqs && i < s->n_seqs; i++) free(s->seqs[i].tokens);
    ember_ctx_free(s->ctx);
    free(s->running);
    free(s->seqs);
    free(s->b_tok);
    free(s->b_want);
    free(s->b_pre);
    free(s->b_job);
    free(s->piece);
    free(s->lg);
    free(s->eog);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->st_mu);
    free(s);
}

const em_sched_params *em_sched_get_params(const em_sched *s) { return &s->p; }

int32_t em_sched_contemplate_blocks(const em_sched *s, int32_t n_prompt, int n_branches, int32_t max_tokens) {
    const int64_t bs = ember_kv_block_size();
    int64_t t = max_tokens;
    if (t < 0 || t > (int64_t)s->p.n_ctx_seq - n_prompt) t = (int64_t)s->p.n_ctx_seq - n_prompt;
    if (t < 0) t = 0;
    /* the prompt's full blocks are shared; each branch writes its own copy
     * of the partly filled last one (the last writer keeps the original) */
    int64_t need = n_prompt / bs + (int64_t)n_branches * ((n_prompt % bs + t + bs - 1) / bs);
    return need > INT32_MAX ? INT32_MAX : (int32_t)need;
}

int32_t em_sched_kv_blocks_total(const em_sched *s) { return ember_kv_blocks_total(s->ctx); }

int em_sched_submit(em_sched *s, em_request *r) {
    /* a contemplation queues its branches; the synthesis pass comes later */
    const int n_queue = r->n_branches ? r->n_branches : r->n_choices;
    if (r->n_branches &&
        (r->n_branches > s->p.n_slots ||
         em_sched_contemplate_blocks(s, r->jobs[0].n_prompt, r->n_branches, r->p.max_tokens) >
             ember_kv_blocks_total(s->ctx)))
        return EM_SUBMIT_INVALID;
    for (int i = 0; i < n_queue; i++) {
        const em_job *j = &r->jobs[i];
        if (j->n_prompt < 1 || j->n_prompt >= s->p.n_ctx_seq || !j->prompt) return EM_SUBMIT_INVALID;
        for (int32_t k = 0; k < j->n_prompt; k++)
            if (j->prompt[k] < 0 || j->prompt[k] >= s->n_vocab) return EM_SUBMIT_INVALID;
    }
    pthread_mutex_lock(&s->mu);
    if (s->draining || s->stop) {
        pthread_mutex_unlock(&s->mu);
        return EM_SUBMIT_CLOSED;
    }
    if (s->n_waiting > 0 && s->n_waiting + n_queue > s->p.max_queue) {
        pthread_mutex_unlock(&s->mu);
        return EM_SUBMIT_FULL;
    }
    r->sched = s;
    r->t_submit_ms = now_ms();
    atomic_fetch_add(&r->refs, 1);
    for (int i = 0; i < n_queue; i++) {
        em_job *j = &r->jobs[i];
        j->state = J_QUEUED;
        j->order = ++s->order;
        j->next = NULL;
        if (s->in_tail) s->in_tail->next = j;
        else s->in_head = j;
        s->in_tail = j;
    }
    for (int i = n_queue; i < r->n_choices; i++) r->jobs[i].state = J_WAIT;
    s->n_waiting += n_queue;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return EM_SUBMIT_OK;
}

void em_sched_drain(em_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
}

void em_sched_cancel_all(em_sched *s, const char *reason) {
    pthread_mutex_lock(&s->mu);
    s->cancel_reason = reason;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int em_sched_busy(em_sched *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->n_waiting + s->n_running_pub;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void em_sched_get_stats(em_sched *s, em_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    int32_t q = s->n_waiting;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->st_mu);
    *out = s->st;
    pthread_mutex_unlock(&s->st_mu);
    out->n_queued = q;
    out->n_slots = s->p.n_slots;
}

int32_t em_sched_take_kv_peak(em_sched *s) {
    pthread_mutex_lock(&s->st_mu);
    int32_t peak = s->st.kv_blocks_peak;
    if (s->st.kv_blocks_used > peak) peak = s->st.kv_blocks_used;
    s->st.kv_blocks_peak = s->st.kv_blocks_used;
    pthread_mutex_unlock(&s->st_mu);
    return peak;
}
