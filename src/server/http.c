/* http.c - libmicrohttpd glue for `ember serve`: routing, request bodies
 * (size limit, 413), JSON and OpenAI-style error responses, start-up (the
 * HTTP listener comes up before the model is loaded: /health answers 503
 * until it is) and graceful shutdown on SIGTERM/SIGINT (stop accepting,
 * let in-flight requests finish within the grace period, cancel the rest,
 * exit 0). */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

double em_srv_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------- UTF-8 -- */

/* Length of the valid sequence at p (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
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
    } else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    }
    return len;
}

bool em_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(p + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

char *em_utf8_sanitize(const char *s, size_t n, size_t *out_len) {
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(p + i, n - i);
        if (k) {
            memcpy(o + j, p + i, k);
            j += k;
            i += k;
        } else {
            memcpy(o + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
        }
    }
    o[j] = 0;
    if (out_len) *out_len = j;
    return o;
}

/* ---------------------------------------------------------- responses -- */

void em_count_status(em_server *s, int status) {
    if (status >= 100 && status < 600) atomic_fetch_add(&s->status_count[status], 1);
}

enum MHD_Result em_queue_response(em_server *s, struct MHD_Connection *c, int status, struct MHD_Response *r,
                                  bool stream) {
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Server", "ember");
    em_sec_on_response(s, r, status, stream);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    em_count_status(s, status);
    return ret;
}

static enum MHD_Result queue(em_server *s, struct MHD_Connection *c, int status, struct MHD_Response *r) {
    return em_queue_response(s, c, status, r, false);
}

static enum MHD_Result respond_text(em_server *s, struct MHD_Connection *c, int status, const char *type,
                                    const char *text, size_t len, bool copy) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (r) MHD_add_response_header(r, "Content-Type", type);
    return queue(s, c, status, r);
}

/* body (taken; NULL: out of memory) as an application/json response, or NULL */
static struct MHD_Response *json_response(em_server *s, int status, cJSON *body) {
    em_sec_filter_json(s, status, body);
    char *txt = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!txt) return NULL;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(txt);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

enum MHD_Result em_respond_json(em_server *s, struct MHD_Connection *c, int status, cJSON *body) {
    return queue(s, c, status, json_response(s, status, body));
}

enum MHD_Result em_respond_unavailable(em_server *s, struct MHD_Connection *c, const char *message, const char *code) {
    struct MHD_Response *r = json_response(s, 503, em_error_json(message, "server_error", NULL, code));
    if (r) MHD_add_response_header(r, "Retry-After", "1");
    return queue(s, c, 503, r);
}

enum MHD_Result em_respond_not_admitted(em_server *s, struct MHD_Connection *c, bool queue_full) {
    return queue_full ? em_respond_unavailable(s, c, "Too many requests are waiting; retry later", "queue_full")
                      : em_respond_unavailable(s, c, "The server is shutting down", "shutting_down");
}

cJSON *em_error_json(const char *message, const char *type, const char *param, const char *code) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (!e) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type ? type : "invalid_request_error");
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    return root;
}

enum MHD_Result em_respond_error(em_server *s, struct MHD_Connection *c, int status, const char *type,
                                 const char *param, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* messages may quote client input: keep them valid UTF-8 */
    char *clean = em_utf8_sanitize(msg, strlen(msg), NULL);
    cJSON *body = em_error_json(clean ? clean : "error", type, param, code);
    free(clean);
    return em_respond_json(s, c, status, body);
}

int em_conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool em_conn_closed(int fd) {
    if (fd < 0) return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* ------------------------------------------------------------- routes -- */

typedef struct conn_ctx {
    char *body;
    size_t len, cap;
    size_t dropped; /* bytes of an oversized body read and dropped */
    bool too_big;
    em_sec_req *sec; /* a /v1 request's security state (security.c) */
} conn_ctx;

static enum MHD_Result method_not_allowed(em_server *s, struct MHD_Connection *c, const char *method,
                                          const char *allow) {
    cJSON *body = em_error_json("", "invalid_request_error", NULL, "method_not_allowed");
    char msg[128];
    snprintf(msg, sizeof msg, "Method %.16s is not allowed here (allowed: %s)", method, allow);
    char *clean = em_utf8_sanitize(msg, strlen(msg), NULL);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(body, "error"), "message", cJSON_CreateString(clean ? clean : ""));
    free(clean);
    char *txt = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!txt) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(txt);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    return queue(s, c, 405, r);
}

static enum MHD_Result handle_health(em_server *s, struct MHD_Connection *c) {
    int st = atomic_load(&s->state);
    const char *txt = st == EM_SRV_READY     ? "{\"status\":\"ok\"}"
                      : st == EM_SRV_LOADING ? "{\"status\":\"loading\"}"
                                             : "{\"status\":\"shutting down\"}";
    return respond_text(s, c, st == EM_SRV_READY ? 200 : 503, "application/json", txt, strlen(txt), false);
}

static enum MHD_Result route(em_server *s, struct MHD_Connection *c, const char *url, const char *method,
                             conn_ctx *cc) {
    const bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    const bool post = !strcmp(method, "POST");
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        if (!get) return method_not_allowed(s, c, method, "GET, HEAD");
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(em_chat_page), (void *)em_chat_page,
                                                                 MHD_RESPMEM_PERSISTENT);
        if (r) {
            MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
            MHD_add_response_header(r, "Content-Security-Policy",
                                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
        }
        return queue(s, c, 200, r);
    }
    if (!strcmp(url, "/health")) {
        if (!get) return method_not_allowed(s, c, method, "GET, HEAD");
        return handle_health(s, c);
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) return method_not_allowed(s, c, method, "GET, HEAD");
        enum MHD_Result sr;
        if (em_sec_metrics_denied(s, c, &sr)) return sr;
        return em_handle_metrics(s, c);
    }
    const bool models = !strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11);
    const bool chat = !strcmp(url, "/v1/chat/completions"), cmpl = !strcmp(url, "/v1/completions");
    if (!models && !chat && !cmpl)
        return em_respond_error(s, c, 404, "invalid_request_error", NULL, "not_found", "Unknown path %.200s", url);
    if (models && !get) return method_not_allowed(s, c, method, "GET, HEAD");
    if ((chat || cmpl) && !post) return method_not_allowed(s, c, method, "POST");
    enum MHD_Result sr;
    if (em_sec_begin(s, c, url, &cc->sec, &sr)) return sr; /* 401 */
    int st = atomic_load(&s->state);
    if (st != EM_SRV_READY) {
        return em_respond_unavailable(s, c, st == EM_SRV_LOADING ? "The model is loading" : "The server is shutting down",
                                      st == EM_SRV_LOADING ? "loading" : "shutting_down");
    }
    if (models) return em_handle_models(s, c, url[10] == '/' ? url + 11 : NULL);
    return em_handle_completion(s, c, cc->body, cc->len, chat);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    em_server *s = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        *con_cls = cc;
        atomic_fetch_add(&s->n_requests, 1);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || *end || v > s->cfg.max_body) {
                /* A client waiting for "100 Continue" has sent nothing yet:
                 * answer now. Otherwise read and drop the body first, so the
                 * close does not reset the connection under the answer. */
                const char *ex = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
                if ((ex && strcasestr(ex, "100-continue")) || errno || *end || v > 16 * (unsigned long long)s->cfg.max_body)
                    return em_respond_error(s, c, 413, "invalid_request_error", NULL, "request_too_large",
                                            "Request body is larger than the limit of %zu bytes", s->cfg.max_body);
                cc->too_big = true;
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cc->too_big) {
            cc->dropped += n;
            return cc->dropped > 16 * s->cfg.max_body ? MHD_NO : MHD_YES;
        }
        if (cc->len + n > s->cfg.max_body) {
            cc->too_big = true;
            cc->dropped = cc->len + n;
            free(cc->body);
            cc->body = NULL;
            cc->len = cc->cap = 0;
            return MHD_YES;
        }
        if (cc->len + n + 1 > cc->cap) {
            size_t cap = cc->cap ? cc->cap : 4096;
            while (cap < cc->len + n + 1) cap *= 2;
            char *b = realloc(cc->body, cap);
            if (!b) return MHD_NO;
            cc->body = b;
            cc->cap = cap;
        }
        memcpy(cc->body + cc->len, upload_data, n);
        cc->len += n;
        cc->body[cc->len] = 0;
        return MHD_YES;
    }
    if (cc->too_big)
        return em_respond_error(s, c, 413, "invalid_request_error", NULL, "request_too_large",
                                "Request body is larger than the limit of %zu bytes", s->cfg.max_body);
    enum MHD_Result ret = route(s, c, url, method, cc);
    em_sec_leave();
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    conn_ctx *cc = *con_cls;
    if (!cc) return;
    em_sec_conn_done(cc->sec, c, toe);
    free(cc->body);
    free(cc);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    fprintf(stderr, "ember: http: %s\n", msg);
}

/* ------------------------------------------------------------ running -- */

static const char *basename_of(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int load_model(em_server *s) {
    ember_error err;
    double t0 = em_srv_now_ms();
    s->model = ember_model_load_ex(s->cfg.model_path, &(ember_model_params){.mlock = s->cfg.mlock}, &err);
    if (!s->model) {
        fprintf(stderr, "ember: %s\n", err.msg);
        return -1;
    }
    if (em_sec_model_unchanged(s)) return -1;
    if (s->cfg.alias && *s->cfg.alias) snprintf(s->model_id, sizeof s->model_id, "%s", s->cfg.alias);
    else {
        snprintf(s->model_id, sizeof s->model_id, "%s", basename_of(s->cfg.model_path));
        size_t n = strlen(s->model_id);
        if (n > 5 && !strcmp(s->model_id + n - 5, ".gguf")) s->model_id[n - 5] = 0;
    }
    /* chat template */
    if (s->cfg.chat_template) {
        s->tmpl = em_tmpl_from_name(s->cfg.chat_template);
    } else {
        long n = ember_model_meta_str(s->model, "tokenizer.chat_template", NULL, 0);
        char *t = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (t) ember_model_meta_str(s->model, "tokenizer.chat_template", t, (size_t)n + 1);
        s->tmpl = n > 0 ? (t ? em_tmpl_detect(t) : EM_TMPL_CHATML) : EM_TMPL_PLAIN;
        free(t);
        if (s->tmpl == EM_TMPL_UNKNOWN) {
            fprintf(stderr, "ember: warning: the model's chat template is not one ember knows; using chatml "
                            "(choose another with --chat-template)\n");
            s->tmpl = EM_TMPL_CHATML;
        }
    }
    em_sched_params sp = {.n_slots = s->cfg.slots, .n_ctx_seq = s->cfg.ctx, .n_ctx_pool = s->cfg.kv_pool,
                          .prefill_chunk = s->cfg.prefill_chunk, .max_queue = s->cfg.max_queue,
                          .n_threads = s->cfg.threads, .kv_type = s->cfg.kv};
    s->sched = em_sched_new(s->model, &sp, &err);
    if (!s->sched) {
        fprintf(stderr, "ember: %s\n", err.msg);
        return -1;
    }
    const em_sched_params *p = em_sched_get_params(s->sched);
    fprintf(stderr,
            "ember: model %s (%s) loaded in %.0f ms; %d slots, context %d per sequence, KV pool %d positions, "
            "chat template %s\n",
            s->model_id, ember_model_desc(s->model), em_srv_now_ms() - t0, p->n_slots, p->n_ctx_seq, p->n_ctx_pool,
            em_tmpl_name(s->tmpl));
    return 0;
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len, bool *v6) {
    memset(ss, 0, sizeof *ss);
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    const char *h = host;
    char buf[64];
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof buf) {
        memcpy(buf, host + 1, hl - 2);
        buf[hl - 2] = 0;
        h = buf;
    }
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        *v6 = true;
        return 0;
    }
    return -1;
}

static bool is_loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int em_server_run(const em_server_config *cfg) {
    em_server *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "ember: out of memory\n");
        return 1;
    }
    s->cfg = *cfg;
    if (!s->cfg.host) s->cfg.host = "127.0.0.1";
    if (!s->cfg.max_body) s->cfg.max_body = 8u << 20;
    s->created = (long)time(NULL);
    atomic_init(&s->state, EM_SRV_LOADING);

    struct sockaddr_storage ss;
    socklen_t sl;
    bool v6;
    if (parse_addr(s->cfg.host, s->cfg.port, &ss, &sl, &v6)) {
        fprintf(stderr, "ember: --host: '%s' is not an IPv4 or IPv6 address\n", s->cfg.host);
        free(s);
        return 2;
    }

    /* Signals are taken synchronously by this thread; every thread started
     * from here on inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* keys, ledger, guards; a model that fails its integrity check is
     * refused before anything listens */
    if (em_sec_open(s, is_loopback(&ss)) || em_sec_verify_model(s)) {
        em_sec_close(s);
        free(s);
        return 1;
    }
    if (!is_loopback(&ss) && !em_sec_auth_on(s))
        fprintf(stderr, "ember: warning: listening on %s, which is not a loopback address; the API has no "
                        "authentication (--no-auth)\n",
                s->cfg.host);

    unsigned conn_timeout = s->cfg.timeout_s > 0 ? (unsigned)s->cfg.timeout_s + 60 : 0;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_AUTO |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                                 mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, conn_timeout,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        fprintf(stderr, "ember: cannot listen on %s port %d: %s\n", s->cfg.host, s->cfg.port,
                errno ? strerror(errno) : "libmicrohttpd failed to start");
        em_sec_close(s);
        free(s);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : (unsigned)s->cfg.port;
    fprintf(stderr, "ember: listening on http://%s%s%s:%u\n", v6 ? "[" : "", s->cfg.host, v6 ? "]" : "", port);

    int rc = 0;
    if (load_model(s)) {
        rc = 1;
        atomic_store(&s->state, EM_SRV_STOPPING);
        goto stop;
    }
    atomic_store(&s->state, EM_SRV_READY);
    fprintf(stderr, "ember: ready\n");

    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    fprintf(stderr, "ember: %s: shutting down (grace period %.0f s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            s->cfg.shutdown_s);
    atomic_store(&s->state, EM_SRV_STOPPING);
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    em_sched_drain(s->sched);
    {
        const double deadline = em_srv_now_ms() + s->cfg.shutdown_s * 1e3;
        struct timespec tick = {0, 20 * 1000000L};
        while (em_sched_busy(s->sched) && em_srv_now_ms() < deadline) {
            if (sigtimedwait(&set, NULL, &tick) > 0) break; /* a second signal: stop now */
        }
        if (em_sched_busy(s->sched)) {
            fprintf(stderr, "ember: cancelling %d unfinished generation(s)\n", em_sched_busy(s->sched));
            em_sched_cancel_all(s->sched, "shutdown");
            const double d2 = em_srv_now_ms() + 2000;
            while (em_sched_busy(s->sched) && em_srv_now_ms() < d2) nanosleep(&tick, NULL);
        }
        /* let the connections write their last bytes */
        const double d3 = em_srv_now_ms() + 500;
        const union MHD_DaemonInfo *ci;
        while ((ci = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS)) &&
               ci->num_connections > 0 && em_srv_now_ms() < d3)
            nanosleep(&tick, NULL);
    }
stop:
    MHD_stop_daemon(s->daemon);
    em_sched_free(s->sched);
    ember_model_free(s->model);
    em_sec_close(s);
    free(s);
    fprintf(stderr, "ember: stopped\n");
    return rc;
}
