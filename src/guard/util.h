/* util.h - small helpers shared by the guard modules: SHA-256 (OpenSSL EVP),
 * hex and base64url coding, secure random bytes, wall-clock time and the
 * time syntax of the command line ("30d", "12h", ISO 8601). All functions are
 * thread-safe and keep no state. */
#ifndef EM_GUARD_UTIL_H
#define EM_GUARD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define EM_SHA256_LEN 32

/* One-shot SHA-256. Returns 0, or -1 if OpenSSL fails (err filled). */
int em_sha256(const void *data, size_t len, uint8_t out[EM_SHA256_LEN], em_err *err);

/* Lower-case hex of n bytes into out (2n + 1 bytes with the NUL). */
void em_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n hex digits (either case) from s into out; -1 if s is
 * not exactly that. */
int em_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

/* Unpadded base64url of n bytes into out (needs 4*ceil(n/3) + 1 bytes);
 * returns the length written. */
size_t em_base64url_encode(const uint8_t *in, size_t n, char *out);
/* Decodes base64 or base64url (padding optional, no whitespace) into out
 * (cap bytes); returns the decoded length or -1 if s is not base64 or does
 * not fit. */
long em_base64_decode(const char *s, size_t slen, uint8_t *out, size_t cap);

/* Cryptographically secure random bytes (OpenSSL RAND_bytes). */
int em_random_bytes(uint8_t *out, size_t n, em_err *err);

/* Seconds / milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t em_now_s(void);
int64_t em_now_ms(void);

/* Parses a duration "90s", "45m", "12h", "30d", "2w" into seconds. */
int em_parse_duration(const char *s, int64_t *secs);
/* Parses a point in time: a duration relative to now (sign = +1: now + d,
 * -1: now - d), or ISO 8601 "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]"
 * (a space may replace the T; no zone means UTC). Unix seconds into *t.
 * Returns 0 or -1 with a message naming what was wrong. */
int em_parse_time(const char *s, int64_t now, int sign, int64_t *t, em_err *err);
/* "2025-01-31T12:00:00Z" (21 bytes with the NUL). */
void em_format_time(int64_t t, char buf[32]);

#endif
