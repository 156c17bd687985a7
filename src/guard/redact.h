/* redact.h - detection and redaction of personal data and secrets: e-mail
 * addresses, phone numbers, payment cards (Luhn and issuer prefix), US SSNs,
 * IBANs (mod-97), IPv4/IPv6 addresses, AWS access keys, GitHub tokens,
 * OpenAI-style keys (sk-...), JWTs and PEM private-key blocks.
 *
 * Each detector is a PCRE2 pattern whose candidates are checked by a
 * validator inside the match (a callout), so an invalid candidate makes the
 * pattern backtrack instead of hiding a valid shorter one. Text is scanned
 * left to right; at each position the detectors are tried in a fixed
 * priority order and the first valid match is taken, then scanning resumes
 * after it. Spans are byte offsets; text is treated as bytes (any encoding
 * passes through unchanged).
 *
 * Streaming: em_redact_stream_feed emits every byte that can no longer be
 * part of a match and holds back only from the earliest position where a
 * detector has a partial match (PCRE2_PARTIAL_HARD). The output of a stream
 * is byte-identical to em_redact_string of the concatenated input, however
 * the input is split, and a secret is never emitted in part.
 *
 * Thread-safety: an em_redactor is immutable after em_redactor_new and may
 * be shared by all threads; an em_redact_stream belongs to one thread at a
 * time. */
#ifndef EM_GUARD_REDACT_H
#define EM_GUARD_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

typedef enum {
    EM_PII_PRIVATE_KEY = 0,
    EM_PII_JWT,
    EM_PII_GITHUB_TOKEN,
    EM_PII_OPENAI_KEY,
    EM_PII_AWS_KEY,
    EM_PII_IBAN,
    EM_PII_EMAIL,
    EM_PII_IPV6,
    EM_PII_CARD,
    EM_PII_SSN,
    EM_PII_PHONE,
    EM_PII_IPV4,
    EM_PII_COUNT
} em_pii_type;

#define EM_PII_ALL ((1u << EM_PII_COUNT) - 1)

/* "PRIVATE_KEY", "JWT", "GITHUB_TOKEN", "OPENAI_KEY", "AWS_KEY", "IBAN",
 * "EMAIL", "IPV6", "CREDIT_CARD", "SSN", "PHONE", "IPV4". */
const char *em_pii_name(em_pii_type t);
/* Parses "all" or a comma-separated list of names (any case) into a mask. */
int em_pii_parse_types(const char *list, unsigned *mask, em_err *err);

/* Where a server applies redaction (a per-key or server-wide policy). */
enum { EM_REDACT_PROMPTS = 1, EM_REDACT_COMPLETIONS = 2, EM_REDACT_LOGS = 4, EM_REDACT_EVERYWHERE = 7 };
/* Parses "none", "all" or a comma-separated list of prompts, completions,
 * logs into a mask of EM_REDACT_*. */
int em_redact_parse_where(const char *list, unsigned *where, em_err *err);

typedef struct em_span {
    em_pii_type type;
    size_t start, end; /* bytes [start, end) */
} em_span;

typedef struct em_redactor em_redactor;

/* types: mask of (1u << em_pii_type); 0 means all. */
em_redactor *em_redactor_new(unsigned types, em_err *err);
void em_redactor_free(em_redactor *r);

/* All spans in text, in order, non-overlapping. *spans is the caller's to
 * free() (NULL when none). Returns 0 or -1 (out of memory). */
int em_redact_scan(const em_redactor *r, const char *text, size_t len, em_span **spans, size_t *n, em_err *err);

/* text with every span replaced by "[REDACTED:TYPE]"; NUL-terminated,
 * caller frees. out_len and n_spans may be NULL. NULL: out of memory. */
char *em_redact_string(const em_redactor *r, const char *text, size_t len, size_t *out_len, size_t *n_spans);

typedef struct em_redact_stream em_redact_stream;

em_redact_stream *em_redact_stream_new(const em_redactor *r);
void em_redact_stream_free(em_redact_stream *s);
/* Adds a chunk and returns the text that is now final (*n bytes, possibly
 * 0). The pointer is owned by the stream and valid until the next call.
 * NULL: out of memory. */
const char *em_redact_stream_feed(em_redact_stream *s, const char *chunk, size_t len, size_t *n);
/* Ends the input and returns the rest; the stream may be reused after. */
const char *em_redact_stream_finish(em_redact_stream *s, size_t *n);
/* Bytes held back right now. */
size_t em_redact_stream_held(const em_redact_stream *s);
/* Redactions made so far and which types (mask). */
size_t em_redact_stream_count(const em_redact_stream *s, unsigned *types);

/* Validators, exposed for tests. */
bool em_luhn_ok(const char *digits, size_t n);
bool em_iban_ok(const char *s, size_t n); /* compact or grouped by 4 with single spaces */

#endif
