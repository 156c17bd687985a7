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
           "  --contemplate N      decode N reasoning branches over one prefilled prompt and aggregate them; without -c the\n"
           "                       KV cache is sized for the prompt plus N x the branch budget (each branch must fit\n"
           "                       the model's context length)\n"
           "  --aggregate vote|best|synthesize   how (default vote: majority of extracted answers)\n"
           "  --branch-tokens N    token budget per branch (default: -n)\n"
           "  --no-early-stop      run every branch to the end even when the vote is decided\n"
           "  --quiet        no timings on stderr\n" CLI_MODEL_HELP);
}

typedef struct {
    ember_contemplation *live; /* unused: branches are printed when done */
    char **text;
    size_t *len;
    int n;
} branch_print;

static void on_branch(int32_t i, const char *piece, size_t len, bool finished, void *user) {
    branch_print *bp = user;
    if (!finished) {
        char *t = realloc(bp->text[i], bp->len[i] + len + 1);
        if (!t) return;
        memcpy(t + bp->len[i], piece, len);
        bp->len[i] += len;
        t[bp->len[i]] = 0;
        bp->text[i] = t;
        return;
    }
    printf("--- branch %d/%d ---\n%s\n", i + 1, bp->n, bp->text[i] ? bp->text[i] : "");
    fflush(stdout);
}

/* KV positions for contemplation when -c is not given: the prompt once, and
 * for each branch its copy of the prompt's last, partly filled block, its
 * own tokens and a block of slack (as `ember bench --contemplate` sizes it);
 * with synthesize, also room for the final pass in sequence 0 (the candidate
 * list: at most ~80 tokens of framing and 261 per answer of <= 255 bytes,
 * plus EM_SYNTH_MAX_TOKENS = 64 greedy tokens), which runs after the other
 * branches are freed. Each branch is one sequence holding the prompt and its
 * tokens, so that must fit the model's context length; the pool holding all
 * branches may be larger. Returns 0, or 1 after printing the error. */
static int contemplate_ctx(const ember_model *m, long n_prompt, long n_branches, long branch_tokens, ember_aggregate agg,
                           long *n_ctx) {
    const long train = ember_model_n_ctx_train(m), blk = ember_kv_block_size();
    if (n_prompt + branch_tokens > train)
        return cli_error("run: each branch needs the prompt (%ld tokens) plus %ld branch tokens = %ld positions, more than "
                         "the model's context of %ld (lower -n / --branch-tokens or shorten the prompt)",
                         n_prompt, branch_tokens, n_prompt + branch_tokens, train);
    long need = n_prompt + n_branches * (((n_prompt % blk) + branch_tokens + blk - 1) / blk + 1) * blk;
    if (agg == EMBER_AGG_SYNTHESIZE) {
        long synth = n_prompt + 80 + n_branches * 261 + 64;
        if (synth > need) need = synth;
    }
    need += blk;
    if (need > (1L << 24)) return cli_error("run: contemplation needs %ld KV positions, more than 16M", need);
    *n_ctx = need;
    return 0;
}

static int run_contemplate(cli_model_opts *mo, const char *prompt, bool add_bos, const ember_sampler_params *sp,
                           long n_branches, const char *aggregate, long branch_tokens, bool early, const char **stops,
                           size_t n_stops, bool quiet) {
    ember_contemplate_params cp = {.n_branches = (int32_t)n_branches, .max_branch_tokens = (int32_t)branch_tokens,
                                   .early_stop = early, .sampling = *sp, .stops = stops, .n_stops = n_stops};
    if (!strcmp(aggregate, "vote")) cp.aggregate = EMBER_AGG_VOTE;
    else if (!strcmp(aggregate, "best")) cp.aggregate = EMBER_AGG_BEST;
    else if (!strcmp(aggregate, "synthesize")) cp.aggregate = EMBER_AGG_SYNTHESIZE;
    else return cli_error("--aggregate: '%s' is not vote, best or synthesize", aggregate);
    if (cli_check_file(mo->model)) return 1;
    ember_error err;
    ember_model *m = ember_model_load_ex(mo->model, &(ember_model_params){.mlock = mo->mlock}, &err);
    if (!m) return cli_error("%s", err.msg);
    ember_ctx *c = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = 1;
    ember_contemplation r = {0};
    branch_print bp = {NULL, calloc((size_t)n_branches, sizeof(char *)), calloc((size_t)n_branches, sizeof(size_t)),
                       (int)n_branches};
    if (!bp.text || !bp.len) { cli_error("out of memory"); goto out; }
    if (ember_tokenize(m, prompt, strlen(prompt), add_bos, false, &ids, &n_ids, &err)) {
        cli_error("tokenize: %s", err.msg);
        goto out;
    }
    if (n_ids == 0) { cli_error("run: the prompt is empty"); goto out; }
    long n_ctx = mo->n_ctx;
    if (!n_ctx && contemplate_ctx(m, (long)n_ids, n_branches, branch_tokens, cp.aggregate, &n_ctx)) goto out;
    ember_ctx_params cpar = {.n_ctx = (uint32_t)n_ctx, .n_seqs = (int32_t)n_branches, .n_threads = (int)mo->threads,
                             .kv_type = mo->kv};
    if (!(c = ember_ctx_new(m, &cpar, &err))) { cli_error("%s", err.msg); goto out; }
    if (n_ids >= ember_ctx_n_ctx(c)) {
        cli_error("run: prompt is %zu tokens, longer than the context of %u (use -c)", n_ids, ember_ctx_n_ctx(c));
        goto out;
    }
    if (!quiet)
        fprintf(stderr, "ember: %s, contemplating with %ld branches (%s), seed %llu, context %u\n", ember_model_desc(m),
                n_branches, aggregate, (unsigned long long)sp->seed, ember_ctx_n_ctx(c));
    if (ember_contemplate(c, ids, n_ids, &cp, on_branch, &bp, &r, &err)) {
        cli_error("%s%s", err.msg,
                  mo->n_ctx && strstr(err.msg, "KV cache full") ? " (-c is too small for these branches; without -c "
                                                                   "the cache is sized for them)" : "");
        goto out;
    }
    int agree = (int)(r.agreement * r.n_branches + 0.5);
    printf("=== answer (%s, %d/%d branches agree): %s\n", aggregate, agree, r.n_branches, r.answer);
    if (!quiet) {
        for (int32_t i = 0; i < r.n_branches; i++)
            fprintf(stderr, "ember: branch %d: %s, %d tokens, mean logprob %.3f, answer '%s'\n", i + 1,
                    r.branches[i].finish, r.branches[i].n_tokens, r.branches[i].mean_logprob, r.branches[i].answer);
        fprintf(stderr, "ember: %d prompt tokens once, %d generated, %.1f ms, %.1f tok/s, peak KV blocks %d\n",
                r.n_prompt, r.tokens_generated, r.ms, r.ms > 0 ? r.tokens_generated * 1e3 / r.ms : 0.0,
                r.kv_blocks_peak);
    }
    rc = 0;
out:
    for (long i = 0; bp.text && i < n_branches; i++) free(bp.text[i]);
    free(bp.text);
    free(bp.len);
    ember_contemplation_free(&r);
    free(ids);
    ember_ctx_free(c);
    ember_model_free(m);
    return rc;
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
    long n_predict = 256, n_branches = 0, branch_tokens = 0;
    bool add_bos = true, quiet = false, early = true;
    const char *aggregate = "vote";
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
        } else if (!strcmp(a, "--contemplate")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 64, &n_branches)) return 1;
        } else if (!strcmp(a, "--aggregate")) {
            if (!(aggregate = arg_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--branch-tokens")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 1 << 20, &branch_tokens)) return 1;
        } else if (!strcmp(a, "--no-early-stop")) {
            early = false;
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
    if (n_branches > 0) {
        int rc = run_contemplate(&mo, prompt, add_bos, &sp, n_branches, aggregate,
                                 branch_tokens ? branch_tokens : (n_predict > 0 ? n_predict : 256), early, stops, n_stops,
                                 quiet);
        free(file_text);
        return rc;
    }

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
