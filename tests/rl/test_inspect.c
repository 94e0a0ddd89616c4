/* aha inspect and aha report on a synthetic store: the library answers, and the command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/runstore.h"
#include "rl/rl_store_fixture.h"

static char *run_dir;
static AhaRunStore *store;

static int setup(void **state) {
    (void)state;
    run_dir = fixture_tmpdir();
    char *path = aha_runstore_path(run_dir);
    AhaRunStore *s = aha_runstore_open(path);
    if (!s || aha_runstore_set_run(s, "run:\n  seed: 3\n", 3, "0.1.0") != 0) return -1;
    for (int step = 0; step < 4; step++)
        if (fixture_write_step(s, step, 0) != 0) return -1;
    aha_runstore_close(s);
    store = aha_runstore_open_readonly(path);
    free(path);
    return store ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    aha_runstore_close(store);
    fixture_rm_rf(run_dir);
    free(run_dir);
    return 0;
}

/* Runs one question into a string (caller frees); NULL when it failed. */
static char *ask(const char *what, const AhaInspectOptions *o) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    int rc = aha_inspect(store, what, o, out);
    fclose(out);
    if (rc != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void test_summary_and_steps(void **state) {
    (void)state;
    AhaInspectOptions o;
    aha_inspect_options_init(&o);
    char *t = ask("summary", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "4 steps (last 3), 48 rollouts, resumed 0 times"));
    assert_non_null(strstr(t, "seed 3"));
    free(t);
    o.from = 1;
    o.to = 2;
    o.columns = "reward_mean,entropy";
    t = ask("steps", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "step  reward_mean  entropy"));
    assert_non_null(strstr(t, "1.9\n"));
    assert_non_null(strstr(t, "1.8\n"));
    assert_null(strstr(t, "1.7\n")); /* step 3 is outside --to */
    free(t);
    o.columns = "reward_mean,entropyy";
    assert_null(ask("steps", &o));
    assert_non_null(strstr(aha_error_message(), "unknown step column 'entropyy'; known: reward_mean"));
    o.columns = "reward_mean; DROP TABLE steps";
    assert_null(ask("steps", &o));
}

static void test_best_worst_prompt(void **state) {
    (void)state;
    AhaInspectOptions o;
    aha_inspect_options_init(&o);
    o.limit = 1;
    char *t = ask("best", &o);
    assert_non_null(t);
    /* step 3 (the last): correct samples are those with (j + 3 + p) % 3 == 0; the first by id is prompt 0 sample 0 */
    assert_non_null(strstr(t, "best completions of step 3"));
    assert_non_null(strstr(t, "--- step 3 prompt 0 sample 0 | reward 1.1"));
    assert_non_null(strstr(t, "format=1.0 (matched) math=1.0 (equal)"));
    assert_non_null(strstr(t, "<think>step 3 prompt 0 sample 0</think>"));
    free(t);
    o.step = 1;
    t = ask("worst", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "--- step 1 prompt 1 sample 2 | reward 0.0 "));
    assert_non_null(strstr(t, "format=none (timeout)"));
    free(t);
    o.prompt_index = 2;
    t = ask("prompt", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "step 1 prompt 2 (data row 13), gold 26\nWhat is 13 + 13? Assistant:"));
    assert_non_null(strstr(t, "sample"));
    assert_non_null(strstr(t, "format=1.0 math=1.0"));
    assert_non_null(strstr(t, "<answer>26</answer>"));
    assert_non_null(strstr(t, "<answer>28</answer>"));
    free(t);
    o.prompt_index = 9;
    assert_null(ask("prompt", &o));
    assert_string_equal(aha_error_message(), "step 1 has no prompt 9");
    o.step = 42;
    assert_null(ask("prompt", &o));
}

static void test_grep_and_history(void **state) {
    (void)state;
    AhaInspectOptions o;
    aha_inspect_options_init(&o);
    o.text = "prompt 3 sample 1";
    char *t = ask("grep", &o);
    assert_non_null(t);
    for (int step = 0; step < 4; step++) {
        char needle[64];
        snprintf(needle, sizeof needle, "<think>step %d prompt 3 sample 1</think>", step);
        assert_non_null(strstr(t, needle));
    }
    free(t);
    o.text = NULL;
    o.reward_filter = "math>=1";
    o.step = 2;
    o.width = 200;
    t = ask("grep", &o);
    assert_non_null(t);
    int rows = 0;
    for (char *p = t; (p = strstr(p, "</answer>\n")) != NULL; p++) rows++;
    assert_int_equal(rows, 4); /* one correct sample per prompt */
    assert_null(strstr(t, "answer>29<")); /* a wrong answer of prompt 0 (14 + 14 + 1) */
    free(t);
    o.reward_filter = "reward<0.05";
    o.step = -1;
    t = ask("grep", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "sample 2</think>"));
    assert_null(strstr(t, "sample 0</think>"));
    free(t);
    o.reward_filter = "maths>=1";
    assert_null(ask("grep", &o));
    assert_non_null(strstr(aha_error_message(), "no reward component named 'maths'"));
    o.reward_filter = "math=>1";
    assert_null(ask("grep", &o));
    assert_non_null(strstr(aha_error_message(), "expected a number"));
    o.reward_filter = "math 1";
    assert_null(ask("grep", &o));
    assert_non_null(strstr(aha_error_message(), "expected an operator"));
    o.reward_filter = NULL;
    assert_null(ask("grep", &o));
    assert_non_null(strstr(aha_error_message(), "grep needs --text"));

    aha_inspect_options_init(&o);
    o.prompt_id = 12; /* appears at steps 0 (p 2), 1 (p 1), 2 (p 0) */
    t = ask("history", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "prompt 12: What is 12 + 12? Assistant:"));
    assert_non_null(strstr(t, "step 0 prompt 2 sample 1</think>"));
    assert_non_null(strstr(t, "step 2 prompt 0 sample 1</think>"));
    assert_null(strstr(t, "step 3 "));
    free(t);
    o.prompt_id = 999;
    assert_null(ask("history", &o));
    assert_non_null(strstr(aha_error_message(), "no rollouts of prompt id 999"));
    assert_null(ask("nonsense", &o));
    assert_non_null(strstr(aha_error_message(), "unknown question 'nonsense'"));
    t = ask("evals", &o);
    assert_non_null(t);
    assert_non_null(strstr(t, "eval"));
    free(t);
}

static void test_report_is_self_contained(void **state) {
    (void)state;
    char *html = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&html, &len);
    assert_int_equal(aha_report_html(store, out), 0);
    fclose(out);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    static const char *const titles[] = {"reward per step", "accuracy", "eval mean@k", "response length",
                                         "KL to the reference", "entropy", "clip fractions", "share of completions with &lt;think&gt;",
                                         "Sample completions"};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++) assert_non_null(strstr(html, titles[i]));
    int svgs = 0, polylines = 0;
    for (char *p = html; (p = strstr(p, "<svg")) != NULL; p++) svgs++;
    for (char *p = html; (p = strstr(p, "<polyline")) != NULL; p++) polylines++;
    assert_int_equal(svgs, 9);
    assert_true(polylines >= 10);
    /* completions are escaped, nothing is fetched from elsewhere */
    assert_non_null(strstr(html, "&lt;think&gt;step 3 prompt"));
    assert_null(strstr(html, "<think>"));
    for (char *p = html; (p = strstr(p, "http")) != NULL; p++) /* only the SVG namespace */
        assert_int_equal(strncmp(p, "http://www.w3.org/2000/svg", 26), 0);
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "<script"));
    free(html);
}

/* Runs the aha command with a shell-quoted argument string; returns its exit status and
 * its stdout+stderr (caller frees). */
static int run_aha(const char *args, char **output) {
    const char *bin = getenv("AHA_BIN");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin ? bin : AHA_BUILD_DIR "/aha", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - 1 - len, p)) > 0) len += n;
    buf[len] = '\0';
    int status = pclose(p);
    *output = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_the_commands(void **state) {
    (void)state;
    char args[1024], *out;
    snprintf(args, sizeof args, "inspect '%s' best --step 2 -n 2", run_dir);
    assert_int_equal(run_aha(args, &out), 0);
    assert_non_null(strstr(out, "best completions of step 2"));
    free(out);
    snprintf(args, sizeof args, "inspect --reward 'math>=1' '%s/run.db' grep", run_dir);
    assert_int_equal(run_aha(args, &out), 0);
    assert_non_null(strstr(out, "<answer>"));
    free(out);
    snprintf(args, sizeof args, "inspect '%s'", run_dir);
    assert_int_equal(run_aha(args, &out), 0);
    assert_non_null(strstr(out, "48 rollouts"));
    free(out);
    snprintf(args, sizeof args, "inspect '%s' steps --step x", run_dir);
    assert_int_equal(run_aha(args, &out), 1);
    assert_non_null(strstr(out, "aha inspect: error: --step: expected an integer, got 'x'"));
    free(out);
    snprintf(args, sizeof args, "inspect '%s' steps --bogus", run_dir);
    assert_int_equal(run_aha(args, &out), 2);
    assert_non_null(strstr(out, "--bogus"));
    free(out);
    assert_int_equal(run_aha("inspect /nonexistent/run", &out), 1);
    assert_non_null(strstr(out, "/nonexistent/run: no run store here"));
    free(out);
    assert_int_equal(run_aha("inspect --help", &out), 0);
    assert_non_null(strstr(out, "usage: aha inspect RUN_DIR"));
    free(out);
    snprintf(args, sizeof args, "report '%s'", run_dir);
    assert_int_equal(run_aha(args, &out), 0);
    assert_non_null(strstr(out, "report.html"));
    free(out);
    char page[1024];
    snprintf(page, sizeof page, "%s/report.html", run_dir);
    FILE *f = fopen(page, "r");
    assert_non_null(f);
    fclose(f);
    snprintf(args, sizeof args, "report '%s' -o /nonexistent/dir/r.html", run_dir);
    assert_int_equal(run_aha(args, &out), 1);
    assert_non_null(strstr(out, "cannot write the report"));
    free(out);
    assert_int_equal(run_aha("report", &out), 2);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_and_steps),
        cmocka_unit_test(test_best_worst_prompt),
        cmocka_unit_test(test_grep_and_history),
        cmocka_unit_test(test_report_is_self_contained),
        cmocka_unit_test(test_the_commands),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
