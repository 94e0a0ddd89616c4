/* Kill and resume: `aha train` killed with SIGKILL at a random moment (twice) and resumed
 * with --resume records exactly what an uninterrupted run records, bit for bit: every
 * deterministic step metric, every rollout, reward and eval. SIGINT stops cleanly after
 * the current step (exit 130, a checkpoint) and resuming finishes the same run; SIGTERM
 * does the same with exit 143. */
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

#include "aha/error.h"
#include "rl/trainer_test_util.h"

/* Small enough for ASan, with every resumable piece in play: shuffled data past an epoch,
 * a reference refresh, evals, several AdamW steps per GRPO step, checkpoints every 2. */
#define RESUME_SETS                                                                                  \
    "--set run.steps=8 --set rollout.prompts_per_step=3 --set rollout.group_size=3 "              \
    "--set rollout.max_new_tokens=6 --set run.eval_every=2 --set run.checkpoint_every=2 "       \
    "--set algorithm.ref_refresh_steps=2"

static char *tmp;
static char *reference_dump;
static double full_seconds;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static pid_t spawn_train(const char *bin, const char *run_dir, int resume) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    char cmd[16384];
    if (resume)
        snprintf(cmd, sizeof cmd, "exec '%s' train --resume '%s' > /dev/null 2>> '%s.err'", bin, run_dir, run_dir);
    else
        snprintf(cmd, sizeof cmd, "exec '%s' train %s --set run.output_dir='%s' " RESUME_SETS " > /dev/null 2>> '%s.err'",
                 bin, TINY_RECIPE, run_dir, run_dir);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

static int wait_status(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

static int setup(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) return 0;
    tmp = tt_tmpdir();
    if (!tmp) return -1;
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/full", tmp);
    double t0 = now();
    int rc = wait_status(spawn_train(bin, dir, 0));
    full_seconds = now() - t0;
    if (rc != 0) {
        fprintf(stderr, "the uninterrupted run failed (%d); see %s.err\n", rc, dir);
        return -1;
    }
    reference_dump = tt_dump_run(dir);
    return reference_dump ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    if (tmp) tt_rm_rf(tmp);
    free(tmp);
    free(reference_dump);
    return 0;
}

static void sleep_seconds(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Kills runs at random moments until two kills have landed mid-run (a kill that comes
 * after the run finished starts a fresh one), resuming after each, then finishes the run
 * and compares it with the uninterrupted one. */
static void test_sigkill_and_resume(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    /* AHA_TEST_SEED=S repeats the kill times of a printed failing run */
    const char *given = getenv("AHA_TEST_SEED");
    unsigned seed = given ? (unsigned)strtoul(given, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "kill times from seed %u (AHA_TEST_SEED=%u repeats them)\n", seed, seed);
    srand(seed);
    char dir[4300], recipe[4400];
    snprintf(dir, sizeof dir, "%s/killed", tmp);
    snprintf(recipe, sizeof recipe, "%s/recipe.yaml", dir);
    int kills = 0;
    for (int attempt = 0; attempt < 20 && kills < 2; attempt++) {
        /* resume when a killed run left its directory, else start fresh */
        int resume = access(recipe, F_OK) == 0;
        pid_t pid = spawn_train(bin, dir, resume);
        double at = full_seconds * (0.02 + 0.9 * rand() / (double)RAND_MAX);
        sleep_seconds(at);
        kill(pid, SIGKILL);
        int rc = wait_status(pid);
        fprintf(stderr, "attempt %d (seed %u, %s): SIGKILL at %.3f s of ~%.3f s: %s, last step recorded %g\n",
                attempt, seed, resume ? "resumed" : "fresh", at, full_seconds,
                rc == 128 + SIGKILL ? "killed" : "had finished", tt_query(dir, "SELECT max(step) FROM steps"));
        if (rc == 128 + SIGKILL) {
            kills++;
        } else {
            assert_int_equal(rc, 0);
            if (kills < 2) tt_rm_rf(dir); /* finished before the kill: try again from scratch */
        }
    }
    assert_int_equal(kills, 2);
    if (access(recipe, F_OK) == 0) assert_int_equal(wait_status(spawn_train(bin, dir, 1)), 0);
    else assert_int_equal(wait_status(spawn_train(bin, dir, 0)), 0);
    fprintf(stderr, "%g resume(s) recorded\n", tt_query(dir, "SELECT count(*) FROM resumes"));
    char *dump = tt_dump_run(dir);
    assert_non_null(dump);
    assert_true(tt_same_dump(reference_dump, dump));
    free(dump);
}

/* SIGINT after the first recorded step: the run checkpoints the step it is in and exits 130,
 * and the resumed run ends like the uninterrupted one. A run that finished before the signal
 * arrived proves nothing, so it is tried again; the test fails if the signal never lands. */
static void test_sigint_stops_after_the_step(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/interrupted", tmp);
    int rc = -1;
    for (int attempt = 0; attempt < 5 && rc != 130; attempt++) {
        tt_rm_rf(dir);
        pid_t pid = spawn_train(bin, dir, 0);
        /* wait until the first step is recorded, then interrupt */
        for (int i = 0; i < 3000 && !(tt_query(dir, "SELECT count(*) FROM steps") >= 1); i++) sleep_seconds(0.01);
        kill(pid, SIGINT);
        rc = wait_status(pid);
        if (rc != 130) {
            assert_int_equal(rc, 0); /* finished before the signal arrived: try again */
            fprintf(stderr, "attempt %d: the run finished before SIGINT arrived\n", attempt);
        }
    }
    if (rc != 130) fail_msg("SIGINT never arrived while the run was going (5 attempts)");
    int steps = (int)tt_query(dir, "SELECT count(*) FROM steps");
    assert_true(steps >= 1 && steps < 8);
    char ck[4400];
    snprintf(ck, sizeof ck, "%s/checkpoints/step-%08d/state.json", dir, steps);
    if (access(ck, F_OK) != 0) fail_msg("no checkpoint of the interrupted step: %s", ck);
    assert_int_equal(wait_status(spawn_train(bin, dir, 1)), 0);
    assert_int_equal((int)tt_query(dir, "SELECT count(*) FROM resumes"), 1);
    char *dump = tt_dump_run(dir);
    assert_non_null(dump);
    assert_true(tt_same_dump(reference_dump, dump));
    free(dump);
}

/* SIGTERM (Slurm, Kubernetes) stops like SIGINT, with exit status 143. The run is far too
 * long to finish before the signal, so the signal always lands mid-run. */
static void test_sigterm_stops_after_the_step(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/terminated", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[16384];
        snprintf(cmd, sizeof cmd, "exec '%s' train %s --set run.output_dir='%s' " RESUME_SETS
                 " --set run.steps=100000 > '%s.out' 2> '%s.err'", bin, TINY_RECIPE, dir, dir, dir);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 6000 && !(tt_query(dir, "SELECT count(*) FROM steps") >= 1); i++) sleep_seconds(0.01);
    assert_true(tt_query(dir, "SELECT count(*) FROM steps") >= 1);
    kill(pid, SIGTERM);
    assert_int_equal(wait_status(pid), 143);
    int steps = (int)tt_query(dir, "SELECT count(*) FROM steps");
    assert_true(steps >= 1 && steps < 100000);
    char ck[4400];
    snprintf(ck, sizeof ck, "%s/checkpoints/step-%08d/state.json", dir, steps);
    if (access(ck, F_OK) != 0) fail_msg("no checkpoint of the terminated step: %s", ck);
    assert_int_equal(tt_system("grep -q 'interrupted after step %d; continue with' '%s.out'", steps, dir), 0);
    assert_int_equal(tt_system("grep -q 'SIGTERM: stopping after the current step' '%s.err'", dir), 0);
}

static void test_resume_refuses_a_changed_recipe(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/full", tmp);
    assert_int_equal(tt_system("sed -i 's/^  lr: .*/  lr: 0.5/' '%s/recipe.yaml'", dir), 0);
    assert_int_equal(tt_system("'%s' train --resume '%s' > /dev/null 2> '%s/err.txt'", bin, dir, tmp), 1);
    assert_int_equal(tt_system("grep -q 'another recipe' '%s/err.txt'", tmp), 0);
}

/* A run killed while writing its first checkpoint leaves only checkpoints/.tmp-step-*:
 * resuming starts over from step 0 and ends like the uninterrupted run. */
static void test_resume_with_only_a_partial_checkpoint(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/partial", tmp);
    assert_int_equal(wait_status(spawn_train(bin, dir, 0)), 0);
    assert_int_equal(tt_system("cd '%s' && rm -rf checkpoints/step-* && mkdir checkpoints/.tmp-step-00000002 && "
                               "echo junk > checkpoints/.tmp-step-00000002/state.json", dir), 0);
    assert_int_equal(wait_status(spawn_train(bin, dir, 1)), 0);
    char *dump = tt_dump_run(dir);
    assert_non_null(dump);
    assert_true(tt_same_dump(reference_dump, dump));
    free(dump);
    assert_int_equal((int)tt_query(dir, "SELECT from_step FROM resumes"), 7);
}

/* A bf16 policy checkpoint (model.save_dtype: bf16) still resumes exactly: the F32 master
 * weights travel in optimizer.safetensors. Resuming a copy of a finished run from its
 * middle checkpoint re-records the second half identically. */
static void test_bf16_checkpoint_resumes_exactly(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char a[4300], b[4300];
    snprintf(a, sizeof a, "%s/bf16", tmp);
    snprintf(b, sizeof b, "%s/bf16-copy", tmp);
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s' --set model.save_dtype=bf16 --set run.steps=4 "
                               "--set run.checkpoint_every=2 --set run.keep_checkpoints=5 --set rollout.max_new_tokens=6 "
                               "> /dev/null", bin, TINY_RECIPE, a), 0);
    assert_int_equal(tt_system("grep -q BF16 '%s/checkpoints/step-00000002/policy/model.safetensors'", a), 0);
    assert_int_equal(tt_system("cp -r '%s' '%s' && rm -rf '%s/checkpoints/step-00000004' && "
                               "'%s' train --resume '%s' > /dev/null", a, b, b, bin, b), 0);
    assert_int_equal((int)tt_query(b, "SELECT from_step FROM resumes"), 3);
    char *da = tt_dump_run(a), *db = tt_dump_run(b);
    assert_non_null(da);
    assert_non_null(db);
    assert_true(tt_same_dump(da, db));
    free(db);
    /* resuming a finished run changes nothing */
    assert_int_equal(tt_system("'%s' train --resume '%s' > '%s/out.txt'", bin, a, tmp), 0);
    assert_int_equal(tt_system("grep -q 'already finished its 4 steps' '%s/out.txt'", tmp), 0);
    char *again = tt_dump_run(a);
    assert_non_null(again);
    assert_true(tt_same_dump(da, again));
    free(again);
    free(da);
    /* the final weights are equal too */
    assert_int_equal(tt_system("cmp -s '%s/checkpoints/step-00000004/optimizer.safetensors' "
                               "'%s/checkpoints/step-00000004/optimizer.safetensors'", a, b), 0);
}

/* A finished run trained further: --resume with --set run.steps=N records what a run of
 * N steps from the start records (constant learning rate); only bookkeeping keys may
 * change. */
static void test_extend_a_finished_run(void **state) {
    (void)state;
    const char *bin = tt_bin();
    if (!bin) skip();
    char a[4300], b[4300];
    snprintf(a, sizeof a, "%s/long", tmp);
    snprintf(b, sizeof b, "%s/extended", tmp);
    const char *common = "--set optim.schedule=constant --set rollout.max_new_tokens=6 --set run.eval_every=2";
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s' %s --set run.steps=5 > /dev/null", bin,
                               TINY_RECIPE, a, common), 0);
    assert_int_equal(tt_system("'%s' train %s --set run.output_dir='%s' %s --set run.steps=3 > /dev/null", bin,
                               TINY_RECIPE, b, common), 0);
    assert_int_equal(tt_system("'%s' train --resume '%s' --set optim.lr=1 2> '%s/err.txt'", bin, b, tmp), 1);
    assert_int_equal(tt_system("grep -q 'can change only run.steps' '%s/err.txt'", tmp), 0);
    assert_int_equal(tt_system("'%s' train --resume '%s' --set run.steps=5 --set run.keep_checkpoints=4 > '%s/out.txt'",
                               bin, b, tmp), 0);
    assert_int_equal(tt_system("grep -q 'resuming at step 4 of 5' '%s/out.txt'", tmp), 0);
    assert_int_equal(tt_system("grep -q '^  steps: 5' '%s/recipe.yaml'", b), 0);
    char *da = tt_dump_run(a), *db = tt_dump_run(b);
    assert_non_null(da);
    assert_non_null(db);
    assert_true(tt_same_dump(da, db));
    free(da);
    free(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_and_resume),
        cmocka_unit_test(test_sigint_stops_after_the_step),
        cmocka_unit_test(test_sigterm_stops_after_the_step),
        cmocka_unit_test(test_resume_with_only_a_partial_checkpoint),
        cmocka_unit_test(test_bf16_checkpoint_resumes_exactly),
        cmocka_unit_test(test_extend_a_finished_run),
        cmocka_unit_test(test_resume_refuses_a_changed_recipe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
