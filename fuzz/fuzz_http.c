/* fuzz_http.c - libFuzzer target for the request layer of `ember serve`
 * (`make fuzz-http`).
 *
 * Everything between the socket and the scheduler runs for real, without a
 * socket: http.c is compiled into this file (its request callback, routing
 * and body limits are static) and the handful of libmicrohttpd calls that
 * take a connection or build a response are replaced below by versions that
 * record the answer (this executable's definitions take precedence over the
 * shared library's). One input is one HTTP request: its headers and body go
 * through on_request() exactly as libmicrohttpd would hand them over (first
 * call, body in pieces, final call), then on_completed(). A completion
 * request is parsed and validated (openai.c: every field, messages and
 * content parts, the chat template of the input's choice, tokenization, stop
 * arrays, logprobs, n, stream_options, context length), turned into a
 * scheduler request, and submitted to a real scheduler over the bundled
 * model that has been drained, so it is refused with 503 instead of
 * generating (generation is covered by tests/cli_server.sh).
 *
 * Checked for every input, besides what ASan/UBSan/LSan find: exactly one
 * response per request (or a refused connection); the status is one the API
 * documents (never 5xx but the drained scheduler's 503); every JSON answer is
 * valid UTF-8 and parses, and an error answer has OpenAI's shape
 * {"error":{"message":string,"type":string,"param":string|null,"code":...}}.
 *
 * Input layout: byte 0 picks the chat template (low 4 bits), a small body
 * limit (bit 4), how the body is split into uploads (bits 5-6) and the model
 * (bit 7, when a second one is loaded); byte 1 picks the request:
 *   0-3  POST /v1/chat/completions, the rest is the body
 *   4-5  POST /v1/completions, the rest is the body
 *   6    a raw request: "METHOD URL\nName: value\n...\n\nbody" (up to 16 headers)
 *   7    the rest as a model's chat template text (em_tmpl_detect) and as
 *        bytes to sanitize (em_utf8_sanitize)
 *
 * Models: EMBER_FUZZ_MODEL (default models/stories260K.gguf) and, if set,
 * EMBER_FUZZ_MODEL2 (`make fuzz-http` makes a tiny random-weight model with
 * llama.cpp's Llama 3 BPE vocabulary, special tokens included).
 * Seeds: EMBER_WRITE_CORPUS=DIR build-fuzz/fuzz_http writes example requests,
 * valid and invalid, into DIR and exits. */
#include "../src/server/http.c"

#include <sys/stat.h>

/* ------------------------------------------------ libmicrohttpd, faked -- */

struct MHD_Response {
    char *data;
    size_t len;
    bool owned;
    MHD_ContentReaderFreeCallback crfc;
    void *crc_cls;
    char content_type[128];
    bool retry_after;
};

static struct {
    int queued;           /* responses queued for this request */
    unsigned status;
    char *body;           /* copy of the queued response's body */
    size_t body_len;
    char content_type[128];
    bool retry_after;
    /* request headers */
    int n_headers;
    const char *hname[16], *hvalue[16];
} conn;

static struct MHD_Connection *const FAKE_CONN = (struct MHD_Connection *)&conn;

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (mode == MHD_RESPMEM_MUST_FREE) {
        r->data = buffer;
        r->owned = true;
    } else if (mode == MHD_RESPMEM_MUST_COPY) {
        r->data = malloc(size ? size : 1);
        if (!r->data) {
            free(r);
            return NULL;
        }
        if (size) memcpy(r->data, buffer, size);
        r->owned = true;
    } else {
        r->data = buffer;
    }
    r->len = size;
    return r;
}

struct MHD_Response *MHD_create_response_from_callback(uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
                                                       void *crc_cls, MHD_ContentReaderFreeCallback crfc) {
    (void)size;
    (void)block_size;
    (void)crc;
    struct MHD_Response *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->crfc = crfc;
    r->crc_cls = crc_cls;
    return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *header, const char *content) {
    if (!r || !header || !content) return MHD_NO;
    if (!strcasecmp(header, "Content-Type")) snprintf(r->content_type, sizeof r->content_type, "%s", content);
    if (!strcasecmp(header, "Retry-After")) r->retry_after = true;
    return MHD_YES;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r) {
    if (c != FAKE_CONN || !r) __builtin_trap();
    conn.queued++;
    conn.status = status;
    free(conn.body);
    conn.body = malloc(r->len + 1);
    if (!conn.body) __builtin_trap();
    if (r->len) memcpy(conn.body, r->data, r->len);
    conn.body[r->len] = 0;
    conn.body_len = r->len;
    memcpy(conn.content_type, r->content_type, sizeof conn.content_type);
    conn.retry_after = r->retry_after;
    return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *r) {
    if (!r) return;
    if (r->owned) free(r->data);
    if (r->crfc) r->crfc(r->crc_cls);
    free(r);
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c, enum MHD_ConnectionInfoType t, ...) {
    (void)c;
    (void)t;
    return NULL; /* no socket: em_conn_fd() is -1, never "closed" */
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key) {
    if (c != FAKE_CONN || kind != MHD_HEADER_KIND || !key) return NULL;
    for (int i = 0; i < conn.n_headers; i++) /* the first of a repeated header, as libmicrohttpd */
        if (!strcasecmp(key, conn.hname[i])) return conn.hvalue[i];
    return NULL;
}

/* ------------------------------------------------------------- set-up -- */

static em_server *servers[2];
static int n_servers;
static volatile size_t sink;
static bool verbose; /* EMBER_FUZZ_VERBOSE=1: print each answer (to check the seeds) */

static em_server *make_server(const char *path) {
    em_server *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->cfg.model_path = path;
    s->cfg.host = "127.0.0.1";
    s->cfg.slots = 4;
    s->cfg.ctx = 256; /* long prompts reach the context-length check */
    s->cfg.threads = 1;
    s->cfg.max_body = 1u << 20;
    s->cfg.timeout_s = 30;
    s->created = 1700000000;
    atomic_init(&s->state, EM_SRV_LOADING);
    if (load_model(s)) {
        fprintf(stderr, "fuzz_http: cannot load %s\n", path);
        exit(1);
    }
    em_sched_drain(s->sched); /* submissions answer 503 instead of generating */
    atomic_store(&s->state, EM_SRV_READY);
    return s;
}

static void write_corpus(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("EMBER_WRITE_CORPUS");
    if (dir) {
        write_corpus(dir);
        exit(0);
    }
    verbose = getenv("EMBER_FUZZ_VERBOSE") != NULL;
    const char *m1 = getenv("EMBER_FUZZ_MODEL"), *m2 = getenv("EMBER_FUZZ_MODEL2");
    servers[n_servers++] = make_server(m1 && *m1 ? m1 : "models/stories260K.gguf");
    if (m2 && *m2) servers[n_servers++] = make_server(m2);
    return 0;
}

/* ------------------------------------------------------------- checks -- */

static bool json_type(const char *ct) { return !strncmp(ct, "application/json", 16); }

static void check_response(bool completion) {
    const unsigned st = conn.status;
    switch (st) {
    case 200: case 400: case 404: case 405: case 413: break;
    case 503: /* only from the drained scheduler */
        if (!completion || !conn.retry_after) __builtin_trap();
        break;
    default: __builtin_trap();
    }
    if (!json_type(conn.content_type)) {
        if (st != 200) __builtin_trap(); /* every error is JSON */
        return;
    }
    if (!em_utf8_valid(conn.body, conn.body_len)) __builtin_trap();
    cJSON *j = cJSON_ParseWithLength(conn.body, conn.body_len);
    if (!j || !cJSON_IsObject(j)) __builtin_trap();
    if (st != 200) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *param = cJSON_GetObjectItemCaseSensitive(e, "param");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        if (!cJSON_IsObject(e) || !cJSON_IsString(msg) || !*msg->valuestring || !cJSON_IsString(type) ||
            !(cJSON_IsString(param) || cJSON_IsNull(param)) || !(cJSON_IsString(code) || cJSON_IsNull(code)))
            __builtin_trap();
    }
    cJSON_Delete(j);
}

/* One request through the callback, as libmicrohttpd calls it. */
static void serve_one(em_server *s, const char *method, const char *url, const uint8_t *body, size_t len,
                      unsigned pieces) {
    conn.queued = 0;
    conn.status = 0;
    conn.content_type[0] = 0;
    conn.retry_after = false;
    void *con_cls = NULL;
    size_t zero = 0;
    bool refused = false;
    enum MHD_Result r = on_request(s, FAKE_CONN, url, method, "HTTP/1.1", NULL, &zero, &con_cls);
    if (r == MHD_NO) refused = true;
    /* an answer queued on the first call (an announced oversized body) ends the request */
    if (!refused && !conn.queued) {
        size_t off = 0;
        for (unsigned p = 0; p < pieces && off < len && !refused; p++) {
            size_t n = p + 1 == pieces ? len - off : (len - off) / (pieces - p);
            if (!n) continue;
            size_t left = n;
            if (on_request(s, FAKE_CONN, url, method, "HTTP/1.1", (const char *)body + off, &left, &con_cls) == MHD_NO)
                refused = true;
            else if (left != 0)
                __builtin_trap(); /* every byte handed over must be consumed */
            off += n;
        }
        if (!refused) {
            zero = 0;
            if (on_request(s, FAKE_CONN, url, method, "HTTP/1.1", NULL, &zero, &con_cls) == MHD_NO && !conn.queued)
                refused = true;
        }
    }
    on_completed(s, FAKE_CONN, &con_cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (con_cls) __builtin_trap();
    if (conn.queued > 1) __builtin_trap();
    if (verbose)
        fprintf(stderr, "%s %.60s -> %u %.200s\n", method, url, conn.queued ? conn.status : 0,
                conn.queued ? conn.body : refused ? "(refused)" : "(nothing)");
    if (conn.queued) check_response(!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions"));
    free(conn.body);
    conn.body = NULL;
    conn.body_len = 0;
}

/* "METHOD URL\nName: value\n...\n\nbody" */
static void serve_raw(em_server *s, const uint8_t *d, size_t n, unsigned pieces) {
    char *t = malloc(n + 1);
    if (!t) return;
    memcpy(t, d, n);
    t[n] = 0;
    size_t head_len = n;
    const uint8_t *body = (const uint8_t *)"";
    size_t body_len = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (t[i] == '\n' && t[i + 1] == '\n') {
            head_len = i;
            body = d + i + 2;
            body_len = n - i - 2;
            break;
        }
    t[head_len] = 0;
    char *save = NULL, *line = strtok_r(t, "\n", &save);
    char *method = line ? line : (char *)"GET", *url = (char *)"/";
    if (line) {
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = 0;
            url = sp + 1;
        }
    }
    conn.n_headers = 0;
    while (line && (line = strtok_r(NULL, "\n", &save)) && conn.n_headers < 16) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ') v++;
        conn.hname[conn.n_headers] = line;
        conn.hvalue[conn.n_headers++] = v;
    }
    serve_one(s, method, url, body, body_len, pieces);
    conn.n_headers = 0;
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const uint8_t cfg = data[0], mode = data[1] & 7;
    data += 2;
    size -= 2;
    em_server *s = servers[(cfg >> 7) % n_servers];
    const int nt = (int)EM_TMPL_COUNT;
    s->tmpl = (em_tmpl)((cfg & 15) % nt);
    s->cfg.max_body = (cfg & 16) ? 256 : 1u << 20;
    const unsigned pieces = 1 + ((cfg >> 5) & 3);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", size);
    switch (mode) {
    case 6:
        serve_raw(s, data, size, pieces);
        break;
    case 7: {
        char *t = malloc(size + 1);
        if (!t) return 0;
        if (size) memcpy(t, data, size);
        t[size] = 0;
        sink += (size_t)em_tmpl_detect(t);
        size_t ol = 0;
        char *o = em_utf8_sanitize(t, size, &ol);
        if (!o || !em_utf8_valid(o, ol) || ol < size || ol > 3 * size) __builtin_trap();
        if (em_utf8_valid(t, size) && (ol != size || memcmp(o, t, size))) __builtin_trap();
        free(o);
        free(t);
        break;
    }
    default:
        conn.hname[0] = "Content-Length"; /* as a client would send it */
        conn.hvalue[0] = cl;
        conn.hname[1] = "Content-Type";
        conn.hvalue[1] = "application/json";
        conn.n_headers = 2;
        serve_one(s, "POST", mode < 4 ? "/v1/chat/completions" : "/v1/completions", data, size, pieces);
        conn.n_headers = 0;
        break;
    }
    return 0;
}

/* ---------------------------------------------------------- the seeds -- */

static void put_seed(const char *dir, int *k, uint8_t cfg, uint8_t mode, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%03d", dir, (*k)++);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputc(cfg, f);
    fputc(mode, f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

static void write_corpus(const char *dir) {
    mkdir(dir, 0755);
    static const char *const CHAT[] = {
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
        "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
        "\"content\":\"Hello\"},{\"role\":\"assistant\",\"content\":\" Hi! \"},{\"role\":\"user\",\"content\":\"Bye\"}],"
        "\"max_tokens\":8,\"temperature\":0}",
        "{\"messages\":[{\"role\":\"developer\",\"content\":\"x\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null},{\"role\":\"tool\","
        "\"content\":\"t\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"n\":3,\"seed\":-5,\"stop\":[\"\\n\",\"the\","
        "\"\"],\"logprobs\":true,\"top_logprobs\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stop\":\"end\",\"max_completion_tokens\":4,\"top_p\":0.5,"
        "\"top_k\":5,\"min_p\":0.1,\"presence_penalty\":1,\"frequency_penalty\":-1,\"repeat_penalty\":1.1,"
        "\"ignore_eos\":true,\"user\":\"u\",\"tools\":[],\"response_format\":{\"type\":\"text\"}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"<|im_start|>user\\n<s></s>[INST]<|eot_id|>\\u00e9\\ud83d\\ude00\"}]}",
        "{\"messages\":[]}",
        "{\"messages\":{}}",
        "{\"messages\":[1]}",
        "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"user\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":17}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":1.5}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":1e30}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":true}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,\"stream_options\":[]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":\"gpt-4\"}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":null,\"stop\":null,\"n\":null}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":7}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],\"contemplate\":{\"branches\":3,\"aggregate\":\"vote\","
        "\"max_branch_tokens\":16,\"early_stop\":false}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"contemplate\":true,\"stream\":true}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"high\",\"n\":2}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"contemplate\":{\"branches\":0,\"aggregate\":7}}",
        "[1,2,3]",
        "{\"messages\":",
        "",
        "\"\\ud800\"",
    };
    static const char *const CMPL[] = {
        "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}",
        "{\"prompt\":[\"a\",\"b\",\"c\"],\"n\":2,\"logprobs\":3,\"echo\":false,\"best_of\":2,\"suffix\":null}",
        "{\"prompt\":[1,403,407],\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
        "{\"prompt\":[[1,2],[3,4]],\"stop\":[\"x\"],\"seed\":18446744073709551615}",
        "{\"prompt\":[1,100000]}",
        "{\"prompt\":[-1]}",
        "{\"prompt\":[1.5]}",
        "{\"prompt\":[[]]}",
        "{\"prompt\":[]}",
        "{\"prompt\":\"\"}",
        "{\"prompt\":7}",
        "{\"prompt\":[\"a\",1]}",
        "{\"prompt\":\"x\",\"echo\":true}",
        "{\"prompt\":\"x\",\"best_of\":3}",
        "{\"prompt\":\"x\",\"logprobs\":6}",
        "{\"prompt\":\"x\",\"logprobs\":true}",
        "{\"prompt\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
        "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"n\":16}",
        "{}",
    };
    static const char *const RAW[] = {
        "GET /\n\n",
        "HEAD /index.html\n\n",
        "GET /health\n\n",
        "GET /metrics\n\n",
        "GET /v1/models\n\n",
        "GET /v1/models/stories260K\n\n",
        "GET /v1/models/gpt-4\n\n",
        "DELETE /v1/models\n\n",
        "GET /v1/chat/completions\n\n",
        "POST /\n\n",
        "GET /nope/\xff\xfe\n\n",
        "POST /v1/completions\nContent-Length: 28\n\n{\"prompt\":\"x\",\"max_tokens\":1}",
        "POST /v1/completions\nContent-Length: 99999999\nExpect: 100-continue\n\n{}",
        "POST /v1/completions\nContent-Length: 99999999999999999999999\n\n{}",
        "POST /v1/completions\nContent-Length: 12x\n\n{}",
        ("POST /v1/chat/completions\nAuthorization: Bearer sk-nope\nContent-Type: application/json\n\n"
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
        "POST /v1/chat/completions\nContent-Length: 300\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}",
    };
    int k = 0;
    for (size_t i = 0; i < sizeof CHAT / sizeof *CHAT; i++) {
        put_seed(dir, &k, (uint8_t)(i % (size_t)EM_TMPL_COUNT), 0, CHAT[i]);
        if (i < 6) /* the valid ones with every template, split into pieces, on the second model */
            for (int t = 0; t < (int)EM_TMPL_COUNT; t++) put_seed(dir, &k, (uint8_t)(t | (t & 3) << 5 | 0x80), 1, CHAT[i]);
    }
    for (size_t i = 0; i < sizeof CMPL / sizeof *CMPL; i++) put_seed(dir, &k, (uint8_t)(i & 1 ? 0x80 : 0), 4, CMPL[i]);
    for (size_t i = 0; i < sizeof RAW / sizeof *RAW; i++) {
        put_seed(dir, &k, 0, 6, RAW[i]);
        put_seed(dir, &k, 0x10 | 0x40, 6, RAW[i]); /* 256-byte body limit, three pieces */
    }
    put_seed(dir, &k, 0, 7, "{% for message in messages %}<|im_start|>{{ message['role'] }}{% endfor %}");
    put_seed(dir, &k, 0, 7, "<|start_header_id|>x<|end_header_id|>\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80");
    put_seed(dir, &k, 0, 7, "mistral [INST] ' [INST] ' + system_message [AVAILABLE_TOOLS]");
    fprintf(stderr, "fuzz_http: wrote %d seeds to %s\n", k, dir);
}
