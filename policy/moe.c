/* The feed-forward half of a layer: a dense SwiGLU MLP, or the MoE block (softmax router,
 * top-k, optional renormalization, experts, optional sigmoid-gated shared expert), all as
 * backend ops. The tokens routed to an expert are gathered into contiguous slots
 * (moe_permute) so each expert runs as one GEMM of the grouped product; outputs are combined
 * per token in a fixed order, so results are deterministic. */
#include "model_internal.h"

AhaRouting model_routing(const AhaModelConfig *c) {
    return (AhaRouting){.num_experts = c->num_experts, .top_k = c->num_experts_per_tok,
                        .score = AHA_ROUTER_SOFTMAX, .renormalize = c->norm_topk_prob,
                        .scale = 1.0f};
}

static void mlp_forward(AhaBackend *B, float *y, float *gate, float *up, float *h,
                        const float *x, const float *wg, const float *wu, const float *wd,
                        int n, int H, int I) {
    B->matmul_forward(B, gate, x, wg, NULL, n, H, I);
    B->matmul_forward(B, up, x, wu, NULL, n, H, I);
    B->swiglu_forward(B, h, gate, up, (size_t)n * I);
    B->matmul_forward(B, y, h, wd, NULL, n, I, H);
}

/* dx accumulates; dh, dgate, dup are [n,I] scratch. */
static void mlp_backward(AhaBackend *B, float *dx, float *gwg, float *gwu, float *gwd,
                         const float *dy, const float *x, const float *gate, const float *up,
                         const float *h, const float *wg, const float *wu, const float *wd,
                         int n, int H, int I, float *dh, float *dgate, float *dup) {
    size_t nI = (size_t)n * I;
    B->zero(B, dh, nI * sizeof(float));
    B->zero(B, dgate, nI * sizeof(float));
    B->zero(B, dup, nI * sizeof(float));
    B->matmul_backward(B, dh, gwd, NULL, dy, h, wd, n, I, H);
    B->swiglu_backward(B, dgate, dup, dh, gate, up, nI);
    B->matmul_backward(B, dx, gwg, NULL, dgate, x, wg, n, H, I);
    B->matmul_backward(B, dx, gwu, NULL, dup, x, wu, n, H, I);
}

/* The experts this process runs, [e0, e1) (all of them without expert parallel), and their
 * slots [s0, s1); the offsets are read on the host only under expert parallel. */
typedef struct {
    int e0, e1, s0, s1;
} ExpertRange;

static ExpertRange expert_range(const LayerActs *a, int E, int S) {
    ExpertRange r = {moe_ep_first_expert(E), moe_ep_end_expert(E), 0, S};
    if (r.e0 > 0 || r.e1 < E) {
        r.s0 = a->expert_off[r.e0];
        r.s1 = a->expert_off[r.e1];
    }
    return r;
}

void ffn_forward(const AhaModel *m, int layer, LayerActs *a, float *y, int T) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *B = m->backend;
    const AhaLayerWeights *w = &m->params.layers[layer];
    int H = c->hidden_size;
    if (!aha_model_layer_is_moe(c, layer)) {
        mlp_forward(B, y, a->mlp_gate, a->mlp_up, a->mlp_h, a->ln2, w->mlp_gate, w->mlp_up,
                    w->mlp_down, T, H, c->intermediate_size);
        return;
    }
    int E = c->num_experts, k = c->num_experts_per_tok, I = c->moe_intermediate_size, S = T * k;
    AhaRouting routing = model_routing(c);
    B->matmul_forward(B, a->router_probs, a->ln2, w->router, NULL, T, H, E);
    B->router_topk(B, a->router_probs, a->topk_w, a->topk_idx, T, &routing);
    B->moe_permute(B, a->expert_off, a->slot_token, a->slot_of, a->topk_idx, T, E, k);
    B->gather_rows(B, a->xg, a->ln2, a->slot_token, S, H);
    /* this process's experts (all of them without expert parallel) */
    ExpertRange r = expert_range(a, E, S);
    const int *off = a->expert_off + r.e0;
    size_t eIH = (size_t)r.e0 * I * H;
    int ne = r.e1 - r.e0;
    B->grouped_matmul_forward(B, a->eg, a->xg, w->expert_gate + eIH, off, S, ne, H, I);
    B->grouped_matmul_forward(B, a->eu, a->xg, w->expert_up + eIH, off, S, ne, H, I);
    B->swiglu_forward(B, a->eh + (size_t)r.s0 * I, a->eg + (size_t)r.s0 * I, a->eu + (size_t)r.s0 * I,
                      (size_t)(r.s1 - r.s0) * I);
    B->grouped_matmul_forward(B, a->eo, a->eh, w->expert_down + eIH, off, S, ne, I, H);
    moe_ep_share_rows(a->eo, a->expert_off, E, H); /* expert parallel: the others' outputs */
    B->moe_combine(B, y, a->eo, a->topk_w, a->slot_of, T, k, H);
    int Is = c->shared_expert_intermediate_size;
    if (Is > 0) {
        mlp_forward(B, a->so, a->sg, a->su, a->sh, a->ln2, w->shared_gate, w->shared_up,
                    w->shared_down, T, H, Is);
        B->shared_gate_forward(B, y, a->sgate, a->ln2, w->shared_expert_gate, a->so, T, H);
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
    AhaBackend *B = m->backend;
    const AhaLayerWeights *w = &m->params.layers[layer];
    int H = c->hidden_size;
    if (!aha_model_layer_is_moe(c, layer)) {
        size_t nI = (size_t)T * c->intermediate_size;
        mlp_backward(B, dln2, g->mlp_gate, g->mlp_up, g->mlp_down, dy, a->ln2, a->mlp_gate,
                     a->mlp_up, a->mlp_h, w->mlp_gate, w->mlp_up, w->mlp_down, T, H,
                     c->intermediate_size, scratch, scratch + nI, scratch + 2 * nI);
        return;
    }
    int E = c->num_experts, k = c->num_experts_per_tok, I = c->moe_intermediate_size;
    int Is = c->shared_expert_intermediate_size, S = T * k;
    size_t nS = (size_t)S;
    AhaRouting routing = model_routing(c);
    float *dw = scratch;                /* [T,k] */
    float *deo = dw + nS;               /* [S,H] */
    float *dxg = deo + nS * H;          /* [S,H] */
    float *deh = dxg + nS * H;          /* [S,I] */
    float *deg = deh + nS * I;          /* [S,I] */
    float *deu = deg + nS * I;          /* [S,I] */
    float *dprob = deu + nS * I;        /* [T,E] */
    float *dso = dprob + (size_t)T * E; /* [T,H] */
    float *dsh = dso + (size_t)T * H;   /* [T,Is] x3 */
    float *dsa = dsh + 3 * (size_t)T * Is; /* [T] */

    B->moe_combine_backward(B, deo, dw, dy, a->eo, a->topk_w, a->slot_of, T, k, H);
    /* the experts' backward, each expert's rows as one product (mlp_backward per expert) */
    B->zero(B, dxg, nS * H * sizeof(float));
    B->zero(B, deh, nS * I * sizeof(float));
    B->zero(B, deg, nS * I * sizeof(float));
    B->zero(B, deu, nS * I * sizeof(float));
    ExpertRange r = expert_range(a, E, S);
    const int *off = a->expert_off + r.e0;
    size_t eIH = (size_t)r.e0 * I * H, s0I = (size_t)r.s0 * I;
    int ne = r.e1 - r.e0;
    B->grouped_matmul_backward(B, deh, g->expert_down + eIH, deo, a->eh, w->expert_down + eIH, off,
                               S, ne, I, H);
    B->swiglu_backward(B, deg + s0I, deu + s0I, deh + s0I, a->eg + s0I, a->eu + s0I,
                       (size_t)(r.s1 - r.s0) * I);
    B->grouped_matmul_backward(B, dxg, g->expert_gate + eIH, deg, a->xg, w->expert_gate + eIH, off,
                               S, ne, H, I);
    B->grouped_matmul_backward(B, dxg, g->expert_up + eIH, deu, a->xg, w->expert_up + eIH, off, S,
                               ne, H, I);
    moe_ep_share_rows(dxg, a->expert_off, E, H); /* expert parallel: the others' input gradients */
    B->moe_dispatch_backward(B, dln2, dxg, a->slot_of, T, k, H);
    B->router_backward(B, dprob, a->router_probs, a->topk_w, a->topk_idx, dw, aux_dprob, T,
                       &routing);
    B->matmul_backward(B, dln2, g->router, NULL, dprob, a->ln2, w->router, T, H, E);

    if (Is > 0) {
        B->shared_gate_backward(B, dso, dsa, dy, a->so, a->sgate, T, H);
        size_t nI = (size_t)T * Is;
        mlp_backward(B, dln2, g->shared_gate, g->shared_up, g->shared_down, dso, a->ln2, a->sg,
                     a->su, a->sh, w->shared_gate, w->shared_up, w->shared_down, T, H, Is, dsh,
                     dsh + nI, dsh + 2 * nI);
        B->shared_gate_input_backward(B, dln2, g->shared_expert_gate, dsa, a->ln2,
                                      w->shared_expert_gate, T, H);
    }
}
