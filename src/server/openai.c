/* openai.c - the OpenAI-compatible endpoints: POST /v1/chat/completions,
 * POST /v1/completions (request validation: every wrong type or value is a
 * 400 naming the parameter), GET /v1/models, and the response JSON.
 *
 * Notes on semantics:
 *  - sampling defaults are ember's (as `ember run`): temperature 0.8,
 *    top_k 40, top_p 0.95, min_p 0.05; top_k, min_p, repeat_penalty and
 *    ignore_eos (never sample an end-of-generation token) are accepted as
 *    extensions. presence/frequency penalties look at the whole sequence
 *    (prompt included, as `ember run --repeat-last-n -1`). Without a seed, one is drawn per request;
 *    choice i of a prompt samples with seed + i.
 *  - /v1/completions tokenizes like `ember run` (BOS as the model asks, no
 *    special-token parsing), so greedy results match it; chat prompts are
 *    rendered with the chat template and tokenized with special tokens.
 *  - usage.completion_tokens counts every sampled token, including a final
 *    end-of-generation token; logprobs are the log-softmax of the raw
 *    logits, one entry per token with text. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../engine/aggregate.h"
#include "server.h"

#define MAX_N 16
#define MAX_PROMPTS 16
#define MAX_USER_STOPS 8
#define MAX_MESSAGES 4096

typedef struct oai_err {
    int status;
    const char *type, *code;
    char param[96];
    char msg[768];
} oai_err;

static int fail(oai_err *e, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(oai_err *e, int status, const char *param, const char *code, const char *fmt, ...) {
    e->status = status;
    e->type = status >= 500 ? "server_error" : "invalid_request_error";
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t random_u64(void) {
    static atomic_ulong ctr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 40;
    x ^= (uint64_t)atomic_fetch_add(&ctr, 1) * 0xD1B54A32D192ED03ull;
    return splitmix(&x);
}

/* ---------------------------------------------------- typed accessors -- */

/* Each returns 1 if present, 0 if absent or null, -1 (with e set) if the
 * value has the wrong type or range. */
static int get_num(const cJSON *o, const char *key, double lo, double hi, double *out, oai_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(e, 400, key, "invalid_type", "'%s' must be a number", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return fail(e, 400, key, "invalid_value", "'%s' must be between %g and %g (got %g)", key, lo, hi,
                    v->valuedouble);
    *out = v->valuedouble;
    return 1;
}

static int get_int(const cJSON *o, const char *key, double lo, double hi, long long *out, oai_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return fail(e, 400, key, "invalid_type", "'%s' must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return fail(e, 400, key, "invalid_value", "'%s' must be between %.0f and %.0f (got %.0f)", key, lo, hi,
                    v->valuedouble);
    *out = (long long)v->valuedouble;
    return 1;
}

static int get_bool(const cJSON *o, const char *key, bool *out, oai_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return fail(e, 400, key, "invalid_type", "'%s' must be a boolean", key);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int get_str(const cJSON *o, const char *key, const char **out, oai_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return fail(e, 400, key, "invalid_type", "'%s' must be a string", key);
    *out = v->valuestring;
    return 1;
}

/* ------------------------------------------------------------ prompts -- */

typedef struct prompt_list {
    int32_t *ids[MAX_PROMPTS];
    size_t n_ids[MAX_PROMPTS];
    int n;
} prompt_list;

static void prompts_free(prompt_list *p) {
    for (int i = 0; i < p->n; i++) free(p->ids[i]);
    p->n = 0;
}

static int tokenize_into(em_server *s, prompt_list *pl, const char *text, size_t len, bool special,
                         const char *param, oai_err *e) {
    ember_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    em_sec_note_prompt(text, len); /* the text the model sees, for the audit log */
    if (ember_tokenize(s->model, text, len, true, special, &ids, &n, &err))
        return fail(e, 400, param, "tokenization_failed", "Cannot tokenize '%s': %s", param, err.msg);
    pl->ids[pl->n] = ids;
    pl->n_ids[pl->n] = n;
    pl->n++;
    return 0;
}

static int token_array(em_server *s, prompt_list *pl, const cJSON *arr, const char *param, oai_err *e) {
    int n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!ids) return fail(e, 500, NULL, "out_of_memory", "out of memory");
    const int32_t nv = ember_model_n_vocab(s->model);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
            v->valuedouble >= nv) {
            free(ids);
            return fail(e, 400, param, "invalid_value", "'%s' must hold token ids in [0, %d)", param, nv);
        }
        ids[i++] = (int32_t)v->valuedouble;
    }
    pl->ids[pl->n] = ids;
    pl->n_ids[pl->n] = (size_t)i;
    pl->n++;
    return 0;
}

/* A prompt string, after the injection guard and prompt redaction. */
static int tokenize_prompt(em_server *s, prompt_list *pl, const char *text, oai_err *e) {
    size_t len = strlen(text);
    em_sec_err se;
    if (!(text = em_sec_prompt(s, text, &len, &se))) return fail(e, se.status, se.param, se.code, "%s", se.msg);
    return tokenize_into(s, pl, text, len, false, "prompt", e);
}

/* prompt: a string, an array of strings, an array of token ids, or an array
 * of arrays of token ids */
static int parse_prompt(em_server *s, const cJSON *root, prompt_list *pl, oai_err *e) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p || cJSON_IsNull(p)) return fail(e, 400, "prompt", "missing_required_parameter", "'prompt' is required");
    if (cJSON_IsString(p)) return tokenize_prompt(s, pl, p->valuestring, e);
    if (!cJSON_IsArray(p))
        return fail(e, 400, "prompt", "invalid_type", "'prompt' must be a string, an array of strings or token ids");
    int n = cJSON_GetArraySize(p);
    if (n == 0) return fail(e, 400, "prompt", "invalid_value", "'prompt' must not be an empty array");
    const cJSON *first = cJSON_GetArrayItem(p, 0);
    if (cJSON_IsNumber(first)) return token_array(s, pl, p, "prompt", e);
    if (n > MAX_PROMPTS)
        return fail(e, 400, "prompt", "invalid_value", "'prompt' may hold at most %d prompts", MAX_PROMPTS);
    const cJSON *v;
    cJSON_ArrayForEach(v, p) {
        if (cJSON_IsString(v)) {
            if (tokenize_prompt(s, pl, v->valuestring, e)) return -1;
        } else if (cJSON_IsArray(v)) {
            if (token_array(s, pl, v, "prompt", e)) return -1;
        } else {
            return fail(e, 400, "prompt", "invalid_type",
                        "'prompt' must be a string, an array of strings or token ids");
        }
    }
    return 0;
}

static int parse_messages(em_server *s, const cJSON *root, prompt_list *pl, oai_err *e) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!ms || cJSON_IsNull(ms))
        return fail(e, 400, "messages", "missing_required_parameter", "'messages' is required");
    if (!cJSON_IsArray(ms)) return fail(e, 400, "messages", "invalid_type", "'messages' must be an array");
    int n = cJSON_GetArraySize(ms);
    if (n == 0) return fail(e, 400, "messages", "invalid_value", "'messages' must not be empty");
    if (n > MAX_MESSAGES) return fail(e, 400, "messages", "invalid_value", "at most %d messages", MAX_MESSAGES);
    em_chat_msg *msgs = calloc((size_t)n + 1, sizeof *msgs); /* + 1: the guard's system notice */
    char **owned = calloc((size_t)n, sizeof *owned);
    int rc = -1;
    if (!msgs || !owned) {
        fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto done;
    }
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        char pn[64];
        snprintf(pn, sizeof pn, "messages[%d]", i);
        if (!cJSON_IsObject(m)) {
            fail(e, 400, pn, "invalid_type", "'%s' must be an object", pn);
            goto done;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        snprintf(pn, sizeof pn, "messages[%d].role", i);
        if (!cJSON_IsString(role)) {
            fail(e, 400, pn, role ? "invalid_type" : "missing_required_parameter", "'%s' must be a string", pn);
            goto done;
        }
        const char *r = role->valuestring;
        if (!strcmp(r, "developer")) r = "system";
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "tool")) {
            fail(e, 400, pn, "invalid_value",
                 "'%s' must be one of system, developer, user, assistant, tool (got '%.40s')", pn, role->valuestring);
            goto done;
        }
        msgs[i].role = r;
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(pn, sizeof pn, "messages[%d].content", i);
        if (!ct || cJSON_IsNull(ct)) {
            if (strcmp(r, "assistant") != 0) {
                fail(e, 400, pn, "missing_required_parameter", "'%s' is required", pn);
                goto done;
            }
            msgs[i].content = "";
        } else if (cJSON_IsString(ct)) {
            msgs[i].content = ct->valuestring;
            msgs[i].len = strlen(ct->valuestring);
        } else if (cJSON_IsArray(ct)) {
            /* content parts: only text */
            size_t total = 0;
            const cJSON *part;
            cJSON_ArrayForEach(part, ct) {
                const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsObject(part) || !cJSON_IsString(ty) || strcmp(ty->valuestring, "text") ||
                    !cJSON_IsString(tx)) {
                    fail(e, 400, pn, "invalid_value", "'%s' parts must be {\"type\": \"text\", \"text\": ...}", pn);
                    goto done;
                }
                total += strlen(tx->valuestring);
            }
            owned[i] = malloc(total + 1);
            if (!owned[i]) {
                fail(e, 500, NULL, "out_of_memory", "out of memory");
                goto done;
            }
            size_t off = 0;
            cJSON_ArrayForEach(part, ct) {
                const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
                size_t l = strlen(t);
                memcpy(owned[i] + off, t, l);
                off += l;
            }
            owned[i][off] = 0;
            msgs[i].content = owned[i];
            msgs[i].len = off;
        } else {
            fail(e, 400, pn, "invalid_type", "'%s' must be a string or an array of text parts", pn);
            goto done;
        }
        i++;
    }
    size_t len, n_msgs = (size_t)n;
    em_sec_err se;
    if (em_sec_chat(s, ms, msgs, &n_msgs, &se)) { /* injection guard, prompt redaction */
        fail(e, se.status, se.param, se.code, "%s", se.msg);
        goto done;
    }
    char *text = em_tmpl_render(s->tmpl, msgs, n_msgs, &len);
    if (!text) {
        fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto done;
    }
    rc = tokenize_into(s, pl, text, len, true, "messages", e);
    free(text);
done:
    for (int k = 0; owned && k < n; k++) free(owned[k]);
    free(owned);
    free(msgs);
    return rc;
}

/* ---------------------------------------------------- the whole request -- */

typedef struct parsed {
    em_oai_meta meta;
    em_gen_params gp;
    uint64_t seed;
    prompt_list prompts;
    const char *stops[EM_SCHED_MAX_STOPS];
    size_t n_stops;
    em_contemplate_opts ct;
} parsed;

static int parse_request(em_server *s, const cJSON *root, bool chat, parsed *q, oai_err *e) {
    em_oai_meta *m = &q->meta;
    em_gen_params *gp = &q->gp;
    m->chat = chat;
    m->model_id = s->model_id;
    m->n_per_prompt = 1;
    gp->sp = ember_sampler_defaults();
    gp->max_tokens = -1;
    gp->top_logprobs = -1;
    gp->timeout_ms = s->cfg.timeout_s > 0 ? s->cfg.timeout_s * 1e3 : 0;

    const char *model = NULL;
    if (get_str(root, "model", &model, e) < 0) return -1;
    if (model && strcmp(model, s->model_id) != 0)
        return fail(e, 404, "model", "model_not_found", "The model '%.200s' does not exist (this server has '%s')",
                    model, s->model_id);
    {
        em_sec_err se; /* the API key's model scope */
        if (em_sec_check_model(s, s->model_id, &se)) return fail(e, se.status, se.param, se.code, "%s", se.msg);
    }
    double d;
    long long ll;
    int r;
    if ((r = get_num(root, "temperature", 0, 2, &d, e)) < 0) return -1;
    if (r) gp->sp.temperature = (float)d;
    if ((r = get_num(root, "top_p", 0, 1, &d, e)) < 0) return -1;
    if (r) gp->sp.top_p = (float)d;
    if ((r = get_num(root, "min_p", 0, 1, &d, e)) < 0) return -1;
    if (r) gp->sp.min_p = (float)d;
    if ((r = get_int(root, "top_k", 0, 1 << 30, &ll, e)) < 0) return -1;
    if (r) gp->sp.top_k = (int32_t)ll;
    if ((r = get_num(root, "presence_penalty", -2, 2, &d, e)) < 0) return -1;
    if (r) gp->sp.presence_penalty = (float)d;
    if ((r = get_num(root, "frequency_penalty", -2, 2, &d, e)) < 0) return -1;
    if (r) gp->sp.frequency_penalty = (float)d;
    if ((r = get_num(root, "repeat_penalty", 0.01, 100, &d, e)) < 0) return -1;
    if (r) gp->sp.repeat_penalty = (float)d;
    if (gp->sp.presence_penalty != 0 || gp->sp.frequency_penalty != 0) gp->sp.penalty_last_n = -1;
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (sv && !cJSON_IsNull(sv)) {
        const double v = cJSON_IsNumber(sv) ? sv->valuedouble : NAN;
        if (!isfinite(v) || v != floor(v))
            return fail(e, 400, "seed", "invalid_type", "'seed' must be an integer");
        if (v < -9223372036854775808.0 || v >= 18446744073709551616.0)
            return fail(e, 400, "seed", "invalid_value", "'seed' must fit in 64 bits");
        q->seed = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
    } else {
        q->seed = random_u64();
    }
    long long mt = -1;
    if ((r = get_int(root, "max_tokens", 1, 1 << 24, &ll, e)) < 0) return -1;
    if (r) mt = ll;
    if (chat) {
        if ((r = get_int(root, "max_completion_tokens", 1, 1 << 24, &ll, e)) < 0) return -1;
        if (r) mt = ll;
    }
    gp->max_tokens = (int32_t)mt;
    if ((r = get_int(root, "n", 1, MAX_N, &ll, e)) < 0) return -1;
    if (r) m->n_per_prompt = (int)ll;
    if (!chat) {
        if ((r = get_int(root, "best_of", 1, MAX_N, &ll, e)) < 0) return -1;
        if (r && ll != m->n_per_prompt)
            return fail(e, 400, "best_of", "unsupported_value", "'best_of' is not supported (only best_of = n)");
        bool echo = false;
        if (get_bool(root, "echo", &echo, e) < 0) return -1;
        if (echo) return fail(e, 400, "echo", "unsupported_value", "'echo' is not supported");
        const char *suffix = NULL;
        if (get_str(root, "suffix", &suffix, e) < 0) return -1;
    }
    if (get_bool(root, "stream", &m->stream, e) < 0) return -1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return fail(e, 400, "stream_options", "invalid_type", "'stream_options' must be an object");
        if (!m->stream)
            return fail(e, 400, "stream_options", "invalid_value", "'stream_options' is only allowed when 'stream' is true");
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
        if (iu && !cJSON_IsNull(iu)) {
            if (!cJSON_IsBool(iu))
                return fail(e, 400, "stream_options.include_usage", "invalid_type",
                            "'stream_options.include_usage' must be a boolean");
            m->include_usage = cJSON_IsTrue(iu);
        }
    }
    /* stop */
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (st && !cJSON_IsNull(st)) {
        if (cJSON_IsString(st)) {
            if (strlen(st->valuestring) > EM_SCHED_MAX_STOP_LEN)
                return fail(e, 400, "stop", "invalid_value", "stop strings may be at most %d bytes", EM_SCHED_MAX_STOP_LEN);
            if (*st->valuestring) q->stops[q->n_stops++] = st->valuestring;
        } else if (cJSON_IsArray(st)) {
            if (cJSON_GetArraySize(st) > MAX_USER_STOPS)
                return fail(e, 400, "stop", "invalid_value", "'stop' may hold at most %d strings", MAX_USER_STOPS);
            const cJSON *v;
            cJSON_ArrayForEach(v, st) {
                if (!cJSON_IsString(v))
                    return fail(e, 400, "stop", "invalid_type", "'stop' must be a string or an array of strings");
                if (strlen(v->valuestring) > EM_SCHED_MAX_STOP_LEN)
                    return fail(e, 400, "stop", "invalid_value", "stop strings may be at most %d bytes",
                                EM_SCHED_MAX_STOP_LEN);
                if (*v->valuestring) q->stops[q->n_stops++] = v->valuestring;
            }
        } else {
            return fail(e, 400, "stop", "invalid_type", "'stop' must be a string or an array of strings");
        }
    }
    if (chat) q->n_stops += em_tmpl_stops(s->tmpl, q->stops + q->n_stops, EM_SCHED_MAX_STOPS - q->n_stops);
    for (size_t i = 0; i < q->n_stops; i++) gp->stops[i] = (char *)q->stops[i];
    gp->n_stops = q->n_stops;
    /* logprobs */
    if (chat) {
        if (get_bool(root, "logprobs", &m->logprobs, e) < 0) return -1;
        if ((r = get_int(root, "top_logprobs", 0, EM_SCHED_MAX_TOP_LOGPROBS, &ll, e)) < 0) return -1;
        if (r && !m->logprobs)
            return fail(e, 400, "top_logprobs", "invalid_value", "'top_logprobs' requires 'logprobs' to be true");
        m->top_logprobs = r ? (int)ll : 0;
    } else {
        if ((r = get_int(root, "logprobs", 0, 5, &ll, e)) < 0) return -1;
        m->logprobs = r > 0;
        m->top_logprobs = r ? (int)ll : 0;
    }
    gp->top_logprobs = m->logprobs ? m->top_logprobs : -1;
    const char *user = NULL;
    if (get_str(root, "user", &user, e) < 0) return -1;
    if (get_bool(root, "ignore_eos", &gp->ignore_eos, e) < 0) return -1;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (tools && !cJSON_IsNull(tools) && !(cJSON_IsArray(tools) && cJSON_GetArraySize(tools) == 0))
        return fail(e, 400, "tools", "unsupported_parameter", "'tools' are not supported");
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (!cJSON_IsObject(rf) || !cJSON_IsString(ty) || strcmp(ty->valuestring, "text") != 0)
            return fail(e, 400, "response_format", "unsupported_value", "only response_format {\"type\": \"text\"} is supported");
    }
    /* contemplating mode (contemplate_api.c) */
    {
        char cparam[96], cmsg[512];
        const char *ccode = NULL;
        if (em_contemplate_parse(s, root, &q->ct, cparam, sizeof cparam, &ccode, cmsg, sizeof cmsg))
            return fail(e, 400, cparam, ccode, "%s", cmsg);
        if (q->ct.on && m->n_per_prompt > 1)
            return fail(e, 400, "n", "invalid_value", "'n' must be 1 when contemplating (one aggregated answer)");
        if (q->ct.on && m->logprobs)
            return fail(e, 400, "logprobs", "unsupported_value", "'logprobs' is not supported when contemplating");
    }
    /* the prompt(s) */
    if (chat ? parse_messages(s, root, &q->prompts, e) : parse_prompt(s, root, &q->prompts, e)) return -1;
    const int32_t n_ctx = em_sched_get_params(s->sched)->n_ctx_seq;
    const char *pp = chat ? "messages" : "prompt";
    for (int i = 0; i < q->prompts.n; i++) {
        if (q->prompts.n_ids[i] == 0) return fail(e, 400, pp, "invalid_value", "The prompt is empty");
        if (q->prompts.n_ids[i] >= (size_t)n_ctx)
            return fail(e, 400, pp, "context_length_exceeded",
                        "This model's maximum context length is %d tokens, but the prompt has %zu tokens "
                        "(at least one position must be left for the completion)",
                        n_ctx, q->prompts.n_ids[i]);
    }
    if (q->prompts.n * m->n_per_prompt > EM_SCHED_MAX_CHOICES)
        return fail(e, 400, "n", "invalid_value", "at most %d choices per request", EM_SCHED_MAX_CHOICES);
    if (q->ct.on && q->prompts.n > 1)
        return fail(e, 400, "prompt", "invalid_value", "contemplating takes one prompt");
    return 0;
}

/* --------------------------------------------------------- responses -- */

cJSON *em_oai_usage(const em_oai_meta *m, const em_request *r) {
    (void)m;
    long long pt = 0, ct = 0;
    for (int i = 0; i < r->n_choices; i++) ct += r->out[i].n_gen;
    pt = r->n_prompt_total / (m->n_per_prompt > 0 ? m->n_per_prompt : 1);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)pt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)ct);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(pt + ct));
    return u;
}

static cJSON *bytes_array(const char *b, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)b[i]));
    return a;
}

/* The token's text (sanitized) and raw bytes. */
static char *piece_of(em_server *s, int32_t id, char *raw, size_t cap, size_t *raw_len) {
    int n = ember_token_to_piece(s->model, id, false, raw, cap);
    if (n < 0) n = 0;
    if ((size_t)n > cap) n = (int)cap;
    *raw_len = (size_t)n;
    return em_utf8_sanitize(raw, (size_t)n, NULL);
}

static double finite_lp(float v) { return isfinite(v) ? (double)v : -9999.0; }

cJSON *em_oai_logprobs(em_server *s, const em_oai_meta *m, const em_lp_entry *e, size_t n, size_t text_offset) {
    char raw[512];
    size_t rl;
    if (m->chat) {
        cJSON *obj = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(obj, "content");
        for (size_t i = 0; i < n; i++) {
            cJSON *t = cJSON_CreateObject();
            char *txt = piece_of(s, e[i].token, raw, sizeof raw, &rl);
            cJSON_AddStringToObject(t, "token", txt ? txt : "");
            free(txt);
            cJSON_AddNumberToObject(t, "logprob", finite_lp(e[i].logprob));
            cJSON_AddItemToObject(t, "bytes", bytes_array(raw, rl));
            cJSON *top = cJSON_AddArrayToObject(t, "top_logprobs");
            for (int k = 0; k < e[i].n_top && k < m->top_logprobs; k++) {
                cJSON *a = cJSON_CreateObject();
                char *tt = piece_of(s, e[i].top_id[k], raw, sizeof raw, &rl);
                cJSON_AddStringToObject(a, "token", tt ? tt : "");
                free(tt);
                cJSON_AddNumberToObject(a, "logprob", finite_lp(e[i].top_lp[k]));
                cJSON_AddItemToObject(a, "bytes", bytes_array(raw, rl));
                cJSON_AddItemToArray(top, a);
            }
            cJSON_AddItemToArray(content, t);
        }
        return obj;
    }
    cJSON *obj = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(obj, "tokens"), *lps = cJSON_AddArrayToObject(obj, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(obj, "top_logprobs"), *offs = cJSON_AddArrayToObject(obj, "text_offset");
    size_t off = text_offset;
    for (size_t i = 0; i < n; i++) {
        char *txt = piece_of(s, e[i].token, raw, sizeof raw, &rl);
        cJSON_AddItemToArray(toks, cJSON_CreateString(txt ? txt : ""));
        free(txt);
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(finite_lp(e[i].logprob)));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += rl;
        cJSON *top = cJSON_CreateObject();
        for (int k = 0; k < e[i].n_top && k < m->top_logprobs; k++) {
            char *tt = piece_of(s, e[i].top_id[k], raw, sizeof raw, &rl);
            if (tt && !cJSON_GetObjectItemCaseSensitive(top, tt))
                cJSON_AddNumberToObject(top, tt, finite_lp(e[i].top_lp[k]));
            free(tt);
        }
        cJSON_AddItemToArray(tops, top);
    }
    return obj;
}

cJSON *em_oai_chunk_base(const em_oai_meta *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "object", m->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddStringToObject(o, "model", m->model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", "ember");
    return o;
}

int em_oai_failure(const em_request *r, const char **type, const char **code, char *msg, size_t cap) {
    for (int i = 0; i < r->n_choices; i++) {
        const char *f = r->out[i].finish;
        if (!f) continue;
        if (!strcmp(f, "timeout")) {
            *type = "timeout_error";
            *code = "timeout";
            snprintf(msg, cap, "The request did not finish within the server's time limit");
            return 504;
        }
        if (!strcmp(f, "shutdown")) {
            *type = "server_error";
            *code = "shutting_down";
            snprintf(msg, cap, "The server is shutting down");
            return 503;
        }
        if (!strcmp(f, "error")) {
            *type = "server_error";
            *code = "internal_error";
            snprintf(msg, cap, "Generation failed: %s", r->error[0] ? r->error : "internal error");
            return 500;
        }
        if (!strcmp(f, "cancelled")) {
            *type = "server_error";
            *code = "cancelled";
            snprintf(msg, cap, "The request was cancelled");
            return 503;
        }
    }
    return 0;
}

static cJSON *final_response(em_server *s, const em_oai_meta *m, em_request *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "object", m->chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddStringToObject(o, "model", m->model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", "ember");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->n_choices; i++) {
        const em_choice_out *co = &r->out[i];
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", i);
        if (m->chat) {
            cJSON *msg = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", co->text ? co->text : "");
        } else {
            cJSON_AddStringToObject(c, "text", co->text ? co->text : "");
        }
        if (m->logprobs) cJSON_AddItemToObject(c, "logprobs", em_oai_logprobs(s, m, co->lp, co->n_lp, 0));
        else cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddStringToObject(c, "finish_reason", co->finish ? co->finish : "stop");
        cJSON_AddItemToArray(ch, c);
    }
    cJSON_AddItemToObject(o, "usage", em_oai_usage(m, r));
    return o;
}

enum MHD_Result em_handle_completion(em_server *s, struct MHD_Connection *c, const char *body, size_t len, bool chat) {
    oai_err e = {0};
    if (!body || len == 0)
        return em_respond_error(s, c, 400, "invalid_request_error", NULL, "invalid_json", "The request body is empty");
    if (!em_utf8_valid(body, len))
        return em_respond_error(s, c, 400, "invalid_request_error", NULL, "invalid_utf8",
                                "The request body is not valid UTF-8");
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return em_respond_error(s, c, 400, "invalid_request_error", NULL, "invalid_json",
                                "The request body is not a valid JSON object");
    }
    parsed *q = calloc(1, sizeof *q);
    if (!q) {
        cJSON_Delete(root);
        return MHD_NO;
    }
    em_request *r = NULL;
    enum MHD_Result ret;
    if (parse_request(s, root, chat, q, &e)) goto error;
    em_oai_meta *m = &q->meta;
    /* security: options the server's redaction rules out, then the key's
     * rate limits (429), reserving the prompt and the most tokens the
     * request may generate */
    {
        em_sec_err se;
        if (em_sec_check_request(s, m->logprobs, q->ct.on && m->stream, &se)) {
            fail(&e, se.status, se.param, se.code, "%s", se.msg);
            goto error;
        }
        const int32_t n_ctx = em_sched_get_params(s->sched)->n_ctx_seq;
        int64_t prompt = 0, reserve = 0;
        for (int p = 0; p < q->prompts.n; p++) {
            const int64_t len = (int64_t)q->prompts.n_ids[p], room = n_ctx - len;
            prompt += len;
            if (q->ct.on) {
                const int64_t per = q->ct.max_branch_tokens > 0 ? q->ct.max_branch_tokens
                                    : q->gp.max_tokens > 0      ? q->gp.max_tokens
                                                                : 256;
                reserve += len + q->ct.branches * per + (q->ct.aggregate == EMBER_AGG_SYNTHESIZE ? EM_SYNTH_MAX_TOKENS : 0);
            } else {
                reserve += len + (int64_t)m->n_per_prompt * (q->gp.max_tokens > 0 && q->gp.max_tokens < room ? q->gp.max_tokens : room);
            }
        }
        enum MHD_Result sr;
        if (em_sec_admit(s, c, prompt, reserve, q->gp.max_tokens > 0 || q->ct.on, &sr)) {
            ret = sr;
            goto out;
        }
    }
    snprintf(m->id, sizeof m->id, "%s%016llx%08llx", chat ? "chatcmpl-" : "cmpl-",
             (unsigned long long)random_u64(), (unsigned long long)(random_u64() & 0xffffffffu));
    m->created = (long)time(NULL);
    if (q->ct.on) {
        ret = em_contemplate_serve(s, c, m, &q->gp, &q->ct, q->prompts.ids[0], q->prompts.n_ids[0], q->seed);
        goto out;
    }
    r = em_request_new(q->prompts.n * m->n_per_prompt, &q->gp);
    if (!r) {
        fail(&e, 500, NULL, "out_of_memory", "out of memory");
        goto error;
    }
    for (int p = 0; p < q->prompts.n; p++)
        for (int i = 0; i < m->n_per_prompt; i++)
            if (em_request_set_choice(r, p * m->n_per_prompt + i, q->prompts.ids[p], q->prompts.n_ids[p],
                                      q->seed + (uint64_t)i)) {
                fail(&e, 500, NULL, "out_of_memory", "out of memory");
                goto error;
            }
    int sub = em_sched_submit(s->sched, r);
    if (sub == EM_SUBMIT_FULL || sub == EM_SUBMIT_CLOSED) {
        ret = em_respond_not_admitted(s, c, sub == EM_SUBMIT_FULL);
        goto out;
    }
    if (sub != EM_SUBMIT_OK) {
        fail(&e, 400, chat ? "messages" : "prompt", "invalid_value", "The prompt does not fit the context");
        goto error;
    }
    if (m->stream) {
        ret = em_stream_start(s, c, r, m); /* takes over our reference */
        r = NULL;
        goto out;
    }
    /* wait for the whole result, watching for a client that goes away */
    {
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
                ret = MHD_NO;
                goto out;
            }
        }
    }
    {
        const char *type, *code;
        char msg[400];
        int st = em_oai_failure(r, &type, &code, msg, sizeof msg);
        if (st) ret = em_respond_error(s, c, st, type, NULL, code, "%s", msg);
        else ret = em_respond_json(s, c, 200, final_response(s, m, r));
    }
    goto out;
error:
    ret = em_respond_error(s, c, e.status ? e.status : 400, e.type ? e.type : "invalid_request_error",
                           e.param[0] ? e.param : NULL, e.code, "%s", e.msg);
out:
    em_request_release(r);
    prompts_free(&q->prompts);
    free(q);
    cJSON_Delete(root);
    return ret;
}

enum MHD_Result em_handle_models(em_server *s, struct MHD_Connection *c, const char *id) {
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "id", s->model_id);
    cJSON_AddStringToObject(model, "object", "model");
    cJSON_AddNumberToObject(model, "created", (double)s->created);
    cJSON_AddStringToObject(model, "owned_by", "ember");
    cJSON *meta = cJSON_AddObjectToObject(model, "meta");
    cJSON_AddStringToObject(meta, "description", ember_model_desc(s->model));
    cJSON_AddNumberToObject(meta, "n_vocab", ember_model_n_vocab(s->model));
    cJSON_AddNumberToObject(meta, "n_ctx_train", ember_model_n_ctx_train(s->model));
    cJSON_AddNumberToObject(meta, "n_ctx", em_sched_get_params(s->sched)->n_ctx_seq);
    cJSON_AddStringToObject(meta, "chat_template", em_tmpl_name(s->tmpl));
    if (s->model_sha256[0]) cJSON_AddStringToObject(meta, "sha256", s->model_sha256); /* verified at start-up */
    const bool visible = em_sec_model_visible(s, s->model_id); /* the API key's model scope */
    if (id) {
        if (strcmp(id, s->model_id) != 0 || !visible) {
            cJSON_Delete(model);
            return em_respond_error(s, c, 404, "invalid_request_error", "model", "model_not_found",
                                    "The model '%.200s' does not exist", id);
        }
        return em_respond_json(s, c, 200, model);
    }
    cJSON *list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(list, "data");
    if (visible) cJSON_AddItemToArray(data, model);
    else cJSON_Delete(model);
    return em_respond_json(s, c, 200, list);
}
