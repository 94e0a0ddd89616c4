/* Plug-ins: a C shared object (built here with cc) and JSON-lines programs, and every way
 * they can go wrong, each a clear error naming the plug-in. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/reward.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aha-test-plugin-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Compiles source (a file path, or C text when inline) to tmpdir/name.so; 0 = no compiler. */
static int build_so(const char *name, const char *source_file, const char *inline_source, char *so,
                    size_t so_cap) {
    if (system("command -v cc >/dev/null 2>&1") != 0) return 0;
    char src[512], cmd[2048];
    if (inline_source) {
        snprintf(src, sizeof src, "%s/%s.c", tmpdir, name);
        FILE *f = fopen(src, "w");
        assert_non_null(f);
        fputs(inline_source, f);
        fclose(f);
        source_file = src;
    }
    snprintf(so, so_cap, "%s/%s.so", tmpdir, name);
    snprintf(cmd, sizeof cmd, "cc -O1 -shared -fPIC -I'%s/include' '%s' -o '%s'", AHA_SOURCE_DIR,
             source_file, so);
    assert_int_equal(system(cmd), 0);
    return 1;
}

static AhaRewardSet *plugin_set(const char *path, const char *command, double timeout_s, int jobs) {
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_PLUGIN);
    c.name = "mine";
    c.path = path;
    c.command = command;
    c.timeout_s = timeout_s;
    AhaRewardSet *set = aha_reward_set_create(&c, 1, jobs);
    if (set) aha_reward_set_error_log(set, NULL);
    return set;
}

static AhaRewardValue one(AhaRewardSet *set, const char *completion, const char *row) {
    AhaRewardSample s = {.prompt = "q", .completion = completion, .row_json = row, .completion_tokens = 7};
    AhaRewardValue v;
    assert_int_equal(aha_reward_set_score_one(set, 0, &s, &v), 0);
    return v;
}

static void test_c_plugin_example(void **state) {
    (void)state;
    char so[512], src[512];
    snprintf(src, sizeof src, "%s/examples/reward_plugins/repetition.c", AHA_SOURCE_DIR);
    if (!build_so("repetition", src, NULL, so, sizeof so)) skip();
    AhaRewardSet *set = plugin_set(so, NULL, 5, 2);
    if (!set) fail_msg("%s", aha_error_message());
    AhaRewardValue v = one(set, "a\nb\na\nc\n", "{}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(fabs(v.score - 0.75) < 1e-12);
    assert_string_equal(v.reason, "3 distinct of 4 lines");
    v = one(set, "\n  \n", "{}");
    assert_int_equal(v.status, AHA_REWARD_NO_SCORE);
    /* in parallel, as the trainer calls it */
    enum { N = 64 };
    AhaRewardSample s[N];
    for (int i = 0; i < N; i++) s[i] = (AhaRewardSample){.completion = i % 2 ? "x\nx" : "x\ny", .completion_tokens = -1};
    AhaRewardValue vals[N];
    double total[N];
    assert_int_equal(aha_reward_set_score(set, s, N, vals, total), 0);
    for (int i = 0; i < N; i++) assert_true(total[i] == (i % 2 ? 0.5 : 1.0));
    aha_reward_set_free(set);
}

static void test_c_plugin_errors(void **state) {
    (void)state;
    char so[512];
    AhaRewardSet *set = plugin_set("/nonexistent/reward.so", NULL, 5, 1);
    assert_null(set);
    assert_non_null(strstr(aha_error_message(), "plugin 'mine' (/nonexistent/reward.so): cannot load"));
    assert_null(plugin_set("reward.so", NULL, 5, 1));
    assert_non_null(strstr(aha_error_message(), "./reward.so"));

    if (!build_so("noscore", NULL, "int aha_reward_plugin_abi_version(void) { return 1; }\n", so, sizeof so)) skip();
    assert_null(plugin_set(so, NULL, 5, 1));
    assert_non_null(strstr(aha_error_message(), "plugin 'mine'"));
    assert_non_null(strstr(aha_error_message(), "does not export aha_reward_plugin_score()"));

    build_so("noversion", NULL, "int aha_reward_plugin_score(void) { return 0; }\n", so, sizeof so);
    assert_null(plugin_set(so, NULL, 5, 1));
    assert_non_null(strstr(aha_error_message(), "does not export aha_reward_plugin_abi_version()"));

    build_so("oldabi", NULL,
             "#include <stddef.h>\nint aha_reward_plugin_abi_version(void) { return 0; }\n"
             "int aha_reward_plugin_score(void) { return 0; }\n", so, sizeof so);
    assert_null(plugin_set(so, NULL, 5, 1));
    assert_non_null(strstr(aha_error_message(), "built for plug-in ABI version 0, this aha speaks version 1"));

    /* errors and non-finite scores from the plug-in fail that sample only */
    build_so("failing", NULL,
             "#include <math.h>\n#include <stdio.h>\n#include <string.h>\n#include \"aha/reward_plugin.h\"\n"
             "int aha_reward_plugin_abi_version(void) { return AHA_REWARD_PLUGIN_ABI_VERSION; }\n"
             "int aha_reward_plugin_score(const AhaPluginSample *s, double *score, char *r, size_t cap) {\n"
             "  if (strcmp(s->completion, \"nan\") == 0) { *score = NAN; return 0; }\n"
             "  if (strcmp(s->completion, \"bad\") == 0) { snprintf(r, cap, \"cannot judge %s\", s->row_json); return -1; }\n"
             "  *score = s->completion_tokens; snprintf(r, cap, \"prompt %s\", s->prompt); return 0; }\n",
             so, sizeof so);
    set = plugin_set(so, NULL, 5, 1);
    assert_non_null(set);
    AhaRewardValue v = one(set, "nan", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "plugin 'mine'"));
    assert_non_null(strstr(v.reason, "not finite"));
    v = one(set, "bad", "{\"k\": 1}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "cannot judge {\"k\":1}"));
    v = one(set, "ok", "{}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 7.0);
    assert_string_equal(v.reason, "prompt q");
    aha_reward_set_free(set);
}

/* A plug-in that crashes or hangs costs that sample its score, never the run. */
static void test_c_plugin_crash_and_hang_are_contained(void **state) {
    (void)state;
    char so[512];
    if (!build_so("hostile", NULL,
                  "#include <string.h>\n#include <unistd.h>\n#include \"aha/reward_plugin.h\"\n"
                  "int aha_reward_plugin_abi_version(void) { return AHA_REWARD_PLUGIN_ABI_VERSION; }\n"
                  "int aha_reward_plugin_score(const AhaPluginSample *s, double *score, char *r, size_t cap) {\n"
                  "  (void)r; (void)cap;\n"
                  "  if (strcmp(s->completion, \"crash\") == 0) { volatile int *p = 0; *p = 1; }\n"
                  "  if (strcmp(s->completion, \"hang\") == 0) for (;;) pause();\n"
                  "  *score = 1; return 0; }\n",
                  so, sizeof so))
        skip();
    AhaRewardSet *set = plugin_set(so, NULL, 2.0, 2);
    assert_non_null(set);
    AhaRewardValue v = one(set, "crash", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "plugin 'mine'"));
    /* a plain build sees the signal; under ASan its handler reports and exits */
    assert_true(strstr(v.reason, "killed by signal 11") || strstr(v.reason, "exited with status"));
    v = one(set, "fine", "{}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    v = one(set, "hang", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "no reply within 2 s"));
    /* a batch with both, in parallel: every other sample is scored */
    enum { N = 12 };
    AhaRewardSample s[N];
    for (int i = 0; i < N; i++)
        s[i] = (AhaRewardSample){.completion = i == 3 ? "crash" : i == 8 ? "hang" : "ok", .completion_tokens = -1};
    AhaRewardValue vals[N];
    double total[N];
    assert_int_equal(aha_reward_set_score(set, s, N, vals, total), 0);
    for (int i = 0; i < N; i++) {
        if (i == 3 || i == 8) assert_int_equal(vals[i].status, AHA_REWARD_FAILED);
        else if (vals[i].status != AHA_REWARD_SCORED) fail_msg("sample %d: %s", i, vals[i].reason);
    }
    aha_reward_set_free(set);
}

static void test_python_program_example(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/examples/reward_plugins/keyword_reward.py'", AHA_SOURCE_DIR);
    AhaRewardSet *set = plugin_set(NULL, cmd, 10, 3);
    assert_non_null(set);
    AhaRewardValue v = one(set, "The Cat sat", "{\"keywords\": [\"cat\", \"dog\"]}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 0.5);
    assert_string_equal(v.reason, "1/2 keywords");
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_NO_SCORE);
    /* unicode and invalid UTF-8 survive the trip */
    v = one(set, "caf\xc3\xa9 \xff dog", "{\"keywords\": \"caf\xc3\xa9\"}");
    assert_true(v.score == 1.0);
    enum { N = 30 };
    AhaRewardSample s[N];
    for (int i = 0; i < N; i++)
        s[i] = (AhaRewardSample){.completion = i % 3 ? "dog" : "cat", .row_json = "{\"keywords\": \"dog\"}",
                                 .completion_tokens = -1};
    AhaRewardValue vals[N];
    double total[N];
    assert_int_equal(aha_reward_set_score(set, s, N, vals, total), 0);
    for (int i = 0; i < N; i++) assert_true(total[i] == (i % 3 ? 1.0 : 0.0));
    aha_reward_set_free(set);
}

static void test_program_errors_name_the_plugin(void **state) {
    (void)state;
    /* bad JSON */
    AhaRewardSet *set = plugin_set(NULL, "while read l; do echo 'not json'; done", 5, 1);
    assert_non_null(set);
    AhaRewardValue v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "plugin 'mine' (while read"));
    assert_non_null(strstr(v.reason, "bad JSON reply 'not json'"));
    aha_reward_set_free(set);
    /* a reply of the wrong shape, and a reported error */
    set = plugin_set(NULL, "read l; echo '{\"score\": \"high\"}'; read l; echo '{\"error\": \"boom\"}'; "
                           "while read l; do echo '{\"score\": 2, \"reason\": \"fine\"}'; done", 5, 1);
    v = one(set, "x", "{}");
    assert_non_null(strstr(v.reason, "expected {\"score\": number or null"));
    v = one(set, "x", "{}"); /* restarted after the bad reply: first reply again */
    assert_non_null(strstr(v.reason, "expected {\"score\": number or null"));
    aha_reward_set_free(set);
    set = plugin_set(NULL, "read l; echo '{\"error\": \"boom\"}'; while read l; do echo '{\"score\": 2}'; done", 5, 1);
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "plugin 'mine'"));
    assert_non_null(strstr(v.reason, "boom"));
    v = one(set, "x", "{}"); /* an error reply keeps the program: it answers the next */
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    assert_true(v.score == 2.0);
    aha_reward_set_free(set);
    /* early exit; the program restarts for the next call */
    set = plugin_set(NULL, "read l; echo '{\"score\": 1}'; exit 3", 5, 1);
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "plugin 'mine'"));
    assert_non_null(strstr(v.reason, "exited with status 3"));
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_SCORED);
    aha_reward_set_free(set);
    /* a command that does not exist */
    set = plugin_set(NULL, "/nonexistent/reward-program", 5, 1);
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "exited with status 127"));
    aha_reward_set_free(set);
    /* a hang: killed at timeout_s, the batch goes on */
    set = plugin_set(NULL, "read l; sleep 1000", 0.3, 1);
    v = one(set, "x", "{}");
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "plugin 'mine'"));
    assert_non_null(strstr(v.reason, "no reply within 0.3 s"));
    aha_reward_set_free(set);
    /* a program that never reads its stdin and a huge request: the send times out */
    set = plugin_set(NULL, "sleep 1000", 0.3, 1);
    size_t big = 4u << 20;
    char *text = malloc(big + 1);
    memset(text, 'a', big);
    text[big] = '\0';
    v = one(set, text, "{}");
    free(text);
    assert_int_equal(v.status, AHA_REWARD_FAILED);
    assert_non_null(strstr(v.reason, "did not read its request"));
    aha_reward_set_free(set);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c_plugin_example),
        cmocka_unit_test(test_c_plugin_errors),
        cmocka_unit_test(test_c_plugin_crash_and_hang_are_contained),
        cmocka_unit_test(test_python_program_example),
        cmocka_unit_test(test_program_errors_name_the_plugin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
