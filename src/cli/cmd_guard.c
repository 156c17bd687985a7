/* cmd_guard.c - `ember guard scan FILE.jsonl`: the prompt-injection guard
 * (src/guard/injection.h) over lines of {"text": ..., "label"?: 0|1}; one
 * verdict per line and, when labels are present, precision, recall, F1 and
 * the false-positive rate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../guard/injection.h"
#include "args.h"
#include "cli.h"

static void help(void) {
    printf("usage: ember guard scan FILE.jsonl|- [--source user|untrusted] [--threshold T] [--quiet]\n"
           "  FILE: one JSON object per line with \"text\" and optionally \"label\" (1 = injection, 0 = benign)\n"
           "  prints per line {\"line\", \"score\", \"decision\", \"reason\", \"rules\", \"label\"?}; with labels, a\n"
           "  summary line: precision, recall, F1 and false-positive rate (a line counts as flagged when its\n"
           "  score reaches the flag threshold: 0.5 for user messages, 0.4 for untrusted content)\n"
           "  --source      score as a user message (default) or as untrusted content (tool output, documents)\n"
           "  --threshold   flag threshold to use instead of the policy's\n"
           "  --quiet       only the summary\n");
}

static int scan(int argc, char **argv) {
    const char *path = NULL;
    em_inj_source src = EM_INJ_USER;
    float threshold = -1;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--source")) {
            if (!(v = arg_value(argc, argv, &i))) return 1;
            if (!strcmp(v, "user")) src = EM_INJ_USER;
            else if (!strcmp(v, "untrusted") || !strcmp(v, "tool")) src = EM_INJ_UNTRUSTED;
            else return cli_error("--source: '%s' is not user or untrusted", v);
        } else if (!strcmp(a, "--threshold")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 0.0, 1.0, &threshold)) return 1;
        } else if (!strcmp(a, "--quiet")) quiet = true;
        else if (a[0] == '-' && a[1]) return cli_error("guard scan: unknown option '%s'", a);
        else if (path) return cli_error("guard scan: one file at a time ('%s' and '%s')", path, a);
        else path = a;
    }
    if (!path) return cli_error("guard scan: no input file (ember guard scan FILE.jsonl, '-' for stdin)");
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_error("%s: %s", path, strerror(errno));
    em_err err;
    em_inj_guard *g = em_inj_guard_new(&err);
    if (!g) { if (f != stdin) fclose(f); return cli_error("%s", err.msg); }
    em_inj_policy pol = em_inj_default_policy(src);
    if (threshold >= 0) {
        pol.flag_at = threshold;
        if (pol.block_at < threshold) pol.block_at = threshold;
        em_inj_guard_set_policy(g, src, &pol);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, tp = 0, fp = 0, tn = 0, fn = 0, labelled = 0, scanned = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        cJSON *o = cJSON_ParseWithLength(line, n);
        const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
        if (!cJSON_IsString(t)) {
            cJSON_Delete(o);
            rc = cli_error("%s:%ld: expected a JSON object with a \"text\" string", path, lineno);
            break;
        }
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "label");
        int label = -1;
        if (cJSON_IsNumber(l) && (l->valuedouble == 0 || l->valuedouble == 1)) label = (int)l->valuedouble;
        else if (cJSON_IsBool(l)) label = cJSON_IsTrue(l);
        else if (l && !cJSON_IsNull(l)) {
            cJSON_Delete(o);
            rc = cli_error("%s:%ld: \"label\" must be 0 or 1", path, lineno);
            break;
        }
        em_inj_result r;
        em_inj_scan(g, t->valuestring, strlen(t->valuestring), src, &r);
        scanned++;
        bool flagged = r.decision != EM_GUARD_ALLOW;
        if (label >= 0) {
            labelled++;
            if (flagged && label) tp++;
            else if (flagged) fp++;
            else if (label) fn++;
            else tn++;
        }
        if (!quiet) {
            cJSON *out = cJSON_CreateObject(), *rules;
            cJSON_AddNumberToObject(out, "line", (double)lineno);
            char sc[16];
            snprintf(sc, sizeof sc, "%.3f", (double)r.score);
            cJSON_AddRawToObject(out, "score", sc);
            cJSON_AddStringToObject(out, "decision", em_guard_action_name(r.decision));
            cJSON_AddStringToObject(out, "reason", r.reason);
            rules = cJSON_AddArrayToObject(out, "rules");
            for (size_t h = 0; h < r.n_hits && h < EM_INJ_MAX_HITS; h++)
                cJSON_AddItemToArray(rules, cJSON_CreateString(r.hits[h].rule));
            if (label >= 0) cJSON_AddNumberToObject(out, "label", label);
            char *js = cJSON_PrintUnformatted(out);
            if (js) puts(js);
            free(js);
            cJSON_Delete(out);
        }
        cJSON_Delete(o);
    }
    free(line);
    if (f != stdin) fclose(f);
    em_inj_guard_free(g);
    if (rc) return rc;
    if (labelled) {
        double p = tp + fp ? (double)tp / (double)(tp + fp) : 0, rcl = tp + fn ? (double)tp / (double)(tp + fn) : 0;
        double f1 = p + rcl > 0 ? 2 * p * rcl / (p + rcl) : 0, fpr = fp + tn ? (double)fp / (double)(fp + tn) : 0;
        printf("{\"summary\": true, \"lines\": %ld, \"labelled\": %ld, \"tp\": %ld, \"fp\": %ld, \"tn\": %ld, "
               "\"fn\": %ld, \"precision\": %.4f, \"recall\": %.4f, \"f1\": %.4f, \"fpr\": %.4f}\n",
               scanned, labelled, tp, fp, tn, fn, p, rcl, f1, fpr);
    } else {
        printf("{\"summary\": true, \"lines\": %ld, \"labelled\": 0}\n", scanned);
    }
    return 0;
}

int cmd_guard(int argc, char **argv) {
    if (argc < 2) return cli_error("guard: missing subcommand (scan)");
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) { help(); return 0; }
    if (!strcmp(sub, "scan")) return scan(argc - 1, argv + 1);
    return cli_error("guard: unknown subcommand '%s' (scan)", sub);
}
