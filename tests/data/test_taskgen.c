/* The task generator: worked sums, the Countdown solver and checker, distinct and disjoint
 * splits, determinism, the files and the `aha data gen` command. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/taskgen.h"
#include "aha/reward.h"

static void test_worked_sum_matches_the_documented_example(void **state) {
    (void)state;
    char think[256], answer[32];
    assert_int_equal(aha_sum_worked_solution("123+456+789", think, sizeof think, answer, sizeof answer), 0);
    assert_string_equal(think, "3+6+9+0=18 2+5+8+1=16 1+4+7+1=13");
    assert_string_equal(answer, "1368");
    assert_int_equal(aha_sum_worked_solution("5+95", think, sizeof think, answer, sizeof answer), 0);
    assert_string_equal(think, "5+5+0=10 0+9+1=10");
    assert_string_equal(answer, "100");
    assert_int_equal(aha_sum_worked_solution("0+0", think, sizeof think, answer, sizeof answer), 0);
    assert_string_equal(think, "0+0+0=0");
    assert_string_equal(answer, "0");
    assert_int_equal(aha_sum_worked_solution("9999+9999+9999+9999+9999+9999+9999+9999+9999+9999+9999+9999", think,
                                             sizeof think, answer, sizeof answer),
                     0);
    assert_string_equal(answer, "119988");
}

static void test_worked_sum_refuses_bad_questions(void **state) {
    (void)state;
    static const char *const bad[] = {"12+", "+3", "abc", "12-3", "7", "", "1+2 ", "1++2"};
    char think[256], answer[32];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aha_error_clear();
        if (aha_sum_worked_solution(bad[i], think, sizeof think, answer, sizeof answer) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(aha_error_message(), "sum '"));
    }
    assert_int_equal(aha_sum_worked_solution("123+456+789", think, 10, answer, sizeof answer), -1);
    assert_string_equal(aha_error_message(), "worked solution longer than 10 bytes");
}

static void test_countdown_solver_and_checker(void **state) {
    (void)state;
    char equation[96];
    const int nums[] = {1, 2, 3, 4};
    assert_int_equal(aha_countdown_solve(nums, 4, 24, equation, sizeof equation), 1);
    assert_int_equal(aha_countdown_check(equation, nums, 4, 24), 1);
    const int ones[] = {1, 1};
    assert_int_equal(aha_countdown_solve(ones, 2, 5, equation, sizeof equation), 0);
    const int needs_division[] = {8, 4, 7};
    assert_int_equal(aha_countdown_solve(needs_division, 3, 14, equation, sizeof equation), 1);
    assert_int_equal(aha_countdown_check(equation, needs_division, 3, 14), 1);
    /* the checker evaluates exactly, with precedence and parentheses */
    assert_int_equal(aha_countdown_check("(55-36)*7-68", (const int[]){55, 36, 7, 68}, 4, 65), 1);
    assert_int_equal(aha_countdown_check(" 55 - 36*7/68", (const int[]){55, 36, 7, 68}, 4, 65), 0);
    assert_non_null(strstr(aha_error_message(), "equals"));
    assert_int_equal(aha_countdown_check("19+19", (const int[]){19, 36}, 2, 38), 0);
    assert_string_equal(aha_error_message(), "equation '19+19' does not use each given number exactly once");
    assert_int_equal(aha_countdown_check("19", (const int[]){19, 36}, 2, 19), 0);
    assert_int_equal(aha_countdown_check("8/(4-4)", (const int[]){8, 4, 4}, 3, 2), 0);
    assert_string_equal(aha_error_message(), "equation '8/(4-4)': division by zero at offset 7");
    assert_int_equal(aha_countdown_check("(1+2", (const int[]){1, 2}, 2, 3), 0);
    assert_int_equal(aha_countdown_check("1+2=3", (const int[]){1, 2}, 2, 3), 0);
    assert_string_equal(aha_error_message(), "equation '1+2=3': unexpected '=' at offset 3");
    assert_int_equal(aha_countdown_check("7/2", (const int[]){7, 2}, 2, 3), 0);
    assert_string_equal(aha_error_message(), "equation '7/2' equals 7/2, not 3");
}

static AhaTaskProblem *train_a, *eval_a, *train_b, *eval_b;

static void generate(const AhaTaskGenConfig *c, AhaTaskProblem **train, AhaTaskProblem **eval) {
    *train = calloc((size_t)c->n_train + 1, sizeof **train);
    *eval = calloc((size_t)c->n_eval + 1, sizeof **eval);
    if (aha_taskgen_generate(c, *train, *eval) != 0) fail_msg("%s", aha_error_message());
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every problem distinct, none shared between the splits (by the canonical key). */
static void check_disjoint(AhaTaskKind kind, const AhaTaskProblem *train, int n_train, const AhaTaskProblem *eval,
                           int n_eval) {
    int n = n_train + n_eval;
    char **keys = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) {
        keys[i] = calloc(1, 160);
        const AhaTaskProblem *p = i < n_train ? &train[i] : &eval[i - n_train];
        assert_int_equal(aha_taskgen_problem_key(kind, p, keys[i], 160), 0);
    }
    qsort(keys, (size_t)n, sizeof *keys, compare_strings);
    for (int i = 1; i < n; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) fail_msg("problem %s appears twice", keys[i]);
    for (int i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

static void test_sum_problems(void **state) {
    (void)state;
    AhaTaskGenConfig c;
    aha_taskgen_defaults(&c, AHA_TASK_SUM);
    c.n_train = 3000;
    c.n_eval = 300;
    c.seed = 42;
    generate(&c, &train_a, &eval_a);
    check_disjoint(AHA_TASK_SUM, train_a, c.n_train, eval_a, c.n_eval);
    for (int i = 0; i < c.n_train + c.n_eval; i++) {
        const AhaTaskProblem *p = i < c.n_train ? &train_a[i] : &eval_a[i - c.n_train];
        assert_int_equal(p->n_nums, 3);
        long long total = 0;
        char question[160] = "";
        for (int k = 0; k < 3; k++) {
            assert_true(p->nums[k] >= 100 && p->nums[k] <= 999);
            total += p->nums[k];
            snprintf(question + strlen(question), sizeof question - strlen(question), "%s%d", k ? "+" : "", p->nums[k]);
        }
        assert_string_equal(p->question, question);
        assert_int_equal(p->target, total);
        char think[256], answer[32], expected[32];
        snprintf(expected, sizeof expected, "%lld", total);
        assert_string_equal(p->answer, expected);
        assert_int_equal(aha_sum_worked_solution(p->question, think, sizeof think, answer, sizeof answer), 0);
        assert_string_equal(answer, expected);
    }
    /* same seed, same problems; another seed, others */
    generate(&c, &train_b, &eval_b);
    assert_memory_equal(train_a, train_b, sizeof *train_a * (size_t)c.n_train);
    assert_memory_equal(eval_a, eval_b, sizeof *eval_a * (size_t)c.n_eval);
    free(train_b), free(eval_b);
    c.seed = 43;
    generate(&c, &train_b, &eval_b);
    assert_string_not_equal(train_a[0].question, train_b[0].question);
    free(train_b), free(eval_b);
    /* the held-out set does not depend on how many training problems are asked for */
    c.seed = 42;
    c.n_train = 10;
    generate(&c, &train_b, &eval_b);
    assert_memory_equal(eval_a, eval_b, sizeof *eval_a * (size_t)c.n_eval);
    free(train_b), free(eval_b);
    free(train_a), free(eval_a);
}

static void test_countdown_problems(void **state) {
    (void)state;
    AhaTaskGenConfig c;
    aha_taskgen_defaults(&c, AHA_TASK_COUNTDOWN);
    c.n_train = 400;
    c.n_eval = 100;
    generate(&c, &train_a, &eval_a);
    check_disjoint(AHA_TASK_COUNTDOWN, train_a, c.n_train, eval_a, c.n_eval);
    for (int i = 0; i < c.n_train + c.n_eval; i++) {
        const AhaTaskProblem *p = i < c.n_train ? &train_a[i] : &eval_a[i - c.n_train];
        assert_int_equal(p->n_nums, 4);
        assert_true(p->target >= 10 && p->target <= 99);
        for (int k = 0; k < 4; k++) assert_true(p->nums[k] >= 1 && p->nums[k] <= 99);
        if (aha_countdown_check(p->answer, p->nums, p->n_nums, p->target) != 1)
            fail_msg("%s: %s", p->question, aha_error_message());
        char question[160];
        snprintf(question, sizeof question, "make %lld from %d %d %d %d", p->target, p->nums[0], p->nums[1],
                 p->nums[2], p->nums[3]);
        assert_string_equal(p->question, question);
    }
    free(train_a), free(eval_a);
    c.operands = 3;
    c.digits = 1;
    c.n_train = 20;
    c.n_eval = 5;
    generate(&c, &train_a, &eval_a);
    for (int i = 0; i < c.n_train; i++) assert_int_equal(aha_countdown_check(train_a[i].answer, train_a[i].nums, 3, train_a[i].target), 1);
    free(train_a), free(eval_a);
}

static void test_bad_settings_are_clear_errors(void **state) {
    (void)state;
    AhaTaskGenConfig c;
    AhaTaskProblem train[64], eval[64];
    aha_taskgen_defaults(&c, AHA_TASK_SUM);
    c.operands = 2, c.digits = 1, c.n_train = 50, c.n_eval = 10; /* 55 distinct pairs of digits */
    assert_int_equal(aha_taskgen_generate(&c, train, eval), -1);
    assert_string_equal(aha_error_message(), "sum with 2 numbers of 1 digits: found only 55 distinct problems of the "
                                             "60 asked for; ask for fewer or allow more digits");
    c.n_train = 45;
    assert_int_equal(aha_taskgen_generate(&c, train, eval), 0);
    c.operands = 1;
    assert_int_equal(aha_taskgen_generate(&c, train, eval), -1);
    assert_string_equal(aha_error_message(), "sum: expected 2 to 8 operands, got 1");
    c.operands = 3, c.digits = 10;
    assert_int_equal(aha_taskgen_generate(&c, train, eval), -1);
    assert_string_equal(aha_error_message(), "sum: expected 1 to 9 digits, got 10");
    aha_taskgen_defaults(&c, AHA_TASK_COUNTDOWN);
    c.operands = 6;
    assert_int_equal(aha_taskgen_generate(&c, train, eval), -1);
    assert_string_equal(aha_error_message(), "countdown: expected 2 to 5 numbers, got 6");
    c.operands = 4, c.n_train = 0, c.n_eval = 0;
    assert_int_equal(aha_taskgen_generate(&c, train, eval), -1);
    AhaTaskKind kind;
    assert_int_equal(aha_taskgen_kind_parse("sums", &kind), -1);
    assert_string_equal(aha_error_message(), "unknown task 'sums'; expected sum or countdown");
}

static int run(const char *command) {
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli_writes_deterministic_jsonl(void **state) {
    (void)state;
    const char *bin = getenv("AHA_BIN");
    if (!bin) bin = AHA_BUILD_DIR "/aha";
    char dir[] = "/tmp/aha_taskgen_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char command[1024];
    snprintf(command, sizeof command,
             "%s data gen countdown --n 30 --eval-n 7 --operands 3 --seed 5 --out-dir %s/a >/dev/null && "
             "%s data gen countdown --n 30 --eval-n 7 --operands 3 --seed 5 --out-dir %s/b >/dev/null && "
             "cmp -s %s/a/train.jsonl %s/b/train.jsonl && cmp -s %s/a/eval.jsonl %s/b/eval.jsonl",
             bin, dir, bin, dir, dir, dir, dir, dir);
    assert_int_equal(run(command), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/a/train.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t error;
        json_t *row = json_loads(line, 0, &error);
        if (!row) fail_msg("%s: %s", path, error.text);
        json_t *nums = json_object_get(row, "nums");
        assert_true(json_is_string(json_object_get(row, "question")));
        assert_true(json_is_string(json_object_get(row, "answer")));
        assert_true(json_is_array(nums) && json_array_size(nums) == 3);
        int values[3];
        for (int i = 0; i < 3; i++) values[i] = (int)json_integer_value(json_array_get(nums, (size_t)i));
        assert_int_equal(aha_countdown_check(json_string_value(json_object_get(row, "answer")), values, 3,
                                             json_integer_value(json_object_get(row, "target"))),
                         1);
        json_decref(row);
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 30);
    /* usage errors exit 2, failures 1, and nothing is half-written */
    snprintf(command, sizeof command, "%s data gen sum --n 5 2>/dev/null", bin);
    assert_int_equal(run(command), 2);
    snprintf(command, sizeof command, "%s data gen product --out-dir %s/c 2>/dev/null", bin, dir);
    assert_int_equal(run(command), 2);
    snprintf(command, sizeof command, "%s data gen sum --n -3 --out-dir %s/c 2>/dev/null", bin, dir);
    assert_int_equal(run(command), 2);
    snprintf(command, sizeof command, "%s data gen sum --digits 12 --out-dir %s/c 2>/dev/null", bin, dir);
    assert_int_equal(run(command), 1);
    snprintf(command, sizeof command, "%s data gen sum --n 5 --out-dir %s/a/train.jsonl 2>/dev/null", bin, dir);
    assert_int_equal(run(command), 1);
    snprintf(command, sizeof command, "%s data --help | grep -q countdown", bin);
    assert_int_equal(run(command), 0);
    snprintf(command, sizeof command, "rm -r %s", dir);
    assert_int_equal(run(command), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_sum_matches_the_documented_example),
        cmocka_unit_test(test_worked_sum_refuses_bad_questions),
        cmocka_unit_test(test_countdown_solver_and_checker),
        cmocka_unit_test(test_sum_problems),
        cmocka_unit_test(test_countdown_problems),
        cmocka_unit_test(test_bad_settings_are_clear_errors),
        cmocka_unit_test(test_cli_writes_deterministic_jsonl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
