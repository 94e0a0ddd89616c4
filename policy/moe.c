/* The feed-forward half of a layer: a dense SwiGLU MLP, or the MoE block (softmax router,
 * top-k, optional renormalization, experts, optional sigmoid-gated shared expert).
 * The tokens routed to an expert are gathered into contiguous slots so each expert runs as
 * one GEMM; outputs are combined per token in a fixed order, so results are deterministic. */
#include <math.h>
#include <string.h>

#include "model_internal.h"

static void mlp_forward(const AhaKernels *K, float *y, float *gate, float *up, float *h,
                        const float *x, const float *wg, const float *wu, const float *wd,
                        int n, int H, int I) {
    K->matmul_forward(gate, x, wg, NULL, n, H, I);
    K->matmul_forward(up, x, wu, NULL, n, H, I);
    K->swiglu_forward(h, gate, up, (size_t)n * I);
    K->matmul_forward(y, h, wd, NULL, n, I, H);
}

/* dx accumulates; dh, dgate, dup are [n,I] scratch. */
static void mlp_backward(const AhaKernels *K, float *dx, float *gwg, float *gwu, float *gwd,
                         const float *dy, const float *x, const float *gate, const float *up,
                         const float *h, const float *wg, const float *wu, const float *wd,
                         int n, int H, int I, float *dh, float *dgate, float *dup) {
    size_t nI = (size_t)n * I;
    memset(dh, 0, nI * sizeof(float));
    memset(dgate, 0, nI * sizeof(float));
    memset(dup, 0, nI * sizeof(float));
    K->matmul_backward(dh, gwd, NULL, dy, h, wd, n, I, H);
    K->swiglu_backward(dgate, dup, dh, gate, up, nI);
    K->matmul_backward(dx, gwg, NULL, dgate, x, wg, n, H, I);
    K->matmul_backward(dx, gwu, NULL, dup, x, wu, n, H, I);
}

/* softmax over E, then the k largest (ties: lower index first) */
static void route(const AhaModelConfig *c, LayerActs *a, int T) {
    int E = c->num_experts, k = c->num_experts_per_tok;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *p = a->router_probs + (size_t)t * E;
        float max = -INFINITY, sum = 0.0f;
        for (int e = 0; e < E; e++) max = fmaxf(max, p[e]);
        for (int e = 0; e < E; e++) {
            p[e] = expf(p[e] - max);
            sum += p[e];
        }
        for (int e = 0; e < E; e++) p[e] /= sum;
        int *idx = a->topk_idx + (size_t)t * k;
        float *w = a->topk_w + (size_t)t * k;
        float wsum = 0.0f;
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++) taken |= idx[i] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            idx[j] = best;
            w[j] = p[best];
            wsum += p[best];
        }
        if (c->norm_topk_prob)
            for (int j = 0; j < k; j++) w[j] /= wsum;
    }
    /* counting sort of the (token, j) assignments by expert; off[e] serves as expert e's
     * fill cursor (no scratch sized by E), then is shifted back to the start offsets */
    int *off = a->expert_off;
    memset(off, 0, sizeof(int) * (size_t)(E + 1));
    for (size_t s = 0; s < (size_t)T * k; s++) off[a->topk_idx[s] + 1]++;
    for (int e = 0; e < E; e++) off[e + 1] += off[e];
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < k; j++) {
            int slot = off[a->topk_idx[(size_t)t * k + j]]++;
            a->slot_token[slot] = t;
            a->slot_of[(size_t)t * k + j] = slot;
        }
    }
    for (int e = E - 1; e > 0; e--) off[e] = off[e - 1]; /* off[e] had become off[e + 1] */
    off[0] = 0;
}

void ffn_forward(const AhaModel *m, int layer, LayerActs *a, float *y, int T) {
    const AhaModelConfig *c = &m->cfg;
    const AhaKernels *K = m->kernels;
    const AhaLayerWeights *w = &m->params.layers[layer];
    int H = c->hidden_size;
    if (!aha_model_layer_is_moe(c, layer)) {
        mlp_forward(K, y, a->mlp_gate, a->mlp_up, a->mlp_h, a->ln2, w->mlp_gate, w->mlp_up,
                    w->mlp_down, T, H, c->intermediate_size);
        return;
    }
    int E = c->num_experts, k = c->num_experts_per_tok, I = c->moe_intermediate_size;
    K->matmul_forward(a->router_probs, a->ln2, w->router, NULL, T, H, E);
    route(c, a, T);
    int S = T * k;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < S; s++)
        memcpy(a->xg + (size_t)s * H, a->ln2 + (size_t)a->slot_token[s] * H, sizeof(float) * H);
    for (int e = moe_ep_first_expert(E); e < moe_ep_end_expert(E); e++) {
        int lo = a->expert_off[e], n = a->expert_off[e + 1] - lo;
        if (n == 0) continue;
        size_t eI = (size_t)e * I * H;
        mlp_forward(K, a->eo + (size_t)lo * H, a->eg + (size_t)lo * I, a->eu + (size_t)lo * I,
                    a->eh + (size_t)lo * I, a->xg + (size_t)lo * H, w->expert_gate + eI,
                    w->expert_up + eI, w->expert_down + eI, n, H, I);
    }
    moe_ep_share_rows(a->eo, a->expert_off, E, H); /* expert parallel: the others' outputs */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *yt = y + (size_t)t * H;
        memset(yt, 0, sizeof(float) * H);
        for (int j = 0; j < k; j++) {
            float wj = a->topk_w[(size_t)t * k + j];
            const float *o = a->eo + (size_t)a->slot_of[(size_t)t * k + j] * H;
            for (int i = 0; i < H; i++) yt[i] += wj * o[i];
        }
    }
    int Is = c->shared_expert_intermediate_size;
    if (Is > 0) {
        mlp_forward(K, a->so, a->sg, a->su, a->sh, a->ln2, w->shared_gate, w->shared_up,
                    w->shared_down, T, H, Is);
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *x = a->ln2 + (size_t)t * H;
            float z = 0.0f;
            for (int i = 0; i < H; i++) z += x[i] * w->shared_expert_gate[i];
            float g = 1.0f / (1.0f + expf(-z));
            a->sgate[t] = g;
            float *yt = y + (size_t)t * H;
            const float *so = a->so + (size_t)t * H;
            for (int i = 0; i < H; i++) yt[i] += g * so[i];
        }
    }
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

size_t ffn_backward_scratch(const AhaModelConfig *c, int T) {
    size_t n = (size_t)T, H = c->hidden_size, E = c->num_experts, k = c->num_experts_per_tok,
           I = c->moe_intermediate_size, Is = c->shared_expert_intermediate_size,
           Id = c->intermediate_size;
    size_t dense = 3 * n * Id;
    size_t moe = n * k + 2 * n * k * H + 3 * n * k * I + n * E + n * H + 3 * n * Is + n;
    return max_sz(dense, moe);
}

void ffn_backward(const AhaModel *m, int layer, AhaLayerWeights *g, const LayerActs *a,
                  float *dln2, const float *dy, const float *aux_dprob, int T, float *scratch) {
    const AhaModelConfig *c = &m->cfg;
    const AhaKernels *K = m->kernels;
    const AhaLayerWeights *w = &m->params.layers[layer];
    int H = c->hidden_size;
    if (!aha_model_layer_is_moe(c, layer)) {
        size_t nI = (size_t)T * c->intermediate_size;
        mlp_backward(K, dln2, g->mlp_gate, g->mlp_up, g->mlp_down, dy, a->ln2, a->mlp_gate,
                     a->mlp_up, a->mlp_h, w->mlp_gate, w->mlp_up, w->mlp_down, T, H,
                     c->intermediate_size, scratch, scratch + nI, scratch + 2 * nI);
        return;
    }
    int E = c->num_experts, k = c->num_experts_per_tok, I = c->moe_intermediate_size;
    int Is = c->shared_expert_intermediate_size;
    size_t S = (size_t)T * k;
    float *dw = scratch;              /* [T,k] */
    float *deo = dw + S;              /* [S,H] */
    float *dxg = deo + S * H;         /* [S,H] */
    float *deh = dxg + S * H;         /* [S,I] */
    float *deg = deh + S * I;         /* [S,I] */
    float *deu = deg + S * I;         /* [S,I] */
    float *dprob = deu + S * I;       /* [T,E] */
    float *dso = dprob + (size_t)T * E; /* [T,H] */
    float *dsh = dso + (size_t)T * H;   /* [T,Is] x3 */
    float *dsa = dsh + 3 * (size_t)T * Is; /* [T] */

#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *dyt = dy + (size_t)t * H;
        for (int j = 0; j < k; j++) {
            size_t slot = (size_t)a->slot_of[(size_t)t * k + j];
            const float *o = a->eo + slot * H;
            float wj = a->topk_w[(size_t)t * k + j], dot = 0.0f;
            float *d = deo + slot * H;
            for (int i = 0; i < H; i++) {
                dot += dyt[i] * o[i];
                d[i] = wj * dyt[i];
            }
            dw[(size_t)t * k + j] = dot;
        }
    }
    memset(dxg, 0, S * H * sizeof(float));
    for (int e = moe_ep_first_expert(E); e < moe_ep_end_expert(E); e++) {
        int lo = a->expert_off[e], n = a->expert_off[e + 1] - lo;
        if (n == 0) continue;
        size_t eI = (size_t)e * I * H;
        mlp_backward(K, dxg + (size_t)lo * H, g->expert_gate + eI, g->expert_up + eI,
                     g->expert_down + eI, deo + (size_t)lo * H, a->xg + (size_t)lo * H,
                     a->eg + (size_t)lo * I, a->eu + (size_t)lo * I, a->eh + (size_t)lo * I,
                     w->expert_gate + eI, w->expert_up + eI, w->expert_down + eI, n, H, I,
                     deh + (size_t)lo * I, deg + (size_t)lo * I, deu + (size_t)lo * I);
    }
    moe_ep_share_rows(dxg, a->expert_off, E, H); /* expert parallel: the others' input gradients */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *dx = dln2 + (size_t)t * H;
        for (int j = 0; j < k; j++) {
            const float *d = dxg + (size_t)a->slot_of[(size_t)t * k + j] * H;
            for (int i = 0; i < H; i++) dx[i] += d[i];
        }
        /* through the top-k weights (and their renormalization) to the probabilities,
         * plus the load-balancing term, then through the softmax to the router logits */
        const float *p = a->router_probs + (size_t)t * E;
        float *dp = dprob + (size_t)t * E;
        for (int e = 0; e < E; e++) dp[e] = aux_dprob ? aux_dprob[e] : 0.0f;
        const int *idx = a->topk_idx + (size_t)t * k;
        const float *wt = a->topk_w + (size_t)t * k;
        const float *dwt = dw + (size_t)t * k;
        if (c->norm_topk_prob) {
            float sum = 0.0f, dot = 0.0f;
            for (int j = 0; j < k; j++) {
                sum += p[idx[j]];
                dot += dwt[j] * wt[j];
            }
            for (int j = 0; j < k; j++) dp[idx[j]] += (dwt[j] - dot) / sum;
        } else {
            for (int j = 0; j < k; j++) dp[idx[j]] += dwt[j];
        }
        float pdp = 0.0f;
        for (int e = 0; e < E; e++) pdp += p[e] * dp[e];
        for (int e = 0; e < E; e++) dp[e] = p[e] * (dp[e] - pdp);
    }
    K->matmul_backward(dln2, g->router, NULL, dprob, a->ln2, w->router, T, H, E);

    if (Is > 0) {
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *dyt = dy + (size_t)t * H, *so = a->so + (size_t)t * H;
            float sg = a->sgate[t], dot = 0.0f;
            float *d = dso + (size_t)t * H;
            for (int i = 0; i < H; i++) {
                dot += dyt[i] * so[i];
                d[i] = sg * dyt[i];
            }
            dsa[t] = dot * sg * (1.0f - sg);
        }
        size_t nI = (size_t)T * Is;
        mlp_backward(K, dln2, g->shared_gate, g->shared_up, g->shared_down, dso, a->ln2, a->sg,
                     a->su, a->sh, w->shared_gate, w->shared_up, w->shared_down, T, H, Is, dsh,
                     dsh + nI, dsh + 2 * nI);
        for (int t = 0; t < T; t++) {
            const float *x = a->ln2 + (size_t)t * H;
            float *dx = dln2 + (size_t)t * H;
            for (int i = 0; i < H; i++) {
                dx[i] += dsa[t] * w->shared_expert_gate[i];
                g->shared_expert_gate[i] += dsa[t] * x[i];
            }
        }
    }
}
