/* Every algorithm switch the loop reads, two steps each on the tiny model: the run
 * finishes with finite losses, and each switch shows in the record where it should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/trainloop.h"
#include "rl/trainer_test_util.h"

static char *tmp;

static int setup_tmp(void **state) {
    (void)state;
    tmp = tt_tmpdir();
    return tmp ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    tt_rm_rf(tmp);
    free(tmp);
    return 0;
}

/* Runs two steps with the given overrides (NULL-ended) into tmp/name. */
static void run(const char *name, char *dir, size_t cap, ...) {
    snprintf(dir, cap, "%s/%s", tmp, name);
    const char *sets[16];
    int n = 0;
    sets[n++] = "run.steps=2";
    sets[n++] = "run.eval_every=0";
    va_list ap;
    va_start(ap, cap);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && n < 15) sets[n++] = s;
    va_end(ap);
    char out[8400];
    snprintf(out, sizeof out, "run.output_dir=%s", dir);
    sets[n++] = out;
    AhaRecipe r;
    if (aha_recipe_load(TINY_RECIPE, sets, n, &r) != 0) fail_msg("%s: %s", name, aha_error_message());
    AhaTrainOptions o = {0};
    if (aha_train(&r, &o) != 0) fail_msg("%s: %s", name, aha_error_message());
    aha_recipe_free(&r);
    assert_true(tt_query(dir, "SELECT count(*) FROM steps") >= 2);
}

static void test_no_reference_when_beta_is_zero(void **state) {
    (void)state;
    char dir[8300], path[8400], log[8400];
    snprintf(log, sizeof log, "run.log_file=%s/beta0/train.log", tmp); /* inside the new run dir */
    run("beta0", dir, sizeof dir, "algorithm.beta=0", log, NULL);
    snprintf(path, sizeof path, "%s/train.log", dir);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps WHERE kl IS NULL AND kl_loss IS NULL"), 2);
    /* loss = policy + KL loss summed per minibatch, policy_loss summed per micro-batch: equal
     * up to the order of the additions. */
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps WHERE t_ref = 0 AND "
                                       "abs(loss - policy_loss) <= 1e-12 * abs(loss)"), 2);
    snprintf(path, sizeof path, "%s/checkpoints/step-00000002/reference.safetensors", dir);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_loss_variants_run(void **state) {
    (void)state;
    static const char *const variants[][3] = {
        {"algorithm.ratio=sequence", "algorithm.eps_low=0.0003", "algorithm.eps_high=0.0004"},
        {"algorithm.loss_agg=seq_mean_token_mean", "algorithm.kl_estimator=k1", NULL},
        {"algorithm.loss_agg=seq_mean_token_sum_norm", "algorithm.loss_norm_len=20", "algorithm.kl_estimator=k2"},
        {"algorithm.advantage=dr_grpo", "algorithm.dual_clip=3", NULL},
        {"algorithm.advantage=batch_std", "algorithm.reward_combine=normalize_then_sum", NULL},
        {"optim.schedule=constant", "optim.warmup_steps=0", "optim.grad_clip=0"},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char name[16], dir[8300];
        snprintf(name, sizeof name, "v%zu", i);
        run(name, dir, sizeof dir, variants[i][0], variants[i][1], variants[i][2], NULL);
        if ((int)tt_query(dir, "SELECT count(*) FROM steps WHERE abs(loss) < 1e30 AND grad_norm > 0") != 2)
            fail_msg("variant %zu (%s): the losses or gradient norms are not finite", i, variants[i][0]);
    }
}

/* Truncated completions are left out of the update, and counted. */
static void test_mask_truncated(void **state) {
    (void)state;
    char a[8300], b[8300];
    run("nomask", a, sizeof a, "rollout.max_new_tokens=4", NULL);
    run("mask", b, sizeof b, "rollout.max_new_tokens=4", "algorithm.mask_truncated=true", NULL);
    /* same step 0 (same weights, same samples), fewer training tokens when masking */
    double trunc = tt_query(a, "SELECT frac_truncated FROM steps WHERE step = 0");
    assert_true(trunc > 0);
    assert_true(tt_query(b, "SELECT train_tokens FROM steps WHERE step = 0") <
                tt_query(a, "SELECT train_tokens FROM steps WHERE step = 0"));
    assert_true(tt_query(a, "SELECT reward_mean FROM steps WHERE step = 0") ==
                tt_query(b, "SELECT reward_mean FROM steps WHERE step = 0"));
}

/* lr follows the schedule: warm-up of 3 optimizer steps, then constant. */
static void test_warmup_schedule(void **state) {
    (void)state;
    char dir[8300];
    run("warmup", dir, sizeof dir, "algorithm.mu=1", "algorithm.minibatches=1", "optim.warmup_steps=3",
        "optim.schedule=constant", "optim.lr=0.003", NULL);
    if (fabs(tt_query(dir, "SELECT lr FROM steps WHERE step = 0") - 0.003 * 1 / 3) > 1e-12 ||
        fabs(tt_query(dir, "SELECT lr FROM steps WHERE step = 1") - 0.003 * 2 / 3) > 1e-12)
        fail_msg("lr %g, %g: expected %g, %g", tt_query(dir, "SELECT lr FROM steps WHERE step = 0"),
                 tt_query(dir, "SELECT lr FROM steps WHERE step = 1"), 0.001, 0.002);
}

/* A row the math reward cannot judge (empty gold) makes its group unscored: recorded with
 * no total, left out of the update, counted. */
static void test_unscored_groups_are_left_out(void **state) {
    (void)state;
    char data[8300], set[8400], dir[8300];
    snprintf(data, sizeof data, "%s/unscored.jsonl", tmp);
    FILE *f = fopen(data, "w");
    assert_non_null(f);
    fputs("{\"question\": \"1+2=\", \"answer\": \"\"}\n{\"question\": \"3+4=\", \"answer\": \"7\"}\n", f);
    fclose(f);
    snprintf(set, sizeof set, "data.train=%s", data);
    run("unscored", dir, sizeof dir, set, "rollout.prompts_per_step=2", "data.shuffle=false", NULL);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps WHERE groups_unscored = 1"), 2);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM rollouts WHERE prompt_id = 0 AND reward IS NULL"
                                        " AND advantage = 0"), 8);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM rollouts WHERE prompt_id = 1 AND reward IS NOT NULL"), 8);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM rewards WHERE name = 'math' AND score IS NULL"
                                        " AND reason LIKE '%empty%'"), 8);
    /* only the scored group's prompt + completion tokens went through training (x2 passes) */
    double trained = tt_query(dir, "SELECT train_tokens FROM steps WHERE step = 0");
    double expect = tt_query(dir, "SELECT 2 * sum(n_tokens + 4) FROM rollouts WHERE step = 0 AND prompt_id = 1");
    assert_true(trained == expect);
}

/* With one update per step, the KL is exactly 0 on the steps that begin with a reference
 * refresh (the reference is the policy then), and positive on the others. */
static void test_reference_refresh(void **state) {
    (void)state;
    char dir[8300];
    run("refresh", dir, sizeof dir, "run.steps=4", "algorithm.mu=1", "algorithm.minibatches=1",
        "algorithm.ref_refresh_steps=2", "algorithm.beta=0.1", NULL);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps"), 4);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps WHERE step IN (0, 2) AND kl = 0 AND kl_loss = 0"), 2);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps WHERE step IN (1, 3) AND kl > 0"), 2);
}

/* With data.open_think the prompt ends in "<think>": think_frac counts closed blocks. */
static void test_think_share_with_open_think(void **state) {
    (void)state;
    char dir[8300];
    run("open_think", dir, sizeof dir, "data.open_think=true", NULL);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM prompts WHERE text LIKE '%<think>'"),
                     (int)tt_query(dir, "SELECT count(*) FROM prompts"));
    for (int step = 0; step < 2; step++) {
        char sql[256], want[256];
        snprintf(sql, sizeof sql, "SELECT think_frac FROM steps WHERE step = %d", step);
        snprintf(want, sizeof want, "SELECT avg(instr(completion, '</think>') > 0) FROM rollouts WHERE step = %d", step);
        assert_true(tt_query(dir, sql) == tt_query(dir, want));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_reference_when_beta_is_zero, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_loss_variants_run, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_mask_truncated, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_warmup_schedule, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_unscored_groups_are_left_out, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_reference_refresh, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_think_share_with_open_think, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
