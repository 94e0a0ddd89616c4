/* A reward set from a recipe's rewards list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/reward_recipe.h"

static void test_default_recipe_is_one_math_reward(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_defaults(&r), 0);
    AhaRewardSet *set = aha_reward_set_from_recipe(&r, 2);
    if (!set) fail_msg("%s", aha_error_message());
    assert_int_equal(aha_reward_set_count(set), 1);
    assert_int_equal(aha_reward_set_type(set, 0), AHA_REWARD_MATH);
    assert_true(aha_reward_set_weight(set, 0) == 1.0);
    aha_reward_set_free(set);
    aha_recipe_free(&r);
}

static void test_recipe_list_becomes_the_set(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_defaults(&r), 0);
    if (aha_recipe_set(&r, "rollout.max_new_tokens=100") != 0 ||
        aha_recipe_set(&r, "rewards=[{type: math, extract: boxed}, {type: format, name: fmt, "
                           "weight: 0.5, match: search, pattern: 'answer'}, {type: overlong, "
                           "cache_len: 20}]") != 0)
        fail_msg("%s", aha_error_message());
    AhaRewardSet *set = aha_reward_set_from_recipe(&r, 0);
    if (!set) fail_msg("%s", aha_error_message());
    aha_reward_set_error_log(set, NULL);
    assert_int_equal(aha_reward_set_count(set), 3);
    assert_string_equal(aha_reward_set_name(set, 1), "fmt");
    assert_true(aha_reward_set_weight(set, 1) == 0.5);
    AhaRewardSample s = {.completion = "my answer is \\boxed{4}", .row_json = "{\"answer\": \"4\"}",
                         .completion_tokens = 90};
    AhaRewardValue v[3];
    double total;
    assert_int_equal(aha_reward_set_score(set, &s, 1, v, &total), 0);
    assert_true(v[0].score == 1.0);
    assert_true(v[1].score == 1.0); /* search mode found "answer" */
    assert_true(v[2].score == -0.5); /* overlong max_len 0 -> rollout.max_new_tokens 100 */
    assert_true(total == 1.0 + 0.5 - 0.5);
    aha_reward_set_free(set);
    aha_recipe_free(&r);
}

static void test_bad_entry_names_the_entry(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_defaults(&r), 0);
    if (aha_recipe_set(&r, "rewards=[{type: math}, {type: format, name: fmt, pattern: '(unclosed'}]") != 0)
        fail_msg("%s", aha_error_message());
    assert_null(aha_reward_set_from_recipe(&r, 1));
    assert_non_null(strstr(aha_error_message(), "rewards[1] (fmt): pattern"));
    aha_recipe_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_recipe_is_one_math_reward),
        cmocka_unit_test(test_recipe_list_becomes_the_set),
        cmocka_unit_test(test_bad_entry_names_the_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
