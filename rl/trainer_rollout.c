/* One step's rollouts: sample on the sampler thread, score each group on this thread as it
 * arrives (so rewards overlap decoding), store by slot so that arrival order never
 * matters, drop zero-variance groups under dynamic sampling, compute advantages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/dist.h"
#include "aha/error.h"
#include "rl/trainer_internal.h"

int rollout_each_group(AhaModel *m, const AhaRolloutRequest *req, const AhaRolloutOptions *opts,
                       int (*on_group)(void *ctx, AhaRolloutGroup *group), void *ctx,
                       AhaRolloutStats *stats) {
    AhaRolloutWorker *w = aha_rollout_start(m, req, opts);
    if (!w) return aha_error_prefix("rollout");
    AhaRolloutGroup *group;
    int got, rc = 0;
    while ((got = aha_rollout_next(w, &group)) == 1) {
        if (on_group(ctx, group) != 0) {
            rc = -1;
            break;
        }
    }
    if (got < 0) rc = -1;
    if (rc != 0) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", aha_error_message());
        aha_rollout_join(w, NULL);
        return aha_errorf("%s", saved);
    }
    if (aha_rollout_join(w, stats) != 0) return aha_error_prefix("rollout");
    return 0;
}

static void group_free(StepGroup *g, int G) {
    if (g->text)
        for (int s = 0; s < G; s++) free(g->text[s]);
    if (g->logp_ref)
        for (int s = 0; s < G; s++) free(g->logp_ref[s]);
    free(g->text);
    free(g->text_len);
    free(g->logp_ref);
    free(g->scores);
    free(g->values);
    free(g->total);
    free(g->adv);
    aha_rollout_group_free(g->group);
    memset(g, 0, sizeof *g);
}

void step_batch_free(StepBatch *b) {
    for (int i = 0; i < b->n_groups; i++) {
        int G = b->groups[i].group ? b->groups[i].group->n_samples : 0;
        group_free(&b->groups[i], G);
    }
    free(b->groups);
    memset(b, 0, sizeof *b);
}

typedef struct {
    const RolloutContext *ctx;
    StepBatch *batch;
    int base;        /* slot of the round's first prompt */
    int n;           /* prompts in the round */
    double t_reward;
} RoundSink;

static int score_group(void *arg, AhaRolloutGroup *group) {
    RoundSink *sink = arg;
    const RolloutContext *c = sink->ctx;
    double t0 = trainer_now();
    if (group->prompt_index < 0 || group->prompt_index >= sink->n) {
        aha_rollout_group_free(group);
        return aha_errorf("rollout: a group for prompt %d of %d", group->prompt_index, sink->n);
    }
    StepGroup *g = &sink->batch->groups[sink->base + group->prompt_index];
    g->group = group;
    int G = group->n_samples, K = c->n_comp;
    g->text = aha_calloc((size_t)G, sizeof *g->text);
    g->text_len = aha_calloc((size_t)G, sizeof *g->text_len);
    g->scores = aha_malloc((size_t)G * (size_t)K * sizeof *g->scores);
    g->values = aha_calloc((size_t)G * (size_t)K, sizeof *g->values);
    g->total = aha_malloc((size_t)G * sizeof *g->total);
    g->adv = aha_calloc((size_t)G, sizeof *g->adv);
    AhaRewardSample *samples = aha_calloc((size_t)G, sizeof *samples);
    if (!g->text || !g->text_len || !g->scores || !g->values || !g->total || !g->adv || !samples) {
        free(samples);
        return -1;
    }
    const AhaExample *ex = aha_dataset_get(c->prompts->ds, (size_t)g->row);
    for (int s = 0; s < G; s++) {
        const AhaCompletion *cp = &group->samples[s];
        g->text[s] = aha_tokenizer_decode(c->tok, cp->tokens, (size_t)cp->n_tokens, 1, &g->text_len[s]);
        if (!g->text[s]) {
            free(samples);
            return aha_error_prefix("decoding a completion");
        }
        samples[s] = (AhaRewardSample){.prompt = c->prompts->text[g->row],
                                       .completion = g->text[s],
                                       .completion_len = g->text_len[s],
                                       .row_json = ex->json,
                                       .completion_tokens = cp->n_tokens};
    }
    int rc = aha_reward_set_score(c->rewards, samples, G, g->values, g->total);
    free(samples);
    if (rc != 0) return aha_error_prefix("scoring");
    for (int i = 0; i < G * K; i++)
        g->scores[i] = g->values[i].status == AHA_REWARD_SCORED ? g->values[i].score : NAN;
    sink->t_reward += trainer_now() - t0;
    return 0;
}

/* Draws the next row whose prompt fits; -1 with an error when none does. */
static int64_t next_row(const RolloutContext *c) {
    for (int64_t tries = 0; tries < c->order->n_rows; tries++) {
        int64_t row = aha_data_order_next(c->order);
        if (row < 0) return -1;
        int len = prompt_cache_get(c->prompts, (size_t)row);
        if (len == -2) return -1;
        if (len > 0) return row;
    }
    aha_errorf("data.train: no prompt fits in data.max_prompt_tokens = %d tokens",
               c->r->data.max_prompt_tokens);
    return -1;
}

static int sample_round(const RolloutContext *c, uint64_t seed, int need, StepBatch *b) {
    const AhaRecipe *r = c->r;
    int base = b->n_groups;
    if (base + need > b->capacity) {
        int cap = base + need;
        StepGroup *grown = aha_realloc(b->groups, (size_t)cap * sizeof *grown);
        AHA_CHECK_ALLOC(grown);
        b->groups = grown;
        b->capacity = cap;
    }
    memset(b->groups + base, 0, (size_t)need * sizeof *b->groups);
    b->n_groups = base + need;
    /* every rank draws every row (the data order stays the same everywhere) and samples
     * and scores its share [lo, hi) of the round's slots */
    int lo = (int)aha_dist_share_lo((size_t)need, dist_dp_rank(), dist_dp_size());
    int hi = (int)aha_dist_share_lo((size_t)need, dist_dp_rank() + 1, dist_dp_size());
    const int32_t **prompts = aha_calloc((size_t)need, sizeof *prompts);
    int *lens = aha_calloc((size_t)need, sizeof *lens);
    uint32_t *ids = aha_calloc((size_t)need, sizeof *ids);
    int rc = (!prompts || !lens || !ids) ? -1 : 0;
    for (int i = 0; i < need && rc == 0; i++) {
        int64_t row = next_row(c);
        if (row < 0) {
            rc = -1;
            break;
        }
        b->groups[base + i].row = row;
        b->groups[base + i].slot = base + i;
        prompts[i] = c->prompts->ids[row];
        lens[i] = c->prompts->len[row];
        ids[i] = (uint32_t)(base + i); /* the stream of a slot: no two prompts share one */
    }
    if (rc == 0) {
        AhaRolloutRequest req = {.n_prompts = hi - lo, .prompts = prompts + lo, .prompt_lens = lens + lo,
                                 .prompt_ids = ids + lo, .group_size = r->rollout.group_size};
        aha_sampling_params_default(&req.params);
        req.params.temperature = (float)r->rollout.temperature;
        req.params.top_p = (float)r->rollout.top_p;
        req.params.top_k = r->rollout.top_k;
        req.params.max_new_tokens = r->rollout.max_new_tokens;
        req.params.eos_ids = c->eos_ids;
        req.params.n_eos_ids = c->n_eos;
        req.params.stop_strings = (const char *const *)r->rollout.stop.items;
        req.params.n_stop_strings = r->rollout.stop.count;
        req.params.seed = seed;
        AhaTokenText text = trainer_token_text(c->tok);
        AhaRolloutOptions opts;
        aha_rollout_options_default(&opts);
        opts.share_prefix = r->rollout.share_prefix;
        opts.threads = r->rollout.threads;
        opts.token_text = &text;
        RoundSink sink = {.ctx = c, .batch = b, .base = base + lo, .n = hi - lo};
        AhaRolloutStats st = {0};
        double t0 = trainer_now();
        if (hi > lo) rc = rollout_each_group(c->policy, &req, &opts, score_group, &sink, &st);
        for (int i = base + lo; i < base + hi && rc == 0; i++)
            if (b->groups[i].group) b->groups[i].group->prompt_index = i - base;
        if (rc == 0) rc = dist_share_groups(b, base, need, lo, hi, c->n_comp);
        if (rc == 0) rc = dist_sum_rollout_stats(&st);
        b->t_rollout += trainer_now() - t0;
        b->t_reward += sink.t_reward;
        b->rollout.prefill_seconds += st.prefill_seconds;
        b->rollout.decode_seconds += st.decode_seconds;
        b->rollout.prompt_tokens += st.prompt_tokens;
        b->rollout.generated_tokens += st.generated_tokens;
        b->rollout.decode_steps += st.decode_steps;
        for (int i = 0; i < need && rc == 0; i++)
            if (!b->groups[base + i].group) rc = aha_errorf("rollout: prompt %d got no group", i);
    }
    free(prompts);
    free(lens);
    free(ids);
    return rc;
}

static int group_advantages(const RolloutContext *c, const AhaAdvantageConfig *acfg,
                            StepGroup *const *groups, int n, AhaAdvantageStats *stats) {
    if (n == 0) return 0;
    int G = c->r->rollout.group_size, K = c->n_comp;
    size_t ns = (size_t)n * (size_t)G;
    double *rewards = aha_malloc(ns * (size_t)K * sizeof *rewards);
    double *total = aha_malloc(ns * sizeof *total);
    double *adv = aha_malloc(ns * sizeof *adv);
    AhaGroupStatus *status = aha_malloc((size_t)n * sizeof *status);
    int rc = (!rewards || !total || !adv || !status) ? -1 : 0;
    if (rc == 0) {
        for (int i = 0; i < n; i++)
            memcpy(rewards + (size_t)i * G * K, groups[i]->scores, (size_t)G * K * sizeof *rewards);
        rc = aha_grpo_advantages(acfg, n, G, K, rewards, c->weights, total, adv, status, stats);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        memcpy(groups[i]->total, total + (size_t)i * G, (size_t)G * sizeof *total);
        memcpy(groups[i]->adv, adv + (size_t)i * G, (size_t)G * sizeof *adv);
        groups[i]->status = status[i];
    }
    free(rewards);
    free(total);
    free(adv);
    free(status);
    return rc;
}

int step_rollout(const RolloutContext *c, uint64_t seed, StepBatch *b) {
    const AhaRecipe *r = c->r;
    memset(b, 0, sizeof *b);
    AhaAdvantageConfig acfg = {.kind = (AhaGrpoAdvantage)r->algorithm.advantage,
                               .combine = (AhaGrpoCombine)r->algorithm.reward_combine,
                               .eps = r->algorithm.advantage_eps};
    int B = r->rollout.prompts_per_step;
    int dynamic = r->algorithm.dynamic_sampling;
    int max_rounds = dynamic ? 1 + r->algorithm.max_resample_rounds : 1;
    for (int round = 0; round < max_rounds && b->n_kept < B; round++) {
        int base = b->n_groups, need = B - b->n_kept;
        if (sample_round(c, seed, need, b) != 0) goto fail;
        b->rounds = round;
        /* each group alone, for its status (and the totals of groups dropped below) */
        for (int i = base; i < b->n_groups; i++) {
            StepGroup *g = &b->groups[i];
            if (group_advantages(c, &acfg, &g, 1, NULL) != 0) goto fail;
            g->kept = !dynamic || g->status != AHA_GROUP_ALL_EQUAL;
            b->n_kept += g->kept;
            b->n_dropped += !g->kept;
        }
    }
    StepGroup **kept = aha_malloc((size_t)(b->n_kept > 0 ? b->n_kept : 1) * sizeof *kept);
    if (!kept) goto fail;
    int n = 0;
    for (int i = 0; i < b->n_groups; i++) {
        if (b->groups[i].kept) kept[n++] = &b->groups[i];
        else memset(b->groups[i].adv, 0, (size_t)r->rollout.group_size * sizeof(double));
    }
    int rc = group_advantages(c, &acfg, kept, n, &b->adv_stats);
    free(kept);
    if (rc != 0) goto fail;
    return 0;
fail:
    step_batch_free(b);
    return -1;
}
