/* Causal GQA attention, flash-style: one warp per (query row, head) streams the keys in
 * chunks of 32 with an online softmax, so no probability matrix exists; forward keeps one
 * log-sum-exp per (row, head) and backward recomputes the probabilities from it.
 * Backward is two deterministic passes (no atomics): dq per query row, then dk/dv per key
 * row, each summing in a fixed order. The decode kernel runs the same row code against a
 * slot of the KV cache. fp32 throughout (the check mode; see docs/gpu.md for bf16). */
#include "kernels/cuda/cuda_internal.cuh"

#define WARPS 4
#define MAX_HEAD_DIM 256

/* One query row (q already in shared memory) against keys/values rows [0, len) at
 * kbase + j*stride: acc[D] (lane's dims lane + 32d), running max m and sum l. */
template <int D>
__device__ void attend_row(const float *qs, const float *kbase, const float *vbase, size_t stride,
                           int len, int head_dim, float scale, float acc[D], float *m_out,
                           float *l_out) {
    int lane = threadIdx.x & 31;
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < len; j0 += 32) {
        int j = j0 + lane;
        float s = -INFINITY;
        if (j < len) {
            const float *kj = kbase + (size_t)j * stride;
            float dot = 0.0f;
            for (int i = 0; i < head_dim; i++) dot += qs[i] * kj[i];
            s = dot * scale;
        }
        float m_new = fmaxf(m, aha_warp_max(s));
        float p = j < len ? expf(s - m_new) : 0.0f;
        float corr = expf(m - m_new);
        l = l * corr + aha_warp_sum(p);
        int n = min(32, len - j0);
#pragma unroll
        for (int d = 0; d < D; d++) acc[d] *= corr;
        for (int jj = 0; jj < n; jj++) {
            float pj = __shfl_sync(0xffffffffu, p, jj);
            const float *vj = vbase + (size_t)(j0 + jj) * stride;
#pragma unroll
            for (int d = 0; d < D; d++) acc[d] += pj * vj[lane + 32 * d];
        }
        m = m_new;
    }
    *m_out = m;
    *l_out = l;
}

template <int D>
__global__ void attention_forward_kernel(float *out, float *lse, const float *q, const float *k,
                                         const float *v, const int *seq_start, int n_seqs, int T,
                                         int heads, int kv_heads, int head_dim) {
    __shared__ float qbuf[WARPS][MAX_HEAD_DIM];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    size_t item = (size_t)blockIdx.x * WARPS + warp; /* t * heads + h */
    if (item >= (size_t)T * heads) return;
    int t = (int)(item / heads), h = (int)(item % heads);
    int s = aha_dm_find_segment(seq_start, n_seqs, t);
    int start = seq_start[s], len = t - start + 1;
    int qd = heads * head_dim, kvd = kv_heads * head_dim;
    size_t kv_off = (size_t)(h / (heads / kv_heads)) * head_dim;
    float *qs = qbuf[warp];
    for (int i = lane; i < head_dim; i += 32) qs[i] = q[(size_t)t * qd + (size_t)h * head_dim + i];
    __syncwarp();
    float acc[D] = {0}, m, l;
    attend_row<D>(qs, k + (size_t)start * kvd + kv_off, v + (size_t)start * kvd + kv_off, kvd,
                  len, head_dim, rsqrtf((float)head_dim), acc, &m, &l);
    float *o = out + (size_t)t * qd + (size_t)h * head_dim;
#pragma unroll
    for (int d = 0; d < D; d++) o[lane + 32 * d] = acc[d] / l;
    if (lse && lane == 0) lse[item] = m + logf(l);
}

/* dq for one (row, head); also keeps delta = dout . out for the dk/dv pass */
template <int D>
__global__ void attention_dq_kernel(float *dq, float *delta, const float *dout, const float *out,
                                    const float *q, const float *k, const float *v,
                                    const float *lse, const int *seq_start, int n_seqs, int T,
                                    int heads, int kv_heads, int head_dim) {
    __shared__ float qbuf[WARPS][MAX_HEAD_DIM], dbuf[WARPS][MAX_HEAD_DIM];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    size_t item = (size_t)blockIdx.x * WARPS + warp;
    if (item >= (size_t)T * heads) return;
    int t = (int)(item / heads), h = (int)(item % heads);
    int s = aha_dm_find_segment(seq_start, n_seqs, t);
    int start = seq_start[s], len = t - start + 1;
    int qd = heads * head_dim, kvd = kv_heads * head_dim;
    size_t kv_off = (size_t)(h / (heads / kv_heads)) * head_dim, row = (size_t)t * qd + (size_t)h * head_dim;
    float *qs = qbuf[warp], *ds_ = dbuf[warp];
    float dd = 0.0f;
    for (int i = lane; i < head_dim; i += 32) {
        qs[i] = q[row + i];
        ds_[i] = dout[row + i];
        dd += dout[row + i] * out[row + i];
    }
    dd = aha_warp_sum(dd);
    __syncwarp();
    float scale = rsqrtf((float)head_dim), L = lse[item], acc[D] = {0};
    const float *kb = k + (size_t)start * kvd + kv_off, *vb = v + (size_t)start * kvd + kv_off;
    for (int j0 = 0; j0 < len; j0 += 32) {
        int j = j0 + lane;
        float ds = 0.0f;
        if (j < len) {
            const float *kj = kb + (size_t)j * kvd, *vj = vb + (size_t)j * kvd;
            float sdot = 0.0f, pdot = 0.0f;
            for (int i = 0; i < head_dim; i++) {
                sdot += qs[i] * kj[i];
                pdot += ds_[i] * vj[i];
            }
            float p = expf(sdot * scale - L);
            ds = p * (pdot - dd) * scale;
        }
        int n = min(32, len - j0);
        for (int jj = 0; jj < n; jj++) {
            float dsj = __shfl_sync(0xffffffffu, ds, jj);
            const float *kj = kb + (size_t)(j0 + jj) * kvd;
#pragma unroll
            for (int d = 0; d < D; d++) acc[d] += dsj * kj[lane + 32 * d];
        }
    }
    if (dq)
#pragma unroll
        for (int d = 0; d < D; d++) dq[row + lane + 32 * d] += acc[d];
    if (lane == 0) delta[item] = dd;
}

/* dk, dv for one (key row, kv head): every later query row of the sequence, every query
 * head of the group, in order */
template <int D>
__global__ void attention_dkdv_kernel(float *dk, float *dv, const float *dout, const float *q,
                                      const float *k, const float *v, const float *lse,
                                      const float *delta, const int *seq_start, int n_seqs,
                                      int T, int heads, int kv_heads, int head_dim) {
    __shared__ float kbuf[WARPS][MAX_HEAD_DIM], vbuf[WARPS][MAX_HEAD_DIM];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    size_t item = (size_t)blockIdx.x * WARPS + warp; /* j * kv_heads + g */
    if (item >= (size_t)T * kv_heads) return;
    int j = (int)(item / kv_heads), g = (int)(item % kv_heads);
    int s = aha_dm_find_segment(seq_start, n_seqs, j);
    int end = seq_start[s + 1];
    int qd = heads * head_dim, kvd = kv_heads * head_dim, group = heads / kv_heads;
    size_t krow = (size_t)j * kvd + (size_t)g * head_dim;
    float *ks = kbuf[warp], *vs = vbuf[warp];
    for (int i = lane; i < head_dim; i += 32) {
        ks[i] = k[krow + i];
        vs[i] = v[krow + i];
    }
    __syncwarp();
    float scale = rsqrtf((float)head_dim), dk_acc[D] = {0}, dv_acc[D] = {0};
    for (int h = g * group; h < (g + 1) * group; h++) {
        for (int i0 = j; i0 < end; i0 += 32) {
            int i = i0 + lane;
            float p = 0.0f, ds = 0.0f;
            if (i < end) {
                size_t row = (size_t)i * qd + (size_t)h * head_dim;
                float sdot = 0.0f, pdot = 0.0f;
                for (int d = 0; d < head_dim; d++) {
                    sdot += q[row + d] * ks[d];
                    pdot += dout[row + d] * vs[d];
                }
                size_t ih = (size_t)i * heads + h;
                p = expf(sdot * scale - lse[ih]);
                ds = p * (pdot - delta[ih]) * scale;
            }
            int n = min(32, end - i0);
            for (int ii = 0; ii < n; ii++) {
                float pi = __shfl_sync(0xffffffffu, p, ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
                size_t row = (size_t)(i0 + ii) * qd + (size_t)h * head_dim;
#pragma unroll
                for (int d = 0; d < D; d++) {
                    dv_acc[d] += pi * dout[row + lane + 32 * d];
                    dk_acc[d] += dsi * q[row + lane + 32 * d];
                }
            }
        }
    }
#pragma unroll
    for (int d = 0; d < D; d++) {
        if (dk) dk[krow + lane + 32 * d] += dk_acc[d];
        if (dv) dv[krow + lane + 32 * d] += dv_acc[d];
    }
}

template <int D>
__global__ void decode_attention_kernel(float *out, const float *q, const float *cache_k,
                                        const float *cache_v, const int *slot, const int *pos,
                                        int n, int max_len, int heads, int kv_heads,
                                        int head_dim) {
    __shared__ float qbuf[WARPS][MAX_HEAD_DIM];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    size_t item = (size_t)blockIdx.x * WARPS + warp;
    if (item >= (size_t)n * heads) return;
    int r = (int)(item / heads), h = (int)(item % heads);
    int qd = heads * head_dim, kvd = kv_heads * head_dim;
    size_t kv_off = (size_t)(h / (heads / kv_heads)) * head_dim;
    size_t base = (size_t)slot[r] * max_len * kvd + kv_off;
    float *qs = qbuf[warp];
    for (int i = lane; i < head_dim; i += 32) qs[i] = q[(size_t)r * qd + (size_t)h * head_dim + i];
    __syncwarp();
    float acc[D] = {0}, m, l;
    attend_row<D>(qs, cache_k + base, cache_v + base, kvd, pos[r] + 1, head_dim,
                  rsqrtf((float)head_dim), acc, &m, &l);
    float *o = out + (size_t)r * qd + (size_t)h * head_dim;
#pragma unroll
    for (int d = 0; d < D; d++) o[lane + 32 * d] = acc[d] / l;
}

static int check_heads(const char *op, int heads, int kv_heads, int head_dim) {
    REQUIRE_ARG(heads > 0 && kv_heads > 0 && heads % kv_heads == 0,
                "cuda %s: heads %d must be a multiple of kv_heads %d", op, heads, kv_heads);
    REQUIRE_ARG(head_dim % 32 == 0 && head_dim >= 32 && head_dim <= MAX_HEAD_DIM,
                "cuda %s: head_dim %d must be a multiple of 32 in [32, %d]", op, head_dim,
                MAX_HEAD_DIM);
    return 0;
}

/* kernel<D> with D = head_dim / 32 */
#define DISPATCH_D(head_dim, KERNEL, grid, ...)                                                \
    switch ((head_dim) / 32) {                                                                 \
    case 1: KERNEL<1><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    case 2: KERNEL<2><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    case 3: KERNEL<3><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    case 4: KERNEL<4><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    case 5: KERNEL<5><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    case 6: KERNEL<6><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    case 7: KERNEL<7><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;                \
    default: KERNEL<8><<<grid, 32 * WARPS, 0, cu->stream>>>(__VA_ARGS__); break;               \
    }

extern "C" int aha_cuda_attention_forward(AhaCuda *cu, float *out, float *lse, const float *q,
                                          const float *k, const float *v, const int *seq_start,
                                          int n_seqs, int T, int heads, int kv_heads,
                                          int head_dim) {
    AHA_TRY(check_heads("attention_forward", heads, kv_heads, head_dim));
    REQUIRE_ARG(n_seqs >= 1 && T >= 0, "cuda attention_forward: %d sequences, %d rows", n_seqs, T);
    if (T == 0) return 0;
    unsigned grid = (unsigned)(((size_t)T * heads + WARPS - 1) / WARPS);
    DISPATCH_D(head_dim, attention_forward_kernel, grid, out, lse, q, k, v, seq_start, n_seqs, T,
               heads, kv_heads, head_dim);
    LAUNCH_CHECK("attention_forward_kernel");
    return 0;
}

extern "C" int aha_cuda_attention_backward(AhaCuda *cu, float *dq, float *dk, float *dv,
                                           const float *dout, const float *out, const float *q,
                                           const float *k, const float *v, const float *lse,
                                           const int *seq_start, int n_seqs, int T, int heads,
                                           int kv_heads, int head_dim) {
    AHA_TRY(check_heads("attention_backward", heads, kv_heads, head_dim));
    REQUIRE_ARG(n_seqs >= 1 && T >= 0, "cuda attention_backward: %d sequences, %d rows", n_seqs,
                T);
    if (T == 0 || (!dq && !dk && !dv)) return 0;
    float *delta = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&delta, sizeof(float) * (size_t)T * heads, cu->stream));
    unsigned grid_q = (unsigned)(((size_t)T * heads + WARPS - 1) / WARPS);
    DISPATCH_D(head_dim, attention_dq_kernel, grid_q, dq, delta, dout, out, q, k, v, lse,
               seq_start, n_seqs, T, heads, kv_heads, head_dim);
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess && (dk || dv)) {
        unsigned grid_kv = (unsigned)(((size_t)T * kv_heads + WARPS - 1) / WARPS);
        DISPATCH_D(head_dim, attention_dkdv_kernel, grid_kv, dk, dv, dout, q, k, v, lse, delta,
                   seq_start, n_seqs, T, heads, kv_heads, head_dim);
        err = cudaGetLastError();
    }
    cudaError_t err_free = cudaFreeAsync(delta, cu->stream);
    if (err != cudaSuccess)
        return aha_errorf("cuda attention_backward: kernel launch: %s", cudaGetErrorString(err));
    CUDA_CHECK(err_free);
    return 0;
}

extern "C" int aha_cuda_decode_attention(AhaCuda *cu, float *out, const float *q,
                                         const float *cache_k, const float *cache_v,
                                         const int *slot, const int *pos, int n, int max_len,
                                         int heads, int kv_heads, int head_dim) {
    AHA_TRY(check_heads("decode_attention", heads, kv_heads, head_dim));
    if (n <= 0) return 0;
    unsigned grid = (unsigned)(((size_t)n * heads + WARPS - 1) / WARPS);
    DISPATCH_D(head_dim, decode_attention_kernel, grid, out, q, cache_k, cache_v, slot, pos, n,
               max_len, heads, kv_heads, head_dim);
    LAUNCH_CHECK("decode_attention_kernel");
    return 0;
}

__global__ void kv_append_kernel(float *cache_k, float *cache_v, const float *k, const float *v,
                                 const int *slot, const int *pos, int n, int max_len,
                                 int kv_dim) {
    size_t total = (size_t)n * kv_dim;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        size_t r = idx / kv_dim, c = idx % kv_dim;
        size_t dst = ((size_t)slot[r] * max_len + pos[r]) * kv_dim + c;
        cache_k[dst] = k[idx];
        cache_v[dst] = v[idx];
    }
}

extern "C" int aha_cuda_kv_append(AhaCuda *cu, float *cache_k, float *cache_v, const float *k,
                                  const float *v, const int *slot, const int *pos, int n,
                                  int max_len, int kv_dim) {
    if (n <= 0) return 0;
    size_t total = (size_t)n * kv_dim;
    kv_append_kernel<<<aha_cuda_blocks(total, 256), 256, 0, cu->stream>>>(
        cache_k, cache_v, k, v, slot, pos, n, max_len, kv_dim);
    LAUNCH_CHECK("kv_append_kernel");
    return 0;
}

extern "C" int aha_cuda_kv_copy_prefix(AhaCuda *cu, float *cache, int layers, int slots,
                                       int max_len, int kv_dim, int dst, int src, int len) {
    REQUIRE_ARG(dst >= 0 && dst < slots && src >= 0 && src < slots && len >= 0 && len <= max_len,
                "cuda kv_copy_prefix: slots %d -> %d, length %d (of %d slots x %d)", src, dst,
                len, slots, max_len);
    size_t slot_floats = (size_t)max_len * kv_dim, bytes = (size_t)len * kv_dim * sizeof(float);
    size_t half = (size_t)layers * slots * slot_floats; /* keys, then values */
    if (bytes == 0) return 0;
    for (int kv = 0; kv < 2; kv++)
        for (int l = 0; l < layers; l++) {
            float *base = cache + kv * half + (size_t)l * slots * slot_floats;
            CUDA_CHECK(cudaMemcpyAsync(base + (size_t)dst * slot_floats,
                                       base + (size_t)src * slot_floats, bytes,
                                       cudaMemcpyDeviceToDevice, cu->stream));
        }
    return 0;
}
