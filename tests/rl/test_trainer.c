/* The GRPO loop on a tiny random MoE: a short run fills the store (every metric the loop
 * measures, every rollout, evals, checkpoints), the first minibatch is exactly on-policy,
 * dynamic sampling drops zero-variance groups, aha inspect / report read the run, bad
 * input is a clear error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/trainer.h"
#include "aha/trainloop.h"
#include "rl/rl_test.h"
#include "rl/trainer_test_util.h"

static char *tmp;          /* per test */
static char *short_run;    /* shared by the tests that read a finished run */

static int setup_short_run(void **state) {
    (void)state;
    short_run = tt_tmpdir();
    AhaRecipe r;
    if (!short_run || tt_recipe(&r, short_run, "run.steps=4", "run.eval_every=2", "run.checkpoint_every=1",
                                "run.keep_checkpoints=2", NULL) != 0) {
        fprintf(stderr, "%s\n", aha_error_message());
        return -1;
    }
    char log[4200];
    snprintf(log, sizeof log, "%s/train.log", short_run);
    free(r.run.log_file);
    r.run.log_file = strdup(log);
    FILE *out = fopen("/dev/null", "w");
    AhaTrainOptions o = {.out = out};
    int rc = aha_train(&r, &o);
    if (rc != 0) fprintf(stderr, "train: %s\n", aha_error_message());
    fclose(out);
    aha_recipe_free(&r);
    return rc;
}

static int teardown_short_run(void **state) {
    (void)state;
    tt_rm_rf(short_run);
    free(short_run);
    return 0;
}

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

static double q(const char *sql) { return tt_query(short_run, sql); }

static void test_store_is_filled(void **state) {
    (void)state;
    /* 4 steps of 4 prompts x 4 samples, two reward components each */
    assert_int_equal((int)q("SELECT count(*) FROM steps"), 4);
    assert_int_equal((int)q("SELECT count(*) FROM rollouts"), 4 * 16);
    assert_int_equal((int)q("SELECT count(*) FROM rewards"), 4 * 16 * 2);
    assert_int_equal((int)q("SELECT count(*) FROM step_rewards"), 4 * 2);
    assert_int_equal((int)q("SELECT count(*) FROM evals"), 2);
    assert_int_equal((int)q("SELECT min(step) FROM evals"), 1);
    assert_int_equal((int)q("SELECT k FROM evals LIMIT 1"), 2);
    assert_int_equal((int)q("SELECT n_prompts FROM evals LIMIT 1"), 6);
    /* every column the loop measures is there on every step (beta > 0: KL too) */
    int n;
    const AhaStepColumn *c = aha_step_columns(&n);
    for (int i = 0; i < n; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM steps WHERE %s IS NULL", c[i].name);
        int nulls = (int)q(sql);
        if (strcmp(c[i].name, "t_eval") == 0) assert_int_equal(nulls, 2); /* eval every 2 steps */
        else if (nulls != 0) fail_msg("column %s is NULL on %d steps", c[i].name, nulls);
    }
    assert_true(q("SELECT min(lr) FROM steps") > 0);
    assert_true(q("SELECT min(grad_norm) FROM steps") > 0);
    assert_true(q("SELECT min(kl) FROM steps") >= 0);
    assert_true(q("SELECT max(think_frac) FROM steps") <= 1.0);
    assert_int_equal((int)q("SELECT sum(nan_skipped) FROM steps"), 0);
    /* the steps' length stats agree with the rollouts */
    assert_near(q("SELECT len_mean FROM steps WHERE step = 2"), q("SELECT avg(n_tokens) FROM rollouts WHERE step = 2"), 1e-9);
    assert_near(q("SELECT think_frac FROM steps WHERE step = 3"),
                q("SELECT avg(instr(completion, '<think>') > 0) FROM rollouts WHERE step = 3"), 1e-9);
    assert_near(q("SELECT frac_truncated FROM steps WHERE step = 1"),
                q("SELECT avg(stop_reason = 'length') FROM rollouts WHERE step = 1"), 1e-9);
    assert_near(q("SELECT reward_mean FROM steps WHERE step = 0"), q("SELECT avg(reward) FROM rollouts WHERE step = 0"), 1e-9);
    /* the weighted total is math + length, and advantages sum to ~0 in each kept group */
    assert_near(q("SELECT max(abs(r.reward - (SELECT sum(score) FROM rewards w WHERE w.rollout_id = r.id)))"
                  " FROM rollouts r"), 0, 1e-9);
    assert_near(q("SELECT max(abs(s)) FROM (SELECT sum(advantage) AS s FROM rollouts GROUP BY step, prompt_index)"), 0, 1e-6);
    assert_int_equal((int)q("SELECT count(*) FROM prompts WHERE gold IS NULL"), 0);
}

static void test_checkpoints_and_files(void **state) {
    (void)state;
    char path[4400];
    const char *present[] = {"recipe.yaml", "train.log", "checkpoints/step-00000004/state.json",
                             "checkpoints/step-00000004/policy/config.json",
                             "checkpoints/step-00000004/policy/model.safetensors",
                             "checkpoints/step-00000004/policy/tokenizer.json",
                             "checkpoints/step-00000004/optimizer.safetensors",
                             "checkpoints/step-00000004/reference.safetensors",
                             "checkpoints/step-00000003/state.json"};
    for (size_t i = 0; i < sizeof present / sizeof *present; i++) {
        snprintf(path, sizeof path, "%s/%s", short_run, present[i]);
        if (access(path, F_OK) != 0) fail_msg("missing %s", path);
    }
    snprintf(path, sizeof path, "%s/checkpoints/step-00000002", short_run); /* keep_checkpoints 2 */
    assert_int_not_equal(access(path, F_OK), 0);
    AhaTrainerState st;
    snprintf(path, sizeof path, "%s/checkpoints/step-00000004/state.json", short_run);
    assert_int_equal(aha_trainer_state_load(path, &st), 0);
    assert_int_equal(st.step, 4);
    assert_int_equal(st.seed, 7);
    /* mu 2 x minibatches 2 = 4 AdamW steps per GRPO step; 16 prompts of 24 rows drawn */
    assert_int_equal((int)st.optimizer_steps, 16);
    assert_int_equal((int)st.data_epoch, 0);
    assert_int_equal((int)st.data_position, 16);
    assert_int_equal(st.ref_step, 3); /* ref_refresh_steps 3 */
    /* the log file has one progress line per step */
    snprintf(path, sizeof path, "%s/train.log", short_run);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int lines = 0, headers = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "step ", 5) == 0 && strstr(line, "reward") && strstr(line, "eta")) lines++;
        if (strstr(line, "aha train: ") && strstr(line, "24 training prompts") && strstr(line, "starting at step 1 of 4"))
            headers++;
    }
    fclose(f);
    assert_int_equal(lines, 4);
    assert_int_equal(headers, 1);
}

/* mu = 1, one minibatch: the update's log-probs are the sampler's, bit for bit. */
static void test_on_policy_ratio_is_one(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(tt_recipe(&r, tmp, "run.steps=2", "algorithm.mu=1", "algorithm.minibatches=1",
                               "optim.grad_accum=3", "run.eval_every=0", "run.checkpoint_every=0", NULL), 0);
    AhaTrainOptions o = {0};
    if (aha_train(&r, &o) != 0) fail_msg("%s", aha_error_message());
    aha_recipe_free(&r);
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM steps WHERE ratio_min = 1 AND ratio_max = 1"), 2);
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM steps WHERE clip_low = 0 AND clip_high = 0"), 2);
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM evals"), 0);
}

/* A random model never answers right: with the math reward alone every group is all-equal,
 * dynamic sampling drops each and resamples up to max_resample_rounds, nothing is trained. */
static void test_dynamic_sampling_drops_groups(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(tt_recipe(&r, tmp, "run.steps=1", "rewards=[{type: math}]", "algorithm.dynamic_sampling=true",
                               "algorithm.max_resample_rounds=2", "run.eval_every=0", NULL), 0);
    AhaTrainOptions o = {0};
    if (aha_train(&r, &o) != 0) fail_msg("%s", aha_error_message());
    aha_recipe_free(&r);
    assert_int_equal((int)tt_query(tmp, "SELECT groups_dropped FROM steps"), 12);
    assert_int_equal((int)tt_query(tmp, "SELECT resample_rounds FROM steps"), 2);
    assert_int_equal((int)tt_query(tmp, "SELECT groups_all_equal FROM steps"), 12);
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM rollouts"), 12 * 4);
    assert_int_equal((int)tt_query(tmp, "SELECT count(DISTINCT prompt_index) FROM rollouts"), 12);
    assert_true(isnan(tt_query(tmp, "SELECT loss FROM steps")));
    assert_int_equal((int)tt_query(tmp, "SELECT train_tokens FROM steps"), 0);
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM rollouts WHERE advantage != 0"), 0);
}

/* Sampler threads, reward workers and prefix sharing change how and when groups arrive,
 * never what is recorded. */
static void test_record_independent_of_rollout_threads(void **state) {
    (void)state;
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    AhaRecipe r;
    AhaTrainOptions o = {0};
    assert_int_equal(tt_recipe(&r, a, "run.steps=3", "rollout.threads=1", "rollout.share_prefix=true", NULL), 0);
    if (aha_train(&r, &o) != 0) fail_msg("%s", aha_error_message());
    aha_recipe_free(&r);
    assert_int_equal(tt_recipe(&r, b, "run.steps=3", "rollout.threads=2", "rollout.share_prefix=false", NULL), 0);
    if (aha_train(&r, &o) != 0) fail_msg("%s", aha_error_message());
    aha_recipe_free(&r);
    char *da = tt_dump_run(a), *db = tt_dump_run(b);
    assert_non_null(da);
    assert_non_null(db);
    assert_true(tt_same_dump(da, db));
    free(da);
    free(db);
}

static void test_refuses_existing_run_and_bad_dirs(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(tt_recipe(&r, short_run, NULL), 0);
    AhaTrainOptions o = {0};
    assert_int_equal(aha_train(&r, &o), -1);
    assert_non_null(strstr(aha_error_message(), "already holds a run"));
    assert_non_null(strstr(aha_error_message(), "--resume"));
    aha_recipe_free(&r);
    assert_int_equal(aha_train_resume(tmp, &o), -1); /* an empty directory */
    assert_non_null(strstr(aha_error_message(), "no recipe.yaml"));
    /* a recipe.yaml that is not one */
    char path[4400];
    snprintf(path, sizeof path, "%s/recipe.yaml", tmp);
    FILE *f = fopen(path, "w");
    fputs("optim: {lr: -1}\n", f);
    fclose(f);
    assert_int_equal(aha_train_resume(tmp, &o), -1);
    assert_non_null(strstr(aha_error_message(), "resuming"));
}

static void test_bad_data_is_a_clear_error(void **state) {
    (void)state;
    AhaRecipe r;
    char out[4300];
    snprintf(out, sizeof out, "%s/run", tmp);
    /* no prompt fits in 2 tokens */
    assert_int_equal(tt_recipe(&r, out, "data.max_prompt_tokens=2", NULL), 0);
    AhaTrainOptions o = {0};
    assert_int_equal(aha_train(&r, &o), -1);
    assert_non_null(strstr(aha_error_message(), "max_prompt_tokens"));
    aha_recipe_free(&r);
    /* a data row without the answer field */
    char data[4400];
    snprintf(data, sizeof data, "%s/bad.jsonl", tmp);
    FILE *f = fopen(data, "w");
    fputs("{\"question\": \"1+1=\", \"answer\": \"2\"}\n{\"question\": \"2+2=\"}\n", f);
    fclose(f);
    char set[4500];
    snprintf(set, sizeof set, "data.train=%s", data);
    snprintf(out, sizeof out, "%s/run2", tmp);
    assert_int_equal(tt_recipe(&r, out, set, NULL), 0);
    assert_int_equal(aha_train(&r, &o), -1);
    assert_non_null(strstr(aha_error_message(), "bad.jsonl:2"));
    aha_recipe_free(&r);
    /* a tokenizer that does not fit the model's vocabulary */
    char model[4400];
    snprintf(model, sizeof model, "%s/model", tmp);
    assert_int_equal(tt_system("mkdir -p '%s' && cp tests/fixtures/rl/tiny/* '%s' && "
                               "sed -i 's/\"vocab_size\": 22/\"vocab_size\": 10/' '%s/config.json'",
                               model, model, model), 0);
    snprintf(set, sizeof set, "model.path=%s", model);
    snprintf(out, sizeof out, "%s/run3", tmp);
    assert_int_equal(tt_recipe(&r, out, set, NULL), 0);
    assert_int_equal(aha_train(&r, &o), -1);
    assert_non_null(strstr(aha_error_message(), "vocab_size"));
    aha_recipe_free(&r);
    /* nothing was recorded for the failed runs */
    snprintf(out, sizeof out, "%s/run/run.db", tmp);
    assert_int_not_equal(access(out, F_OK), 0);
}

static void test_inspect_and_report_commands(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char html[4400];
    snprintf(html, sizeof html, "%s/report.html", tmp);
    assert_int_equal(tt_system("'%s' inspect '%s' steps > '%s/steps.txt'", bin, short_run, tmp), 0);
    assert_int_equal(tt_system("grep -q reward_mean '%s/steps.txt'", tmp), 0);
    assert_int_equal(tt_system("'%s' inspect '%s' best --step 2 > /dev/null", bin, short_run), 0);
    assert_int_equal(tt_system("'%s' inspect '%s' evals > '%s/evals.txt'", bin, short_run, tmp), 0);
    assert_int_equal(tt_system("grep -q mean_at_k '%s/evals.txt'", tmp), 0);
    assert_int_equal(tt_system("'%s' report '%s' -o '%s'", bin, short_run, html), 0);
    assert_int_equal(tt_system("grep -q '<svg' '%s' && grep -q 'share of completions with &lt;think&gt;' '%s'",
                               html, html), 0);
}

static void test_train_command(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    assert_int_equal(tt_system("'%s' train --help | grep -q -- --resume", bin), 0);
    assert_int_equal(tt_system("'%s' train --resume '%s' --dry-run 2>/dev/null", bin, tmp), 2);
    assert_int_equal(tt_system("'%s' train --resume '%s/none' 2> '%s/err.txt'", bin, tmp, tmp), 1);
    assert_int_equal(tt_system("grep -q 'aha train: error: .*recipe.yaml' '%s/err.txt'", tmp), 0);
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s/cli' --set run.steps=1 "
                               "--set run.eval_every=0 > '%s/out.txt'", bin, TINY_RECIPE, tmp, tmp), 0);
    assert_int_equal(tt_system("grep -q '^step 1/1  eta' '%s/out.txt'", tmp), 0);
    assert_int_equal(tt_system("grep -q '^aha train: done (1 steps, .*checkpoints/step-00000001/policy' '%s/out.txt'",
                               tmp), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_is_filled, NULL, NULL),
        cmocka_unit_test_setup_teardown(test_checkpoints_and_files, NULL, NULL),
        cmocka_unit_test_setup_teardown(test_on_policy_ratio_is_one, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_dynamic_sampling_drops_groups, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_record_independent_of_rollout_threads, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_refuses_existing_run_and_bad_dirs, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_bad_data_is_a_clear_error, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_inspect_and_report_commands, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_train_command, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, setup_short_run, teardown_short_run);
}
