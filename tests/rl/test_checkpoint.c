/* Checkpoint directories, the trainer state file and the data order: atomicity, pruning,
 * exact round trips, resumable order, and clear errors for damaged files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/trainer.h"
#include "rl/rl_store_fixture.h"

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_checkpoints_are_atomic_and_pruned(void **state) {
    (void)state;
    char *run = fixture_tmpdir();
    int step;
    char *path;
    assert_int_equal(aha_checkpoint_latest(run, &step, &path), 0);
    assert_int_equal(step, -1);
    assert_null(path);
    for (int s = 10; s <= 40; s += 10) {
        char *tmp = aha_checkpoint_prepare(run, s);
        assert_non_null(tmp);
        assert_non_null(strstr(tmp, "/checkpoints/.tmp-step-"));
        char file[512];
        snprintf(file, sizeof file, "%s/state.json", tmp);
        write_file(file, "{}");
        assert_int_equal(aha_checkpoint_finish(run, tmp, s, 2), 0);
        assert_false(exists(tmp));
        free(tmp);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/checkpoints/step-00000010", run);
    assert_false(exists(p)); /* pruned: keep 2 */
    snprintf(p, sizeof p, "%s/checkpoints/step-00000030/state.json", run);
    assert_true(exists(p));
    /* a crash mid-write leaves a .tmp directory that latest ignores */
    char *tmp = aha_checkpoint_prepare(run, 50);
    assert_non_null(tmp);
    assert_int_equal(aha_checkpoint_latest(run, &step, &path), 0);
    assert_int_equal(step, 40);
    assert_non_null(strstr(path, "/checkpoints/step-00000040"));
    free(path);
    /* the next prepare of that step starts from an empty directory */
    char stale[512];
    snprintf(stale, sizeof stale, "%s/half-written.bin", tmp);
    write_file(stale, "x");
    free(tmp);
    tmp = aha_checkpoint_prepare(run, 50);
    assert_false(exists(stale));
    /* rewriting a step that exists (after a resume) replaces it */
    assert_int_equal(aha_checkpoint_finish(run, tmp, 40, 0), 0);
    free(tmp);
    assert_int_equal(aha_checkpoint_latest(run, &step, &path), 0);
    assert_int_equal(step, 40);
    free(path);
    /* a file where the run directory should be */
    char blocked[512];
    snprintf(blocked, sizeof blocked, "%s/file", run);
    write_file(blocked, "x");
    assert_null(aha_checkpoint_prepare(blocked, 1));
    assert_non_null(strstr(aha_error_message(), "/file/checkpoints"));
    fixture_rm_rf(run);
    free(run);
}

static void test_state_round_trip_and_errors(void **state) {
    (void)state;
    char *dir = fixture_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/state.json", dir);
    AhaTrainerState s = {.step = 120, .seed = 18446744073709551557ull, .data_epoch = 3, .data_position = 17,
                         .nan_streak = 1, .ref_step = 100, .optimizer_steps = 240};
    snprintf(s.recipe_sha, sizeof s.recipe_sha, "%064d", 7);
    assert_int_equal(aha_trainer_state_save(path, &s), 0);
    AhaTrainerState back;
    assert_int_equal(aha_trainer_state_load(path, &back), 0);
    assert_int_equal(back.step, 120);
    assert_true(back.seed == s.seed);
    assert_int_equal(back.data_epoch, 3);
    assert_int_equal(back.data_position, 17);
    assert_int_equal(back.nan_streak, 1);
    assert_int_equal(back.ref_step, 100);
    assert_int_equal(back.optimizer_steps, 240);
    assert_string_equal(back.recipe_sha, s.recipe_sha);
    struct { const char *text, *needle; } bad[] = {
        {"[1, 2]", "expected a JSON object"},
        {"{\"format\": 1, \"step\": 3", "state.json:1:"},
        {"{\"format\": 2}", "format 2 is not supported"},
        {"{\"format\": 1}", "missing key 'step'"},
        {"{\"format\": 1, \"step\": \"3\"}", "'step' must be an integer"},
        {"{\"format\": 1, \"step\": -3}", "'step' = -3 is out of range"},
        {"{\"format\": 1, \"step\": 3, \"data_epoch\": 0, \"data_position\": 0, \"nan_streak\": 0, \"ref_step\": 0,"
         " \"optimizer_steps\": 0, \"seed\": 5, \"recipe_sha\": \"\"}", "'seed' must be a string of digits"},
        {"{\"format\": 1, \"step\": 3, \"data_epoch\": 0, \"data_position\": 0, \"nan_streak\": 0, \"ref_step\": 0,"
         " \"optimizer_steps\": 0, \"seed\": \"5x\", \"recipe_sha\": \"\"}", "got '5x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text);
        memset(&back, 0x5a, sizeof back);
        AhaTrainerState untouched = back;
        assert_int_equal(aha_trainer_state_load(path, &back), -1);
        if (!strstr(aha_error_message(), bad[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, aha_error_message(), bad[i].needle);
        assert_memory_equal(&back, &untouched, sizeof back);
    }
    snprintf(path, sizeof path, "%s/missing/state.json", dir);
    assert_int_equal(aha_trainer_state_save(path, &s), -1);
    assert_non_null(strstr(aha_error_message(), "missing/state.json.tmp"));
    fixture_rm_rf(dir);
    free(dir);
}

/* state.json carries the size and CRC-32 of every file; verify finds a flipped byte, a
 * cut file and a missing one, naming the file. */
static void test_checksums(void **state) {
    (void)state;
    char *run = fixture_tmpdir();
    assert_non_null(run);
    char *tmp = aha_checkpoint_prepare(run, 3);
    assert_non_null(tmp);
    char path[8800], ck[4400];
    snprintf(path, sizeof path, "%s/policy", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/policy/model.safetensors", tmp);
    write_file(path, "weights");
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    write_file(path, "moments");
    AhaTrainerState st = {.step = 3, .seed = 1};
    snprintf(st.recipe_sha, sizeof st.recipe_sha, "fnv1a64:0");
    assert_int_equal(aha_checkpoint_seal(tmp, &st), 0);
    assert_int_equal(aha_checkpoint_finish(run, tmp, 3, 0), 0);
    free(tmp);
    snprintf(ck, sizeof ck, "%s/checkpoints/step-00000003", run);
    assert_int_equal(aha_checkpoint_verify(ck), 0);
    AhaTrainerState back;
    snprintf(path, sizeof path, "%s/state.json", ck);
    assert_int_equal(aha_trainer_state_load(path, &back), 0); /* the table does not disturb the state */
    assert_int_equal(back.step, 3);
    snprintf(path, sizeof path, "%s/policy/model.safetensors", ck);
    write_file(path, "weighTs");
    assert_int_equal(aha_checkpoint_verify(ck), -1);
    char want[9000];
    snprintf(want, sizeof want, "%s: damaged: 7 bytes with crc32 ", path);
    if (strncmp(aha_error_message(), want, strlen(want)) != 0 ||
        !strstr(aha_error_message(), ", but state.json says 7 bytes with crc32 "))
        fail_msg("got: %s", aha_error_message());
    write_file(path, "weight");
    assert_int_equal(aha_checkpoint_verify(ck), -1);
    assert_non_null(strstr(aha_error_message(), "damaged: 6 bytes with crc32"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(aha_checkpoint_verify(ck), -1);
    snprintf(want, sizeof want, "%s: listed in state.json but missing", path);
    assert_non_null(strstr(aha_error_message(), want));
    /* partial checkpoints go, complete ones stay */
    snprintf(path, sizeof path, "%s/checkpoints/.tmp-step-00000004", run);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(aha_checkpoint_remove_partial(run), 0);
    assert_false(exists(path));
    assert_true(exists(ck));
    fixture_rm_rf(run);
    free(run);
}

static void test_data_order(void **state) {
    (void)state;
    enum { N = 37 };
    AhaDataOrder a, b;
    assert_int_equal(aha_data_order_init(&a, N, 99, 1), 0);
    int64_t first[3][N];
    for (int e = 0; e < 3; e++) {
        int seen[N] = {0};
        for (int i = 0; i < N; i++) {
            first[e][i] = aha_data_order_next(&a);
            assert_true(first[e][i] >= 0 && first[e][i] < N);
            seen[first[e][i]]++;
        }
        for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1); /* each epoch a permutation */
    }
    assert_true(memcmp(first[0], first[1], sizeof first[0]) != 0);
    int64_t identity = 0;
    for (int i = 0; i < N; i++) identity += first[0][i] == i;
    assert_true(identity < N / 2);
    /* resuming at (epoch 1, position 5) continues the same sequence */
    assert_int_equal(aha_data_order_init(&b, N, 99, 1), 0);
    assert_int_equal(aha_data_order_seek(&b, 1, 5), 0);
    for (int i = 5; i < N; i++) assert_int_equal(aha_data_order_next(&b), first[1][i]);
    for (int i = 0; i < N; i++) assert_int_equal(aha_data_order_next(&b), first[2][i]);
    assert_int_equal(aha_data_order_seek(&b, 0, N + 1), -1);
    assert_non_null(strstr(aha_error_message(), "did data.train change"));
    aha_data_order_free(&b);
    aha_data_order_free(&a);
    assert_int_equal(aha_data_order_init(&a, 4, 99, 0), 0);
    for (int i = 0; i < 9; i++) assert_int_equal(aha_data_order_next(&a), i % 4);
    aha_data_order_free(&a);
    assert_int_equal(aha_data_order_init(&a, 0, 1, 1), -1);
    assert_non_null(strstr(aha_error_message(), "no rows"));
    /* step seeds differ per step and are reproducible */
    assert_true(aha_trainer_step_seed(1, 0) != aha_trainer_step_seed(1, 1));
    assert_true(aha_trainer_step_seed(1, 5) == aha_trainer_step_seed(1, 5));
    assert_true(aha_trainer_step_seed(1, 5) != aha_trainer_step_seed(2, 5));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoints_are_atomic_and_pruned),
        cmocka_unit_test(test_state_round_trip_and_errors),
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_data_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
