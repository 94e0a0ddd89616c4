/* The trainer across processes (docs/distributed.md): the recipe's distributed keys against
 * the launcher, the step's groups exchanged after each rank sampled and scored its share,
 * the update's statistics summed, and ZeRO-1's sharded AdamW. With one process every
 * function here is a no-op or a plain copy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/dist.h"
#include "aha/error.h"
#include "rl/trainer_internal.h"

int dist_dp_rank(void) { return aha_dist_rank() / aha_dist_expert_size(); }
int dist_dp_size(void) { return aha_dist_size() / aha_dist_expert_size(); }

/* A duplicate: the ranks of an expert group hold the same step, which only its first
 * member counts in sums. */
static int duplicate(void) { return aha_dist_expert_rank() != 0; }

int dist_check_recipe(const AhaRecipe *r) {
    int n = aha_dist_size();
    const AhaDistributedSection *d = &r->distributed;
    AHA_REQUIRE(d->world_size == 0 || d->world_size == n,
                "distributed.world_size = %d, but the job has %d process%s (%s); set it to %d or 0 (the "
                "launcher's)", d->world_size, n, n == 1 ? "" : "es",
                aha_dist_launched() ? "from the MPI launcher" : "no MPI launcher: start with mpirun -np N", n);
    AHA_REQUIRE(n % d->expert_parallel == 0,
                "distributed.expert_parallel = %d with %d process%s: it must divide the process count",
                d->expert_parallel, n, n == 1 ? "" : "es");
    if (n == 1) return 0;
    AHA_REQUIRE(d->backend != AHA_BACKEND_NONE,
                "distributed.backend = none, but the job has %d processes; set distributed.backend: mpi", n);
    AHA_REQUIRE(d->backend != AHA_BACKEND_NCCL,
                "distributed.backend = nccl: the policy runs on the CPU, where collectives are MPI's; set "
                "distributed.backend: mpi");
    int ep = d->expert_parallel, dp = n / ep;
    AHA_REQUIRE(r->optim.grad_accum % dp == 0,
                "optim.grad_accum = %d with %d data-parallel processes: each minibatch's grad_accum micro-batches are "
                "spread over the processes, so it must be a multiple of %d (one process with the same value makes "
                "the same updates)", r->optim.grad_accum, dp, dp);
    return 0;
}

int dist_setup_experts(const AhaRecipe *r, const AhaModelConfig *cfg) {
    int ep = r->distributed.expert_parallel;
    if (ep == 1) return 0;
    AHA_REQUIRE(cfg->num_experts >= ep, "distributed.expert_parallel = %d, but model.path's layers have %d experts",
                ep, cfg->num_experts);
    return aha_dist_expert_init(ep);
}

/* ---- the step's groups, each rank's share to every rank ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} Buf;

static void put(Buf *b, const void *x, size_t n) {
    if (b->failed || n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = aha_realloc(b->p, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, x, n);
    b->len += n;
}

static void put_i32(Buf *b, int32_t v) { put(b, &v, sizeof v); }

typedef struct {
    const char *p, *end;
} Reader;

static int take(Reader *r, void *x, size_t n) {
    if ((size_t)(r->end - r->p) < n) return aha_errorf("distributed: a truncated group message");
    memcpy(x, r->p, n);
    r->p += n;
    return 0;
}

static void put_group(Buf *b, const StepGroup *g, int n_comp) {
    const AhaRolloutGroup *grp = g->group;
    put_i32(b, g->slot);
    put_i32(b, grp->n_samples);
    for (int s = 0; s < grp->n_samples; s++) {
        const AhaCompletion *c = &grp->samples[s];
        put_i32(b, c->n_tokens);
        put_i32(b, (int32_t)c->stop);
        put(b, c->tokens, (size_t)c->n_tokens * sizeof *c->tokens);
        put(b, c->logprobs, (size_t)c->n_tokens * sizeof *c->logprobs);
        int32_t len = (int32_t)g->text_len[s]; /* the text may hold NULs */
        put_i32(b, len);
        put(b, g->text[s], (size_t)len);
    }
    for (int i = 0; i < grp->n_samples * n_comp; i++) {
        const AhaRewardValue *v = &g->values[i];
        put_i32(b, (int32_t)v->status);
        put(b, &v->score, sizeof v->score);
        int32_t len = (int32_t)strlen(v->reason);
        put_i32(b, len);
        put(b, v->reason, (size_t)len);
    }
}

/* Fills the group at its slot (which must be empty) from the message. */
static int take_group(Reader *rd, StepBatch *b, int base, int need, int n_comp) {
    int32_t slot = 0, G = 0;
    AHA_TRY(take(rd, &slot, sizeof slot));
    AHA_TRY(take(rd, &G, sizeof G));
    AHA_REQUIRE(slot >= base && slot < base + need && !b->groups[slot].group && G > 0,
                "distributed: a group message for slot %d (the round has %d..%d)", slot, base, base + need - 1);
    StepGroup *g = &b->groups[slot];
    AhaRolloutGroup *grp = aha_calloc(1, sizeof *grp);
    AHA_CHECK_ALLOC(grp);
    g->group = grp;
    grp->prompt_index = slot - base;
    grp->samples = aha_calloc((size_t)G, sizeof *grp->samples);
    AHA_CHECK_ALLOC(grp->samples);
    grp->n_samples = G;
    g->text = aha_calloc((size_t)G, sizeof *g->text);
    g->text_len = aha_calloc((size_t)G, sizeof *g->text_len);
    g->scores = aha_malloc((size_t)G * (size_t)n_comp * sizeof *g->scores);
    g->values = aha_calloc((size_t)G * (size_t)n_comp, sizeof *g->values);
    g->total = aha_malloc((size_t)G * sizeof *g->total);
    g->adv = aha_calloc((size_t)G, sizeof *g->adv);
    if (!g->text || !g->text_len || !g->scores || !g->values || !g->total || !g->adv) return -1;
    for (int s = 0; s < G; s++) {
        AhaCompletion *c = &grp->samples[s];
        int32_t n = 0, stop = 0, len = 0;
        AHA_TRY(take(rd, &n, sizeof n));
        AHA_TRY(take(rd, &stop, sizeof stop));
        AHA_REQUIRE(n >= 0, "distributed: a completion of %d tokens", n);
        c->n_tokens = n;
        c->stop = (AhaStopReason)stop;
        c->tokens = aha_malloc((size_t)(n > 0 ? n : 1) * sizeof *c->tokens);
        c->logprobs = aha_malloc((size_t)(n > 0 ? n : 1) * sizeof *c->logprobs);
        if (!c->tokens || !c->logprobs) return -1;
        AHA_TRY(take(rd, c->tokens, (size_t)n * sizeof *c->tokens));
        AHA_TRY(take(rd, c->logprobs, (size_t)n * sizeof *c->logprobs));
        AHA_TRY(take(rd, &len, sizeof len));
        AHA_REQUIRE(len >= 0, "distributed: a completion text of %d bytes", len);
        g->text[s] = aha_malloc((size_t)len + 1);
        AHA_CHECK_ALLOC(g->text[s]);
        AHA_TRY(take(rd, g->text[s], (size_t)len));
        g->text[s][len] = '\0';
        g->text_len[s] = (size_t)len;
    }
    for (int i = 0; i < G * n_comp; i++) {
        AhaRewardValue *v = &g->values[i];
        int32_t status = 0, len = 0;
        AHA_TRY(take(rd, &status, sizeof status));
        AHA_TRY(take(rd, &v->score, sizeof v->score));
        AHA_TRY(take(rd, &len, sizeof len));
        AHA_REQUIRE(len >= 0 && len < AHA_REWARD_REASON_MAX, "distributed: a reward reason of %d bytes", len);
        v->status = (AhaRewardStatus)status;
        AHA_TRY(take(rd, v->reason, (size_t)len));
        v->reason[len] = '\0';
        g->scores[i] = v->status == AHA_REWARD_SCORED ? v->score : NAN;
    }
    return 0;
}

int dist_share_groups(StepBatch *b, int base, int need, int lo, int hi, int n_comp) {
    int n = aha_dist_size(), me = aha_dist_rank();
    if (n == 1) return 0;
    Buf buf = {0};
    if (!duplicate())
        for (int i = base + lo; i < base + hi; i++) put_group(&buf, &b->groups[i], n_comp);
    if (buf.failed) {
        free(buf.p);
        return -1;
    }
    char *all = NULL;
    size_t *lens = aha_malloc((size_t)n * sizeof *lens);
    if (!lens) {
        free(buf.p);
        return -1;
    }
    int rc = aha_dist_allgather_bytes(buf.p, buf.len, &all, lens);
    free(buf.p);
    size_t off = 0;
    for (int r = 0; r < n && rc == 0; r++) {
        if (r / aha_dist_expert_size() != me / aha_dist_expert_size()) { /* not this expert group's */
            Reader rd = {all + off, all + off + lens[r]};
            while (rc == 0 && rd.p < rd.end) rc = take_group(&rd, b, base, need, n_comp);
        }
        off += lens[r];
    }
    free(all);
    free(lens);
    if (rc != 0) return aha_error_prefix("exchanging the step's groups between processes");
    return 0;
}

/* Everyone's rollout figures: tokens add up; the round took as long as its slowest rank. */
int dist_sum_rollout_stats(AhaRolloutStats *st) {
    if (aha_dist_size() == 1) return 0;
    int64_t tokens[2] = {duplicate() ? 0 : st->prompt_tokens, duplicate() ? 0 : st->generated_tokens};
    double seconds[2] = {st->prefill_seconds, st->decode_seconds};
    int steps = st->decode_steps;
    AHA_TRY(aha_dist_allreduce(tokens, 2, AHA_DIST_INT64, AHA_DIST_SUM));
    AHA_TRY(aha_dist_allreduce(seconds, 2, AHA_DIST_DOUBLE, AHA_DIST_MAX));
    AHA_TRY(aha_dist_allreduce(&steps, 1, AHA_DIST_INT, AHA_DIST_MAX));
    st->prompt_tokens = tokens[0];
    st->generated_tokens = tokens[1];
    st->prefill_seconds = seconds[0];
    st->decode_seconds = seconds[1];
    st->decode_steps = steps;
    return 0;
}

/* ---- the update ---- */

int dist_sum_update_stats(UpdateStats *st) {
    if (aha_dist_size() == 1) return 0;
    AhaLossMetrics *lm = &st->loss_metrics;
    double sums[8] = {lm->policy_loss, lm->kl_loss, lm->ratio_sum, lm->kl_sum,
                      st->entropy_sum, st->aux_loss_sum, st->expert_balance_sum, 0};
    int64_t counts[9] = {lm->n_tokens, lm->n_seqs, lm->n_clip_low, lm->n_clip_high, lm->n_dual_clip,
                         st->entropy_n, st->aux_n, st->expert_balance_n, st->train_tokens};
    if (duplicate()) {
        memset(sums, 0, sizeof sums);
        memset(counts, 0, sizeof counts);
    }
    double mins[2] = {lm->ratio_min, -lm->ratio_max};
    double times[2] = {st->t_ref, st->t_train};
    AHA_TRY(aha_dist_allreduce(sums, 8, AHA_DIST_DOUBLE, AHA_DIST_SUM));
    AHA_TRY(aha_dist_allreduce(counts, 9, AHA_DIST_INT64, AHA_DIST_SUM));
    AHA_TRY(aha_dist_allreduce(mins, 2, AHA_DIST_DOUBLE, AHA_DIST_MIN));
    AHA_TRY(aha_dist_allreduce(times, 2, AHA_DIST_DOUBLE, AHA_DIST_MAX));
    lm->policy_loss = sums[0];
    lm->kl_loss = sums[1];
    lm->ratio_sum = sums[2];
    lm->kl_sum = sums[3];
    st->entropy_sum = sums[4];
    st->aux_loss_sum = sums[5];
    st->expert_balance_sum = sums[6];
    lm->n_tokens = (long)counts[0];
    lm->n_seqs = (long)counts[1];
    lm->n_clip_low = (long)counts[2];
    lm->n_clip_high = (long)counts[3];
    lm->n_dual_clip = (long)counts[4];
    st->entropy_n = (long)counts[5];
    st->aux_n = (int)counts[6];
    st->expert_balance_n = (int)counts[7];
    st->train_tokens = (long)counts[8];
    lm->ratio_min = mins[0];
    lm->ratio_max = -mins[1];
    st->t_ref = times[0];
    st->t_train = times[1];
    return 0;
}

/* A duplicate rank's gradients of the dense weights are the first member's: zero them (its
 * experts' gradients, the only ones it computed, stay). */
static int zero_dense_gradients(AhaModel *m) {
    const AhaModelConfig *c = &m->cfg;
    size_t n_ranges = 0, cap = 3 * (size_t)c->num_layers;
    size_t (*ranges)[2] = aha_malloc((cap > 0 ? cap : 1) * sizeof *ranges);
    AHA_CHECK_ALLOC(ranges);
    size_t per = (size_t)c->num_experts * c->moe_intermediate_size * c->hidden_size;
    for (int l = 0; l < c->num_layers; l++) {
        if (!aha_model_layer_is_moe(c, l)) continue;
        const AhaLayerWeights *g = &m->grads.layers[l];
        const float *t[3] = {g->expert_gate, g->expert_up, g->expert_down};
        for (int i = 0; i < 3; i++) {
            ranges[n_ranges][0] = (size_t)(t[i] - m->grads.memory);
            ranges[n_ranges][1] = ranges[n_ranges][0] + per;
            n_ranges++;
        }
    }
    /* the complement of the (sorted) expert ranges */
    for (size_t i = 1; i < n_ranges; i++)
        for (size_t j = i; j > 0 && ranges[j - 1][0] > ranges[j][0]; j--) {
            size_t a = ranges[j][0], b = ranges[j][1];
            ranges[j][0] = ranges[j - 1][0];
            ranges[j][1] = ranges[j - 1][1];
            ranges[j - 1][0] = a;
            ranges[j - 1][1] = b;
        }
    size_t at = 0;
    for (size_t i = 0; i <= n_ranges; i++) {
        size_t end = i < n_ranges ? ranges[i][0] : m->grads.count;
        if (end > at) memset(m->grads.memory + at, 0, (end - at) * sizeof(float));
        if (i < n_ranges) at = ranges[i][1];
    }
    free(ranges);
    return 0;
}

int dist_sum_gradients(AhaModel *m, double *loss, const ParamShard *shard) {
    if (aha_dist_size() == 1) return 0;
    if (duplicate()) {
        *loss = 0;
        AHA_TRY(zero_dense_gradients(m));
    }
    AHA_TRY(aha_dist_allreduce(loss, 1, AHA_DIST_DOUBLE, AHA_DIST_SUM));
    if (shard) return aha_dist_reduce_scatter_float(m->grads.memory, shard->counts);
    return aha_dist_allreduce(m->grads.memory, m->grads.count, AHA_DIST_FLOAT, AHA_DIST_SUM);
}

/* aha_clip_grad_norm over the slices of every rank: the squares summed in double per slice,
 * then over the ranks; each rank scales its own slice. */
int dist_clip_grad_norm(float *grads, const ParamShard *shard, float max_norm, float *norm) {
    double sumsq = 0.0;
    float *g = grads + shard->lo;
    size_t n = shard->hi - shard->lo;
#pragma omp parallel for reduction(+ : sumsq) schedule(static)
    for (size_t i = 0; i < n; i++) sumsq += (double)g[i] * g[i];
    AHA_TRY(aha_dist_allreduce(&sumsq, 1, AHA_DIST_DOUBLE, AHA_DIST_SUM));
    *norm = (float)sqrt(sumsq);
    if (max_norm > 0.0f && *norm > max_norm) {
        float scale = max_norm / (*norm + 1e-6f);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    return 0;
}

int dist_shard_init(ParamShard *s, size_t count) {
    int n = aha_dist_size(), me = aha_dist_rank();
    s->counts = aha_malloc((size_t)n * sizeof *s->counts);
    AHA_CHECK_ALLOC(s->counts);
    for (int r = 0; r < n; r++) s->counts[r] = aha_dist_share_lo(count, r + 1, n) - aha_dist_share_lo(count, r, n);
    s->lo = aha_dist_share_lo(count, me, n);
    s->hi = aha_dist_share_lo(count, me + 1, n);
    return 0;
}

void dist_shard_free(ParamShard *s) {
    free(s->counts);
    memset(s, 0, sizeof *s);
}

/* Keeps this rank's slice of a whole optimizer's moments. */
int dist_shard_adamw(AhaAdamW *opt, const ParamShard *s) {
    size_t n = s->hi - s->lo;
    float *m = aha_malloc((n > 0 ? n : 1) * sizeof *m), *v = aha_malloc((n > 0 ? n : 1) * sizeof *v);
    if (!m || !v) {
        free(m);
        free(v);
        return -1;
    }
    memcpy(m, opt->m + s->lo, n * sizeof *m);
    memcpy(v, opt->v + s->lo, n * sizeof *v);
    free(opt->m);
    free(opt->v);
    opt->m = m;
    opt->v = v;
    opt->count = n;
    return 0;
}

/* The whole moments onto rank 0 (into whole->m, whole->v, allocated there), for a
 * checkpoint; other ranks get whole->m = whole->v = NULL. */
int dist_gather_adamw(const AhaAdamW *slice, AhaAdamW *whole) {
    *whole = *slice;
    whole->m = whole->v = NULL;
    size_t n = (size_t)aha_dist_size();
    size_t *lens = aha_malloc(n * sizeof *lens);
    AHA_CHECK_ALLOC(lens);
    char *m = NULL, *v = NULL;
    int rc = aha_dist_gather_bytes(slice->m, slice->count * sizeof(float), 0, &m, lens);
    if (rc == 0) rc = aha_dist_gather_bytes(slice->v, slice->count * sizeof(float), 0, &v, lens);
    if (rc == 0 && m) {
        size_t total = 0;
        for (size_t r = 0; r < n; r++) total += lens[r];
        whole->count = total / sizeof(float);
    }
    free(lens);
    if (rc != 0) {
        free(m);
        free(v);
        return aha_error_prefix("gathering the AdamW moments for the checkpoint");
    }
    whole->m = (float *)(void *)m;
    whole->v = (float *)(void *)v;
    return 0;
}
