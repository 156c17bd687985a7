/* cmd_redact.c - `ember redact`: personal data and secrets from stdin,
 * redacted, to stdout (src/guard/redact.h). The plain mode runs the
 * streaming redactor over the input as it arrives; --json prints one object
 * per input line with the spans found (types and byte offsets, never the
 * matched text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../guard/redact.h"
#include "args.h"
#include "cli.h"

static void help(void) {
    printf("usage: ember redact [--json] [--types LIST] < INPUT\n"
           "  replaces e-mail addresses, phone numbers, payment cards, SSNs, IBANs, IP addresses, AWS keys,\n"
           "  GitHub tokens, OpenAI-style keys, JWTs and private keys with [REDACTED:TYPE]\n"
           "  --json        one object per input line: {\"line\", \"redacted\", \"spans\": [{\"type\", \"start\", \"end\"}]}\n"
           "                (start/end are byte offsets in the input line)\n"
           "  --types LIST  only these detectors (comma-separated; default all): email, phone, credit_card, ssn,\n"
           "                iban, ipv4, ipv6, aws_key, github_token, openai_key, jwt, private_key\n");
}

static int redact_stream(const em_redactor *r) {
    em_redact_stream *s = em_redact_stream_new(r);
    if (!s) return cli_error("redact: out of memory");
    char buf[65536];
    size_t k, n;
    const char *out;
    int rc = 0;
    while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) {
        if (!(out = em_redact_stream_feed(s, buf, k, &n))) { rc = cli_error("redact: out of memory"); goto done; }
        fwrite(out, 1, n, stdout);
    }
    if (ferror(stdin)) { rc = cli_error("redact: error reading stdin"); goto done; }
    if (!(out = em_redact_stream_finish(s, &n))) { rc = cli_error("redact: out of memory"); goto done; }
    fwrite(out, 1, n, stdout);
done:
    em_redact_stream_free(s);
    return rc;
}

static int redact_json(const em_redactor *r) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        if (n && line[n - 1] == '\n') n--;
        if (n && line[n - 1] == '\r') n--;
        em_span *sp;
        size_t ns;
        em_err err;
        if (em_redact_scan(r, line, n, &sp, &ns, &err)) { rc = cli_error("redact: %s", err.msg); break; }
        char *red = em_redact_string(r, line, n, NULL, NULL);
        if (!red) { free(sp); rc = cli_error("redact: out of memory"); break; }
        cJSON *o = cJSON_CreateObject(), *arr;
        cJSON_AddNumberToObject(o, "line", (double)lineno);
        cJSON_AddStringToObject(o, "redacted", red);
        arr = cJSON_AddArrayToObject(o, "spans");
        for (size_t i = 0; i < ns; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "type", em_pii_name(sp[i].type));
            cJSON_AddNumberToObject(s, "start", (double)sp[i].start);
            cJSON_AddNumberToObject(s, "end", (double)sp[i].end);
            cJSON_AddItemToArray(arr, s);
        }
        char *js = cJSON_PrintUnformatted(o);
        if (js) puts(js);
        free(js);
        cJSON_Delete(o);
        free(red);
        free(sp);
    }
    free(line);
    return rc;
}

int cmd_redact(int argc, char **argv) {
    bool json = false;
    unsigned types = EM_PII_ALL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--types")) {
            em_err err;
            if (!(v = arg_value(argc, argv, &i))) return 1;
            if (em_pii_parse_types(v, &types, &err)) return cli_error("--types: %s", err.msg);
        } else return cli_error("redact: unknown option '%s'", a);
    }
    em_err err;
    em_redactor *r = em_redactor_new(types, &err);
    if (!r) return cli_error("%s", err.msg);
    int rc = json ? redact_json(r) : redact_stream(r);
    em_redactor_free(r);
    if (fflush(stdout) != 0 && !rc) rc = cli_error("redact: error writing stdout");
    return rc;
}
