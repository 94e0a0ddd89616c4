/* The code reward: extraction of the last fenced block, both test formats, both modes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
    assert_non_null(strstr(v.reason, "no fenced Python, C or C++ code block"));
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

/* The program is the last block tagged as Python; an untagged block (sample output, a shell
 * transcript) counts only when no block is tagged, whichever order they come in. */
static void test_tagged_block_wins_over_untagged(void **state) {
    (void)state;
    int found;
    char *code = aha_code_extract("```python\nprint(1)\n```\nOutput:\n```\n1\n```\n", &found);
    assert_true(found);
    assert_string_equal(code, "print(1)\n");
    free(code);
    code = aha_code_extract("Input:\n```\n3 4\n```\n```python\nprint(7)\n```\n", &found);
    assert_string_equal(code, "print(7)\n");
    free(code);
    code = aha_code_extract("```Python\nprint(1)\n```\n```\n$ python3 a.py\n1\n```\n```py3 title\nprint(2)\n```", &found);
    assert_string_equal(code, "print(2)\n");
    free(code);
    code = aha_code_extract("```\nprint(5)\n```\n```text\n5\n```", &found);
    assert_string_equal(code, "print(5)\n"); /* nothing tagged Python: the untagged block */
    free(code);
    /* with no language asked for: the last block tagged with a language we run */
    AhaCodeLanguage got;
    size_t n;
    code = aha_code_extract_program("```python\nprint(1)\n```\n```c\nint main(void){return 0;}\n```\n```\nout\n```",
                                    71, AHA_CODE_ANY, &got, &n, &found);
    assert_int_equal(got, AHA_CODE_C);
    assert_string_equal(code, "int main(void){return 0;}\n");
    free(code);
    code = aha_code_extract_program("```\nprint(1)\n```", 16, AHA_CODE_ANY, &got, &n, &found);
    assert_int_equal(got, AHA_CODE_PYTHON);
    free(code);
    code = aha_code_extract_program("```cpp\nint main(){}\n```\n```c++\nint main(){return 1;}\n```", 56,
                                    AHA_CODE_CPP, &got, &n, &found);
    assert_string_equal(code, "int main(){return 1;}\n");
    free(code);
    /* a NUL inside the completion is part of it, not its end */
    static const char with_nul[] = "x\0y\n```python\nprint('a\0b')\n```\n";
    code = aha_code_extract_program(with_nul, sizeof with_nul - 1, AHA_CODE_PYTHON, &got, &n, &found);
    assert_true(found);
    assert_int_equal(n, 13);
    assert_memory_equal(code, "print('a\0b')\n", 13);
    free(code);
    AhaCodeLanguage l;
    assert_int_equal(aha_code_language_parse("C++", &l), 0);
    assert_int_equal(l, AHA_CODE_CPP);
    assert_int_equal(aha_code_language_parse("rust", &l), -1);
    assert_non_null(strstr(aha_error_message(), "expected python, c or cpp, got 'rust'"));
}

/* Output is compared by length: a NUL or another control byte is part of it. */
static void test_output_with_nul_is_compared_whole(void **state) {
    (void)state;
    AhaRewardSet *set = code_set(AHA_CODE_FRACTION);
    const char *row6 = "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": \"\", \"output\": \"6\\n\"}]}}";
    AhaRewardValue v = score(set, "```python\nimport sys\nsys.stdout.write('6\\0 (checked)\\n')\n```", row6);
    assert_true(v.score == 0.0);
    v = score(set, "```python\nimport sys\nsys.stdout.write('6\\0')\n```", row6);
    assert_true(v.score == 0.0);
    v = score(set, "```python\nimport sys\nsys.stdout.write('6\\x01\\n')\n```", row6);
    assert_true(v.score == 0.0);
    v = score(set, "```python\nprint(6)\nprint()\nprint('  ')\n```", row6);
    assert_true(v.score == 1.0);
    const char *row_nul = "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": \"a\\u0000b\\n\", "
                          "\"output\": \"6\\u0000 (checked)\"}]}}";
    v = score(set, "```python\nimport sys\nsys.stdout.write('6\\0 (checked)\\n')\n```", row_nul);
    assert_true(v.score == 1.0);
    v = score(set, "```python\nprint(6)\n```", row_nul);
    assert_true(v.score == 0.0);
    /* the input reaches the program whole: 4 bytes, a NUL among them */
    const char *row_len = "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": \"a\\u0000b\\n\", \"output\": \"4\"}]}}";
    v = score(set, "```python\nimport sys\nprint(len(sys.stdin.buffer.read()))\n```", row_len);
    assert_true(v.score == 1.0);
    /* a NUL the program prints before the asserts' results hides none of them */
    const char *assert_row = "{\"tests\": {\"format\": \"assert\", \"asserts\": [\"assert f() == 1\", \"assert f() == 2\"]}}";
    v = score(set, "```python\nimport sys\nsys.stdout.write('\\0' * 3)\ndef f(): return 1\n```", assert_row);
    assert_true(fabs(v.score - 0.5) < 1e-12);
    aha_reward_set_free(set);
}

/* A tiny HumanEval-style row, fields as the data set has them. */
static const char humaneval_row[] =
    "{\"task_id\": \"T/0\", \"prompt\": \"from typing import List\\n\\n\\ndef total(xs: List[int]) -> int:\\n"
    "    \\\"\\\"\\\" Sum of xs.\\n    >>> total([1, 2])\\n    3\\n    \\\"\\\"\\\"\\n\", \"entry_point\": \"total\", "
    "\"canonical_solution\": \"    s = 0\\n    for x in xs:\\n        s += x\\n    return s\\n\", "
    "\"test\": \"\\n\\nMETADATA = {}\\n\\n\\ndef check(candidate):\\n    assert candidate([]) == 0\\n"
    "    assert candidate([1, 2, 3]) == 6\\n    assert candidate([-1]) == -1\\n\"}";

static void test_humaneval_rows(void **state) {
    (void)state;
    AhaRewardSet *set = code_set(AHA_CODE_FRACTION);
    struct {
        const char *completion;
        double score;
    } cases[] = {
        {"```python\n    s = 0\n    for x in xs:\n        s += x\n    return s\n```", 1},  /* the body */
        {"```python\nreturn sum(xs)\n```", 1},                                       /* body at the margin */
        {"```python\nfrom typing import List\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n```", 1},
        {"```python\ndef total(xs):\n    return sum(xs)\n```\nExample:\n```\n>>> total([1, 2])\n3\n```", 1},
        {"```python\ndef helper(xs):\n    return sum(xs)\n\ndef total(xs):\n    return helper(xs)\n```", 1},
        /* near misses */
        {"```python\n    s = 0\n    for x in xs:\n        s += x\n```", 0},                /* last line removed */
        {"```python\n    pass\n```", 0},
        {"```python\n    return sum(xs) + 1\n```", 0},
        {"```python\ndef total(xs):\n    return max(xs)\n```", 0},
        {"```python\ndef totl(xs):\n    return sum(xs)\n```", 0},                   /* another function */
        {"return sum(xs)", 0},                                                     /* no block */
        {"```python\n    return sum(xs\n```", 0},                                   /* syntax error */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        AhaRewardValue v = score(set, cases[i].completion, humaneval_row);
        if (v.status != AHA_REWARD_SCORED || v.score != cases[i].score)
            fail_msg("case %zu: status %d score %g (%s)", i, v.status, v.score, v.reason);
    }
    /* a check that fails says so */
    AhaRewardValue v = score(set, "```python\n    pass\n```", humaneval_row);
    assert_non_null(strstr(v.reason, "0/1 passed; first failure: assert 0 failed"));
    v = score(set, "```python\n    return sum(xs\n```", humaneval_row);
    assert_non_null(strstr(v.reason, "program failed: SyntaxError"));
    /* the same fields under "tests" with their format */
    const char *nested = "{\"tests\": {\"format\": \"humaneval\", \"prompt\": \"def inc(x):\\n\", \"entry_point\": \"inc\", "
                         "\"test\": \"def check(candidate):\\n    assert candidate(1) == 2\\n\"}}";
    v = score(set, "```python\n    return x + 1\n```", nested);
    assert_true(v.score == 1.0);
    v = score(set, "```python\n    return x\n```", nested);
    assert_true(v.score == 0.0);
    aha_reward_set_free(set);
}

static void test_mbpp_rows(void **state) {
    (void)state;
    AhaRewardSet *set = code_set(AHA_CODE_FRACTION);
    const char *row = "{\"task_id\": 2, \"text\": \"Write a function to add.\", \"test_setup_code\": \"OFFSET = 0\", "
                      "\"test_list\": [\"assert add(1, 2) == 3 + OFFSET\", \"assert add(0, 0) == 0\", "
                      "\"assert math.isclose(add(0.1, 0.2), 0.3)\"], \"test_imports\": [\"import math\"], "
                      "\"challenge_test_list\": []}";
    AhaRewardValue v = score(set, "```python\ndef add(a, b):\n    return a + b\n```", row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 1.0);
    v = score(set, "```python\ndef add(a, b):\n    return int(a + b)\n```", row);
    assert_true(fabs(v.score - 2.0 / 3.0) < 1e-12);
    v = score(set, "```python\ndef add(a, b):\n    return a - b\n```", row);
    assert_true(fabs(v.score - 1.0 / 3.0) < 1e-12);
    /* the original MBPP has no test_imports */
    v = score(set, "```python\ndef add(a, b):\n    return a + b\n```",
              "{\"test_list\": [\"assert add(2, 2) == 4\"], \"test_setup_code\": \"\"}");
    assert_true(v.score == 1.0);
    v = score(set, "```python\ndef add(a, b):\n    return a + b\n```", "{\"test_list\": []}");
    assert_int_equal(v.status, AHA_REWARD_NO_SCORE);
    v = score(set, "```python\ndef add(a, b):\n    return a + b\n```", "{\"test_list\": [\"assert add(2, 2) == 4\"], \"language\": \"c\"}");
    assert_int_equal(v.status, AHA_REWARD_NO_SCORE);
    assert_non_null(strstr(v.reason, "run Python"));
    aha_reward_set_free(set);
}

static const char sum_row[] =
    "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": \"1 2\\n\", \"output\": \"3\\n\"}, "
    "{\"input\": \"40 2\\n\", \"output\": \"42\"}]}}";

/* C and C++: compiled in the sandbox, then run like any program; the language from the
 * fence tag or the row. */
static void test_c_and_cpp_programs(void **state) {
    (void)state;
    if (access("/usr/bin/gcc", X_OK) != 0 || access("/usr/bin/g++", X_OK) != 0) skip();
    AhaRewardSet *set = code_set_limit(AHA_CODE_FRACTION, 20.0);
    AhaRewardValue v = score(set, "```c\n#include <stdio.h>\nint main(void) { int a, b; scanf(\"%d %d\", &a, &b);"
                                  " printf(\"%d\\n\", a + b); return 0; }\n```", sum_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    if (v.score != 1.0) fail_msg("C: %s", v.reason);
    v = score(set, "```cpp\n#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n```",
              sum_row);
    if (v.score != 1.0) fail_msg("C++: %s", v.reason);
    /* near misses: wrong output, a crash, a compile error with the compiler's message */
    v = score(set, "```c\n#include <stdio.h>\nint main(void) { int a, b; scanf(\"%d %d\", &a, &b);"
                   " printf(\"%d\\n\", a < 10 ? a + b : 0); return 0; }\n```", sum_row);
    assert_true(fabs(v.score - 0.5) < 1e-12);
    v = score(set, "```c\nint main(void) { volatile int *p = 0; return *p; }\n```", sum_row);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "killed by SIGSEGV"));
    v = score(set, "```c\nint main(void) { return undefined_name; }\n```", sum_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "compile error: prog.c:1:"));
    assert_non_null(strstr(v.reason, "undefined_name"));
    /* C++ is not C: a C++ program in a ```c block does not compile */
    v = score(set, "```c\n#include <iostream>\nint main() { std::cout << 3; }\n```", sum_row);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "compile error"));
    /* the row's language picks the block; an untagged block is then in that language */
    char row[512];
    snprintf(row, sizeof row, "{\"language\": \"cpp\", %s", sum_row + 1);
    v = score(set, "```python\nprint(3)\n```\n```\n#include <cstdio>\nint main() { int a, b; scanf(\"%d %d\", &a, &b); printf(\"%d\", a + b); }\n```",
              row);
    if (v.score != 1.0) fail_msg("untagged C++: %s", v.reason);
    v = score(set, "```python\na, b = map(int, input().split())\nprint(a + b)\n```", row);
    assert_true(v.score == 0.0);
    assert_non_null(strstr(v.reason, "no fenced C++ code block"));
    aha_reward_set_free(set);
    /* the compiler's own limits: time (the standard headers alone take longer than 0.2 s)
     * and memory (64 MiB is too little for cc1plus) */
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_CODE);
    c.compile_timeout_s = 0.2;
    set = aha_reward_set_create(&c, 1, 1);
    assert_non_null(set);
    aha_reward_set_error_log(set, NULL);
    const char *heavy = "```cpp\n#include <bits/stdc++.h>\n#include <regex>\nstd::regex r(\"a+\");\n"
                        "int main() { std::cout << (std::regex_match(\"aa\", r) ? 3 : 0) << std::endl; }\n```";
    v = score(set, heavy, sum_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
    if (!strstr(v.reason, "compile failed: compile time limit")) fail_msg("%s", v.reason);
    aha_reward_set_free(set);
    c.compile_timeout_s = 0;
    c.compile_memory_mb = 64;
    set = aha_reward_set_create(&c, 1, 1);
    assert_non_null(set);
    aha_reward_set_error_log(set, NULL);
    v = score(set, heavy, sum_row);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
    if (!strstr(v.reason, "compile error: virtual memory exhausted")) fail_msg("%s", v.reason);
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
        cmocka_unit_test(test_tagged_block_wins_over_untagged),
        cmocka_unit_test(test_output_with_nul_is_compared_whole),
        cmocka_unit_test(test_humaneval_rows),
        cmocka_unit_test(test_mbpp_rows),
        cmocka_unit_test(test_c_and_cpp_programs),
        cmocka_unit_test(test_bad_code_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
