/* Row and element ops: RMSNorm, RoPE, SwiGLU, residual add, embedding gather and its
 * deterministic scatter-add. Per-element math lives in device_math.h (tested on the CPU). */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_internal.cuh"

#define GRID_STRIDE(i, n)                                                                      \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                    \
         i += (size_t)gridDim.x * blockDim.x)

/* ---- RMSNorm ------------------------------------------------------------------------- */
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *in,
                                       const float *weight, int dim, float eps) {
    const float *x = in + (size_t)blockIdx.x * dim;
    float *y = out + (size_t)blockIdx.x * dim;
    float s = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += x[i] * x[i];
    s = aha_block_sum(s);
    float r = 1.0f / sqrtf(s / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[i] = x[i] * r * weight[i];
    if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = r;
}

__global__ void rmsnorm_backward_din_kernel(float *din, const float *dout, const float *in,
                                            const float *weight, const float *rstd, int dim) {
    size_t row = blockIdx.x;
    const float *x = in + row * dim, *dy = dout + row * dim;
    float r = rstd[row], dot = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) dot += dy[i] * weight[i] * x[i];
    dot = aha_block_sum(dot);
    float c = dot * r * r * r / dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        din[row * dim + i] += r * weight[i] * dy[i] - c * x[i];
}

/* dweight[i] += sum_t dy[t,i] x[t,i] r[t]: 32 columns per block, 8 row lanes summed in a
 * fixed order (deterministic) */
__global__ void rmsnorm_backward_dweight_kernel(float *dweight, const float *dout,
                                                const float *in, const float *rstd, int n,
                                                int dim) {
    __shared__ float part[8][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    float acc = 0.0f;
    if (col < dim)
        for (int t = threadIdx.y; t < n; t += 8)
            acc += dout[(size_t)t * dim + col] * in[(size_t)t * dim + col] * rstd[t];
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < dim) {
        float s = 0.0f;
        for (int y = 0; y < 8; y++) s += part[y][threadIdx.x];
        dweight[col] += s;
    }
}

extern "C" int aha_cuda_rmsnorm_forward(AhaCuda *cu, float *out, float *rstd, const float *in,
                                        const float *weight, int n, int dim, float eps) {
    REQUIRE_ARG(n >= 0 && dim > 0, "cuda rmsnorm_forward: bad shape %d x %d", n, dim);
    if (n == 0) return 0;
    rmsnorm_forward_kernel<<<n, 256, 0, cu->stream>>>(out, rstd, in, weight, dim, eps);
    LAUNCH_CHECK("rmsnorm_forward_kernel");
    return 0;
}

extern "C" int aha_cuda_rmsnorm_backward(AhaCuda *cu, float *din, float *dweight,
                                         const float *dout, const float *in, const float *weight,
                                         const float *rstd, int n, int dim) {
    REQUIRE_ARG(n >= 0 && dim > 0, "cuda rmsnorm_backward: bad shape %d x %d", n, dim);
    if (n == 0) return 0;
    if (din) {
        rmsnorm_backward_din_kernel<<<n, 256, 0, cu->stream>>>(din, dout, in, weight, rstd, dim);
        LAUNCH_CHECK("rmsnorm_backward_din_kernel");
    }
    if (dweight) {
        rmsnorm_backward_dweight_kernel<<<(dim + 31) / 32, dim3(32, 8), 0, cu->stream>>>(
            dweight, dout, in, rstd, n, dim);
        LAUNCH_CHECK("rmsnorm_backward_dweight_kernel");
    }
    return 0;
}

/* ---- RoPE ---------------------------------------------------------------------------- */
__global__ void rope_kernel(float *x, const int *pos, const float *inv_freq, int n, int heads,
                            int head_dim, float direction) {
    int half = head_dim / 2;
    size_t total = (size_t)n * heads * half;
    GRID_STRIDE(idx, total) {
        int i = (int)(idx % half);
        size_t th = idx / half; /* t * heads + h */
        int t = (int)(th / heads);
        float angle = (float)pos[t] * inv_freq[i];
        float *v = x + th * head_dim;
        aha_dm_rope_pair(&v[i], &v[i + half], cosf(angle), sinf(angle), direction);
    }
}

/* the inverse frequencies of (theta, head_dim), computed on the host once per change */
static int rope_table(AhaCuda *cu, int head_dim, float theta) {
    int half = head_dim / 2;
    if (cu->rope_inv_freq && cu->rope_half == half && cu->rope_theta == theta) return 0;
    REQUIRE_ARG(half <= AHA_CUDA_ROPE_MAX_HALF, "cuda rope: head_dim %d exceeds %d", head_dim,
                2 * AHA_CUDA_ROPE_MAX_HALF);
    float table[AHA_CUDA_ROPE_MAX_HALF];
    for (int i = 0; i < half; i++) table[i] = aha_dm_rope_inv_freq(i, head_dim, theta);
    if (!cu->rope_inv_freq)
        CUDA_CHECK(cudaMalloc((void **)&cu->rope_inv_freq, sizeof(float) * AHA_CUDA_ROPE_MAX_HALF));
    CUDA_CHECK(cudaMemcpyAsync(cu->rope_inv_freq, table, sizeof(float) * (size_t)half,
                               cudaMemcpyHostToDevice, cu->stream));
    CUDA_CHECK(cudaStreamSynchronize(cu->stream)); /* table[] is on this stack frame */
    cu->rope_half = half;
    cu->rope_theta = theta;
    return 0;
}

static int rope(AhaCuda *cu, float *x, const int *pos, int n, int heads, int head_dim,
                float theta, float direction) {
    REQUIRE_ARG(n >= 0 && heads > 0 && head_dim > 0 && head_dim % 2 == 0,
                "cuda rope: bad shape %d x %d x %d", n, heads, head_dim);
    size_t total = (size_t)n * heads * (head_dim / 2);
    if (total == 0) return 0;
    AHA_TRY(rope_table(cu, head_dim, theta));
    rope_kernel<<<aha_cuda_blocks(total, 256), 256, 0, cu->stream>>>(x, pos, cu->rope_inv_freq, n,
                                                                      heads, head_dim, direction);
    LAUNCH_CHECK("rope_kernel");
    return 0;
}

extern "C" int aha_cuda_rope_forward(AhaCuda *cu, float *x, const int *pos, int n, int heads,
                                     int head_dim, float theta) {
    return rope(cu, x, pos, n, heads, head_dim, theta, 1.0f);
}

extern "C" int aha_cuda_rope_backward(AhaCuda *cu, float *dx, const int *pos, int n, int heads,
                                      int head_dim, float theta) {
    return rope(cu, dx, pos, n, heads, head_dim, theta, -1.0f);
}

/* ---- SwiGLU and residual ------------------------------------------------------------- */
__global__ void swiglu_forward_kernel(float *out, const float *gate, const float *up, size_t n) {
    GRID_STRIDE(i, n) out[i] = aha_dm_swiglu(gate[i], up[i]);
}

__global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout,
                                       const float *gate, const float *up, size_t n) {
    GRID_STRIDE(i, n) {
        float dg, du;
        aha_dm_swiglu_backward(dout[i], gate[i], up[i], &dg, &du);
        if (dgate) dgate[i] += dg;
        if (dup) dup[i] += du;
    }
}

__global__ void residual_add_kernel(float *x, const float *y, size_t n) {
    GRID_STRIDE(i, n) x[i] += y[i];
}

extern "C" int aha_cuda_swiglu_forward(AhaCuda *cu, float *out, const float *gate,
                                       const float *up, size_t n) {
    if (n == 0) return 0;
    swiglu_forward_kernel<<<aha_cuda_blocks(n, 256), 256, 0, cu->stream>>>(out, gate, up, n);
    LAUNCH_CHECK("swiglu_forward_kernel");
    return 0;
}

extern "C" int aha_cuda_swiglu_backward(AhaCuda *cu, float *dgate, float *dup, const float *dout,
                                        const float *gate, const float *up, size_t n) {
    if (n == 0 || (!dgate && !dup)) return 0;
    swiglu_backward_kernel<<<aha_cuda_blocks(n, 256), 256, 0, cu->stream>>>(dgate, dup, dout,
                                                                             gate, up, n);
    LAUNCH_CHECK("swiglu_backward_kernel");
    return 0;
}

extern "C" int aha_cuda_residual_add(AhaCuda *cu, float *x, const float *y, size_t n) {
    if (n == 0) return 0;
    residual_add_kernel<<<aha_cuda_blocks(n, 256), 256, 0, cu->stream>>>(x, y, n);
    LAUNCH_CHECK("residual_add_kernel");
    return 0;
}

/* ---- Embedding ----------------------------------------------------------------------- */
__global__ void embedding_forward_kernel(float *x, const float *table, const int *tokens,
                                         int H) {
    const float *row = table + (size_t)tokens[blockIdx.x] * H;
    float *out = x + (size_t)blockIdx.x * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) out[i] = row[i];
}

/* after a stable sort by token: block b is the head of a run of equal tokens, or exits */
__global__ void embedding_backward_kernel(float *dtable, const float *dx, const int *sorted,
                                          const int *order, int n, int H) {
    int b = blockIdx.x;
    if (b > 0 && sorted[b] == sorted[b - 1]) return;
    int end = b + 1;
    while (end < n && sorted[end] == sorted[b]) end++;
    float *row = dtable + (size_t)sorted[b] * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float acc = 0.0f;
        for (int j = b; j < end; j++) acc += dx[(size_t)order[j] * H + i];
        row[i] += acc;
    }
}

__global__ void iota_kernel(int *out, int n) {
    GRID_STRIDE(i, (size_t)n) out[i] = (int)i;
}

extern "C" int aha_cuda_embedding_forward(AhaCuda *cu, float *x, const float *table,
                                          const int *tokens, int n, int H) {
    REQUIRE_ARG(n >= 0 && H > 0, "cuda embedding_forward: bad shape %d x %d", n, H);
    if (n == 0) return 0;
    embedding_forward_kernel<<<n, 256, 0, cu->stream>>>(x, table, tokens, H);
    LAUNCH_CHECK("embedding_forward_kernel");
    return 0;
}

extern "C" int aha_cuda_embedding_backward(AhaCuda *cu, float *dtable, const float *dx,
                                           const int *tokens, int n, int H, int vocab) {
    REQUIRE_ARG(n >= 0 && H > 0 && vocab > 0, "cuda embedding_backward: bad shape %d x %d", n, H);
    if (n == 0) return 0;
    int end_bit = 1;
    while (end_bit < 31 && (1 << end_bit) < vocab) end_bit++;
    size_t temp_bytes = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, temp_bytes, (const int *)NULL, (int *)NULL,
                                               (const int *)NULL, (int *)NULL, n, 0, end_bit,
                                               cu->stream));
    char *scratch = NULL;
    size_t ints = (size_t)n * 3;
    CUDA_CHECK(cudaMallocAsync((void **)&scratch, ints * sizeof(int) + temp_bytes, cu->stream));
    int *iota = (int *)scratch, *sorted = iota + n, *order = sorted + n;
    void *temp = scratch + ints * sizeof(int);
    int rc = 0;
    iota_kernel<<<aha_cuda_blocks((size_t)n, 256), 256, 0, cu->stream>>>(iota, n);
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess)
        err = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, tokens, sorted, iota, order, n, 0,
                                              end_bit, cu->stream);
    if (err == cudaSuccess) {
        embedding_backward_kernel<<<n, 256, 0, cu->stream>>>(dtable, dx, sorted, order, n, H);
        err = cudaGetLastError();
    }
    if (err != cudaSuccess)
        rc = aha_errorf("cuda embedding_backward: %s", cudaGetErrorString(err));
    CUDA_CHECK(cudaFreeAsync(scratch, cu->stream));
    return rc;
}

/* ---- scale and the shared expert's sigmoid gate --------------------------------------- */
__global__ void scale_by_kernel(float *x, size_t n, float factor) {
    GRID_STRIDE(i, n) x[i] *= factor;
}

extern "C" int aha_cuda_scale(AhaCuda *cu, float *x, size_t n, float factor) {
    if (n == 0) return 0;
    scale_by_kernel<<<aha_cuda_blocks(n, 256), 256, 0, cu->stream>>>(x, n, factor);
    LAUNCH_CHECK("scale_by_kernel");
    return 0;
}

/* gate[t] = sigmoid(x[t] . wg); y[t] += gate[t] so[t] */
__global__ void shared_gate_forward_kernel(float *y, float *gate, const float *x, const float *wg,
                                           const float *so, int dim) {
    size_t t = blockIdx.x;
    float z = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) z += x[t * dim + i] * wg[i];
    z = aha_block_sum(z);
    float g = aha_dm_sigmoid(z);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[t * dim + i] += g * so[t * dim + i];
    if (threadIdx.x == 0) gate[t] = g;
}

/* dso[t] = gate dy (overwrites); dlogit[t] = (dy . so) gate (1 - gate) */
__global__ void shared_gate_backward_kernel(float *dso, float *dlogit, const float *dy,
                                            const float *so, const float *gate, int dim) {
    size_t t = blockIdx.x;
    float g = gate[t], dot = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        dot += dy[t * dim + i] * so[t * dim + i];
        dso[t * dim + i] = g * dy[t * dim + i];
    }
    dot = aha_block_sum(dot);
    if (threadIdx.x == 0) dlogit[t] = dot * g * (1.0f - g);
}

/* dx[t] += dlogit[t] wg */
__global__ void shared_gate_dx_kernel(float *dx, const float *dlogit, const float *wg, int n,
                                      int dim) {
    GRID_STRIDE(idx, (size_t)n * dim) dx[idx] += dlogit[idx / dim] * wg[idx % dim];
}

/* dwg[i] += sum_t dlogit[t] x[t,i]: 32 columns per block, 8 row lanes in a fixed order */
__global__ void shared_gate_dwg_kernel(float *dwg, const float *dlogit, const float *x, int n,
                                       int dim) {
    __shared__ float part[8][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    float acc = 0.0f;
    if (col < dim)
        for (int t = threadIdx.y; t < n; t += 8) acc += dlogit[t] * x[(size_t)t * dim + col];
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < dim) {
        float s = 0.0f;
        for (int y = 0; y < 8; y++) s += part[y][threadIdx.x];
        dwg[col] += s;
    }
}

extern "C" int aha_cuda_shared_gate_forward(AhaCuda *cu, float *y, float *gate, const float *x,
                                            const float *wg, const float *so, int n, int dim) {
    if (n <= 0) return 0;
    shared_gate_forward_kernel<<<n, 256, 0, cu->stream>>>(y, gate, x, wg, so, dim);
    LAUNCH_CHECK("shared_gate_forward_kernel");
    return 0;
}

extern "C" int aha_cuda_shared_gate_backward(AhaCuda *cu, float *dso, float *dlogit,
                                             const float *dy, const float *so, const float *gate,
                                             int n, int dim) {
    if (n <= 0) return 0;
    shared_gate_backward_kernel<<<n, 256, 0, cu->stream>>>(dso, dlogit, dy, so, gate, dim);
    LAUNCH_CHECK("shared_gate_backward_kernel");
    return 0;
}

extern "C" int aha_cuda_shared_gate_input_backward(AhaCuda *cu, float *dx, float *dwg,
                                                   const float *dlogit, const float *x,
                                                   const float *wg, int n, int dim) {
    if (n <= 0) return 0;
    if (dx) {
        shared_gate_dx_kernel<<<aha_cuda_blocks((size_t)n * dim, 256), 256, 0, cu->stream>>>(
            dx, dlogit, wg, n, dim);
        LAUNCH_CHECK("shared_gate_dx_kernel");
    }
    if (dwg) {
        shared_gate_dwg_kernel<<<(dim + 31) / 32, dim3(32, 8), 0, cu->stream>>>(dwg, dlogit, x, n,
                                                                                 dim);
        LAUNCH_CHECK("shared_gate_dwg_kernel");
    }
    return 0;
}
