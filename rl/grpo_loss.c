/* The GRPO policy loss: clipped surrogate (token or sequence ratios, dual clip), KL to a
 * reference policy, three aggregations; returns dL/dlogp per token. docs/training.md. */
#include "aha/grpo.h"

#include <math.h>

#include "aha/error.h"

/* Log-ratios beyond this are clamped (their gradient is then 0), as veRL does, so that one
 * wild token cannot overflow exp(). */
#define AHA_LOG_RATIO_CLAMP 20.0

void aha_grpo_metrics_init(AhaLossMetrics *m) {
    *m = (AhaLossMetrics){0};
    m->ratio_min = INFINITY;
    m->ratio_max = -INFINITY;
}

void aha_grpo_metrics_merge(AhaLossMetrics *into, const AhaLossMetrics *from) {
    into->policy_loss += from->policy_loss;
    into->kl_loss += from->kl_loss;
    into->n_tokens += from->n_tokens;
    into->n_seqs += from->n_seqs;
    into->n_clip_low += from->n_clip_low;
    into->n_clip_high += from->n_clip_high;
    into->n_dual_clip += from->n_dual_clip;
    into->ratio_sum += from->ratio_sum;
    into->kl_sum += from->kl_sum;
    if (from->ratio_min < into->ratio_min) into->ratio_min = from->ratio_min;
    if (from->ratio_max > into->ratio_max) into->ratio_max = from->ratio_max;
}

double aha_grpo_kl(AhaGrpoKl kl, double logp, double logp_ref, double *dkl_dlogp) {
    double x = logp_ref - logp;
    double dx = -1.0; /* dx/dlogp */
    if (x > AHA_LOG_RATIO_CLAMP || x < -AHA_LOG_RATIO_CLAMP) {
        x = x > 0 ? AHA_LOG_RATIO_CLAMP : -AHA_LOG_RATIO_CLAMP;
        dx = 0.0;
    }
    double value, dvalue_dx;
    switch (kl) {
    case AHA_GRPO_KL_K1: value = -x; dvalue_dx = -1.0; break;
    case AHA_GRPO_KL_K2: value = 0.5 * x * x; dvalue_dx = x; break;
    default: {
        double e = exp(x);
        value = e - x - 1.0;
        dvalue_dx = e - 1.0;
    }
    }
    if (dkl_dlogp) *dkl_dlogp = dvalue_dx * dx;
    return value;
}

typedef struct {
    double loss, dloss_dratio;
    int clip_low, clip_high, dual;
} Surrogate;

/* -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A), then the dual clip for A < 0. */
static Surrogate surrogate(const AhaLossConfig *cfg, double r, double a) {
    Surrogate s = {0};
    double clipped = fmin(fmax(r, 1.0 - cfg->eps_low), 1.0 + cfg->eps_high);
    if (r * a <= clipped * a) {
        s.loss = -r * a;
        s.dloss_dratio = -a;
    } else { /* the clipped branch is active only when r lies outside the range: flat */
        s.loss = -clipped * a;
        s.dloss_dratio = 0.0;
        s.clip_low = r < 1.0 - cfg->eps_low;
        s.clip_high = r > 1.0 + cfg->eps_high;
    }
    if (cfg->dual_clip > 0.0 && a < 0.0 && s.loss > -cfg->dual_clip * a) {
        s.loss = -cfg->dual_clip * a;
        s.dloss_dratio = 0.0;
        s.dual = 1;
    }
    return s;
}

/* exp of a clamped log-ratio; *flat is set when the clamp cut the gradient. */
static double ratio_of(double log_ratio, int *flat) {
    *flat = 0;
    if (log_ratio > AHA_LOG_RATIO_CLAMP || log_ratio < -AHA_LOG_RATIO_CLAMP) {
        *flat = 1;
        log_ratio = log_ratio > 0 ? AHA_LOG_RATIO_CLAMP : -AHA_LOG_RATIO_CLAMP;
    }
    return exp(log_ratio);
}

static int in_loss(const AhaLossBatch *b, int i) {
    return (!b->mask || b->mask[i]) && b->seq_start[i + 1] > b->seq_start[i];
}

void aha_grpo_count(const AhaLossBatch *b, long *n_tokens, long *n_seqs) {
    *n_tokens = 0;
    *n_seqs = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        if (!in_loss(b, i)) continue;
        *n_tokens += b->seq_start[i + 1] - b->seq_start[i];
        *n_seqs += 1;
    }
}

static int check_config(const AhaLossConfig *cfg) {
    AHA_REQUIRE(cfg->eps_low >= 0.0 && cfg->eps_low < 1.0, "loss: eps_low must be in [0, 1), got %g",
                cfg->eps_low);
    AHA_REQUIRE(cfg->eps_high >= 0.0 && isfinite(cfg->eps_high), "loss: eps_high must be finite and >= 0, got %g",
                cfg->eps_high);
    AHA_REQUIRE(cfg->dual_clip == 0.0 || cfg->dual_clip > 1.0, "loss: dual_clip must be 0 (off) or > 1, got %g",
                cfg->dual_clip);
    AHA_REQUIRE(cfg->beta >= 0.0 && isfinite(cfg->beta), "loss: beta must be finite and >= 0, got %g", cfg->beta);
    AHA_REQUIRE(cfg->ratio == AHA_GRPO_RATIO_TOKEN || cfg->ratio == AHA_GRPO_RATIO_SEQUENCE, "loss: unknown ratio kind %d",
                (int)cfg->ratio);
    AHA_REQUIRE(cfg->kl == AHA_GRPO_KL_K1 || cfg->kl == AHA_GRPO_KL_K2 || cfg->kl == AHA_GRPO_KL_K3,
                "loss: unknown KL estimator %d", (int)cfg->kl);
    AHA_REQUIRE(cfg->agg == AHA_GRPO_AGG_TOKEN_MEAN || cfg->agg == AHA_GRPO_AGG_SEQ_MEAN_TOKEN_MEAN ||
                    cfg->agg == AHA_GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM,
                "loss: unknown aggregation %d", (int)cfg->agg);
    AHA_REQUIRE(cfg->agg != AHA_GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM || cfg->norm_len > 0.0,
                "loss: seq_mean_token_sum_norm needs norm_len > 0, got %g", cfg->norm_len);
    return 0;
}

int aha_grpo_loss(const AhaLossConfig *cfg, const AhaLossBatch *b, const AhaLossNorm *norm,
                  double *loss_out, float *dlogp, AhaLossMetrics *metrics) {
    AHA_TRY(check_config(cfg));
    AHA_REQUIRE(b->n_seqs >= 0 && b->seq_start && b->seq_start[0] == 0,
                "loss: need n_seqs >= 0 and seq_start[0] == 0");
    for (int i = 0; i < b->n_seqs; i++)
        AHA_REQUIRE(b->seq_start[i + 1] >= b->seq_start[i], "loss: seq_start decreases at sequence %d", i);
    AHA_REQUIRE(cfg->beta == 0.0 || b->logp_ref, "loss: beta = %g needs reference log-probs", cfg->beta);
    long own_tokens, own_seqs;
    aha_grpo_count(b, &own_tokens, &own_seqs);
    double n_tok = norm && norm->n_tokens_total > 0 ? (double)norm->n_tokens_total : (double)own_tokens;
    double n_seq = norm && norm->n_seqs_total > 0 ? (double)norm->n_seqs_total : (double)own_seqs;
    AhaLossMetrics m;
    aha_grpo_metrics_init(&m);
    double policy_loss = 0.0, kl_loss = 0.0;
    for (int i = 0; i < b->n_seqs; i++) {
        int start = b->seq_start[i], end = b->seq_start[i + 1], len = end - start;
        if (!in_loss(b, i)) {
            for (int t = start; t < end; t++) dlogp[t] = 0.0f;
            continue;
        }
        AHA_REQUIRE(isfinite(b->advantages[i]), "loss: advantage of sequence %d is not finite", i);
        double a = b->advantages[i];
        double w = cfg->agg == AHA_GRPO_AGG_TOKEN_MEAN             ? 1.0 / n_tok
                   : cfg->agg == AHA_GRPO_AGG_SEQ_MEAN_TOKEN_MEAN ? 1.0 / (n_seq * len)
                                                              : 1.0 / (n_seq * cfg->norm_len);
        if (cfg->ratio == AHA_GRPO_RATIO_SEQUENCE) {
            double mean_log_ratio = 0.0;
            for (int t = start; t < end; t++) mean_log_ratio += (double)b->logp[t] - b->logp_old[t];
            mean_log_ratio /= len;
            int flat;
            double s = ratio_of(mean_log_ratio, &flat);
            Surrogate sur = surrogate(cfg, s, a);
            double seq_weight = w * len; /* every token carries the sequence's loss */
            policy_loss += seq_weight * sur.loss;
            double g = flat ? 0.0 : seq_weight * sur.dloss_dratio * s / len;
            for (int t = start; t < end; t++) dlogp[t] = (float)g;
            m.n_clip_low += sur.clip_low ? len : 0;
            m.n_clip_high += sur.clip_high ? len : 0;
            m.n_dual_clip += sur.dual ? len : 0;
            m.ratio_sum += s * len;
            if (s < m.ratio_min) m.ratio_min = s;
            if (s > m.ratio_max) m.ratio_max = s;
        } else {
            for (int t = start; t < end; t++) {
                int flat;
                double r = ratio_of((double)b->logp[t] - b->logp_old[t], &flat);
                Surrogate sur = surrogate(cfg, r, a);
                policy_loss += w * sur.loss;
                dlogp[t] = flat ? 0.0f : (float)(w * sur.dloss_dratio * r);
                m.n_clip_low += sur.clip_low;
                m.n_clip_high += sur.clip_high;
                m.n_dual_clip += sur.dual;
                m.ratio_sum += r;
                if (r < m.ratio_min) m.ratio_min = r;
                if (r > m.ratio_max) m.ratio_max = r;
            }
        }
        if (cfg->beta > 0.0) {
            for (int t = start; t < end; t++) {
                double dk;
                double k = aha_grpo_kl(cfg->kl, b->logp[t], b->logp_ref[t], &dk);
                kl_loss += w * cfg->beta * k;
                m.kl_sum += k;
                dlogp[t] = (float)((double)dlogp[t] + w * cfg->beta * dk);
            }
        }
        m.n_tokens += len;
        m.n_seqs += 1;
    }
    m.policy_loss = policy_loss;
    m.kl_loss = kl_loss;
    *loss_out = policy_loss + kl_loss;
    if (metrics) aha_grpo_metrics_merge(metrics, &m);
    return 0;
}

double aha_lr_schedule(double lr, int warmup_steps, int cosine, double min_lr_ratio, int step,
                       int total_steps) {
    if (step < warmup_steps) return lr * (double)(step + 1) / (double)warmup_steps;
    if (!cosine) return lr;
    int decay_steps = total_steps - warmup_steps;
    double progress = decay_steps > 0 ? (double)(step - warmup_steps) / (double)decay_steps : 1.0;
    if (progress > 1.0) progress = 1.0;
    if (progress < 0.0) progress = 0.0;
    double c = 0.5 * (1.0 + cos(M_PI * progress));
    return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * c);
}
