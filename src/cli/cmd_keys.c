/* cmd_keys.c - `ember keys create|list|revoke`: API keys in the guard
 * database (src/guard/keys.h). The secret is printed once, alone on stdout,
 * so that `KEY=$(ember keys create --name ci)` captures it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../guard/keys.h"
#include "../guard/util.h"
#include "args.h"
#include "cli.h"

#define DB_HELP "  --db FILE          the guard database (default: $EMBER_DB, else ./ember.db; created on first use)\n"

static void help(void) {
    printf("usage: ember keys create --name NAME [--models a,b|*] [--rpm R] [--tpm T] [--max-concurrent C]\n"
           "                         [--expires 30d|2025-12-31[T12:00:00Z]] [--admin] [--db FILE]\n"
           "       ember keys list [--json] [--db FILE]\n"
           "       ember keys revoke NAME|ID [--db FILE]\n"
           "  create prints the new key (em-...) once on stdout; only its SHA-256 is stored.\n"
           "  Limits of 0 (the default) mean unlimited.\n" DB_HELP);
}

static const char *db_default(void) {
    const char *e = getenv("EMBER_DB");
    return e && *e ? e : "ember.db";
}

static em_db *open_db(const char *path) {
    em_err err;
    em_db *d = em_db_open(path, &err);
    if (!d) cli_error("%s", err.msg);
    return d;
}

static const char *status_of(const em_key *k, int64_t now) {
    if (k->revoked_at) return "revoked";
    if (k->expires_at && k->expires_at <= now) return "expired";
    return "active";
}

static int keys_create(int argc, char **argv) {
    em_key_spec spec = {0};
    const char *db = db_default(), *v;
    long lv;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--name")) { if (!(spec.name = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--models")) { if (!(spec.models = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--db")) { if (!(db = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--admin")) spec.admin = true;
        else if (!strcmp(a, "--rpm") || !strcmp(a, "--tpm") || !strcmp(a, "--max-concurrent")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 0, 10000000000L, &lv)) return 1;
            if (!strcmp(a, "--rpm")) spec.rpm = lv;
            else if (!strcmp(a, "--tpm")) spec.tpm = lv;
            else spec.max_concurrent = lv;
        } else if (!strcmp(a, "--expires")) {
            if (!(v = arg_value(argc, argv, &i))) return 1;
            em_err err;
            if (em_parse_time(v, em_now_s(), +1, &spec.expires_at, &err)) return cli_error("--expires: %s", err.msg);
        } else return cli_error("keys create: unknown option '%s'", a);
    }
    if (!spec.name) return cli_error("keys create: --name is required");
    em_err err;
    if (em_key_check_name(spec.name, &err) || em_key_check_models(spec.models, &err))
        return cli_error("keys create: %s", err.msg);
    em_db *d = open_db(db);
    if (!d) return 1;
    char token[EM_KEY_TOKEN_LEN + 1];
    em_key k;
    int rc = em_keys_create(d, &spec, em_now_s(), token, &k, &err);
    em_db_close(d);
    if (rc) return cli_error("keys create: %s", err.msg);
    printf("%s\n", token);
    fflush(stdout);
    char exp[32] = "never";
    if (k.expires_at) em_format_time(k.expires_at, exp);
    fprintf(stderr,
            "created key %" PRId64 " '%s' (models %s, rpm %" PRId64 ", tpm %" PRId64 ", max-concurrent %" PRId64
            ", expires %s%s); it is shown only this once\n",
            k.id, k.name, k.models, k.rpm, k.tpm, k.max_concurrent, exp, k.admin ? ", admin" : "");
    return 0;
}

static void limit_str(int64_t v, char *buf, size_t n) {
    if (v) snprintf(buf, n, "%" PRId64, v);
    else snprintf(buf, n, "-");
}

static int keys_list(int argc, char **argv) {
    const char *db = db_default();
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--db")) { if (!(db = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--json")) json = true;
        else return cli_error("keys list: unknown option '%s'", a);
    }
    em_db *d = open_db(db);
    if (!d) return 1;
    em_key *keys;
    size_t n;
    em_err err;
    int rc = em_keys_list(d, &keys, &n, &err);
    em_db_close(d);
    if (rc) return cli_error("keys list: %s", err.msg);
    int64_t now = em_now_s();
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
            const em_key *k = &keys[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)k->id);
            cJSON_AddStringToObject(o, "name", k->name);
            cJSON_AddStringToObject(o, "status", status_of(k, now));
            cJSON_AddStringToObject(o, "models", k->models);
            cJSON_AddNumberToObject(o, "rpm", (double)k->rpm);
            cJSON_AddNumberToObject(o, "tpm", (double)k->tpm);
            cJSON_AddNumberToObject(o, "max_concurrent", (double)k->max_concurrent);
            cJSON_AddBoolToObject(o, "admin", k->admin);
            cJSON_AddNumberToObject(o, "created_at", (double)k->created_at);
            if (k->expires_at) cJSON_AddNumberToObject(o, "expires_at", (double)k->expires_at);
            else cJSON_AddNullToObject(o, "expires_at");
            if (k->revoked_at) cJSON_AddNumberToObject(o, "revoked_at", (double)k->revoked_at);
            else cJSON_AddNullToObject(o, "revoked_at");
            cJSON_AddStringToObject(o, "fingerprint", k->fingerprint);
            cJSON_AddItemToArray(arr, o);
        }
        char *s = cJSON_PrintUnformatted(arr);
        if (s) puts(s);
        free(s);
        cJSON_Delete(arr);
    } else {
        printf("%-5s %-20s %-8s %-20s %8s %10s %5s %-5s %-20s %-20s %s\n", "id", "name", "status", "models", "rpm",
               "tpm", "conc", "admin", "created", "expires", "fingerprint");
        for (size_t i = 0; i < n; i++) {
            const em_key *k = &keys[i];
            char rpm[24], tpm[24], conc[24], created[32], exp[32] = "never";
            limit_str(k->rpm, rpm, sizeof rpm);
            limit_str(k->tpm, tpm, sizeof tpm);
            limit_str(k->max_concurrent, conc, sizeof conc);
            em_format_time(k->created_at, created);
            if (k->expires_at) em_format_time(k->expires_at, exp);
            printf("%-5" PRId64 " %-20s %-8s %-20s %8s %10s %5s %-5s %-20s %-20s %s\n", k->id, k->name,
                   status_of(k, now), k->models, rpm, tpm, conc, k->admin ? "yes" : "no", created, exp,
                   k->fingerprint);
        }
    }
    free(keys);
    return 0;
}

static int keys_revoke(int argc, char **argv) {
    const char *db = db_default(), *which = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--db")) { if (!(db = arg_value(argc, argv, &i))) return 1; }
        else if (a[0] == '-' && a[1]) return cli_error("keys revoke: unknown option '%s'", a);
        else if (which) return cli_error("keys revoke: one key at a time ('%s' and '%s')", which, a);
        else which = a;
    }
    if (!which) return cli_error("keys revoke: which key? (give its name or id)");
    em_db *d = open_db(db);
    if (!d) return 1;
    em_key k;
    em_err err;
    int rc = em_keys_revoke(d, which, em_now_s(), &k, &err);
    em_db_close(d);
    if (rc) return cli_error("keys revoke: %s", err.msg);
    printf("revoked key %" PRId64 " '%s'\n", k.id, k.name);
    return 0;
}

int cmd_keys(int argc, char **argv) {
    if (argc < 2) return cli_error("keys: missing subcommand (create, list or revoke)");
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) { help(); return 0; }
    if (!strcmp(sub, "create")) return keys_create(argc - 1, argv + 1);
    if (!strcmp(sub, "list")) return keys_list(argc - 1, argv + 1);
    if (!strcmp(sub, "revoke")) return keys_revoke(argc - 1, argv + 1);
    return cli_error("keys: unknown subcommand '%s' (create, list or revoke)", sub);
}
