#include "common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"

void cli_model_opts_init(cli_model_opts *o) {
    o->model = cli_default_model();
    o->threads = 1;
    o->n_ctx = 0;
    o->kv = EMBER_KV_F16;
    o->mlock = false;
}

int cli_model_opt(cli_model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        o->model = v;
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = arg_value(argc, argv, i)) || arg_long(a, v, 1, 256, &o->threads)) return -1;
        return 1;
    }
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (!(v = arg_value(argc, argv, i)) || arg_long(a, v, 1, 1 << 24, &o->n_ctx)) return -1;
        return 1;
    }
    if (!strcmp(a, "--mlock")) {
        o->mlock = true;
        return 1;
    }
    if (!strcmp(a, "--kv")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        if (!strcmp(v, "f16")) o->kv = EMBER_KV_F16;
        else if (!strcmp(v, "f32")) o->kv = EMBER_KV_F32;
        else { cli_error("--kv: '%s' is not f16 or f32", v); return -1; }
        return 1;
    }
    return 0;
}

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cli_load(const cli_model_opts *o, int32_t n_seqs, ember_model **m, ember_ctx **c, double *load_ms) {
    double t0 = cli_now_ms();
    if (cli_check_file(o->model)) return 1;
    ember_error err;
    *m = ember_model_load_ex(o->model, &(ember_model_params){.mlock = o->mlock}, &err);
    if (!*m) return cli_error("%s", err.msg);
    ember_ctx_params p = {.n_ctx = (uint32_t)o->n_ctx, .n_seqs = n_seqs, .n_threads = (int)o->threads,
                          .kv_type = o->kv};
    *c = ember_ctx_new(*m, &p, &err);
    if (!*c) {
        ember_model_free(*m);
        *m = NULL;
        return cli_error("%s", err.msg);
    }
    if (load_ms) *load_ms = cli_now_ms() - t0;
    return 0;
}
