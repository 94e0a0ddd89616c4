/* Sampling on the device, one block per row, as rollout/sample.c picks a token: weights
 * exp(logit/T - max) in double, the inverse CDF at u over the whole vocabulary in id order
 * when nothing is truncated, else over the top-k / top-p tokens sorted by weight (ties:
 * lower id first; a stable segmented sort of the rows). u comes from the sequence's Philox
 * block (device_math.h), so only token ids and log-probs ever leave the device. Prefix sums
 * are block scans, so a token can differ from the CPU's only where a cumulative sum lands
 * within rounding (~1e-16 relative) of u * mass. */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_internal.cuh"

#define THREADS 256
#define ITEMS 4

typedef cub::BlockScan<double, THREADS> Scan;
typedef cub::BlockReduce<int, THREADS> ReduceInt;

struct MinInt {
    __device__ int operator()(int a, int b) const { return a < b ? a : b; }
};

/* First index i < count whose inclusive prefix sum of weight(i) exceeds threshold (or
 * reaches it when at_least); -1 when none. *prefix gets that prefix sum (or the total). */
template <typename Weight>
__device__ int first_prefix_over(Weight weight, int count, double threshold, bool at_least,
                                 double *prefix) {
    __shared__ typename Scan::TempStorage scan_temp;
    __shared__ typename ReduceInt::TempStorage reduce_temp;
    __shared__ int found_idx;
    __shared__ double found_prefix, chunk_total_s;
    double running = 0.0;
    for (int base = 0; base < count; base += THREADS * ITEMS) {
        double v[ITEMS], mine = 0.0;
#pragma unroll
        for (int q = 0; q < ITEMS; q++) {
            int idx = base + threadIdx.x * ITEMS + q;
            v[q] = idx < count ? weight(idx) : 0.0;
            mine += v[q];
        }
        double excl, total;
        Scan(scan_temp).ExclusiveSum(mine, excl, total);
        double cum = running + excl;
        int local = INT_MAX;
        double local_prefix = 0.0;
#pragma unroll
        for (int q = 0; q < ITEMS; q++) {
            int idx = base + threadIdx.x * ITEMS + q;
            cum += v[q];
            bool over = at_least ? cum >= threshold : cum > threshold;
            if (idx < count && over && local == INT_MAX) {
                local = idx;
                local_prefix = cum;
            }
        }
        int first = ReduceInt(reduce_temp).Reduce(local, MinInt());
        if (threadIdx.x == 0) {
            found_idx = first;
            chunk_total_s = total;
        }
        __syncthreads();
        if (found_idx != INT_MAX) {
            if (local == found_idx) found_prefix = local_prefix;
            __syncthreads();
            *prefix = found_prefix;
            int result = found_idx;
            __syncthreads(); /* the shared slots are reused by the next call */
            return result;
        }
        running += chunk_total_s;
        __syncthreads();
    }
    *prefix = running;
    __syncthreads();
    return -1;
}

struct LogitWeight {
    const float *z;
    float inv_t, max;
    __device__ double operator()(int i) const { return exp((double)(z[i] * inv_t - max)); }
};

struct ArrayWeight {
    const double *w;
    __device__ double operator()(int i) const { return w[i]; }
};

/* max of z*inv_t, and sum of exp(z*inv_t - max) in double; argmax (ties: lowest id) */
__device__ void row_stats(const float *z, int vocab, float inv_t, float *max_out, double *sum_out,
                          int *argmax_out) {
    __shared__ float best_v[THREADS];
    __shared__ int best_i[THREADS];
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = threadIdx.x; i < vocab; i += THREADS) {
        float y = z[i] * inv_t;
        if (y > bv || (y == bv && i < bi)) {
            bv = y;
            bi = i;
        }
    }
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float ov = best_v[threadIdx.x + s];
            int oi = best_i[threadIdx.x + s];
            if (ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x])) {
                best_v[threadIdx.x] = ov;
                best_i[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    float max = best_v[0];
    double sum = 0.0;
    for (int i = threadIdx.x; i < vocab; i += THREADS) sum += exp((double)(z[i] * inv_t - max));
    sum = aha_block_sum(sum);
    *max_out = max;
    *sum_out = sum;
    *argmax_out = best_i[0];
}

/* greedy, or the untruncated inverse CDF; also writes the sort keys when truncating */
__global__ void sample_rows_kernel(int32_t *tokens, float *logprobs, const float *logits,
                                   const int *rows, int vocab, float temperature, int truncate, uint64_t seed,
                                   const uint64_t *stream, const uint64_t *position,
                                   double *keys, int *ids, double *row_total, float *row_max) {
    size_t r = blockIdx.x;
    const float *z = logits + (size_t)(rows ? rows[r] : (int)r) * vocab;
    float inv_t = temperature > 0.0f ? 1.0f / temperature : 1.0f, max;
    double total;
    int amax;
    row_stats(z, vocab, inv_t, &max, &total, &amax);
    if (temperature <= 0.0f) {
        if (threadIdx.x == 0) {
            tokens[r] = amax;
            logprobs[r] = (float)((double)(z[amax] - max) - log(total));
        }
        return;
    }
    if (truncate) {
        for (int i = threadIdx.x; i < vocab; i += THREADS) {
            keys[r * vocab + i] = exp((double)(z[i] * inv_t - max));
            ids[r * vocab + i] = i;
        }
        if (threadIdx.x == 0) {
            row_total[r] = total;
            row_max[r] = max;
        }
        return;
    }
    double u = aha_dm_sample_uniform(seed, stream[r], position[r]), prefix;
    LogitWeight w = {z, inv_t, max};
    int token = first_prefix_over(w, vocab, u * total, false, &prefix);
    if (token < 0) token = vocab - 1; /* rounding left the target at the very end */
    if (threadIdx.x == 0) {
        tokens[r] = token;
        logprobs[r] = (float)((double)(z[token] * inv_t - max) - log(total));
    }
}

/* after the sort: top-k, then top-p, then the inverse CDF over the kept tokens */
__global__ void sample_sorted_kernel(int32_t *tokens, float *logprobs, const float *logits,
                                     const int *rows, int vocab, float temperature, int top_k,
                                     float top_p,
                                     uint64_t seed, const uint64_t *stream,
                                     const uint64_t *position, const double *sorted_w,
                                     const int *sorted_id, const double *row_total,
                                     const float *row_max) {
    size_t r = blockIdx.x;
    const double *w = sorted_w + r * vocab;
    const int *id = sorted_id + r * vocab;
    int kept = (top_k > 0 && top_k < vocab) ? top_k : vocab;
    ArrayWeight aw = {w};
    double kept_mass;
    first_prefix_over(aw, kept, INFINITY, false, &kept_mass); /* the sum of the kept weights */
    if (top_p < 1.0f) {
        double need = (double)top_p * kept_mass, cumulative;
        int last = first_prefix_over(aw, kept, need, true, &cumulative);
        int nucleus = last < 0 ? kept : last + 1;
        kept = nucleus > 0 ? nucleus : 1;
        kept_mass = cumulative > 0.0 ? cumulative : w[0];
    }
    double u = aha_dm_sample_uniform(seed, stream[r], position[r]), prefix;
    int pick = first_prefix_over(aw, kept, u * kept_mass, false, &prefix);
    int token = id[pick < 0 ? kept - 1 : pick];
    if (threadIdx.x == 0) {
        float inv_t = 1.0f / temperature;
        tokens[r] = token;
        logprobs[r] =
            (float)((double)(logits[(size_t)(rows ? rows[r] : (int)r) * vocab + token] * inv_t -
                             row_max[r]) -
                    log(row_total[r]));
    }
}

__global__ void row_offsets_kernel(int *offsets, int n, int vocab) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) offsets[i] = i * vocab;
}

typedef struct {
    double *keys, *sorted_keys, *row_total;
    int *ids, *sorted_ids, *offsets;
    float *row_max;
    void *temp;
    size_t temp_bytes, total;
} SampleScratch;

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

static SampleScratch scratch_layout(char *base, int n, int vocab) {
    SampleScratch s;
    size_t items = (size_t)n * vocab, off = 0;
    s.temp_bytes = 0;
    cub::DeviceSegmentedSort::StableSortPairsDescending(
        NULL, s.temp_bytes, (const double *)NULL, (double *)NULL, (const int *)NULL, (int *)NULL,
        (int)items, n, (const int *)NULL, (const int *)NULL);
#define CARVE(field, type, count)                                                              \
    s.field = (type *)(base ? base + off : NULL);                                              \
    off += align256(sizeof(type) * (size_t)(count));
    CARVE(keys, double, items)
    CARVE(sorted_keys, double, items)
    CARVE(ids, int, items)
    CARVE(sorted_ids, int, items)
    CARVE(row_total, double, n)
    CARVE(row_max, float, n)
    CARVE(offsets, int, n + 1)
#undef CARVE
    s.temp = base ? base + off : NULL;
    s.total = off + s.temp_bytes;
    return s;
}

extern "C" size_t aha_cuda_sample_scratch_bytes(int n, int vocab) {
    if (n <= 0 || vocab <= 0) return 0;
    return scratch_layout(NULL, n, vocab).total;
}

extern "C" int aha_cuda_sample(AhaCuda *cu, int32_t *tokens, float *logprobs, const float *logits,
                               const int *rows, int n, int vocab, float temperature, int top_k,
                               float top_p,
                               uint64_t seed, const uint64_t *stream, const uint64_t *position,
                               void *scratch) {
    REQUIRE_ARG(n >= 0 && vocab > 0, "cuda sample: bad shape %d x %d", n, vocab);
    REQUIRE_ARG(top_k >= 0 && top_p > 0.0f && top_p <= 1.0f,
                "cuda sample: top_k %d must be >= 0 and top_p %g in (0, 1]", top_k, (double)top_p);
    REQUIRE_ARG((size_t)n * vocab < (size_t)INT_MAX, "cuda sample: %d x %d logits exceed 2^31",
                n, vocab);
    if (n == 0) return 0;
    int truncate = temperature > 0.0f && ((top_k > 0 && top_k < vocab) || top_p < 1.0f);
    REQUIRE_ARG(!truncate || scratch != NULL, "cuda sample: top-k/top-p needs scratch");
    SampleScratch s = scratch_layout((char *)scratch, n, vocab);
    sample_rows_kernel<<<n, THREADS, 0, cu->stream>>>(tokens, logprobs, logits, rows, vocab, temperature,
                                                      truncate, seed, stream, position, s.keys,
                                                      s.ids, s.row_total, s.row_max);
    LAUNCH_CHECK("sample_rows_kernel");
    if (!truncate) return 0;
    row_offsets_kernel<<<(n + 256) / 256, 256, 0, cu->stream>>>(s.offsets, n, vocab);
    LAUNCH_CHECK("row_offsets_kernel");
    CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairsDescending(
        s.temp, s.temp_bytes, s.keys, s.sorted_keys, s.ids, s.sorted_ids, n * vocab, n, s.offsets,
        s.offsets + 1, cu->stream));
    sample_sorted_kernel<<<n, THREADS, 0, cu->stream>>>(tokens, logprobs, logits, rows, vocab,
                                                        temperature, top_k, top_p, seed, stream,
                                                        position, s.sorted_keys, s.sorted_ids,
                                                        s.row_total, s.row_max);
    LAUNCH_CHECK("sample_sorted_kernel");
    return 0;
}
