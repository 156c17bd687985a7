#define _GNU_SOURCE
/* cmd_logits.c - `ember logits`: evaluates token ids as one prompt and prints
 * the logits at every position as JSON (all, or the top K with ids). The tool
 * for parity checks against llama.cpp and for debugging a model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "common.h"

static void help(void) {
    printf("usage: ember logits [-m FILE] --ids 1,2,3 [--top K] [options]\n"
           "  prints {\"ids\": [...], \"logits\": [[n_vocab floats] per position]}\n"
           "  --top K        per position only the K largest as [id, logit] pairs\n" CLI_MODEL_HELP);
}

static int parse_ids(const char *s, int32_t **out, size_t *n) {
    size_t cap = 16, len = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return cli_error("out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return cli_error("--ids: '%s' is not a comma-separated list of token ids", s);
        }
        if (len == cap) {
            if (cap >= (1u << 24)) { free(ids); return cli_error("--ids: too many ids"); }
            int32_t *nb = realloc(ids, cap * 2 * sizeof *nb);
            if (!nb) { free(ids); return cli_error("out of memory"); }
            ids = nb;
            cap *= 2;
        }
        ids[len++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (len == 0) { free(ids); return cli_error("--ids: empty list"); }
    *out = ids;
    *n = len;
    return 0;
}

/* Larger logit first, ties toward the lower id (as the oracle sorts). */
static int by_logit_desc(const void *a, const void *b, void *ctx) {
    const float *l = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (l[x] != l[y]) return l[x] > l[y] ? -1 : 1;
    return (x > y) - (x < y);
}

int cmd_logits(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    const char *ids_arg = NULL;
    long top = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_model_opt(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--ids")) { if (!(ids_arg = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--top")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 1 << 24, &top)) return 1;
        } else return cli_error("logits: unknown option '%s'", a);
    }
    if (!ids_arg) return cli_error("logits: no --ids given");
    int32_t *ids = NULL;
    size_t n = 0;
    if (parse_ids(ids_arg, &ids, &n)) return 1;
    ember_model *m;
    ember_ctx *c;
    if (cli_load(&mo, 1, &m, &c, NULL)) { free(ids); return 1; }
    int rc = 1;
    const int32_t nv = ember_model_n_vocab(m);
    int32_t *pos = malloc(n * sizeof *pos), *seq = calloc(n, sizeof *seq);
    int8_t *want = malloc(n);
    int32_t *order = malloc((size_t)nv * sizeof *order);
    ember_error err;
    if (!pos || !seq || !want || !order) { cli_error("out of memory"); goto done; }
    if (n > ember_ctx_n_ctx(c)) {
        cli_error("logits: %zu ids do not fit the context of %u (use -c)", n, ember_ctx_n_ctx(c));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= nv) { cli_error("logits: token id %d out of range [0, %d)", ids[i], nv); goto done; }
        pos[i] = (int32_t)i;
        want[i] = 1;
    }
    printf("{\"model\": \"%s\", \"n_vocab\": %d, \"ids\": [", mo.model, nv);
    for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    printf("], \"%s\": [", top ? "top" : "logits");
    /* evaluate in chunks of the context's batch size (512) */
    for (size_t i0 = 0; i0 < n; i0 += 512) {
        int32_t nb = (int32_t)(n - i0 < 512 ? n - i0 : 512);
        ember_batch b = {.n = nb, .token = ids + i0, .pos = pos + i0, .seq = seq + i0, .want_logits = want + i0};
        if (ember_decode(c, &b, &err)) { printf("]}\n"); cli_error("%s", err.msg); goto done; }
        for (int32_t j = 0; j < nb; j++) {
            const float *l = ember_logits(c, j);
            printf(i0 + (size_t)j ? ",\n [" : "\n [");
            if (!top) {
                for (int32_t t = 0; t < nv; t++) printf(t ? ", %.9g" : "%.9g", (double)l[t]);
            } else {
                long k = top < nv ? top : nv;
                for (int32_t t = 0; t < nv; t++) order[t] = t;
                qsort_r(order, (size_t)nv, sizeof *order, by_logit_desc, (void *)l);
                for (long a = 0; a < k; a++) printf(a ? ", [%d, %.9g]" : "[%d, %.9g]", order[a], (double)l[order[a]]);
            }
            printf("]");
        }
    }
    printf("\n]}\n");
    rc = 0;
done:
    free(ids); free(pos); free(seq); free(want); free(order);
    ember_ctx_free(c);
    ember_model_free(m);
    return rc;
}
