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
} em_server;

/* ---- HTTP helpers (http.c) ---- */
/* Sends body (consumed) as JSON with the given status. */
enum MHD_Result em_respond_json(em_server *s, struct MHD_Connection *c, int status, cJSON *body);
/* OpenAI-style error: {"error":{"message","type","param","code"}}. */
enum MHD_Result em_respond_error(em_server *s, struct MHD_Connection *c, int status, const char *type,
                                 const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
cJSON *em_error_json(const char *message, const char *type, const char *param, const char *code);
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

/* ---- streaming (sse.c) ---- */
enum MHD_Result em_stream_start(em_server *s, struct MHD_Connection *c, em_request *r, const em_oai_meta *m);

/* ---- metrics (metrics.c) ---- */
enum MHD_Result em_handle_metrics(em_server *s, struct MHD_Connection *c);

#endif
