/* The default recipe, shortened: recipes/tiny_zero.yaml for a few steps from the committed
 * base model (models/tiny-sum) on freshly generated sums. Checks the pipeline is wired:
 * rollouts recorded with non-trivial rewards, the policy changed, the checkpoint loads.
 * The learning goals themselves are a benchmark (scripts/bench_tiny_zero.sh), not a test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/taskgen.h"

static double query_double(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_short_tiny_zero_run(void **state) {
    (void)state;
    char dir[] = "/tmp/aha-tiny-zero-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char data[256], run[256], cmd[2048];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    AhaTaskGenConfig gen;
    aha_taskgen_defaults(&gen, AHA_TASK_SUM);
    gen.n_train = 200;
    gen.n_eval = 16;
    assert_int_equal(aha_taskgen_write(&gen, data), 0);
    const char *bin = getenv("AHA_BIN");
    if (!bin) bin = AHA_BUILD_DIR "/aha";
    snprintf(cmd, sizeof cmd,
             "%s train recipes/tiny_zero.yaml --set data.train=%s/train.jsonl --set data.eval=%s/eval.jsonl "
             "--set run.output_dir=%s --set run.steps=3 --set run.eval_every=3 --set data.eval_limit=16 "
             "--set run.eval_k=2 --set run.checkpoint_every=3 --set rollout.prompts_per_step=8 "
             "--set rollout.group_size=4 --set optim.lr=1e-3 > %s/log.txt 2>&1",
             bin, data, data, run, dir);
    int status = system(cmd);
    if (status != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/log.txt", dir);
        assert_int_equal(system(cmd), 0);
    }
    assert_int_equal(status, 0);

    char path[512];
    snprintf(path, sizeof path, "%s/run.db", run);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal((int)query_double(db, "select count(*) from steps"), 3);
    assert_true(query_double(db, "select count(*) from rollouts") >= 3 * 8 * 4);
    /* the base is right about one time in seven at T=1: some samples must score */
    assert_true(query_double(db, "select max(reward) from rollouts") >= 1.0);
    assert_true(query_double(db, "select min(reward) from rollouts") < 1.0);
    assert_true(query_double(db, "select count(*) from rollouts where completion like '%<answer>%'") > 0);
    assert_int_equal((int)query_double(db, "select count(*) from evals"), 1);
    sqlite3_close(db);

    /* the checkpoint loads, and training moved the weights away from the base */
    snprintf(path, sizeof path, "%s/checkpoints/step-00000003/policy", run);
    AhaModel *trained = aha_model_load_dir(path, NULL);
    if (!trained) print_error("%s\n", aha_error_message());
    assert_non_null(trained);
    AhaModel *base = aha_model_load_dir("models/tiny-sum", NULL);
    assert_non_null(base);
    assert_int_equal(trained->params.count, base->params.count);
    double moved = 0;
    for (size_t i = 0; i < base->params.count; i++) {
        double d = (double)trained->params.memory[i] - base->params.memory[i];
        moved += d * d;
    }
    print_message("weights moved by %.4g (L2)\n", moved);
    assert_true(moved > 1e-6);
    aha_model_free(trained);
    aha_model_free(base);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_short_tiny_zero_run)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
