/* main.c - the `ember` program: dispatches to subcommands. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"

#ifndef EMBER_DEFAULT_MODEL
#define EMBER_DEFAULT_MODEL "models/stories260K.gguf"
#endif

/* The bundled model: $EMBER_MODEL if set, else next to the binary
 * (build/ember -> models/...), else relative to the working directory. */
const char *cli_default_model(void) {
    static char path[PATH_MAX];
    const char *env = getenv("EMBER_MODEL");
    if (env && *env) return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            if (snprintf(path, sizeof path, "%s/../%s", exe, EMBER_DEFAULT_MODEL) < (int)sizeof path &&
                access(path, R_OK) == 0)
                return path;
        }
    }
    return EMBER_DEFAULT_MODEL;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cmds[] = {
    {"run", cmd_run, "generate text: ember run [-m FILE] -p PROMPT [-n N] [--temp T] [-t N] [--seed S]"},
    {"tokenize", cmd_tokenize, "print token ids: ember tokenize [-m FILE] -p TEXT [--pieces]"},
    {"logits", cmd_logits, "print logits as JSON: ember logits [-m FILE] --ids 1,2,3 [--top K] [-t N]"},
    {"inspect", cmd_inspect, "print GGUF metadata and tensors: ember inspect FILE"},
    {"convert", cmd_convert, "convert a model: ember convert llama2c MODEL.bin TOKENIZER.bin OUT.gguf"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server: ember serve [-m FILE] [--port 8080] [--slots N]"},
    {"mkmodel", cmd_mkmodel, "write a random-weight Llama GGUF: ember mkmodel OUT.gguf --shape NAME [--type T]"},
    {"bench", cmd_bench, "measure speed: ember bench -m FILE [-t N] [--pp 128,512] [--tg 64] [--batch 1,4,8]"},
    {"keys", cmd_keys, "API keys: ember keys create --name N [--rpm R] ... | list | revoke NAME|ID [--db FILE]"},
    {"usage", cmd_usage, "usage ledger totals per key and model: ember usage [--key K] [--since 7d] [--db FILE]"},
    {"redact", cmd_redact, "redact personal data and secrets from stdin: ember redact [--json] [--types LIST]"},
    {"guard", cmd_guard, "prompt-injection scores: ember guard scan FILE.jsonl [--source user|untrusted]"},
    {"verify", cmd_verify, "model integrity: ember verify FILE [--sha256 HEX] [--manifest M.json]"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ember COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\n'ember COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s' (try 'ember --help')", argv[1]);
    return 2;
}
