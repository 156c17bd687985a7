/* cmd_tokenize.c - `ember tokenize`: token ids of a text, like llama.cpp's
 * llama-tokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "common.h"

static void help(void) {
    printf("usage: ember tokenize [-m FILE] -p TEXT [--pieces] [--no-bos] [--parse-special]\n"
           "  prints the ids as [a, b, c]; with --pieces one 'id -> 'piece'' line per token\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = cli_default_model(), *text = NULL;
    bool pieces = false, add_special = true, parse_special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(text = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--pieces")) pieces = true;
        else if (!strcmp(a, "--no-bos")) add_special = false;
        else if (!strcmp(a, "--parse-special")) parse_special = true;
        else return cli_error("tokenize: unknown option '%s'", a);
    }
    if (!text) return cli_error("tokenize: no text (use -p TEXT)");
    if (cli_check_file(model)) return 1;
    ember_error err;
    ember_model *m = ember_model_load(model, &err);
    if (!m) return cli_error("%s", err.msg);
    int32_t *ids = NULL;
    size_t n = 0;
    if (ember_tokenize(m, text, strlen(text), add_special, parse_special, &ids, &n, &err)) {
        ember_model_free(m);
        return cli_error("tokenize: %s", err.msg);
    }
    if (pieces) {
        char buf[512];
        for (size_t i = 0; i < n; i++) {
            int len = ember_token_to_piece(m, ids[i], true, buf, sizeof buf);
            if (len < 0) len = 0;
            if (len > (int)sizeof buf) len = sizeof buf;
            printf("%6d -> '%.*s'\n", ids[i], len, buf);
        }
    } else {
        putchar('[');
        for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
        puts("]");
    }
    free(ids);
    ember_model_free(m);
    return 0;
}
