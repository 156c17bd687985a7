/* server.h - `ember serve`: an OpenAI-compatible HTTP API over the
 * continuous-batching scheduler (src/engine/scheduler.h).
 *
 *   http.c          libmicrohttpd glue: routing, body limits, errors, start-up
 *                   and graceful shutdown
 *   openai.c        /v1/chat/completions, /v1/completions, /v1/models:
 *                   request validation and response JSON
 *   sse.c           streaming responses (Server-Sent Events)
 *   chat_template.c rendering chat messages for the model's template family
 *   chat_page.c     the chat page served at /
 *   metrics.c       /metrics (Prometheus text format)
 *   contemplate_api.c contemplating mode: "contemplate" / "reasoning_effort",
 *                   the aggregated response and its stream
 *   security.c      API keys, rate limits, usage ledger, redaction, the
 *                   prompt-injection guard, model integrity (src/guard/)
 *
 * Threads: libmicrohttpd runs one thread per connection; a connection that
 * waits for generated text blocks on its request's condition variable. The
 * scheduler thread owns the model context. */
#ifndef EM_SERVER_H
#define EM_SERVER_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../engine/scheduler.h"
#include "ember.h"

typedef struct em_server_config {
    const char *model_path;
    const char *host;          /* default 127.0.0.1 */
    int port;                  /* 0: any free port (printed at start-up) */
    int slots;                 /* sequences generating at once */
    int ctx;                   /* positions per sequence (0: model's, at most 4096) */
    int kv_pool;               /* KV pool positions (0: slots * ctx) */
    int threads;
    int max_queue;             /* choices waiting before 503 */
    int prefill_chunk;         /* prompt tokens per scheduler step */
    size_t max_body;           /* request body limit in bytes (413 above) */
    double timeout_s;          /* per-request limit (0: none) */
    double shutdown_s;         /* grace period for in-flight requests at SIGTERM/SIGINT */
    const char *chat_template; /* NULL: from the model's tokenizer.chat_template */
    const char *alias;         /* model id (default: file name without .gguf) */
    ember_kv_type kv;
    bool mlock;                /* lock the model file in RAM (ember_model_params.mlock) */
    int contemplate_branches[3]; /* branches for reasoning_effort low, medium, high (capped at slots) */
    /* security (security.c); all off when zero */
    const char *db_path;         /* API keys + usage ledger (NULL: $EMBER_DB or ./ember.db when keys are needed) */
    int auth;                    /* 1: Bearer keys on the /v1 routes; 0: none; -1: on unless host is a loopback address */
    bool metrics_admin;          /* /metrics needs an admin key */
    bool audit_content;          /* the ledger keeps (redacted) prompt and completion text */
    unsigned redact;             /* EM_REDACT_* (guard/redact.h): prompts, completions, logs */
    int guard_user, guard_untrusted; /* em_guard_action (guard/injection.h) at most taken; 0 (allow): no scan */
    size_t guard_window;         /* bytes of one text the injection guard scans (head + tail; 0: 16384) */
    const char *model_sha256;    /* expected SHA-256 (hex) of the model file */
    const char *models_manifest; /* manifest (guard/integrity.h) that must list the model file */
} em_server_config;

/* Runs the server until SIGTERM or SIGINT; returns the exit status. */
int em_server_run(const em_server_config *cfg);

/* ---- chat templates (chat_template.c) ---- */
typedef enum em_tmpl {
    EM_TMPL_UNKNOWN = -1,
    EM_TMPL_PLAIN = 0,
    EM_TMPL_CHATML,
    EM_TMPL_LLAMA2,
    EM_TMPL_LLAMA2_SYS,
    EM_TMPL_LLAMA3,
    EM_TMPL_LLAMA4,
    EM_TMPL_MISTRAL_V1,
    EM_TMPL_MISTRAL_V3,
    EM_TMPL_MISTRAL_V3_TEKKEN,
    EM_TMPL_MISTRAL_V7,
    EM_TMPL_GEMMA,
    EM_TMPL_PHI3,
    EM_TMPL_COUNT
} em_tmpl;

typedef struct em_chat_msg {
    const char *role; /* system, user, assistant, tool */
    const char *content;
    size_t len;
} em_chat_msg;

/* By name (chatml, qwen, llama2, llama3, ...); EM_TMPL_UNKNOWN if none. */
em_tmpl em_tmpl_from_name(const char *name);
/* From a Jinja template text (tokenizer.chat_template); EM_TMPL_UNKNOWN if
 * not recognised. */
em_tmpl em_tmpl_detect(const char *text);
const char *em_tmpl_name(em_tmpl t);
/* Comma-separated list of the names em_tmpl_from_name accepts. */
const char *em_tmpl_names(void);
/* The prompt for msgs, ending with the assistant's turn opening. malloc'ed,
 * NUL-terminated; NULL if out of memory. */
char *em_tmpl_render(em_tmpl t, const em_chat_msg *msgs, size_t n, size_t *len);
/* Stop strings the template implies (beyond end-of-generation tokens). */
size_t em_tmpl_stops(em_tmpl t, const char **out, size_t cap);

/* ---- the chat page (chat_page.c) ---- */
extern const char em_chat_page[];

/* ---- server state ---- */
enum { EM_SRV_LOADING = 0, EM_SRV_READY = 1, EM_SRV_STOPPING = 2 };

typedef struct em_server {
    em_server_config cfg;
    ember_model *model;
    em_sched *sched;
    atomic_int state;
    char model_id[256];
    em_tmpl tmpl;
    bool add_bos;
    long created;
    struct MHD_Daemon *daemon;
    atomic_ulong status_count[600];
    atomic_ulong n_requests;
    struct em_sec *sec;          /* security layer (security.c); NULL: none */
    char model_sha256[65];       /* the model file's verified digest (hex), "" if not checked */
} em_server;

/* ---- HTTP helpers (http.c) ---- */
/* Sends body (consumed) as JSON with the given status. */
enum MHD_Result em_respond_json(em_server *s, struct MHD_Connection *c, int status, cJSON *body);
/* OpenAI-style error: {"error":{"message","type","param","code"}}. */
enum MHD_Result em_respond_error(em_server *s, struct MHD_Connection *c, int status, const char *type,
                                 const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
cJSON *em_error_json(const char *message, const char *type, const char *param, const char *code);
/* 503 with Retry-After: 1 and an OpenAI-style server_error body (loading,
 * shutting down, queue full). */
enum MHD_Result em_respond_unavailable(em_server *s, struct MHD_Connection *c, const char *message, const char *code);
/* The 503 for a request the scheduler did not take: its queue is full, or
 * it is shutting down. */
enum MHD_Result em_respond_not_admitted(em_server *s, struct MHD_Connection *c, bool queue_full);
/* Queues r (may be NULL: MHD_NO) with the Server header and the security
 * layer's headers, counts the status, and releases r. stream: an SSE body. */
enum MHD_Result em_queue_response(em_server *s, struct MHD_Connection *c, int status, struct MHD_Response *r,
                                  bool stream);
/* True if the peer of socket fd has closed its side. */
bool em_conn_closed(int fd);
int em_conn_fd(struct MHD_Connection *c);
void em_count_status(em_server *s, int status);
double em_srv_now_ms(void);

/* ---- UTF-8 ---- */
bool em_utf8_valid(const char *s, size_t n);
/* Copy of s with invalid sequences replaced by U+FFFD (malloc'ed, NUL-terminated). */
char *em_utf8_sanitize(const char *s, size_t n, size_t *out_len);

/* ---- OpenAI endpoints (openai.c) ---- */
typedef struct em_oai_meta {
    bool chat;
    bool stream, include_usage;
    bool logprobs;
    int top_logprobs;
    int n_per_prompt;
    char id[64];
    long created;
    const char *model_id;
} em_oai_meta;

enum MHD_Result em_handle_completion(em_server *s, struct MHD_Connection *c, const char *body, size_t len, bool chat);
enum MHD_Result em_handle_models(em_server *s, struct MHD_Connection *c, const char *id);
/* JSON pieces shared with sse.c */
cJSON *em_oai_usage(const em_oai_meta *m, const em_request *r);
cJSON *em_oai_logprobs(em_server *s, const em_oai_meta *m, const em_lp_entry *e, size_t n, size_t text_offset);
cJSON *em_oai_chunk_base(const em_oai_meta *m);
/* HTTP status for a request that ended badly (timeout, shutdown, error), or 0. */
int em_oai_failure(const em_request *r, const char **type, const char **code, char *msg, size_t cap);

/* ---- contemplation (contemplate_api.c) ---- */
typedef struct em_contemplate_opts {
    bool on;
    int branches;
    ember_aggregate aggregate;
    int32_t max_branch_tokens; /* 0: max_tokens if given, else 256 */
    bool early_stop;
} em_contemplate_opts;

/* Reads "contemplate" and "reasoning_effort". Returns 0 (o->on false if
 * neither asks for contemplation) or -1 with the parameter's name, an error
 * code and a message for a 400. */
int em_contemplate_parse(const em_server *s, const cJSON *root, em_contemplate_opts *o, char *param, size_t pcap,
                         const char **code, char *msg, size_t mcap);
/* Runs a validated contemplation of one prompt (gp: sampling, stop strings;
 * max_tokens is the per-branch default) and sends the response or stream. */
enum MHD_Result em_contemplate_serve(em_server *s, struct MHD_Connection *c, const em_oai_meta *m,
                                     const em_gen_params *gp, const em_contemplate_opts *o, const int32_t *ids,
                                     size_t n_ids, uint64_t seed);

/* ---- streaming (sse.c) ----
 * em_sse is the event-stream plumbing both streaming endpoints share, the
 * first member of each one's stream state. The connection's thread runs the
 * reader: it hands out what is buffered, else calls `produce` (which takes
 * r->mu itself) to turn what the scheduler appended into events, else waits
 * for r to change, cancelling r when the client has gone and sending a
 * keep-alive comment every 10 s of silence. */
typedef struct em_sse em_sse;
typedef struct em_sec_req em_sec_req; /* (security.c, below) */
struct em_sse {
    em_server *s;
    em_request *r;        /* the stream's reference */
    em_oai_meta m;
    int fd;
    uint64_t version;     /* r->version the last produce saw */
    char *buf;
    size_t len, pos, cap; /* buffered bytes, of which pos were handed out */
    bool ended, oom;      /* ended: data: [DONE] is buffered */
    double last_out;
    em_sec_req *sec;      /* security state (security.c): ledger, redaction */
    void (*produce)(em_sse *st);
    void (*free_fields)(em_sse *st); /* the endpoint's own allocations, or NULL */
};
void em_sse_put(em_sse *st, const char *b, size_t n);
/* Appends `data: {obj}` and frees obj (NULL: out of memory, the stream ends). */
void em_sse_event(em_sse *st, cJSON *obj);
/* Sends st (calloc'ed, with s, r, m, produce and free_fields set) as a 200
 * text/event-stream response; the response owns st from here, and on
 * failure st is freed (r cancelled and released). */
enum MHD_Result em_sse_start(em_sse *st, struct MHD_Connection *c);
/* Frees st before em_sse_start (cancels and releases st->r). */
void em_sse_discard(em_sse *st);
/* The OpenAI chunk stream of a completion request (takes r). */
enum MHD_Result em_stream_start(em_server *s, struct MHD_Connection *c, em_request *r, const em_oai_meta *m);

/* ---- metrics (metrics.c) ---- */
enum MHD_Result em_handle_metrics(em_server *s, struct MHD_Connection *c);

/* ---- security (security.c) ----
 * API keys, model scope, rate limits, the usage ledger, redaction, the
 * prompt-injection guard and model integrity, over src/guard/. Each /v1
 * request gets an em_sec_req when it is routed; while its handler runs on
 * the connection's thread the hooks below find it through a thread-local
 * pointer (so they do nothing for other routes, or when s->sec is NULL). */
typedef struct em_sec em_sec;
typedef struct em_sec_req em_sec_req;

typedef struct em_sec_err {
    int status;
    const char *code;
    char param[96];
    char msg[512];
} em_sec_err;

/* Start-up: opens the key database, the ledger (and its writer thread), the
 * redactor and the injection guard. Prints a one-line error and returns -1
 * on failure. loopback: the listening address is a loopback one. */
int em_sec_open(em_server *s, bool loopback);
bool em_sec_auth_on(const em_server *s);
/* --model-sha256 / --models-manifest: hashes the model file before it is
 * loaded (-1 with a one-line error on a mismatch); em_sec_model_unchanged
 * checks after loading that the file was not replaced meanwhile. */
int em_sec_verify_model(em_server *s);
int em_sec_model_unchanged(em_server *s);
/* After the last connection is gone: flushes the ledger, frees everything. */
void em_sec_close(em_server *s);
/* The security layer's decisions since start-up, for /metrics; all zero
 * without it. Each request counts once, when it ends. Thread-safe. */
typedef struct em_sec_counts {
    uint64_t auth[6];         /* refused by authentication, by em_auth_result (missing .. error) */
    uint64_t rate_limited[5]; /* refused by a rate limit, by em_rl_status (requests .. too_large) */
    uint64_t guard[2][4];     /* injection guard's decision, by em_inj_source x em_guard_action */
    uint64_t redacted[2];     /* PII / secrets replaced: in prompts, in completions */
} em_sec_counts;
void em_sec_counts_get(const em_server *s, em_sec_counts *out);
/* "MODE" or "user=MODE,untrusted=MODE" (tool= for untrusted); MODE allow,
 * flag, sanitize or block. Returns 0 or -1 with msg. */
int em_sec_parse_guard(const char *spec, int *user, int *untrusted, char *msg, size_t cap);

/* http.c: a /v1 request is routed (authentication: true when it answered,
 * *ret is the result); a /metrics request (true when it answered 401/403);
 * the request's handler returned; libmicrohttpd completed the request. */
bool em_sec_begin(em_server *s, struct MHD_Connection *c, const char *url, em_sec_req **out, enum MHD_Result *ret);
bool em_sec_metrics_denied(em_server *s, struct MHD_Connection *c, enum MHD_Result *ret);
void em_sec_leave(void);
void em_sec_conn_done(em_sec_req *q, struct MHD_Connection *c, enum MHD_RequestTerminationCode toe);
/* Right before a response is queued: adds x-request-id, x-ratelimit-*,
 * x-ember-guard (...) and, unless it is a stream, finishes the request
 * (rate-limit correction, ledger row committed). */
void em_sec_on_response(em_server *s, struct MHD_Response *r, int status, bool stream);
/* Every JSON body: takes its usage for the ledger, redacts completions in
 * choices[], adds the injection guard's reason to a block's error. */
void em_sec_filter_json(em_server *s, int status, cJSON *body);

/* openai.c: the key's model scope (403); request options the security
 * settings rule out (400); chat messages and prompt strings through the
 * injection guard and prompt redaction (msgs has room for one more message,
 * a system notice); the text the model sees (for the audit log); admission
 * by the key's rate limits (true when it answered 429 / 413); whether the
 * key may see a model (/v1/models). */
int em_sec_check_model(em_server *s, const char *model, em_sec_err *e);
int em_sec_check_request(em_server *s, bool logprobs, bool contemplate_stream, em_sec_err *e);
int em_sec_chat(em_server *s, const cJSON *messages, em_chat_msg *msgs, size_t *n, em_sec_err *e);
const char *em_sec_prompt(em_server *s, const char *text, size_t *len, em_sec_err *e);
void em_sec_note_prompt(const char *text, size_t len);
bool em_sec_admit(em_server *s, struct MHD_Connection *c, int64_t prompt_tokens, int64_t reserve, bool max_given,
                  enum MHD_Result *ret);
bool em_sec_model_visible(em_server *s, const char *model);

/* sse.c: a stream takes a reference to its request's state; its text goes
 * through one streaming redactor per choice (returns the bytes to send now,
 * *len updated; final flushes; NULL when out of memory); before [DONE] the
 * request is finished (ledger row committed; call under r->mu); when the
 * stream is freed, an unfinished request is recorded as cut off (499). */
em_sec_req *em_sec_stream_attach(void);
const char *em_sec_stream_text(em_sec_req *q, int choice, const char *text, size_t *len, bool final);
void em_sec_stream_done(em_sec_req *q, const em_oai_meta *m, const em_request *r);
void em_sec_stream_detach(em_sec_req *q, const em_oai_meta *m, em_request *r);

#endif
