/* metrics.c - GET /metrics in the Prometheus text exposition format:
 * responses by status code, tokens in and out, queue depth, active slots,
 * KV blocks, prefix-cache reuse, preemptions, finish reasons, the security
 * layer's refusals and guard decisions by reason, and histograms of the time
 * to first token and the inter-token latency. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guard/injection.h"
#include "../guard/ratelimit.h"
#include "server.h"

typedef struct mb {
    char *p;
    size_t len, cap;
} mb;

static void mb_printf(mb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_printf(mb *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return;
        b->p = q;
        b->cap = cap;
    }
}

static void head(mb *b, const char *name, const char *type, const char *help) {
    mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void hist(mb *b, const char *name, const char *help, const em_hist *h, const double *bounds) {
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < EM_HIST_BUCKETS; i++) {
        cum += h->count[i];
        mb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    cum += h->count[EM_HIST_BUCKETS];
    mb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    mb_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->n);
}

enum MHD_Result em_handle_metrics(em_server *s, struct MHD_Connection *c) {
    mb b = {0};
    em_sched_stats st;
    memset(&st, 0, sizeof st);
    if (atomic_load(&s->state) != EM_SRV_LOADING && s->sched) em_sched_get_stats(s->sched, &st);

    head(&b, "ember_http_requests_total", "counter", "HTTP responses sent, by status code.");
    bool any = false;
    for (int code = 100; code < 600; code++) {
        unsigned long v = atomic_load(&s->status_count[code]);
        if (!v) continue;
        mb_printf(&b, "ember_http_requests_total{code=\"%d\"} %lu\n", code, v);
        any = true;
    }
    if (!any) mb_printf(&b, "ember_http_requests_total{code=\"200\"} 0\n");
    head(&b, "ember_ready", "gauge", "1 once the model is loaded and the server accepts requests.");
    mb_printf(&b, "ember_ready %d\n", atomic_load(&s->state) == EM_SRV_READY);
    head(&b, "ember_prompt_tokens_total", "counter", "Prompt tokens of admitted sequences.");
    mb_printf(&b, "ember_prompt_tokens_total %llu\n", (unsigned long long)st.prompt_tokens);
    head(&b, "ember_prompt_tokens_cached_total", "counter", "Prompt tokens served from the prefix cache.");
    mb_printf(&b, "ember_prompt_tokens_cached_total %llu\n", (unsigned long long)st.prompt_tokens_cached);
    head(&b, "ember_generation_tokens_total", "counter", "Tokens generated.");
    mb_printf(&b, "ember_generation_tokens_total %llu\n", (unsigned long long)st.gen_tokens);
    head(&b, "ember_queue_depth", "gauge", "Sequences waiting to start.");
    mb_printf(&b, "ember_queue_depth %d\n", st.n_queued);
    head(&b, "ember_slots_active", "gauge", "Sequences being evaluated.");
    mb_printf(&b, "ember_slots_active %d\n", st.n_running);
    head(&b, "ember_slots_total", "gauge", "Sequences that can be evaluated at once.");
    mb_printf(&b, "ember_slots_total %d\n", st.n_slots);
    head(&b, "ember_kv_blocks_used", "gauge", "KV cache blocks in use (running sequences and prefix cache).");
    mb_printf(&b, "ember_kv_blocks_used %d\n", st.kv_blocks_used);
    head(&b, "ember_kv_blocks_free", "gauge", "KV cache blocks free.");
    mb_printf(&b, "ember_kv_blocks_free %d\n", st.kv_blocks_total - st.kv_blocks_used);
    head(&b, "ember_kv_blocks_peak", "gauge", "Most KV cache blocks in use at once since the previous scrape.");
    mb_printf(&b, "ember_kv_blocks_peak %d\n",
              atomic_load(&s->state) != EM_SRV_LOADING && s->sched ? em_sched_take_kv_peak(s->sched) : 0);
    head(&b, "ember_kv_blocks_total", "gauge", "KV cache blocks in the pool.");
    mb_printf(&b, "ember_kv_blocks_total %d\n", st.kv_blocks_total);
    head(&b, "ember_prefix_cache_entries", "gauge", "Finished prompts kept for prefix reuse.");
    mb_printf(&b, "ember_prefix_cache_entries %d\n", st.n_cached);
    head(&b, "ember_preemptions_total", "counter", "Sequences preempted because the KV pool was full.");
    mb_printf(&b, "ember_preemptions_total %llu\n", (unsigned long long)st.preemptions);
    head(&b, "ember_decode_steps_total", "counter", "Batched decode steps.");
    mb_printf(&b, "ember_decode_steps_total %llu\n", (unsigned long long)st.steps);
    head(&b, "ember_sequences_finished_total", "counter", "Finished sequences (choices), by reason.");
    mb_printf(&b,
              "ember_sequences_finished_total{reason=\"stop\"} %llu\n"
              "ember_sequences_finished_total{reason=\"length\"} %llu\n"
              "ember_sequences_finished_total{reason=\"cancelled\"} %llu\n"
              "ember_sequences_finished_total{reason=\"timeout\"} %llu\n"
              "ember_sequences_finished_total{reason=\"other\"} %llu\n",
              (unsigned long long)st.finished_stop, (unsigned long long)st.finished_length,
              (unsigned long long)st.finished_cancelled, (unsigned long long)st.finished_timeout,
              (unsigned long long)st.finished_other);
    em_sec_counts sc;
    em_sec_counts_get(s, &sc);
    static const char *const auth_reason[sizeof sc.auth / sizeof *sc.auth] = {NULL, "missing", "invalid", "revoked",
                                                                              "expired", "error"};
    head(&b, "ember_auth_failures_total", "counter", "Requests refused by API-key authentication, by reason.");
    for (size_t i = 1; i < sizeof sc.auth / sizeof *sc.auth; i++)
        mb_printf(&b, "ember_auth_failures_total{reason=\"%s\"} %llu\n", auth_reason[i], (unsigned long long)sc.auth[i]);
    head(&b, "ember_rate_limited_total", "counter", "Requests refused by a per-key rate limit, by limit.");
    for (size_t i = 1; i < sizeof sc.rate_limited / sizeof *sc.rate_limited; i++)
        mb_printf(&b, "ember_rate_limited_total{limit=\"%s\"} %llu\n", em_rl_status_name((em_rl_status)i),
                  (unsigned long long)sc.rate_limited[i]);
    head(&b, "ember_guard_decisions_total", "counter",
         "Requests the prompt-injection guard acted on (the strongest decision per request), by source and action.");
    for (size_t src = 0; src < sizeof sc.guard / sizeof *sc.guard; src++)
        for (size_t a = 1; a < sizeof *sc.guard / sizeof **sc.guard; a++)
            mb_printf(&b, "ember_guard_decisions_total{source=\"%s\",action=\"%s\"} %llu\n", em_inj_source_name((em_inj_source)src),
                      em_guard_action_name((em_guard_action)a), (unsigned long long)sc.guard[src][a]);
    head(&b, "ember_redactions_total", "counter", "PII and secrets replaced by the redactor, by part.");
    mb_printf(&b, "ember_redactions_total{part=\"prompt\"} %llu\nember_redactions_total{part=\"completion\"} %llu\n",
              (unsigned long long)sc.redacted[0], (unsigned long long)sc.redacted[1]);
    hist(&b, "ember_time_to_first_token_seconds", "Time from request arrival to the first generated token.",
         &st.ttft, em_sched_ttft_bounds);
    hist(&b, "ember_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.", &st.itl,
         em_sched_itl_bounds);
    if (!b.p) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(b.p);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(r, "Server", "ember");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    em_count_status(s, 200);
    return ret;
}
