/* What every .cu file of kernels/cuda shares: the context, error checks that turn a failed
 * CUDA/cuBLAS call into an aha_errorf message naming the call, and launch helpers. */
#ifndef AHA_KERNELS_CUDA_INTERNAL_CUH
#define AHA_KERNELS_CUDA_INTERNAL_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>

extern "C" {
#include "aha/error.h"
}
#include "aha/cuda.h"
#include "kernels/cuda/device_math.h"

struct AhaCuda {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace; /* cuBLASLt workspace */
    size_t workspace_bytes;
    double *reduce;  /* [AHA_CUDA_REDUCE_SLOTS] scratch for reductions (grad norm) */
    float *rope_inv_freq; /* [AHA_CUDA_ROPE_MAX_HALF] for (rope_theta, 2 * rope_half) */
    int rope_half;
    float rope_theta;
    char description[384];
};

#define AHA_CUDA_REDUCE_SLOTS 1024
#define AHA_CUDA_ROPE_MAX_HALF 512

const char *aha_cublas_status_name(cublasStatus_t status);

/* return -1 with "file:line: call: cuda error text" when a runtime call fails */
#define CUDA_CHECK(call)                                                                       \
    do {                                                                                       \
        cudaError_t err_ = (call);                                                             \
        if (err_ != cudaSuccess)                                                               \
            return aha_errorf("%s:%d: %s: %s (%s)", __FILE__, __LINE__, #call,                 \
                              cudaGetErrorString(err_), cudaGetErrorName(err_));               \
    } while (0)

#define CUBLAS_CHECK(call)                                                                     \
    do {                                                                                       \
        cublasStatus_t st_ = (call);                                                           \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                      \
            return aha_errorf("%s:%d: %s: %s", __FILE__, __LINE__, #call,                      \
                              aha_cublas_status_name(st_));                                    \
    } while (0)

/* after a kernel launch: the launch error (bad configuration, no kernel image) */
#define LAUNCH_CHECK(what)                                                                     \
    do {                                                                                       \
        cudaError_t err_ = cudaGetLastError();                                                 \
        if (err_ != cudaSuccess)                                                               \
            return aha_errorf("%s:%d: launch of %s: %s (%s)", __FILE__, __LINE__, what,       \
                              cudaGetErrorString(err_), cudaGetErrorName(err_));               \
    } while (0)

#define REQUIRE_ARG(cond, ...)                                                                 \
    do {                                                                                       \
        if (!(cond)) return aha_errorf(__VA_ARGS__);                                           \
    } while (0)

static inline unsigned aha_cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 64u ? 65535u * 64u : (b == 0 ? 1 : b));
}

/* block-wide sums (blockDim.x a multiple of 32, <= 1024); every thread gets the result */
template <typename T> __device__ inline T aha_warp_sum(T x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
template <typename T> __device__ inline T aha_warp_max(T x) {
    for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
template <typename T> __device__ inline T aha_block_sum(T x) {
    __shared__ T part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    x = aha_warp_sum(x);
    __syncthreads(); /* part[] may still be read by an earlier call */
    if (lane == 0) part[warp] = x;
    __syncthreads();
    T s = lane < nw ? part[lane] : (T)0;
    return aha_warp_sum(s);
}
template <typename T> __device__ inline T aha_block_max(T x) {
    __shared__ T part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    x = aha_warp_max(x);
    __syncthreads();
    if (lane == 0) part[warp] = x;
    __syncthreads();
    T s = lane < nw ? part[lane] : part[0];
    return aha_warp_max(s);
}

#endif
