/* AdamW over a parameter arena and the global gradient norm over several tensors, with the
 * clip decided on the device (the norm never has to come back before the update). */
#include "kernels/cuda/cuda_internal.cuh"

__global__ void adamw_kernel(float *params, const float *grads, float *m, float *v, size_t count,
                             AhaDmAdamW c) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        aha_dm_adamw(&c, &params[i], grads[i], &m[i], &v[i]);
}

extern "C" int aha_cuda_adamw_step(AhaCuda *cu, float *params, const float *grads, float *m,
                                   float *v, size_t count, float lr, float beta1, float beta2,
                                   float eps, float weight_decay, int64_t step) {
    REQUIRE_ARG(step >= 1, "cuda adamw_step: step must be >= 1, got %lld", (long long)step);
    if (count == 0) return 0;
    AhaDmAdamW c = aha_dm_adamw_consts(lr, beta1, beta2, eps, weight_decay, step);
    adamw_kernel<<<aha_cuda_blocks(count, 256), 256, 0, cu->stream>>>(params, grads, m, v, count,
                                                                       c);
    LAUNCH_CHECK("adamw_kernel");
    return 0;
}

#define NORM_BLOCKS 256 /* partial sums per tensor slot; fixed, so the sum order is fixed */

/* partial[blockIdx.x] += sum of squares of this block's grid-stride share, in double */
__global__ void sumsq_kernel(double *partial, const float *g, size_t count) {
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * g[i];
    s = aha_block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] += s;
}

/* norm = sqrt(sum partial); scale[0] = clip factor (1 when no clipping) */
__global__ void norm_finish_kernel(float *norm_out, float *scale, const double *partial,
                                   float max_norm) {
    double s = 0.0;
    for (int i = threadIdx.x; i < NORM_BLOCKS; i += blockDim.x) s += partial[i];
    s = aha_block_sum(s);
    if (threadIdx.x == 0) {
        float norm = (float)sqrt(s);
        *norm_out = norm;
        *scale = (max_norm > 0.0f && norm > max_norm) ? max_norm / (norm + 1e-6f) : 1.0f;
    }
}

__global__ void scale_kernel(float *g, size_t count, const float *scale) {
    float s = *scale;
    if (s == 1.0f) return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        g[i] *= s;
}

extern "C" int aha_cuda_clip_grad_norm(AhaCuda *cu, float *const *grads, const size_t *counts,
                                       int n_tensors, float max_norm, float *norm_out) {
    REQUIRE_ARG(n_tensors >= 0, "cuda clip_grad_norm: %d tensors", n_tensors);
    double *partial = cu->reduce; /* NORM_BLOCKS doubles, then the scale as a float */
    float *scale = (float *)(cu->reduce + NORM_BLOCKS);
    CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(double) * NORM_BLOCKS, cu->stream));
    for (int i = 0; i < n_tensors; i++) {
        if (counts[i] == 0) continue;
        sumsq_kernel<<<NORM_BLOCKS, 256, 0, cu->stream>>>(partial, grads[i], counts[i]);
        LAUNCH_CHECK("sumsq_kernel");
    }
    norm_finish_kernel<<<1, 256, 0, cu->stream>>>(norm_out, scale, partial, max_norm);
    LAUNCH_CHECK("norm_finish_kernel");
    if (max_norm > 0.0f)
        for (int i = 0; i < n_tensors; i++) {
            if (counts[i] == 0) continue;
            scale_kernel<<<aha_cuda_blocks(counts[i], 256), 256, 0, cu->stream>>>(
                grads[i], counts[i], scale);
            LAUNCH_CHECK("scale_kernel");
        }
    return 0;
}
