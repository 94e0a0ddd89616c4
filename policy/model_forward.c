/* The training forward over a packed batch, the activation arena it fills (backend memory),
 * per-token log-probs and entropy, the load-balancing loss and expert load statistics. Every
 * op is a backend op; the host keeps the batch's bookkeeping (tokens, positions, packing,
 * uploaded) and reads back the log-probs and the [L,E] expert statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/kernels.h"
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

void layer_acts_carve(const AhaModelConfig *c, int layer, LayerActs *a, int T, int with_lse,
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
    a->lse = with_lse ? take_f(fb, nf, n * (size_t)c->num_heads) : NULL;
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
static void part_carve(const AhaModelConfig *c, ActsPart *A, int T, int n_seqs, float *fb,
                       size_t *nf, int *ib, size_t *ni) {
    size_t n = (size_t)T, H = c->hidden_size, LE = (size_t)c->num_layers * c->num_experts;
    A->tokens = take_i(ib, ni, n);
    A->pos = take_i(ib, ni, n);
    A->targets = take_i(ib, ni, n);
    A->seq_start = take_i(ib, ni, (size_t)n_seqs + 1);
    for (int l = 0; l < c->num_layers; l++) {
        LayerActs *a = &A->layers[l];
        a->x_in = take_f(fb, nf, n * H);
        a->x_mid = take_f(fb, nf, n * H);
        layer_acts_carve(c, l, a, T, 1, fb, nf, ib, ni);
    }
    A->x_final = take_f(fb, nf, n * H);
    A->lnf = take_f(fb, nf, n * H);
    A->rstdf = take_f(fb, nf, n);
    A->expert_count = take_f(fb, nf, LE);
    A->prob_sum = take_f(fb, nf, LE);
}

int backend_reserve(AhaBackend *be, float **buf, size_t *capacity, size_t count, const char *what) {
    if (count <= *capacity && *buf != NULL) return 0;
    be->free(be, *buf);
    *capacity = 0;
    *buf = be->alloc(be, (count ? count : 1) * sizeof(float));
    if (*buf == NULL) return aha_error_prefix("%s (%zu floats)", what, count);
    *capacity = count;
    return 0;
}

static int ensure_part(AhaBackend *be, const AhaModelConfig *c, ActsPart *A, int T, int n_seqs) {
    size_t nf = 0, ni = 0;
    part_carve(c, A, T, n_seqs, NULL, &nf, NULL, &ni);
    AHA_TRY(backend_reserve(be, &A->floats, &A->float_capacity, nf, "activation arena"));
    /* ints are as wide as floats: the int arena is reserved through the same helper */
    float *ints = (float *)A->ints;
    AHA_TRY(backend_reserve(be, &ints, &A->int_capacity, ni, "activation arena (indices)"));
    A->ints = (int *)ints;
    nf = ni = 0;
    part_carve(c, A, T, n_seqs, A->floats, &nf, A->ints, &ni);
    A->T = T;
    A->n_seqs = n_seqs;
    return 0;
}

void aha_activations_free(AhaBackend *be, AhaActivations *A) {
    if (A == NULL) return;
    for (int i = 0; i < AHA_MAX_PARTS; i++) {
        ActsPart *p = A->part[i];
        if (p == NULL) continue;
        be->free(be, p->floats);
        be->free(be, p->ints);
        be->free(be, p->scratch);
        be->free(be, p->logits);
        be->free(be, p->io);
        be->free(be, p->grad_memory);
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

/* The forward of one part whose tokens, positions and seq_start are uploaded. */
static void forward_part(const AhaModel *m, ActsPart *A) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *B = m->backend;
    int T = A->T, H = c->hidden_size, E = c->num_experts, k = c->num_experts_per_tok;
    int QD = c->num_heads * c->head_dim;
    B->gather_rows(B, A->layers[0].x_in, m->params.embed_tokens, A->tokens, T, H);
    B->zero(B, A->expert_count, sizeof(float) * (size_t)c->num_layers * E);
    B->zero(B, A->prob_sum, sizeof(float) * (size_t)c->num_layers * E);
    for (int l = 0; l < c->num_layers; l++) {
        LayerActs *a = &A->layers[l];
        const AhaLayerWeights *w = &m->params.layers[l];
        attention_qkv_forward(m, l, a, A->pos, T);
        B->attention_forward(B, a->attn, a->lse, a->q, a->k, a->v, &A->seqs, c->num_heads,
                             c->num_kv_heads, c->head_dim);
        B->matmul_forward(B, a->x_mid, a->attn, w->o_proj, NULL, T, QD, H);
        B->add(B, a->x_mid, a->x_in, (size_t)T * H);
        B->rmsnorm_forward(B, a->ln2, a->rstd2, a->x_mid, w->post_norm, T, H, c->rms_norm_eps);
        float *out = l + 1 < c->num_layers ? A->layers[l + 1].x_in : A->x_final;
        ffn_forward(m, l, a, out, T);
        B->add(B, out, a->x_mid, (size_t)T * H);
        if (aha_model_layer_is_moe(c, l))
            B->expert_stats(B, A->expert_count + (size_t)l * E, A->prob_sum + (size_t)l * E,
                            a->topk_idx, a->router_probs, T, E, k);
    }
    B->rmsnorm_forward(B, A->lnf, A->rstdf, A->x_final, m->params.final_norm, T, H, c->rms_norm_eps);
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
    AhaBackend *B = m->backend;
    int first[AHA_MAX_PARTS + 1];
    /* parts are how the CPU shares a batch among its threads; a device takes it whole */
    int n = plan_parts(c, batch, B->host_memory ? aha_kernels_threads() : 1, first);
    int T_all = batch->seq_start[batch->n_seqs];
    int *host = aha_malloc(sizeof(int) * (2 * (size_t)T_all + (size_t)batch->n_seqs + 1));
    if (host == NULL) return aha_error_prefix("forward");
    for (int i = 0; i < n; i++) {
        if (A->part[i] == NULL) {
            A->part[i] = aha_calloc(1, sizeof(ActsPart));
            if (A->part[i] == NULL) return aha_error_prefix("activations");
        }
        ActsPart *p = A->part[i];
        const int *ss = batch->seq_start + first[i];
        int n_seqs = first[i + 1] - first[i], row0 = ss[0], T = ss[n_seqs] - row0;
        if (ensure_part(B, c, p, T, n_seqs) != 0) {
            free(host);
            return -1;
        }
        p->row0 = row0;
        int *pos = host, *starts = host + T, max_len = 0;
        for (int s = 0; s <= n_seqs; s++) starts[s] = ss[s] - row0;
        for (int s = 0; s < n_seqs; s++) {
            if (starts[s + 1] - starts[s] > max_len) max_len = starts[s + 1] - starts[s];
            for (int t = starts[s]; t < starts[s + 1]; t++) pos[t] = t - starts[s];
        }
        if (B->upload(B, p->tokens, batch->tokens + row0, sizeof(int) * (size_t)T) != 0 ||
            B->upload(B, p->pos, pos, sizeof(int) * (size_t)T) != 0 ||
            B->upload(B, p->seq_start, starts, sizeof(int) * ((size_t)n_seqs + 1)) != 0) {
            free(host);
            return aha_error_prefix("forward: batch upload");
        }
        p->seqs = (AhaSeqs){.seq_start = p->seq_start, .n_seqs = n_seqs, .n_rows = T,
                            .max_len = max_len};
    }
    free(host);
    /* Each thread runs a whole part; the kernels inside it run serially (no nesting). One
     * part runs outside any parallel region, so its kernels use every thread (a region
     * nested even in an inactive one would start fresh threads at each kernel). */
    if (n == 1) {
        forward_part(m, A->part[0]);
    } else {
#pragma omp parallel for schedule(static, 1) num_threads(n)
        for (int i = 0; i < n; i++) forward_part(m, A->part[i]);
    }
    AHA_TRY(B->sync(B));
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

/* p->io receives the part's log-probs [T] and entropies [T] */
static void logprobs_part(const AhaModel *m, ActsPart *p, int rows, float temperature,
                          int with_entropy) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *B = m->backend;
    int T = p->T, V = c->vocab_size, H = c->hidden_size;
    for (int r0 = 0; r0 < T; r0 += rows) {
        int n = T - r0 < rows ? T - r0 : rows;
        B->matmul_forward(B, p->logits, p->lnf + (size_t)r0 * H, m->params.lm_head, NULL, n, H, V);
        B->logprob_forward(B, p->io + r0, with_entropy ? p->io + T + r0 : NULL, p->logits,
                           p->targets + r0, n, V, temperature);
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
    AhaBackend *B = m->backend;
    int rows[AHA_MAX_PARTS];
    for (int i = 0; i < n; i++) {
        ActsPart *p = A->part[i];
        rows[i] = head_chunk_rows(c, p->T);
        AHA_TRY(backend_reserve(B, &p->logits, &p->logits_capacity, (size_t)rows[i] * V, "logprobs"));
        AHA_TRY(backend_reserve(B, &p->io, &p->io_capacity, 4 * (size_t)p->T, "logprobs"));
        AHA_TRY(B->upload(B, p->targets, targets + p->row0, sizeof(int) * (size_t)p->T));
    }
    A->temperature = temperature;
    if (n == 1) {
        logprobs_part(m, A->part[0], rows[0], temperature, entropy != NULL);
    } else {
#pragma omp parallel for schedule(static, 1) num_threads(n)
        for (int i = 0; i < n; i++) logprobs_part(m, A->part[i], rows[i], temperature, entropy != NULL);
    }
    for (int i = 0; i < n; i++) {
        const ActsPart *p = A->part[i];
        AHA_TRY(B->download(B, logprob + p->row0, p->io, sizeof(float) * (size_t)p->T));
        if (entropy)
            AHA_TRY(B->download(B, entropy + p->row0, p->io + p->T, sizeof(float) * (size_t)p->T));
    }
    A->have_logprobs = 1;
    return 0;
}

int aha_model_logits(AhaModel *m, float *logits) {
    const AhaActivations *A = m->acts;
    AhaBackend *B = m->backend;
    AHA_REQUIRE(A->T > 0, "logits: call aha_model_forward first");
    size_t V = (size_t)m->cfg.vocab_size;
    for (int i = 0; i < A->n_parts; i++) {
        ActsPart *p = A->part[i];
        AHA_TRY(backend_reserve(B, &p->logits, &p->logits_capacity, (size_t)p->T * V, "logits"));
        B->matmul_forward(B, p->logits, p->lnf, m->params.lm_head, NULL, p->T, m->cfg.hidden_size,
                          (int)V);
        AHA_TRY(B->download(B, logits + (size_t)p->row0 * V, p->logits, sizeof(float) * p->T * V));
    }
    return 0;
}

/* Every MoE layer's top-k assignment counts and router-probability sums over all parts,
 * read back from the backend: count[L,E], prob[L,E] (host, summed in part order). */
static int expert_totals(const AhaModel *m, double *count, double *prob) {
    const AhaActivations *A = m->acts;
    AhaBackend *B = m->backend;
    size_t LE = (size_t)m->cfg.num_layers * m->cfg.num_experts;
    float *buf = aha_malloc(2 * LE * sizeof(float));
    if (buf == NULL) return aha_error_prefix("expert statistics");
    for (size_t j = 0; j < LE; j++) count[j] = prob[j] = 0.0;
    for (int i = 0; i < A->n_parts; i++) {
        if (B->download(B, buf, A->part[i]->expert_count, LE * sizeof(float)) != 0 ||
            B->download(B, buf + LE, A->part[i]->prob_sum, LE * sizeof(float)) != 0) {
            free(buf);
            return aha_error_prefix("expert statistics");
        }
        for (size_t j = 0; j < LE; j++) {
            count[j] += buf[j];
            prob[j] += buf[LE + j];
        }
    }
    free(buf);
    return 0;
}

static int num_moe_layers(const AhaModelConfig *c) {
    int n = 0;
    for (int l = 0; l < c->num_layers; l++) n += aha_model_layer_is_moe(c, l);
    return n;
}

/* Both need count[L,E] and prob[L,E] of expert_totals (host doubles). The sums over layers
 * run in layer order as before. */
static int with_totals(const AhaModel *m, double **count, double **prob) {
    size_t LE = (size_t)m->cfg.num_layers * m->cfg.num_experts;
    *count = aha_malloc(2 * (LE ? LE : 1) * sizeof(double));
    if (*count == NULL) return aha_error_prefix("expert statistics");
    *prob = *count + LE;
    if (expert_totals(m, *count, *prob) != 0) {
        free(*count);
        return -1;
    }
    return 0;
}

float aha_model_aux_loss(const AhaModel *m) {
    const AhaModelConfig *c = &m->cfg;
    const AhaActivations *A = m->acts;
    int n_moe = num_moe_layers(c), E = c->num_experts;
    if (A->T == 0 || n_moe == 0) return 0.0f;
    double *count, *prob;
    if (with_totals(m, &count, &prob) != 0) return NAN; /* the error is recorded */
    double rows = (double)A->T * n_moe, loss = 0.0;
    for (int e = 0; e < E; e++) {
        double f = 0.0, p = 0.0;
        for (int l = 0; l < c->num_layers; l++) {
            f += count[(size_t)l * E + e];
            p += prob[(size_t)l * E + e];
        }
        loss += (f / rows) * (p / rows);
    }
    free(count);
    return (float)(loss * E);
}

/* d aux / d p[l,t,e] = E * f_e / rows^2, the same for every MoE layer and token */
int aux_loss_dprob(const AhaModel *m, float coef, float *dprob) {
    const AhaModelConfig *c = &m->cfg;
    const AhaActivations *A = m->acts;
    int n_moe = num_moe_layers(c), E = c->num_experts;
    double rows = (double)A->T * n_moe;
    double *count, *prob;
    AHA_TRY(with_totals(m, &count, &prob));
    for (int e = 0; e < E; e++) {
        double f = 0.0;
        for (int l = 0; l < c->num_layers; l++) f += count[(size_t)l * E + e];
        dprob[e] = (float)(coef * E * f / (rows * rows));
    }
    free(count);
    return 0;
}

int aha_model_expert_load(const AhaModel *m, int layer, float *load) {
    const AhaModelConfig *c = &m->cfg;
    AHA_REQUIRE(layer >= 0 && layer < c->num_layers, "expert_load: no layer %d", layer);
    AHA_REQUIRE(aha_model_layer_is_moe(c, layer), "expert_load: layer %d is a dense layer", layer);
    AHA_REQUIRE(m->acts->T > 0, "expert_load: call aha_model_forward first");
    double total = (double)m->acts->T * c->num_experts_per_tok;
    double *count, *prob;
    AHA_TRY(with_totals(m, &count, &prob));
    for (int e = 0; e < c->num_experts; e++)
        load[e] = (float)(count[(size_t)layer * c->num_experts + e] / total);
    free(count);
    return 0;
}
