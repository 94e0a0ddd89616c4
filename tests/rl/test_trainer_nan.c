/* The NaN/Inf guard: an update whose gradients hold NaN is skipped and logged, the run goes
 * on while fewer than run.max_nan_skips steps in a row had one, then stops with a clear
 * message; weights that turned NaN are never written as a checkpoint. A test hook
 * (AhaTrainOptions.after_backward) poisons the gradients or the weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/safetensors.h"
#include "aha/trainer.h"
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

typedef struct {
    int from, to;      /* poison steps [from, to] */
    int weights;       /* poison a weight instead of a gradient */
    int calls;
} Poison;

static int poison(void *ctx, int step, AhaModel *m) {
    Poison *p = ctx;
    p->calls++;
    if (step < p->from || step > p->to) return 0;
    if (p->weights) m->params.memory[3] = NAN;
    else m->grads.memory[m->grads.count / 2] = (step % 2) ? NAN : INFINITY;
    return 0;
}

static char *run(AhaRecipe *r, Poison *p, int *rc) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    AhaTrainOptions o = {.out = out, .after_backward = poison, .hook_ctx = p};
    *rc = aha_train(r, &o);
    fclose(out);
    return text;
}

static int finite_file(const char *path, const char *name) {
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    if (!f) return -1;
    const AhaSafetensor *t = aha_safetensors_find(f, name);
    float *x = t ? malloc(t->numel * sizeof *x) : NULL;
    int ok = x && aha_safetensor_to_f32(t, x) == 0;
    for (uint64_t i = 0; ok && i < t->numel; i++) ok = isfinite(x[i]);
    free(x);
    aha_safetensors_close(f);
    return ok;
}

static void test_skips_and_continues(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(tt_recipe(&r, tmp, "run.steps=4", "run.max_nan_skips=3", "run.eval_every=0",
                               "run.checkpoint_every=1", "run.keep_checkpoints=10", NULL), 0);
    Poison p = {.from = 1, .to = 2};
    int rc;
    char *out = run(&r, &p, &rc);
    if (rc != 0) fail_msg("%s", aha_error_message());
    aha_recipe_free(&r);
    assert_int_equal(p.calls, 4 * 4); /* mu 2 x minibatches 2 per step */
    assert_non_null(strstr(out, "step 2: 4 update(s) skipped: NaN or Inf in the loss or gradients (1 consecutive"));
    assert_non_null(strstr(out, "step 3: 4 update(s) skipped"));
    assert_null(strstr(out, "step 4: "  "4 update(s) skipped"));
    free(out);
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM steps"), 4);
    assert_int_equal((int)tt_query(tmp, "SELECT nan_skipped FROM steps WHERE step = 1"), 4);
    assert_int_equal((int)tt_query(tmp, "SELECT nan_skipped FROM steps WHERE step = 2"), 4);
    assert_int_equal((int)tt_query(tmp, "SELECT nan_skipped FROM steps WHERE step = 3"), 0);
    assert_true(isnan(tt_query(tmp, "SELECT grad_norm FROM steps WHERE step = 1"))); /* no update made */
    /* skipped steps left the weights alone: the checkpoints after steps 1, 2 and 3 are equal */
    char a[8192], b[8192];
    snprintf(a, sizeof a, "%s/checkpoints/step-00000001/policy/model.safetensors", tmp);
    snprintf(b, sizeof b, "%s/checkpoints/step-00000003/policy/model.safetensors", tmp);
    assert_int_equal(tt_system("cmp -s '%s' '%s'", a, b), 0);
    snprintf(b, sizeof b, "%s/checkpoints/step-00000004/policy/model.safetensors", tmp);
    assert_int_not_equal(tt_system("cmp -s '%s' '%s'", a, b), 0);
    AhaTrainerState st;
    snprintf(a, sizeof a, "%s/checkpoints/step-00000003/state.json", tmp);
    assert_int_equal(aha_trainer_state_load(a, &st), 0);
    assert_int_equal(st.nan_streak, 2);
    assert_int_equal((int)st.optimizer_steps, 4); /* only step 0's updates */
    snprintf(a, sizeof a, "%s/checkpoints/step-00000004/state.json", tmp);
    assert_int_equal(aha_trainer_state_load(a, &st), 0);
    assert_int_equal(st.nan_streak, 0);
}

static void test_stops_after_max_consecutive(void **state) {
    (void)state;
    AhaRecipe r;
    char log[8300];
    snprintf(log, sizeof log, "run.log_file=%s/train.log", tmp);
    assert_int_equal(tt_recipe(&r, tmp, "run.steps=6", "run.max_nan_skips=2", "run.eval_every=0",
                               "run.checkpoint_every=1", "run.keep_checkpoints=10", log, NULL), 0);
    Poison p = {.from = 1, .to = 100};
    int rc;
    char *out = run(&r, &p, &rc);
    aha_recipe_free(&r);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(aha_error_message(), "stopped after 2 consecutive steps with NaN or Inf"));
    assert_non_null(strstr(aha_error_message(), "run.max_nan_skips = 2"));
    free(out);
    assert_int_equal(tt_system("grep -q '^aha train: error: stopped after 2 consecutive steps' '%s/train.log'", tmp), 0);
    /* steps 0..2 recorded; no checkpoint of the step that stopped the run */
    assert_int_equal((int)tt_query(tmp, "SELECT count(*) FROM steps"), 3);
    char path[8192];
    snprintf(path, sizeof path, "%s/checkpoints/step-00000002/policy/model.safetensors", tmp);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(finite_file(path, "model.embed_tokens.weight"), 1);
    snprintf(path, sizeof path, "%s/checkpoints/step-00000003", tmp);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_poisoned_weights_are_never_checkpointed(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(tt_recipe(&r, tmp, "run.steps=3", "run.eval_every=0", "run.checkpoint_every=1", NULL), 0);
    Poison p = {.from = 1, .to = 1, .weights = 1};
    int rc;
    char *out = run(&r, &p, &rc);
    aha_recipe_free(&r);
    free(out);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(aha_error_message(), "NaN or Inf; not written"));
    char path[8192];
    snprintf(path, sizeof path, "%s/checkpoints/step-00000001/state.json", tmp);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/checkpoints/step-00000002", tmp);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/checkpoints/.tmp-step-00000002", tmp);
    assert_int_not_equal(access(path, F_OK), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skips_and_continues, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_stops_after_max_consecutive, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_poisoned_weights_are_never_checkpointed, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
