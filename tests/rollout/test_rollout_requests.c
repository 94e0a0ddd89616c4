/* Stop rules inside a rollout (EOS ids, stop strings over token text, length, the model's
 * context) and bad requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aha/error.h"
#include "rollout_fixtures.h"

static int run(AhaModel *m, const AhaRolloutRequest *req, const AhaRolloutOptions *opt, Collected *out) {
    memset(out, 0, sizeof *out);
    out->n_prompts = req->n_prompts;
    return aha_rollout_run(m, req, opt, collect, out, NULL);
}

/* Token id -> two bytes: a letter from a 5-letter alphabet, then a digit, so that stop
 * strings find matches across token boundaries. */
static char token_text_table[128][2];
static int token_bytes(void *ctx, int32_t token, const char **bytes, size_t *len) {
    (void)ctx;
    if (token < 0 || token >= 128) return aha_errorf("token %d has no text", (int)token);
    *bytes = token_text_table[token];
    *len = 2;
    return 0;
}

static int no_text(void *ctx, int32_t token, const char **bytes, size_t *len) {
    (void)ctx;
    (void)bytes;
    (void)len;
    return aha_errorf("token %d has no text", (int)token);
}

static void test_eos_stops_at_first_occurrence_and_is_kept(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_QWEN2, 400);
    TestPrompts p;
    make_prompts(&p, 3, m->cfg.vocab_size, 2);
    AhaRolloutRequest req = make_request(&p, 4, 1.0f, 1.0f, 0, 20);
    Collected free_run, eos_run;
    assert_int_equal(run(m, &req, NULL, &free_run), 0);
    const AhaCompletion *ref = &free_run.by_prompt[1]->samples[2];
    assert_int_equal(ref->n_tokens, 20);
    int32_t eos = ref->tokens[6];
    req.params.eos_ids = &eos;
    req.params.n_eos_ids = 1;
    assert_int_equal(run(m, &req, NULL, &eos_run), 0);
    for (int b = 0; b < p.n; b++) {
        for (int s = 0; s < 4; s++) {
            const AhaCompletion *a = &free_run.by_prompt[b]->samples[s];
            const AhaCompletion *c = &eos_run.by_prompt[b]->samples[s];
            int first = -1;
            for (int t = 0; t < a->n_tokens && first < 0; t++)
                if (a->tokens[t] == eos) first = t;
            if (first < 0) {
                assert_int_equal(c->stop, AHA_STOP_LENGTH);
                assert_int_equal(c->n_tokens, 20);
            } else {
                assert_int_equal(c->stop, AHA_STOP_EOS);
                assert_int_equal(c->n_tokens, first + 1);
                assert_int_equal(c->tokens[first], eos);
            }
            /* the prefix is the same tokens with the same log-probs */
            assert_memory_equal(c->tokens, a->tokens, sizeof(int32_t) * (size_t)c->n_tokens);
            assert_memory_equal(c->logprobs, a->logprobs, sizeof(float) * (size_t)c->n_tokens);
        }
    }
    assert_int_equal(eos_run.by_prompt[1]->samples[2].stop, AHA_STOP_EOS);
    collected_free(&free_run);
    collected_free(&eos_run);
    free_prompts(&p);
    aha_model_free(m);
}

static void test_stop_string_across_tokens(void **state) {
    (void)state;
    for (int t = 0; t < 128; t++) {
        token_text_table[t][0] = (char)('a' + t % 5);
        token_text_table[t][1] = (char)('0' + (t / 5) % 10);
    }
    AhaModel *m = tiny_model(ARCH_OLMOE, 401);
    TestPrompts p;
    make_prompts(&p, 2, m->cfg.vocab_size, 3);
    AhaRolloutRequest req = make_request(&p, 3, 1.0f, 1.0f, 0, 16);
    Collected free_run, stop_run;
    assert_int_equal(run(m, &req, NULL, &free_run), 0);
    /* the stop string: the second byte of token 4 and the first of token 5 */
    const AhaCompletion *ref = &free_run.by_prompt[0]->samples[1];
    char stop[3] = {token_text_table[ref->tokens[4]][1], token_text_table[ref->tokens[5]][0], 0};
    const char *stops[] = {"never", stop};
    req.params.stop_strings = stops;
    req.params.n_stop_strings = 2;
    AhaTokenText text = {token_bytes, NULL};
    AhaRolloutOptions opt;
    aha_rollout_options_default(&opt);
    opt.token_text = &text;
    assert_int_equal(run(m, &req, &opt, &stop_run), 0);
    for (int b = 0; b < p.n; b++) {
        for (int s = 0; s < 3; s++) {
            const AhaCompletion *a = &free_run.by_prompt[b]->samples[s];
            const AhaCompletion *c = &stop_run.by_prompt[b]->samples[s];
            char joined[64];
            int expect_len = a->n_tokens, stopped = 0;
            for (int t = 0; t < a->n_tokens && !stopped; t++) {
                memcpy(joined + 2 * t, token_text_table[a->tokens[t]], 2);
                joined[2 * t + 2] = 0;
                if (strstr(joined, stop)) {
                    expect_len = t + 1;
                    stopped = 1;
                }
            }
            assert_int_equal(c->n_tokens, expect_len);
            assert_int_equal(c->stop, stopped ? AHA_STOP_STRING : AHA_STOP_LENGTH);
            assert_memory_equal(c->tokens, a->tokens, sizeof(int32_t) * (size_t)c->n_tokens);
        }
    }
    assert_int_equal(stop_run.by_prompt[0]->samples[1].stop, AHA_STOP_STRING);
    assert_true(stop_run.by_prompt[0]->samples[1].n_tokens <= 6);
    collected_free(&free_run);
    collected_free(&stop_run);
    /* a token the tokenizer cannot render fails the run with its message */
    text.token_bytes = no_text;
    assert_int_equal(run(m, &req, &opt, &stop_run), -1);
    assert_non_null(strstr(aha_error_message(), "text of sampled token"));
    assert_non_null(strstr(aha_error_message(), "has no text"));
    collected_free(&stop_run);
    free_prompts(&p);
    aha_model_free(m);
}

static void test_length_and_context_limit(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_MIXTRAL, 402);
    int32_t prompt[60];
    for (int i = 0; i < 60; i++) prompt[i] = i % m->cfg.vocab_size;
    const int32_t *prompts[2] = {prompt, prompt};
    int lens[2] = {60, 5}; /* context 64: room for 4 new tokens after the first */
    AhaRolloutRequest req;
    memset(&req, 0, sizeof req);
    req.n_prompts = 2;
    req.prompts = prompts;
    req.prompt_lens = lens;
    req.group_size = 2;
    aha_sampling_params_default(&req.params);
    req.params.max_new_tokens = 10;
    Collected got;
    assert_int_equal(run(m, &req, NULL, &got), 0);
    for (int s = 0; s < 2; s++) {
        assert_int_equal(got.by_prompt[0]->samples[s].n_tokens, 4);
        assert_int_equal(got.by_prompt[0]->samples[s].stop, AHA_STOP_LENGTH);
        assert_int_equal(got.by_prompt[1]->samples[s].n_tokens, 10);
        assert_int_equal(got.by_prompt[1]->samples[s].stop, AHA_STOP_LENGTH);
    }
    /* the shorter group finishes first */
    assert_int_equal(got.order[0], 0);
    collected_free(&got);
    aha_model_free(m);
}

static AhaModel *bad_model;
static TestPrompts bad_prompts;

static void expect_bad(AhaRolloutRequest req, const AhaRolloutOptions *opt, const char *needle) {
    Collected got;
    assert_int_equal(run(bad_model, &req, opt, &got), -1);
    if (!strstr(aha_error_message(), needle))
        fail_msg("message '%s' lacks '%s'", aha_error_message(), needle);
    assert_int_equal(got.n_groups, 0);
    /* the worker refuses the same request before starting a thread */
    assert_null(aha_rollout_start(bad_model, &req, opt));
    assert_non_null(strstr(aha_error_message(), needle));
}

static void test_bad_requests_get_clear_errors(void **state) {
    (void)state;
    bad_model = tiny_model(ARCH_QWEN3, 403);
    make_prompts(&bad_prompts, 3, bad_model->cfg.vocab_size, 0);
    AhaRolloutRequest good = make_request(&bad_prompts, 2, 1.0f, 1.0f, 0, 4);
    AhaRolloutRequest r = good;

    int32_t long_prompt[64] = {0};
    const int32_t *long_prompts[1] = {long_prompt};
    int long_len[1] = {64};
    r.n_prompts = 1;
    r.prompts = long_prompts;
    r.prompt_lens = long_len;
    expect_bad(r, NULL, "prompt 0 has 64 tokens, but the model's context (max_position_embeddings) is 64");

    r = good;
    int lens[3] = {bad_prompts.lens[0], 0, bad_prompts.lens[2]};
    r.prompt_lens = lens;
    expect_bad(r, NULL, "prompt 1 is empty");

    r = good;
    r.params.max_new_tokens = 0;
    expect_bad(r, NULL, "max_new_tokens: expected an integer >= 1, got 0");

    r = good;
    r.params.temperature = 0;
    r.params.top_p = 0.9f;
    expect_bad(r, NULL, "temperature 0 means greedy decoding");

    r = good;
    r.group_size = 0;
    expect_bad(r, NULL, "group_size: expected at least 1");

    r = good;
    r.n_prompts = 0;
    expect_bad(r, NULL, "n_prompts: expected at least 1");

    r = good;
    int32_t oov[2] = {3, 61};
    const int32_t *oov_prompts[1] = {oov};
    int oov_len[1] = {2};
    r.n_prompts = 1;
    r.prompts = oov_prompts;
    r.prompt_lens = oov_len;
    expect_bad(r, NULL, "prompt 0, token 1: id 61 is outside the vocabulary of 61");

    r = good;
    const char *stops[] = {"x"};
    r.params.stop_strings = stops;
    r.params.n_stop_strings = 1;
    expect_bad(r, NULL, "stop strings need the tokens' text");

    r = good;
    int32_t eos = 500;
    r.params.eos_ids = &eos;
    r.params.n_eos_ids = 1;
    expect_bad(r, NULL, "eos_ids[0]: token 500 is outside the vocabulary");

    /* the good request still works afterwards */
    Collected got;
    assert_int_equal(run(bad_model, &good, NULL, &got), 0);
    assert_int_equal(got.n_groups, 3);
    collected_free(&got);
    free_prompts(&bad_prompts);
    aha_model_free(bad_model);
}

static int failing_sink(void *ctx, AhaRolloutGroup *group) {
    int *calls = ctx;
    aha_rollout_group_free(group);
    if (++*calls == 2) return aha_errorf("the reward stage is full");
    return 0;
}

static void test_sink_failure_stops_the_run(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_QWEN3, 404);
    TestPrompts p;
    make_prompts(&p, 4, m->cfg.vocab_size, 1);
    AhaRolloutRequest req = make_request(&p, 2, 1.0f, 1.0f, 0, 6);
    int calls = 0;
    assert_int_equal(aha_rollout_run(m, &req, NULL, failing_sink, &calls, NULL), -1);
    assert_int_equal(calls, 2);
    assert_non_null(strstr(aha_error_message(), "the reward stage is full"));
    free_prompts(&p);
    aha_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eos_stops_at_first_occurrence_and_is_kept),
        cmocka_unit_test(test_stop_string_across_tokens),
        cmocka_unit_test(test_length_and_context_limit),
        cmocka_unit_test(test_bad_requests_get_clear_errors),
        cmocka_unit_test(test_sink_failure_stops_the_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
