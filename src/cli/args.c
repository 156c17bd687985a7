#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_error(const char *fmt, ...) {
    va_list ap;
    fputs("ember: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int arg_long(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) { cli_error("%s: '%s' is not an integer", flag, s); return -1; }
    if (v < lo || v > hi) { cli_error("%s: %ld is out of range [%ld, %ld]", flag, v, lo, hi); return -1; }
    *out = v;
    return 0;
}

int arg_u64(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-') { cli_error("%s: '%s' must not be negative", flag, s); return -1; }
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno) { cli_error("%s: '%s' is not an unsigned integer", flag, s); return -1; }
    *out = v;
    return 0;
}

int arg_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) { cli_error("%s: '%s' is not a number", flag, s); return -1; }
    if (v < lo || v > hi) { cli_error("%s: %g is out of range [%g, %g]", flag, v, lo, hi); return -1; }
    *out = (float)v;
    return 0;
}

const char *arg_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) { cli_error("%s needs a value", argv[*i]); return NULL; }
    return argv[++*i];
}

int cli_check_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) { cli_error("%s: %s", path, strerror(errno)); return -1; }
    if (S_ISDIR(st.st_mode)) { cli_error("%s: is a directory, expected a model file", path); return -1; }
    if (!S_ISREG(st.st_mode)) { cli_error("%s: not a regular file", path); return -1; }
    return 0;
}
