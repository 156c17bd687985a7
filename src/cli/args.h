/* args.h - strict parsing of command-line values: the whole string must be
 * a number in range, else a one-line error naming the flag. */
#ifndef EM_CLI_ARGS_H
#define EM_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

/* Each returns 0 on success, else prints "ember: FLAG: ..." and returns -1. */
int arg_long(const char *flag, const char *s, long lo, long hi, long *out);
int arg_u64(const char *flag, const char *s, uint64_t *out);
int arg_float(const char *flag, const char *s, double lo, double hi, float *out);
/* Returns argv[*i + 1] and advances *i, or prints "FLAG needs a value". */
const char *arg_value(int argc, char **argv, int *i);
/* Prints "ember: msg" to stderr (one line) and returns exit status 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Checks that path is a readable regular file; prints the error if not. */
int cli_check_file(const char *path);

#endif
