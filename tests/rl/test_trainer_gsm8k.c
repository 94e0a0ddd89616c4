/* The loop on real data: GSM8K rows as they are, the R1-Zero template, a byte-level BPE
 * tokenizer (the qwen2 tokenizer fixture), a "</answer>" stop string, the math reward on
 * the answer tag plus the format reward, a tiny random MoE of that vocabulary. Skipped when
 * /work/shared/data is absent. */
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

#define GSM8K_TRAIN "/work/shared/data/gsm8k_train.jsonl"
#define GSM8K_TEST "/work/shared/data/gsm8k_test.jsonl"

static char *tmp;

static int setup_tmp(void **state) {
    (void)state;
    tmp = tt_tmpdir();
    return tmp ? 0 : -1;
}

static int teardown_tmp(void **state) { /* runs when a test fails too */
    (void)state;
    tt_rm_rf(tmp);
    free(tmp);
    return 0;
}

static void test_gsm8k_r1_zero(void **state) {
    (void)state;
    if (access(GSM8K_TRAIN, R_OK) != 0 || access(GSM8K_TEST, R_OK) != 0) skip();
    assert_int_equal(tt_system("mkdir '%s/model' && cp tests/fixtures/rl/bpe_config.json '%s/model/config.json' && "
                               "cp tests/fixtures/tokenizer/qwen2/tokenizer.json tests/fixtures/tokenizer/qwen2/tokenizer_config.json "
                               "'%s/model/'", tmp, tmp, tmp), 0);
    char model[8192], run[8192];
    snprintf(model, sizeof model, "model.path=%s/model", tmp);
    snprintf(run, sizeof run, "%s/run", tmp);
    AhaRecipe r;
    int rc = tt_recipe(&r, run, model, "data.train=" GSM8K_TRAIN, "data.eval=" GSM8K_TEST, "data.eval_limit=3",
                       "data.template=r1_zero", "data.max_prompt_tokens=400", "rollout.prompts_per_step=2",
                       "rollout.group_size=3", "rollout.max_new_tokens=12", "rollout.stop=[\"</answer>\"]",
                       "rewards=[{type: math, extract: answer_tag}, {type: format, weight: 0.1}]", "run.steps=2",
                       "run.eval_every=2", "run.checkpoint_every=2", NULL);
    if (rc != 0) fail_msg("%s", aha_error_message());
    AhaTrainOptions o = {0};
    if (aha_train(&r, &o) != 0) fail_msg("%s", aha_error_message());
    aha_recipe_free(&r);
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM steps"), 2);
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM rollouts"), 2 * 2 * 3);
    /* the R1-Zero text around each GSM8K question, the gold answer as the row has it */
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM prompts WHERE text LIKE "
                                        "'A conversation between User and Assistant.%User: %. Assistant:'"), 4);
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM prompts WHERE gold LIKE '%#### %'"), 4);
    /* every sample has both components, the random model earns nothing */
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM rewards WHERE name IN ('math', 'format')"), 24);
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM rewards WHERE score != 0"), 0);
    assert_int_equal((int)tt_query(run, "SELECT count(*) FROM evals WHERE n_prompts = 3 AND accuracy = 0"), 1);
    /* an eval of the checkpoint with aha eval agrees with the loop's greedy accuracy */
    const char *bin = tt_bin();
    if (bin)
        assert_int_equal(tt_system("'%s' eval --model '%s/checkpoints/step-00000002/policy' --data " GSM8K_TEST
                                   " --limit 3 -k 0 --max-new-tokens 12 --max-prompt-tokens 400 --stop '</answer>' "
                                   "--json | grep -q '\"n_prompts\": 3, \"skipped\": 0, \"accuracy\": 0.000000'",
                                   bin, run), 0);
}

static void test_distributed_is_refused(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(tt_recipe(&r, tmp, "distributed.world_size=8", NULL), 0);
    AhaTrainOptions o = {0};
    assert_int_equal(aha_train(&r, &o), -1);
    assert_non_null(strstr(aha_error_message(), "distributed.world_size = 8"));
    aha_recipe_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gsm8k_r1_zero, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_distributed_is_refused, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
