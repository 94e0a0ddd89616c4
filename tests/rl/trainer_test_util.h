/* Helpers of the trainer tests: the tiny recipe, running the aha binary, dumping a run's
 * deterministic record (every non-wall-clock step column, every rollout and reward) as text. */
#ifndef AHA_TRAINER_TEST_UTIL_H
#define AHA_TRAINER_TEST_UTIL_H

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aha/recipe.h"
#include "aha/runstore.h"

#define TINY_RECIPE "tests/fixtures/rl/tiny.yaml"

static inline char *tt_tmpdir(void) {
    char *dir = strdup("/tmp/aha-trainer-test-XXXXXX");
    if (!dir || !mkdtemp(dir)) return NULL;
    return dir;
}

static inline void tt_rm_rf(const char *dir) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* The tiny recipe with output_dir = dir and the extra "key=value" overrides (NULL-ended). */
static inline int tt_recipe(AhaRecipe *r, const char *dir, ...) {
    const char *sets[32];
    char out[8192];
    snprintf(out, sizeof out, "run.output_dir=%s", dir);
    int n = 0;
    sets[n++] = out;
    va_list ap;
    va_start(ap, dir);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && n < 32) sets[n++] = s;
    va_end(ap);
    return aha_recipe_load(TINY_RECIPE, sets, n, r);
}

/* Runs a shell command line; returns the exit status (or 128 + signal). */
static inline int tt_system(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static inline const char *tt_bin(void) {
    const char *bin = getenv("AHA_BIN");
    return bin && bin[0] ? bin : NULL;
}

/* One number from the run's store: the first column of the first row, NAN when none/NULL. */
static inline double tt_query(const char *run_dir, const char *sql) {
    char path[8400];
    snprintf(path, sizeof path, "%s/run.db", run_dir);
    sqlite3 *db;
    double v = NAN;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return v;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st; /* a store being created has no tables yet: NAN */
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static inline void tt_append(char **buf, size_t *len, size_t *cap, const char *text) {
    size_t n = strlen(text);
    if (*len + n + 1 > *cap) {
        *cap = 2 * (*len + n + 1);
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
}

static inline void tt_dump_query(sqlite3 *db, const char *sql, char **buf, size_t *len, size_t *cap) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        tt_append(buf, len, cap, "<query failed>");
        return;
    }
    char cell[64];
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_NULL: tt_append(buf, len, cap, "NULL"); break;
            case SQLITE_FLOAT:
                snprintf(cell, sizeof cell, "%.17g", sqlite3_column_double(st, c));
                tt_append(buf, len, cap, cell);
                break;
            default: tt_append(buf, len, cap, (const char *)sqlite3_column_text(st, c));
            }
            tt_append(buf, len, cap, "|");
        }
        tt_append(buf, len, cap, "\n");
    }
    sqlite3_finalize(st);
}

/* Everything in the store that must not depend on timing, as text (caller frees). */
static inline char *tt_dump_run(const char *run_dir) {
    char path[8400];
    snprintf(path, sizeof path, "%s/run.db", run_dir);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    size_t len = 0, cap = 0;
    char *buf = NULL;
    tt_append(&buf, &len, &cap, "");
    char sql[4096] = "SELECT step";
    int n;
    const AhaStepColumn *c = aha_step_columns(&n);
    for (int i = 0; i < n; i++) {
        if (c[i].wall_clock) continue;
        strcat(sql, ", ");
        strcat(sql, c[i].name);
    }
    strcat(sql, " FROM steps ORDER BY step");
    tt_dump_query(db, sql, &buf, &len, &cap);
    tt_dump_query(db,
                  "SELECT step, prompt_index, sample_index, prompt_id, completion, n_tokens, reward,"
                  " advantage, stop_reason, mean_logprob, prompt, gold FROM rollouts_v"
                  " ORDER BY step, prompt_index, sample_index",
                  &buf, &len, &cap);
    tt_dump_query(db,
                  "SELECT r.step, r.prompt_index, r.sample_index, w.name, w.score, w.reason FROM rewards w"
                  " JOIN rollouts r ON r.id = w.rollout_id ORDER BY r.step, r.prompt_index, r.sample_index, w.name",
                  &buf, &len, &cap);
    tt_dump_query(db, "SELECT step, name, mean, std FROM step_rewards ORDER BY step, name", &buf, &len, &cap);
    tt_dump_query(db, "SELECT step, name, n_prompts, k, accuracy, mean_at_k FROM evals ORDER BY step, name",
                  &buf, &len, &cap);
    sqlite3_close(db);
    return buf;
}

/* Reports the first differing line of two dumps. */
static inline int tt_same_dump(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return 1;
    int line = 1;
    const char *pa = a, *pb = b;
    while (*pa && *pa == *pb) {
        if (*pa == '\n') line++;
        pa++;
        pb++;
    }
    fprintf(stderr, "runs differ at line %d of the dump:\n  uninterrupted: %.200s\n  resumed:       %.200s\n",
            line, pa, pb);
    return 0;
}

#endif
