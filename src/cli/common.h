/* common.h - options shared by the model-running subcommands (-m, -t, -c,
 * --kv) and loading a model + context from them. */
#ifndef EM_CLI_COMMON_H
#define EM_CLI_COMMON_H

#include "ember.h"

typedef struct cli_model_opts {
    const char *model;
    long threads;
    long n_ctx;
    ember_kv_type kv;
    bool mlock;       /* --mlock: lock the model in RAM (ember_model_params.mlock) */
} cli_model_opts;

void cli_model_opts_init(cli_model_opts *o);
/* If argv[*i] is one of the shared options, consumes it (and its value) and
 * returns 1; returns 0 if not ours, -1 after printing an error. */
int cli_model_opt(cli_model_opts *o, int argc, char **argv, int *i);
/* Loads the model and a context with n_seqs sequences; prints errors.
 * Returns 0 or 1 (exit status). load_ms may be NULL. */
int cli_load(const cli_model_opts *o, int32_t n_seqs, ember_model **m, ember_ctx **c, double *load_ms);
double cli_now_ms(void);

#define CLI_MODEL_HELP                                                                   \
    "  -m FILE        GGUF model (default: the bundled models/stories260K.gguf)\n"     \
    "  -t N           threads (default 1; results do not depend on it)\n"              \
    "  -c N           context size in tokens (default: the model's, at most 4096)\n"   \
    "  --kv f16|f32   KV cache precision (default f16, as llama.cpp)\n"                 \
    "  --mlock        lock the model file in RAM (needs RLIMIT_MEMLOCK >= its size)\n"

#endif
