/* Evaluation (aha eval and the loop's evals): greedy accuracy and mean@k with the math
 * reward over a data set, deterministic for a seed, limits and skipped prompts counted,
 * clear errors for bad arguments and files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/model_io.h"
#include "aha/trainloop.h"
#include "rl/trainer_test_util.h"

#define TINY_DIR "tests/fixtures/rl/tiny"
#define EVAL_DATA "tests/fixtures/rl/eval.jsonl"

static char *tmp;
static char model_dir[8192];
static AhaModel *model;
static AhaTokenizer *tok;

static int setup(void **state) {
    (void)state;
    tmp = tt_tmpdir();
    if (!tmp) return -1;
    AhaModelConfig cfg;
    if (aha_model_config_load(&cfg, TINY_DIR "/config.json") != 0) return -1;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (!m) return -1;
    aha_model_init_random(m, 11, 0.2f);
    AhaModelSource src = {.dtype = AHA_DTYPE_F32, .layout = AHA_EXPERT_LAYOUT_PER_EXPERT};
    snprintf(src.dir, sizeof src.dir, "%s", TINY_DIR);
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    int rc = aha_model_save_dir(m, model_dir, &src, AHA_DTYPE_F32);
    aha_model_free(m);
    if (rc != 0) return -1;
    model = aha_model_load_dir(model_dir, NULL);
    tok = aha_tokenizer_load(model_dir);
    return model && tok ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    aha_model_free(model);
    aha_tokenizer_free(tok);
    tt_rm_rf(tmp);
    free(tmp);
    return 0;
}

static AhaEvalConfig config(void) {
    return (AhaEvalConfig){.template_name = AHA_TEMPLATE_PLAIN, .max_prompt_tokens = 64, .max_new_tokens = 10,
                           .temperature = 1.0f, .top_p = 1.0f, .k = 3, .seed = 5, .threads = 1, .share_prefix = 1};
}

static void test_eval_counts_and_is_deterministic(void **state) {
    (void)state;
    AhaEvalConfig cfg = config();
    AhaEvalResult a, b, c;
    if (aha_eval_file(model, tok, EVAL_DATA, NULL, NULL, &cfg, &a) != 0) fail_msg("%s", aha_error_message());
    assert_int_equal(a.n_prompts, 6);
    assert_int_equal(a.n_skipped, 0);
    assert_int_equal(a.k, 3);
    assert_true(a.accuracy >= 0 && a.accuracy <= 1);
    assert_true(a.mean_at_k >= 0 && a.mean_at_k <= 1);
    assert_true(a.greedy_len >= 1 && a.greedy_len <= 10);
    assert_int_equal(aha_eval_file(model, tok, EVAL_DATA, NULL, NULL, &cfg, &b), 0);
    assert_true(a.accuracy == b.accuracy && a.mean_at_k == b.mean_at_k && a.greedy_len == b.greedy_len);
    /* greedy does not depend on k or the seed; k = 0 is greedy only */
    cfg.k = 0;
    cfg.seed = 99;
    assert_int_equal(aha_eval_file(model, tok, EVAL_DATA, NULL, NULL, &cfg, &c), 0);
    assert_true(c.accuracy == a.accuracy && c.greedy_len == a.greedy_len);
    assert_true(isnan(c.mean_at_k));
    /* limit and skipped prompts ("7+8=" is 4 tokens) */
    cfg = config();
    cfg.limit = 4;
    assert_int_equal(aha_eval_file(model, tok, EVAL_DATA, NULL, NULL, &cfg, &c), 0);
    assert_int_equal(c.n_prompts, 4);
    cfg.max_prompt_tokens = 3;
    assert_int_equal(aha_eval_file(model, tok, EVAL_DATA, NULL, NULL, &cfg, &c), -1);
    assert_non_null(strstr(aha_error_message(), "no prompt to evaluate"));
}

static void test_eval_bad_input(void **state) {
    (void)state;
    AhaEvalConfig cfg = config();
    AhaEvalResult r;
    assert_int_equal(aha_eval_file(model, tok, "tests/fixtures/rl/missing.jsonl", NULL, NULL, &cfg, &r), -1);
    assert_non_null(strstr(aha_error_message(), "missing.jsonl"));
    assert_int_equal(aha_eval_file(model, tok, EVAL_DATA, "problem", NULL, &cfg, &r), -1);
    assert_non_null(strstr(aha_error_message(), "problem"));
    cfg.max_new_tokens = 0;
    assert_int_equal(aha_eval_file(model, tok, EVAL_DATA, NULL, NULL, &cfg, &r), -1);
    assert_non_null(strstr(aha_error_message(), "max_new_tokens"));
}

static void test_eval_command(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    assert_int_equal(tt_system("'%s' eval --help | grep -q mean@k", bin), 0);
    assert_int_equal(tt_system("'%s' eval --data %s 2>/dev/null", bin, EVAL_DATA), 2);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data %s --k -1 2>/dev/null", bin, model_dir, EVAL_DATA), 2);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data %s --template nope 2>/dev/null", bin, model_dir, EVAL_DATA), 2);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data %s --extract nope 2>/dev/null", bin, model_dir, EVAL_DATA), 2);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data %s --template plain --extract answer_tag -k 1 "
                               "--max-new-tokens 4 > /dev/null", bin, model_dir, EVAL_DATA), 0);
    assert_int_equal(tt_system("'%s' eval --model '%s/none' --data %s 2> '%s/err.txt'", bin, tmp, EVAL_DATA, tmp), 1);
    assert_int_equal(tt_system("grep -q '^aha eval: error: .*none' '%s/err.txt'", tmp), 0);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data %s --template plain --k 2 --max-new-tokens 10 "
                               "--threads 1 --json > '%s/out.json'", bin, model_dir, EVAL_DATA, tmp), 0);
    assert_int_equal(tt_system("grep -q '\"n_prompts\": 6, \"skipped\": 0, \"accuracy\": ' '%s/out.json'", tmp), 0);
    assert_int_equal(tt_system("grep -q '\"k\": 2, \"mean_at_k\": 0' '%s/out.json'", tmp), 0);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data %s --template plain -k 0 --limit 2 --max-new-tokens 4 "
                               "> '%s/out.txt'", bin, model_dir, EVAL_DATA, tmp), 0);
    assert_int_equal(tt_system("grep -q '^prompts      2 ' '%s/out.txt' && ! grep -q mean@ '%s/out.txt'", tmp, tmp), 0);
}

/* --model takes a run directory (its newest checkpoint) or a checkpoint directory too. */
static void test_eval_of_a_run(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char run[8300];
    snprintf(run, sizeof run, "%s/run", tmp);
    assert_int_equal(tt_system("'%s' train " TINY_RECIPE " --set run.output_dir='%s' --set run.steps=2 "
                               "--set run.eval_every=0 --set run.checkpoint_every=1 > /dev/null", bin, run), 0);
    const char *args = "--data " EVAL_DATA " --template plain -k 2 --max-new-tokens 6 --threads 1 --json";
    assert_int_equal(tt_system("'%s' eval --model '%s' %s > '%s/a.json' 2> '%s/a.err'", bin, run, args, tmp, tmp), 0);
    assert_int_equal(tt_system("grep -q 'newest checkpoint, step 2' '%s/a.err'", tmp), 0);
    assert_int_equal(tt_system("'%s' eval --model '%s/checkpoints/step-00000002' %s > '%s/b.json'", bin, run, args, tmp), 0);
    assert_int_equal(tt_system("'%s' eval --model '%s/checkpoints/step-00000001/policy' %s > '%s/c.json'", bin, run,
                               args, tmp), 0);
    /* the same model gives the same figures (the time aside) */
    assert_int_equal(tt_system("cut -d, -f1-5 '%s/a.json' > '%s/a.txt' && cut -d, -f1-5 '%s/b.json' > '%s/b.txt' && "
                               "cmp -s '%s/a.txt' '%s/b.txt'", tmp, tmp, tmp, tmp, tmp, tmp), 0);
    /* a run without a complete checkpoint */
    assert_int_equal(tt_system("rm -rf '%s/checkpoints/'step-* && '%s' eval --model '%s' %s 2> '%s/d.err'", run, bin,
                               run, args, tmp), 1);
    assert_int_equal(tt_system("grep -q 'no complete checkpoint' '%s/d.err'", tmp), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_counts_and_is_deterministic),
        cmocka_unit_test(test_eval_bad_input),
        cmocka_unit_test(test_eval_command),
        cmocka_unit_test(test_eval_of_a_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
