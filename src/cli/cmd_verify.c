/* cmd_verify.c - `ember verify`: a model file's SHA-256 and structural
 * checks (GGUF container, model load), against an expected digest or a
 * models manifest (src/guard/integrity.h). Exit status 1 on any failure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guard/integrity.h"
#include "args.h"
#include "cli.h"

static void help(void) {
    printf("usage: ember verify FILE [--sha256 HEX] [--manifest M.json [--name NAME]] [--no-load]\n"
           "       ember verify --manifest M.json      (every model the manifest lists)\n"
           "  prints the file's SHA-256, checks it against --sha256 or the manifest entry (by --name, else\n"
           "  the entry whose path is FILE), parses the GGUF container and loads the model (skip with --no-load)\n"
           "  manifest: {\"models\": {\"NAME\": {\"path\": \"file.gguf\", \"sha256\": \"HEX\"}}}, paths relative to it\n");
}

/* Prints the report; returns the exit status. */
static int verify_one(const char *path, const uint8_t *expected, unsigned what, const char *label) {
    if (cli_check_file(path)) return 1;
    em_integrity_report rep;
    em_err err;
    int rc = em_integrity_verify(path, expected, what, &rep, &err);
    if (label) printf("model     %s\n", label);
    printf("file      %s\n", path);
    if (rep.sha256_hex[0]) {
        printf("size      %" PRIu64 " bytes\n", rep.size);
        printf("sha256    %s\n", rep.sha256_hex);
    }
    if (rep.hash_checked) printf("expected  %s\n", rep.hash_ok ? "match" : "MISMATCH");
    if (rep.gguf_checked) {
        if (rep.gguf_ok)
            printf("gguf      ok (version %u, %" PRIu64 " metadata pairs, %" PRIu64 " tensors)\n", rep.gguf_version,
                   rep.n_kv, rep.n_tensors);
        else printf("gguf      FAILED: %s\n", rep.gguf_error);
    }
    if (rep.model_checked) {
        if (rep.model_ok) printf("load      ok (%s)\n", rep.model_desc);
        else printf("load      FAILED: %s\n", rep.model_error);
    }
    fflush(stdout);
    if (rc) return cli_error("verify: %s", err.msg);
    return 0;
}

int cmd_verify(int argc, char **argv) {
    const char *file = NULL, *hex = NULL, *manifest = NULL, *name = NULL;
    unsigned what = EM_VERIFY_ALL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--sha256")) { if (!(hex = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--manifest")) { if (!(manifest = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--name")) { if (!(name = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--no-load")) what &= ~(unsigned)EM_VERIFY_MODEL;
        else if (a[0] == '-' && a[1]) return cli_error("verify: unknown option '%s'", a);
        else if (file) return cli_error("verify: one file at a time ('%s' and '%s')", file, a);
        else file = a;
    }
    if (hex && manifest) return cli_error("verify: give --sha256 or --manifest, not both");
    if (name && !manifest) return cli_error("verify: --name needs --manifest");
    em_err err;
    uint8_t want[EM_SHA256_LEN];
    if (hex && em_sha256_parse(hex, want, &err)) return cli_error("--sha256: %s", err.msg);
    if (!manifest) {
        if (!file) return cli_error("verify: no file (ember verify FILE [--sha256 HEX])");
        return verify_one(file, hex ? want : NULL, what, NULL);
    }
    em_manifest *m = em_manifest_load(manifest, &err);
    if (!m) return cli_error("%s", err.msg);
    int rc = 0;
    if (file || name) {
        const em_manifest_entry *e = name ? em_manifest_find(m, name) : em_manifest_find_path(m, file);
        if (!e) rc = name ? cli_error("verify: %s has no model named '%s'", manifest, name)
                          : cli_error("verify: %s lists no entry for %s (use --name)", manifest, file);
        else rc = verify_one(file ? file : e->path, e->sha256, what, e->name);
    } else {
        for (size_t i = 0; i < m->n && rc == 0; i++) {
            if (i) putchar('\n');
            rc = verify_one(m->entries[i].path, m->entries[i].sha256, what, m->entries[i].name);
        }
    }
    em_manifest_free(m);
    return rc;
}
