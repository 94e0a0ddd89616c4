/* The SQLite run store: schema, the one-transaction-per-step writer, resume truncation.
 * docs/run-store.md describes the tables and shows queries. */
#include "aha/runstore.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aha/error.h"

#define AHA_RUNSTORE_SCHEMA_VERSION 1

#define COLUMN(field, wall, doc) {#field, offsetof(AhaStepMetrics, field), wall, doc}
static const AhaStepColumn step_columns[] = {
    COLUMN(reward_mean, 0, "mean total reward over scored samples"),
    COLUMN(reward_std, 0, "std of the total reward"),
    COLUMN(accuracy, 0, "share of samples whose accuracy reward (math or code) is 1"),
    COLUMN(adv_mean, 0, "advantage mean"),
    COLUMN(adv_std, 0, "advantage std"),
    COLUMN(adv_min, 0, "advantage min"),
    COLUMN(adv_max, 0, "advantage max"),
    COLUMN(loss, 0, "batch loss (policy + beta * KL), first pass"),
    COLUMN(policy_loss, 0, "clipped surrogate part of the loss"),
    COLUMN(kl_loss, 0, "beta * KL part of the loss"),
    COLUMN(kl, 0, "mean KL estimate to the reference per token (NULL when beta = 0)"),
    COLUMN(entropy, 0, "mean per-token entropy at the sampling temperature"),
    COLUMN(clip_low, 0, "share of tokens with ratio < 1 - eps_low and A < 0"),
    COLUMN(clip_high, 0, "share of tokens with ratio > 1 + eps_high and A > 0"),
    COLUMN(dual_clip, 0, "share of tokens bounded by the dual clip"),
    COLUMN(ratio_min, 0, "smallest importance ratio"),
    COLUMN(ratio_mean, 0, "mean importance ratio over tokens"),
    COLUMN(ratio_max, 0, "largest importance ratio"),
    COLUMN(len_mean, 0, "mean completion length in tokens"),
    COLUMN(len_min, 0, "shortest completion"),
    COLUMN(len_max, 0, "longest completion"),
    COLUMN(frac_truncated, 0, "share of completions stopped by max_new_tokens"),
    COLUMN(think_frac, 0, "share of completions that reason: containing \"<think>\" (\"</think>\" when the prompt opens it)"),
    COLUMN(groups_all_equal, 0, "groups whose rewards were all equal (no signal) in the batch"),
    COLUMN(groups_unscored, 0, "groups excluded because a sample had no score"),
    COLUMN(groups_dropped, 0, "groups dropped by dynamic sampling"),
    COLUMN(resample_rounds, 0, "extra sampling rounds of dynamic sampling"),
    COLUMN(lr, 0, "learning rate of the step's last update"),
    COLUMN(grad_norm, 0, "gradient norm before clipping (mean over updates)"),
    COLUMN(aux_loss, 0, "router load-balancing loss"),
    COLUMN(expert_balance, 0, "max over mean expert load (1 = balanced)"),
    COLUMN(nan_skipped, 0, "updates skipped for NaN/Inf in this step"),
    COLUMN(rollout_tokens, 0, "completion tokens sampled"),
    COLUMN(train_tokens, 0, "tokens through forward and backward"),
    COLUMN(rollout_tok_s, 1, "sampling throughput, tokens/s"),
    COLUMN(train_tok_s, 1, "training throughput, tokens/s"),
    COLUMN(t_rollout, 1, "seconds sampling"),
    COLUMN(t_reward, 1, "seconds scoring"),
    COLUMN(t_ref, 1, "seconds in the reference forward"),
    COLUMN(t_train, 1, "seconds in forward/backward/optimizer"),
    COLUMN(t_eval, 1, "seconds evaluating"),
    COLUMN(t_step, 1, "seconds for the whole step"),
};
#undef COLUMN

const AhaStepColumn *aha_step_columns(int *count) {
    *count = (int)(sizeof step_columns / sizeof step_columns[0]);
    return step_columns;
}

void aha_step_metrics_init(AhaStepMetrics *m) {
    int n;
    const AhaStepColumn *c = aha_step_columns(&n);
    for (int i = 0; i < n; i++) *(double *)((char *)m + c[i].offset) = NAN;
}

struct AhaRunStore {
    sqlite3 *db;
    char *path;
    int step;     /* the step of the open transaction, -1 when none */
    int readonly;
    int busy_ms;  /* how long a statement waits for another connection's lock */
    sqlite3_stmt *insert_prompt, *insert_rollout, *insert_reward, *insert_step_reward, *insert_eval;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS run(id INTEGER PRIMARY KEY CHECK (id = 1), recipe TEXT NOT NULL,"
    " seed INTEGER NOT NULL, version TEXT NOT NULL, started_at TEXT NOT NULL, host TEXT NOT NULL,"
    " schema_version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS resumes(at TEXT NOT NULL, from_step INTEGER NOT NULL, host TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS step_rewards(step INTEGER NOT NULL, name TEXT NOT NULL, mean REAL,"
    " std REAL, PRIMARY KEY (step, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS prompts(id INTEGER PRIMARY KEY, text TEXT NOT NULL, gold TEXT);"
    "CREATE TABLE IF NOT EXISTS rollouts(id INTEGER PRIMARY KEY, step INTEGER NOT NULL,"
    " prompt_index INTEGER NOT NULL, sample_index INTEGER NOT NULL,"
    " prompt_id INTEGER NOT NULL REFERENCES prompts(id), completion TEXT NOT NULL,"
    " n_tokens INTEGER NOT NULL, reward REAL, advantage REAL, stop_reason TEXT NOT NULL,"
    " mean_logprob REAL, UNIQUE (step, prompt_index, sample_index));"
    "CREATE INDEX IF NOT EXISTS rollouts_by_step_reward ON rollouts(step, reward);"
    "CREATE INDEX IF NOT EXISTS rollouts_by_prompt ON rollouts(prompt_id, step);"
    "CREATE INDEX IF NOT EXISTS rollouts_by_reward ON rollouts(reward);"
    "CREATE TABLE IF NOT EXISTS rewards(rollout_id INTEGER NOT NULL REFERENCES rollouts(id),"
    " name TEXT NOT NULL, score REAL, reason TEXT, PRIMARY KEY (rollout_id, name)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rewards_by_score ON rewards(name, score);"
    "CREATE TABLE IF NOT EXISTS evals(step INTEGER NOT NULL, name TEXT NOT NULL, n_prompts INTEGER,"
    " k INTEGER, accuracy REAL, mean_at_k REAL, seconds REAL, PRIMARY KEY (step, name)) WITHOUT ROWID;"
    "CREATE VIEW IF NOT EXISTS rollouts_v AS SELECT r.*, p.text AS prompt, p.gold AS gold"
    " FROM rollouts r JOIN prompts p ON p.id = r.prompt_id;";

/* Who else holds a POSIX lock on the store (SQLite locks run.db-shm in WAL mode, run.db
 * otherwise): "process N", or "" when no one can be named. */
static void lock_holder(const char *db_path, char *out, size_t cap) {
    out[0] = '\0';
    const char *suffix[] = {"-shm", ""};
    for (int i = 0; i < 2 && !out[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s%s", db_path, suffix[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
            snprintf(out, cap, "process %ld", (long)fl.l_pid);
        close(fd);
    }
}

static int busy_fail(AhaRunStore *s, const char *what) {
    char who[64];
    lock_holder(s->path, who, sizeof who);
    return aha_errorf("%s: %s: the store stayed locked for %g s by %s (a sqlite3 shell or program holding a "
                      "write transaction?); end that transaction and resume the run", s->path, what,
                      s->busy_ms / 1000.0, who[0] ? who : "another connection");
}

static int damaged(int rc) { return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB; }

static int sql_fail(AhaRunStore *s, const char *what) {
    int rc = sqlite3_errcode(s->db);
    if (rc == SQLITE_BUSY) return busy_fail(s, what);
    if (damaged(rc)) return aha_errorf("%s: %s: the run store is damaged (%s)", s->path, what, sqlite3_errmsg(s->db));
    return aha_errorf("%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(AhaRunStore *s, const char *sql, const char *what) {
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_BUSY) busy_fail(s, what);
        else if (damaged(rc))
            aha_errorf("%s: %s: the run store is damaged (%s)", s->path, what, msg ? msg : sqlite3_errmsg(s->db));
        else aha_errorf("%s: %s: %s", s->path, what, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int create_steps_table(AhaRunStore *s) {
    int n;
    const AhaStepColumn *c = aha_step_columns(&n);
    size_t cap = 128 + (size_t)n * 40;
    char *sql = aha_malloc(cap);
    AHA_CHECK_ALLOC(sql);
    size_t used = (size_t)snprintf(sql, cap, "CREATE TABLE IF NOT EXISTS steps(step INTEGER PRIMARY KEY, finished_at TEXT NOT NULL");
    for (int i = 0; i < n; i++) used += (size_t)snprintf(sql + used, cap - used, ", %s REAL", c[i].name);
    snprintf(sql + used, cap - used, ");");
    int rc = exec(s, sql, "creating the steps table");
    free(sql);
    return rc;
}

static int prepare(AhaRunStore *s, const char *sql, sqlite3_stmt **stmt) {
    if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK) return sql_fail(s, "preparing a statement");
    return 0;
}

static int prepare_writers(AhaRunStore *s) {
    AHA_TRY(prepare(s, "INSERT OR IGNORE INTO prompts(id, text, gold) VALUES (?, ?, ?)", &s->insert_prompt));
    AHA_TRY(prepare(s,
                    "INSERT INTO rollouts(step, prompt_index, sample_index, prompt_id, completion, n_tokens,"
                    " reward, advantage, stop_reason, mean_logprob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &s->insert_rollout));
    AHA_TRY(prepare(s, "INSERT INTO rewards(rollout_id, name, score, reason) VALUES (?, ?, ?, ?)", &s->insert_reward));
    AHA_TRY(prepare(s, "INSERT INTO step_rewards(step, name, mean, std) VALUES (?, ?, ?, ?)", &s->insert_step_reward));
    AHA_TRY(prepare(s,
                    "INSERT INTO evals(step, name, n_prompts, k, accuracy, mean_at_k, seconds)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &s->insert_eval));
    return 0;
}

/* 1 when the directory holding path exists and this process may not write in it. */
static int dir_read_only(const char *path) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    return access(dir, F_OK) == 0 && access(dir, W_OK) != 0 && (errno == EACCES || errno == EROFS);
}

/* 1 when run.db-wal holds frames not yet copied into run.db. */
static int wal_pending(const char *path) {
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat st;
    return stat(wal, &st) == 0 && st.st_size > 0;
}

void aha_runstore_set_busy_timeout(AhaRunStore *s, int ms) {
    s->busy_ms = ms;
    sqlite3_busy_timeout(s->db, ms);
}

static AhaRunStore *open_store(const char *path, int readonly) {
    AhaRunStore *s = aha_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->step = -1;
    s->readonly = readonly;
    s->path = aha_strdup(path);
    if (!s->path) goto fail;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        if (!readonly && dir_read_only(path))
            aha_errorf("%s: the run directory is read-only: cannot write the run store", path);
        else
            aha_errorf("%s: cannot open the run store: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    aha_runstore_set_busy_timeout(s, AHA_RUNSTORE_BUSY_MS);
    if (readonly) {
        sqlite3_stmt *st = NULL;
        int ok = sqlite3_prepare_v2(s->db, "SELECT schema_version FROM run", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!ok && sqlite3_errcode(s->db) == SQLITE_CANTOPEN && dir_read_only(path) && !wal_pending(path)) {
            /* SQLite cannot create run.db-shm in a read-only directory; with no write-ahead
             * log left the file alone is the whole store, which immutable=1 reads */
            sqlite3_close(s->db);
            s->db = NULL;
            char *uri = sqlite3_mprintf("file:%s?immutable=1", path);
            if (!uri) {
                aha_errorf("%s: out of memory", path);
                goto fail;
            }
            int orc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
            sqlite3_free(uri);
            ok = orc == SQLITE_OK &&
                 sqlite3_prepare_v2(s->db, "SELECT schema_version FROM run", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW;
            sqlite3_finalize(st);
        }
        if (!ok && dir_read_only(path) && wal_pending(path)) {
            aha_errorf("%s: the run directory is read-only and holds an unfinished write-ahead log (run.db-wal), "
                       "which SQLite can read only where it may create run.db-shm: copy the run directory "
                       "somewhere writable and read the copy", path);
            goto fail;
        }
        if (!ok) {
            aha_errorf("%s: not an aha run store (no run record): %s", path,
                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
            goto fail;
        }
        return s;
    }
    /* WAL with synchronous=NORMAL: a process crash loses nothing committed; the schema
     * statements below are idempotent so reopening a store to resume is the same call. */
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", "setting WAL mode") != 0)
        goto fail;
    if (exec(s, "BEGIN IMMEDIATE", "creating the schema") != 0) goto fail;
    if (exec(s, schema_sql, "creating the schema") != 0 || create_steps_table(s) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    if (exec(s, "COMMIT", "creating the schema") != 0) goto fail;
    if (prepare_writers(s) != 0) goto fail;
    return s;
fail:
    aha_runstore_close(s);
    return NULL;
}

AhaRunStore *aha_runstore_open(const char *path) { return open_store(path, 0); }

AhaRunStore *aha_runstore_open_readonly(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        aha_error_errno("%s: no run store here", path);
        return NULL;
    }
    return open_store(path, 1);
}

void aha_runstore_close(AhaRunStore *s) {
    if (!s) return;
    if (s->step >= 0) aha_runstore_rollback(s);
    sqlite3_finalize(s->insert_prompt);
    sqlite3_finalize(s->insert_rollout);
    sqlite3_finalize(s->insert_reward);
    sqlite3_finalize(s->insert_step_reward);
    sqlite3_finalize(s->insert_eval);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

struct sqlite3 *aha_runstore_db(AhaRunStore *s) { return s->db; }

char *aha_runstore_path(const char *run_dir_or_db) {
    struct stat st;
    if (stat(run_dir_or_db, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(run_dir_or_db) + sizeof "/run.db";
        char *p = aha_malloc(n);
        if (p) snprintf(p, n, "%s/run.db", run_dir_or_db);
        return p;
    }
    return aha_strdup(run_dir_or_db);
}

static void now_iso(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int bind_real(sqlite3_stmt *st, int i, double v) {
    return isfinite(v) ? sqlite3_bind_double(st, i, v) : sqlite3_bind_null(st, i);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v) {
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

/* Keeps the first failing sqlite3_bind_* result in `bound` (SQLITE_TOOBIG for a text over
 * SQLite's length limit, SQLITE_NOMEM, ...). */
#define BIND(call) (bound = bound != SQLITE_OK ? bound : (call))

static int bind_fail(AhaRunStore *s, sqlite3_stmt *st, int bound, const char *what) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return aha_errorf("%s: %s: binding a value failed: %s", s->path, what, sqlite3_errstr(bound));
}

static int run_stmt(AhaRunStore *s, sqlite3_stmt *st, int bound, const char *what) {
    if (bound != SQLITE_OK) return bind_fail(s, st, bound, what);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return sql_fail(s, what);
    return 0;
}

int aha_runstore_set_run(AhaRunStore *s, const char *recipe_yaml, uint64_t seed, const char *version) {
    char host[256] = "unknown", when[32];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    now_iso(when, sizeof when);
    sqlite3_stmt *st = NULL;
    int bound = SQLITE_OK;
    AHA_TRY(prepare(s, "SELECT count(*) FROM run", &st));
    int exists = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (exists) {
        int last;
        AHA_TRY(aha_runstore_last_step(s, &last));
        AHA_TRY(prepare(s, "INSERT INTO resumes(at, from_step, host) VALUES (?, ?, ?)", &st));
        BIND(sqlite3_bind_text(st, 1, when, -1, SQLITE_TRANSIENT));
        BIND(sqlite3_bind_int(st, 2, last));
        BIND(sqlite3_bind_text(st, 3, host, -1, SQLITE_TRANSIENT));
    } else {
        AHA_TRY(prepare(s,
                        "INSERT INTO run(id, recipe, seed, version, started_at, host, schema_version)"
                        " VALUES (1, ?, ?, ?, ?, ?, ?)",
                        &st));
        BIND(sqlite3_bind_text(st, 1, recipe_yaml, -1, SQLITE_TRANSIENT));
        BIND(sqlite3_bind_int64(st, 2, (sqlite3_int64)seed));
        BIND(sqlite3_bind_text(st, 3, version, -1, SQLITE_TRANSIENT));
        BIND(sqlite3_bind_text(st, 4, when, -1, SQLITE_TRANSIENT));
        BIND(sqlite3_bind_text(st, 5, host, -1, SQLITE_TRANSIENT));
        BIND(sqlite3_bind_int(st, 6, AHA_RUNSTORE_SCHEMA_VERSION));
    }
    if (bound != SQLITE_OK) {
        sqlite3_finalize(st);
        return aha_errorf("%s: recording the run: binding a value failed: %s", s->path, sqlite3_errstr(bound));
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_fail(s, "recording the run");
    return 0;
}

int aha_runstore_begin_step(AhaRunStore *s, int step) {
    AHA_REQUIRE(!s->readonly, "%s: the run store is open read-only", s->path);
    AHA_REQUIRE(s->step < 0, "%s: step %d begun while step %d is still open", s->path, step + 1, s->step + 1);
    AHA_REQUIRE(step >= 0, "%s: step must be >= 0, got %d", s->path, step);
    AHA_TRY(exec(s, "BEGIN IMMEDIATE", "beginning a step"));
    s->step = step;
    return 0;
}

static int require_open_step(AhaRunStore *s, const char *what) {
    AHA_REQUIRE(s->step >= 0, "%s: %s outside a step (call aha_runstore_begin_step first)", s->path, what);
    return 0;
}

int aha_runstore_add_rollout(AhaRunStore *s, const AhaRolloutRecord *r) {
    int bound = SQLITE_OK;
    AHA_TRY(require_open_step(s, "adding a rollout"));
    AHA_REQUIRE(r->prompt && r->completion && r->stop_reason, "%s: a rollout needs prompt, completion and stop reason",
                s->path);
    BIND(sqlite3_bind_int64(s->insert_prompt, 1, r->prompt_id));
    BIND(bind_text(s->insert_prompt, 2, r->prompt));
    BIND(bind_text(s->insert_prompt, 3, r->gold));
    AHA_TRY(run_stmt(s, s->insert_prompt, bound, "recording a prompt"));
    sqlite3_stmt *st = s->insert_rollout;
    BIND(sqlite3_bind_int(st, 1, s->step));
    BIND(sqlite3_bind_int(st, 2, r->prompt_index));
    BIND(sqlite3_bind_int(st, 3, r->sample_index));
    BIND(sqlite3_bind_int64(st, 4, r->prompt_id));
    BIND(sqlite3_bind_text(st, 5, r->completion,
                           (int)(r->completion_len ? r->completion_len : strlen(r->completion)), SQLITE_TRANSIENT));
    BIND(sqlite3_bind_int(st, 6, r->n_tokens));
    BIND(bind_real(st, 7, r->reward));
    BIND(bind_real(st, 8, r->advantage));
    BIND(bind_text(st, 9, r->stop_reason));
    BIND(bind_real(st, 10, r->mean_logprob));
    AHA_TRY(run_stmt(s, st, bound, "recording a rollout"));
    sqlite3_int64 id = sqlite3_last_insert_rowid(s->db);
    for (int c = 0; c < r->n_components; c++) {
        BIND(sqlite3_bind_int64(s->insert_reward, 1, id));
        BIND(bind_text(s->insert_reward, 2, r->component_names[c]));
        BIND(bind_real(s->insert_reward, 3, r->scores[c]));
        BIND(bind_text(s->insert_reward, 4, r->reasons ? r->reasons[c] : NULL));
        AHA_TRY(run_stmt(s, s->insert_reward, bound, "recording a reward component"));
    }
    return 0;
}

int aha_runstore_add_step_reward(AhaRunStore *s, const char *name, double mean, double std) {
    int bound = SQLITE_OK;
    AHA_TRY(require_open_step(s, "adding a step reward"));
    BIND(sqlite3_bind_int(s->insert_step_reward, 1, s->step));
    BIND(bind_text(s->insert_step_reward, 2, name));
    BIND(bind_real(s->insert_step_reward, 3, mean));
    BIND(bind_real(s->insert_step_reward, 4, std));
    return run_stmt(s, s->insert_step_reward, bound, "recording a step reward");
}

int aha_runstore_add_eval(AhaRunStore *s, const AhaEvalRecord *e) {
    int bound = SQLITE_OK;
    AHA_TRY(require_open_step(s, "adding an eval result"));
    sqlite3_stmt *st = s->insert_eval;
    BIND(sqlite3_bind_int(st, 1, s->step));
    BIND(bind_text(st, 2, e->name));
    BIND(sqlite3_bind_int(st, 3, e->n_prompts));
    BIND(sqlite3_bind_int(st, 4, e->k));
    BIND(bind_real(st, 5, e->accuracy));
    BIND(bind_real(st, 6, e->mean_at_k));
    BIND(bind_real(st, 7, e->seconds));
    return run_stmt(s, st, bound, "recording an eval result");
}

int aha_runstore_commit_step(AhaRunStore *s, const AhaStepMetrics *m) {
    AHA_TRY(require_open_step(s, "committing a step"));
    int n;
    const AhaStepColumn *c = aha_step_columns(&n);
    size_t cap = 128 + (size_t)n * 36;
    char *sql = aha_malloc(cap);
    if (!sql) {
        aha_runstore_rollback(s);
        return -1;
    }
    size_t used = (size_t)snprintf(sql, cap, "INSERT INTO steps(step, finished_at");
    for (int i = 0; i < n; i++) used += (size_t)snprintf(sql + used, cap - used, ", %s", c[i].name);
    used += (size_t)snprintf(sql + used, cap - used, ") VALUES (?, ?");
    for (int i = 0; i < n; i++) used += (size_t)snprintf(sql + used, cap - used, ", ?");
    snprintf(sql + used, cap - used, ")");
    sqlite3_stmt *st = NULL;
    int bound = SQLITE_OK;
    int rc = prepare(s, sql, &st);
    free(sql);
    if (rc == 0) {
        char when[32];
        now_iso(when, sizeof when);
        BIND(sqlite3_bind_int(st, 1, s->step));
        BIND(sqlite3_bind_text(st, 2, when, -1, SQLITE_TRANSIENT));
        for (int i = 0; i < n; i++) BIND(bind_real(st, 3 + i, *(const double *)((const char *)m + c[i].offset)));
        if (bound != SQLITE_OK)
            rc = aha_errorf("%s: recording the step's metrics: binding a value failed: %s", s->path, sqlite3_errstr(bound));
        else if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_fail(s, "recording the step's metrics");
    }
    sqlite3_finalize(st);
    if (rc == 0) rc = exec(s, "COMMIT", "committing the step");
    if (rc != 0) {
        aha_error_prefix("step %d", s->step + 1); /* 1-based, as the progress lines */
        aha_runstore_rollback(s);
        return -1;
    }
    s->step = -1;
    return 0;
}

void aha_runstore_rollback(AhaRunStore *s) {
    if (s->step < 0) return;
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->step = -1;
}

int aha_runstore_last_step(AhaRunStore *s, int *step) {
    sqlite3_stmt *st = NULL;
    AHA_TRY(prepare(s, "SELECT coalesce(max(step), -1) FROM steps", &st));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *step = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sql_fail(s, "reading the last step");
    return 0;
}

int aha_runstore_truncate_after(AhaRunStore *s, int step) {
    AHA_REQUIRE(s->step < 0, "%s: cannot truncate while step %d is open", s->path, s->step + 1);
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE;"
             "DELETE FROM rewards WHERE rollout_id IN (SELECT id FROM rollouts WHERE step > %d);"
             "DELETE FROM rollouts WHERE step > %d; DELETE FROM step_rewards WHERE step > %d;"
             "DELETE FROM evals WHERE step > %d; DELETE FROM steps WHERE step > %d; COMMIT;",
             step, step, step, step, step);
    if (exec(s, sql, "dropping steps after the checkpoint") != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

int aha_runstore_quick_check(AhaRunStore *s) {
    sqlite3_stmt *st = NULL;
    AHA_TRY(prepare(s, "PRAGMA quick_check", &st));
    int rc = sqlite3_step(st);
    const char *first = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = first && strcmp(first, "ok") == 0;
    if (!ok && rc == SQLITE_ROW)
        aha_errorf("%s: the run store is damaged (PRAGMA quick_check: %s)", s->path, first ? first : "NULL");
    else if (!ok)
        sql_fail(s, "checking the run store (PRAGMA quick_check)");
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

int aha_runstore_has_run(AhaRunStore *s, int *has) {
    sqlite3_stmt *st = NULL;
    AHA_TRY(prepare(s, "SELECT count(*) FROM run", &st));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *has = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sql_fail(s, "reading the run record");
    return 0;
}

int aha_runstore_resume(AhaRunStore *s, int step) {
    AHA_REQUIRE(s->step < 0, "%s: cannot resume while step %d is open", s->path, s->step + 1);
    int last;
    AHA_TRY(aha_runstore_last_step(s, &last));
    char host[256] = "unknown", when[32];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    now_iso(when, sizeof when);
    char *sql = sqlite3_mprintf(
        "BEGIN IMMEDIATE;"
        "DELETE FROM rewards WHERE rollout_id IN (SELECT id FROM rollouts WHERE step > %d);"
        "DELETE FROM rollouts WHERE step > %d; DELETE FROM step_rewards WHERE step > %d;"
        "DELETE FROM evals WHERE step > %d; DELETE FROM steps WHERE step > %d;"
        "INSERT INTO resumes(at, from_step, host) VALUES (%Q, %d, %Q); COMMIT;",
        step, step, step, step, step, when, last, host);
    AHA_CHECK_ALLOC(sql);
    int rc = exec(s, sql, "recording the resume (dropping the steps after the checkpoint)");
    sqlite3_free(sql);
    if (rc != 0) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* nothing of it stays */
    return rc;
}
