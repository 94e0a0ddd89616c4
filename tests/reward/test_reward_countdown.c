/* The countdown reward: right equations, wrong ones, rows it cannot judge, the recipe entry
 * and `aha reward score --reward countdown`. */
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
#include "aha/reward_recipe.h"
#include "aha/taskgen.h"
#include "aha/trainloop.h"

#define ROW "{\"question\": \"make 65 from 19 36 55 7\", \"answer\": \"(55-36)*7-68\", " \
            "\"nums\": [19, 36, 55, 7], \"target\": 65}"

static AhaRewardValue score_row(const char *completion, const char *row_json) {
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_COUNTDOWN);
    AhaRewardSet *set = aha_reward_set_create(&c, 1, 1);
    if (!set) fail_msg("create: %s", aha_error_message());
    aha_reward_set_error_log(set, NULL);
    AhaRewardSample s = {.completion = completion, .row_json = row_json, .completion_tokens = -1};
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    aha_reward_set_free(set);
    return v;
}

static void expect(const char *completion, const char *row, AhaRewardStatus status, double score,
                   const char *reason_part) {
    AhaRewardValue v = score_row(completion, row);
    if (v.status != status || v.score != score || (reason_part && !strstr(v.reason, reason_part)))
        fail_msg("'%s' on %s: status %d score %g reason '%s' (expected status %d score %g, '%s')",
                 completion, row, (int)v.status, v.score, v.reason, (int)status, score,
                 reason_part ? reason_part : "");
}

static void test_right_equations_score_one(void **state) {
    (void)state;
    expect("<answer>55+36-19-7</answer>", ROW, AHA_REWARD_SCORED, 1, "reaches 65");
    expect("<think>55+36=91 91-19=72 72-7=65</think><answer>55+36-19-7</answer>", ROW, AHA_REWARD_SCORED,
           1, NULL);
    expect("<answer> ( 55 + 36 ) - ( 19 + 7 ) </answer>", ROW, AHA_REWARD_SCORED, 1, NULL);
    expect("<answer>55-19+36-7</answer>", ROW, AHA_REWARD_SCORED, 1, NULL); /* any order */
    /* rational intermediates are exact: 6/4 = 3/2, *2*3 = 9 */
    expect("<answer>6/4*2*3</answer>", "{\"nums\": [6, 4, 2, 3], \"target\": 9}", AHA_REWARD_SCORED, 1, NULL);
    /* a box inside the last answer block, as the math reward reads it */
    expect("<answer>\\boxed{55+36-19-7}</answer>", ROW, AHA_REWARD_SCORED, 1, NULL);
}

static void test_wrong_equations_score_zero(void **state) {
    (void)state;
    expect("<answer>55+36-19</answer>", ROW, AHA_REWARD_SCORED, 0, "exactly once");     /* 7 unused */
    expect("<answer>55+36-19-7+7-7</answer>", ROW, AHA_REWARD_SCORED, 0, "exactly once"); /* 7 thrice */
    expect("<answer>55+36-19-8</answer>", ROW, AHA_REWARD_SCORED, 0, "exactly once");  /* 8 not given */
    expect("<answer>55+36+19-7</answer>", ROW, AHA_REWARD_SCORED, 0, "not 65");        /* = 103 */
    expect("<answer>55/(36-36)+19+7</answer>", ROW, AHA_REWARD_SCORED, 0, "division by zero");
    expect("<answer>55+36-19-</answer>", ROW, AHA_REWARD_SCORED, 0, "expected a number");
    expect("<answer>(55+36-19-7</answer>", ROW, AHA_REWARD_SCORED, 0, "expected ')'");
    expect("<answer>65</answer>", ROW, AHA_REWARD_SCORED, 0, "exactly once");
    expect("<answer>55+36-19-7=65</answer>", ROW, AHA_REWARD_SCORED, 0, "unexpected '='");
    expect("<answer></answer>", ROW, AHA_REWARD_SCORED, 0, NULL);
    expect("<think>55+36-19-7</think>", ROW, AHA_REWARD_SCORED, 0, "no <answer>");
    expect("55+36-19-7", ROW, AHA_REWARD_SCORED, 0, "no <answer>");
    expect("<answer>55+36-19-7", ROW, AHA_REWARD_SCORED, 0, "no <answer>"); /* cut off */
    expect("<answer>99999999999*2</answer>", ROW, AHA_REWARD_SCORED, 0, "too large");
    char longest[400] = "<answer>";
    for (int i = 0; i < 80; i++) strcat(longest, "(1)+");
    strcat(longest, "1</answer>");
    expect(longest, ROW, AHA_REWARD_SCORED, 0, "longer than 255 bytes");
    /* 19*7/(55-36) = 7, a right value that is not the target; the last block decides */
    expect("<answer>55+36-19-7</answer> then <answer>19*7/(55-36)</answer>", ROW, AHA_REWARD_SCORED, 0,
           "not 65");
    expect("<answer>19*7/(55-36)</answer><answer>55+36-19-7</answer>", ROW, AHA_REWARD_SCORED, 1, NULL);
    /* not an integer: 7/2 with nums 7 2 and target 3 */
    expect("<answer>7/2</answer>", "{\"nums\": [7, 2], \"target\": 3}", AHA_REWARD_SCORED, 0, "7/2");
}

static void test_rows_it_cannot_judge(void **state) {
    (void)state;
    const char *c = "<answer>55+36-19-7</answer>";
    expect(c, "{}", AHA_REWARD_NO_SCORE, 0, "no \"nums\"");
    expect(c, "{\"answer\": \"65\"}", AHA_REWARD_NO_SCORE, 0, "no \"nums\"");
    expect(c, "{\"nums\": [19, 36, 55, 7]}", AHA_REWARD_NO_SCORE, 0, "no \"nums\" and \"target\"");
    expect(c, "{\"target\": 65}", AHA_REWARD_NO_SCORE, 0, NULL);
    expect(c, "{\"nums\": \"19 36 55 7\", \"target\": 65}", AHA_REWARD_NO_SCORE, 0, "not an array");
    expect(c, "{\"nums\": [], \"target\": 65}", AHA_REWARD_NO_SCORE, 0, "not an array");
    expect(c, "{\"nums\": [19, \"36\", 55, 7], \"target\": 65}", AHA_REWARD_NO_SCORE, 0, "positive integer");
    expect(c, "{\"nums\": [19, 36, -55, 7], \"target\": 65}", AHA_REWARD_NO_SCORE, 0, "positive integer");
    expect(c, "{\"nums\": [19, 36, 55.5, 7], \"target\": 65}", AHA_REWARD_NO_SCORE, 0, "positive integer");
    expect(c, "{\"nums\": [19, 36, 55, 7], \"target\": \"65\"}", AHA_REWARD_NO_SCORE, 0, "not an integer");
    expect(c, "{\"nums\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"target\": 17}", AHA_REWARD_NO_SCORE, 0,
           "1 to 16");
    /* a row that is no JSON object fails the component (the set's rule for every reward) */
    expect(c, "[1, 2]", AHA_REWARD_FAILED, 0, "JSON object");
}

/* Every generated problem's own answer scores 1; the same equation against another target 0. */
static void test_generated_answers_score_one(void **state) {
    (void)state;
    AhaTaskGenConfig g;
    aha_taskgen_defaults(&g, AHA_TASK_COUNTDOWN);
    g.n_train = 40;
    g.n_eval = 10;
    g.operands = 3;
    g.seed = 5;
    AhaTaskProblem train[40], eval[10];
    if (aha_taskgen_generate(&g, train, eval) != 0) fail_msg("%s", aha_error_message());
    for (int i = 0; i < g.n_train; i++) {
        char completion[160], row[256];
        snprintf(completion, sizeof completion, "<think>...</think><answer>%s</answer>", train[i].answer);
        snprintf(row, sizeof row, "{\"nums\": [%d, %d, %d], \"target\": %lld}", train[i].nums[0],
                 train[i].nums[1], train[i].nums[2], train[i].target);
        expect(completion, row, AHA_REWARD_SCORED, 1, NULL);
        snprintf(row, sizeof row, "{\"nums\": [%d, %d, %d], \"target\": %lld}", train[i].nums[0],
                 train[i].nums[1], train[i].nums[2], train[i].target + 1);
        expect(completion, row, AHA_REWARD_SCORED, 0, "not");
    }
}

static void test_recipe_entry(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_defaults(&r), 0);
    if (aha_recipe_set(&r, "rewards=[{type: countdown}, {type: format, weight: 0.2}]") != 0)
        fail_msg("%s", aha_error_message());
    AhaRewardSet *set = aha_reward_set_from_recipe(&r, 1);
    if (!set) fail_msg("%s", aha_error_message());
    assert_int_equal(aha_reward_set_type(set, 0), AHA_REWARD_COUNTDOWN);
    assert_string_equal(aha_reward_set_name(set, 0), "countdown");
    AhaRewardSample s = {.completion = "<think>a</think><answer>55+36-19-7</answer>", .row_json = ROW};
    AhaRewardValue v[2];
    double total;
    assert_int_equal(aha_reward_set_score(set, &s, 1, v, &total), 0);
    assert_true(v[0].score == 1.0 && v[1].score == 1.0);
    assert_true(total == 1.2);
    aha_reward_set_free(set);
    /* keys of other types are refused on a countdown entry */
    assert_int_not_equal(aha_recipe_set(&r, "rewards=[{type: countdown, extract: boxed}]"), 0);
    assert_non_null(strstr(aha_error_message(), "extract"));
    aha_recipe_free(&r);
    AhaRewardType t;
    assert_int_equal(aha_reward_type_parse("countdown", &t), 0);
    assert_int_equal(t, AHA_REWARD_COUNTDOWN);
    assert_string_equal(aha_reward_type_name(AHA_REWARD_COUNTDOWN), "countdown");
}

/* Held-out evals judge with the countdown reward when the recipe trains with it, else math. */
static void test_eval_judge_follows_the_recipe(void **state) {
    (void)state;
    AhaRecipe r;
    AhaEvalConfig cfg;
    assert_int_equal(aha_recipe_defaults(&r), 0);
    aha_eval_config_from_recipe(&cfg, &r);
    assert_int_equal(cfg.reward, AHA_REWARD_MATH);
    if (aha_recipe_set(&r, "rewards=[{type: format, weight: 0.2}, {type: countdown}]") != 0)
        fail_msg("%s", aha_error_message());
    aha_eval_config_from_recipe(&cfg, &r);
    assert_int_equal(cfg.reward, AHA_REWARD_COUNTDOWN);
    if (aha_recipe_set(&r, "rewards=[{type: countdown}, {type: math, extract: answer_tag}]") != 0)
        fail_msg("%s", aha_error_message());
    aha_eval_config_from_recipe(&cfg, &r);
    assert_int_equal(cfg.reward, AHA_REWARD_MATH);
    assert_int_equal(cfg.extract, AHA_REWARD_EXTRACT_ANSWER_TAG);
    aha_recipe_free(&r);
}

static void test_cli_scores_a_file(void **state) {
    (void)state;
    const char *bin = getenv("AHA_BIN");
    if (!bin) skip();
    char dir[] = "/tmp/aha-test-reward-countdown-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[1024];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"completion\": \"<answer>55+36-19-7</answer>\", \"nums\": [19, 36, 55, 7], \"target\": 65}\n"
               "{\"completion\": \"<answer>55+36-19</answer>\", \"nums\": [19, 36, 55, 7], \"target\": 65}\n"
               "{\"completion\": \"<answer>1+2</answer>\", \"answer\": \"3\"}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' reward score --reward countdown --in '%s' --jobs 1 >'%s/out.jsonl' 2>'%s/err.txt'",
             bin, path, dir, dir);
    int status = system(cmd);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    out[n] = '\0';
    const char *expected[] = {"\"reward\":1.0", "\"reward\":0.0", "\"reward\":null"};
    char *line = out;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        if (!nl) fail_msg("expected 3 lines: %s", out);
        *nl = '\0';
        if (!strstr(line, expected[i])) fail_msg("line %d: expected %s in %s", i + 1, expected[i], line);
        line = nl + 1;
    }
    /* aha eval takes the countdown judge too, and refuses others with a usage error */
    snprintf(cmd, sizeof cmd, "'%s' eval --reward code --model x --data y 2>'%s/err.txt'", bin, dir);
    status = system(cmd);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    out[n] = '\0';
    if (!strstr(out, "--reward: expected math or countdown, got 'code'")) fail_msg("eval: %s", out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_equations_score_one),
        cmocka_unit_test(test_wrong_equations_score_zero),
        cmocka_unit_test(test_rows_it_cannot_judge),
        cmocka_unit_test(test_generated_answers_score_one),
        cmocka_unit_test(test_recipe_entry),
        cmocka_unit_test(test_eval_judge_follows_the_recipe),
        cmocka_unit_test(test_cli_scores_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
