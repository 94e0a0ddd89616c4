/* The rollout worker: groups arrive through the queue as they finish, equal to the
 * synchronous run; early join, failures and statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aha/error.h"
#include "rollout_fixtures.h"

static void test_worker_delivers_every_group_once(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_QWEN3, 500);
    TestPrompts p;
    make_prompts(&p, 7, m->cfg.vocab_size, 4);
    AhaRolloutRequest req = make_request(&p, 3, 0.9f, 1.0f, 20, 9);
    Collected sync;
    memset(&sync, 0, sizeof sync);
    sync.n_prompts = p.n;
    AhaRolloutStats sync_stats;
    assert_int_equal(aha_rollout_run(m, &req, NULL, collect, &sync, &sync_stats), 0);

    /* the worker copies the request: the caller's arrays may change after start */
    TestPrompts copy;
    make_prompts(&copy, 7, m->cfg.vocab_size, 4);
    AhaRolloutRequest req_copy = make_request(&copy, 3, 0.9f, 1.0f, 20, 9);
    AhaRolloutWorker *w = aha_rollout_start(m, &req_copy, NULL);
    assert_non_null(w);
    free_prompts(&copy);
    memset(&req_copy, 0, sizeof req_copy);

    Collected got;
    memset(&got, 0, sizeof got);
    got.n_prompts = p.n;
    AhaRolloutGroup *group;
    int rc;
    while ((rc = aha_rollout_next(w, &group)) == 1) assert_int_equal(collect(&got, group), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(aha_rollout_next(w, &group), 0); /* stays finished */
    assert_null(group);
    AhaRolloutStats stats;
    assert_int_equal(aha_rollout_join(w, &stats), 0);
    assert_int_equal(got.n_groups, p.n);
    for (int i = 0; i < p.n; i++) {
        assert_int_equal(got.order[i], sync.order[i]);
        for (int s = 0; s < 3; s++)
            assert_true(same_completion(&got.by_prompt[i]->samples[s], &sync.by_prompt[i]->samples[s]));
    }
    int64_t generated = 0;
    for (int i = 0; i < p.n; i++)
        for (int s = 0; s < 3; s++) generated += got.by_prompt[i]->samples[s].n_tokens;
    assert_true(stats.generated_tokens == generated);
    assert_true(sync_stats.generated_tokens == generated);
    int64_t prompt_tokens = 0;
    for (int i = 0; i < p.n; i++) prompt_tokens += p.lens[i];
    assert_true(stats.prompt_tokens == prompt_tokens); /* prefix sharing: once per group */
    assert_true(stats.decode_steps == 8);              /* 9 tokens: 1 from prefill + 8 steps */
    collected_free(&got);
    collected_free(&sync);
    free_prompts(&p);
    aha_model_free(m);
}

static void test_early_join_frees_everything(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_QWEN2, 501);
    TestPrompts p;
    make_prompts(&p, 8, m->cfg.vocab_size, 6);
    AhaRolloutRequest req = make_request(&p, 4, 1.0f, 1.0f, 0, 30);
    AhaRolloutWorker *w = aha_rollout_start(m, &req, NULL);
    assert_non_null(w);
    AhaRolloutGroup *group;
    assert_int_equal(aha_rollout_next(w, &group), 1);
    aha_rollout_group_free(group);
    assert_int_equal(aha_rollout_join(w, NULL), 0); /* ASan checks that nothing leaks */
    /* join right after start, nothing taken */
    w = aha_rollout_start(m, &req, NULL);
    assert_non_null(w);
    assert_int_equal(aha_rollout_join(w, NULL), 0);
    free_prompts(&p);
    aha_model_free(m);
}

static int failing_text(void *ctx, int32_t token, const char **bytes, size_t *len) {
    (void)ctx;
    (void)bytes;
    (void)len;
    return aha_errorf("token %d: no such token in the tokenizer", (int)token);
}

static void test_sampler_failure_reaches_the_consumer(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_OLMOE, 502);
    TestPrompts p;
    make_prompts(&p, 2, m->cfg.vocab_size, 7);
    AhaRolloutRequest req = make_request(&p, 2, 1.0f, 1.0f, 0, 5);
    const char *stops[] = {"zz"};
    req.params.stop_strings = stops;
    req.params.n_stop_strings = 1;
    AhaTokenText text = {failing_text, NULL};
    AhaRolloutOptions opt;
    aha_rollout_options_default(&opt);
    opt.token_text = &text;
    AhaRolloutWorker *w = aha_rollout_start(m, &req, &opt);
    assert_non_null(w);
    AhaRolloutGroup *group;
    assert_int_equal(aha_rollout_next(w, &group), -1);
    assert_null(group);
    assert_non_null(strstr(aha_error_message(), "no such token in the tokenizer"));
    assert_int_equal(aha_rollout_join(w, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "no such token in the tokenizer"));
    free_prompts(&p);
    aha_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_delivers_every_group_once),
        cmocka_unit_test(test_early_join_frees_everything),
        cmocka_unit_test(test_sampler_failure_reaches_the_consumer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
