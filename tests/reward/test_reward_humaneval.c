/* The code reward on real HumanEval rows, as the data set ships them (skipped when
 * /work/shared/data is absent): a sample of problems, including those whose prompt holds
 * helper functions, scores 1 with the canonical body and with the whole function, 0 with the
 * body replaced by `pass` or without its last line. scripts/humaneval_sweep.py runs all 164. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "aha/error.h"
#include "aha/reward.h"

#define HUMANEVAL "/work/shared/data/humaneval.jsonl"

static const int sample[] = {0, 2, 10, 32, 38, 50, 53, 163};

static json_t *load_rows(void) {
    FILE *f = fopen(HUMANEVAL, "r");
    if (!f) return NULL;
    json_t *rows = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_t *row = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, NULL);
        if (row) json_array_append_new(rows, row);
    }
    free(line);
    fclose(f);
    return rows;
}

static double score_of(AhaRewardSet *set, const json_t *row, const char *completion, char *reason, size_t cap) {
    AhaRewardSample s = {.completion = completion, .row = row, .completion_tokens = -1};
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    snprintf(reason, cap, "%s", v.reason);
    return v.status == AHA_REWARD_SCORED ? v.score : -1;
}

static void test_canonical_solutions_pass_and_broken_ones_fail(void **state) {
    (void)state;
    json_t *rows = load_rows();
    if (!rows) skip();
    assert_int_equal(json_array_size(rows), 164);
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_CODE);
    c.timeout_s = 30; /* generous: ASan on a loaded 2-core machine */
    AhaRewardSet *set = aha_reward_set_create(&c, 1, 1);
    assert_non_null(set);
    aha_reward_set_error_log(set, NULL);
    for (size_t k = 0; k < sizeof sample / sizeof sample[0]; k++) {
        const json_t *row = json_array_get(rows, (size_t)sample[k]);
        const char *body = json_string_value(json_object_get(row, "canonical_solution"));
        const char *prompt = json_string_value(json_object_get(row, "prompt"));
        size_t n = strlen(body) + strlen(prompt) + 64;
        char *completion = malloc(n), *cut = malloc(n), reason[AHA_REWARD_REASON_MAX];
        assert_non_null(completion);
        assert_non_null(cut);
        snprintf(completion, n, "```python\n%s```", body);
        if (score_of(set, row, completion, reason, sizeof reason) != 1.0) fail_msg("HumanEval/%d body: %s", sample[k], reason);
        snprintf(completion, n, "Solution:\n```python\n%s%s```\n", prompt, body);
        if (score_of(set, row, completion, reason, sizeof reason) != 1.0) fail_msg("HumanEval/%d function: %s", sample[k], reason);
        if (score_of(set, row, "```python\n    pass\n```", reason, sizeof reason) != 0.0)
            fail_msg("HumanEval/%d pass: %s", sample[k], reason);
        /* without its last non-empty line */
        size_t len = strlen(body);
        while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' ')) len--;
        while (len > 0 && body[len - 1] != '\n') len--;
        snprintf(cut, n, "```python\n%.*s    pass\n```", (int)len, body);
        if (score_of(set, row, cut, reason, sizeof reason) != 0.0) fail_msg("HumanEval/%d cut: %s", sample[k], reason);
        free(completion);
        free(cut);
    }
    aha_reward_set_free(set);
    json_decref(rows);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_solutions_pass_and_broken_ones_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
