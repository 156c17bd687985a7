#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

int em_sha256(const void *data, size_t len, uint8_t out[EM_SHA256_LEN], em_err *err) {
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != EM_SHA256_LEN)
        return em_fail(err, "SHA-256 failed (OpenSSL)");
    return 0;
}

void em_hex_encode(const uint8_t *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int em_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n) {
    if (slen != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

size_t em_base64url_encode(const uint8_t *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        if (i + 1 < n) out[o++] = tab[v >> 6 & 63];
        if (i + 2 < n) out[o++] = tab[v & 63];
    }
    out[o] = 0;
    return o;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

long em_base64_decode(const char *s, size_t slen, uint8_t *out, size_t cap) {
    while (slen > 0 && s[slen - 1] == '=') slen--;
    if (slen % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

int em_random_bytes(uint8_t *out, size_t n, em_err *err) {
    if (n > INT_MAX || RAND_bytes(out, (int)n) != 1) return em_fail(err, "no secure random bytes (OpenSSL RAND_bytes)");
    return 0;
}

int64_t em_now_s(void) { return (int64_t)time(NULL); }

int64_t em_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int em_parse_duration(const char *s, int64_t *secs) {
    if (!s || !isdigit((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || !end[0] || end[1]) return -1;
    int64_t mul;
    switch (*end) {
    case 's': mul = 1; break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    case 'w': mul = 7 * 86400; break;
    default: return -1;
    }
    if (v < 0 || v > INT64_MAX / mul / 4) return -1;
    *secs = (int64_t)v * mul;
    return 0;
}

/* Reads exactly n digits at *p into *v. */
static int digits(const char **p, int n, int *v) {
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

static int days_in_month(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

int em_parse_time(const char *s, int64_t now, int sign, int64_t *t, em_err *err) {
    int64_t d;
    if (!s || !*s) return em_fail(err, "empty time");
    if (em_parse_duration(s, &d) == 0) {
        *t = sign < 0 ? now - d : now + d;
        return 0;
    }
    const char *p = s;
    int Y, M, D, h = 0, mi = 0, sec = 0, off = 0;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
        goto bad;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) goto bad;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec)) goto bad;
            if (*p == '.') { p++; while (isdigit((unsigned char)*p)) p++; }
        }
        if (*p == 'Z' || *p == 'z') p++;
        else if (*p == '+' || *p == '-') {
            int oh, om, sgn = *p == '-' ? -1 : 1;
            p++;
            if (digits(&p, 2, &oh)) goto bad;
            if (*p == ':') p++;
            if (digits(&p, 2, &om) || oh > 23 || om > 59) goto bad;
            off = sgn * (oh * 3600 + om * 60);
        }
    }
    if (*p) goto bad;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || sec > 60) goto bad;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    *t = (int64_t)timegm(&tm) - off;
    return 0;
bad:
    return em_fail(err, "'%s' is not a duration (30d, 12h, 45m, 90s, 2w) or an ISO 8601 time (2025-01-31T12:00:00Z)", s);
}

void em_format_time(int64_t t, char buf[32]) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) { snprintf(buf, 32, "%lld", (long long)t); return; }
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
