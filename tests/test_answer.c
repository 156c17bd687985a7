/* test_answer.c - answer extraction and voting on hand-written branch
 * texts: markers, boxed answers, numbers with commas/units/negatives/
 * decimals/fractions, last lines, no answer, ties, early decisions. */
#include "testutil.h"

#include "engine/answer.h"

typedef struct {
    const char *text;
    em_answer_kind kind;
    const char *answer;
} case_t;

static const case_t cases[] = {
    /* explicit markers */
    {"Let me think. 3 + 4 = 7.\nFinal answer: 7", EM_ANS_MARKER, "7"},
    {"We add them up.\nAnswer: 42", EM_ANS_MARKER, "42"},
    {"So the answer is 12.", EM_ANS_MARKER, "12"},
    {"The answer is Paris.", EM_ANS_MARKER, "paris"},
    {"Final Answer: The Eiffel Tower", EM_ANS_MARKER, "the eiffel tower"},
    {"FINAL ANSWER: 1,234", EM_ANS_MARKER, "1234"},
    {"answer: $5.00", EM_ANS_MARKER, "5"},
    {"Answer: 12 apples", EM_ANS_MARKER, "12"},
    {"Answer: -3", EM_ANS_MARKER, "-3"},
    {"Answer: 0.50", EM_ANS_MARKER, "0.5"},
    {"Answer: 3/4", EM_ANS_MARKER, "3/4"},
    {"Answer:\n  17\n", EM_ANS_MARKER, "17"},
    {"First guess, answer: 5. Wait, that is wrong. Final answer: 6", EM_ANS_MARKER, "6"},
    {"**Final answer:** 99", EM_ANS_MARKER, "99"},
    {"The final answer is 2,000,000.", EM_ANS_MARKER, "2000000"},
    {"Answer: 25%", EM_ANS_MARKER, "25"},
    {"Answer: yes", EM_ANS_MARKER, "yes"},
    {"Answer: YES.", EM_ANS_MARKER, "yes"},
    {"Answer:   New   York  City ", EM_ANS_MARKER, "new york city"},
    {"The answer is (B).", EM_ANS_MARKER, "b"},
    {"Answer: 007", EM_ANS_MARKER, "7"},
    {"Answer: -0", EM_ANS_MARKER, "0"},
    {"Answer: 10 dollars and 5 cents", EM_ANS_MARKER, "10 dollars and 5 cents"},
    {"answer is 8 km.", EM_ANS_MARKER, "8"},
    {"Answer: 1.0", EM_ANS_MARKER, "1"},
    {"Answer: 3.14159", EM_ANS_MARKER, "3.14159"},
    {"Answer: $1,250.75", EM_ANS_MARKER, "1250.75"},
    {"Final answer: \xe2\x88\x92" "8", EM_ANS_MARKER, "-8"},
    /* boxed */
    {"Thus we get \\boxed{42}.", EM_ANS_BOXED, "42"},
    {"So x = \\boxed{-7}", EM_ANS_BOXED, "-7"},
    {"\\boxed{\\frac{1}{2}}", EM_ANS_BOXED, "\\frac{1}{2}"},
    {"first \\boxed{3} then corrected \\boxed{4}", EM_ANS_BOXED, "4"},
    {"The result: \\boxed{1,000}", EM_ANS_BOXED, "1000"},
    {"Final answer: \\boxed{9}", EM_ANS_BOXED, "9"},
    {"\\boxed{x+1}", EM_ANS_BOXED, "x+1"},
    {"\\boxed{ Blue }", EM_ANS_BOXED, "blue"},
    /* last number */
    {"3 apples plus 4 apples makes 7 apples", EM_ANS_NUMBER, "7"},
    {"He had 1,200 dollars and spent 300, leaving 900.", EM_ANS_NUMBER, "900"},
    {"The temperature dropped to -5 degrees", EM_ANS_NUMBER, "-5"},
    {"It costs $3.50 in total", EM_ANS_NUMBER, "3.5"},
    {"We need 2.50 liters", EM_ANS_NUMBER, "2.5"},
    {"Half is 1/2 of the cake", EM_ANS_NUMBER, "1/2"},
    {"There are 12,345,678 people", EM_ANS_NUMBER, "12345678"},
    {"Step 1: 5*6 = 30\nStep 2: 30 + 2 = 32", EM_ANS_NUMBER, "32"},
    {"the total is 100.", EM_ANS_NUMBER, "100"},
    {"x86 machines run at 3 GHz", EM_ANS_NUMBER, "3"},
    {"Using python3 we get 15", EM_ANS_NUMBER, "15"},
    {"Count: 0", EM_ANS_NUMBER, "0"},
    {"about -0.25 of it", EM_ANS_NUMBER, "-0.25"},
    {"1,000 and then 2,500", EM_ANS_NUMBER, "2500"},
    {"It is 10%", EM_ANS_NUMBER, "10"},
    {"The year was 1999, clearly", EM_ANS_NUMBER, "1999"},
    {"costs -$4", EM_ANS_NUMBER, "-4"},
    /* last line */
    {"Blue is the color.\nThe sky is blue", EM_ANS_LASTLINE, "the sky is blue"},
    {"Thinking...\n\nParis\n\n", EM_ANS_LASTLINE, "paris"},
    {"Hmm.\nI am not sure!", EM_ANS_LASTLINE, "i am not sure"},
    {"It is the cat.", EM_ANS_LASTLINE, "it is the cat"},
    {"  \"Quoted\"  ", EM_ANS_LASTLINE, "quoted"},
    {"line one\nline two\n   \n", EM_ANS_LASTLINE, "line two"},
    /* nothing */
    {"", EM_ANS_NONE, ""},
    {"   \n\t\n ", EM_ANS_NONE, ""},
    {"...", EM_ANS_NONE, ""},
};

static void test_extract(void **state) {
    (void)state;
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        em_answer a;
        em_answer_extract(cases[i].text, strlen(cases[i].text), &a);
        if (a.kind != cases[i].kind || strcmp(a.text, cases[i].answer) != 0) {
            print_message("case %zu \"%s\": got kind %d '%s', want kind %d '%s'\n", i, cases[i].text, a.kind, a.text,
                          cases[i].kind, cases[i].answer);
            fails++;
        }
    }
    assert_true(sizeof cases / sizeof cases[0] >= 60);
    assert_int_equal(fails, 0);
}

static em_answer ans(const char *t) {
    em_answer a;
    em_answer_extract(t, strlen(t), &a);
    return a;
}

static void test_vote_majority(void **state) {
    (void)state;
    em_answer a[5] = {ans("Answer: 7"), ans("so 7 apples"), ans("Answer: 8"), ans("\\boxed{7}"), ans("")};
    double lp[5] = {-1, -1, -0.1, -1, -0.01};
    em_vote v = em_answer_vote(a, lp, 5);
    assert_string_equal(a[v.winner].text, "7");
    assert_int_equal(v.votes, 3);
    assert_int_equal(v.voters, 4);
    assert_true(v.agreement == 3.0 / 5.0);
}

static void test_vote_tie_by_logprob(void **state) {
    (void)state;
    em_answer a[4] = {ans("Answer: 1,000"), ans("Answer: 1000"), ans("Answer: 999"), ans("Answer: 999.0")};
    double lp[4] = {-2.0, -1.0, -0.5, -0.9};
    em_vote v = em_answer_vote(a, lp, 4);
    /* 1000 (mean -1.5) vs 999 (mean -0.7): 999 wins the tie */
    assert_string_equal(a[v.winner].text, "999");
    assert_int_equal(v.votes, 2);
    double lp2[4] = {-0.1, -0.1, -0.5, -0.9};
    v = em_answer_vote(a, lp2, 4);
    assert_string_equal(a[v.winner].text, "1000");
}

static void test_vote_no_answers(void **state) {
    (void)state;
    em_answer a[3] = {ans(""), ans("  "), ans("...")};
    em_vote v = em_answer_vote(a, NULL, 3);
    assert_int_equal(v.winner, -1);
    assert_int_equal(v.voters, 0);
    assert_true(v.agreement == 0.0);
}

static void test_decided(void **state) {
    (void)state;
    em_answer a[5] = {ans("Answer: 4"), ans("Answer: 4"), ans("Answer: 4"), ans(""), ans("")};
    bool done[5] = {true, true, true, false, false};
    /* 3 votes vs 0, two running: 3 > 0 + 2 -> decided */
    assert_true(em_answer_decided(a, done, 5));
    bool done2[5] = {true, true, false, false, false};
    /* 2 vs 0 with three running: not decided */
    assert_false(em_answer_decided(a, done2, 5));
    em_answer b[4] = {ans("Answer: 1"), ans("Answer: 2"), ans("Answer: 1"), ans("")};
    bool done3[4] = {true, true, true, false};
    /* 2 vs 1 with one running: could tie -> not decided */
    assert_false(em_answer_decided(b, done3, 4));
    bool done4[4] = {true, true, true, true};
    assert_true(em_answer_decided(b, done4, 4));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract),           cmocka_unit_test(test_vote_majority),
        cmocka_unit_test(test_vote_tie_by_logprob), cmocka_unit_test(test_vote_no_answers),
        cmocka_unit_test(test_decided),
    };
    return cmocka_run_group_tests_name("answer", tests, NULL, NULL);
}
