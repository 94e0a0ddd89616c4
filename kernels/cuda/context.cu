/* The CUDA context: device, stream, cuBLASLt handle and workspace, and memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.cuh"

#define WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLASLt: 32 MiB covers Hopper's kernels */

const char *aha_cublas_status_name(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
    }
}

extern "C" int aha_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* no driver or no device: not an error, there are none */
        return 0;
    }
    return n;
}

static int context_open(AhaCuda *cu, int device) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        cudaGetLastError();
        return aha_errorf("cuda: no CUDA device is visible (cudaGetDeviceCount: %s)",
                          err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    }
    REQUIRE_ARG(device >= 0 && device < count, "cuda: device %d does not exist (%d visible)",
                device, count);
    cu->device = device;
    CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    snprintf(cu->description, sizeof cu->description, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name,
             prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    CUDA_CHECK(cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasLtCreate(&cu->lt));
    cu->workspace_bytes = WORKSPACE_BYTES;
    CUDA_CHECK(cudaMalloc(&cu->workspace, cu->workspace_bytes));
    CUDA_CHECK(cudaMalloc((void **)&cu->reduce, sizeof(double) * AHA_CUDA_REDUCE_SLOTS));
    return 0;
}

extern "C" AhaCuda *aha_cuda_create(int device) {
    AhaCuda *cu = (AhaCuda *)calloc(1, sizeof *cu);
    if (!cu) {
        aha_errorf("cuda: out of memory for the context");
        return NULL;
    }
    if (context_open(cu, device) != 0) {
        aha_error_prefix("cuda backend on device %d", device);
        aha_cuda_free(cu);
        return NULL;
    }
    return cu;
}

extern "C" void aha_cuda_free(AhaCuda *cu) {
    if (!cu) return;
    /* teardown: failures here have nobody to report to */
    if (cu->stream) cudaStreamSynchronize(cu->stream);
    if (cu->reduce) cudaFree(cu->reduce);
    if (cu->rope_inv_freq) cudaFree(cu->rope_inv_freq);
    if (cu->workspace) cudaFree(cu->workspace);
    if (cu->lt) cublasLtDestroy(cu->lt);
    if (cu->stream) cudaStreamDestroy(cu->stream);
    free(cu);
}

extern "C" const char *aha_cuda_describe(const AhaCuda *cu) { return cu->description; }
extern "C" void *aha_cuda_stream(const AhaCuda *cu) { return (void *)cu->stream; }

extern "C" int aha_cuda_alloc(AhaCuda *cu, void **ptr, size_t bytes) {
    (void)cu;
    *ptr = NULL;
    cudaError_t err = cudaMalloc(ptr, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        *ptr = NULL;
        return aha_errorf("cuda: cudaMalloc of %.1f MiB: %s", (double)bytes / (1 << 20),
                          cudaGetErrorString(err));
    }
    return 0;
}

extern "C" void aha_cuda_dealloc(AhaCuda *cu, void *ptr) {
    (void)cu;
    if (ptr) cudaFree(ptr);
}

extern "C" int aha_cuda_upload(AhaCuda *cu, void *dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu->stream));
    /* the host buffer may go away when we return (it is pageable memory anyway) */
    CUDA_CHECK(cudaStreamSynchronize(cu->stream));
    return 0;
}

extern "C" int aha_cuda_download(AhaCuda *cu, void *dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu->stream));
    CUDA_CHECK(cudaStreamSynchronize(cu->stream));
    return 0;
}

extern "C" int aha_cuda_copy(AhaCuda *cu, void *dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu->stream));
    return 0;
}

extern "C" int aha_cuda_zero(AhaCuda *cu, void *ptr, size_t bytes) {
    CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, cu->stream));
    return 0;
}

extern "C" int aha_cuda_sync(AhaCuda *cu) {
    CUDA_CHECK(cudaStreamSynchronize(cu->stream));
    return 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int time_runs(AhaCuda *cu, int (*fn)(void *), void *ctx, int warmup, int reps,
                     cudaEvent_t start, cudaEvent_t stop, float *ms) {
    for (int i = 0; i < warmup; i++) AHA_TRY(fn(ctx));
    CUDA_CHECK(cudaStreamSynchronize(cu->stream));
    for (int i = 0; i < reps; i++) {
        CUDA_CHECK(cudaEventRecord(start, cu->stream));
        AHA_TRY(fn(ctx));
        CUDA_CHECK(cudaEventRecord(stop, cu->stream));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
    }
    return 0;
}

extern "C" double aha_cuda_time_ms(AhaCuda *cu, int (*fn)(void *ctx), void *ctx, int warmup,
                                   int reps) {
    if (reps < 1 || reps > 1000) {
        aha_errorf("cuda time: reps %d must be in [1, 1000]", reps);
        return -1.0;
    }
    float ms[1000];
    cudaEvent_t start = NULL, stop = NULL;
    int rc = -1;
    if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess)
        aha_errorf("cuda time: cudaEventCreate failed");
    else
        rc = time_runs(cu, fn, ctx, warmup, reps, start, stop, ms);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (rc != 0) return -1.0;
    qsort(ms, (size_t)reps, sizeof *ms, cmp_float);
    return (double)ms[reps / 2];
}
