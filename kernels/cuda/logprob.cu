/* Fused log-prob and entropy: one block per row, the max in float and the exponential sums
 * in double exactly as kernels/cpu/ref.c does, then the same over vocabulary chunks (a
 * running (max, sum, sum_pz, target) state per row, device_math.h) so a model can run its
 * lm_head one vocabulary chunk at a time and never hold [n, V] logits. */
#include "kernels/cuda/cuda_internal.cuh"

#define THREADS 256

__global__ void logprob_forward_kernel(float *logprob, float *entropy, const float *logits,
                                       const int *targets, int vocab, float inv_t) {
    const float *z = logits + (size_t)blockIdx.x * vocab;
    float max = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) max = fmaxf(max, z[i] * inv_t);
    max = aha_block_max(max);
    double sum = 0.0, sum_pz = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float d = z[i] * inv_t - max;
        double e = exp((double)d);
        sum += e;
        sum_pz += e * d;
    }
    sum = aha_block_sum(sum);
    sum_pz = aha_block_sum(sum_pz);
    if (threadIdx.x == 0) {
        double lse = log(sum);
        int tgt = targets[blockIdx.x];
        logprob[blockIdx.x] = tgt >= 0 ? (float)((z[tgt] * inv_t - max) - lse) : 0.0f;
        if (entropy) entropy[blockIdx.x] = (float)(lse - sum_pz / sum);
    }
}

__global__ void logprob_backward_kernel(float *dlogits, const float *dlogprob,
                                        const float *logits, const int *targets, int vocab,
                                        float inv_t) {
    size_t row = blockIdx.x;
    const float *z = logits + row * vocab;
    float *dz = dlogits + row * vocab;
    int tgt = targets[row];
    if (tgt < 0) {
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) dz[i] = 0.0f;
        return;
    }
    float max = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) max = fmaxf(max, z[i] * inv_t);
    max = aha_block_max(max);
    double sum = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) sum += exp((double)(z[i] * inv_t - max));
    sum = aha_block_sum(sum);
    float g = dlogprob[row] * inv_t;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float p = (float)(exp((double)(z[i] * inv_t - max)) / sum);
        dz[i] = g * ((i == tgt ? 1.0f : 0.0f) - p);
    }
}

static int check(const char *op, int n, int vocab, float temperature) {
    REQUIRE_ARG(n >= 0 && vocab > 0, "cuda %s: bad shape %d x %d", op, n, vocab);
    REQUIRE_ARG(temperature > 0.0f, "cuda %s: temperature must be > 0, got %g", op,
                (double)temperature);
    return 0;
}

extern "C" int aha_cuda_logprob_forward(AhaCuda *cu, float *logprob, float *entropy,
                                        const float *logits, const int *targets, int n, int vocab,
                                        float temperature) {
    AHA_TRY(check("logprob_forward", n, vocab, temperature));
    if (n == 0) return 0;
    logprob_forward_kernel<<<n, THREADS, 0, cu->stream>>>(logprob, entropy, logits, targets,
                                                          vocab, 1.0f / temperature);
    LAUNCH_CHECK("logprob_forward_kernel");
    return 0;
}

extern "C" int aha_cuda_logprob_backward(AhaCuda *cu, float *dlogits, const float *dlogprob,
                                         const float *logits, const int *targets, int n,
                                         int vocab, float temperature) {
    AHA_TRY(check("logprob_backward", n, vocab, temperature));
    if (n == 0) return 0;
    logprob_backward_kernel<<<n, THREADS, 0, cu->stream>>>(dlogits, dlogprob, logits, targets,
                                                           vocab, 1.0f / temperature);
    LAUNCH_CHECK("logprob_backward_kernel");
    return 0;
}

/* ---- vocabulary chunks --------------------------------------------------------------- */
__global__ void chunk_init_kernel(double *state, int n) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    state[4 * t + 0] = -INFINITY;
    state[4 * t + 1] = 0.0;
    state[4 * t + 2] = 0.0;
    state[4 * t + 3] = 0.0;
}

__global__ void chunk_accumulate_kernel(double *state, const float *logits, int ld,
                                        const int *targets, int col0, int cols, float inv_t) {
    const float *z = logits + (size_t)blockIdx.x * ld;
    float max = -INFINITY;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) max = fmaxf(max, z[i] * inv_t);
    max = aha_block_max(max);
    double sum = 0.0, sum_pz = 0.0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float d = z[i] * inv_t - max;
        double e = exp((double)d);
        sum += e;
        sum_pz += e * d;
    }
    sum = aha_block_sum(sum);
    sum_pz = aha_block_sum(sum_pz);
    if (threadIdx.x == 0) {
        double *st = state + 4 * (size_t)blockIdx.x;
        int tgt = targets[blockIdx.x];
        if (tgt >= col0 && tgt < col0 + cols) st[3] = (double)(z[tgt - col0] * inv_t);
        aha_dm_lse_merge(st, (double)max, sum, sum_pz);
    }
}

__global__ void chunk_finish_kernel(float *logprob, float *entropy, const double *state,
                                    const int *targets, int n) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    float lp, ent;
    aha_dm_lse_finish(state + 4 * (size_t)t, targets[t] >= 0, &lp, &ent);
    logprob[t] = lp;
    if (entropy) entropy[t] = ent;
}

__global__ void chunk_backward_kernel(float *dlogits, int ld, const float *dlogprob,
                                      const float *logits, const double *state,
                                      const int *targets, int col0, int cols, float inv_t) {
    size_t row = blockIdx.x;
    const float *z = logits + row * ld;
    float *dz = dlogits + row * ld;
    int tgt = targets[row];
    const double *st = state + 4 * row;
    double lse = st[0] + log(st[1]);
    float g = tgt >= 0 ? dlogprob[row] * inv_t : 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        if (tgt < 0) {
            dz[i] = 0.0f;
            continue;
        }
        float p = (float)exp((double)(z[i] * inv_t) - lse);
        dz[i] = g * ((col0 + i == tgt ? 1.0f : 0.0f) - p);
    }
}

extern "C" int aha_cuda_logprob_chunk_init(AhaCuda *cu, double *state, int n) {
    if (n <= 0) return 0;
    chunk_init_kernel<<<(n + 255) / 256, 256, 0, cu->stream>>>(state, n);
    LAUNCH_CHECK("chunk_init_kernel");
    return 0;
}

extern "C" int aha_cuda_logprob_chunk_accumulate(AhaCuda *cu, double *state, const float *logits,
                                                 int ld, const int *targets, int n, int col0,
                                                 int cols, float temperature) {
    AHA_TRY(check("logprob_chunk_accumulate", n, cols, temperature));
    if (n == 0) return 0;
    chunk_accumulate_kernel<<<n, THREADS, 0, cu->stream>>>(state, logits, ld, targets, col0, cols,
                                                           1.0f / temperature);
    LAUNCH_CHECK("chunk_accumulate_kernel");
    return 0;
}

extern "C" int aha_cuda_logprob_chunk_finish(AhaCuda *cu, float *logprob, float *entropy,
                                             const double *state, const int *targets, int n) {
    if (n <= 0) return 0;
    chunk_finish_kernel<<<(n + 255) / 256, 256, 0, cu->stream>>>(logprob, entropy, state, targets,
                                                                 n);
    LAUNCH_CHECK("chunk_finish_kernel");
    return 0;
}

extern "C" int aha_cuda_logprob_chunk_backward(AhaCuda *cu, float *dlogits, int ld,
                                               const float *dlogprob, const float *logits,
                                               const double *state, const int *targets, int n,
                                               int col0, int cols, float temperature) {
    AHA_TRY(check("logprob_chunk_backward", n, cols, temperature));
    if (n == 0) return 0;
    chunk_backward_kernel<<<n, THREADS, 0, cu->stream>>>(dlogits, ld, dlogprob, logits, state,
                                                         targets, col0, cols, 1.0f / temperature);
    LAUNCH_CHECK("chunk_backward_kernel");
    return 0;
}
