/* cmd_convert.c - `ember convert llama2c MODEL.bin TOKENIZER.bin OUT.gguf`:
 * converts a llama2.c checkpoint and its tokenizer to GGUF. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/llama2c.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ember convert llama2c [--ctx N] MODEL.bin TOKENIZER.bin OUT.gguf\n"
            "  Converts a llama2.c checkpoint and tokenizer to GGUF (as llama.cpp's\n"
            "  llama-convert-llama2c-to-ggml does). llama.context_length is the model's\n"
            "  seq_len unless --ctx N is given.\n");
}

int cmd_convert(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "ember convert: missing format (expected: llama2c)\n");
        return 2;
    }
    if (strcmp(argv[1], "llama2c") != 0) {
        fprintf(stderr, "ember convert: unknown source format '%s' (supported: llama2c)\n", argv[1]);
        return 2;
    }
    em_llama2c_opts opts = {0};
    const char *paths[3];
    int np = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--ctx") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ember convert: --ctx needs a value\n");
                return 2;
            }
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*argv[i] == '\0' || *argv[i] == '-' || *end != '\0' || v == 0 || v > 0xffffffffUL) {
                fprintf(stderr, "ember convert: invalid --ctx '%s' (expected a positive integer)\n", argv[i]);
                return 2;
            }
            opts.n_ctx = (uint32_t)v;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "ember convert: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (np < 3) {
            paths[np++] = argv[i];
        } else {
            fprintf(stderr, "ember convert: too many arguments ('%s')\n", argv[i]);
            return 2;
        }
    }
    if (np != 3) {
        fprintf(stderr, "ember convert: expected MODEL.bin TOKENIZER.bin OUT.gguf (see ember convert --help)\n");
        return 2;
    }
    em_err err = {{0}};
    if (em_llama2c_convert(paths[0], paths[1], paths[2], &opts, &err)) {
        fprintf(stderr, "ember convert: %s\n", err.msg);
        return 1;
    }
    return 0;
}
