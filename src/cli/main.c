/* main.c - the `ember` program: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"

#ifndef EMBER_DEFAULT_MODEL
#define EMBER_DEFAULT_MODEL "models/stories260K.gguf"
#endif

const char *cli_default_model(void) { return EMBER_DEFAULT_MODEL; }

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
