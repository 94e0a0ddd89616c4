/* The training loop's pieces, shared by rl/trainer*.c and rl/eval.c. */
#ifndef AHA_TRAINER_INTERNAL_H
#define AHA_TRAINER_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "aha/dataset.h"
#include "aha/grpo.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/optim.h"
#include "aha/recipe.h"
#include "aha/reward.h"
#include "aha/runstore.h"
#include "aha/sampler.h"
#include "aha/tokenizer.h"
#include "aha/trainer.h"
#include "aha/trainloop.h"

double trainer_now(void);

/* ---- prompts (rl/trainer_prompts.c) ---- */

/* Templated, tokenized prompts of a data set, made on first use and kept. */
typedef struct {
    const AhaDataset *ds;
    const AhaTokenizer *tok;
    AhaTemplate template_name;
    int open_think;
    const char *system_prompt; /* NULL = none */
    int max_tokens;
    char **text;      /* [n] templated text, NULL until made */
    int32_t **ids;    /* [n] token ids */
    int *len;         /* [n] tokens; 0 = not made yet; -1 = longer than max_tokens */
    size_t n;
} PromptCache;

int prompt_cache_init(PromptCache *c, const AhaDataset *ds, const AhaTokenizer *tok,
                      AhaTemplate template_name, int open_think, const char *system_prompt,
                      int max_tokens);
/* Makes row i's prompt if needed; returns its length (> 0) or -1 when too long (no error
 * recorded), or -2 on failure (error recorded). */
int prompt_cache_get(PromptCache *c, size_t i);
void prompt_cache_free(PromptCache *c);

/* The EOS ids that end a completion: the config's and the tokenizer's. */
int trainer_eos_ids(const AhaModel *m, const AhaTokenizer *tok, int32_t *ids, int cap);
/* Bridges aha_tokenizer_token_bytes to the sampler's stop-string matcher. */
AhaTokenText trainer_token_text(const AhaTokenizer *tok);

/* ---- one step's rollouts (rl/trainer_rollout.c) ---- */

typedef struct {
    int64_t row;              /* data set row */
    int slot;                 /* position among the step's sampled prompts (all rounds) */
    AhaRolloutGroup *group;   /* G completions */
    char **text;              /* [G] decoded completions */
    size_t *text_len;         /* [G] their lengths in bytes (a NUL may be among them) */
    double *scores;           /* [G * n_comp] NaN = no score */
    AhaRewardValue *values;   /* [G * n_comp] */
    double *total;            /* [G] */
    double *adv;              /* [G] */
    AhaGroupStatus status;
    int kept;                 /* trained on */
    float **logp_ref;         /* [G] -> [n_tokens] reference log-probs, or NULL */
} StepGroup;

typedef struct {
    StepGroup *groups;        /* [n_groups] every sampled group, in slot order */
    int n_groups, capacity;
    int n_kept, n_dropped, rounds;
    AhaAdvantageStats adv_stats;
    AhaRolloutStats rollout;  /* summed over rounds */
    double t_rollout, t_reward;
} StepBatch;

typedef struct {
    const AhaRecipe *r;
    AhaModel *policy;
    const AhaTokenizer *tok;
    PromptCache *prompts;
    AhaDataOrder *order;
    AhaRewardSet *rewards;
    int n_comp;
    double *weights;          /* [n_comp] */
    const int32_t *eos_ids;
    int n_eos;
} RolloutContext;

/* Samples and scores the step's groups, dropping zero-variance ones under dynamic sampling,
 * and computes the advantages of the kept groups. */
int step_rollout(const RolloutContext *ctx, uint64_t seed, StepBatch *batch);
/* Runs the request on a sampler thread, calling on_group (on this thread) with each
 * finished group as it arrives; on_group owns the group. */
int rollout_each_group(AhaModel *m, const AhaRolloutRequest *req, const AhaRolloutOptions *opts,
                       int (*on_group)(void *ctx, AhaRolloutGroup *group), void *ctx,
                       AhaRolloutStats *stats);
void step_batch_free(StepBatch *batch);

/* ---- the update (rl/trainer_update.c) ---- */

/* ZeRO-1: this rank's slice [lo, hi) of the parameter arena, whose AdamW moments it holds;
 * counts[r] = the size of rank r's slice. */
typedef struct {
    size_t lo, hi;
    size_t *counts;  /* [world size] */
} ParamShard;

typedef struct {
    double loss, policy_loss, kl_loss; /* of the first pass */
    AhaLossMetrics loss_metrics;       /* first pass */
    double entropy_sum; long entropy_n;
    double grad_norm_sum; int n_updates, n_skipped;
    double lr;
    double aux_loss_sum; int aux_n;
    double expert_balance_sum; int expert_balance_n;
    long train_tokens;
    double t_ref, t_train;
} UpdateStats;

typedef struct {
    const AhaRecipe *r;
    AhaModel *policy;
    AhaModel *ref;              /* NULL when beta == 0 */
    AhaAdamW *opt;
    int step;
    int total_opt_steps;
    const AhaTrainOptions *options;
    const ParamShard *shard;    /* ZeRO-1 (opt holds this slice only), NULL = whole */
} UpdateContext;

int step_update(const UpdateContext *ctx, PromptCache *prompts, StepBatch *batch,
                UpdateStats *stats);

/* ---- recording (rl/trainer_record.c) ---- */

typedef struct {
    const AhaRecipe *r;
    AhaRunStore *store;
    AhaRewardSet *rewards;
    int n_comp;
    int accuracy_comp;        /* the first math or code reward, -1 when none */
    const PromptCache *prompts;
} RecordContext;

void step_metrics_fill(const RecordContext *c, const StepBatch *b, const UpdateStats *u,
                       AhaStepMetrics *m);
/* One transaction: every sampled rollout, the per-reward stats, the eval row, the metrics. */
int step_record(const RecordContext *c, int step, const StepBatch *b, const AhaStepMetrics *m,
                const AhaEvalRecord *eval);
void step_progress_line(char *out, size_t cap, int step, int steps, double eta_s,
                        const AhaStepMetrics *m, const AhaEvalRecord *eval);

/* ---- checkpoints (rl/trainer_checkpoint.c) ---- */

int trainer_checkpoint_save(const char *run_dir, int keep, const AhaModel *policy,
                            const AhaModelSource *source, AhaDtype dtype, const AhaAdamW *opt,
                            const AhaModel *ref, const AhaTrainerState *state);
/* Loads the policy (replacing *policy), moments, reference (when ref != NULL) and state. */
int trainer_checkpoint_load(const char *dir, AhaModel **policy, AhaAdamW *opt, AhaModel *ref,
                            AhaTrainerState *state);

/* ---- many processes (rl/trainer_dist.c; no-ops with one) ---- */

/* distributed.* against the job the launcher made. */
int dist_check_recipe(const AhaRecipe *r);
/* The expert groups of distributed.expert_parallel, checked against the model. */
int dist_setup_experts(const AhaRecipe *r, const AhaModelConfig *cfg);
/* This rank's data-parallel group and their count: the ranks of an expert group hold the
 * same share of the step. */
int dist_dp_rank(void);
int dist_dp_size(void);
/* After each rank sampled and scored slots [base+lo, base+hi) of a round of `need` prompts:
 * every rank gets every group of the round. */
int dist_share_groups(StepBatch *b, int base, int need, int lo, int hi, int n_comp);
int dist_sum_rollout_stats(AhaRolloutStats *st);
/* The update's first-pass statistics over every rank's micro-batches. */
int dist_sum_update_stats(UpdateStats *st);
/* The minibatch's loss and gradients summed over the ranks (ZeRO-1: only this rank's slice
 * of the gradients is summed and valid). */
int dist_sum_gradients(AhaModel *m, double *loss, const ParamShard *shard);
/* aha_clip_grad_norm for sharded gradients. */
int dist_clip_grad_norm(float *grads, const ParamShard *shard, float max_norm, float *norm);
int dist_shard_init(ParamShard *s, size_t count);
void dist_shard_free(ParamShard *s);
int dist_shard_adamw(AhaAdamW *opt, const ParamShard *s);
int dist_gather_adamw(const AhaAdamW *slice, AhaAdamW *whole);

/* ---- eval (rl/eval.c) ---- */
int eval_dataset(AhaModel *m, const AhaTokenizer *tok, const AhaDataset *ds,
                 const AhaEvalConfig *cfg, AhaEvalResult *out);

#endif
