#include "redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Bytes of already-emitted input kept in front of the scan position so that
 * lookbehind assertions see the same text as in a one-shot scan; larger
 * than every pattern's lookbehind (checked at compile time). */
#define CONTEXT_KEEP 32

/* Callout numbers: the validator to run on the candidate so far. */
enum { V_NONE = 0, V_JWT = 2, V_OPENAI = 4, V_IBAN = 6, V_EMAIL = 7, V_IPV6 = 8, V_CARD = 9, V_SSN = 10, V_PHONE = 11 };

#define OCTET "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"

typedef struct detector_def {
    em_pii_type type;
    const char *name;
    const char *pattern;
    const char *first;     /* bytes a match can start with ("a-z" ranges allowed) */
    const char *not_after; /* bytes that, just before the start, rule a match out */
} detector_def;

static const detector_def defs[EM_PII_COUNT] = {
    {EM_PII_PRIVATE_KEY, "PRIVATE_KEY",
     "-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
     "(?:\\s*+[A-Za-z-]{1,32}+: [^\\n]{0,256}+\\n)*+"
     "[A-Za-z0-9+/=\\s]{0,65535}+"
     "(?:-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)?",
     "-", ""},
    {EM_PII_JWT, "JWT",
     "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{6,8192}+\\.eyJ[A-Za-z0-9_-]{6,16384}+\\.[A-Za-z0-9_-]{0,4096}+(?C2)"
     "(?![A-Za-z0-9_-]|\\.[A-Za-z0-9_-])",
     "e", "A-Za-z0-9_-"},
    {EM_PII_GITHUB_TOKEN, "GITHUB_TOKEN",
     "(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}+|github_pat_[A-Za-z0-9_]{22,244}+)(?![A-Za-z0-9_])", "g",
     "A-Za-z0-9_"},
    {EM_PII_OPENAI_KEY, "OPENAI_KEY", "(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,300}+(?C4)(?![A-Za-z0-9_-])", "s",
     "A-Za-z0-9_-"},
    {EM_PII_AWS_KEY, "AWS_KEY",
     "(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
     "|(?<![A-Za-z0-9_])(?i:aws)_?(?i:secret)_?(?i:access_?)?(?i:key)[\"']?\\s{0,4}[:=]\\s{0,4}[\"']?"
     "(?<r>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
     "Aa", "A-Za-z0-9"},
    {EM_PII_IBAN, "IBAN", "(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}(?C6)(?![A-Za-z0-9])", "A-Z",
     "A-Za-z0-9"},
    {EM_PII_EMAIL, "EMAIL",
     "(?<![A-Za-z0-9._%+-])[A-Za-z0-9_][A-Za-z0-9._%+-]{0,63}+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){1,8}"
     "[A-Za-z]{2,24}(?C7)(?![A-Za-z0-9-]|\\.[A-Za-z0-9])",
     "A-Za-z0-9_", "A-Za-z0-9._%+-"},
    {EM_PII_IPV6, "IPV6",
     "(?<![A-Za-z0-9_.])(?<![0-9A-Fa-f:]:)(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:(?<=:)" OCTET "(?:\\." OCTET "){3})?(?C8)"
     "(?![A-Za-z0-9_]|:[0-9A-Fa-f:]|\\.[0-9])",
     "0-9A-Fa-f:", "A-Za-z0-9_."},
    {EM_PII_CARD, "CREDIT_CARD",
     "(?<![A-Za-z0-9_+.]|[0-9]-|[0-9] )(?:[0-9]{13,19}|[0-9]{4}([ -])[0-9]{4}\\1[0-9]{4}\\1[0-9]{4}(?:\\1[0-9]{3})?"
     "|[0-9]{4}([ -])[0-9]{6}\\2[0-9]{4,5})(?C9)(?![A-Za-z0-9_]|[.-][0-9])",
     "0-9", "A-Za-z0-9_+."},
    {EM_PII_SSN, "SSN", "(?<![A-Za-z0-9_+.-]|[0-9] )[0-9]{3}-[0-9]{2}-[0-9]{4}(?C10)(?![A-Za-z0-9_]|[.-][0-9])", "0-9",
     "A-Za-z0-9_+.-"},
    {EM_PII_PHONE, "PHONE",
     "(?<![A-Za-z0-9_+.-]|[0-9] )(?:\\+?1[ .-]?)?(?:\\([2-9][0-9]{2}\\) ?|[2-9][0-9]{2}([ .-]))[2-9][0-9]{2}"
     "(?(1)\\1|[ .-])[0-9]{4}(?![A-Za-z0-9_]|[.-][0-9])"
     "|(?<![A-Za-z0-9_+.-])\\+[1-9](?:[ .-]?(?:\\([0-9]{1,4}\\)|[0-9])){6,20}(?C11)(?![A-Za-z0-9_]|[.-]?[0-9])",
     "0-9+(", "A-Za-z0-9_+.-"},
    {EM_PII_IPV4, "IPV4",
     "(?<![A-Za-z0-9_.]|\\b[Vv]ersion |\\b[Vv]ersion: |\\b[Vv]er\\. |\\b[Vv]er |\\b[Rr]elease |\\b[Bb]uild )"
     "(?:" OCTET "\\.){3}" OCTET "(?![0-9A-Za-z_]|\\.[0-9]|-[A-Za-z])",
     "0-9", "A-Za-z0-9_."},
};

typedef struct detector {
    pcre2_code *code;
    uint32_t rgroup; /* number of the group named r (0: none) */
    uint8_t first[256], not_after[256];
} detector;

struct em_redactor {
    unsigned types;
    detector det[EM_PII_COUNT];
    pcre2_match_context *mctx;
};

const char *em_pii_name(em_pii_type t) { return (unsigned)t < EM_PII_COUNT ? defs[t].name : "?"; }

int em_pii_parse_types(const char *list, unsigned *mask, em_err *err) {
    *mask = 0;
    if (!list || !*list) return em_fail(err, "empty type list");
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        bool found = false;
        if (n == 3 && !strncasecmp(p, "all", 3)) { *mask |= EM_PII_ALL; found = true; }
        for (int t = 0; t < EM_PII_COUNT && !found; t++)
            if (strlen(defs[t].name) == n && !strncasecmp(p, defs[t].name, n)) { *mask |= 1u << t; found = true; }
        if (!found && n == 4 && !strncasecmp(p, "card", 4)) { *mask |= 1u << EM_PII_CARD; found = true; }
        if (!found) return em_fail(err, "unknown detector '%.*s' (known: all, email, phone, credit_card, ssn, iban, "
                                        "ipv4, ipv6, aws_key, github_token, openai_key, jwt, private_key)", (int)n, p);
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

int em_redact_parse_where(const char *list, unsigned *where, em_err *err) {
    static const struct { const char *name; unsigned bit; } names[] = {
        {"none", 0}, {"all", EM_REDACT_EVERYWHERE}, {"prompts", EM_REDACT_PROMPTS},
        {"completions", EM_REDACT_COMPLETIONS}, {"logs", EM_REDACT_LOGS}};
    *where = 0;
    if (!list || !*list) return em_fail(err, "empty redaction policy");
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++)
            if (strlen(names[i].name) == n && !strncasecmp(p, names[i].name, n)) { *where |= names[i].bit; found = true; }
        if (!found)
            return em_fail(err, "unknown redaction target '%.*s' (none, all, prompts, completions, logs)", (int)n, p);
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

/* ---- validators --------------------------------------------------------- */

bool em_luhn_ok(const char *d, size_t n) {
    int sum = 0;
    bool dbl = false;
    size_t digits = 0;
    for (size_t i = n; i-- > 0;) {
        if (!isdigit((unsigned char)d[i])) continue;
        int v = d[i] - '0';
        if (dbl) { v *= 2; if (v > 9) v -= 9; }
        sum += v;
        dbl = !dbl;
        digits++;
    }
    return digits > 1 && sum % 10 == 0;
}

static int prefix_num(const char *d, int k) {
    int v = 0;
    for (int i = 0; i < k; i++) v = v * 10 + (d[i] - '0');
    return v;
}

static bool card_ok(const char *s, size_t n) {
    char d[24];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) {
            if (k >= 19) return false;
            d[k++] = s[i];
        }
    }
    if (k < 13) return false;
    int p1 = prefix_num(d, 1), p2 = prefix_num(d, 2), p3 = prefix_num(d, 3), p4 = prefix_num(d, 4);
    bool brand = false;
    if (p1 == 4) brand = k == 13 || k == 16 || k == 19;                                /* Visa */
    else if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) brand = k == 16;    /* Mastercard */
    else if (p2 == 34 || p2 == 37) brand = k == 15;                                    /* Amex */
    else if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) brand = k >= 16;      /* Discover */
    else if (p4 >= 3528 && p4 <= 3589) brand = k >= 16;                                /* JCB */
    else if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) brand = k >= 14; /* Diners */
    else if (p2 == 62) brand = k >= 16;                                                /* UnionPay */
    else if (p4 >= 2200 && p4 <= 2204) brand = k >= 16;                                /* Mir */
    else if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 63 || p2 == 67) brand = true; /* Maestro */
    return brand && em_luhn_ok(d, k);
}

/* IBAN lengths by country (ISO 13616 registry). */
static const char iban_lengths[] =
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BI27BR29BY28CH21CR22CY28CZ24DE22DJ27DK18DO28EE20EG29ES24FI18FK18FO18FR27"
    "GB22GE22GI23GL18GR27GT28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20LV21LY25MC27MD24ME22MK19"
    "MN20MR27MT31MU30NI28NL18NO15OM23PK24PL28PS29PT25QA29RO24RS22RU33SA24SC31SD18SE24SI19SK24SM27SO23ST25SV28TL23"
    "TN24TR26UA29VA22VG24XK20YE30";

bool em_iban_ok(const char *s, size_t n) {
    char c[40];
    size_t k = 0;
    bool grouped = memchr(s, ' ', n) != NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            /* grouped form: a single space after every 4 characters */
            if (k == 0 || k % 4 != 0 || i + 1 >= n || s[i + 1] == ' ') return false;
            continue;
        }
        if (grouped && k > 0 && k % 4 == 0 && s[i - 1] != ' ') return false;
        if (k >= 34 || !isalnum((unsigned char)s[i])) return false;
        c[k++] = (char)toupper((unsigned char)s[i]);
    }
    if (k < 15) return false;
    int want = 0;
    for (const char *p = iban_lengths; *p; p += 4)
        if (p[0] == c[0] && p[1] == c[1]) { want = (p[2] - '0') * 10 + (p[3] - '0'); break; }
    if (want == 0 || (size_t)want != k) return false;
    /* Move the first four characters to the end, letters -> 10..35, mod 97. */
    unsigned rem = 0;
    for (size_t i = 0; i < k; i++) {
        char ch = c[(i + 4) % k];
        if (isdigit((unsigned char)ch)) rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z') rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else return false;
    }
    return rem == 1;
}

static bool email_ok(const char *s, size_t n) {
    /* Reject file names such as icon@2x.png: the "TLD" is an image extension. */
    static const char *const ext[] = {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", NULL};
    const char *dot = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.') dot = s + i;
    if (!dot) return false;
    size_t tl = (size_t)(s + n - dot - 1);
    for (int i = 0; ext[i]; i++)
        if (strlen(ext[i]) == tl && !strncasecmp(dot + 1, ext[i], tl)) return false;
    return true;
}

static bool ipv6_ok(const char *s, size_t n) {
    char buf[64];
    unsigned char addr[16];
    if (n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (inet_pton(AF_INET6, buf, addr) != 1) return false;
    bool digit = false;
    int groups = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) digit = true;
        if (s[i] != ':' && s[i] != '.' && (i == 0 || s[i - 1] == ':')) groups++;
    }
    return digit && groups >= 2;
}

static bool ssn_ok(const char *s, size_t n) {
    if (n != 11) return false;
    int area = prefix_num(s, 3), group = prefix_num(s + 4, 2), serial = prefix_num(s + 7, 4);
    return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

static bool openai_ok(const char *s, size_t n) {
    if (n < 3 + 32) return false;
    bool d = false, u = false, l = false;
    for (size_t i = 3; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        d |= isdigit(c) != 0;
        u |= isupper(c) != 0;
        l |= islower(c) != 0;
    }
    return d && u && l;
}

static bool jwt_ok(const char *s, size_t n) {
    const char *dot = memchr(s, '.', n);
    if (!dot) return false;
    uint8_t hdr[512];
    size_t hl = (size_t)(dot - s);
    if (hl > 680) return false;
    long k = em_base64_decode(s, hl, hdr, sizeof hdr);
    if (k < 2 || hdr[0] != '{') return false;
    for (long i = 0; i + 5 <= k; i++)
        if (!memcmp(hdr + i, "\"alg\"", 5)) return true;
    return false;
}

static bool phone_intl_ok(const char *s, size_t n) {
    int digits = 0, parens = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) digits++;
        else if (s[i] == '(') parens++;
    }
    return digits >= 8 && digits <= 15 && parens <= 1;
}

static int callout(pcre2_callout_block *cb, void *user) {
    (void)user;
    const char *s = (const char *)cb->subject + cb->start_match;
    size_t n = cb->current_position - cb->start_match;
    bool ok;
    switch (cb->callout_number) {
    case V_JWT: ok = jwt_ok(s, n); break;
    case V_OPENAI: ok = openai_ok(s, n); break;
    case V_IBAN: ok = em_iban_ok(s, n); break;
    case V_EMAIL: ok = email_ok(s, n); break;
    case V_IPV6: ok = ipv6_ok(s, n); break;
    case V_CARD: ok = card_ok(s, n); break;
    case V_SSN: ok = ssn_ok(s, n); break;
    case V_PHONE: ok = phone_intl_ok(s, n); break;
    default: ok = true;
    }
    return ok ? 0 : 1; /* > 0: fail here and backtrack */
}

/* ---- compile ------------------------------------------------------------ */

static void set_bytes(uint8_t set[256], const char *spec) {
    memset(set, 0, 256);
    for (const unsigned char *p = (const unsigned char *)spec; *p; p++) {
        if (p[1] == '-' && p[2]) {
            for (int c = p[0]; c <= p[2]; c++) set[c] = 1;
            p += 2;
        } else {
            set[*p] = 1;
        }
    }
}

em_redactor *em_redactor_new(unsigned types, em_err *err) {
    em_redactor *r = calloc(1, sizeof *r);
    if (!r) { em_fail(err, "out of memory"); return NULL; }
    r->types = types ? types & EM_PII_ALL : EM_PII_ALL;
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->mctx) { em_redactor_free(r); em_fail(err, "out of memory"); return NULL; }
    pcre2_set_callout(r->mctx, callout, NULL);
    for (int t = 0; t < EM_PII_COUNT; t++) {
        if (!(r->types & (1u << t))) continue;
        int ec;
        PCRE2_SIZE eo;
        detector *d = &r->det[t];
        d->code = pcre2_compile((PCRE2_SPTR)defs[t].pattern, PCRE2_ZERO_TERMINATED, PCRE2_NO_AUTO_POSSESS, &ec, &eo,
                                NULL);
        if (!d->code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            em_fail(err, "redact: pattern %s: %s at offset %zu", defs[t].name, (char *)msg, (size_t)eo);
            em_redactor_free(r);
            return NULL;
        }
        uint32_t lb = 0;
        pcre2_pattern_info(d->code, PCRE2_INFO_MAXLOOKBEHIND, &lb);
        if (lb >= CONTEXT_KEEP) {
            em_fail(err, "redact: pattern %s looks back %u bytes (max %d)", defs[t].name, lb, CONTEXT_KEEP - 1);
            em_redactor_free(r);
            return NULL;
        }
        int g = pcre2_substring_number_from_name(d->code, (PCRE2_SPTR) "r");
        d->rgroup = g > 0 ? (uint32_t)g : 0;
        set_bytes(d->first, defs[t].first);
        set_bytes(d->not_after, defs[t].not_after);
    }
    return r;
}

void em_redactor_free(em_redactor *r) {
    if (!r) return;
    for (int t = 0; t < EM_PII_COUNT; t++) pcre2_code_free(r->det[t].code);
    pcre2_match_context_free(r->mctx);
    free(r);
}

/* ---- scanning ----------------------------------------------------------- */

typedef struct hit {
    em_pii_type type;
    size_t rs, re; /* redacted bytes */
    size_t end;    /* end of the whole match (scanning resumes here) */
} hit;

enum { STEP_NONE, STEP_MATCH, STEP_MORE };

/* Tries every detector at position p of buf[0, len). final: the text ends
 * at len (else a detector that could still match with more input makes the
 * step answer STEP_MORE). */
static int step(const em_redactor *r, pcre2_match_data *md, const uint8_t *buf, size_t len, size_t p, bool final,
                hit *h) {
    uint8_t c = buf[p], prev = p > 0 ? buf[p - 1] : 0;
    uint32_t opts = PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK | (final ? 0 : PCRE2_PARTIAL_HARD);
    for (int t = 0; t < EM_PII_COUNT; t++) {
        const detector *d = &r->det[t];
        if (!d->code || !d->first[c] || (p > 0 && d->not_after[prev])) continue;
        int rc = pcre2_match(d->code, buf, len, p, opts, md, r->mctx);
        if (rc == PCRE2_ERROR_PARTIAL) return STEP_MORE;
        if (rc <= 0) continue;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) continue;
        h->type = (em_pii_type)t;
        h->end = ov[1];
        h->rs = ov[0];
        h->re = ov[1];
        if (d->rgroup && (uint32_t)rc > d->rgroup && ov[2 * d->rgroup] != PCRE2_UNSET) {
            h->rs = ov[2 * d->rgroup];
            h->re = ov[2 * d->rgroup + 1];
        }
        return STEP_MATCH;
    }
    return STEP_NONE;
}

static pcre2_match_data *new_md(void) { return pcre2_match_data_create(16, NULL); }

int em_redact_scan(const em_redactor *r, const char *text, size_t len, em_span **spans, size_t *n, em_err *err) {
    *spans = NULL;
    *n = 0;
    pcre2_match_data *md = new_md();
    if (!md) return em_fail(err, "out of memory");
    size_t cap = 0;
    const uint8_t *buf = (const uint8_t *)text;
    for (size_t p = 0; p < len;) {
        hit h;
        if (step(r, md, buf, len, p, true, &h) != STEP_MATCH) { p++; continue; }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            em_span *ns = realloc(*spans, cap * sizeof *ns);
            if (!ns) {
                free(*spans);
                *spans = NULL;
                *n = 0;
                pcre2_match_data_free(md);
                return em_fail(err, "out of memory");
            }
            *spans = ns;
        }
        (*spans)[(*n)++] = (em_span){h.type, h.rs, h.re};
        p = h.end;
    }
    pcre2_match_data_free(md);
    return 0;
}

/* A growable byte buffer. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_replacement(sbuf *b, em_pii_type t) {
    char rep[48];
    int k = snprintf(rep, sizeof rep, "[REDACTED:%s]", em_pii_name(t));
    sb_add(b, rep, (size_t)k);
}

char *em_redact_string(const em_redactor *r, const char *text, size_t len, size_t *out_len, size_t *n_spans) {
    em_span *sp;
    size_t n;
    if (em_redact_scan(r, text, len, &sp, &n, NULL)) return NULL;
    sbuf b = {0};
    sb_add(&b, "", 0);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        sb_add(&b, text + at, sp[i].start - at);
        sb_replacement(&b, sp[i].type);
        at = sp[i].end;
    }
    sb_add(&b, text + at, len - at);
    free(sp);
    if (b.oom) { free(b.p); return NULL; }
    if (out_len) *out_len = b.n;
    if (n_spans) *n_spans = n;
    return b.p;
}

/* ---- streaming ---------------------------------------------------------- */

struct em_redact_stream {
    const em_redactor *r;
    pcre2_match_data *md;
    uint8_t *buf;
    size_t len, cap;
    size_t pos;      /* bytes before pos are emitted (kept only as context) */
    sbuf out;
    size_t count;
    unsigned types;
};

em_redact_stream *em_redact_stream_new(const em_redactor *r) {
    em_redact_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->r = r;
    s->md = new_md();
    if (!s->md) { free(s); return NULL; }
    return s;
}

void em_redact_stream_free(em_redact_stream *s) {
    if (!s) return;
    pcre2_match_data_free(s->md);
    free(s->buf);
    free(s->out.p);
    free(s);
}

static void run(em_redact_stream *s, bool final) {
    size_t p = s->pos, raw = p; /* raw: start of bytes not yet copied to out */
    while (p < s->len) {
        hit h;
        int st = step(s->r, s->md, s->buf, s->len, p, final, &h);
        if (st == STEP_MORE) break;
        if (st == STEP_NONE) { p++; continue; }
        sb_add(&s->out, s->buf + raw, h.rs - raw);
        sb_replacement(&s->out, h.type);
        sb_add(&s->out, s->buf + h.re, h.end - h.re);
        s->count++;
        s->types |= 1u << h.type;
        p = raw = h.end;
    }
    sb_add(&s->out, s->buf + raw, p - raw);
    s->pos = p;
    /* Drop what no lookbehind can reach any more. */
    size_t keep_from = p > CONTEXT_KEEP ? p - CONTEXT_KEEP : 0;
    if (keep_from > 0) {
        memmove(s->buf, s->buf + keep_from, s->len - keep_from);
        s->len -= keep_from;
        s->pos -= keep_from;
    }
}

const char *em_redact_stream_feed(em_redact_stream *s, const char *chunk, size_t len, size_t *n) {
    s->out.n = 0;
    sb_add(&s->out, "", 0);
    if (s->len + len > s->cap) {
        size_t nc = s->cap ? s->cap : 256;
        while (nc < s->len + len) nc *= 2;
        uint8_t *nb = realloc(s->buf, nc);
        if (!nb) return NULL;
        s->buf = nb;
        s->cap = nc;
    }
    if (len) memcpy(s->buf + s->len, chunk, len);
    s->len += len;
    run(s, false);
    if (s->out.oom) return NULL;
    *n = s->out.n;
    return s->out.p;
}

const char *em_redact_stream_finish(em_redact_stream *s, size_t *n) {
    s->out.n = 0;
    sb_add(&s->out, "", 0);
    run(s, true);
    s->len = s->pos = 0;
    if (s->out.oom) return NULL;
    *n = s->out.n;
    return s->out.p;
}

size_t em_redact_stream_held(const em_redact_stream *s) { return s->len - s->pos; }

size_t em_redact_stream_count(const em_redact_stream *s, unsigned *types) {
    if (types) *types = s->types;
    return s->count;
}
