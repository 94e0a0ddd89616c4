/* The checker against the real gold answers of MATH-500 and GSM8K (skipped when
 * /work/shared/data is absent): every gold equals itself and its own \boxed{} in the
 * solution, every GSM8K "#### N" line parses, and neighbouring wrong answers score 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "aha/math_answer.h"
#include "reward/math_internal.h"

#define DATA_DIR "/work/shared/data"

/* Calls row(object) for each line of a JSONL file; returns the row count, or -1 if absent. */
static int each_row(const char *path, void (*row)(json_t *, int *), int *failures) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    int rows = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t error;
        json_t *object = json_loads(line, 0, &error);
        assert_non_null(object);
        row(object, failures);
        json_decref(object);
        rows++;
    }
    free(line);
    fclose(f);
    return rows;
}

static int math500_text_golds;

static void math500_row(json_t *row, int *failures) {
    const char *answer = json_string_value(json_object_get(row, "answer"));
    const char *solution = json_string_value(json_object_get(row, "solution"));
    assert_non_null(answer);
    assert_non_null(solution);
    char *boxed = aha_math_gold(solution);
    assert_non_null(boxed);
    int self = aha_math_equal(answer, answer);
    int against_solution = aha_math_equal(boxed, answer);
    int reverse = aha_math_equal(answer, boxed);
    double score = 0;
    char reason[160];
    int scored = aha_math_score(solution, answer, AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason);
    if (self != 1 || against_solution != 1 || reverse != 1 || scored != 0 || score != 1.0) {
        print_error("MATH-500 answer [%s] boxed [%s]: self %d, boxed %d, reverse %d, score %d/%g (%s)\n", answer,
                    boxed, self, against_solution, reverse, scored, score, reason);
        (*failures)++;
    }
    free(boxed);
    /* Without the shortcut for identical text: the math rules alone must agree. */
    int structural = math_compare_ex(answer, strlen(answer), answer, strlen(answer), NULL, 0, 1);
    if (structural == 3) {
        math500_text_golds++;
    } else if (structural != 1) {
        print_error("MATH-500 answer [%s] is not equal to itself by the math rules (%d)\n", answer, structural);
        (*failures)++;
    }
    /* Off by one, doubled or negated: wrong whenever the gold is a number or an expression. */
    char wrong[3][1024];
    snprintf(wrong[0], sizeof wrong[0], "{%s}+1", answer);
    snprintf(wrong[1], sizeof wrong[1], "2\\cdot{%s}", answer);
    snprintf(wrong[2], sizeof wrong[2], "{%s}-\\frac{1}{1000}", answer);
    for (int w = 0; w < 3; w++) {
        if (aha_math_equal(wrong[w], answer) != 0 && !(w == 1 && strcmp(answer, "0") == 0)) {
            print_error("MATH-500 wrong answer [%s] accepted for [%s]\n", wrong[w], answer);
            (*failures)++;
        }
    }
}

static void test_math500_golds_equal_themselves_and_their_box(void **state) {
    (void)state;
    int failures = 0;
    int rows = each_row(DATA_DIR "/math500_test.jsonl", math500_row, &failures);
    if (rows < 0) skip();
    assert_int_equal(rows, 500);
    assert_int_equal(failures, 0);
    /* Only the word answers (\\text{Evelyn}, \\text{east}, ...) are compared as text. */
    assert_true(math500_text_golds <= 5);
}

/* Every MATH-500 gold against every other: different problems, so different answers, except
 * for the few that are the same value written another way. Today those are 34 pairs, all
 * legitimate: a degree mark, a unit or a dollar dropped (120^\\circ and 120, 15\\mbox{ cm}^2
 * and 15, \\$36 and 36), x=5 and 5, \\frac14 and \\frac{1}{4}, 10,\\!080 and 10080, 1,-2 and
 * -2,1, a base subscript (40_9 and 40), an angle in degrees and in radians (180^\\circ and
 * \\pi). More means a false positive crept in. */
static void test_math500_golds_reject_other_golds(void **state) {
    (void)state;
    FILE *f = fopen(DATA_DIR "/math500_test.jsonl", "r");
    if (!f) skip();
    char *answers[500] = {0};
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (n < 500 && getline(&line, &cap, f) > 0) {
        json_error_t error;
        json_t *row = json_loads(line, 0, &error);
        assert_non_null(row);
        answers[n++] = strdup(json_string_value(json_object_get(row, "answer")));
        json_decref(row);
    }
    free(line);
    fclose(f);
    int equal_pairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (strcmp(answers[i], answers[j]) == 0) continue;
            int ij = aha_math_equal(answers[i], answers[j]), ji = aha_math_equal(answers[j], answers[i]);
            if (ij == 1 || ji == 1) {
                print_message("same value: [%s] and [%s]\n", answers[i], answers[j]);
                equal_pairs++;
            }
        }
    assert_true(equal_pairs <= 34);
    for (int i = 0; i < n; i++) free(answers[i]);
}

static void gsm8k_row(json_t *row, int *failures) {
    const char *solution = json_string_value(json_object_get(row, "answer"));
    assert_non_null(solution);
    char *gold = aha_math_gold(solution);
    if (!gold) {
        print_error("GSM8K solution without a '#### N' answer: %.80s\n", solution);
        (*failures)++;
        return;
    }
    /* The answer is an integer, maybe negative, maybe with thousands commas. */
    char digits[64];
    size_t n = 0;
    for (const char *p = gold; *p && n + 1 < sizeof digits; p++)
        if (*p != ',') digits[n++] = *p;
    digits[n] = '\0';
    char *end;
    long long value = strtoll(digits, &end, 10);
    char right[96], wrong[96], scaled[96];
    snprintf(right, sizeof right, "so the answer is \\boxed{%lld}.", value);
    snprintf(wrong, sizeof wrong, "<answer>%lld</answer>", value + 1);
    snprintf(scaled, sizeof scaled, "\\boxed{%lld0}", value);
    double s_right = 0, s_wrong = 1, s_scaled = 1;
    int ok = *end == '\0' && aha_math_equal(gold, gold) == 1 &&
             aha_math_score(right, solution, AHA_MATH_EXTRACT_AUTO, &s_right, NULL, 0) == 0 && s_right == 1.0 &&
             aha_math_score(wrong, solution, AHA_MATH_EXTRACT_AUTO, &s_wrong, NULL, 0) == 0 && s_wrong == 0.0 &&
             aha_math_score(scaled, solution, AHA_MATH_EXTRACT_AUTO, &s_scaled, NULL, 0) == 0 &&
             (s_scaled == 0.0 || value == 0);
    if (!ok) {
        print_error("GSM8K gold [%s]: right %g wrong %g scaled %g\n", gold, s_right, s_wrong, s_scaled);
        (*failures)++;
    }
    free(gold);
}

static void test_gsm8k_golds_parse(void **state) {
    (void)state;
    int failures = 0;
    int rows = each_row(DATA_DIR "/gsm8k_test.jsonl", gsm8k_row, &failures);
    if (rows < 0) skip();
    assert_int_equal(rows, 1319);
    int train = each_row(DATA_DIR "/gsm8k_train.jsonl", gsm8k_row, &failures);
    assert_int_equal(train, 7473);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_math500_golds_equal_themselves_and_their_box),
        cmocka_unit_test(test_math500_golds_reject_other_golds),
        cmocka_unit_test(test_gsm8k_golds_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
