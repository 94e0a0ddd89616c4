/* The update of one step: reference log-probs (beta > 0), then mu passes over the kept
 * completions in `minibatches` minibatches, each one optimizer step over `grad_accum`
 * micro-batches: packed forward, log-probs at the rollout temperature, GRPO loss, backward
 * with the router aux loss, NaN/Inf guard, clip, AdamW at the scheduled learning rate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/dist.h"
#include "aha/error.h"
#include "rl/trainer_internal.h"

/* One completion to train on. */
typedef struct {
    StepGroup *g;
    int s;
    const int32_t *prompt;
    int prompt_len;
} Seq;

/* A packed micro-batch: sequence i is prompt + completion at [start[i], start[i+1]); its
 * completion tokens are predicted at rows pos[cstart[i] .. cstart[i+1]). */
typedef struct {
    int n;
    int *start;      /* [n+1] */
    int *tokens;     /* [T] */
    int *targets;    /* [T] -1 = not scored */
    int *cstart;     /* [n+1] */
    int *pos;        /* [Tc] row of the completion token's prediction */
    float *logp;     /* [T] */
    float *entropy;  /* [T] */
    float *dlogp;    /* [T] */
    float *lp;       /* [Tc] gathered current log-probs */
    float *lp_old;   /* [Tc] */
    float *lp_ref;   /* [Tc] */
    float *dlp;      /* [Tc] */
    double *adv;     /* [n] */
} Packed;

static void packed_free(Packed *p) {
    free(p->start); free(p->tokens); free(p->targets); free(p->cstart); free(p->pos);
    free(p->logp); free(p->entropy); free(p->dlogp); free(p->lp); free(p->lp_old);
    free(p->lp_ref); free(p->dlp); free(p->adv);
    memset(p, 0, sizeof *p);
}

static int pack(Packed *p, const Seq *seqs, int n) {
    memset(p, 0, sizeof *p);
    size_t T = 0, Tc = 0;
    for (int i = 0; i < n; i++) {
        int c = seqs[i].g->group->samples[seqs[i].s].n_tokens;
        T += (size_t)seqs[i].prompt_len + (size_t)c;
        Tc += (size_t)c;
    }
    p->n = n;
    p->start = aha_malloc((size_t)(n + 1) * sizeof *p->start);
    p->cstart = aha_malloc((size_t)(n + 1) * sizeof *p->cstart);
    p->tokens = aha_malloc(T * sizeof *p->tokens);
    p->targets = aha_malloc(T * sizeof *p->targets);
    p->logp = aha_malloc(T * sizeof *p->logp);
    p->entropy = aha_malloc(T * sizeof *p->entropy);
    p->dlogp = aha_calloc(T, sizeof *p->dlogp);
    p->pos = aha_malloc(Tc * sizeof *p->pos);
    p->lp = aha_malloc(Tc * sizeof *p->lp);
    p->lp_old = aha_malloc(Tc * sizeof *p->lp_old);
    p->lp_ref = aha_malloc(Tc * sizeof *p->lp_ref);
    p->dlp = aha_malloc(Tc * sizeof *p->dlp);
    p->adv = aha_malloc((size_t)n * sizeof *p->adv);
    if (!p->start || !p->cstart || !p->tokens || !p->targets || !p->logp || !p->entropy ||
        !p->dlogp || !p->pos || !p->lp || !p->lp_old || !p->lp_ref || !p->dlp || !p->adv) {
        packed_free(p);
        return -1;
    }
    size_t t = 0, tc = 0;
    for (int i = 0; i < n; i++) {
        const AhaCompletion *cp = &seqs[i].g->group->samples[seqs[i].s];
        int P = seqs[i].prompt_len, C = cp->n_tokens;
        p->start[i] = (int)t;
        p->cstart[i] = (int)tc;
        for (int j = 0; j < P; j++) p->tokens[t + (size_t)j] = seqs[i].prompt[j];
        for (int j = 0; j < C; j++) p->tokens[t + (size_t)P + (size_t)j] = cp->tokens[j];
        for (int j = 0; j < P + C; j++) p->targets[t + (size_t)j] = -1;
        const float *ref = seqs[i].g->logp_ref ? seqs[i].g->logp_ref[seqs[i].s] : NULL;
        for (int j = 0; j < C; j++) {
            size_t row = t + (size_t)P - 1 + (size_t)j; /* predicts completion token j */
            p->targets[row] = cp->tokens[j];
            p->pos[tc + (size_t)j] = (int)row;
            p->lp_old[tc + (size_t)j] = cp->logprobs[j];
            p->lp_ref[tc + (size_t)j] = ref ? ref[j] : 0.0f;
        }
        p->adv[i] = seqs[i].g->adv[seqs[i].s];
        t += (size_t)P + (size_t)C;
        tc += (size_t)C;
    }
    p->start[n] = (int)t;
    p->cstart[n] = (int)tc;
    return 0;
}

static float rollout_temperature(const AhaRecipe *r) {
    return r->rollout.temperature > 0 ? (float)r->rollout.temperature : 1.0f;
}

/* Forward and log-probs of a packed micro-batch; the completion log-probs land in p->lp. */
static int forward_logprobs(AhaModel *m, Packed *p, float temperature, int want_entropy) {
    AhaBatch batch = {.n_seqs = p->n, .seq_start = p->start, .tokens = p->tokens};
    AHA_TRY(aha_model_forward(m, &batch));
    AHA_TRY(aha_model_logprobs(m, p->targets, temperature, p->logp, want_entropy ? p->entropy : NULL));
    for (int i = 0; i < p->cstart[p->n]; i++) p->lp[i] = p->logp[p->pos[i]];
    return 0;
}

static int reference_pass(const UpdateContext *c, const Seq *seqs, int n) {
    int G = c->r->rollout.group_size;
    for (int i = 0; i < n; i++) {
        StepGroup *g = seqs[i].g;
        if (!g->logp_ref) {
            g->logp_ref = aha_calloc((size_t)G, sizeof *g->logp_ref);
            AHA_CHECK_ALLOC(g->logp_ref);
        }
    }
    int chunk = 16; /* sequences per reference forward: bounds its activations */
    for (int a = 0; a < n; a += chunk) {
        int k = n - a < chunk ? n - a : chunk;
        Packed p;
        AHA_TRY(pack(&p, seqs + a, k));
        int rc = forward_logprobs(c->ref, &p, rollout_temperature(c->r), 0);
        for (int i = 0; i < k && rc == 0; i++) {
            int C = p.cstart[i + 1] - p.cstart[i];
            float *dst = aha_malloc((size_t)C * sizeof *dst);
            if (!dst) {
                rc = -1;
                break;
            }
            memcpy(dst, p.lp + p.cstart[i], (size_t)C * sizeof *dst);
            free(seqs[a + i].g->logp_ref[seqs[a + i].s]);
            seqs[a + i].g->logp_ref[seqs[a + i].s] = dst;
        }
        packed_free(&p);
        if (rc != 0) return aha_error_prefix("reference forward");
    }
    return 0;
}

static void loss_config(const AhaRecipe *r, AhaLossConfig *lc) {
    const AhaAlgorithmSection *a = &r->algorithm;
    *lc = (AhaLossConfig){.eps_low = a->eps_low, .eps_high = a->eps_high, .dual_clip = a->dual_clip,
                          .ratio = (AhaGrpoRatio)a->ratio, .agg = (AhaGrpoAgg)a->loss_agg,
                          .norm_len = a->loss_norm_len > 0 ? a->loss_norm_len : r->rollout.max_new_tokens,
                          .beta = a->beta, .kl = (AhaGrpoKl)a->kl_estimator};
}

static void add_moe_stats(const AhaModel *m, UpdateStats *st) {
    st->aux_loss_sum += aha_model_aux_loss(m);
    st->aux_n++;
    int E = m->cfg.num_experts;
    if (E <= 0) return;
    float load[AHA_MAX_EXPERTS]; /* config.json's num_experts is bounded by it */
    double sum = 0;
    int layers = 0;
    for (int l = 0; l < m->cfg.num_layers; l++) {
        if (aha_model_expert_load(m, l, load) != 0) continue;
        float mx = 0;
        for (int e = 0; e < E; e++) mx = load[e] > mx ? load[e] : mx;
        sum += (double)mx * E; /* the mean load is 1/E */
        layers++;
    }
    if (layers > 0) {
        st->expert_balance_sum += sum / layers;
        st->expert_balance_n++;
    }
}

/* One optimizer step over seqs[0..n) split into `accum` micro-batches. */
static int minibatch_update(const UpdateContext *c, const Seq *seqs, int n, int first_pass,
                            UpdateStats *st) {
    const AhaRecipe *r = c->r;
    AhaModel *m = c->policy;
    AhaLossConfig lc;
    loss_config(r, &lc);
    int accum = r->optim.grad_accum < n ? r->optim.grad_accum : n;
    /* the aggregation's denominators are the whole minibatch's */
    AhaLossNorm norm = {0};
    for (int i = 0; i < n; i++) {
        norm.n_tokens_total += seqs[i].g->group->samples[seqs[i].s].n_tokens;
        norm.n_seqs_total++;
    }
    aha_model_zero_grads(m);
    double loss = 0;
    /* many processes: the micro-batches are spread over the ranks, the same ones as with
     * one process, and their gradients summed before clipping */
    int a_lo = (int)aha_dist_share_lo((size_t)accum, dist_dp_rank(), dist_dp_size());
    int a_hi = (int)aha_dist_share_lo((size_t)accum, dist_dp_rank() + 1, dist_dp_size());
    for (int a = a_lo; a < a_hi; a++) {
        int lo = (int)((long)n * a / accum), hi = (int)((long)n * (a + 1) / accum);
        Packed p;
        AHA_TRY(pack(&p, seqs + lo, hi - lo));
        int rc = forward_logprobs(m, &p, rollout_temperature(r), first_pass);
        AhaLossBatch lb = {.n_seqs = p.n, .seq_start = p.cstart, .logp = p.lp, .logp_old = p.lp_old,
                           .logp_ref = lc.beta > 0 ? p.lp_ref : NULL, .advantages = p.adv};
        AhaLossMetrics lm;
        aha_grpo_metrics_init(&lm);
        double part = 0;
        if (rc == 0) rc = aha_grpo_loss(&lc, &lb, &norm, &part, p.dlp, &lm);
        if (rc == 0) {
            for (int i = 0; i < p.cstart[p.n]; i++) p.dlogp[p.pos[i]] = p.dlp[i];
            rc = aha_model_backward(m, p.dlogp, (float)(r->algorithm.router_aux_coef / accum));
        }
        if (rc == 0) {
            loss += part;
            st->train_tokens += p.start[p.n];
            if (first_pass) {
                aha_grpo_metrics_merge(&st->loss_metrics, &lm);
                for (int i = 0; i < p.cstart[p.n]; i++) st->entropy_sum += p.entropy[p.pos[i]];
                st->entropy_n += p.cstart[p.n];
                add_moe_stats(m, st);
            }
        }
        packed_free(&p);
        if (rc != 0) return aha_error_prefix("training micro-batch %d of %d", a + 1, accum);
    }
    if (dist_sum_gradients(m, &loss, c->shard) != 0) return aha_error_prefix("summing the gradients");
    if (c->options && c->options->after_backward &&
        c->options->after_backward(c->options->hook_ctx, c->step, m) != 0)
        return aha_error_prefix("after_backward hook");
    float gnorm;
    if (c->shard) AHA_TRY(dist_clip_grad_norm(m->grads.memory, c->shard, (float)r->optim.grad_clip, &gnorm));
    else gnorm = aha_clip_grad_norm(m->backend, m->grads.memory, m->grads.count, (float)r->optim.grad_clip);
    if (first_pass) st->loss += loss;
    if (!isfinite(loss) || !isfinite(gnorm)) {
        st->n_skipped++;
        aha_model_zero_grads(m);
        return 0;
    }
    double lr = aha_lr_schedule(r->optim.lr, r->optim.warmup_steps,
                                r->optim.schedule == AHA_SCHEDULE_COSINE, r->optim.min_lr_ratio,
                                (int)c->opt->step, c->total_opt_steps);
    if (c->shard) {
        AHA_TRY(aha_adamw_step(c->opt, m->params.memory + c->shard->lo, m->grads.memory + c->shard->lo,
                               (float)lr));
        if (aha_dist_allgather_float(m->params.memory, c->shard->counts) != 0)
            return aha_error_prefix("sharing the updated weights");
    } else {
        AHA_TRY(aha_adamw_step(c->opt, m->params.memory, m->grads.memory, (float)lr));
    }
    st->lr = lr;
    st->grad_norm_sum += gnorm;
    st->n_updates++;
    return 0;
}

/* The sequences of the micro-batches this rank trains (all of them with one process),
 * whose reference log-probs it needs. */
static Seq *own_sequences(const AhaRecipe *r, const Seq *seqs, int n, int M, int *n_mine) {
    Seq *mine = aha_malloc((size_t)n * sizeof *mine);
    if (!mine) return NULL;
    int k = 0;
    for (int j = 0; j < M; j++) {
        int lo = (int)((long)n * j / M), hi = (int)((long)n * (j + 1) / M);
        int nb = hi - lo, accum = r->optim.grad_accum < nb ? r->optim.grad_accum : nb;
        int a_lo = (int)aha_dist_share_lo((size_t)accum, dist_dp_rank(), dist_dp_size());
        int a_hi = (int)aha_dist_share_lo((size_t)accum, dist_dp_rank() + 1, dist_dp_size());
        for (int a = a_lo; a < a_hi; a++) {
            int s_lo = lo + (int)((long)nb * a / accum), s_hi = lo + (int)((long)nb * (a + 1) / accum);
            for (int i = s_lo; i < s_hi; i++) mine[k++] = seqs[i];
        }
    }
    *n_mine = k;
    return mine;
}

int step_update(const UpdateContext *c, PromptCache *prompts, StepBatch *b, UpdateStats *st) {
    const AhaRecipe *r = c->r;
    int G = r->rollout.group_size;
    memset(st, 0, sizeof *st);
    aha_grpo_metrics_init(&st->loss_metrics);
    st->lr = NAN;
    Seq *seqs = aha_malloc((size_t)(b->n_groups > 0 ? b->n_groups : 1) * (size_t)G * sizeof *seqs);
    AHA_CHECK_ALLOC(seqs);
    int n = 0;
    for (int i = 0; i < b->n_groups; i++) {
        StepGroup *g = &b->groups[i];
        if (!g->kept || g->status == AHA_GROUP_UNSCORED) continue;
        for (int s = 0; s < G; s++) {
            if (r->algorithm.mask_truncated && g->group->samples[s].stop == AHA_STOP_LENGTH) continue;
            seqs[n++] = (Seq){.g = g, .s = s, .prompt = prompts->ids[g->row],
                              .prompt_len = prompts->len[g->row]};
        }
    }
    int rc = 0;
    int M = r->algorithm.minibatches < n ? r->algorithm.minibatches : n;
    if (n > 0 && r->algorithm.beta > 0) {
        double t0 = trainer_now();
        int n_mine = 0;
        Seq *mine = own_sequences(r, seqs, n, M, &n_mine);
        rc = mine ? reference_pass(c, mine, n_mine) : -1;
        free(mine);
        st->t_ref = trainer_now() - t0;
    }
    double t0 = trainer_now();
    int n_mb = 0;
    for (int pass = 0; pass < r->algorithm.mu && rc == 0 && n > 0; pass++) {
        for (int j = 0; j < M && rc == 0; j++) {
            int lo = (int)((long)n * j / M), hi = (int)((long)n * (j + 1) / M);
            rc = minibatch_update(c, seqs + lo, hi - lo, pass == 0, st);
            if (pass == 0) n_mb++;
        }
    }
    st->t_train = trainer_now() - t0;
    if (rc == 0) rc = dist_sum_update_stats(st);
    if (n_mb > 0) st->loss /= n_mb;
    st->policy_loss = n_mb > 0 ? st->loss_metrics.policy_loss / n_mb : NAN;
    st->kl_loss = n_mb > 0 ? st->loss_metrics.kl_loss / n_mb : NAN;
    if (n_mb == 0) st->loss = NAN;
    free(seqs);
    return rc;
}
