/* Group-relative advantages: hand-computed values for every kind and combine mode, groups
 * without signal, unscored samples, bad input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/grpo.h"
#include "rl/rl_test.h"

static const double one_weight[] = {1.0};

static void test_grpo_and_dr_grpo_hand_computed(void **state) {
    (void)state;
    double r[] = {1, 0, 0, 1}, total[4], a[4];
    AhaGroupStatus st[1];
    AhaAdvantageConfig cfg = {.kind = AHA_GRPO_ADV_GRPO, .combine = AHA_GRPO_SUM_THEN_NORMALIZE, .eps = 0.0};
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 4, 1, r, one_weight, total, a, st, NULL), 0);
    double std = sqrt(1.0 / 3.0); /* unbiased: sum of squares 1, n - 1 = 3 */
    assert_near(a[0], 0.5 / std, 1e-12);
    assert_near(a[1], -0.5 / std, 1e-12);
    assert_int_equal(st[0], AHA_GROUP_OK);
    cfg.kind = AHA_GRPO_ADV_DR_GRPO;
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 4, 1, r, one_weight, total, a, st, NULL), 0);
    assert_near(a[0], 0.5, 1e-15);
    assert_near(a[2], -0.5, 1e-15);
    cfg.kind = AHA_GRPO_ADV_GRPO;
    cfg.eps = 1e-4;
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 4, 1, r, one_weight, total, a, st, NULL), 0);
    assert_near(a[3], 0.5 / (std + 1e-4), 1e-12);
}

static void test_batch_std_and_all_equal_groups(void **state) {
    (void)state;
    double r[] = {1, 0, 1, 1, 0.1, 0.1}, total[6], a[6];
    AhaGroupStatus st[3];
    AhaAdvantageStats stats;
    AhaAdvantageConfig cfg = {.kind = AHA_GRPO_ADV_BATCH_STD, .combine = AHA_GRPO_SUM_THEN_NORMALIZE, .eps = 0.0};
    assert_int_equal(aha_grpo_advantages(&cfg, 3, 2, 1, r, one_weight, total, a, st, &stats), 0);
    /* batch {1,0,1,1,.1,.1}: mean 3.2/6, unbiased std over all six samples */
    double mean = 3.2 / 6, ss = 0;
    for (int i = 0; i < 6; i++) ss += (r[i] - mean) * (r[i] - mean);
    double std = sqrt(ss / 5);
    assert_near(a[0], 0.5 / std, 1e-12);
    assert_near(a[1], -0.5 / std, 1e-12);
    assert_true(a[2] == 0.0 && a[3] == 0.0 && a[4] == 0.0 && a[5] == 0.0);
    assert_int_equal(st[0], AHA_GROUP_OK);
    assert_int_equal(st[1], AHA_GROUP_ALL_EQUAL);
    assert_int_equal(st[2], AHA_GROUP_ALL_EQUAL);
    assert_int_equal(stats.n_groups_ok, 1);
    assert_int_equal(stats.n_groups_all_equal, 2);
    assert_near(stats.max, 0.5 / std, 1e-12);
    assert_near(stats.mean, 0.0, 1e-15);
    /* constant non-representable rewards give exactly 0, not rounding noise over eps */
    double tenth[] = {0.1, 0.1, 0.1};
    cfg.kind = AHA_GRPO_ADV_GRPO;
    cfg.eps = 1e-12;
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 3, 1, tenth, one_weight, total, a, st, NULL), 0);
    assert_true(a[0] == 0.0 && a[1] == 0.0 && a[2] == 0.0);
    assert_int_equal(st[0], AHA_GROUP_ALL_EQUAL);
}

static void test_reward_combine_modes(void **state) {
    (void)state;
    /* two samples, components (math, format) with weights (1, 0.5) */
    double r[] = {1, 0, 0, 1, 0, 0};
    double w[] = {1.0, 0.5};
    double total[3], a[3];
    AhaAdvantageConfig cfg = {.kind = AHA_GRPO_ADV_GRPO, .combine = AHA_GRPO_SUM_THEN_NORMALIZE, .eps = 0.0};
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 3, 2, r, w, total, a, NULL, NULL), 0);
    assert_near(total[0], 1.0, 0);
    assert_near(total[1], 0.5, 0);
    assert_near(total[2], 0.0, 0);
    /* totals 1, .5, 0: mean .5, std .5 */
    assert_near(a[0], 1.0, 1e-12);
    assert_near(a[1], 0.0, 1e-12);
    assert_near(a[2], -1.0, 1e-12);
    cfg.combine = AHA_GRPO_NORMALIZE_THEN_SUM;
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 3, 2, r, w, total, a, NULL, NULL), 0);
    /* each component {1,0,0} normalizes to {2,-1,-1}/sqrt(3) (mean 1/3, std 1/sqrt(3)) */
    double s3 = sqrt(3.0);
    assert_near(a[0], 2 / s3 - 0.5 / s3, 1e-12);
    assert_near(a[1], -1 / s3 + 0.5 * 2 / s3, 1e-12);
    assert_near(a[2], -1 / s3 - 0.5 / s3, 1e-12);
}

static void test_unscored_groups_are_excluded(void **state) {
    (void)state;
    /* group 0 has an unscored math sample; the NaN in the zero-weight component of group 1
     * does not matter */
    double r[] = {1, NAN, 0, 0, 1, 0, 0, NAN};
    double w[] = {1.0, 0.0};
    double total[4], a[4];
    AhaGroupStatus st[2];
    AhaAdvantageStats stats;
    double flip[] = {NAN, 0, 1, 0, 1, 0, 0, 0};
    AhaAdvantageConfig cfg = {.kind = AHA_GRPO_ADV_GRPO, .combine = AHA_GRPO_SUM_THEN_NORMALIZE, .eps = 1e-6};
    assert_int_equal(aha_grpo_advantages(&cfg, 2, 2, 2, flip, w, total, a, st, &stats), 0);
    assert_int_equal(st[0], AHA_GROUP_UNSCORED);
    assert_true(isnan(total[0]) && isnan(total[1]));
    assert_true(a[0] == 0.0 && a[1] == 0.0);
    assert_int_equal(st[1], AHA_GROUP_OK);
    assert_true(a[2] > 0.7 && a[3] < -0.7);
    assert_int_equal(stats.n_groups_unscored, 1);
    assert_int_equal(aha_grpo_advantages(&cfg, 2, 2, 2, r, w, total, a, st, NULL), 0);
    assert_int_equal(st[0], AHA_GROUP_OK);
    assert_int_equal(st[1], AHA_GROUP_OK);
}

static void test_bad_input(void **state) {
    (void)state;
    double r[] = {1, INFINITY}, total[2], a[2];
    AhaGroupStatus st[1];
    AhaAdvantageConfig cfg = {.kind = AHA_GRPO_ADV_GRPO, .combine = AHA_GRPO_SUM_THEN_NORMALIZE, .eps = 1e-6};
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 2, 1, r, one_weight, total, a, st, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "reward 0 of sample 1 is infinite"));
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 0, 1, r, one_weight, total, a, st, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "group_size >= 1"));
    cfg.eps = -1;
    assert_int_equal(aha_grpo_advantages(&cfg, 1, 1, 1, r, one_weight, total, a, st, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "eps"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpo_and_dr_grpo_hand_computed),
        cmocka_unit_test(test_batch_std_and_all_equal_groups),
        cmocka_unit_test(test_reward_combine_modes),
        cmocka_unit_test(test_unscored_groups_are_excluded),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
