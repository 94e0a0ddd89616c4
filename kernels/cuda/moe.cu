/* MoE routing on the device, with no host round trip: router softmax + top-k per token,
 * the counting sort of the assignments by expert (histogram, scan, stable compaction in
 * (token, j) order, so slots match policy/moe.c exactly), gather, combine, their
 * backward passes, the router backward and the expert statistics. */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_internal.cuh"

__global__ void route_kernel(float *probs, int *topk_idx, float *topk_w, const float *logits,
                             int T, int E, int k, int norm_topk) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    float *p = probs + (size_t)t * E;
    if (p != logits + (size_t)t * E)
        for (int e = 0; e < E; e++) p[e] = logits[(size_t)t * E + e];
    aha_dm_route_token(p, E, k, norm_topk, topk_idx + (size_t)t * k, topk_w + (size_t)t * k);
}

extern "C" int aha_cuda_moe_route(AhaCuda *cu, float *probs, int *topk_idx, float *topk_w,
                                  const float *logits, int T, int E, int k, int norm_topk) {
    REQUIRE_ARG(T >= 0 && E > 0 && k > 0 && k <= E, "cuda moe_route: T %d, E %d, k %d", T, E, k);
    if (T == 0) return 0;
    route_kernel<<<(T + 127) / 128, 128, 0, cu->stream>>>(probs, topk_idx, topk_w, logits, T, E,
                                                          k, norm_topk);
    LAUNCH_CHECK("route_kernel");
    return 0;
}

__global__ void expert_histogram_kernel(int *counts, const int *topk_idx, int S) {
    for (int s = blockIdx.x * blockDim.x + threadIdx.x; s < S; s += gridDim.x * blockDim.x)
        atomicAdd(&counts[topk_idx[s] + 1], 1); /* integer: the result is exact */
}

__global__ void expert_scan_kernel(int *off, int E) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        off[0] = 0;
        for (int e = 0; e < E; e++) off[e + 1] += off[e];
    }
}

#define COMPACT_THREADS 256
/* one block per expert: its assignments in (token, j) order */
__global__ void expert_compact_kernel(int *slot_token, int *slot_of, const int *off,
                                      const int *topk_idx, int S, int k) {
    typedef cub::BlockScan<int, COMPACT_THREADS> Scan;
    __shared__ typename Scan::TempStorage temp;
    __shared__ int base;
    int e = blockIdx.x;
    if (threadIdx.x == 0) base = off[e];
    __syncthreads();
    for (int s0 = 0; s0 < S; s0 += COMPACT_THREADS) {
        int s = s0 + threadIdx.x;
        int flag = s < S && topk_idx[s] == e, rank, total;
        Scan(temp).ExclusiveSum(flag, rank, total);
        if (flag) {
            int slot = base + rank;
            slot_token[slot] = s / k;
            slot_of[s] = slot;
        }
        __syncthreads();
        if (threadIdx.x == 0) base += total;
        __syncthreads();
    }
}

extern "C" int aha_cuda_moe_permute(AhaCuda *cu, int *expert_off, int *slot_token, int *slot_of,
                                    const int *topk_idx, int T, int E, int k) {
    REQUIRE_ARG(T >= 0 && E > 0 && k > 0, "cuda moe_permute: T %d, E %d, k %d", T, E, k);
    int S = T * k;
    CUDA_CHECK(cudaMemsetAsync(expert_off, 0, sizeof(int) * (size_t)(E + 1), cu->stream));
    if (S == 0) return 0;
    expert_histogram_kernel<<<aha_cuda_blocks((size_t)S, 256), 256, 0, cu->stream>>>(expert_off,
                                                                                    topk_idx, S);
    LAUNCH_CHECK("expert_histogram_kernel");
    expert_scan_kernel<<<1, 32, 0, cu->stream>>>(expert_off, E);
    LAUNCH_CHECK("expert_scan_kernel");
    expert_compact_kernel<<<E, COMPACT_THREADS, 0, cu->stream>>>(slot_token, slot_of, expert_off,
                                                                 topk_idx, S, k);
    LAUNCH_CHECK("expert_compact_kernel");
    return 0;
}

__global__ void gather_kernel(float *xg, const float *x, const int *slot_token, int H) {
    const float *src = x + (size_t)slot_token[blockIdx.x] * H;
    float *dst = xg + (size_t)blockIdx.x * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}

__global__ void gather_backward_kernel(float *dx, const float *dxg, const int *slot_of, int k,
                                       int H) {
    size_t t = blockIdx.x;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float acc = dx[t * H + i];
        for (int j = 0; j < k; j++) acc += dxg[(size_t)slot_of[t * k + j] * H + i];
        dx[t * H + i] = acc;
    }
}

__global__ void combine_kernel(float *y, const float *eo, const float *topk_w,
                               const int *slot_of, int k, int H) {
    size_t t = blockIdx.x;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < k; j++)
            acc += topk_w[t * k + j] * eo[(size_t)slot_of[t * k + j] * H + i];
        y[t * H + i] = acc;
    }
}

/* one block per (token, j) */
__global__ void combine_backward_kernel(float *deo, float *dw, const float *dy, const float *eo,
                                        const float *topk_w, const int *slot_of, int k, int H) {
    size_t tj = blockIdx.x, t = tj / k, slot = (size_t)slot_of[tj];
    float w = topk_w[tj], dot = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float g = dy[t * H + i];
        dot += g * eo[slot * H + i];
        deo[slot * H + i] = w * g;
    }
    dot = aha_block_sum(dot);
    if (threadIdx.x == 0) dw[tj] = dot;
}

extern "C" int aha_cuda_moe_gather(AhaCuda *cu, float *xg, const float *x, const int *slot_token,
                                   int S, int H) {
    if (S <= 0) return 0;
    gather_kernel<<<S, 256, 0, cu->stream>>>(xg, x, slot_token, H);
    LAUNCH_CHECK("gather_kernel");
    return 0;
}

extern "C" int aha_cuda_moe_gather_backward(AhaCuda *cu, float *dx, const float *dxg,
                                            const int *slot_of, int T, int k, int H) {
    if (T <= 0) return 0;
    gather_backward_kernel<<<T, 256, 0, cu->stream>>>(dx, dxg, slot_of, k, H);
    LAUNCH_CHECK("gather_backward_kernel");
    return 0;
}

extern "C" int aha_cuda_moe_combine(AhaCuda *cu, float *y, const float *eo, const float *topk_w,
                                    const int *slot_of, int T, int k, int H) {
    if (T <= 0) return 0;
    combine_kernel<<<T, 256, 0, cu->stream>>>(y, eo, topk_w, slot_of, k, H);
    LAUNCH_CHECK("combine_kernel");
    return 0;
}

extern "C" int aha_cuda_moe_combine_backward(AhaCuda *cu, float *deo, float *dw, const float *dy,
                                             const float *eo, const float *topk_w,
                                             const int *slot_of, int T, int k, int H) {
    if (T <= 0) return 0;
    combine_backward_kernel<<<T * k, 256, 0, cu->stream>>>(deo, dw, dy, eo, topk_w, slot_of, k, H);
    LAUNCH_CHECK("combine_backward_kernel");
    return 0;
}

__global__ void router_backward_kernel(float *dlogits, const float *dw, const float *probs,
                                       const int *topk_idx, const float *topk_w,
                                       const float *aux_dprob, int T, int E, int k,
                                       int norm_topk) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    size_t tE = (size_t)t * E, tk = (size_t)t * k;
    aha_dm_router_backward_token(dlogits + tE, probs + tE, topk_idx + tk, topk_w + tk, dw + tk,
                                 aux_dprob, E, k, norm_topk);
}

extern "C" int aha_cuda_moe_router_backward(AhaCuda *cu, float *dlogits, const float *dw,
                                            const float *probs, const int *topk_idx,
                                            const float *topk_w, const float *aux_dprob, int T,
                                            int E, int k, int norm_topk) {
    if (T <= 0) return 0;
    router_backward_kernel<<<(T + 127) / 128, 128, 0, cu->stream>>>(
        dlogits, dw, probs, topk_idx, topk_w, aux_dprob, T, E, k, norm_topk);
    LAUNCH_CHECK("router_backward_kernel");
    return 0;
}

/* one thread per expert, tokens in order (deterministic) */
__global__ void moe_stats_kernel(double *counts, double *prob_sum, const int *off,
                                 const float *probs, int T, int E) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    if (counts) counts[e] += (double)(off[e + 1] - off[e]);
    if (prob_sum) {
        double s = 0.0;
        for (int t = 0; t < T; t++) s += probs[(size_t)t * E + e];
        prob_sum[e] += s;
    }
}

extern "C" int aha_cuda_moe_stats(AhaCuda *cu, double *counts, double *prob_sum,
                                  const int *expert_off, const float *probs, int T, int E) {
    if (E <= 0) return 0;
    moe_stats_kernel<<<(E + 127) / 128, 128, 0, cu->stream>>>(counts, prob_sum, expert_off, probs,
                                                              T, E);
    LAUNCH_CHECK("moe_stats_kernel");
    return 0;
}

/* count[e] += assignments to e (from topk_idx), prob_sum[e] += sum_t probs[t,e], float,
 * one thread per expert in token order (the CPU backend's order) */
__global__ void expert_stats_kernel(float *count, float *prob_sum, const int *topk_idx,
                                    const float *probs, int n, int E, int k) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    if (count) {
        int c = 0;
        for (size_t s = 0; s < (size_t)n * k; s++) c += topk_idx[s] == e;
        count[e] += (float)c;
    }
    if (prob_sum) {
        float s = prob_sum[e];
        for (int t = 0; t < n; t++) s += probs[(size_t)t * E + e];
        prob_sum[e] = s;
    }
}

extern "C" int aha_cuda_expert_stats(AhaCuda *cu, float *count, float *prob_sum,
                                     const int *topk_idx, const float *probs, int n, int E,
                                     int k) {
    if (E <= 0 || n <= 0) return 0;
    expert_stats_kernel<<<(E + 127) / 128, 128, 0, cu->stream>>>(count, prob_sum, topk_idx, probs,
                                                                 n, E, k);
    LAUNCH_CHECK("expert_stats_kernel");
    return 0;
}
