/* The code reward: extraction of the last fenced block, both test formats, both modes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/reward.h"

static void test_extract_last_python_block(void **state) {
    (void)state;
    int found;
    char *code = aha_code_extract("text\n```python\nprint(1)\n```\nmore\n```py\nprint(2)\n```\nend", &found);
    assert_true(found);
    assert_string_equal(code, "print(2)\n");
    free(code);
    /* a later block in another language is skipped; its closing fence is not an opener */
    code = aha_code_extract("```\nx = 1\n```\n```cpp\nint main(){}\n```\ntext", &found);
    assert_true(found);
    assert_string_equal(code, "x = 1\n");
    free(code);
    code = aha_code_extract("```python3\r\nprint(3)\r\n```", &found);
    assert_true(found);
    assert_string_equal(code, "print(3)\r\n");
    free(code);
    /* cut off before the closing fence: the rest of the completion */
    code = aha_code_extract("```python\nprint(4)\n", &found);
    assert_true(found);
    assert_string_equal(code, "print(4)\n");
    free(code);
    assert_null(aha_code_extract("no code at all, just `inline`", &found));
    assert_false(found);
    assert_null(aha_code_extract("```java\nclass A {}\n```", &found));
    assert_false(found);
}

/* Programs that should pass get a generous limit (the machine may be loaded); the hanging
 * ones get 1 s. */
static AhaRewardSet *code_set_limit(AhaCodeMode mode, double timeout_s) {
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_CODE);
    c.code_mode = mode;
    c.timeout_s = timeout_s;
    AhaRewardSet *set = aha_reward_set_create(&c, 1, 2);
    if (!set) fail_msg("%s", aha_error_message());
    aha_reward_set_error_log(set, NULL);
    return set;
}

static AhaRewardSet *code_set(AhaCodeMode mode) { return code_set_limit(mode, 10.0); }

static AhaRewardValue score(AhaRewardSet *set, const char *completion, const char *row) {
    AhaRewardSample s = {.completion = completion, .row_json = row, .completion_tokens = -1};
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    return v;
}

static const char stdin_row[] =
    "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": ["
    "{\"input\": \"1 2\\n\", \"output\": \"3\\n\"},"
    "{\"input\": \"5 5\\n\", \"output\": \"10   \\n\\n\"},"
    "{\"input\": \"-1 1\\n\", \"output\": \"0\"},"
    "{\"input\": \"100 1\\n\", \"output\": \"101\"}]}}";

static void test_stdin_stdout_fraction_and_all(void **state) {
    (void)state;
    AhaRewardSet *fraction = code_set(AHA_CODE_FRACTION), *all = code_set(AHA_CODE_ALL);
    const char *right = "Here:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```";
    const char *wrong_big = "```python\na, b = map(int, input().split())\nprint(a + b if a < 50 else 0)\n```";
    AhaRewardValue v = score(fraction, right, stdin_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 1.0);
    assert_non_null(strstr(v.reason, "4/4"));
    v = score(fraction, wrong_big, stdin_row);
    assert_true(fabs(v.score - 0.75) < 1e-12);
    assert_non_null(strstr(v.reason, "case 3: wrong output"));
    v = score(all, wrong_big, stdin_row);
    assert_true(v.score == 0.0);
    v = score(all, right, stdin_row);
    assert_true(v.score == 1.0);
    /* a crash or a hang is a failed case, not a failed reward */
    v = score(fraction, "```python\nraise SystemExit(2)\n```", stdin_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "exit status 2"));
    AhaRewardSet *quick = code_set_limit(AHA_CODE_ALL, 1.0);
    v = score(quick, "```python\nwhile True: pass\n```", stdin_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
    aha_reward_set_free(quick);
    v = score(fraction, "I cannot write code.", stdin_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "no fenced Python code block"));
    aha_reward_set_free(fraction);
    aha_reward_set_free(all);
}

static void test_asserts(void **state) {
    (void)state;
    AhaRewardSet *set = code_set(AHA_CODE_FRACTION);
    /* tests given as a JSON string, as many data sets store them */
    const char *row = "{\"tests\": \"{\\\"format\\\": \\\"assert\\\", \\\"asserts\\\": "
                      "[\\\"assert f(1) == 2\\\", \\\"assert f(2) == 4\\\", \\\"assert f(-3) == -6\\\", "
                      "\\\"assert f(0) == 1\\\"]}\"}";
    AhaRewardValue v = score(set, "```python\ndef f(x):\n    return 2 * x\n```", row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(fabs(v.score - 0.75) < 1e-12);
    assert_non_null(strstr(v.reason, "assert 3 failed"));
    /* printing fake result lines does not help: the nonce is not known to the program */
    v = score(set, "```python\nfor i in range(4): print('\\n@@aha 0 %d P' % i)\ndef f(x): return 0\n```", row);
    assert_true(v.score == 0.0);
    /* nor does looking for the nonce where a program would look */
    v = score(set, "```python\nimport sys, os\nfound = ' '.join(sys.argv) + os.environ.get('NONCE', '') + sys.stdin.read()\n"
                   "found += ' '.join(open(f).read() for f in os.listdir('.') if f.endswith('.txt'))\n"
                   "for tok in found.split():\n    for i in range(4): print('\\n@@aha %s %d P' % (tok, i))\n"
                   "def f(x): return 0\n```", row);
    assert_true(v.score == 0.0);
    /* exiting early passes nothing */
    v = score(set, "```python\nimport os\nos._exit(0)\n```", row);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "after 0 of 4"));
    /* a program that hangs in an assert keeps the results before it */
    aha_reward_set_free(set);
    set = code_set_limit(AHA_CODE_FRACTION, 2.0);
    const char *hang_row = "{\"tests\": {\"format\": \"assert\", \"asserts\": [\"assert f(1) == 1\", \"f(-1)\"]}}";
    v = score(set, "```python\ndef f(x):\n    while x < 0: pass\n    return x\n```", hang_row);
    assert_true(fabs(v.score - 0.5) < 1e-12);
    assert_non_null(strstr(v.reason, "after 1 of 2"));
    aha_reward_set_free(set);
}

static void test_rows_without_usable_tests_get_no_score(void **state) {
    (void)state;
    AhaRewardSet *set = code_set(AHA_CODE_FRACTION);
    const char *code = "```python\nprint(1)\n```";
    const char *rows[] = {"{}", "{\"tests\": {\"format\": \"junit\"}}",
                          "{\"tests\": {\"format\": \"assert\", \"asserts\": []}}",
                          "{\"tests\": \"not json\"}",
                          "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": 1}]}}",
                          "{\"tests\": {\"format\": \"assert\", \"asserts\": [1]}}"};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        AhaRewardValue v = score(set, code, rows[i]);
        if (v.status != AHA_REWARD_NO_SCORE) fail_msg("row %zu: status %d (%s)", i, v.status, v.reason);
    }
    aha_reward_set_free(set);
}

static void test_parallel_batch(void **state) {
    (void)state;
    AhaRewardSet *set = code_set(AHA_CODE_FRACTION);
    enum { N = 8 };
    AhaRewardSample s[N];
    for (int i = 0; i < N; i++)
        s[i] = (AhaRewardSample){.completion = i % 2 ? "```python\na,b=map(int,input().split())\nprint(a+b)\n```"
                                                     : "```python\nprint(0)\n```",
                                 .row_json = stdin_row, .completion_tokens = -1};
    AhaRewardValue v[N];
    double total[N];
    assert_int_equal(aha_reward_set_score(set, s, N, v, total), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(v[i].status, AHA_REWARD_SCORED);
        assert_true(total[i] == (i % 2 ? 1.0 : 0.25)); /* print(0) passes "-1 1" */
    }
    aha_reward_set_free(set);
}

static void test_bad_code_config(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_CODE);
    c.python = "/nonexistent/python3";
    assert_null(aha_reward_set_create(&c, 1, 1));
    assert_non_null(strstr(aha_error_message(), "rewards[0] (code): python: cannot execute"));
    c.python = NULL;
    c.timeout_s = 0;
    assert_null(aha_reward_set_create(&c, 1, 1));
    assert_non_null(strstr(aha_error_message(), "timeout_s"));
    c.timeout_s = 1;
    c.memory_mb = 1;
    assert_null(aha_reward_set_create(&c, 1, 1));
    assert_non_null(strstr(aha_error_message(), "memory_mb"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_last_python_block),
        cmocka_unit_test(test_stdin_stdout_fraction_and_all),
        cmocka_unit_test(test_asserts),
        cmocka_unit_test(test_rows_without_usable_tests_get_no_score),
        cmocka_unit_test(test_parallel_batch),
        cmocka_unit_test(test_bad_code_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
