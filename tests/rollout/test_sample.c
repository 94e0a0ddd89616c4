#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/sampler.h"
#include "rollout/sample.h"

static double reference_logprob(const float *logits, int vocab, double t, int token) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < vocab; i++) max = fmax(max, logits[i] / t);
    for (int i = 0; i < vocab; i++) sum += exp(logits[i] / t - max);
    return logits[token] / t - max - log(sum);
}

static AhaSamplingParams params_with(float t, float top_p, int top_k) {
    AhaSamplingParams p;
    aha_sampling_params_default(&p);
    p.temperature = t;
    p.top_p = top_p;
    p.top_k = top_k;
    return p;
}

static void test_greedy_picks_lowest_argmax_and_records_t1_logprob(void **state) {
    (void)state;
    const float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f};
    AhaTokenWeight scratch[6];
    AhaSamplingParams p = params_with(0.0f, 1.0f, 0);
    float lp;
    for (double u = 0.0; u < 1.0; u += 0.25) {
        assert_int_equal(aha_sample_logits(logits, 6, &p, u, scratch, &lp), 1);
        assert_true(fabs(lp - reference_logprob(logits, 6, 1.0, 1)) < 1e-6);
    }
}

static void test_logprob_is_over_full_vocabulary(void **state) {
    (void)state;
    const float logits[8] = {3.0f, 2.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f};
    AhaTokenWeight scratch[8];
    AhaSamplingParams p = params_with(0.7f, 0.6f, 2);
    for (int i = 0; i < 50; i++) {
        float lp;
        int32_t token = aha_sample_logits(logits, 8, &p, i / 50.0, scratch, &lp);
        assert_true(token == 0 || token == 1);
        assert_true(fabs(lp - reference_logprob(logits, 8, 0.7, token)) < 1e-6);
        assert_true(fabs(aha_token_logprob(logits, 8, 0.7f, token) - lp) < 1e-7);
    }
}

/* Sweeping u over a fine grid reproduces the sampling distribution to within 1/grid. */
static void sweep(const float *logits, int vocab, const AhaSamplingParams *p, double *freq) {
    const int grid = 100000;
    AhaTokenWeight *scratch = malloc(sizeof *scratch * (size_t)vocab);
    memset(freq, 0, sizeof *freq * (size_t)vocab);
    for (int i = 0; i < grid; i++) {
        float lp;
        freq[aha_sample_logits(logits, vocab, p, (i + 0.5) / grid, scratch, &lp)] += 1.0 / grid;
    }
    free(scratch);
}

static void test_untruncated_sampling_follows_softmax(void **state) {
    (void)state;
    const float logits[5] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f};
    double freq[5];
    AhaSamplingParams p = params_with(1.5f, 1.0f, 0);
    sweep(logits, 5, &p, freq);
    for (int i = 0; i < 5; i++) assert_true(fabs(freq[i] - exp(reference_logprob(logits, 5, 1.5, i))) < 2e-5);
}

static void test_top_k_renormalizes_over_the_k_best(void **state) {
    (void)state;
    const float logits[6] = {1.0f, 3.0f, 0.0f, 2.0f, 2.0f, -1.0f};
    double freq[6];
    AhaSamplingParams p = params_with(1.0f, 1.0f, 3); /* ids 1, 3, 4 (3 and 4 tie) */
    sweep(logits, 6, &p, freq);
    double z = exp(3.0) + 2 * exp(2.0);
    assert_true(fabs(freq[1] - exp(3.0) / z) < 2e-5);
    assert_true(fabs(freq[3] - exp(2.0) / z) < 2e-5);
    assert_true(fabs(freq[4] - exp(2.0) / z) < 2e-5);
    assert_true(freq[0] == 0 && freq[2] == 0 && freq[5] == 0);
    /* a tie at the boundary keeps the lower id */
    p.top_k = 2;
    sweep(logits, 6, &p, freq);
    assert_true(freq[1] > 0 && freq[3] > 0 && freq[4] == 0);
    /* top_k >= vocab is no truncation */
    p.top_k = 6;
    sweep(logits, 6, &p, freq);
    assert_true(fabs(freq[5] - exp(reference_logprob(logits, 6, 1.0, 5))) < 2e-5);
}

static void test_top_p_keeps_the_smallest_nucleus(void **state) {
    (void)state;
    /* probabilities 0.5, 0.3, 0.15, 0.05 (logits are their logs) */
    const float logits[4] = {logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f)};
    double freq[4];
    AhaSamplingParams p = params_with(1.0f, 0.7f, 0);
    sweep(logits, 4, &p, freq); /* 0.5 < 0.7 <= 0.8: ids 1 and 3 */
    assert_true(fabs(freq[1] - 0.5 / 0.8) < 1e-4 && fabs(freq[3] - 0.3 / 0.8) < 1e-4);
    assert_true(freq[0] == 0 && freq[2] == 0);
    p.top_p = 0.9f; /* needs the third */
    sweep(logits, 4, &p, freq);
    assert_true(freq[0] > 0.15 && freq[2] == 0);
    p.top_p = 1e-6f; /* always the single best */
    sweep(logits, 4, &p, freq);
    assert_true(freq[0] == 0 && freq[2] == 0 && freq[3] == 0);
    /* top-k first, then top-p over the renormalized top-k */
    p.top_k = 2;
    p.top_p = 0.6f; /* of {0.5, 0.3}/0.8 = {0.625, 0.375}: only id 1 */
    sweep(logits, 4, &p, freq);
    assert_true(freq[0] == 0 && freq[2] == 0 && freq[3] == 0);
}

static void test_extreme_logits_stay_finite(void **state) {
    (void)state;
    const float logits[4] = {-1e30f, 80.0f, -80.0f, 79.0f};
    AhaTokenWeight scratch[4];
    AhaSamplingParams p = params_with(0.05f, 0.95f, 0);
    float lp;
    int32_t token = aha_sample_logits(logits, 4, &p, 0.999999, scratch, &lp);
    assert_int_equal(token, 1);
    assert_true(isfinite(lp) && lp <= 0.0f);
    p = params_with(1.0f, 1.0f, 0);
    token = aha_sample_logits(logits, 4, &p, 0.9999999999, scratch, &lp);
    assert_true(token == 1 || token == 3);
}

static int feed(const AhaStopStrings *s, char *tail, size_t *len, const char *bytes) {
    return aha_stop_strings_feed(s, tail, len, bytes, strlen(bytes));
}

static void test_stop_strings_across_token_boundaries(void **state) {
    (void)state;
    const char *strings[] = {"</answer>", "\n\n"};
    AhaStopStrings s;
    assert_int_equal(aha_stop_strings_init(&s, strings, 2), 0);
    assert_int_equal((int)s.tail_capacity, 8);
    char tail[8];
    size_t len = 0;
    assert_int_equal(feed(&s, tail, &len, "<answer>42</"), 0);
    assert_int_equal(feed(&s, tail, &len, "ans"), 0);
    assert_int_equal(feed(&s, tail, &len, "w"), 0);
    assert_int_equal(feed(&s, tail, &len, "er> and more"), 1);
    /* in one token, with bytes around it */
    len = 0;
    assert_int_equal(feed(&s, tail, &len, "x</answer>y"), 1);
    /* the second string, split 1 + 1 */
    len = 0;
    assert_int_equal(feed(&s, tail, &len, "a\n"), 0);
    assert_int_equal(feed(&s, tail, &len, "\nb"), 1);
    /* near misses */
    len = 0;
    assert_int_equal(feed(&s, tail, &len, "</answe"), 0);
    assert_int_equal(feed(&s, tail, &len, "R>"), 0);
    assert_int_equal(feed(&s, tail, &len, ""), 0);
    assert_true(len <= 8);
    aha_stop_strings_free(&s);
}

static void test_single_byte_stop_string_needs_no_tail(void **state) {
    (void)state;
    const char *strings[] = {"."};
    AhaStopStrings s;
    assert_int_equal(aha_stop_strings_init(&s, strings, 1), 0);
    assert_int_equal((int)s.tail_capacity, 0);
    size_t len = 0;
    assert_int_equal(aha_stop_strings_feed(&s, NULL, &len, "abc", 3), 0);
    assert_int_equal(aha_stop_strings_feed(&s, NULL, &len, "d.", 2), 1);
    aha_stop_strings_free(&s);
    const char *empty[] = {""};
    assert_int_equal(aha_stop_strings_init(&s, empty, 1), -1);
    assert_non_null(strstr(aha_error_message(), "stop_strings[0]"));
    aha_stop_strings_free(&s);
}

static void expect_param_error(AhaSamplingParams p, const char *needle) {
    assert_int_equal(aha_sampling_params_check(&p), -1);
    if (!strstr(aha_error_message(), needle)) fail_msg("'%s' lacks '%s'", aha_error_message(), needle);
}

static void test_bad_params_are_named(void **state) {
    (void)state;
    AhaSamplingParams p;
    aha_sampling_params_default(&p);
    assert_int_equal(aha_sampling_params_check(&p), 0);
    AhaSamplingParams q = p;
    q.temperature = -1;
    expect_param_error(q, "temperature: expected a number >= 0");
    q = p;
    q.temperature = NAN;
    expect_param_error(q, "temperature");
    q = p;
    q.top_p = 0;
    expect_param_error(q, "top_p: expected a number in (0, 1]");
    q.top_p = 1.5f;
    expect_param_error(q, "top_p");
    q = p;
    q.top_k = -2;
    expect_param_error(q, "top_k");
    q = p;
    q.temperature = 0;
    q.top_p = 0.9f;
    expect_param_error(q, "temperature 0 means greedy decoding");
    q.top_p = 1;
    q.top_k = 5;
    expect_param_error(q, "temperature 0 means greedy decoding");
    q.top_k = 0;
    assert_int_equal(aha_sampling_params_check(&q), 0);
    q = p;
    q.max_new_tokens = 0;
    expect_param_error(q, "max_new_tokens: expected an integer >= 1, got 0");
    q = p;
    int32_t bad_eos[] = {2, -1};
    q.eos_ids = bad_eos;
    q.n_eos_ids = 2;
    expect_param_error(q, "eos_ids[1]");
    q = p;
    const char *stops[] = {"ok", ""};
    q.stop_strings = stops;
    q.n_stop_strings = 2;
    expect_param_error(q, "stop_strings[1]: expected a non-empty string");
    assert_string_equal(aha_stop_reason_name(AHA_STOP_EOS), "eos");
    assert_string_equal(aha_stop_reason_name(AHA_STOP_STRING), "stop");
    assert_string_equal(aha_stop_reason_name(AHA_STOP_LENGTH), "length");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_picks_lowest_argmax_and_records_t1_logprob),
        cmocka_unit_test(test_logprob_is_over_full_vocabulary),
        cmocka_unit_test(test_untruncated_sampling_follows_softmax),
        cmocka_unit_test(test_top_k_renormalizes_over_the_k_best),
        cmocka_unit_test(test_top_p_keeps_the_smallest_nucleus),
        cmocka_unit_test(test_extreme_logits_stay_finite),
        cmocka_unit_test(test_stop_strings_across_token_boundaries),
        cmocka_unit_test(test_single_byte_stop_string_needs_no_tail),
        cmocka_unit_test(test_bad_params_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
