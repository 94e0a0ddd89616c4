/* aha's math checker against the verdicts of public verifiers, recorded by
 * scripts/math_verifier_compare.py in tests/fixtures/math/verifier_pairs.jsonl: the unit-test
 * pairs and rewritings of every MATH-500 gold. Each pair must get our recorded verdict, and
 * each pair where Hugging Face Math-Verify decides otherwise must carry a note saying why
 * we differ on purpose (docs/math-verifier.md lists them). */
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

#define FIXTURE AHA_SOURCE_DIR "/tests/fixtures/math/verifier_pairs.jsonl"

static void test_verdicts_match_and_differences_are_explained(void **state) {
    (void)state;
    FILE *f = fopen(FIXTURE, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int rows = 0, wrong = 0, unexplained = 0, mv_decided = 0, mv_agree = 0, is_equiv_agree = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t error;
        json_t *row = json_loads(line, 0, &error);
        assert_non_null(row);
        const char *answer = json_string_value(json_object_get(row, "answer"));
        const char *gold = json_string_value(json_object_get(row, "gold"));
        const char *note = json_string_value(json_object_get(row, "note"));
        json_t *mv = json_object_get(row, "math_verify");
        int expected = (int)json_integer_value(json_object_get(row, "aha"));
        assert_non_null(answer);
        assert_non_null(gold);
        int got = aha_math_equal(answer, gold);
        if (got != expected) {
            print_error("[%s] vs [%s]: expected %d, got %d\n", answer, gold, expected, got);
            wrong++;
        }
        if (json_is_boolean(mv) && expected >= 0) {
            mv_decided++;
            if (json_is_true(mv) == (expected == 1)) {
                mv_agree++;
            } else if (!note || !note[0]) {
                print_error("[%s] vs [%s]: Math-Verify says %s and no note says why we differ\n", answer, gold,
                            json_is_true(mv) ? "equal" : "not equal");
                unexplained++;
            }
        }
        if (json_is_true(json_object_get(row, "math_is_equiv")) == (expected == 1)) is_equiv_agree++;
        json_decref(row);
        rows++;
    }
    free(line);
    fclose(f);
    print_message("%d pairs; Math-Verify agrees on %d of %d, MATH is_equiv on %d\n", rows, mv_agree, mv_decided,
                  is_equiv_agree);
    assert_true(rows > 1000);
    assert_int_equal(wrong, 0);
    assert_int_equal(unexplained, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_match_and_differences_are_explained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
