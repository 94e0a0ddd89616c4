/* The run store: round trip, one transaction per step under crashes, resume truncation,
 * bad use and bad files. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/runstore.h"
#include "rl/rl_store_fixture.h"
#include "rl/rl_test.h"

static double query_double(AhaRunStore *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(aha_runstore_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_type(st, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *store_path(const char *dir) {
    char *p = aha_runstore_path(dir);
    assert_non_null(p);
    return p;
}

static void test_round_trip(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char *path = store_path(dir);
    assert_non_null(strstr(path, "/run.db"));
    AhaRunStore *s = aha_runstore_open(path);
    assert_non_null(s);
    assert_int_equal(aha_runstore_set_run(s, "run:\n  seed: 7\n", 7, "0.1.0"), 0);
    int last = 99;
    assert_int_equal(aha_runstore_last_step(s, &last), 0);
    assert_int_equal(last, -1);
    for (int step = 0; step < 3; step++) assert_int_equal(fixture_write_step(s, step, 0), 0);
    assert_int_equal(aha_runstore_last_step(s, &last), 0);
    assert_int_equal(last, 2);
    aha_runstore_close(s);

    s = aha_runstore_open_readonly(path);
    assert_non_null(s);
    assert_near(query_double(s, "SELECT count(*) FROM rollouts"), 3 * FIXTURE_PROMPTS * FIXTURE_GROUP, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rewards"), 3 * FIXTURE_PROMPTS * FIXTURE_GROUP * 2, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rewards WHERE score IS NULL"), 3 * FIXTURE_PROMPTS, 0);
    assert_near(query_double(s, "SELECT count(*) FROM steps WHERE kl IS NOT NULL"), 3, 0);
    assert_true(isnan(query_double(s, "SELECT ratio_min FROM steps WHERE step = 1"))); /* NaN -> NULL */
    assert_near(query_double(s, "SELECT entropy FROM steps WHERE step = 2"), 1.8, 1e-12);
    assert_near(query_double(s, "SELECT count(*) FROM evals"), 1, 0);
    assert_near(query_double(s, "SELECT count(DISTINCT prompt_id) FROM rollouts"), 6, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rollouts_v WHERE prompt LIKE 'What is 12 + 12%' AND gold = '24'"),
                3 * FIXTURE_GROUP, 0);
    assert_near(query_double(s, "SELECT seed FROM run"), 7, 0);
    /* the indexes the inspect questions rely on are used */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(aha_runstore_db(s),
                                        "EXPLAIN QUERY PLAN SELECT * FROM rollouts WHERE step = 1 ORDER BY reward DESC LIMIT 3",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_non_null(strstr((const char *)sqlite3_column_text(st, 3), "rollouts_by_step_reward"));
    sqlite3_finalize(st);
    aha_runstore_close(s);

    /* reopening for writing (resume) keeps everything and records the resume */
    s = aha_runstore_open(path);
    assert_non_null(s);
    assert_int_equal(aha_runstore_set_run(s, "ignored", 7, "0.1.0"), 0);
    assert_near(query_double(s, "SELECT from_step FROM resumes"), 2, 0);
    assert_int_equal(aha_runstore_truncate_after(s, 0), 0);
    assert_int_equal(aha_runstore_last_step(s, &last), 0);
    assert_int_equal(last, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rollouts"), FIXTURE_PROMPTS * FIXTURE_GROUP, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rewards"), FIXTURE_PROMPTS * FIXTURE_GROUP * 2, 0);
    assert_near(query_double(s, "SELECT count(*) FROM evals"), 0, 0);
    assert_int_equal(fixture_write_step(s, 1, 0), 0); /* the redone step fits again */
    aha_runstore_close(s);
    free(path);
    fixture_rm_rf(dir);
    free(dir);
}

/* A child writes half a step and dies (exit without commit, then SIGKILL while writing):
 * the store holds the complete steps before it and nothing of the half step. */
static void test_crash_mid_step_leaves_no_half_step(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char *path = store_path(dir);
    AhaRunStore *s = aha_runstore_open(path);
    assert_non_null(s);
    assert_int_equal(aha_runstore_set_run(s, "x: 1\n", 1, "0.1.0"), 0);
    assert_int_equal(fixture_write_step(s, 0, 0), 0);
    aha_runstore_close(s);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        AhaRunStore *c = aha_runstore_open(path);
        if (!c || fixture_write_step(c, 1, 5) != 1) _exit(3);
        _exit(0); /* dies holding an open transaction with 5 rollouts */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        AhaRunStore *c = aha_runstore_open(path);
        if (!c) _exit(3);
        aha_runstore_begin_step(c, 1);
        for (int i = 0;; i++) { /* keeps writing until killed */
            static const char *const names[] = {"math"};
            double score = 1.0;
            AhaRolloutRecord r = {.prompt_index = i, .sample_index = 0, .prompt_id = 1, .prompt = "p",
                                  .completion = "c", .n_tokens = 1, .reward = 1, .advantage = 0,
                                  .stop_reason = "eos", .mean_logprob = -1, .n_components = 1,
                                  .component_names = names, .scores = &score};
            if (aha_runstore_add_rollout(c, &r) != 0) _exit(4);
            if (i == 200 && write(fds[1], "x", 1) != 1) _exit(5);
        }
    }
    close(fds[1]);
    char byte;
    assert_int_equal(read(fds[0], &byte, 1), 1);
    close(fds[0]);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    s = aha_runstore_open(path);
    assert_non_null(s);
    assert_near(query_double(s, "SELECT count(*) FROM rollouts WHERE step = 1"), 0, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rollouts"), FIXTURE_PROMPTS * FIXTURE_GROUP, 0);
    assert_near(query_double(s, "SELECT count(*) FROM rewards"), FIXTURE_PROMPTS * FIXTURE_GROUP * 2, 0);
    assert_near(query_double(s, "SELECT count(*) FROM steps"), 1, 0);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(aha_runstore_db(s), "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(fixture_write_step(s, 1, 0), 0);
    aha_runstore_close(s);
    free(path);
    fixture_rm_rf(dir);
    free(dir);
}

static void test_bad_use_and_bad_files(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char *path = store_path(dir);
    assert_null(aha_runstore_open_readonly(path));
    assert_non_null(strstr(aha_error_message(), "no run store here"));
    AhaRunStore *s = aha_runstore_open(path);
    assert_non_null(s);
    AhaRolloutRecord r = {.prompt = "p", .completion = "c", .stop_reason = "eos"};
    assert_int_equal(aha_runstore_add_rollout(s, &r), -1);
    assert_non_null(strstr(aha_error_message(), "outside a step"));
    assert_int_equal(aha_runstore_begin_step(s, 0), 0);
    assert_int_equal(aha_runstore_begin_step(s, 1), -1);
    assert_non_null(strstr(aha_error_message(), "step 2 begun while step 1 is still open" /* 1-based, as the progress lines */));
    assert_int_equal(aha_runstore_add_rollout(s, &r), 0);
    assert_int_equal(aha_runstore_add_rollout(s, &r), -1); /* same (step, prompt, sample) */
    assert_non_null(strstr(aha_error_message(), "UNIQUE"));
    aha_runstore_rollback(s);
    AhaStepMetrics m;
    aha_step_metrics_init(&m);
    assert_int_equal(aha_runstore_commit_step(s, &m), -1);
    aha_runstore_close(s);
    /* a store without a run record, then a file that is not SQLite at all */
    assert_null(aha_runstore_open_readonly(path));
    assert_non_null(strstr(aha_error_message(), "not an aha run store"));
    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.db", dir);
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("this is not a database, just text that is long enough to have a header\n", f);
    fclose(f);
    assert_null(aha_runstore_open_readonly(junk));
    assert_non_null(strstr(aha_error_message(), "junk.db"));
    assert_null(aha_runstore_open(junk));
    assert_non_null(strstr(aha_error_message(), "junk.db"));
    free(path);
    fixture_rm_rf(dir);
    free(dir);
}

/* Another process (a sqlite3 shell) holds a write transaction: the writer waits (longer
 * than the hold: the step goes through), and past its timeout says who holds the lock. */
static void test_a_held_write_lock(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char *path = store_path(dir);
    AhaRunStore *s = aha_runstore_open(path);
    assert_non_null(s);
    assert_int_equal(aha_runstore_set_run(s, "recipe", 1, "test"), 0);
    for (int hold_ms = 300; hold_ms <= 3000; hold_ms += 2700) {
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t holder = fork();
        if (holder == 0) {
            sqlite3 *db;
            if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                _exit(1);
            if (write(ready[1], "x", 1) != 1) _exit(1);
            usleep((useconds_t)hold_ms * 1000);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            sqlite3_close(db);
            _exit(0);
        }
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        close(ready[1]);
        if (hold_ms == 300) { /* within the default wait */
            assert_int_equal(aha_runstore_begin_step(s, 0), 0);
            aha_runstore_rollback(s);
        } else {
            aha_runstore_set_busy_timeout(s, 500);
            assert_int_equal(aha_runstore_begin_step(s, 0), -1);
            char want[256];
            snprintf(want, sizeof want, "beginning a step: the store stayed locked for 0.5 s by process %ld (a sqlite3 "
                     "shell or program holding a write transaction?)", (long)holder);
            if (!strstr(aha_error_message(), want)) fail_msg("expected '%s', got: %s", want, aha_error_message());
        }
        int st;
        assert_int_equal(waitpid(holder, &st, 0), holder);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    aha_runstore_close(s);
    free(path);
    fixture_rm_rf(dir);
    free(dir);
}

/* A value SQLite refuses to bind (over its length limit) is an error, not a NULL stored. */
static void test_bind_failures_are_errors(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char *path = store_path(dir);
    AhaRunStore *s = aha_runstore_open(path);
    assert_non_null(s);
    sqlite3_limit(aha_runstore_db(s), SQLITE_LIMIT_LENGTH, 1000);
    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = '\0';
    assert_int_equal(aha_runstore_begin_step(s, 4), 0);
    AhaRolloutRecord r = {.prompt = "p", .completion = big, .stop_reason = "eos"};
    assert_int_equal(aha_runstore_add_rollout(s, &r), -1);
    assert_non_null(strstr(aha_error_message(), "recording a rollout: binding a value failed: string or blob too big"));
    aha_runstore_rollback(s);
    aha_runstore_close(s);
    free(path);
    fixture_rm_rf(dir);
    free(dir);
}

/* Resuming drops the later steps and records the resume in one transaction; quick_check
 * finds damage. */
static void test_resume_and_quick_check(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char *path = store_path(dir);
    AhaRunStore *s = aha_runstore_open(path);
    assert_non_null(s);
    assert_int_equal(aha_runstore_set_run(s, "recipe", 1, "test"), 0);
    for (int step = 0; step < 3; step++) assert_int_equal(fixture_write_step(s, step, -1), 0);
    assert_int_equal(aha_runstore_quick_check(s), 0);
    int has = 0;
    assert_int_equal(aha_runstore_has_run(s, &has), 0);
    assert_int_equal(has, 1);
    assert_int_equal(aha_runstore_resume(s, 0), 0);
    assert_true(query_double(s, "SELECT max(step) FROM steps") == 0);
    assert_true(query_double(s, "SELECT from_step FROM resumes") == 2);
    assert_true(query_double(s, "SELECT count(*) FROM rollouts WHERE step > 0") == 0);
    aha_runstore_close(s);
    /* garbage over the pages after the header: quick_check names the damage */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 8192);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(fseek(f, 4096, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    s = aha_runstore_open(path);
    if (s) {
        assert_int_equal(aha_runstore_quick_check(s), -1);
        aha_runstore_close(s);
    }
    const char *msg = aha_error_message();
    if (!strstr(msg, path) || !strstr(msg, "the run store is damaged (")) fail_msg("got: %s", msg);
    free(path);
    fixture_rm_rf(dir);
    free(dir);
}

/* docs/run-store.md documents every step column, and nothing else as one. */
static void test_every_column_is_documented(void **state) {
    (void)state;
    FILE *f = fopen("docs/run-store.md", "r");
    assert_non_null(f);
    static char doc[1 << 16];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    int count;
    const AhaStepColumn *c = aha_step_columns(&count);
    for (int i = 0; i < count; i++) {
        char row[96];
        snprintf(row, sizeof row, "\n| `%s` |", c[i].name);
        if (!strstr(doc, row)) fail_msg("docs/run-store.md has no row for step column %s", c[i].name);
    }
    int rows = 0;
    const char *section = strstr(doc, "### Step metrics");
    assert_non_null(section);
    const char *end = strstr(section, "\n## ");
    for (const char *p = section; (p = strstr(p, "\n| `")) != NULL && p < end; p++) rows++;
    assert_int_equal(rows, count);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_crash_mid_step_leaves_no_half_step),
        cmocka_unit_test(test_bad_use_and_bad_files),
        cmocka_unit_test(test_a_held_write_lock),
        cmocka_unit_test(test_bind_failures_are_errors),
        cmocka_unit_test(test_resume_and_quick_check),
        cmocka_unit_test(test_every_column_is_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
