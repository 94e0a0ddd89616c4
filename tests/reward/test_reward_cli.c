/* aha reward score: the offline scorer, through the aha binary (AHA_BIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

static char dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/aha-test-reward-cli-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs "aha ARGS" with stdout to dir/out.txt and stderr to dir/err.txt; the exit status. */
static int aha(const char *args) {
    const char *bin = getenv("AHA_BIN");
    assert_non_null(bin);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s/out.txt' 2>'%s/err.txt'", AHA_SOURCE_DIR, bin, args, dir, dir);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The output lines as JSON objects. */
static json_t *lines(const char *text) {
    json_t *arr = json_array();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_t *obj = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, NULL);
        assert_non_null(obj);
        json_array_append_new(arr, obj);
        p = nl + 1;
    }
    return arr;
}

static double reward_of(json_t *arr, size_t i) {
    json_t *r = json_object_get(json_array_get(arr, i), "reward");
    return json_is_null(r) ? -99 : json_number_value(r);
}

static void test_math_and_code_in_order(void **state) {
    (void)state;
    assert_int_equal(aha("reward score --reward math --in tests/fixtures/rewards/mixed.jsonl --jobs 3"), 0);
    json_t *out = lines(slurp("out.txt"));
    assert_int_equal(json_array_size(out), 5);
    assert_true(reward_of(out, 0) == 1.0);
    assert_true(reward_of(out, 1) == -99); /* no answer: null */
    assert_true(reward_of(out, 3) == 1.0);
    /* the input fields are kept, in order */
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 3), "prompt")), "What is 1/2 + 1/4?");
    assert_non_null(json_string_value(json_object_get(json_array_get(out, 1), "reason")));
    json_decref(out);

    char args[1024];
    snprintf(args, sizeof args, "reward score --reward code --timeout 8 --in tests/fixtures/rewards/mixed.jsonl --out '%s/code.jsonl'", dir);
    assert_int_equal(aha(args), 0);
    assert_string_equal(slurp("out.txt"), "");
    out = lines(slurp("code.jsonl"));
    assert_true(reward_of(out, 0) == -99);
    assert_true(reward_of(out, 1) == 1.0);
    assert_true(reward_of(out, 2) == 0.5);
    assert_true(reward_of(out, 4) == 0.0); /* the infinite loop costs its case, not the run */
    json_decref(out);
    assert_non_null(strstr(slurp("err.txt"), "5 lines"));
}

static void test_recipe_components(void **state) {
    (void)state;
    assert_int_equal(aha("reward score --recipe tests/fixtures/rewards/recipe.yaml --in tests/fixtures/rewards/mixed.jsonl"), 0);
    json_t *out = lines(slurp("out.txt"));
    json_t *first = json_array_get(out, 0);
    json_t *comp = json_object_get(first, "components");
    assert_true(json_number_value(json_object_get(json_object_get(comp, "math"), "score")) == 1.0);
    assert_true(json_number_value(json_object_get(json_object_get(comp, "fmt"), "score")) == 1.0);
    assert_true(reward_of(out, 0) == 1.5);
    /* 120 tokens of 128 with cache 32: (96 - 120) / 32 */
    json_t *c3 = json_object_get(json_array_get(out, 3), "components");
    assert_true(json_number_value(json_object_get(json_object_get(c3, "overlong"), "score")) == -0.75);
    assert_true(reward_of(out, 1) == -99);
    json_decref(out);
}

static void test_plugins_by_name(void **state) {
    (void)state;
    char in[512];
    snprintf(in, sizeof in, "%s/kw.jsonl", dir);
    FILE *f = fopen(in, "w");
    fputs("{\"completion\": \"a dog\", \"keywords\": [\"dog\", \"cat\"]}\n", f);
    fclose(f);
    char args[1024];
    /* a generous limit: Python's start-up under ASan on a loaded 2-core machine took over 5 s */
    snprintf(args, sizeof args, "reward score --reward 'python3 examples/reward_plugins/keyword_reward.py' --timeout 60 --in '%s'", in);
    assert_int_equal(aha(args), 0);
    assert_non_null(strstr(slurp("out.txt"), "\"reward\":0.5,\"reason\":\"1/2 keywords\""));
}

/* Text holding \u0000 is scored like any other; a bad line in the middle is named and the
 * lines around it are scored (exit status 1). */
static void test_nul_text_and_a_bad_line_in_the_middle(void **state) {
    (void)state;
    char in[512], args[2048], outp[512];
    snprintf(in, sizeof in, "%s/nul.jsonl", dir);
    snprintf(outp, sizeof outp, "%s/nul.out.jsonl", dir);
    FILE *f = fopen(in, "w");
    fputs("{\"completion\": \"think\\u0000 then \\\\boxed{5}\", \"answer\": \"5\"}\n"
          "{\"completion\": \"x\", \"answer\": \n"
          "{\"prompt\": \"a\\u0000b\", \"completion\": \"<answer>\\u00006</answer>\\u0000\", \"answer\": 6}\n"
          "\n"
          "{\"text\": \"no completion\"}\n"
          "[1, 2]\n"
          "{\"completion\": \"\\\\boxed{7\\u0000}\", \"answer\": \"8\"}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "reward score --reward math --in '%s' --out '%s'", in, outp);
    assert_int_equal(aha(args), 1);
    const char *err = slurp("err.txt");
    assert_non_null(strstr(err, "nul.jsonl:2:"));
    assert_non_null(strstr(err, "bad JSON"));
    assert_non_null(strstr(err, "nul.jsonl:5: expected a JSON object with a \"completion\" string"));
    assert_non_null(strstr(err, "nul.jsonl:6: expected a JSON object"));
    assert_null(strstr(err, "nul.jsonl:1:"));
    assert_null(strstr(err, "nul.jsonl:3:"));
    assert_non_null(strstr(err, "3 lines, 3 scored"));
    assert_non_null(strstr(err, "3 bad lines skipped"));
    json_t *out = lines(slurp("nul.out.jsonl"));
    assert_int_equal(json_array_size(out), 3);
    assert_true(reward_of(out, 0) == 1.0);
    assert_true(reward_of(out, 1) == 1.0);
    assert_true(reward_of(out, 2) == 0.0);
    /* the texts come back whole, NUL and all */
    json_t *prompt = json_object_get(json_array_get(out, 1), "prompt");
    assert_int_equal(json_string_length(prompt), 3);
    json_decref(out);
}

static void test_bad_input_is_a_clear_error(void **state) {
    (void)state;
    char in[512], args[2048];
    snprintf(in, sizeof in, "%s/bad.jsonl", dir);
    FILE *f = fopen(in, "w");
    fputs("{\"text\": \"no completion\"}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "reward score --reward math --in '%s'", in);
    assert_int_equal(aha(args), 1);
    assert_non_null(strstr(slurp("err.txt"), "bad.jsonl:1: expected a JSON object with a \"completion\" string"));
    assert_non_null(strstr(slurp("err.txt"), "0 lines"));

    assert_int_equal(aha("reward score --reward math --in /nonexistent.jsonl"), 1);
    assert_non_null(strstr(slurp("err.txt"), "--in /nonexistent.jsonl: No such file"));
    assert_int_equal(aha("reward score --reward mathh --in x.jsonl"), 2);
    assert_non_null(strstr(slurp("err.txt"), "not a built-in"));
    assert_int_equal(aha("reward score --reward missing.so --in x.jsonl"), 2);
    assert_non_null(strstr(slurp("err.txt"), "no such plug-in file"));
    assert_int_equal(aha("reward score --reward math"), 2);
    assert_non_null(strstr(slurp("err.txt"), "--in FILE.jsonl is required"));
    assert_int_equal(aha("reward score --reward math --in x --jobs 0"), 2);
    assert_non_null(strstr(slurp("err.txt"), "--jobs"));
    assert_int_equal(aha("reward score --reward format --pattern '(' --in tests/fixtures/rewards/mixed.jsonl"), 1);
    assert_non_null(strstr(slurp("err.txt"), "rewards[0] (format): pattern"));
    assert_int_equal(aha("reward frobnicate"), 2);
    assert_int_equal(aha("reward score --help"), 0);
    assert_non_null(strstr(slurp("out.txt"), "usage: aha reward score"));
}

static void test_bench_runs(void **state) {
    (void)state;
    assert_int_equal(aha("bench reward --seconds 0.05 --jobs 2 --json"), 0);
    json_t *obj = json_loads(slurp("out.txt"), 0, NULL);
    assert_non_null(obj);
    assert_true(json_number_value(json_object_get(obj, "math_checks_per_s")) > 0);
    assert_true(json_number_value(json_object_get(obj, "code_cases_per_s")) > 0);
    assert_true(json_number_value(json_object_get(obj, "math_equal_fraction")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(obj, "failed")), 0);
    json_decref(obj);
    assert_int_equal(aha("bench reward --seconds -1"), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_math_and_code_in_order),
        cmocka_unit_test(test_recipe_components),
        cmocka_unit_test(test_plugins_by_name),
        cmocka_unit_test(test_nul_text_and_a_bad_line_in_the_middle),
        cmocka_unit_test(test_bad_input_is_a_clear_error),
        cmocka_unit_test(test_bench_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
