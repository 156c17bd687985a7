/* test_guard_redact.c - PII / secret redaction (src/guard/redact.h): a
 * seeded generator makes labelled lines (every detector in varied contexts
 * plus near-miss negatives: invalid Luhn numbers, bad IBAN checksums,
 * version strings, dates, UUIDs, hashes, IP-like versions, ...);
 * precision and recall must be >= 0.98, and the streaming redactor must
 * give byte-identical output for every split point of every line. */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>

#include "guard/redact.h"
#include "guard/util.h"

/* ---- seeded generator --------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static int rint_(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }
static const char *pick(const char *const *a, size_t n) { return a[rnd() % n]; }
#define PICK(a) pick(a, sizeof a / sizeof a[0])

static void rand_chars(char *out, int n, const char *alphabet) {
    size_t k = strlen(alphabet);
    for (int i = 0; i < n; i++) out[i] = alphabet[rnd() % k];
    out[n] = 0;
}

#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"
#define ALNUM UPPER LOWER DIGITS

/* Guarantees at least one digit, upper and lower case letter. */
static void rand_mixed(char *out, int n, const char *alphabet) {
    rand_chars(out, n, alphabet);
    out[rint_(0, n / 3 - 1)] = DIGITS[rnd() % 10];
    out[rint_(n / 3, 2 * n / 3 - 1)] = UPPER[rnd() % 26];
    out[rint_(2 * n / 3, n - 1)] = LOWER[rnd() % 26];
}

static int luhn_check_digit(const char *d, int n) { /* for d[0..n) followed by the check digit */
    int sum = 0;
    for (int i = n - 1, dbl = 1; i >= 0; i--, dbl = !dbl) {
        int v = d[i] - '0';
        if (dbl) { v *= 2; if (v > 9) v -= 9; }
        sum += v;
    }
    return (10 - sum % 10) % 10;
}

/* A card number (digits only) with a valid (or, bad = true, invalid) Luhn digit. */
static int gen_card_digits(char *d, bool bad) {
    static const char *const pre[] = {"4", "51", "52", "53", "54", "55", "2221", "2720", "34", "37", "6011", "65"};
    const char *p = PICK(pre);
    int len = (p[0] == '3') ? 15 : 16;
    strcpy(d, p);
    int k = (int)strlen(p);
    for (; k < len - 1; k++) d[k] = (char)('0' + rnd() % 10);
    int c = luhn_check_digit(d, len - 1);
    if (bad) c = (c + rint_(1, 9)) % 10;
    d[len - 1] = (char)('0' + c);
    d[len] = 0;
    return len;
}

static void gen_card(char *out, bool bad) {
    char d[24];
    int len = gen_card_digits(d, bad);
    int style = rint_(0, 2);
    if (style == 0) { strcpy(out, d); return; }
    char sep = style == 1 ? ' ' : '-';
    if (len == 15) sprintf(out, "%.4s%c%.6s%c%.5s", d, sep, d + 4, sep, d + 10);
    else sprintf(out, "%.4s%c%.4s%c%.4s%c%.4s", d, sep, d + 4, sep, d + 8, sep, d + 12);
}

static unsigned mod97(const char *s) {
    unsigned r = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9') r = (r * 10 + (unsigned)(*s - '0')) % 97;
        else r = (r * 100 + (unsigned)(*s - 'A' + 10)) % 97;
    }
    return r;
}

static void gen_iban(char *out, bool bad) {
    static const struct { const char *cc, *fmt; } t[] = {
        {"DE", "nnnnnnnnnnnnnnnnnn"}, {"GB", "aaaannnnnnnnnnnnnn"}, {"NL", "aaaannnnnnnnnn"},
        {"FR", "nnnnnnnnnnnnnnnnnnnnnnn"}, {"ES", "nnnnnnnnnnnnnnnnnnnn"}, {"BE", "nnnnnnnnnnnn"},
        {"IT", "annnnnnnnnnxxxxxxxxxxxx"}, {"CH", "nnnnnxxxxxxxxxxxx"}, {"NO", "nnnnnnnnnnn"}};
    int i = (int)(rnd() % (sizeof t / sizeof t[0]));
    char bban[40];
    int n = (int)strlen(t[i].fmt);
    for (int k = 0; k < n; k++) {
        char f = t[i].fmt[k];
        bban[k] = f == 'n' ? DIGITS[rnd() % 10] : f == 'a' ? UPPER[rnd() % 26] : ALNUM[rnd() % 36 % 36 < 26 ? rnd() % 26 : 52 + rnd() % 10];
    }
    bban[n] = 0;
    char tmp[64];
    sprintf(tmp, "%s%s00", bban, t[i].cc);
    unsigned check = 98 - mod97(tmp);
    if (bad) check = (check + (unsigned)rint_(1, 50)) % 97 + 2 > 98 ? 2 : (check + (unsigned)rint_(1, 50)) % 97 + 2;
    char compact[48];
    sprintf(compact, "%s%02u%s", t[i].cc, check, bban);
    if (bad && em_iban_ok(compact, strlen(compact))) compact[3] = compact[3] == '9' ? '0' : (char)(compact[3] + 1);
    if (rint_(0, 1)) { strcpy(out, compact); return; }
    size_t o = 0, L = strlen(compact);
    for (size_t k = 0; k < L; k++) {
        if (k && k % 4 == 0) out[o++] = ' ';
        out[o++] = compact[k];
    }
    out[o] = 0;
}

static void gen_email(char *out) {
    static const char *const first[] = {"john", "maria", "li.wei", "a.smith", "dev-ops", "x_y", "olga", "sam+news", "k9"};
    static const char *const dom[] = {"example.com", "mail.example.org", "corp.co.uk", "uni-hamburg.de", "startup.io",
                                      "test.net", "sub.domain.example.com"};
    sprintf(out, "%s%d@%s", PICK(first), rint_(0, 99), PICK(dom));
}

static void gen_phone(char *out) {
    int a = rint_(201, 989), e = rint_(200, 999), n = rint_(0, 9999);
    switch (rint_(0, 7)) {
    case 0: sprintf(out, "(%03d) %03d-%04d", a, e, n); break;
    case 1: sprintf(out, "%03d-%03d-%04d", a, e, n); break;
    case 2: sprintf(out, "%03d.%03d.%04d", a, e, n); break;
    case 3: sprintf(out, "+1 %03d %03d %04d", a, e, n); break;
    case 4: sprintf(out, "+1-%03d-%03d-%04d", a, e, n); break;
    case 5: sprintf(out, "+44 20 %04d %04d", rint_(1000, 9999), n); break;
    case 6: sprintf(out, "+49 30 %07d", rint_(1000000, 9999999)); break;
    default: sprintf(out, "+33 1 %02d %02d %02d %02d", rint_(10, 99), rint_(10, 99), rint_(10, 99), rint_(10, 99));
    }
}

static void gen_ssn(char *out) {
    int area;
    do area = rint_(1, 899); while (area == 666);
    sprintf(out, "%03d-%02d-%04d", area, rint_(1, 99), rint_(1, 9999));
}

static void gen_ipv4(char *out) { sprintf(out, "%d.%d.%d.%d", rint_(1, 223), rint_(0, 255), rint_(0, 255), rint_(1, 254)); }

static void gen_ipv6(char *out) {
    int g[8];
    for (int i = 0; i < 8; i++) g[i] = rint_(0, 0xffff);
    g[0] = 0x2001 + rint_(0, 0x200);
    switch (rint_(0, 2)) {
    case 0: sprintf(out, "%x:%x:%x:%x:%x:%x:%x:%x", g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]); break;
    case 1: sprintf(out, "%x:db8::%x:%x", g[0], g[6], g[7]); break;
    default: sprintf(out, "fe80::%x:%x:%x:%x", g[4] | 0x100, g[5], g[6], g[7]);
    }
}

static void gen_aws(char *out) {
    char r[20];
    rand_chars(r, 16, UPPER "234567");
    sprintf(out, "%s%s", rint_(0, 1) ? "AKIA" : "ASIA", r);
}

static void gen_github(char *out) {
    char r[100], r2[100];
    if (rint_(0, 3)) {
        static const char *const p[] = {"ghp_", "gho_", "ghs_", "ghu_", "ghr_"};
        rand_mixed(r, 36, ALNUM);
        sprintf(out, "%s%s", PICK(p), r);
    } else {
        rand_mixed(r, 22, ALNUM);
        rand_mixed(r2, 59, ALNUM);
        sprintf(out, "github_pat_%s_%s", r, r2);
    }
}

static void gen_openai(char *out) {
    char r[200];
    if (rint_(0, 1)) { rand_mixed(r, 48, ALNUM); sprintf(out, "sk-%s", r); }
    else { rand_mixed(r, 64, ALNUM "_-"); r[0] = 'A'; sprintf(out, "sk-proj-%s", r); }
}

static void b64url(const char *s, char *out) { em_base64url_encode((const uint8_t *)s, strlen(s), out); }

static void gen_jwt(char *out) {
    char h[128], p[256], hb[200], pb[400], sig[64];
    sprintf(h, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", rint_(0, 1) ? "HS256" : "RS256");
    sprintf(p, "{\"sub\":\"%d\",\"name\":\"User %d\",\"iat\":%d}", rint_(1000, 99999), rint_(1, 99), 1700000000 + rint_(0, 9999999));
    b64url(h, hb);
    b64url(p, pb);
    rand_chars(sig, 43, ALNUM "-_");
    sprintf(out, "%s.%s.%s", hb, pb, sig);
}

static void gen_pem(char *out) {
    static const char *const kind[] = {"RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "};
    const char *k = PICK(kind);
    int o = sprintf(out, "-----BEGIN %sPRIVATE KEY-----\n", k);
    int lines = rint_(2, 5);
    for (int i = 0; i < lines; i++) {
        char l[80];
        rand_chars(l, i == lines - 1 ? rint_(8, 60) : 64, ALNUM "+/");
        o += sprintf(out + o, "%s\n", l);
    }
    sprintf(out + o, "-----END %sPRIVATE KEY-----", k);
}

typedef void (*gen_fn)(char *);
static void gen_card_ok(char *o) { gen_card(o, false); }
static void gen_iban_ok(char *o) { gen_iban(o, false); }
static const struct { em_pii_type type; gen_fn fn; } gens[] = {
    {EM_PII_EMAIL, gen_email}, {EM_PII_PHONE, gen_phone}, {EM_PII_CARD, gen_card_ok}, {EM_PII_SSN, gen_ssn},
    {EM_PII_IBAN, gen_iban_ok}, {EM_PII_IPV4, gen_ipv4}, {EM_PII_IPV6, gen_ipv6}, {EM_PII_AWS_KEY, gen_aws},
    {EM_PII_GITHUB_TOKEN, gen_github}, {EM_PII_OPENAI_KEY, gen_openai}, {EM_PII_JWT, gen_jwt},
    {EM_PII_PRIVATE_KEY, gen_pem},
};
#define N_GENS (sizeof gens / sizeof gens[0])

/* Near misses: things that look like the detectors' targets but are not. */
static void gen_negative(char *out) {
    char t[128];
    switch (rint_(0, 17)) {
    case 0: gen_card(out, true); break;                                           /* invalid Luhn */
    case 1: gen_iban(out, true); break;                                           /* bad IBAN checksum */
    case 2: sprintf(out, "v%d.%d.%d.%d", rint_(0, 9), rint_(0, 20), rint_(0, 99), rint_(0, 999)); break;
    case 3: sprintf(out, "version %d.%d.%d.%d", rint_(1, 9), rint_(0, 20), rint_(0, 99), rint_(0, 255)); break;
    case 4: sprintf(out, "%d.%d.%d", rint_(0, 20), rint_(0, 30), rint_(0, 99)); break; /* semver */
    case 5: sprintf(out, "%04d-%02d-%02d", rint_(1990, 2030), rint_(1, 12), rint_(1, 28)); break;
    case 6: sprintf(out, "%02d/%02d/%04d", rint_(1, 12), rint_(1, 28), rint_(1990, 2030)); break;
    case 7: sprintf(out, "%02d.%02d.%04d", rint_(1, 28), rint_(1, 12), rint_(1990, 2030)); break;
    case 8: { /* UUID */
        char a[9], b[5], c[5], d[5], e[13];
        rand_chars(a, 8, "0123456789abcdef"); rand_chars(b, 4, "0123456789abcdef"); rand_chars(c, 3, "0123456789abcdef");
        rand_chars(d, 4, "0123456789abcdef"); rand_chars(e, 12, "0123456789abcdef");
        sprintf(out, "%s-%s-4%s-%s-%s", a, b, c, d, e);
        break;
    }
    case 9: rand_chars(t, rint_(0, 1) ? 40 : 64, "0123456789abcdef"); strcpy(out, t); break; /* SHA-1 / SHA-256 */
    case 10: sprintf(out, "%d.%d.%d.%d-beta", rint_(1, 9), rint_(0, 9), rint_(0, 9), rint_(0, 9)); break;
    case 11: sprintf(out, "%d.%d.%d.%d", rint_(256, 999), rint_(0, 255), rint_(0, 255), rint_(0, 255)); break;
    case 12: sprintf(out, "%02d:%02d:%02d", rint_(0, 23), rint_(0, 59), rint_(0, 59)); break;
    case 13: sprintf(out, "%s-%02d-%04d", rint_(0, 1) ? "000" : "666", rint_(1, 99), rint_(1, 9999)); break; /* bad SSN */
    case 14: { static const char *const w[] = {"sk-learn", "sk-test-key", "task-manager", "AKIA1234", "ghp_short",
                                               "user@localhost", "icon@2x.png", "logo@3x.jpg", "@username",
                                               "a.b.c.d", "1,234,567", "#12345678", "ISBN 978-3-16-148410-0",
                                               "00:1a:2b:3c:4d:5e", "555-0199", "v2.0.0-rc.1", "eyJhbGciOi",
                                               "-----BEGIN CERTIFICATE-----", "std::vector<int>", "12:30",
                                               "Python 3.11.4", "node v18.17.1", "chmod 0755", "+/- 5%",
                                               "call 911", "1-2-3-4", "ab:cd", "dead:beef", "route 66",
                                               "2001 A Space Odyssey", "e-mail me", "user at example dot com"};
               strcpy(out, PICK(w)); break; }
    case 15: sprintf(out, "%d", rint_(10000, 99999999)); break;
    case 16: sprintf(out, "order %d-%d", rint_(100, 999), rint_(1000000, 9999999)); break;
    default: sprintf(out, "%d.%02d", rint_(0, 99999), rint_(0, 99)); break;
    }
}

static const char *const ctx_before[] = {"", "Contact: ", "my number is ", "see ", "value=", "(", "\"", "<", "Ref: ",
                                         "Bitte an ", "- ", "key: ", "token ", "IP ", "at ", "{\"v\":\"", "**", "`",
                                         "'", "[", "to:", "mailto:", "| ", "\t", "=> "};
static const char *const ctx_after[] = {"", ".", ",", ")", "\"", ">", " please", "; thanks", "!", " and more text",
                                        "\n", " (old)", " ok", "\"}", "**", "`", "'", "]", ":", "?", " |", "\t",
                                        "...", ";"};
static const char *const filler[] = {"Hello there.", "The meeting is on Monday.", "Please review the attached file.",
                                     "Status: all systems nominal.", "Gruesse aus Berlin", "ok", "FYI", "see below:",
                                     "Ticket 4521 was closed", "cafe deadbeef", "Price: 12.50 EUR"};

typedef struct gold { em_pii_type type; size_t start, end; } gold;
typedef struct line { char text[1024]; size_t len; gold g[4]; int ng; } line;

static void add_piece(line *L, const char *s) {
    size_t n = strlen(s);
    if (L->len + n >= sizeof L->text) return;
    memcpy(L->text + L->len, s, n);
    L->len += n;
    L->text[L->len] = 0;
}

/* Pieces whose last character could glue onto the next one are kept
 * apart with a space. */
static void sep(line *L) {
    if (L->len && L->text[L->len - 1] != ' ' && L->text[L->len - 1] != '\n') add_piece(L, " ");
}

static void add_positive(line *L, int gi) {
    char v[2048];
    gens[gi].fn(v);
    sep(L);
    add_piece(L, PICK(ctx_before));
    size_t s = L->len;
    add_piece(L, v);
    if (L->len - s == strlen(v)) L->g[L->ng++] = (gold){gens[gi].type, s, L->len};
    add_piece(L, PICK(ctx_after));
}

static void add_negative(line *L) {
    char v[256];
    gen_negative(v);
    sep(L);
    add_piece(L, PICK(ctx_before));
    add_piece(L, v);
    add_piece(L, PICK(ctx_after));
}

#define N_LINES 420

static line *make_lines(void) {
    line *lines = calloc(N_LINES, sizeof *lines);
    rng_state = 0x5eed5eed12345ull;
    for (int i = 0; i < N_LINES; i++) {
        line *L = &lines[i];
        if (rint_(0, 2) == 0) add_piece(L, PICK(filler));
        if (i < 300) {
            add_positive(L, i % (int)N_GENS); /* every type, 25 times */
            if (rint_(0, 2) == 0) add_negative(L);
            if (rint_(0, 3) == 0) add_positive(L, rint_(0, (int)N_GENS - 1));
        } else {
            add_negative(L); /* negative-only lines */
            if (rint_(0, 1)) add_negative(L);
        }
        if (rint_(0, 2) == 0) { sep(L); add_piece(L, PICK(filler)); }
    }
    return lines;
}

/* ---- tests -------------------------------------------------------------- */

static em_redactor *R;

static int setup(void **state) {
    (void)state;
    em_err err;
    R = em_redactor_new(0, &err);
    if (!R) fprintf(stderr, "%s\n", err.msg);
    return R ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    em_redactor_free(R);
    return 0;
}

static void test_validators(void **state) {
    (void)state;
    assert_true(em_luhn_ok("4111111111111111", 16));
    assert_false(em_luhn_ok("4111111111111112", 16));
    assert_true(em_iban_ok("DE89370400440532013000", 22));
    assert_true(em_iban_ok("DE89 3704 0044 0532 0130 00", 27));
    assert_false(em_iban_ok("DE89 3704 0044 0532 0130 01", 27));
    assert_false(em_iban_ok("DE8937 0400440532013000", 23)); /* bad grouping */
    assert_true(em_iban_ok("GB82WEST12345698765432", 22));
    unsigned mask;
    em_err err;
    assert_int_equal(em_pii_parse_types("email,credit_card", &mask, &err), 0);
    assert_int_equal(mask, (1u << EM_PII_EMAIL) | (1u << EM_PII_CARD));
    assert_int_equal(em_pii_parse_types("all", &mask, &err), 0);
    assert_int_equal(mask, EM_PII_ALL);
    assert_int_equal(em_pii_parse_types("email,bogus", &mask, &err), -1);
    assert_non_null(strstr(err.msg, "bogus"));
    unsigned where;
    assert_int_equal(em_redact_parse_where("prompts,logs", &where, &err), 0);
    assert_int_equal(where, EM_REDACT_PROMPTS | EM_REDACT_LOGS);
    assert_int_equal(em_redact_parse_where("all", &where, &err), 0);
    assert_int_equal(where, EM_REDACT_EVERYWHERE);
    assert_int_equal(em_redact_parse_where("none", &where, &err), 0);
    assert_int_equal(where, 0);
    assert_int_equal(em_redact_parse_where("prompt", &where, &err), -1);
}

static void test_examples(void **state) {
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"mail john.doe@example.com now", "mail [REDACTED:EMAIL] now"},
        {"card 4111 1111 1111 1111.", "card [REDACTED:CREDIT_CARD]."},
        {"not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"},
        {"ssn 078-05-1120 vs 000-12-3456", "ssn [REDACTED:SSN] vs 000-12-3456"},
        {"IBAN BE68 5390 0754 7034 DATA", "IBAN [REDACTED:IBAN] DATA"},
        {"host 10.0.0.1:8080 v1.2.3.4 version 1.2.3.4", "host [REDACTED:IPV4]:8080 v1.2.3.4 version 1.2.3.4"},
        {"[2001:db8::1]:443 and std::vector", "[[REDACTED:IPV6]]:443 and std::vector"},
        {"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY done",
         "AWS_SECRET_ACCESS_KEY=[REDACTED:AWS_KEY] done"},
        {"icon@2x.png", "icon@2x.png"},
        {"call (415) 555-2671 or +44 20 7946 0958", "call [REDACTED:PHONE] or [REDACTED:PHONE]"},
        {"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\nbye", "[REDACTED:PRIVATE_KEY]\nbye"},
        {"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAK (cut off)", "[REDACTED:PRIVATE_KEY](cut off)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = em_redact_string(R, cases[i].in, strlen(cases[i].in), NULL, NULL);
        assert_non_null(o);
        if (strcmp(o, cases[i].out)) fail_msg("redact(\"%s\")\n  got  \"%s\"\n  want \"%s\"", cases[i].in, o, cases[i].out);
        free(o);
    }
    /* type filter */
    em_err err;
    em_redactor *only = em_redactor_new(1u << EM_PII_EMAIL, &err);
    assert_non_null(only);
    char *o = em_redact_string(only, "a@b.org 4111111111111111", 24, NULL, NULL);
    assert_string_equal(o, "[REDACTED:EMAIL] 4111111111111111");
    free(o);
    em_redactor_free(only);
}

static void test_precision_recall(void **state) {
    (void)state;
    line *lines = make_lines();
    size_t tp = 0, fp = 0, fn = 0, gold_n = 0, per_type[EM_PII_COUNT] = {0};
    for (int i = 0; i < N_LINES; i++) {
        em_span *sp;
        size_t n;
        em_err err;
        assert_int_equal(em_redact_scan(R, lines[i].text, lines[i].len, &sp, &n, &err), 0);
        gold_n += (size_t)lines[i].ng;
        bool used[4] = {false};
        for (size_t k = 0; k < n; k++) {
            bool ok = false;
            for (int g = 0; g < lines[i].ng; g++)
                if (!used[g] && lines[i].g[g].type == sp[k].type && lines[i].g[g].start == sp[k].start &&
                    lines[i].g[g].end == sp[k].end) {
                    used[g] = ok = true;
                    per_type[sp[k].type]++;
                }
            if (ok) tp++;
            else {
                fp++;
                fprintf(stderr, "  false positive %s [%zu,%zu) in: %s\n", em_pii_name(sp[k].type), sp[k].start,
                        sp[k].end, lines[i].text);
            }
        }
        for (int g = 0; g < lines[i].ng; g++)
            if (!used[g]) {
                fn++;
                fprintf(stderr, "  missed %s [%zu,%zu) in: %s\n", em_pii_name(lines[i].g[g].type), lines[i].g[g].start,
                        lines[i].g[g].end, lines[i].text);
            }
        free(sp);
    }
    double p = tp + fp ? (double)tp / (double)(tp + fp) : 0, r = gold_n ? (double)tp / (double)gold_n : 0;
    printf("redaction: %d lines, %zu labelled spans, tp %zu fp %zu fn %zu, precision %.4f recall %.4f\n", N_LINES,
           gold_n, tp, fp, fn, p, r);
    for (int t = 0; t < EM_PII_COUNT; t++) assert_true(per_type[t] >= 20); /* every detector is exercised */
    assert_true(gold_n >= 300);
    assert_true(p >= 0.98);
    assert_true(r >= 0.98);
    free(lines);
}

/* Every split point, and byte-at-a-time: the stream's output equals the
 * one-shot output, and what has been emitted is always a prefix of it. */
static void test_stream_splits(void **state) {
    (void)state;
    line *lines = make_lines();
    em_redact_stream *s = em_redact_stream_new(R);
    assert_non_null(s);
    char *got = malloc(65536);
    size_t checks = 0;
    for (int i = 0; i < N_LINES; i++) {
        const char *t = lines[i].text;
        size_t len = lines[i].len, want_n;
        char *want = em_redact_string(R, t, len, &want_n, NULL);
        assert_non_null(want);
        for (size_t k = 0; k <= len + 1; k++) {
            size_t gn = 0, n;
            const char *o;
            if (k <= len) {
                o = em_redact_stream_feed(s, t, k, &n);
                memcpy(got + gn, o, n), gn += n;
                assert_memory_equal(got, want, gn);
                o = em_redact_stream_feed(s, t + k, len - k, &n);
            } else { /* k == len + 1: one byte at a time */
                o = NULL;
                n = 0;
                for (size_t b = 0; b < len; b++) {
                    o = em_redact_stream_feed(s, t + b, 1, &n);
                    memcpy(got + gn, o, n), gn += n;
                    assert_true(gn <= want_n);
                    assert_memory_equal(got, want, gn);
                }
                n = 0;
            }
            if (n) memcpy(got + gn, o, n), gn += n;
            o = em_redact_stream_finish(s, &n);
            memcpy(got + gn, o, n), gn += n;
            if (gn != want_n || memcmp(got, want, gn))
                fail_msg("split at %zu of \"%s\":\n  got  \"%.*s\"\n  want \"%s\"", k, t, (int)gn, got, want);
            checks++;
        }
        free(want);
    }
    printf("streaming: %zu split runs identical to the one-shot output\n", checks);
    free(got);
    em_redact_stream_free(s);
    free(lines);
}

static void test_stream_holdback(void **state) {
    (void)state;
    em_redact_stream *s = em_redact_stream_new(R);
    size_t n;
    const char *o = em_redact_stream_feed(s, "Plain words only. ", 18, &n);
    assert_int_equal(n, 18); /* nothing can start a match: nothing held */
    assert_int_equal(em_redact_stream_held(s), 0);
    o = em_redact_stream_feed(s, "Call +1 415 555", 15, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(o, "Call ", 5);
    assert_int_equal(em_redact_stream_held(s), 10); /* "+1 415 555" could become a phone number */
    o = em_redact_stream_feed(s, " 2671 now", 9, &n);
    assert_int_equal(n, 17);
    assert_memory_equal(o, "[REDACTED:PHONE] ", 17);
    assert_int_equal(em_redact_stream_held(s), 3); /* "now" could still become now@example.com */
    o = em_redact_stream_feed(s, "; key sk-abc", 12, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(o, "now; key ", 9); /* the key prefix is held back */
    o = em_redact_stream_finish(s, &n);
    assert_memory_equal(o, "sk-abc", 6); /* too short to be a key */
    unsigned types;
    assert_int_equal(em_redact_stream_count(s, &types), 1);
    assert_int_equal(types, 1u << EM_PII_PHONE);
    em_redact_stream_free(s);
}

/* One redactor shared by four threads gives the single-threaded results. */
typedef struct rjob {
    const line *lines;
    char **out;
} rjob;

static void *redact_worker(void *p) {
    rjob *j = p;
    for (int i = 0; i < N_LINES; i++) j->out[i] = em_redact_string(R, j->lines[i].text, j->lines[i].len, NULL, NULL);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    line *lines = make_lines();
    pthread_t th[4];
    rjob jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (rjob){lines, calloc(N_LINES, sizeof(char *))};
        pthread_create(&th[t], NULL, redact_worker, &jobs[t]);
    }
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int i = 0; i < N_LINES; i++) {
        char *want = em_redact_string(R, lines[i].text, lines[i].len, NULL, NULL);
        for (int t = 0; t < 4; t++) {
            assert_string_equal(jobs[t].out[i], want);
            free(jobs[t].out[i]);
        }
        free(want);
    }
    for (int t = 0; t < 4; t++) free(jobs[t].out);
    free(lines);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validators),      cmocka_unit_test(test_examples),
        cmocka_unit_test(test_precision_recall), cmocka_unit_test(test_stream_splits),
        cmocka_unit_test(test_stream_holdback), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
