/* err.h - error reporting for libember: functions return 0 / -1 and fill an
 * em_err with a one-line message. The library never prints or exits. */
#ifndef EM_ERR_H
#define EM_ERR_H

#include <stdarg.h>

typedef struct em_err {
    char msg[512];
} em_err;

/* Formats the message into err (if err is non-NULL). Always returns -1 so
 * callers can write `return em_fail(err, "...")`. */
int em_fail(em_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (for adding context). Returns -1. */
int em_fail_ctx(em_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
