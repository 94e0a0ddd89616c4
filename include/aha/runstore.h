/* The run store: one SQLite file (WAL) per run, RUN_DIR/run.db, holding the resolved recipe,
 * one row of metrics per step, every rollout with its reward components, and eval results.
 * A step is written in one transaction (begin, add rollouts, commit): a crash never leaves
 * half a step. Schema and example queries: docs/run-store.md. */
#ifndef AHA_RUNSTORE_H
#define AHA_RUNSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AhaRunStore AhaRunStore;

/* One row of the steps table. Every field is a REAL column of the same name; NaN is stored
 * as NULL. Add a metric by adding a field here and a row to the table in runstore.c. */
typedef struct {
    double reward_mean, reward_std; /* total (weighted) reward over scored samples */
    double accuracy;                /* share of samples whose accuracy reward is 1 */
    double adv_mean, adv_std, adv_min, adv_max;
    double loss, policy_loss, kl_loss;
    double kl;          /* mean of the KL estimator over tokens (also when beta = 0: NULL) */
    double entropy;     /* mean per-token entropy at the sampling temperature */
    double clip_low, clip_high, dual_clip; /* fractions of tokens */
    double ratio_min, ratio_mean, ratio_max;
    double len_mean, len_min, len_max; /* completion tokens */
    double frac_truncated;             /* share of completions stopped by max_new_tokens */
    double think_frac;                 /* share containing "<think>" ("</think>" with open_think) */
    double groups_all_equal, groups_unscored, groups_dropped, resample_rounds;
    double lr, grad_norm;
    double aux_loss, expert_balance; /* router loss; max/mean expert load (1 = balanced) */
    double nan_skipped;              /* 1 when the update was skipped for NaN/Inf */
    double rollout_tokens, train_tokens;
    double rollout_tok_s, train_tok_s;
    double t_rollout, t_reward, t_ref, t_train, t_eval, t_step; /* seconds */
} AhaStepMetrics;

typedef struct {
    const char *name; /* column name */
    size_t offset;    /* of the double in AhaStepMetrics */
    int wall_clock;   /* 1 = depends on timing, so differs between identical runs */
    const char *doc;
} AhaStepColumn;

/* The columns of the steps table, in order. */
const AhaStepColumn *aha_step_columns(int *count);
void aha_step_metrics_init(AhaStepMetrics *m); /* every field NaN (NULL in the store) */

typedef struct {
    int prompt_index;    /* position of the prompt in the step's batch */
    int sample_index;    /* position in its group */
    int64_t prompt_id;   /* the prompt's row in the training data set */
    const char *prompt;  /* templated prompt text (stored once per prompt_id) */
    const char *gold;    /* reference answer, or NULL */
    const char *completion;
    size_t completion_len; /* bytes of completion (it may hold NULs); 0 = strlen */
    int n_tokens;
    double reward;       /* weighted total; NaN = unscored */
    double advantage;
    const char *stop_reason; /* "eos", "stop", "length", ... */
    double mean_logprob;     /* mean sampling log-prob over the completion tokens */
    int n_components;
    const char *const *component_names; /* [n_components] */
    const double *scores;               /* [n_components], NaN = no score */
    const char *const *reasons;         /* [n_components] or NULL */
} AhaRolloutRecord;

typedef struct {
    const char *name; /* e.g. "eval" */
    int n_prompts, k;
    double accuracy;  /* greedy */
    double mean_at_k; /* mean accuracy of k samples per prompt at the recipe's settings */
    double seconds;
} AhaEvalRecord;

/* Opens (creating when absent) path for writing: WAL mode, schema created if new. */
AhaRunStore *aha_runstore_open(const char *path);
/* Opens an existing store read-only; a missing file or a file that is not a run store is
 * a clear error. */
AhaRunStore *aha_runstore_open_readonly(const char *path);
void aha_runstore_close(AhaRunStore *s);

/* Records the run (once; a second call records a resume instead: aha_runstore_resume is
 * the trainer's way, atomic with the truncation). */
int aha_runstore_set_run(AhaRunStore *s, const char *recipe_yaml, uint64_t seed, const char *version);

/* The step transaction. begin -> add_* -> commit; rollback (or a crash) leaves nothing. */
int aha_runstore_begin_step(AhaRunStore *s, int step);
int aha_runstore_add_rollout(AhaRunStore *s, const AhaRolloutRecord *r);
int aha_runstore_add_step_reward(AhaRunStore *s, const char *name, double mean, double std);
int aha_runstore_add_eval(AhaRunStore *s, const AhaEvalRecord *e);
int aha_runstore_commit_step(AhaRunStore *s, const AhaStepMetrics *m);
void aha_runstore_rollback(AhaRunStore *s);

/* The last committed step, or -1 when none. */
int aha_runstore_last_step(AhaRunStore *s, int *step);
/* Deletes everything recorded after `step` (resuming from a checkpoint of that step). */
int aha_runstore_truncate_after(AhaRunStore *s, int step);
/* Resuming after `step` (0-based, -1 = from the start), in one transaction: deletes what
 * was recorded after it and adds the `resumes` row (from_step = the last step before), so a
 * resume that fails leaves neither. */
int aha_runstore_resume(AhaRunStore *s, int step);
/* PRAGMA quick_check; damage is an error quoting SQLite's first finding. */
int aha_runstore_quick_check(AhaRunStore *s);
/* *has = 1 when the store holds its run record (0: a new or emptied store). */
int aha_runstore_has_run(AhaRunStore *s, int *has);

/* A writer waits this long for another connection's lock (a sqlite3 shell in a write
 * transaction) before the step fails with an error naming the holder's PID. */
#define AHA_RUNSTORE_BUSY_MS 60000
void aha_runstore_set_busy_timeout(AhaRunStore *s, int ms);

/* The SQLite handle, for queries (inspect, report, tests). */
struct sqlite3 *aha_runstore_db(AhaRunStore *s);

/* Resolves RUN_DIR or RUN_DIR/run.db to the store's path (caller frees). */
char *aha_runstore_path(const char *run_dir_or_db);

/* ---- aha inspect / aha report (rl/inspect.c, rl/report.c) ---- */

typedef struct {
    int step;          /* -1 = the last step */
    int prompt_index;  /* for "prompt" */
    int64_t prompt_id; /* for "history" */
    int limit;         /* rows (best/worst/grep/history), 0 = default */
    int from, to;      /* step range for "steps" (to = -1: last) */
    const char *text;  /* for "grep": substring of the completion */
    const char *reward_filter; /* "NAME OP VALUE", e.g. "math>=1", "reward<0" */
    const char *columns;       /* comma-separated step columns, NULL = a default set */
    int width;                 /* completion text width in tables, 0 = default */
} AhaInspectOptions;

void aha_inspect_options_init(AhaInspectOptions *o);
/* what: summary, steps, best, worst, prompt, grep, history, evals. */
int aha_inspect(AhaRunStore *s, const char *what, const AhaInspectOptions *o, FILE *out);
/* A self-contained HTML page (inline SVG, no network) of the run's curves and samples. */
int aha_report_html(AhaRunStore *s, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
