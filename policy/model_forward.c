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

/* Lays out (or, with NULL bases, counts) the whole training arena. */
static void acts_carve(const AhaModelConfig *c, AhaActivations *A, int T, int n_seqs, size_t P,
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

static int ensure_acts(AhaModel *m, int T, int n_seqs, size_t P) {
    AhaActivations *A = m->acts;
    size_t nf = 0, ni = 0;
    acts_carve(&m->cfg, A, T, n_seqs, P, NULL, &nf, NULL, &ni);
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
    acts_carve(&m->cfg, A, T, n_seqs, P, A->floats, &nf, A->ints, &ni);
    A->T = T;
    A->n_seqs = n_seqs;
    A->P = P;
    A->have_logprobs = 0;
    return 0;
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

int aha_model_forward(AhaModel *m, const AhaBatch *batch) {
    const AhaModelConfig *c = &m->cfg;
    const AhaKernels *K = m->kernels;
    AHA_TRY(check_batch(c, batch));
    int T = batch->seq_start[batch->n_seqs], n_seqs = batch->n_seqs;
    int H = c->hidden_size, E = c->num_experts, k = c->num_experts_per_tok;
    int QD = c->num_heads * c->head_dim;
    AHA_TRY(ensure_acts(m, T, n_seqs, aha_attention_probs_offset(batch->seq_start, n_seqs, c->num_heads)));
    AhaActivations *A = m->acts;
    memcpy(A->tokens, batch->tokens, sizeof(int) * (size_t)T);
    memcpy(A->seq_start, batch->seq_start, sizeof(int) * (size_t)(n_seqs + 1));
    for (int s = 0; s < n_seqs; s++)
        for (int t = batch->seq_start[s]; t < batch->seq_start[s + 1]; t++)
            A->pos[t] = t - batch->seq_start[s];
    float *x0 = A->layers[0].x_in;
    for (int t = 0; t < T; t++)
        memcpy(x0 + (size_t)t * H, m->params.embed_tokens + (size_t)A->tokens[t] * H, sizeof(float) * H);
    memset(A->expert_count, 0, sizeof(float) * (size_t)c->num_layers * E);
    memset(A->prob_sum, 0, sizeof(float) * (size_t)c->num_layers * E);
    for (int l = 0; l < c->num_layers; l++) {
        LayerActs *a = &A->layers[l];
        const AhaLayerWeights *w = &m->params.layers[l];
        attention_qkv_forward(m, l, a, A->pos, T);
        K->attention_forward(a->attn, a->probs, a->q, a->k, a->v, A->seq_start, n_seqs,
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
    return 0;
}

/* Rows per chunk of the LM head: about 4M logits, at least 16 rows. */
static int head_chunk_rows(const AhaModelConfig *c, int T) {
    int rows = (int)((size_t)(1 << 22) / (size_t)c->vocab_size);
    if (rows < 16) rows = 16;
    return rows < T ? rows : T;
}

int aha_model_logprobs(AhaModel *m, const int *targets, float temperature, float *logprob,
                       float *entropy) {
    const AhaModelConfig *c = &m->cfg;
    AhaActivations *A = m->acts;
    AHA_REQUIRE(A->T > 0, "logprobs: call aha_model_forward first");
    AHA_REQUIRE(temperature > 0.0f, "logprobs: temperature must be positive, got %g",
                (double)temperature);
    int T = A->T, V = c->vocab_size, H = c->hidden_size;
    for (int t = 0; t < T; t++)
        AHA_REQUIRE(targets[t] >= -1 && targets[t] < V,
                    "logprobs: target %d at position %d is outside the vocabulary [0, %d) and not -1",
                    targets[t], t, V);
    int rows = head_chunk_rows(c, T);
    float *logits = aha_malloc((size_t)rows * V * sizeof(float));
    if (logits == NULL) return aha_error_prefix("logprobs");
    memcpy(A->targets, targets, sizeof(int) * (size_t)T);
    A->temperature = temperature;
    for (int r0 = 0; r0 < T; r0 += rows) {
        int n = T - r0 < rows ? T - r0 : rows;
        m->kernels->matmul_forward(logits, A->lnf + (size_t)r0 * H, m->params.lm_head, NULL, n, H, V);
        m->kernels->logprob_forward(logprob + r0, entropy ? entropy + r0 : NULL, logits,
                                    targets + r0, n, V, temperature);
    }
    free(logits);
    A->have_logprobs = 1;
    return 0;
}

int aha_model_logits(AhaModel *m, float *logits) {
    AHA_REQUIRE(m->acts->T > 0, "logits: call aha_model_forward first");
    m->kernels->matmul_forward(logits, m->acts->lnf, m->params.lm_head, NULL, m->acts->T,
                               m->cfg.hidden_size, m->cfg.vocab_size);
    return 0;
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
            f += A->expert_count[(size_t)l * E + e];
            p += A->prob_sum[(size_t)l * E + e];
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
        for (int l = 0; l < c->num_layers; l++) f += A->expert_count[(size_t)l * E + e];
        dprob[e] = (float)(coef * E * f / (rows * rows));
    }
}

int aha_model_expert_load(const AhaModel *m, int layer, float *load) {
    const AhaModelConfig *c = &m->cfg;
    AHA_REQUIRE(layer >= 0 && layer < c->num_layers, "expert_load: no layer %d", layer);
    AHA_REQUIRE(aha_model_layer_is_moe(c, layer), "expert_load: layer %d is a dense layer", layer);
    AHA_REQUIRE(m->acts->T > 0, "expert_load: call aha_model_forward first");
    float total = (float)m->acts->T * c->num_experts_per_tok;
    for (int e = 0; e < c->num_experts; e++)
        load[e] = m->acts->expert_count[(size_t)layer * c->num_experts + e] / total;
    return 0;
}
