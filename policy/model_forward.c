/* The training forward over a packed batch, the activation arena it fills, per-token
 * log-probs and entropy, the load-balancing loss and expert load statistics. */
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "model_internal.h"

static float *take_f(float *base, size_t *n, size_t count) {
    float *p = base ? base + *n : NULL;
    *n += count;
    return p;
}

static int *take_i(int *base, size_t *n, size_t count) {
    int *p = base ? base + *n : NULL;
    *n += count;
    return p;
}

void layer_acts_carve(const AhaModelConfig *c, int layer, LayerActs *a, int T, size_t P,
                      float *fb, size_t *nf, int *ib, size_t *ni) {
    size_t n = (size_t)T, H = c->hidden_size, QD = (size_t)c->num_heads * c->head_dim,
           KD = (size_t)c->num_kv_heads * c->head_dim;
    a->ln1 = take_f(fb, nf, n * H);
    a->rstd1 = take_f(fb, nf, n);
    a->q_pre = a->k_pre = a->q_rstd = a->k_rstd = NULL;
    if (c->qk_norm != AHA_QK_NORM_NONE) {
        int per_head = c->qk_norm == AHA_QK_NORM_PER_HEAD;
        a->q_pre = take_f(fb, nf, n * QD);
        a->k_pre = take_f(fb, nf, n * KD);
        a->q_rstd = take_f(fb, nf, n * (per_head ? (size_t)c->num_heads : 1));
        a->k_rstd = take_f(fb, nf, n * (per_head ? (size_t)c->num_kv_heads : 1));
    }
    a->q = take_f(fb, nf, n * QD);
    a->k = take_f(fb, nf, n * KD);
    a->v = take_f(fb, nf, n * KD);
    a->probs = P ? take_f(fb, nf, P) : NULL;
    a->attn = take_f(fb, nf, n * QD);
    a->ln2 = take_f(fb, nf, n * H);
    a->rstd2 = take_f(fb, nf, n);
    a->mlp_gate = a->mlp_up = a->mlp_h = NULL;
    a->router_probs = a->topk_w = a->xg = a->eg = a->eu = a->eh = a->eo = NULL;
    a->sg = a->su = a->sh = a->so = a->sgate = NULL;
    a->topk_idx = a->expert_off = a->slot_token = a->slot_of = NULL;
    if (!aha_model_layer_is_moe(c, layer)) {
        size_t Id = c->intermediate_size;
        a->mlp_gate = take_f(fb, nf, n * Id);
        a->mlp_up = take_f(fb, nf, n * Id);
        a->mlp_h = take_f(fb, nf, n * Id);
        return;
    }
    size_t E = c->num_experts, k = c->num_experts_per_tok, I = c->moe_intermediate_size,
           Is = c->shared_expert_intermediate_size, S = n * k;
    a->router_probs = take_f(fb, nf, n * E);
    a->topk_w = take_f(fb, nf, S);
    a->topk_idx = take_i(ib, ni, S);
    a->expert_off = take_i(ib, ni, E + 1);
    a->slot_token = take_i(ib, ni, S);
    a->slot_of = take_i(ib, ni, S);
    a->xg = take_f(fb, nf, S * H);
    a->eg = take_f(fb, nf, S * I);
    a->eu = take_f(fb, nf, S * I);
    a->eh = take_f(fb, nf, S * I);
    a->eo = take_f(fb, nf, S * H);
    if (Is > 0) {
        a->sg = take_f(fb, nf, n * Is);
        a->su = take_f(fb, nf, n * Is);
        a->sh = take_f(fb, nf, n * Is);
        a->so = take_f(fb, nf, n * H);
        a->sgate = take_f(fb, nf, n);
    }
}

/* Lays out (or, with NULL bases, counts) one part's training arena. */
static void part_carve(const AhaModelConfig *c, ActsPart *A, int T, int n_seqs, size_t P,
                       float *fb, size_t *nf, int *ib, size_t *ni) {
    size_t n = (size_t)T, H = c->hidden_size, LE = (size_t)c->num_layers * c->num_experts;
    A->tokens = take_i(ib, ni, n);
    A->pos = take_i(ib, ni, n);
    A->targets = take_i(ib, ni, n);
    A->seq_start = take_i(ib, ni, (size_t)n_seqs + 1);
    for (int l = 0; l < c->num_layers; l++) {
        LayerActs *a = &A->layers[l];
        a->x_in = take_f(fb, nf, n * H);
        a->x_mid = take_f(fb, nf, n * H);
        layer_acts_carve(c, l, a, T, P, fb, nf, ib, ni);
    }
    A->x_final = take_f(fb, nf, n * H);
    A->lnf = take_f(fb, nf, n * H);
    A->rstdf = take_f(fb, nf, n);
    A->expert_count = take_f(fb, nf, LE);
    A->prob_sum = take_f(fb, nf, LE);
}

static int ensure_part(const AhaModelConfig *c, ActsPart *A, int T, int n_seqs, size_t P) {
    size_t nf = 0, ni = 0;
    part_carve(c, A, T, n_seqs, P, NULL, &nf, NULL, &ni);
    if (nf > A->float_capacity) {
        free(A->floats);
        A->float_capacity = 0;
        A->floats = aha_malloc(nf * sizeof(float));
        if (A->floats == NULL) return aha_error_prefix("activation arena (%d tokens)", T);
        A->float_capacity = nf;
    }
    if (ni > A->int_capacity) {
        free(A->ints);
        A->int_capacity = 0;
        A->ints = aha_malloc(ni * sizeof(int));
        if (A->ints == NULL) return aha_error_prefix("activation arena (%d tokens)", T);
        A->int_capacity = ni;
    }
    nf = ni = 0;
    part_carve(c, A, T, n_seqs, P, A->floats, &nf, A->ints, &ni);
    A->T = T;
    A->n_seqs = n_seqs;
    A->P = P;
    return 0;
}

void aha_activations_free(AhaActivations *A) {
    if (A == NULL) return;
    for (int i = 0; i < AHA_MAX_PARTS; i++) {
        ActsPart *p = A->part[i];
        if (p == NULL) continue;
        free(p->floats);
        free(p->ints);
        free(p->scratch);
        free(p->grad_memory);
        free(p);
    }
    free(A);
}

static int check_batch(const AhaModelConfig *c, const AhaBatch *b) {
    AHA_REQUIRE(b->n_seqs > 0 && b->seq_start != NULL && b->tokens != NULL,
                "batch: expected at least one sequence");
    AHA_REQUIRE(b->seq_start[0] == 0, "batch: seq_start[0] must be 0, got %d", b->seq_start[0]);
    for (int s = 0; s < b->n_seqs; s++)
        AHA_REQUIRE(b->seq_start[s + 1] >= b->seq_start[s],
                    "batch: seq_start must be nondecreasing (seq_start[%d] = %d < seq_start[%d] = %d)",
                    s + 1, b->seq_start[s + 1], s, b->seq_start[s]);
    int T = b->seq_start[b->n_seqs];
    AHA_REQUIRE(T > 0, "batch: no tokens");
    for (int t = 0; t < T; t++)
        AHA_REQUIRE(b->tokens[t] >= 0 && b->tokens[t] < c->vocab_size,
                    "batch: token %d at position %d is outside the vocabulary [0, %d)",
                    b->tokens[t], t, c->vocab_size);
    return 0;
}

static void add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* The forward of one part whose tokens, positions and seq_start are filled in. */
static void forward_part(const AhaModel *m, ActsPart *A) {
    const AhaModelConfig *c = &m->cfg;
    const AhaKernels *K = m->kernels;
    int T = A->T, H = c->hidden_size, E = c->num_experts, k = c->num_experts_per_tok;
    int QD = c->num_heads * c->head_dim;
    float *x0 = A->layers[0].x_in;
    for (int t = 0; t < T; t++)
        memcpy(x0 + (size_t)t * H, m->params.embed_tokens + (size_t)A->tokens[t] * H, sizeof(float) * H);
    memset(A->expert_count, 0, sizeof(float) * (size_t)c->num_layers * E);
    memset(A->prob_sum, 0, sizeof(float) * (size_t)c->num_layers * E);
    for (int l = 0; l < c->num_layers; l++) {
        LayerActs *a = &A->layers[l];
        const AhaLayerWeights *w = &m->params.layers[l];
        attention_qkv_forward(m, l, a, A->pos, T);
        K->attention_forward(a->attn, a->probs, a->q, a->k, a->v, A->seq_start, A->n_seqs,
                             c->num_heads, c->num_kv_heads, c->head_dim);
        K->matmul_forward(a->x_mid, a->attn, w->o_proj, NULL, T, QD, H);
        add_into(a->x_mid, a->x_in, (size_t)T * H);
        K->rmsnorm_forward(a->ln2, a->rstd2, a->x_mid, w->post_norm, T, H, c->rms_norm_eps);
        float *out = l + 1 < c->num_layers ? A->layers[l + 1].x_in : A->x_final;
        ffn_forward(m, l, a, out, T);
        add_into(out, a->x_mid, (size_t)T * H);
        if (aha_model_layer_is_moe(c, l)) {
            float *count = A->expert_count + (size_t)l * E, *psum = A->prob_sum + (size_t)l * E;
            for (size_t s = 0; s < (size_t)T * k; s++) count[a->topk_idx[s]] += 1.0f;
            for (int t = 0; t < T; t++)
                for (int e = 0; e < E; e++) psum[e] += a->router_probs[(size_t)t * E + e];
        }
    }
    K->rmsnorm_forward(A->lnf, A->rstdf, A->x_final, m->params.final_norm, T, H, c->rms_norm_eps);
}

/* Forward FLOPs of one sequence of `len` tokens, roughly: the products a token passes
 * through plus the attention over its causal context. Only used to balance the parts. */
static double sequence_cost(const AhaModelConfig *c, int len) {
    double H = c->hidden_size, QD = (double)c->num_heads * c->head_dim,
           KD = (double)c->num_kv_heads * c->head_dim, per_token = H * c->vocab_size, per_pair = 0;
    for (int l = 0; l < c->num_layers; l++) {
        per_token += 2 * H * QD + 2 * H * KD;
        if (aha_model_layer_is_moe(c, l))
            per_token += H * c->num_experts +
                         3.0 * H * c->num_experts_per_tok * c->moe_intermediate_size +
                         3.0 * H * c->shared_expert_intermediate_size;
        else
            per_token += 3.0 * H * c->intermediate_size;
        per_pair += 2 * QD;
    }
    return per_token * len + per_pair * len * (len + 1) / 2.0;
}

/* Below this many rows per part, splitting the batch costs more than it saves. */
enum { MIN_PART_ROWS = 64 };

/* Splits the batch into up to `threads` parts of contiguous sequences with about equal
 * cost; first[i] is part i's first sequence, first[n] = n_seqs. Returns n. */
static int plan_parts(const AhaModelConfig *c, const AhaBatch *b, int threads, int *first) {
    int T = b->seq_start[b->n_seqs], n = threads;
    if (n > AHA_MAX_PARTS) n = AHA_MAX_PARTS;
    if (n > b->n_seqs) n = b->n_seqs;
    if (n > T / MIN_PART_ROWS) n = T / MIN_PART_ROWS;
    if (n < 1) n = 1;
    double total = 0.0;
    for (int s = 0; s < b->n_seqs; s++)
        total += sequence_cost(c, b->seq_start[s + 1] - b->seq_start[s]);
    first[0] = 0;
    double cum = 0.0;
    int s = 0;
    for (int i = 1; i < n; i++) {
        /* at least one sequence per part, and enough left for the parts after it */
        while (s < b->n_seqs - (n - i) && (s < first[i - 1] + 1 || cum < total * i / n))
            cum += sequence_cost(c, b->seq_start[s + 1] - b->seq_start[s]), s++;
        first[i] = s;
    }
    /* drop boundaries that would leave a part without rows (empty sequences) */
    int kept = 1;
    for (int i = 1; i < n; i++) {
        int row = b->seq_start[first[i]];
        if (row > b->seq_start[first[kept - 1]] && row < T) first[kept++] = first[i];
    }
    first[kept] = b->n_seqs;
    return kept;
}

int aha_model_forward(AhaModel *m, const AhaBatch *batch) {
    const AhaModelConfig *c = &m->cfg;
    AHA_TRY(check_batch(c, batch));
    AhaActivations *A = m->acts;
    A->T = A->n_seqs = A->n_parts = 0;
    A->have_logprobs = 0;
    int first[AHA_MAX_PARTS + 1];
    int n = plan_parts(c, batch, aha_kernels_threads(), first);
    for (int i = 0; i < n; i++) {
        if (A->part[i] == NULL) {
            A->part[i] = aha_calloc(1, sizeof(ActsPart));
            if (A->part[i] == NULL) return aha_error_prefix("activations");
        }
        ActsPart *p = A->part[i];
        const int *ss = batch->seq_start + first[i];
        int n_seqs = first[i + 1] - first[i], row0 = ss[0], T = ss[n_seqs] - row0;
        size_t P = 0;
        for (int s = 0; s < n_seqs; s++) {
            size_t len = (size_t)(ss[s + 1] - ss[s]);
            P += (size_t)c->num_heads * len * (len + 1) / 2;
        }
        AHA_TRY(ensure_part(c, p, T, n_seqs, P));
        p->row0 = row0;
        memcpy(p->tokens, batch->tokens + row0, sizeof(int) * (size_t)T);
        for (int s = 0; s <= n_seqs; s++) p->seq_start[s] = ss[s] - row0;
        for (int s = 0; s < n_seqs; s++)
            for (int t = p->seq_start[s]; t < p->seq_start[s + 1]; t++)
                p->pos[t] = t - p->seq_start[s];
    }
    /* Each thread runs a whole part; the kernels inside it run serially (no nesting). One
     * part runs outside any parallel region, so its kernels use every thread (a region
     * nested even in an inactive one would start fresh threads at each kernel). */
    if (n == 1) {
        forward_part(m, A->part[0]);
    } else {
#pragma omp parallel for schedule(static, 1) num_threads(n)
        for (int i = 0; i < n; i++) forward_part(m, A->part[i]);
    }
    A->T = batch->seq_start[batch->n_seqs];
    A->n_seqs = batch->n_seqs;
    A->n_parts = n;
    return 0;
}

/* Rows per chunk of the LM head: about 4M logits, at least 16 rows. */
static int head_chunk_rows(const AhaModelConfig *c, int T) {
    int rows = (int)((size_t)(1 << 22) / (size_t)c->vocab_size);
    if (rows < 16) rows = 16;
    return rows < T ? rows : T;
}

static void logprobs_part(const AhaModel *m, ActsPart *p, float *logits, int rows,
                          const int *targets, float temperature, float *logprob, float *entropy) {
    const AhaModelConfig *c = &m->cfg;
    int T = p->T, V = c->vocab_size, H = c->hidden_size;
    memcpy(p->targets, targets, sizeof(int) * (size_t)T);
    for (int r0 = 0; r0 < T; r0 += rows) {
        int n = T - r0 < rows ? T - r0 : rows;
        m->kernels->matmul_forward(logits, p->lnf + (size_t)r0 * H, m->params.lm_head, NULL, n, H, V);
        m->kernels->logprob_forward(logprob + r0, entropy ? entropy + r0 : NULL, logits,
                                    targets + r0, n, V, temperature);
    }
}

int aha_model_logprobs(AhaModel *m, const int *targets, float temperature, float *logprob,
                       float *entropy) {
    const AhaModelConfig *c = &m->cfg;
    AhaActivations *A = m->acts;
    AHA_REQUIRE(A->T > 0, "logprobs: call aha_model_forward first");
    AHA_REQUIRE(temperature > 0.0f, "logprobs: temperature must be positive, got %g",
                (double)temperature);
    int T = A->T, V = c->vocab_size, n = A->n_parts;
    for (int t = 0; t < T; t++)
        AHA_REQUIRE(targets[t] >= -1 && targets[t] < V,
                    "logprobs: target %d at position %d is outside the vocabulary [0, %d) and not -1",
                    targets[t], t, V);
    int rows[AHA_MAX_PARTS];
    size_t offset[AHA_MAX_PARTS + 1];
    offset[0] = 0;
    for (int i = 0; i < n; i++) {
        rows[i] = head_chunk_rows(c, A->part[i]->T);
        offset[i + 1] = offset[i] + (size_t)rows[i] * V;
    }
    float *logits = aha_malloc(offset[n] * sizeof(float)); /* one chunk per part */
    if (logits == NULL) return aha_error_prefix("logprobs");
    A->temperature = temperature;
    if (n == 1) {
        logprobs_part(m, A->part[0], logits, rows[0], targets, temperature, logprob, entropy);
    } else {
#pragma omp parallel for schedule(static, 1) num_threads(n)
        for (int i = 0; i < n; i++) {
            int r0 = A->part[i]->row0;
            logprobs_part(m, A->part[i], logits + offset[i], rows[i], targets + r0, temperature,
                          logprob + r0, entropy ? entropy + r0 : NULL);
        }
    }
    free(logits);
    A->have_logprobs = 1;
    return 0;
}

int aha_model_logits(AhaModel *m, float *logits) {
    const AhaActivations *A = m->acts;
    AHA_REQUIRE(A->T > 0, "logits: call aha_model_forward first");
    for (int i = 0; i < A->n_parts; i++) {
        const ActsPart *p = A->part[i];
        m->kernels->matmul_forward(logits + (size_t)p->row0 * m->cfg.vocab_size, p->lnf,
                                   m->params.lm_head, NULL, p->T, m->cfg.hidden_size,
                                   m->cfg.vocab_size);
    }
    return 0;
}

/* Expert e's top-k assignments and router-probability sum in layer l, over all parts. */
static void expert_stats(const AhaActivations *A, int E, int l, int e, double *count,
                         double *prob) {
    *count = *prob = 0.0;
    for (int i = 0; i < A->n_parts; i++) {
        *count += A->part[i]->expert_count[(size_t)l * E + e];
        *prob += A->part[i]->prob_sum[(size_t)l * E + e];
    }
}

static int num_moe_layers(const AhaModelConfig *c) {
    int n = 0;
    for (int l = 0; l < c->num_layers; l++) n += aha_model_layer_is_moe(c, l);
    return n;
}

float aha_model_aux_loss(const AhaModel *m) {
    const AhaModelConfig *c = &m->cfg;
    const AhaActivations *A = m->acts;
    int n_moe = num_moe_layers(c), E = c->num_experts;
    if (A->T == 0 || n_moe == 0) return 0.0f;
    double rows = (double)A->T * n_moe, loss = 0.0;
    for (int e = 0; e < E; e++) {
        double f = 0.0, p = 0.0;
        for (int l = 0; l < c->num_layers; l++) {
            double count, prob;
            expert_stats(A, E, l, e, &count, &prob);
            f += count;
            p += prob;
        }
        loss += (f / rows) * (p / rows);
    }
    return (float)(loss * E);
}

/* d aux / d p[l,t,e] = E * f_e / rows^2, the same for every MoE layer and token */
void aux_loss_dprob(const AhaModel *m, float coef, float *dprob) {
    const AhaModelConfig *c = &m->cfg;
    const AhaActivations *A = m->acts;
    int n_moe = num_moe_layers(c), E = c->num_experts;
    double rows = (double)A->T * n_moe;
    for (int e = 0; e < E; e++) {
        double f = 0.0;
        for (int l = 0; l < c->num_layers; l++) {
            double count, prob;
            expert_stats(A, E, l, e, &count, &prob);
            f += count;
        }
        dprob[e] = (float)(coef * E * f / (rows * rows));
    }
}

int aha_model_expert_load(const AhaModel *m, int layer, float *load) {
    const AhaModelConfig *c = &m->cfg;
    AHA_REQUIRE(layer >= 0 && layer < c->num_layers, "expert_load: no layer %d", layer);
    AHA_REQUIRE(aha_model_layer_is_moe(c, layer), "expert_load: layer %d is a dense layer", layer);
    AHA_REQUIRE(m->acts->T > 0, "expert_load: call aha_model_forward first");
    double total = (double)m->acts->T * c->num_experts_per_tok;
    for (int e = 0; e < c->num_experts; e++) {
        double count, prob;
        expert_stats(m->acts, c->num_experts, layer, e, &count, &prob);
        load[e] = (float)(count / total);
    }
    return 0;
}
