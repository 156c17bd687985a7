/* cmd_run.c - `ember run`: generate text from a prompt, streaming to stdout,
 * timings to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"
#include "common.h"

#define MAX_STOPS 16

static void help(void) {
    printf("usage: ember run [options] -p PROMPT\n\n"
           "  -p TEXT        prompt\n"
           "  -f FILE        read the prompt from a file\n"
           "  -n N           tokens to generate (default 256; -1: until end of text or context)\n"
           "  --temp T       temperature (default 0.8; 0 = greedy)\n"
           "  --greedy       same as --temp 0\n"
           "  --top-k K      (default 40; 0 = off)\n"
           "  --top-p P      (default 0.95; 1 = off)\n"
           "  --min-p P      (default 0.05; 0 = off)\n"
           "  --repeat-penalty R, --repeat-last-n N, --frequency-penalty F, --presence-penalty P\n"
           "  --seed S       RNG seed (default: from the clock)\n"
           "  --stop TEXT    stop when TEXT is generated (repeatable)\n"
           "  --no-bos       do not add the BOS token\n"
           "  --quiet        no timings on stderr\n" CLI_MODEL_HELP);
}

static bool emit(const char *text, size_t len, void *user) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

int cmd_run(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    ember_sampler_params sp = ember_sampler_defaults();
    sp.seed = (uint64_t)time(NULL);
    const char *prompt = NULL, *prompt_file = NULL;
    const char *stops[MAX_STOPS];
    size_t n_stops = 0;
    long n_predict = 256;
    bool add_bos = true, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_model_opt(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(prompt = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (!(prompt_file = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, -1, 1 << 24, &n_predict)) return 1;
        } else if (!strcmp(a, "--temp")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0, 100, &sp.temperature)) return 1;
        } else if (!strcmp(a, "--greedy")) {
            sp.temperature = 0;
        } else if (!strcmp(a, "--top-k")) {
            long k;
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 0, 1 << 24, &k)) return 1;
            sp.top_k = (int32_t)k;
        } else if (!strcmp(a, "--top-p")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0, 1, &sp.top_p)) return 1;
        } else if (!strcmp(a, "--min-p")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0, 1, &sp.min_p)) return 1;
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0.01, 100, &sp.repeat_penalty)) return 1;
        } else if (!strcmp(a, "--repeat-last-n")) {
            long k;
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, -1, 1 << 24, &k)) return 1;
            sp.penalty_last_n = (int32_t)k;
        } else if (!strcmp(a, "--frequency-penalty")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, -2, 2, &sp.frequency_penalty)) return 1;
        } else if (!strcmp(a, "--presence-penalty")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, -2, 2, &sp.presence_penalty)) return 1;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_u64(a, v, &sp.seed)) return 1;
        } else if (!strcmp(a, "--stop")) {
            if (!(v = arg_value(argc, argv, &i))) return 1;
            if (n_stops == MAX_STOPS) return cli_error("--stop: at most %d stop strings", MAX_STOPS);
            if (!*v || strlen(v) > 256) return cli_error("--stop: stop strings must be 1..256 bytes");
            stops[n_stops++] = v;
        } else if (!strcmp(a, "--no-bos")) {
            add_bos = false;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else {
            return cli_error("run: unknown option '%s' (see 'ember run --help')", a);
        }
    }
    char *file_text = NULL;
    if (prompt_file) {
        if (prompt) return cli_error("run: give -p or -f, not both");
        FILE *f = fopen(prompt_file, "rb");
        if (!f) return cli_error("%s: cannot open prompt file", prompt_file);
        size_t cap = 1 << 16, len = 0;
        file_text = malloc(cap + 1);
        size_t n;
        while (file_text && (n = fread(file_text + len, 1, cap - len, f)) > 0) {
            len += n;
            if (len == cap) {
                if (cap >= (64u << 20)) { fclose(f); free(file_text); return cli_error("%s: prompt file over 64 MiB", prompt_file); }
                char *nb = realloc(file_text, cap * 2 + 1);
                if (!nb) break;
                file_text = nb;
                cap *= 2;
            }
        }
        fclose(f);
        if (!file_text) return cli_error("out of memory");
        file_text[len] = 0;
        prompt = file_text;
    }
    if (!prompt) return cli_error("run: no prompt (use -p TEXT or -f FILE)");

    ember_model *m;
    ember_ctx *c;
    double load_ms;
    if (cli_load(&mo, 1, &m, &c, &load_ms)) { free(file_text); return 1; }
    int rc = 1;
    ember_error err;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    ember_sampler *s = NULL;
    if (ember_tokenize(m, prompt, strlen(prompt), add_bos, false, &ids, &n_ids, &err)) {
        cli_error("tokenize: %s", err.msg);
        goto done;
    }
    if (n_ids == 0) { cli_error("run: the prompt is empty"); goto done; }
    if (n_ids >= ember_ctx_n_ctx(c)) {
        cli_error("run: prompt is %zu tokens, longer than the context of %u (use -c)", n_ids, ember_ctx_n_ctx(c));
        goto done;
    }
    s = ember_sampler_new(&sp, ember_model_n_vocab(m));
    if (!s) { cli_error("cannot create sampler"); goto done; }
    if (!quiet) fprintf(stderr, "ember: %s (%s kernels), seed %llu\n", ember_model_desc(m), ember_kernels(),
                        (unsigned long long)sp.seed);
    fwrite(prompt, 1, strlen(prompt), stdout);
    fflush(stdout);
    ember_gen_stats st;
    if (ember_generate(c, s, ids, n_ids, (int32_t)n_predict, stops, n_stops, emit, NULL, &st, &err)) {
        fputc('\n', stdout);
        cli_error("%s", err.msg);
        goto done;
    }
    fputc('\n', stdout);
    if (!quiet)
        fprintf(stderr,
                "ember: load %.1f ms | prompt %d tokens, %.1f ms, %.1f tok/s | generated %d tokens, %.1f ms, %.1f tok/s | stop: %s\n",
                load_ms, st.n_prompt, st.prompt_ms, st.prompt_ms > 0 ? st.n_prompt * 1e3 / st.prompt_ms : 0.0,
                st.n_gen, st.gen_ms, st.gen_ms > 0 ? st.n_gen * 1e3 / st.gen_ms : 0.0, st.stop_reason);
    rc = 0;
done:
    ember_sampler_free(s);
    free(ids);
    ember_ctx_free(c);
    ember_model_free(m);
    free(file_text);
    return rc;
}
