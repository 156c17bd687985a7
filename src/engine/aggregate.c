/* aggregate.c - contemplation steps shared by ember_contemplate and the
 * scheduler (see aggregate.h). */
#include "aggregate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void em_agg_pick(ember_aggregate agg, const em_answer *answers, const double *mean_lp, const int32_t *n_tokens,
                 int n, em_agg *out) {
    out->winner = -1;
    out->agreement = 0.0;
    out->answer[0] = 0;
    if (n <= 0) return;
    if (agg == EMBER_AGG_BEST) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (n_tokens[i] > 0 && (best < 0 || mean_lp[i] > mean_lp[best])) best = i;
        out->winner = best;
        if (best < 0) return;
        int agree = 0;
        for (int i = 0; i < n; i++)
            agree += answers[i].kind != EM_ANS_NONE && !strcmp(answers[i].text, answers[best].text);
        out->agreement = (double)agree / n;
        snprintf(out->answer, sizeof out->answer, "%s", answers[best].kind != EM_ANS_NONE ? answers[best].text : "");
        return;
    }
    em_vote v = em_answer_vote(answers, mean_lp, n);
    out->winner = v.winner;
    out->agreement = v.agreement;
    snprintf(out->answer, sizeof out->answer, "%s", v.winner >= 0 ? answers[v.winner].text : "");
}

char *em_agg_synth_suffix(const em_answer *answers, int n, size_t *len) {
    char *suffix = NULL;
    size_t slen = 0;
    FILE *f = open_memstream(&suffix, &slen);
    if (!f) return NULL;
    fprintf(f, "\n\nCandidate answers from %d attempts:\n", n);
    for (int i = 0; i < n; i++)
        fprintf(f, "%d. %s\n", i + 1,
                answers[i].kind != EM_ANS_NONE && answers[i].text[0] ? answers[i].text : "(none)");
    fprintf(f, "Considering them, the final answer is:");
    if (fclose(f)) {
        free(suffix);
        return NULL;
    }
    if (len) *len = slen;
    return suffix;
}

bool em_agg_synth_ends(const char *piece, size_t len, int32_t gen) {
    return len > 0 && memchr(piece, '\n', len) && gen > 1;
}

void em_agg_synth_result(const char *text, size_t len, const em_answer *answers, int n, em_agg *out) {
    em_answer_normalize(text ? text : "", text ? len : 0, out->answer);
    out->winner = -1;
    int agree = 0;
    for (int i = 0; i < n; i++) agree += answers[i].kind != EM_ANS_NONE && !strcmp(answers[i].text, out->answer);
    out->agreement = n > 0 ? (double)agree / n : 0.0;
}
