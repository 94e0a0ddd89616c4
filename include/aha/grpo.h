/* GRPO's arithmetic as pure functions over arrays: group-relative advantages, the clipped
 * policy loss (token or sequence ratios, dual clip, three aggregations), the KL penalty to a
 * reference policy, and the metrics people log. Nothing here knows about the model: the
 * loss takes per-token log-probabilities and returns dL/dlogp, which the model's backward
 * turns into parameter gradients. Formulas: docs/training.md. */
#ifndef AHA_GRPO_H
#define AHA_GRPO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { AHA_GRPO_ADV_GRPO, AHA_GRPO_ADV_DR_GRPO, AHA_GRPO_ADV_BATCH_STD } AhaGrpoAdvantage;
typedef enum { AHA_GRPO_SUM_THEN_NORMALIZE, AHA_GRPO_NORMALIZE_THEN_SUM } AhaGrpoCombine;
typedef enum { AHA_GRPO_RATIO_TOKEN, AHA_GRPO_RATIO_SEQUENCE } AhaGrpoRatio;
typedef enum {
    AHA_GRPO_AGG_TOKEN_MEAN,              /* DAPO: sum of token losses / number of tokens */
    AHA_GRPO_AGG_SEQ_MEAN_TOKEN_MEAN,     /* original GRPO: mean over sequences of the token mean */
    AHA_GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM, /* Dr. GRPO: sum of token losses / (sequences * L_max) */
} AhaGrpoAgg;
typedef enum { AHA_GRPO_KL_K1, AHA_GRPO_KL_K2, AHA_GRPO_KL_K3 } AhaGrpoKl;

/* ---------------------------------------------------------------------------------------
 * Advantages */

typedef struct {
    AhaGrpoAdvantage kind;
    AhaGrpoCombine combine;
    double eps; /* added to the std before dividing */
} AhaAdvantageConfig;

/* Why a group carries no gradient signal (other than KL). */
typedef enum {
    AHA_GROUP_OK = 0,
    AHA_GROUP_ALL_EQUAL = 1, /* every total reward the same: all advantages are 0 */
    AHA_GROUP_UNSCORED = 2,  /* some sample lacks a score (NaN component): group excluded */
} AhaGroupStatus;

typedef struct {
    int n_groups_ok, n_groups_all_equal, n_groups_unscored;
    double mean, std, min, max; /* over the samples of scored groups (0 when none) */
} AhaAdvantageStats;

/* rewards[n_groups * group_size * n_components] (sample-major: sample s, component c at
 * s * n_components + c), NaN = that reward gave no score; weights[n_components].
 * Outputs: total[n_groups * group_size] (weighted sum; NaN for samples of unscored groups),
 * advantages[n_groups * group_size] (0 in unscored groups), status[n_groups] (may be NULL),
 * stats (may be NULL). Std is the unbiased sample std (n - 1), as torch.std in TRL and veRL;
 * a group of one sample has std 0. */
int aha_grpo_advantages(const AhaAdvantageConfig *cfg, int n_groups, int group_size,
                        int n_components, const double *rewards, const double *weights,
                        double *total, double *advantages, AhaGroupStatus *status,
                        AhaAdvantageStats *stats);

/* ---------------------------------------------------------------------------------------
 * Policy loss */

typedef struct {
    double eps_low, eps_high; /* clip(ratio, 1 - eps_low, 1 + eps_high) */
    double dual_clip;         /* 0 = off; else c > 1 bounds the loss by -c * A when A < 0 */
    AhaGrpoRatio ratio;
    AhaGrpoAgg agg;
    double norm_len;          /* L_max of seq_mean_token_sum_norm (> 0 for that aggregation) */
    double beta;              /* KL coefficient; 0 = no KL term, logp_ref may be NULL */
    AhaGrpoKl kl;
} AhaLossConfig;

/* A minibatch of completions, packed: sequence i owns tokens [seq_start[i], seq_start[i+1]). */
typedef struct {
    int n_seqs;
    const int *seq_start;      /* [n_seqs + 1], seq_start[0] = 0 */
    const float *logp;         /* [T] current policy log-probs of the completion tokens */
    const float *logp_old;     /* [T] behaviour policy (sampler) log-probs */
    const float *logp_ref;     /* [T] reference policy log-probs, or NULL when beta == 0 */
    const double *advantages;  /* [n_seqs] */
    const unsigned char *mask; /* [n_seqs] 1 = in the loss, 0 = masked (truncated, unscored);
                                  NULL = all in */
} AhaLossBatch;

/* Sums, so that minibatches and accumulation steps merge with aha_grpo_metrics_merge. */
typedef struct {
    double policy_loss; /* aggregated like the loss (this minibatch's share) */
    double kl_loss;     /* beta * KL, aggregated like the loss */
    long n_tokens;      /* unmasked tokens seen */
    long n_seqs;        /* unmasked sequences seen */
    long n_clip_low;    /* tokens with ratio < 1 - eps_low and A < 0 */
    long n_clip_high;   /* tokens with ratio > 1 + eps_high and A > 0 */
    long n_dual_clip;   /* tokens whose loss the dual clip bounded */
    double ratio_sum, ratio_min, ratio_max; /* per token (the sequence ratio, broadcast) */
    double kl_sum;      /* sum over tokens of the estimator's value (without beta) */
} AhaLossMetrics;

void aha_grpo_metrics_init(AhaLossMetrics *m);
void aha_grpo_metrics_merge(AhaLossMetrics *into, const AhaLossMetrics *from);

/* The aggregation's denominators over the whole optimizer step (all accumulated
 * minibatches), so that summing the minibatch losses gives the loss of the whole batch.
 * n_tokens_total: unmasked tokens; n_seqs_total: unmasked sequences. 0 = use this
 * minibatch's own counts. */
typedef struct {
    long n_tokens_total;
    long n_seqs_total;
} AhaLossNorm;

/* Returns 0 and sets *loss (this minibatch's share of the batch loss: policy + beta * KL),
 * dlogp[T] = d loss / d logp (0 for masked tokens), and adds to *metrics (may be NULL).
 * Fails on inconsistent inputs (negative lengths, missing reference with beta > 0, ...). */
int aha_grpo_loss(const AhaLossConfig *cfg, const AhaLossBatch *batch, const AhaLossNorm *norm,
                  double *loss, float *dlogp, AhaLossMetrics *metrics);

/* Counts the unmasked tokens and sequences of a minibatch, to build an AhaLossNorm. */
void aha_grpo_count(const AhaLossBatch *batch, long *n_tokens, long *n_seqs);

/* The KL estimator's value and its derivative with respect to logp, for one token. */
double aha_grpo_kl(AhaGrpoKl kl, double logp, double logp_ref, double *dkl_dlogp);

/* Learning rate at optimizer step `step` (0-based): linear warm-up over warmup_steps from
 * lr / warmup_steps, then constant or cosine decay to lr * min_lr_ratio at total_steps. */
double aha_lr_schedule(double lr, int warmup_steps, int cosine, double min_lr_ratio,
                       int step, int total_steps);

#ifdef __cplusplus
}
#endif

#endif
