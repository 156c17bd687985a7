/* cmd_serve.c - `ember serve`: the OpenAI-compatible HTTP server (see
 * src/server/server.h). */
#include <stdio.h>
#include <string.h>

#include "../guard/injection.h"
#include "../guard/integrity.h"
#include "../guard/redact.h"
#include "../server/server.h"
#include "args.h"
#include "cli.h"
#include "common.h"

static void help(void) {
    printf("usage: ember serve [options]\n\n"
           "Serves an OpenAI-compatible API (POST /v1/chat/completions, /v1/completions, GET /v1/models),\n"
           "GET /health, GET /metrics (Prometheus) and a chat page at GET /. SIGTERM or SIGINT stops it\n"
           "gracefully.\n\n"
           "  -m FILE              GGUF model (default: the bundled models/stories260K.gguf)\n"
           "  --host ADDR          address to listen on (default 127.0.0.1)\n"
           "  --port N             port (default 8080; 0: any free port, printed at start-up)\n"
           "  --slots N            sequences generated at once (default 4)\n"
           "  --ctx N              context positions per sequence (default: the model's, at most 4096)\n"
           "  --kv-pool N          KV cache positions shared by all sequences (default: slots x ctx; at least\n"
           "                       ctx, rounded up to a multiple of 256); finished prompts stay there as a\n"
           "                       prefix cache, and when it is full the youngest sequence is preempted\n"
           "  -t N                 threads (default 1; results do not depend on it)\n"
           "  --kv f16|f32         KV cache precision (default f16)\n"
           "  --mlock              lock the model file in RAM (needs RLIMIT_MEMLOCK >= its size)\n"
           "  --chat-template NAME %s\n"
           "                       (default: detected from the model; plain 'role: content' lines without one)\n"
           "  --alias NAME         model id clients use (default: the file name without .gguf)\n"
           "  --max-queue N        sequences waiting before requests get 503 (default 64)\n"
           "  --prefill-chunk N    prompt tokens evaluated per step (default 128)\n"
           "  --max-body BYTES     request body limit (default 8388608)\n"
           "  --timeout S          per-request time limit in seconds (default 600; 0: none)\n"
           "  --shutdown-grace S   time in-flight requests get to finish at shutdown (default 5)\n"
           "  --contemplate-low N, --contemplate-medium N, --contemplate-high N\n"
           "                       branches a request's \"reasoning_effort\" asks for (default 2, 4, 8; at most\n"
           "                       --slots); medium is also the default of \"contemplate\": {}\n"
           "\nsecurity (see README.md, Security):\n"
           "  --db FILE            API keys and usage ledger (SQLite; default $EMBER_DB, else ./ember.db, when\n"
           "                       keys are needed; without it and without keys there is no ledger)\n"
           "  --auth, --no-auth    require 'Authorization: Bearer KEY' on /v1/* (default: on unless --host is a\n"
           "                       loopback address); keys come from 'ember keys create'\n"
           "  --metrics-admin      /metrics needs an admin key\n"
           "  --audit-content      the ledger also keeps prompt and completion text, redacted\n"
           "  --redact WHERE       prompts,completions,logs | all | none (default logs)\n"
           "  --guard MODE         prompt-injection guard: allow, flag, sanitize or block, or per kind of content\n"
           "                       user=MODE,untrusted=MODE (untrusted: role tool, \"untrusted\": true); default flag\n"
           "  --guard-window BYTES bytes of one message the guard scans, head and tail (default 16384)\n"
           "  --model-sha256 HEX   refuse to start unless the model file has this SHA-256\n"
           "  --models-manifest F  refuse to start unless the model file is listed in manifest F with its SHA-256\n",
           em_tmpl_names());
}

int cmd_serve(int argc, char **argv) {
    em_server_config cfg = {.host = "127.0.0.1", .port = 8080, .slots = 4, .threads = 1, .max_queue = 64,
                            .prefill_chunk = 128, .max_body = 8u << 20, .timeout_s = 600, .shutdown_s = 5,
                            .kv = EMBER_KV_F16, .contemplate_branches = {2, 4, 8}};
    cfg.auth = -1;
    cfg.redact = EM_REDACT_LOGS;
    cfg.guard_user = cfg.guard_untrusted = EM_GUARD_FLAG;
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n;
        float f;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return 0;
        }
        if (!strcmp(a, "--ctx")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 16, 1 << 20, &n)) return 2;
            mo.n_ctx = n;
            continue;
        }
        int r = cli_model_opt(&mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--host")) {
            if (!(cfg.host = arg_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--port")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 0, 65535, &n)) return 2;
            cfg.port = (int)n;
        } else if (!strcmp(a, "--slots")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 256, &n)) return 2;
            cfg.slots = (int)n;
        } else if (!strcmp(a, "--kv-pool")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 16, 1 << 24, &n)) return 2;
            cfg.kv_pool = (int)n;
        } else if (!strcmp(a, "--chat-template")) {
            if (!(cfg.chat_template = arg_value(argc, argv, &i))) return 2;
            if (em_tmpl_from_name(cfg.chat_template) == EM_TMPL_UNKNOWN) {
                cli_error("--chat-template: unknown template '%s' (known: %s)", cfg.chat_template, em_tmpl_names());
                return 2;
            }
        } else if (!strcmp(a, "--alias")) {
            if (!(cfg.alias = arg_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--max-queue")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 1 << 20, &n)) return 2;
            cfg.max_queue = (int)n;
        } else if (!strcmp(a, "--prefill-chunk")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 8192, &n)) return 2;
            cfg.prefill_chunk = (int)n;
        } else if (!strcmp(a, "--max-body")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1024, 1L << 30, &n)) return 2;
            cfg.max_body = (size_t)n;
        } else if (!strcmp(a, "--timeout")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0, 1e7, &f)) return 2;
            cfg.timeout_s = f;
        } else if (!strcmp(a, "--contemplate-low") || !strcmp(a, "--contemplate-medium") ||
                   !strcmp(a, "--contemplate-high")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, EM_SCHED_MAX_CHOICES, &n)) return 2;
            cfg.contemplate_branches[a[14] == 'l' ? 0 : a[14] == 'm' ? 1 : 2] = (int)n;
        } else if (!strcmp(a, "--db")) {
            if (!(cfg.db_path = arg_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--auth") || !strcmp(a, "--no-auth")) {
            cfg.auth = a[2] == 'a';
        } else if (!strcmp(a, "--metrics-admin")) {
            cfg.metrics_admin = true;
        } else if (!strcmp(a, "--audit-content")) {
            cfg.audit_content = true;
        } else if (!strcmp(a, "--redact")) {
            em_err err;
            if (!(v = arg_value(argc, argv, &i))) return 2;
            if (em_redact_parse_where(v, &cfg.redact, &err)) {
                cli_error("--redact: %s", err.msg);
                return 2;
            }
        } else if (!strcmp(a, "--guard")) {
            char msg[256];
            if (!(v = arg_value(argc, argv, &i))) return 2;
            if (em_sec_parse_guard(v, &cfg.guard_user, &cfg.guard_untrusted, msg, sizeof msg)) {
                cli_error("--guard: %s", msg);
                return 2;
            }
        } else if (!strcmp(a, "--guard-window")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 64, 1L << 30, &n)) return 2;
            cfg.guard_window = (size_t)n;
        } else if (!strcmp(a, "--model-sha256")) {
            em_err err;
            uint8_t d[EM_SHA256_LEN];
            if (!(cfg.model_sha256 = arg_value(argc, argv, &i))) return 2;
            if (em_sha256_parse(cfg.model_sha256, d, &err)) {
                cli_error("--model-sha256: %s", err.msg);
                return 2;
            }
        } else if (!strcmp(a, "--models-manifest")) {
            if (!(cfg.models_manifest = arg_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--shutdown-grace")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0, 3600, &f)) return 2;
            cfg.shutdown_s = f;
        } else {
            cli_error("serve: unknown option '%s' (see 'ember serve --help')", a);
            return 2;
        }
    }
    if (cli_check_file(mo.model)) return 1;
    cfg.model_path = mo.model;
    cfg.threads = (int)mo.threads;
    cfg.ctx = (int)mo.n_ctx;
    cfg.kv = mo.kv;
    cfg.mlock = mo.mlock;
    return em_server_run(&cfg);
}
