/* The mixture-of-experts ops of the CPU backend: router softmax + top-k, the counting sort
 * of assignments by expert, the grouped expert GEMM (one OpenBLAS product per expert, so an
 * expert's rows get exactly matmul_forward's numbers), combine, their backward passes, the
 * shared-expert gate and the expert statistics. OpenMP over tokens where tokens are
 * independent; sums over tokens run in token order. References: ref_moe.c. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"

void aha_cpu_router_topk(AhaBackend *be, float *probs, float *topk_w, int *topk_idx, int n,
                         const AhaRouting *r) {
    if (aha_routing_unsupported(be, r)) return;
    int E = r->num_experts, k = r->top_k;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) aha_router_topk_row(probs + (size_t)t * E, topk_w + (size_t)t * k,
                                                    topk_idx + (size_t)t * k, E, k, r->renormalize);
}

void aha_cpu_grouped_matmul_forward(AhaBackend *be, float *out, const float *in,
                                    const float *weight, const int *off, int n_rows, int E,
                                    int in_dim, int out_dim) {
    (void)n_rows;
    for (int e = 0; e < E; e++) {
        int lo = off[e], rows = off[e + 1] - lo;
        if (rows == 0) continue;
        be->matmul_forward(be, out + (size_t)lo * out_dim, in + (size_t)lo * in_dim,
                           weight + (size_t)e * out_dim * in_dim, NULL, rows, in_dim, out_dim);
    }
}

void aha_cpu_grouped_matmul_backward(AhaBackend *be, float *din, float *dweight,
                                     const float *dout, const float *in, const float *weight,
                                     const int *off, int n_rows, int E, int in_dim, int out_dim) {
    (void)n_rows;
    size_t per = (size_t)out_dim * in_dim;
    for (int e = 0; e < E; e++) {
        int lo = off[e], rows = off[e + 1] - lo;
        if (rows == 0) continue;
        be->matmul_backward(be, din ? din + (size_t)lo * in_dim : NULL,
                            dweight ? dweight + (size_t)e * per : NULL, NULL,
                            dout + (size_t)lo * out_dim, in + (size_t)lo * in_dim,
                            weight + (size_t)e * per, rows, in_dim, out_dim);
    }
}

void aha_cpu_moe_combine(AhaBackend *be, float *y, const float *eo, const float *topk_w,
                         const int *slot_of, int n, int k, int H) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        float *yt = y + (size_t)t * H;
        memset(yt, 0, sizeof(float) * H);
        for (int j = 0; j < k; j++) {
            float wj = topk_w[(size_t)t * k + j];
            const float *o = eo + (size_t)slot_of[(size_t)t * k + j] * H;
            for (int i = 0; i < H; i++) yt[i] += wj * o[i];
        }
    }
}

void aha_cpu_moe_combine_backward(AhaBackend *be, float *deo, float *dw, const float *dy,
                                  const float *eo, const float *topk_w, const int *slot_of,
                                  int n, int k, int H) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        const float *dyt = dy + (size_t)t * H;
        for (int j = 0; j < k; j++) {
            size_t slot = (size_t)slot_of[(size_t)t * k + j];
            const float *o = eo + slot * H;
            float wj = topk_w[(size_t)t * k + j], dot = 0.0f;
            float *d = deo + slot * H;
            for (int i = 0; i < H; i++) {
                dot += dyt[i] * o[i];
                d[i] = wj * dyt[i];
            }
            dw[(size_t)t * k + j] = dot;
        }
    }
}

void aha_cpu_moe_dispatch_backward(AhaBackend *be, float *dx, const float *dxg,
                                   const int *slot_of, int n, int k, int H) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        float *d = dx + (size_t)t * H;
        for (int j = 0; j < k; j++) {
            const float *s = dxg + (size_t)slot_of[(size_t)t * k + j] * H;
            for (int i = 0; i < H; i++) d[i] += s[i];
        }
    }
}

void aha_cpu_router_backward(AhaBackend *be, float *dlogits, const float *probs,
                             const float *topk_w, const int *topk_idx, const float *dw,
                             const float *aux_dprob, int n, const AhaRouting *r) {
    if (aha_routing_unsupported(be, r)) return;
    int E = r->num_experts, k = r->top_k;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++)
        aha_router_backward_row(dlogits + (size_t)t * E, probs + (size_t)t * E,
                                topk_w + (size_t)t * k, topk_idx + (size_t)t * k,
                                dw + (size_t)t * k, aux_dprob, E, k, r->renormalize);
}

void aha_cpu_shared_gate_forward(AhaBackend *be, float *y, float *gate, const float *x,
                                 const float *wg, const float *so, int n, int H) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * H;
        float z = 0.0f;
        for (int i = 0; i < H; i++) z += xt[i] * wg[i];
        float g = 1.0f / (1.0f + expf(-z));
        gate[t] = g;
        float *yt = y + (size_t)t * H;
        const float *st = so + (size_t)t * H;
        for (int i = 0; i < H; i++) yt[i] += g * st[i];
    }
}

void aha_cpu_shared_gate_backward(AhaBackend *be, float *dso, float *dlogit, const float *dy,
                                  const float *so, const float *gate, int n, int H) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        const float *dyt = dy + (size_t)t * H, *st = so + (size_t)t * H;
        float g = gate[t], dot = 0.0f;
        float *d = dso + (size_t)t * H;
        for (int i = 0; i < H; i++) {
            dot += dyt[i] * st[i];
            d[i] = g * dyt[i];
        }
        dlogit[t] = dot * g * (1.0f - g);
    }
}
