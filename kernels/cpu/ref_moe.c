/* Plain C references of the mixture-of-experts ops (contracts in aha/backend.h), and the
 * per-token row functions that the CPU backend runs on each thread's share of tokens, so
 * both backends give the same numbers. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "kernels/cuda/device_math.h"

int aha_routing_unsupported(AhaBackend *be, const AhaRouting *r) {
    if (r->score != AHA_ROUTER_SOFTMAX || r->bias != NULL || r->n_groups != 0 ||
        r->topk_groups != 0 || r->scale != 1.0f) {
        aha_backend_fail(be, "routing: only softmax top-k without bias, groups or scaling is "
                             "implemented (score %d, groups %d)", (int)r->score, r->n_groups);
        return 1;
    }
    if (r->top_k < 1 || r->top_k > r->num_experts) {
        aha_backend_fail(be, "routing: top_k %d outside [1, %d]", r->top_k, r->num_experts);
        return 1;
    }
    return 0;
}

/* softmax over E in place, then the k largest (ties: lower index first): the same function
 * the CUDA routing kernel runs (kernels/cuda/device_math.h), so both backends route alike */
void aha_router_topk_row(float *p, float *w, int *idx, int E, int k, int renormalize) {
    aha_dm_route_token(p, E, k, renormalize, idx, w);
}

/* through the top-k weights (and their renormalization) to the probabilities, plus the
 * load-balancing term, then through the softmax to the router logits */
void aha_router_backward_row(float *dp, const float *p, const float *wt, const int *idx,
                             const float *dwt, const float *aux_dprob, int E, int k,
                             int renormalize) {
    for (int e = 0; e < E; e++) dp[e] = aux_dprob ? aux_dprob[e] : 0.0f;
    if (renormalize) {
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

void aha_router_topk_ref(AhaBackend *be, float *probs, float *topk_w, int *topk_idx, int n,
                         const AhaRouting *r) {
    if (aha_routing_unsupported(be, r)) return;
    for (int t = 0; t < n; t++)
        aha_router_topk_row(probs + (size_t)t * r->num_experts, topk_w + (size_t)t * r->top_k,
                            topk_idx + (size_t)t * r->top_k, r->num_experts, r->top_k,
                            r->renormalize);
}

void aha_moe_permute_ref(AhaBackend *be, int *off, int *slot_token, int *slot_of,
                         const int *topk_idx, int n, int E, int k) {
    (void)be;
    memset(off, 0, sizeof(int) * (size_t)(E + 1));
    for (size_t s = 0; s < (size_t)n * k; s++) off[topk_idx[s] + 1]++;
    for (int e = 0; e < E; e++) off[e + 1] += off[e];
    /* fill[e] = slots of expert e handed out so far: off[e] itself, advanced in place and
     * restored by the shift below (no scratch) */
    for (int t = 0; t < n; t++)
        for (int j = 0; j < k; j++) {
            int e = topk_idx[(size_t)t * k + j], slot = off[e]++;
            slot_token[slot] = t;
            slot_of[(size_t)t * k + j] = slot;
        }
    for (int e = E; e > 0; e--) off[e] = off[e - 1];
    off[0] = 0;
}

void aha_grouped_matmul_forward_ref(AhaBackend *be, float *out, const float *in,
                                    const float *weight, const int *off, int n_rows, int E,
                                    int in_dim, int out_dim) {
    (void)n_rows;
    for (int e = 0; e < E; e++)
        for (int r = off[e]; r < off[e + 1]; r++)
            be->matmul_forward(be, out + (size_t)r * out_dim, in + (size_t)r * in_dim,
                               weight + (size_t)e * out_dim * in_dim, NULL, 1, in_dim, out_dim);
}

void aha_grouped_matmul_backward_ref(AhaBackend *be, float *din, float *dweight,
                                     const float *dout, const float *in, const float *weight,
                                     const int *off, int n_rows, int E, int in_dim, int out_dim) {
    (void)n_rows;
    size_t per = (size_t)out_dim * in_dim;
    for (int e = 0; e < E; e++) {
        int rows = off[e + 1] - off[e];
        if (rows == 0) continue;
        be->matmul_backward(be, din ? din + (size_t)off[e] * in_dim : NULL,
                            dweight ? dweight + (size_t)e * per : NULL, NULL,
                            dout + (size_t)off[e] * out_dim, in + (size_t)off[e] * in_dim,
                            weight + (size_t)e * per, rows, in_dim, out_dim);
    }
}

void aha_moe_combine_ref(AhaBackend *be, float *y, const float *eo, const float *topk_w,
                         const int *slot_of, int n, int k, int H) {
    (void)be;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < H; i++) {
            float acc = 0.0f;
            for (int j = 0; j < k; j++)
                acc += topk_w[(size_t)t * k + j] * eo[(size_t)slot_of[(size_t)t * k + j] * H + i];
            y[(size_t)t * H + i] = acc;
        }
}

void aha_moe_combine_backward_ref(AhaBackend *be, float *deo, float *dw, const float *dy,
                                  const float *eo, const float *topk_w, const int *slot_of,
                                  int n, int k, int H) {
    (void)be;
    for (int t = 0; t < n; t++)
        for (int j = 0; j < k; j++) {
            size_t slot = (size_t)slot_of[(size_t)t * k + j];
            float dot = 0.0f;
            for (int i = 0; i < H; i++) {
                dot += dy[(size_t)t * H + i] * eo[slot * H + i];
                deo[slot * H + i] = topk_w[(size_t)t * k + j] * dy[(size_t)t * H + i];
            }
            dw[(size_t)t * k + j] = dot;
        }
}

void aha_moe_dispatch_backward_ref(AhaBackend *be, float *dx, const float *dxg,
                                   const int *slot_of, int n, int k, int H) {
    (void)be;
    for (int t = 0; t < n; t++)
        for (int j = 0; j < k; j++)
            for (int i = 0; i < H; i++)
                dx[(size_t)t * H + i] += dxg[(size_t)slot_of[(size_t)t * k + j] * H + i];
}

void aha_router_backward_ref(AhaBackend *be, float *dlogits, const float *probs,
                             const float *topk_w, const int *topk_idx, const float *dw,
                             const float *aux_dprob, int n, const AhaRouting *r) {
    if (aha_routing_unsupported(be, r)) return;
    int E = r->num_experts, k = r->top_k;
    for (int t = 0; t < n; t++)
        aha_router_backward_row(dlogits + (size_t)t * E, probs + (size_t)t * E,
                                topk_w + (size_t)t * k, topk_idx + (size_t)t * k,
                                dw + (size_t)t * k, aux_dprob, E, k, r->renormalize);
}

static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

void aha_shared_gate_forward_ref(AhaBackend *be, float *y, float *gate, const float *x,
                                 const float *wg, const float *so, int n, int H) {
    (void)be;
    for (int t = 0; t < n; t++) {
        float z = 0.0f;
        for (int i = 0; i < H; i++) z += x[(size_t)t * H + i] * wg[i];
        gate[t] = sigmoid(z);
        for (int i = 0; i < H; i++) y[(size_t)t * H + i] += gate[t] * so[(size_t)t * H + i];
    }
}

void aha_shared_gate_backward_ref(AhaBackend *be, float *dso, float *dlogit, const float *dy,
                                  const float *so, const float *gate, int n, int H) {
    (void)be;
    for (int t = 0; t < n; t++) {
        float dot = 0.0f;
        for (int i = 0; i < H; i++) {
            dot += dy[(size_t)t * H + i] * so[(size_t)t * H + i];
            dso[(size_t)t * H + i] = gate[t] * dy[(size_t)t * H + i];
        }
        dlogit[t] = dot * gate[t] * (1.0f - gate[t]);
    }
}

/* serial in t: the weight gradient sums over tokens in order (the CPU backend uses it too) */
void aha_shared_gate_input_backward_ref(AhaBackend *be, float *dx, float *dwg,
                                        const float *dlogit, const float *x, const float *wg,
                                        int n, int H) {
    (void)be;
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * H;
        float *d = dx + (size_t)t * H;
        for (int i = 0; i < H; i++) {
            d[i] += dlogit[t] * wg[i];
            dwg[i] += dlogit[t] * xt[i];
        }
    }
}

/* serial: counts and sums in token order (the CPU backend uses it too) */
void aha_expert_stats_ref(AhaBackend *be, float *count, float *prob_sum, const int *topk_idx,
                          const float *probs, int n, int E, int k) {
    (void)be;
    for (size_t s = 0; s < (size_t)n * k; s++) count[topk_idx[s]] += 1.0f;
    for (int t = 0; t < n; t++)
        for (int e = 0; e < E; e++) prob_sum[e] += probs[(size_t)t * E + e];
}
