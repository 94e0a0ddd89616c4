/* A step's metrics, its run-store transaction and its progress line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "rl/trainer_internal.h"

static double ratio_or_nan(double num, double den) { return den > 0 ? num / den : NAN; }

void step_metrics_fill(const RecordContext *c, const StepBatch *b, const UpdateStats *u,
                       AhaStepMetrics *m) {
    const AhaRecipe *r = c->r;
    int G = r->rollout.group_size, K = c->n_comp;
    aha_step_metrics_init(m);
    double sum = 0, sum2 = 0, acc = 0, think = 0, len = 0, trunc = 0;
    double len_min = INFINITY, len_max = -INFINITY;
    long scored = 0, samples = 0;
    /* with data.open_think the prompt ends in "<think>": closing it is the sign of reasoning */
    const char *think_tag = r->data.open_think ? "</think>" : "<think>";
    int all_equal = 0, unscored = 0;
    for (int i = 0; i < b->n_groups; i++) {
        const StepGroup *g = &b->groups[i];
        all_equal += g->status == AHA_GROUP_ALL_EQUAL;
        unscored += g->status == AHA_GROUP_UNSCORED;
        for (int s = 0; s < G; s++) {
            const AhaCompletion *cp = &g->group->samples[s];
            samples++;
            if (isfinite(g->total[s])) {
                sum += g->total[s];
                sum2 += g->total[s] * g->total[s];
                scored++;
            }
            if (c->accuracy_comp >= 0 && g->scores[s * K + c->accuracy_comp] >= 1.0) acc++;
            if (memmem(g->text[s], g->text_len[s], think_tag, strlen(think_tag))) think++;
            len += cp->n_tokens;
            len_min = cp->n_tokens < len_min ? cp->n_tokens : len_min;
            len_max = cp->n_tokens > len_max ? cp->n_tokens : len_max;
            trunc += cp->stop == AHA_STOP_LENGTH;
        }
    }
    if (scored > 0) {
        m->reward_mean = sum / scored;
        double var = sum2 / scored - m->reward_mean * m->reward_mean;
        m->reward_std = sqrt(var > 0 ? var : 0);
    }
    if (c->accuracy_comp >= 0) m->accuracy = ratio_or_nan(acc, samples);
    m->think_frac = ratio_or_nan(think, samples);
    m->len_mean = ratio_or_nan(len, samples);
    if (samples > 0) {
        m->len_min = len_min;
        m->len_max = len_max;
    }
    m->frac_truncated = ratio_or_nan(trunc, samples);
    m->adv_mean = b->adv_stats.mean;
    m->adv_std = b->adv_stats.std;
    m->adv_min = b->adv_stats.min;
    m->adv_max = b->adv_stats.max;
    m->groups_all_equal = all_equal;
    m->groups_unscored = unscored;
    m->groups_dropped = b->n_dropped;
    m->resample_rounds = b->rounds;

    const AhaLossMetrics *lm = &u->loss_metrics;
    m->loss = u->loss;
    m->policy_loss = u->policy_loss;
    m->kl_loss = r->algorithm.beta > 0 ? u->kl_loss : NAN;
    m->kl = r->algorithm.beta > 0 ? ratio_or_nan(lm->kl_sum, (double)lm->n_tokens) : NAN;
    m->entropy = ratio_or_nan(u->entropy_sum, (double)u->entropy_n);
    m->clip_low = ratio_or_nan((double)lm->n_clip_low, (double)lm->n_tokens);
    m->clip_high = ratio_or_nan((double)lm->n_clip_high, (double)lm->n_tokens);
    m->dual_clip = ratio_or_nan((double)lm->n_dual_clip, (double)lm->n_tokens);
    if (lm->n_tokens > 0) {
        m->ratio_min = lm->ratio_min;
        m->ratio_mean = lm->ratio_sum / (double)lm->n_tokens;
        m->ratio_max = lm->ratio_max;
    }
    m->lr = u->lr;
    m->grad_norm = ratio_or_nan(u->grad_norm_sum, u->n_updates);
    m->aux_loss = ratio_or_nan(u->aux_loss_sum, u->aux_n);
    m->expert_balance = ratio_or_nan(u->expert_balance_sum, u->expert_balance_n);
    m->nan_skipped = u->n_skipped;
    m->rollout_tokens = (double)b->rollout.generated_tokens;
    m->train_tokens = (double)u->train_tokens;
    m->rollout_tok_s = ratio_or_nan((double)b->rollout.generated_tokens, b->t_rollout);
    m->train_tok_s = ratio_or_nan((double)u->train_tokens, u->t_train);
    m->t_rollout = b->t_rollout;
    m->t_reward = b->t_reward;
    m->t_ref = u->t_ref;
    m->t_train = u->t_train;
}

static int add_rollouts(const RecordContext *c, const StepBatch *b) {
    int G = c->r->rollout.group_size, K = c->n_comp;
    const char **names = aha_malloc((size_t)K * sizeof *names);
    const char **reasons = aha_malloc((size_t)K * sizeof *reasons);
    if (!names || !reasons) {
        free(names);
        free(reasons);
        return -1;
    }
    for (int k = 0; k < K; k++) names[k] = aha_reward_set_name(c->rewards, k);
    int rc = 0;
    for (int i = 0; i < b->n_groups && rc == 0; i++) {
        const StepGroup *g = &b->groups[i];
        const AhaExample *ex = aha_dataset_get(c->prompts->ds, (size_t)g->row);
        for (int s = 0; s < G && rc == 0; s++) {
            const AhaCompletion *cp = &g->group->samples[s];
            double lp = 0;
            for (int t = 0; t < cp->n_tokens; t++) lp += cp->logprobs[t];
            for (int k = 0; k < K; k++) reasons[k] = g->values[s * K + k].reason;
            AhaRolloutRecord rec = {.prompt_index = g->slot, .sample_index = s, .prompt_id = g->row,
                                    .prompt = c->prompts->text[g->row], .gold = ex->answer,
                                    .completion = g->text[s], .completion_len = g->text_len[s], .n_tokens = cp->n_tokens,
                                    .reward = g->total[s], .advantage = g->adv[s],
                                    .stop_reason = aha_stop_reason_name(cp->stop),
                                    .mean_logprob = cp->n_tokens > 0 ? lp / cp->n_tokens : NAN,
                                    .n_components = K, .component_names = names,
                                    .scores = g->scores + (size_t)s * K, .reasons = reasons};
            rc = aha_runstore_add_rollout(c->store, &rec);
        }
    }
    for (int k = 0; k < K && rc == 0; k++) {
        double sum = 0, sum2 = 0;
        long n = 0;
        for (int i = 0; i < b->n_groups; i++)
            for (int s = 0; s < G; s++) {
                double v = b->groups[i].scores[s * K + k];
                if (!isfinite(v)) continue;
                sum += v;
                sum2 += v * v;
                n++;
            }
        double mean = n > 0 ? sum / n : NAN, var = n > 0 ? sum2 / n - mean * mean : NAN;
        rc = aha_runstore_add_step_reward(c->store, names[k], mean, n > 0 ? sqrt(var > 0 ? var : 0) : NAN);
    }
    free(names);
    free(reasons);
    return rc;
}

int step_record(const RecordContext *c, int step, const StepBatch *b, const AhaStepMetrics *m,
                const AhaEvalRecord *eval) {
    AHA_TRY(aha_runstore_begin_step(c->store, step));
    int rc = add_rollouts(c, b);
    if (rc == 0 && eval) rc = aha_runstore_add_eval(c->store, eval);
    if (rc == 0) rc = aha_runstore_commit_step(c->store, m);
    if (rc != 0) {
        aha_runstore_rollback(c->store);
        return aha_error_prefix("recording step %d", step + 1);
    }
    return 0;
}

static void format_duration(char *out, size_t cap, double seconds) {
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(out, cap, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
}

static void value(char *out, size_t cap, const char *fmt, double v) {
    if (isfinite(v)) snprintf(out, cap, fmt, v);
    else snprintf(out, cap, "-");
}

void step_progress_line(char *out, size_t cap, int step, int steps, double eta_s,
                        const AhaStepMetrics *m, const AhaEvalRecord *eval) {
    char eta[32], reward[32], acc[32], len[32], kl[32], think[32], rtok[32], ttok[32];
    format_duration(eta, sizeof eta, eta_s);
    value(reward, sizeof reward, "%.3f", m->reward_mean);
    value(acc, sizeof acc, "%.3f", m->accuracy);
    value(len, sizeof len, "%.1f", m->len_mean);
    value(kl, sizeof kl, "%.4g", m->kl);
    value(think, sizeof think, "%.2f", m->think_frac);
    value(rtok, sizeof rtok, "%.0f", m->rollout_tok_s);
    value(ttok, sizeof ttok, "%.0f", m->train_tok_s);
    size_t used = (size_t)snprintf(out, cap,
                                   "step %d/%d  eta %s  reward %s  acc %s  len %s  think %s  kl %s"
                                   "  tok/s rollout %s train %s",
                                   step + 1, steps, eta, reward, acc, len, think, kl, rtok, ttok);
    if (m->groups_dropped > 0 && used < cap)
        used += (size_t)snprintf(out + used, cap - used, "  dropped %.0f", m->groups_dropped);
    if (m->nan_skipped > 0 && used < cap)
        used += (size_t)snprintf(out + used, cap - used, "  NaN-skipped %.0f", m->nan_skipped);
    if (eval && used < cap)
        snprintf(out + used, cap - used, "  | eval acc %.3f mean@%d %.3f", eval->accuracy, eval->k,
                 eval->mean_at_k);
}
