/* injection.h - prompt-injection guard: scores a text for instruction
 * override, role-play jailbreaks, system-prompt extraction, delimiter
 * attacks (fake role tags and special tokens), encoded or obfuscated
 * payloads (base64 / hex / char-code blobs, zero-width and tag characters,
 * homoglyphs, leetspeak, ROT13) and code-execution payloads, separately
 * for user messages and for untrusted content (tool results, retrieved
 * documents).
 *
 * The built-in scorer is a table of transparent weighted rules (see
 * injection.c). Each rule has an id ("override.ignore_prior"), a category
 * (the reason code: "instruction_override", ...) and a weight per source.
 * Rules run on normalized views of the text: homoglyphs and styled letters
 * folded to ASCII, case folded, invisible characters removed, leetspeak
 * undone, and a ROT13 view; decoded blobs are scanned again. The score of
 * the rules is 1 - prod(1 - w) over the rules that fired.
 *
 * More scorers (say, a small classifier) can be added with
 * em_inj_guard_add_scorer; the final score is 1 - prod(1 - weight_s * p_s)
 * over all scorers.
 *
 * Thread-safety: a guard is immutable after set-up (new, add_scorer,
 * set_policy) and em_inj_scan may then run on any number of threads. */
#ifndef EM_GUARD_INJECTION_H
#define EM_GUARD_INJECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

typedef enum {
    EM_INJ_USER = 0,      /* a user message */
    EM_INJ_UNTRUSTED = 1, /* tool results, retrieved documents, role: tool messages */
} em_inj_source;

typedef enum {
    EM_GUARD_ALLOW = 0,
    EM_GUARD_FLAG,     /* serve, add a header and an audit record */
    EM_GUARD_SANITIZE, /* strip invisible characters; wrap untrusted content in datamarked delimiters */
    EM_GUARD_BLOCK,    /* refuse (400 with the reason code) */
} em_guard_action;

const char *em_guard_action_name(em_guard_action a); /* "allow", "flag", "sanitize", "block" */
const char *em_inj_source_name(em_inj_source s);     /* "user", "untrusted" */
int em_guard_action_parse(const char *s, em_guard_action *a);

#define EM_INJ_MAX_HITS 24

typedef struct em_inj_hit {
    const char *rule;     /* static string, e.g. "override.ignore_prior" */
    const char *category; /* reason code, e.g. "instruction_override" */
    float weight;
} em_inj_hit;

typedef struct em_inj_result {
    float score;              /* 0..1 */
    em_guard_action decision; /* from the policy of the source */
    const char *reason;       /* category of the strongest hit; "none" when nothing fired */
    size_t n_hits;            /* hits beyond EM_INJ_MAX_HITS are counted in the score only */
    em_inj_hit hits[EM_INJ_MAX_HITS];
    size_t n_invisible;       /* invisible / tag / bidi characters found */
    size_t n_mixed_script;    /* words mixing Latin letters with look-alikes */
} em_inj_result;

/* Adds a hit to res (ignored when full; duplicates of a rule are merged). */
void em_inj_add_hit(em_inj_result *res, const char *rule, const char *category, float weight);

typedef struct em_inj_policy {
    float flag_at;             /* score >= flag_at: on_flag */
    float block_at;            /* score >= block_at: on_block */
    em_guard_action on_flag;   /* EM_GUARD_FLAG or EM_GUARD_SANITIZE */
    em_guard_action on_block;  /* EM_GUARD_BLOCK (or FLAG / SANITIZE for a log-only mode) */
} em_inj_policy;

/* Defaults: user 0.5 flag / 0.85 block; untrusted 0.4 sanitize / 0.8 block. */
em_inj_policy em_inj_default_policy(em_inj_source src);

/* A pluggable scorer. score returns a probability in [0, 1] that the text is
 * an injection, or a negative number to abstain; it may add hits (with
 * static strings) to res. It must be thread-safe. */
typedef struct em_inj_scorer {
    const char *name;
    float (*score)(void *ctx, const char *text, size_t len, em_inj_source src, em_inj_result *res);
    void *ctx;
    float weight; /* 0..1 */
} em_inj_scorer;

typedef struct em_inj_guard em_inj_guard;

/* A guard with the built-in rules and the default policies. */
em_inj_guard *em_inj_guard_new(em_err *err);
void em_inj_guard_free(em_inj_guard *g);
/* At most 8 extra scorers; the guard does not own ctx. */
int em_inj_guard_add_scorer(em_inj_guard *g, const em_inj_scorer *s, em_err *err);
void em_inj_guard_set_policy(em_inj_guard *g, em_inj_source src, const em_inj_policy *p);

/* Scores text (UTF-8; invalid bytes are tolerated) and decides per the
 * source's policy. Returns 0, or -1 when out of memory (res then says
 * block with reason "internal_error": fail closed). */
int em_inj_scan(const em_inj_guard *g, const char *text, size_t len, em_inj_source src, em_inj_result *res);

/* Rule ids of a result as "a,b,c" into buf (truncated to cap). */
void em_inj_rules_str(const em_inj_result *res, char *buf, size_t cap);

/* ---- sanitizing --------------------------------------------------------- */

/* text without zero-width, bidi-control and tag characters (and other
 * invisible format characters); NUL-terminated, caller frees. removed may
 * be NULL. NULL: out of memory. */
char *em_inj_strip_invisible(const char *text, size_t len, size_t *out_len, size_t *removed);

/* A fresh random nonce (16 hex digits) for em_inj_wrap_untrusted. */
int em_inj_new_nonce(char nonce[17], em_err *err);

/* Wraps untrusted content for a prompt: invisible characters stripped, any
 * copy of the delimiter inside neutralized, and (datamark) every run of
 * whitespace replaced by " ^ " so the model can tell data from
 * instructions (spotlighting):
 *     <<untrusted nonce=NONCE>>
 *     ...
 *     <</untrusted nonce=NONCE>>
 * nonce: 1-32 of [A-Za-z0-9]. Caller frees; NULL: bad nonce or out of
 * memory. */
char *em_inj_wrap_untrusted(const char *text, size_t len, const char *nonce, bool datamark, size_t *out_len);
/* The sentence for the system prompt that tells the model how to treat
 * wrapped content, for this nonce. Returns the length (like snprintf). */
int em_inj_untrusted_notice(const char *nonce, bool datamark, char *buf, size_t cap);

#endif
