/* answer.h - final-answer extraction and voting over reasoning branches
 * (self-consistency). Pure functions over text; thread safe. */
#ifndef EM_ANSWER_H
#define EM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#define EM_ANSWER_MAX 256

typedef enum {
    EM_ANS_NONE = 0,     /* nothing usable (empty text) */
    EM_ANS_MARKER = 1,   /* an explicit "Final answer:" / "Answer:" / "The answer is" */
    EM_ANS_BOXED = 2,    /* \boxed{...} */
    EM_ANS_NUMBER = 3,   /* the last number in the text */
    EM_ANS_LASTLINE = 4, /* the last non-empty line */
} em_answer_kind;

typedef struct em_answer {
    em_answer_kind kind;
    char text[EM_ANSWER_MAX]; /* normalized: numbers canonical ("1234.5", "-3", "3/4"), text lowercased,
                                 whitespace collapsed, surrounding punctuation stripped */
} em_answer;

/* Extracts and normalizes the final answer of one branch. Never fails;
 * kind EM_ANS_NONE when nothing is found. */
void em_answer_extract(const char *text, size_t len, em_answer *out);

/* Normalizes an answer string in place-style: numbers to canonical form
 * (commas, currency signs, trailing units and zeros removed), otherwise
 * lowercase with collapsed whitespace and trimmed punctuation. */
void em_answer_normalize(const char *in, size_t len, char out[EM_ANSWER_MAX]);

typedef struct em_vote {
    int winner;        /* index of a branch holding the winning answer, -1 if no branch has one */
    int votes;         /* branches agreeing with the winner */
    int voters;        /* branches that had an answer */
    double agreement;  /* votes / n (all branches) */
} em_vote;

/* Majority vote over n answers; ties between answers broken by the higher
 * mean of their branches' mean token log-probabilities, then by the answer
 * seen first. */
em_vote em_answer_vote(const em_answer *answers, const double *mean_logprob, int n);

/* Whether the current leader can still be overtaken when `running` more
 * branches may each add one vote to any answer. */
bool em_answer_decided(const em_answer *answers, const bool *done, int n);

#endif
