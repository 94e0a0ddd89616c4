/* The Countdown recipes, shortened: data, corpus and tokenizer as scripts/tiny_countdown.sh
 * makes them, a few steps of recipes/tiny_countdown_pretrain.yaml, then a few GRPO steps of
 * recipes/tiny_countdown.yaml. Checks the wiring: every rollout judged by the countdown
 * reward (scores 0 or 1 with a reason), the format reward beside it, a held-out eval row, a
 * checkpoint that loads. A few steps teach nothing: learning is for the benchmark run
 * (docs/tiny-zero.md, Countdown). */
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

static double query_double(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs a shell command with its output in dir/log.txt, printed when it fails. */
static void run(const char *dir, const char *command) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s >>%s/log.txt 2>&1", command, dir);
    int status = system(cmd);
    if (status != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/log.txt", dir);
        assert_int_equal(system(cmd), 0);
        fail_msg("failed: %s", command);
    }
}

static void test_short_tiny_countdown_run(void **state) {
    (void)state;
    char dir[] = "/tmp/aha-tiny-countdown-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *bin = getenv("AHA_BIN");
    if (!bin) bin = AHA_BUILD_DIR "/aha";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s data gen countdown --operands 3 --digits 2 --n 300 --eval-n 8 --seed 1 --out-dir %s/data && "
             "%s data corpus --task %s/data/train.jsonl --think-share 0.16 --seed 1 --out %s/data/corpus.jsonl && "
             "mkdir -p %s/init && %s data tokenizer --charset '0123456789+-*/()= makefro' --out-dir %s/init && "
             "cp recipes/tiny/countdown_config.json %s/init/config.json",
             bin, dir, bin, dir, dir, dir, bin, dir, dir);
    run(dir, cmd);
    snprintf(cmd, sizeof cmd,
             "%s pretrain recipes/tiny_countdown_pretrain.yaml --set model.path=%s/init "
             "--set pretrain.corpus=%s/data/corpus.jsonl --set run.output_dir=%s/base --set pretrain.steps=4 "
             "--set pretrain.batch_seqs=4 --set pretrain.seq_len=64 --set optim.warmup_steps=1",
             bin, dir, dir, dir);
    run(dir, cmd);
    snprintf(cmd, sizeof cmd,
             "%s train recipes/tiny_countdown.yaml --set model.path=%s/base --set data.train=%s/data/train.jsonl "
             "--set data.eval=%s/data/eval.jsonl --set run.output_dir=%s/grpo --set run.steps=2 "
             "--set run.eval_every=2 --set run.eval_k=1 --set run.checkpoint_every=2 "
             "--set rollout.prompts_per_step=4 --set rollout.group_size=2 --set rollout.max_new_tokens=24",
             bin, dir, dir, dir, dir);
    run(dir, cmd);

    char path[512];
    snprintf(path, sizeof path, "%s/grpo/run.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal((int)query_double(db, "select count(*) from steps"), 2);
    int rollouts = (int)query_double(db, "select count(*) from rollouts");
    assert_int_equal(rollouts, 2 * 4 * 2);
    /* every rollout has a countdown score of 0 or 1 with a reason, and a format score */
    assert_int_equal((int)query_double(db, "select count(*) from rewards where name = 'countdown' and "
                                           "score in (0, 1) and length(reason) > 0"), rollouts);
    assert_int_equal((int)query_double(db, "select count(*) from rewards where name = 'format'"), rollouts);
    assert_int_equal((int)query_double(db, "select count(*) from prompts where text like 'make % from %'"),
                     (int)query_double(db, "select count(*) from prompts"));
    assert_int_equal((int)query_double(db, "select count(*) from evals"), 1);
    /* the steps' accuracy is the countdown reward's */
    assert_true(query_double(db, "select count(*) from steps s where abs(s.accuracy - (select avg(r.score) "
                                 "from rewards r join rollouts o on o.id = r.rollout_id where "
                                 "r.name = 'countdown' and o.step = s.step)) < 1e-9") == 2);
    sqlite3_close(db);

    snprintf(path, sizeof path, "%s/grpo/checkpoints/step-00000002/policy", dir);
    AhaModel *trained = aha_model_load_dir(path, NULL);
    if (!trained) print_error("%s\n", aha_error_message());
    assert_non_null(trained);
    assert_int_equal(trained->cfg.vocab_size, 30);
    aha_model_free(trained);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_short_tiny_countdown_run)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
