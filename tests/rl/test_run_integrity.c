/* Nothing lost, nothing silent: one writer per run (a second is refused naming the first's
 * PID, readers still read), a missing, empty, damaged or short run store refused on resume,
 * a flipped byte in a checkpoint refused naming the file and the older checkpoint (and
 * --fall-back resuming from it exactly), stale .tmp-step-* folders removed at the start, a
 * failed resume recording no resume, a read-only run directory said as such, and worked
 * solutions without a final answer refused as gold. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "rl/trainer_test_util.h"

#define SMALL_RUN "--set run.steps=4 --set run.checkpoint_every=2 --set run.keep_checkpoints=3 " \
                  "--set rollout.max_new_tokens=6 --set run.eval_every=2"

static char *tmp;
static char finished[4300]; /* a finished 4-step run with checkpoints of steps 2 and 4 */
static char *finished_dump;

static int setup(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) return 0;
    if (!(tmp = tt_tmpdir())) return -1;
    snprintf(finished, sizeof finished, "%s/finished", tmp);
    if (tt_system("'%s' train %s --set run.output_dir='%s' " SMALL_RUN " > /dev/null", bin, TINY_RECIPE, finished) != 0)
        return -1;
    finished_dump = tt_dump_run(finished);
    return finished_dump ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    if (tmp) tt_rm_rf(tmp);
    free(tmp);
    free(finished_dump);
    return 0;
}

/* A copy of the finished run, named name. */
static void copy_finished(const char *name, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/%s", tmp, name);
    assert_int_equal(tt_system("rm -rf '%s' && cp -r '%s' '%s'", dir, finished, dir), 0);
}

/* Runs aha train --resume DIR ARGS; returns the exit status, stderr in tmp/err.txt. */
static int resume(const char *dir, const char *args) {
    return tt_system("'%s' train --resume '%s' %s > '%s/out.txt' 2> '%s/err.txt'", tt_bin(), dir, args, tmp, tmp);
}

/* tmp/err.txt holds exactly "aha train: error: <want>\n". */
static void expect_error(const char *fmt, ...) {
    char want[8192], got[8192] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    char path[4400];
    snprintf(path, sizeof path, "%s/err.txt", tmp);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = '\0';
    char full[8300];
    snprintf(full, sizeof full, "aha train: error: %s\n", want);
    if (strcmp(full, got) != 0) fail_msg("expected:\n%s\ngot:\n%s", full, got);
}

static void sleep_seconds(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int wait_status(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

static void test_a_second_writer_is_refused(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/busy", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[16384];
        snprintf(cmd, sizeof cmd, "exec '%s' train %s --set run.output_dir='%s' --set run.steps=100000 "
                 "--set rollout.max_new_tokens=6 > /dev/null 2>&1", bin, TINY_RECIPE, dir);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 6000 && !(tt_query(dir, "SELECT count(*) FROM steps") >= 1); i++) sleep_seconds(0.01);
    assert_true(tt_query(dir, "SELECT count(*) FROM steps") >= 1);
    assert_int_equal(resume(dir, ""), 1);
    expect_error("%s: process %ld is training this run (it holds %s/aha.lock); one aha train writes a run at a "
                 "time (aha inspect and aha report may read it meanwhile)", dir, (long)pid, dir);
    /* a fresh run into the same directory is refused before it is even set up */
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s' 2> '%s/err.txt'", bin, TINY_RECIPE, dir, tmp), 1);
    expect_error("run.output_dir %s already holds a run (run.db); continue it with aha train --resume %s, or choose "
                 "another output_dir", dir, dir);
    /* readers need no lock */
    assert_int_equal(tt_system("'%s' inspect '%s' > /dev/null", bin, dir), 0);
    kill(pid, SIGTERM);
    assert_int_equal(wait_status(pid), 143);
    /* the kernel released the lock with the process: the run resumes */
    assert_int_equal(resume(dir, "--set run.steps=2"), 0);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM resumes"), 1);
}

static void test_missing_or_empty_store(void **state) {
    (void)state;
    if (!tt_bin()) skip();
    char dir[4300];
    copy_finished("nostore", dir, sizeof dir);
    assert_int_equal(tt_system("rm '%s/run.db' && rm -rf '%s/checkpoints/step-00000004'", dir, dir), 0);
    assert_int_equal(resume(dir, ""), 1);
    expect_error("%s/run.db is missing: resuming would start a new record at the checkpoint's step and lose the "
                 "steps before it; restore run.db, or resume into a new store with aha train --resume %s --new-store",
                 dir, dir);
    assert_int_equal(tt_system(": > '%s/run.db'", dir), 0);
    assert_int_equal(resume(dir, ""), 1);
    expect_error("%s/run.db is empty: resuming would start a new record at the checkpoint's step and lose the "
                 "steps before it; restore run.db, or resume into a new store with aha train --resume %s --new-store",
                 dir, dir);
    /* asked for explicitly: a new store that starts at the checkpoint (steps 3 and 4) */
    assert_int_equal(resume(dir, "--new-store"), 0);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM steps"), 2);
    assert_int_equal((int)tt_query(dir, "SELECT min(step) FROM steps"), 2);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM run"), 1);
}

static void test_damaged_or_short_store(void **state) {
    (void)state;
    if (!tt_bin()) skip();
    char dir[4300];
    copy_finished("short", dir, sizeof dir);
    /* the store lost steps the checkpoint has (an older copy of run.db) */
    assert_int_equal(tt_system("sqlite3 '%s/run.db' 'DELETE FROM steps WHERE step >= 1'", dir), 0);
    assert_int_equal(resume(dir, "--set run.steps=6"), 1);
    expect_error("%s/run.db ends at step 1 but the checkpoint is of step 4: steps 2..4 are missing from the store "
                 "(an older copy of run.db?); restore the run's own run.db", dir);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM resumes"), 0); /* a failed resume records none */
    /* garbage over a page of the store */
    copy_finished("damaged", dir, sizeof dir);
    assert_int_equal(tt_system("dd if=/dev/zero of='%s/run.db' bs=4096 seek=1 count=2 conv=notrunc 2> /dev/null", dir), 0);
    assert_int_equal(resume(dir, "--set run.steps=6"), 1);
    assert_int_equal(tt_system("grep -q '^aha train: error: %s/run.db: .*the run store is damaged' '%s/err.txt'", dir, tmp), 0);
}

static void test_a_flipped_byte_in_a_checkpoint(void **state) {
    (void)state;
    if (!tt_bin()) skip();
    char dir[4300];
    copy_finished("flipped", dir, sizeof dir);
    /* the newest checkpoint's weights get one byte changed */
    assert_int_equal(tt_system("printf '\\125' | dd of='%s/checkpoints/step-00000004/policy/model.safetensors' bs=1 "
                               "seek=5000 conv=notrunc 2> /dev/null", dir), 0);
    assert_int_equal(resume(dir, ""), 1);
    assert_int_equal(tt_system("grep -q '^aha train: error: %s/checkpoints/step-00000004/policy/model.safetensors: "
                               "damaged: [0-9]* bytes with crc32 [0-9a-f]*, but state.json says [0-9]* bytes with crc32 "
                               "[0-9a-f]*; the newest checkpoint %s/checkpoints/step-00000004 cannot be resumed from; "
                               "the older complete checkpoint %s/checkpoints/step-00000002 passes its checks: resume "
                               "from it with aha train --resume %s --fall-back$' '%s/err.txt'", dir, dir, dir, dir, tmp), 0);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM resumes"), 0);
    /* --fall-back resumes from step 2 and records what the uninterrupted run recorded */
    assert_int_equal(resume(dir, "--fall-back"), 0);
    assert_int_equal(tt_system("grep -q 'damaged: .*; falling back to step 2' '%s/out.txt'", tmp), 0);
    char path[4400];
    snprintf(path, sizeof path, "%s/checkpoints/damaged-step-00000004/state.json", dir);
    assert_int_equal(access(path, F_OK), 0);
    char *dump = tt_dump_run(dir);
    assert_non_null(dump);
    assert_true(tt_same_dump(finished_dump, dump));
    free(dump);
    assert_int_equal((int)tt_query(dir, "SELECT from_step FROM resumes"), 3);
    /* aha eval of the run checks the checkpoint it picks the same way */
    assert_int_equal(tt_system("cp '%s/checkpoints/step-00000004/policy/model.safetensors' '%s/saved' && "
                               "printf '\\125' | dd of='%s/checkpoints/step-00000004/policy/model.safetensors' bs=1 "
                               "seek=5000 conv=notrunc 2> /dev/null", dir, tmp, dir), 0);
    assert_int_equal(tt_system("'%s' eval --model '%s' --data tests/fixtures/rl/eval.jsonl -k 0 --limit 1 > /dev/null "
                               "2> '%s/err.txt'", tt_bin(), dir, tmp), 1);
    assert_int_equal(tt_system("grep -q '^aha eval: error: %s/checkpoints/step-00000004/policy/model.safetensors: "
                               "damaged: ' '%s/err.txt'", dir, tmp), 0);
    assert_int_equal(tt_system("cp '%s/saved' '%s/checkpoints/step-00000004/policy/model.safetensors'", tmp, dir), 0);
    /* a missing file is named too */
    assert_int_equal(tt_system("rm '%s/checkpoints/step-00000004/optimizer.safetensors'", dir), 0);
    assert_int_equal(resume(dir, "--set run.steps=5"), 1);
    assert_int_equal(tt_system("grep -q '^aha train: error: %s/checkpoints/step-00000004/optimizer.safetensors: listed "
                               "in state.json but missing: No such file or directory; the newest checkpoint' '%s/err.txt'",
                               dir, tmp), 0);
}

static void test_stale_partial_checkpoints_are_removed(void **state) {
    (void)state;
    if (!tt_bin()) skip();
    char dir[4300], path[4400];
    copy_finished("stale", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/checkpoints/.tmp-step-00000006", dir);
    assert_int_equal(tt_system("mkdir '%s' && echo junk > '%s/state.json'", path, path), 0);
    assert_int_equal(resume(dir, ""), 0); /* already finished: nothing else changes */
    assert_int_not_equal(access(path, F_OK), 0);
}

/* As root, a directory is read-only only to another user: the checks run as nobody. */
static int as_reader(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return wait_status(pid);
}

static void test_a_read_only_run_directory(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char dir[4300], cmd[16384];
    copy_finished("readonly", dir, sizeof dir);
    assert_int_equal(tt_system("chmod -R a+rX '%s' && chmod a-w '%s' && chmod a+w '%s' && rm -f '%s/err.txt'", tmp, dir,
                               tmp, tmp), 0);
    snprintf(cmd, sizeof cmd, "'%s' train --resume '%s' > /dev/null 2> '%s/err.txt'", bin, dir, tmp);
    assert_int_equal(as_reader(cmd), 1);
    expect_error("%s: the run directory is read-only (a run is written by one aha train that needs to create "
                 "%s/aha.lock): Permission denied", dir, dir);
    /* readers read it (no write-ahead log is left: run.db alone is the store) */
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' > '%s/inspect.txt' 2>&1", bin, dir, tmp);
    assert_int_equal(as_reader(cmd), 0);
    assert_int_equal(tt_system("grep -q '4 steps (last 3)' '%s/inspect.txt'", tmp), 0);
    assert_int_equal(tt_system("chmod u+w '%s' && chmod go-w '%s'", dir, tmp), 0);
}

/* A GSM8K-style solution without "#### N" is refused at its line unless allowed. */
static void test_answers_without_a_final_answer(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char data[4300], dir[4300];
    snprintf(data, sizeof data, "%s/solutions.jsonl", tmp);
    FILE *f = fopen(data, "w");
    assert_non_null(f);
    fputs("{\"question\": \"1+1=\", \"answer\": \"2\"}\n"
          "{\"question\": \"2+3=\", \"answer\": \"2 + 3 makes\\nfive\"}\n", f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/bare", tmp);
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s' --set data.train='%s' --set run.steps=1 "
                               "> /dev/null 2> '%s/err.txt'", bin, TINY_RECIPE, dir, data, tmp), 1);
    expect_error("data.train: %s:2: field \"answer\" is a worked solution with no final answer (\"#### N\" or "
                 "\\boxed{}): the math reward would take the whole text as the gold; fix the row, or accept such rows "
                 "with data.bare_answers: true (aha eval: --bare-answers)", data);
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s' --set data.train='%s' --set run.steps=1 "
                               "--set data.bare_answers=true --set run.eval_every=0 > /dev/null", bin, TINY_RECIPE, dir,
                               data), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_second_writer_is_refused),
        cmocka_unit_test(test_missing_or_empty_store),
        cmocka_unit_test(test_damaged_or_short_store),
        cmocka_unit_test(test_a_flipped_byte_in_a_checkpoint),
        cmocka_unit_test(test_stale_partial_checkpoints_are_removed),
        cmocka_unit_test(test_a_read_only_run_directory),
        cmocka_unit_test(test_answers_without_a_final_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
