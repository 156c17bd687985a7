/* testutil.h - shared helpers for the cmocka test programs. Tests run from
 * the repository root; reference data lives in ../shared (or $EMBER_SHARED). */
#ifndef EM_TESTUTIL_H
#define EM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

/* Path under the shared data folder, in a static buffer (one at a time). */
static inline const char *shared_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("EMBER_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
}

/* Reads a whole file; NULL if missing. Caller frees. */
static inline char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
    buf[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

/* Parses a JSON file; fails the test if missing or malformed. */
static inline cJSON *load_json(const char *path) {
    char *txt = read_file(path, NULL);
    if (!txt) fail_msg("missing reference file %s", path);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!j) fail_msg("cannot parse JSON %s", path);
    return j;
}

#endif
