/* The GRPO training loop (`aha train`, `aha train --resume`) and evaluation (`aha eval`).
 *
 * One step: prompts from data.train -> template -> tokenize -> rollout on a sampler thread,
 * each group scored as it arrives -> advantages -> dynamic sampling -> reference log-probs
 * (beta > 0) -> mu passes over `minibatches` minibatches (grad_accum micro-batches each) ->
 * one run-store transaction -> progress line -> eval / checkpoint when due.
 * Everything that is stored depends only on (recipe, step), never on thread timing, so a
 * resumed run repeats an uninterrupted one bit for bit on CPU. docs/training.md. */
#ifndef AHA_TRAINLOOP_H
#define AHA_TRAINLOOP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "aha/model.h"
#include "aha/recipe.h"
#include "aha/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    FILE *out;                          /* progress lines; NULL = none */
    volatile sig_atomic_t *stop;        /* when non-zero after a step: checkpoint and return */
    /* Test hook, called after each update's backward and before the NaN/Inf check (it may
     * poison m->grads); NULL = none. Returns 0, or -1 to abort the run. */
    int (*after_backward)(void *ctx, int step, AhaModel *m);
    void *hook_ctx;
    /* aha_train_resume only: "key=value" overrides of RUN_DIR/recipe.yaml, limited to
     * run.steps, run.eval_every, run.checkpoint_every, run.keep_checkpoints,
     * run.max_nan_skips and run.log_file (written back to recipe.yaml). */
    const char *const *resume_sets;
    int n_resume_sets;
    /* aha_train_resume only: resume although RUN_DIR/run.db is missing or empty (a new store
     * then starts at the checkpoint's step; without it that is refused). */
    int new_store;
    /* aha_train_resume only: when the newest checkpoint fails its checksums, resume from the
     * newest older one that passes (the damaged one is renamed damaged-step-NNNNNNNN). */
    int fall_back;
} AhaTrainOptions;

/* Starts a run in recipe->run.output_dir (which must not hold a run.db yet): writes
 * RUN_DIR/recipe.yaml (the resolved recipe), then trains run.steps steps. */
int aha_train(const AhaRecipe *recipe, const AhaTrainOptions *options);
/* Continues the run in run_dir from its newest checkpoint (or from the start when it has
 * none) with RUN_DIR/recipe.yaml; the store is truncated to the checkpoint's step first. */
int aha_train_resume(const char *run_dir, const AhaTrainOptions *options);
/* Returns 1 when the last aha_train / aha_train_resume on this thread stopped on `stop`. */
int aha_train_was_interrupted(void);

/* ---- Evaluation: greedy accuracy and mean@k with the math reward ---- */

typedef struct {
    AhaTemplate template_name;
    int open_think;
    const char *system_prompt;   /* "" or NULL = none */
    int max_prompt_tokens;       /* longer prompts are skipped (counted) */
    int max_new_tokens;
    float temperature;           /* of the k samples (> 0) */
    float top_p;
    int top_k;
    const char *const *stop;     /* [n_stop] stop strings */
    int n_stop;
    int k;                       /* samples per prompt for mean@k; 0 = greedy only */
    int limit;                   /* first N rows; 0 = all */
    uint64_t seed;
    int threads;                 /* sampler threads; 0 = OpenMP's default */
    int share_prefix;
    AhaRewardExtract extract;    /* where the math reward looks for the answer (auto) */
    AhaRewardType reward;        /* what "correct" means: math (0, the default) or countdown */
    int bare_answers;            /* aha_eval_file: accept worked solutions with no final answer */
} AhaEvalConfig;

typedef struct {
    int n_prompts;       /* evaluated */
    int n_skipped;       /* prompts longer than max_prompt_tokens */
    int k;
    double accuracy;     /* greedy: share of prompts whose answer the math reward accepts */
    double mean_at_k;    /* mean over prompts and k samples (NaN when k == 0) */
    double greedy_len;   /* mean greedy completion length in tokens */
    double seconds;
} AhaEvalResult;

/* The recipe's template, sampling and eval keys; the extract of its first math reward; the
 * countdown reward as the judge when the recipe has a countdown reward and no math one. */
void aha_eval_config_from_recipe(AhaEvalConfig *cfg, const AhaRecipe *recipe);
/* Evaluates on a JSONL file with question/answer fields (field names: NULL = defaults). */
int aha_eval_file(AhaModel *m, const AhaTokenizer *tok, const char *path,
                  const char *question_field, const char *answer_field,
                  const AhaEvalConfig *cfg, AhaEvalResult *out);

#ifdef __cplusplus
}
#endif

#endif
