/* The reward set: configs, format, length shaping, combination, failures as components. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/reward.h"

static AhaRewardSample sample(const char *completion, int tokens) {
    return (AhaRewardSample){.prompt = "p", .completion = completion, .row_json = "{}",
                             .completion_tokens = tokens};
}

static AhaRewardValue score1(const AhaRewardConfig *c, const char *completion, int tokens) {
    AhaRewardSet *set = aha_reward_set_create(c, 1, 1);
    if (!set) fail_msg("create: %s", aha_error_message());
    aha_reward_set_error_log(set, NULL);
    AhaRewardSample s = sample(completion, tokens);
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    aha_reward_set_free(set);
    return v;
}

static void test_format_default_r1(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    const char *good[] = {"<think>a\nb</think> <answer>42</answer>", "<think></think>\n\n<answer>x</answer>",
                          "<think>é ü 中</think><answer>\\boxed{1}</answer>"};
    const char *bad[] = {"<answer>42</answer>", "<think>a</think>", "x<think>a</think><answer>1</answer>",
                         "<think>a</think><answer>1</answer> trailing", "", "<think>a<answer>1</answer>"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        AhaRewardValue v = score1(&c, good[i], -1);
        assert_int_equal(v.status, AHA_REWARD_SCORED);
        if (v.score != 1.0) fail_msg("expected a match: %s", good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        AhaRewardValue v = score1(&c, bad[i], -1);
        assert_int_equal(v.status, AHA_REWARD_SCORED);
        if (v.score != 0.0) fail_msg("expected no match: %s", bad[i]);
    }
}

static void test_format_search_and_full(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    c.pattern = "\\\\boxed\\{\\d+\\}";
    c.match_search = 1;
    assert_true(score1(&c, "so the answer is \\boxed{12}.", -1).score == 1.0);
    assert_true(score1(&c, "no box here", -1).score == 0.0);
    c.match_search = 0; /* full: the whole completion must be the pattern */
    assert_true(score1(&c, "so the answer is \\boxed{12}.", -1).score == 0.0);
    assert_true(score1(&c, "\\boxed{12}", -1).score == 1.0);
    /* invalid UTF-8 in a completion is matched, not an error */
    AhaRewardValue v = score1(&c, "\\boxed{1}\xff", -1);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.0);
}

static void test_format_bad_pattern_is_a_clear_error(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    c.name = "fmt";
    c.pattern = "<think>(.*</think>";
    assert_null(aha_reward_set_create(&c, 1, 1));
    assert_non_null(strstr(aha_error_message(), "rewards[0] (fmt): pattern:"));
    assert_non_null(strstr(aha_error_message(), "offset"));
}

static void test_format_catastrophic_pattern_fails_the_sample(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    c.pattern = "(a+)+$";
    char text[64];
    memset(text, 'a', 40);
    strcpy(text + 40, "b");
    AhaRewardValue v = score1(&c, text, -1);
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "limit"));
}

static void test_overlong_formula(void **state) {
    (void)state;
    /* DAPO: L_max 100, L_cache 20 -> free up to 80, linear to -1 at 100, -1 beyond */
    assert_true(aha_reward_overlong(0, 100, 20) == 0.0);
    assert_true(aha_reward_overlong(80, 100, 20) == 0.0);
    assert_true(fabs(aha_reward_overlong(81, 100, 20) - (-1.0 / 20)) < 1e-12);
    assert_true(fabs(aha_reward_overlong(90, 100, 20) - (-0.5)) < 1e-12);
    assert_true(aha_reward_overlong(100, 100, 20) == -1.0);
    assert_true(aha_reward_overlong(101, 100, 20) == -1.0);
    assert_true(aha_reward_length_penalty(10, 20, 0.01) == 0.0);
    assert_true(fabs(aha_reward_length_penalty(30, 20, 0.01) - (-0.1)) < 1e-12);

    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_OVERLONG);
    c.max_len = 100;
    c.cache_len = 20;
    AhaRewardValue v = score1(&c, "x", 90);
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(fabs(v.score + 0.5) < 1e-12);
    v = score1(&c, "x", -1);
    assert_int_equal(v.status, AHA_REWARD_NO_SCORE);
    c.cache_len = 100;
    assert_null(aha_reward_set_create(&c, 1, 1));
    assert_non_null(strstr(aha_error_message(), "cache_len"));
}

static void test_combination_keeps_components(void **state) {
    (void)state;
    AhaRewardConfig c[3];
    aha_reward_config_default(&c[0], AHA_REWARD_FORMAT);
    aha_reward_config_default(&c[1], AHA_REWARD_LENGTH);
    c[1].target_len = 10;
    c[1].penalty = 0.1;
    c[1].weight = 2.0;
    aha_reward_config_default(&c[2], AHA_REWARD_OVERLONG);
    c[2].max_len = 100;
    c[2].cache_len = 50;
    c[2].weight = 0.0; /* kept as a component, not in the total */
    AhaRewardSet *set = aha_reward_set_create(c, 3, 2);
    assert_non_null(set);
    aha_reward_set_error_log(set, NULL);
    assert_int_equal(aha_reward_set_count(set), 3);
    assert_string_equal(aha_reward_set_name(set, 1), "length");
    enum { N = 40 };
    AhaRewardSample s[N];
    for (int i = 0; i < N; i++)
        s[i] = sample(i % 2 ? "<think>t</think><answer>a</answer>" : "plain", i);
    s[7].completion_tokens = -1; /* no token count: no score for the length rewards */
    s[9].row_json = "[1, 2]";    /* not an object: every component fails */
    AhaRewardValue values[N * 3];
    double total[N];
    assert_int_equal(aha_reward_set_score(set, s, N, values, total), 0);
    for (int i = 0; i < N; i++) {
        const AhaRewardValue *v = &values[i * 3];
        if (i == 9) {
            for (int k = 0; k < 3; k++) assert_int_equal(v[k].status, AHA_REWARD_FAILED);
            assert_true(isnan(total[i]));
            continue;
        }
        assert_true(v[0].score == (i % 2 ? 1.0 : 0.0));
        if (i == 7) {
            assert_int_equal(v[1].status, AHA_REWARD_NO_SCORE);
            assert_true(isnan(total[i]));
            continue;
        }
        double len = i > 10 ? -0.1 * (i - 10) : 0.0;
        assert_true(fabs(v[1].score - len) < 1e-12);
        assert_int_equal(v[2].status, AHA_REWARD_SCORED);
        assert_true(fabs(total[i] - (v[0].score + 2.0 * len)) < 1e-12);
    }
    aha_reward_set_free(set);
}

static void test_bad_configs(void **state) {
    (void)state;
    AhaRewardConfig c[2];
    aha_reward_config_default(&c[0], AHA_REWARD_FORMAT);
    aha_reward_config_default(&c[1], AHA_REWARD_FORMAT);
    assert_null(aha_reward_set_create(c, 2, 1));
    assert_non_null(strstr(aha_error_message(), "name 'format' is already used"));
    c[1].name = "format2";
    assert_null(aha_reward_set_create(c, 2, 0));
    assert_non_null(strstr(aha_error_message(), "jobs"));
    assert_null(aha_reward_set_create(c, 0, 1));
    c[1].weight = NAN;
    assert_null(aha_reward_set_create(c, 2, 1));
    assert_non_null(strstr(aha_error_message(), "rewards[1] (format2): weight"));
    AhaRewardConfig p;
    aha_reward_config_default(&p, AHA_REWARD_PLUGIN);
    assert_null(aha_reward_set_create(&p, 1, 1));
    assert_non_null(strstr(aha_error_message(), "exactly one of path"));
    AhaRewardType t;
    assert_int_equal(aha_reward_type_parse("overlong", &t), 0);
    assert_int_equal(t, AHA_REWARD_OVERLONG);
    assert_int_equal(aha_reward_type_parse("lenght", &t), -1);
    assert_non_null(strstr(aha_error_message(), "unknown reward type 'lenght'"));
    AhaRewardExtract e;
    assert_int_equal(aha_reward_extract_parse("boxed", &e), 0);
    assert_int_equal(e, AHA_REWARD_EXTRACT_BOXED);
    assert_int_equal(aha_reward_extract_parse("box", &e), -1);
    AhaCodeMode m;
    assert_int_equal(aha_reward_code_mode_parse("all", &m), 0);
    assert_int_equal(aha_reward_code_mode_parse("some", &m), -1);
    int search;
    assert_int_equal(aha_reward_match_parse("search", &search), 0);
    assert_int_equal(search, 1);
    assert_int_equal(aha_reward_match_parse("partial", &search), -1);
}

static void test_bad_row_json_fails_with_reason(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    AhaRewardSet *set = aha_reward_set_create(&c, 1, 1);
    assert_non_null(set);
    aha_reward_set_error_log(set, NULL);
    AhaRewardSample s = sample("x", 1);
    s.row_json = "{\"answer\": ";
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "row: bad JSON"));
    s.completion = NULL;
    s.row_json = NULL;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "no completion"));
    aha_reward_set_free(set);
}

static void test_math_reward_reads_the_row(void **state) {
    (void)state;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_MATH);
    AhaRewardSet *set = aha_reward_set_create(&c, 1, 1);
    assert_non_null(set);
    aha_reward_set_error_log(set, NULL);
    struct { const char *completion, *row; AhaRewardStatus status; double score; } cases[] = {
        {"so \\boxed{1,234}", "{\"answer\": \"1234\"}", AHA_REWARD_SCORED, 1.0},
        {"so \\boxed{3/4}", "{\"answer\": 0.75}", AHA_REWARD_SCORED, 1.0},
        {"<answer>72</answer>", "{\"answer\": \"Natalia sold 48/2 = 24 clips.\\n#### 72\"}", AHA_REWARD_SCORED, 1.0},
        {"\\boxed{13}", "{\"answer\": 12}", AHA_REWARD_SCORED, 0.0},
        {"\\boxed{12}", "{\"question\": \"q\"}", AHA_REWARD_NO_SCORE, 0.0},
        {"\\boxed{12}", "{\"answer\": [12]}", AHA_REWARD_NO_SCORE, 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        AhaRewardSample s = {.completion = cases[i].completion, .row_json = cases[i].row};
        AhaRewardValue v;
        assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
        if (v.status != cases[i].status || v.score != cases[i].score)
            fail_msg("case %zu: status %d score %g (%s)", i, v.status, v.score, v.reason);
    }
    aha_reward_set_free(set);
    c.extract = AHA_REWARD_EXTRACT_ANSWER_TAG; /* \boxed outside <answer> is not looked at */
    set = aha_reward_set_create(&c, 1, 1);
    AhaRewardSample s = {.completion = "\\boxed{5}", .row_json = "{\"answer\": \"5\"}"};
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    assert_true(v.score == 0.0);
    aha_reward_set_free(set);
}

/* Texts that hold NUL (JSON's \u0000), given with their lengths, reach every reward whole. */
static AhaRewardValue score_n(AhaRewardType type, const char *pattern, const char *completion, size_t len,
                              const char *row) {
    AhaRewardConfig c;
    aha_reward_config_default(&c, type);
    c.pattern = pattern;
    c.timeout_s = 60; /* the plug-in program: Python under ASan on a loaded machine */
    if (type == AHA_REWARD_PLUGIN)
        c.command = "python3 -c 'import sys, json\nfor l in sys.stdin:\n r = json.loads(l)\n"
                    " print(json.dumps({\"score\": len(r[\"completion\"]) + len(r[\"prompt\"]) / 100,"
                    " \"reason\": \"seen\\u0000\"}), flush=True)'";
    AhaRewardSet *set = aha_reward_set_create(&c, 1, 1);
    if (!set) fail_msg("create: %s", aha_error_message());
    aha_reward_set_error_log(set, NULL);
    static const char prompt[] = "a\0b";
    AhaRewardSample s = {.prompt = prompt, .prompt_len = 3, .completion = completion, .completion_len = len,
                         .row_json = row, .completion_tokens = -1};
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    aha_reward_set_free(set);
    return v;
}

#define TEXT(s) s, sizeof s - 1

static void test_texts_with_nul(void **state) {
    (void)state;
    /* math: a NUL before the box, inside it or around the gold hides nothing */
    AhaRewardValue v = score_n(AHA_REWARD_MATH, NULL, TEXT("think\0more \\boxed{5}"), "{\"answer\": \"5\"}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    if (v.score != 1.0) fail_msg("%s", v.reason);
    assert_true(score_n(AHA_REWARD_MATH, NULL, TEXT("\\boxed{\0" "5\0}"), "{\"answer\": \"5\"}").score == 1.0);
    assert_true(score_n(AHA_REWARD_MATH, NULL, TEXT("\\boxed{5}\0\x01\x7f"), "{\"answer\": \"\\u00005\\u0000\"}").score == 1.0);
    assert_true(score_n(AHA_REWARD_MATH, NULL, TEXT("<answer>\0" "5</answer>"), "{\"answer\": 5}").score == 1.0);
    /* near misses stay wrong: another number, digits a NUL splits */
    assert_true(score_n(AHA_REWARD_MATH, NULL, TEXT("a\0\\boxed{6}"), "{\"answer\": \"5\"}").score == 0.0);
    assert_true(score_n(AHA_REWARD_MATH, NULL, TEXT("\\boxed{1\0" "5}"), "{\"answer\": \"15\"}").score == 0.0);
    assert_true(score_n(AHA_REWARD_MATH, NULL, TEXT("\\boxed{5}\0\\boxed{6}"), "{\"answer\": \"5\"}").score == 0.0);
    /* without a length the text ends at its first NUL (a C string) */
    assert_true(score_n(AHA_REWARD_MATH, NULL, "think\0more \\boxed{5}", 0, "{\"answer\": \"5\"}").score == 0.0);
    /* format: PCRE2 gets the length; DOTALL spans a NUL, and a NUL after the answer is not the end */
    assert_true(score_n(AHA_REWARD_FORMAT, NULL, TEXT("<think>a\0b</think><answer>1</answer>"), "{}").score == 1.0);
    assert_true(score_n(AHA_REWARD_FORMAT, NULL, TEXT("<think>a</think><answer>1</answer>\0junk"), "{}").score == 0.0);
    assert_true(score_n(AHA_REWARD_FORMAT, "\\x00", TEXT("ab\0"), "{}").score == 0.0);
    v = score_n(AHA_REWARD_FORMAT, "ab\\x{0}", TEXT("ab\0"), "{}");
    assert_true(v.score == 1.0);
    /* countdown: the equation after a NUL */
    assert_true(score_n(AHA_REWARD_COUNTDOWN, NULL, TEXT("x\0<answer>\0(1+2)*3</answer>"),
                        "{\"nums\": [1, 2, 3], \"target\": 9}").score == 1.0);
    /* a row holding \u0000 is a row like any other */
    v = score_n(AHA_REWARD_MATH, NULL, TEXT("\\boxed{7}"), "{\"answer\": \"7\", \"note\": \"a\\u0000b\"}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 1.0);
    /* a plug-in program receives the texts whole and may answer with \u0000 in its reason */
    v = score_n(AHA_REWARD_PLUGIN, NULL, TEXT("x\0yz"), "{\"k\": \"\\u0000\"}");
    if (v.status != AHA_REWARD_SCORED) fail_msg("plug-in: %s", v.reason);
    assert_true(fabs(v.score - 4.03) < 1e-12);
    assert_string_equal(v.reason, "seen");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_default_r1),
        cmocka_unit_test(test_format_search_and_full),
        cmocka_unit_test(test_format_bad_pattern_is_a_clear_error),
        cmocka_unit_test(test_format_catastrophic_pattern_fails_the_sample),
        cmocka_unit_test(test_overlong_formula),
        cmocka_unit_test(test_combination_keeps_components),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_bad_row_json_fails_with_reason),
        cmocka_unit_test(test_math_reward_reads_the_row),
        cmocka_unit_test(test_texts_with_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
