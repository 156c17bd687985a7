/* pretok.c - byte-level BPE pre-tokenizer with PCRE2.
 *
 * llama.cpp splits text with hand-written matchers for the GPT-2 and
 * Llama-3 regexes and with std::regex over a "collapsed" text (one byte per
 * code point class) for the others. All of them behave like the regexes
 * below as long as the classes mean what llama.cpp's unicode tables say:
 *
 *  - \s is llama.cpp's whitespace set (Unicode White_Space), written out
 *    explicitly (WS below), because PCRE2's \s differs (e.g. U+0085);
 *  - (?i:'s|...) is ASCII-only case folding, written as '[sS]... (PCRE2's
 *    caseless mode would also fold U+017F and U+212A);
 *  - \p{L}, \p{N}, \p{P} come from PCRE2's Unicode tables. llama.cpp's table
 *    may be of a newer Unicode version: code points assigned after PCRE2's
 *    version count as "other" here (known, documented deviation).
 *
 * Invalid UTF-8 is first decoded the llama.cpp way (each bad byte becomes
 * U+FFFD); the regexes then run on a valid UTF-8 "proxy" string in which
 * surrogates and code points above U+10FFFF (which llama.cpp's lenient
 * decoder can produce) are replaced by U+FFFD, which is in the same class
 * ("other") in llama.cpp's tables. Words are rebuilt from the original code
 * points. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pretok.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "../base/checked.h"

#define MAX_RE 4

struct em_pretok {
    int n_re;
    pcre2_code *re[MAX_RE];
};

/* ---- UTF-8 helpers (llama.cpp unicode.cpp conventions) ---- */

uint32_t em_utf8_decode(const uint8_t *s, size_t n, size_t *adv) {
    uint8_t c = s[0];
    if (!(c & 0x80)) { *adv = 1; return c; }
    if (!(c & 0x40)) goto bad;
    if (!(c & 0x20)) {
        if (n < 2 || (s[1] & 0xc0) != 0x80) goto bad;
        *adv = 2;
        return ((uint32_t)(c & 0x1f) << 6) | (s[1] & 0x3f);
    }
    if (!(c & 0x10)) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) goto bad;
        *adv = 3;
        return ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    }
    if (!(c & 0x08)) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) goto bad;
        *adv = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) | ((uint32_t)(s[2] & 0x3f) << 6) |
               (s[3] & 0x3f);
    }
bad:
    *adv = 1;
    return 0xFFFD;
}

size_t em_utf8_encode(uint32_t cp, char out[4]) {
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp <= 0x7f) { out[0] = (char)cp; return 1; }
    if (cp <= 0x7ff) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp <= 0xffff) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* GPT-2: printable bytes map to themselves; the 68 others (0x00-0x20,
 * 0x7F-0xA0, 0xAD) to U+0100.. in byte order. */
static uint32_t byte_cp(uint8_t b) {
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7f && b <= 0xa0) return 256u + 33u + (uint32_t)(b - 0x7f);
    if (b == 0xad) return 256u + 33u + 34u;
    return b;
}

size_t em_byte_to_unicode(uint8_t b, char out[2]) {
    uint32_t cp = byte_cp(b);
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

int em_unicode_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xac) || (cp >= 0xae && cp <= 0xff)) return (int)cp;
    if (cp >= 256 && cp <= 256 + 32) return (int)(cp - 256);
    if (cp >= 256 + 33 && cp <= 256 + 33 + 33) return (int)(0x7f + (cp - 256 - 33));
    if (cp == 256 + 33 + 34) return 0xad;
    return -1;
}

/* ---- regexes ---- */

/* llama.cpp's whitespace set, as class members (no brackets). */
#define WS "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 * llama.cpp's matcher also takes a lone whitespace as a word (|\s+). */
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
#define RE_LLAMA3_HEAD "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL                                                                                           \
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"
static const char RE_LLAMA3[] = RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL;
static const char RE_QWEN2[] = RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL;

static const char RE_PUNCT[] = "[\\p{P}\\$\\+<=>\\^~\\|]+";
static const char RE_PUNCT_FALCON[] = "[\\p{P}\\$\\+<=>\\^~\\|`]+";
static const char RE_NUMS[] = "\\p{N}+";
static const char RE_NUM1[] = "\\p{N}";
static const char RE_DIGIT3[] = "[0-9][0-9][0-9]";

static int compile(em_pretok *p, const char *pat, em_err *err) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return em_fail(err, "pre-tokenizer regex error at %zu: %s", (size_t)off, (const char *)msg);
    }
    /* JIT is optional: on failure the interpreter is used. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    p->re[p->n_re++] = re;
    return 0;
}

em_pretok *em_pretok_new(int kind, em_err *err) {
    const char *pats[MAX_RE];
    int n = 0;
    switch (kind) {
    case EM_PRETOK_DEFAULT:
        pats[n++] = RE_PUNCT; pats[n++] = RE_GPT2; pats[n++] = RE_NUMS; pats[n++] = RE_DIGIT3;
        break;
    case EM_PRETOK_GPT2: pats[n++] = RE_GPT2; break;
    case EM_PRETOK_LLAMA3: pats[n++] = RE_LLAMA3; break;
    case EM_PRETOK_QWEN2: pats[n++] = RE_QWEN2; break;
    case EM_PRETOK_STARCODER: pats[n++] = RE_NUM1; pats[n++] = RE_GPT2; break;
    case EM_PRETOK_FALCON: pats[n++] = RE_PUNCT_FALCON; pats[n++] = RE_GPT2; pats[n++] = RE_DIGIT3; break;
    default: em_fail(err, "unknown pre-tokenizer kind %d", kind); return NULL;
    }
    em_pretok *p = calloc(1, sizeof *p);
    if (!p) { em_fail(err, "out of memory"); return NULL; }
    for (int i = 0; i < n; i++)
        if (compile(p, pats[i], err)) { em_pretok_free(p); return NULL; }
    return p;
}

void em_pretok_free(em_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_re; i++) pcre2_code_free(p->re[i]);
    free(p);
}

/* ---- splitting ---- */

typedef struct { size_t a, b; } span; /* code point index range [a, b) */

typedef struct {
    span *v;
    size_t n, cap;
} spans;

static int spans_push(spans *s, size_t a, size_t b, em_err *err) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64, bytes;
        if (!em_mul_sz(cap, sizeof *s->v, &bytes)) return em_fail(err, "pre-tokenizer: too many words");
        span *v = realloc(s->v, bytes);
        if (!v) return em_fail(err, "out of memory");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].a = a;
    s->v[s->n].b = b;
    s->n++;
    return 0;
}

/* Code point index whose proxy byte offset is off (off is on a boundary). */
static size_t cpt_at(const size_t *pofs, size_t ncpt, size_t off) {
    size_t lo = 0, hi = ncpt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pofs[mid] < off) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Applies one regex inside every span of in, keeping the unmatched gaps as
 * words of their own (llama.cpp's unicode_regex_split_stl). Each span is
 * matched as a separate subject, so look-aheads stop at its end. */
static int split_one(const pcre2_code *re, const char *proxy, const size_t *pofs, size_t ncpt, const spans *in,
                     spans *out, em_err *err) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return em_fail(err, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < in->n && !rc; i++) {
        size_t a = in->v[i].a, b = in->v[i].b;
        const char *subj = proxy + pofs[a];
        size_t slen = pofs[b] - pofs[a], pos = 0, prev = 0;
        while (pos < slen) {
            int m = pcre2_match(re, (PCRE2_SPTR)subj, slen, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (m == PCRE2_ERROR_NOMATCH) break;
            if (m < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(m, msg, sizeof msg);
                rc = em_fail(err, "pre-tokenizer regex match failed: %s", (const char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) { /* cannot happen with our patterns; step one code point */
                pos = ms + em_utf8_len_lead((uint8_t)subj[ms]);
                if (pos > slen) pos = slen;
                continue;
            }
            if (ms > prev && (rc = spans_push(out, cpt_at(pofs, ncpt, pofs[a] + prev), cpt_at(pofs, ncpt, pofs[a] + ms), err)))
                break;
            if ((rc = spans_push(out, cpt_at(pofs, ncpt, pofs[a] + ms), cpt_at(pofs, ncpt, pofs[a] + me), err))) break;
            prev = pos = me;
        }
        if (!rc && prev < slen) rc = spans_push(out, cpt_at(pofs, ncpt, pofs[a] + prev), b, err);
    }
    pcre2_match_data_free(md);
    return rc;
}

int em_pretok_split(const em_pretok *p, const char *text, size_t len, em_pretok_word_fn fn, void *ud, em_err *err) {
    if (len == 0) return 0;
    size_t proxy_cap, pofs_n, pofs_bytes;
    /* each input byte yields at most one code point and 3 proxy bytes */
    if (!em_mul_sz(len, 3, &proxy_cap) || !em_add_sz(len, 1, &pofs_n) ||
        !em_mul_sz(pofs_n, sizeof(size_t), &pofs_bytes))
        return em_fail(err, "text too long");
    uint32_t *cpts = em_malloc_array(len, sizeof *cpts);
    size_t *pofs = malloc(pofs_bytes);
    char *proxy = malloc(proxy_cap);
    char *word = NULL;
    spans cur = {0}, nxt = {0};
    int rc = 0;
    if (!cpts || !pofs || !proxy) { rc = em_fail(err, "out of memory"); goto done; }

    size_t ncpt = 0, pl = 0, word_cap = 0;
    for (size_t off = 0; off < len;) {
        size_t adv;
        uint32_t cp = em_utf8_decode((const uint8_t *)text + off, len - off, &adv);
        off += adv;
        cpts[ncpt] = cp;
        pofs[ncpt++] = pl;
        uint32_t pc = (cp >= 0xD800 && cp <= 0xDFFF) ? 0xFFFD : cp; /* em_utf8_encode maps > 0x10FFFF */
        pl += em_utf8_encode(pc, proxy + pl);
    }
    pofs[ncpt] = pl;

    if ((rc = spans_push(&cur, 0, ncpt, err))) goto done;
    for (int r = 0; r < p->n_re; r++) {
        nxt.n = 0;
        if ((rc = split_one(p->re[r], proxy, pofs, ncpt, &cur, &nxt, err))) goto done;
        spans t = cur; cur = nxt; nxt = t;
    }

    for (size_t i = 0; i < cur.n; i++) {
        size_t a = cur.v[i].a, b = cur.v[i].b, need, wl = 0;
        if (!em_mul_sz(b - a, 4, &need)) { rc = em_fail(err, "text too long"); goto done; }
        if (need > word_cap) {
            char *w = realloc(word, need);
            if (!w) { rc = em_fail(err, "out of memory"); goto done; }
            word = w;
            word_cap = need;
        }
        for (size_t k = a; k < b; k++) wl += em_utf8_encode(cpts[k], word + wl);
        if ((rc = fn(ud, word, wl, err))) goto done;
    }
done:
    free(cpts);
    free(pofs);
    free(proxy);
    free(word);
    free(cur.v);
    free(nxt.v);
    return rc;
}
