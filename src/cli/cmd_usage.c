/* cmd_usage.c - `ember usage`: totals of the usage ledger per key and model
 * (src/guard/ledger.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../guard/keys.h"
#include "../guard/ledger.h"
#include "../guard/util.h"
#include "args.h"
#include "cli.h"

static void help(void) {
    printf("usage: ember usage [--key NAME|ID] [--since 7d|2025-01-31[T00:00:00Z]] [--json] [--db FILE]\n"
           "  requests, errors (status >= 400), prompt and completion tokens and mean latency per key and model\n"
           "  --db FILE   the guard database (default: $EMBER_DB, else ./ember.db)\n");
}

int cmd_usage(int argc, char **argv) {
    const char *db = getenv("EMBER_DB"), *key = NULL, *since = NULL;
    if (!db || !*db) db = "ember.db";
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--db")) { if (!(db = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--key")) { if (!(key = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--since")) { if (!(since = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--json")) json = true;
        else return cli_error("usage: unknown option '%s'", a);
    }
    em_err err;
    int64_t since_s = 0;
    if (since && em_parse_time(since, em_now_s(), -1, &since_s, &err)) return cli_error("--since: %s", err.msg);
    if (since_s < 0) since_s = 0;
    em_db *d = em_db_open(db, &err);
    if (!d) return cli_error("%s", err.msg);
    int64_t key_id = 0;
    if (key) {
        em_key k;
        if (em_keys_get(d, key, &k, &err)) { em_db_close(d); return cli_error("usage: --key: %s", err.msg); }
        key_id = k.id;
    }
    em_usage_sum *s;
    size_t n;
    int rc = em_ledger_summary(d, key_id, since_s * 1000, &s, &n, &err);
    em_db_close(d);
    if (rc) return cli_error("usage: %s", err.msg);
    em_usage_sum tot = {0};
    for (size_t i = 0; i < n; i++) {
        tot.requests += s[i].requests;
        tot.errors += s[i].errors;
        tot.prompt_tokens += s[i].prompt_tokens;
        tot.completion_tokens += s[i].completion_tokens;
        tot.latency_ms_total += s[i].latency_ms_total;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "rows");
        for (size_t i = 0; i <= n; i++) {
            const em_usage_sum *u = i < n ? &s[i] : &tot;
            cJSON *o = cJSON_CreateObject();
            if (i < n) {
                cJSON_AddNumberToObject(o, "key_id", (double)u->key_id);
                cJSON_AddStringToObject(o, "key", u->key_name);
                cJSON_AddStringToObject(o, "model", u->model);
            }
            cJSON_AddNumberToObject(o, "requests", (double)u->requests);
            cJSON_AddNumberToObject(o, "errors", (double)u->errors);
            cJSON_AddNumberToObject(o, "prompt_tokens", (double)u->prompt_tokens);
            cJSON_AddNumberToObject(o, "completion_tokens", (double)u->completion_tokens);
            cJSON_AddNumberToObject(o, "total_tokens", (double)(u->prompt_tokens + u->completion_tokens));
            cJSON_AddNumberToObject(o, "mean_latency_ms",
                                    u->requests ? (double)u->latency_ms_total / (double)u->requests : 0.0);
            if (i < n) cJSON_AddItemToArray(arr, o);
            else cJSON_AddItemToObject(root, "total", o);
        }
        char *js = cJSON_PrintUnformatted(root);
        if (js) puts(js);
        free(js);
        cJSON_Delete(root);
    } else {
        printf("%-22s %-24s %9s %7s %13s %13s %13s %10s\n", "key", "model", "requests", "errors", "prompt_tok",
               "complet_tok", "total_tok", "mean_ms");
        for (size_t i = 0; i <= n; i++) {
            const em_usage_sum *u = i < n ? &s[i] : &tot;
            char kname[96];
            if (i == n) snprintf(kname, sizeof kname, "TOTAL");
            else if (u->key_id == 0) snprintf(kname, sizeof kname, "(no key)");
            else snprintf(kname, sizeof kname, "%" PRId64 ":%s", u->key_id, u->key_name[0] ? u->key_name : "?");
            printf("%-22s %-24s %9" PRId64 " %7" PRId64 " %13" PRId64 " %13" PRId64 " %13" PRId64 " %10.1f\n", kname,
                   i < n ? (u->model[0] ? u->model : "-") : "", u->requests, u->errors, u->prompt_tokens,
                   u->completion_tokens, u->prompt_tokens + u->completion_tokens,
                   u->requests ? (double)u->latency_ms_total / (double)u->requests : 0.0);
        }
    }
    free(s);
    return 0;
}
