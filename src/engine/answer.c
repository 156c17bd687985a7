/* answer.c - answer extraction for contemplation: look for an explicit
 * marker, then a boxed expression, then the last number, then the last line,
 * and normalize so that "1,234", "$1234.00" and "1234 apples" vote alike. */
#include "answer.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Case-insensitive search for needle in [s, s+len); returns the LAST match. */
static const char *last_ci(const char *s, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n == 0 || n > len) return NULL;
    for (size_t i = len - n + 1; i-- > 0;)
        if (strncasecmp(s + i, needle, n) == 0) return s + i;
    return NULL;
}

/* Parses a number starting at p (optional sign, currency sign, digits with
 * thousands commas, decimals, or a fraction a/b). Writes the canonical form
 * to out and returns the bytes consumed, or 0 if p does not start one. */
static size_t parse_number(const char *p, const char *end, char *out, size_t cap) {
    const char *q = p;
    bool neg = false;
    if (q < end && (*q == '-' || *q == '+' || (unsigned char)*q == 0xe2)) {
        if (*q == '-') { neg = true; q++; }
        else if (*q == '+') q++;
        else if (end - q >= 3 && (unsigned char)q[1] == 0x88 && (unsigned char)q[2] == 0x92) { neg = true; q += 3; } /* U+2212 */
    }
    if (q < end && *q == '$') q++;
    if (q >= end || !isdigit((unsigned char)*q)) {
        if (q < end && *q == '.' && q + 1 < end && isdigit((unsigned char)q[1])) { /* ".5" */ }
        else return 0;
    }
    char digits[128];
    size_t nd = 0;
    /* integer part with optional thousands separators (groups of 3) */
    while (q < end && nd < sizeof digits - 2) {
        if (isdigit((unsigned char)*q)) digits[nd++] = *q++;
        else if (*q == ',' && q + 3 < end + 0 && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[2]) &&
                 isdigit((unsigned char)q[3]) && (q + 4 >= end || !isdigit((unsigned char)q[4])))
            q++;
        else if (*q == ',' && q + 3 == end && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[2]))
            break;
        else break;
    }
    char frac[64];
    size_t nf = 0;
    if (q + 1 < end && *q == '.' && isdigit((unsigned char)q[1])) {
        q++;
        while (q < end && isdigit((unsigned char)*q) && nf < sizeof frac - 1) frac[nf++] = *q++;
        while (q < end && isdigit((unsigned char)*q)) q++;
    }
    while (nf > 0 && frac[nf - 1] == '0') nf--; /* 2.50 -> 2.5, 3.0 -> 3 */
    /* strip leading zeros of the integer part */
    size_t lead = 0;
    while (lead + 1 < nd && digits[lead] == '0') lead++;
    char buf[200];
    size_t n = 0;
    bool zero = true;
    for (size_t i = lead; i < nd; i++) zero &= digits[i] == '0';
    for (size_t i = 0; i < nf; i++) zero &= frac[i] == '0';
    if (neg && !zero) buf[n++] = '-';
    if (nd == lead && nd == 0) buf[n++] = '0';
    for (size_t i = lead; i < nd; i++) buf[n++] = digits[i];
    if (nf) {
        buf[n++] = '.';
        memcpy(buf + n, frac, nf);
        n += nf;
    }
    /* a fraction a/b */
    if (nf == 0 && q + 1 < end && *q == '/' && isdigit((unsigned char)q[1])) {
        buf[n++] = '/';
        q++;
        while (q < end && isdigit((unsigned char)*q) && n < sizeof buf - 1) buf[n++] = *q++;
    }
    buf[n] = 0;
    snprintf(out, cap, "%s", buf);
    return (size_t)(q - p);
}

/* True if p..end is "number [unit words]" with nothing else but punctuation. */
static bool numeric_answer(const char *p, const char *end, char *out, size_t cap) {
    while (p < end && (is_space(*p) || *p == '*' || *p == '(' || *p == '=' || *p == ':')) p++;
    size_t used = parse_number(p, end, out, cap);
    if (!used) return false;
    const char *q = p + used;
    /* allow %, units (words), trailing punctuation */
    while (q < end && (is_space(*q) || *q == '%' || *q == '.' || *q == '!' || *q == ')' || *q == '*')) q++;
    int words = 0;
    while (q < end) {
        if (isalpha((unsigned char)*q)) {
            words++;
            while (q < end && (isalpha((unsigned char)*q) || *q == '\'')) q++;
        } else if (is_space(*q) || *q == '.' || *q == ',' || *q == '!' || *q == ')') {
            q++;
        } else {
            return false;
        }
    }
    return words <= 3;
}

void em_answer_normalize(const char *in, size_t len, char out[EM_ANSWER_MAX]) {
    const char *end = in + len;
    if (numeric_answer(in, end, out, EM_ANSWER_MAX)) return;
    /* text: lowercase, collapse whitespace, trim punctuation at both ends */
    size_t n = 0;
    bool space = false;
    for (const char *p = in; p < end && n < EM_ANSWER_MAX - 1; p++) {
        char c = *p;
        if (is_space(c)) { space = n > 0; continue; }
        if (space && n < EM_ANSWER_MAX - 1) out[n++] = ' ';
        space = false;
        out[n++] = (char)tolower((unsigned char)c);
    }
    out[n] = 0;
    size_t s = 0;
    while (out[s] && strchr(".,;:!?\"'`*()[]<> ", out[s])) s++;
    while (n > s && strchr(".,;:!?\"'`*()[]<> ", out[n - 1])) n--;
    memmove(out, out + s, n - s);
    out[n - s] = 0;
}

/* End of the line containing p. */
static const char *line_end(const char *p, const char *end) {
    while (p < end && *p != '\n') p++;
    return p;
}

static const char *const markers[] = {"final answer:", "final answer is", "final answer", "the answer is",
                                      "answer:", "answer is"};

void em_answer_extract(const char *text, size_t len, em_answer *out) {
    memset(out, 0, sizeof *out);
    const char *end = text + len;
    /* 1. explicit marker: the last one in the text wins; prefer the longer
     * phrase when several end at the same place */
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        const char *m = last_ci(text, len, markers[i]);
        if (m && (!best || m > best)) { best = m; best_len = strlen(markers[i]); }
    }
    if (best) {
        const char *a = best + best_len, *e = line_end(a, end);
        while (a < e && (is_space(*a) || *a == ':' || *a == '*' || *a == '#')) a++;
        if (a == e && e < end) { /* "Answer:\n42" */
            a = e + 1;
            while (a < end && is_space(*a)) a++;
            e = line_end(a, end);
        }
        /* a boxed answer inside the marker line wins over the line itself */
        const char *bx = last_ci(a, (size_t)(e - a), "\\boxed{");
        if (!bx && a < e) {
            em_answer_normalize(a, (size_t)(e - a), out->text);
            if (out->text[0]) { out->kind = EM_ANS_MARKER; return; }
        }
    }
    /* 2. \boxed{...} with balanced braces */
    const char *bx = last_ci(text, len, "\\boxed{");
    if (bx) {
        const char *a = bx + 7, *p = a;
        int depth = 1;
        while (p < end && depth > 0) {
            if (*p == '{') depth++;
            else if (*p == '}') depth--;
            if (depth > 0) p++;
        }
        if (depth == 0) {
            em_answer_normalize(a, (size_t)(p - a), out->text);
            if (out->text[0]) { out->kind = EM_ANS_BOXED; return; }
        }
    }
    /* 3. the last number (not part of a word like "v2" or "x86") */
    for (const char *p = end; p-- > text;) {
        if (!isdigit((unsigned char)*p)) continue;
        const char *s = p;
        while (s > text && (isdigit((unsigned char)s[-1]) || s[-1] == ',' || s[-1] == '.' || s[-1] == '/')) s--;
        while (s < p && !isdigit((unsigned char)*s)) s++;
        if (s > text && (s[-1] == '-' || s[-1] == '$')) s--;
        if (s > text && s[0] == '$' && s - 1 >= text && s[-1] == '-') s--;
        if (s > text && isalpha((unsigned char)s[-1])) { p = s; continue; }
        char num[EM_ANSWER_MAX];
        if (parse_number(s, end, num, sizeof num)) {
            snprintf(out->text, sizeof out->text, "%s", num);
            out->kind = EM_ANS_NUMBER;
            return;
        }
        p = s;
    }
    /* 4. the last non-empty line */
    const char *e = end;
    while (e > text) {
        while (e > text && is_space(e[-1])) e--;
        const char *s = e;
        while (s > text && s[-1] != '\n') s--;
        if (s < e) {
            em_answer_normalize(s, (size_t)(e - s), out->text);
            if (out->text[0]) { out->kind = EM_ANS_LASTLINE; return; }
        }
        e = s;
    }
    out->kind = EM_ANS_NONE;
}

em_vote em_answer_vote(const em_answer *answers, const double *mean_logprob, int n) {
    em_vote v = {-1, 0, 0, 0.0};
    double best_lp = 0;
    int best_first = 0;
    for (int i = 0; i < n; i++) {
        if (answers[i].kind == EM_ANS_NONE) continue;
        v.voters++;
        /* count this answer once, at its first occurrence */
        bool seen = false;
        for (int j = 0; j < i; j++)
            if (answers[j].kind != EM_ANS_NONE && !strcmp(answers[j].text, answers[i].text)) seen = true;
        if (seen) continue;
        int votes = 0;
        double lp = 0;
        for (int j = i; j < n; j++)
            if (answers[j].kind != EM_ANS_NONE && !strcmp(answers[j].text, answers[i].text)) {
                votes++;
                lp += mean_logprob ? mean_logprob[j] : 0.0;
            }
        lp /= votes;
        if (v.winner < 0 || votes > v.votes || (votes == v.votes && lp > best_lp)) {
            v.winner = i;
            v.votes = votes;
            best_lp = lp;
            best_first = i;
        }
    }
    (void)best_first;
    v.agreement = n > 0 ? (double)v.votes / n : 0.0;
    return v;
}

bool em_answer_decided(const em_answer *answers, const bool *done, int n) {
    int running = 0;
    for (int i = 0; i < n; i++) running += !done[i];
    if (running == 0) return true;
    /* votes of finished branches per answer */
    int lead = 0, second = 0;
    for (int i = 0; i < n; i++) {
        if (!done[i] || answers[i].kind == EM_ANS_NONE) continue;
        bool seen = false;
        for (int j = 0; j < i; j++)
            if (done[j] && answers[j].kind != EM_ANS_NONE && !strcmp(answers[j].text, answers[i].text)) seen = true;
        if (seen) continue;
        int c = 0;
        for (int j = i; j < n; j++)
            if (done[j] && answers[j].kind != EM_ANS_NONE && !strcmp(answers[j].text, answers[i].text)) c++;
        if (c > lead) { second = lead; lead = c; }
        else if (c > second) second = c;
    }
    /* the runner-up (or an answer not seen yet) could gain every running vote */
    return lead > second + running;
}
