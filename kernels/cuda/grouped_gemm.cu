/* Grouped expert GEMM over the permuted rows of policy/moe.c: expert e owns rows
 * [expert_off[e], expert_off[e+1]) and its weight W_e = weight + e*N*K ([N, K], HF layout).
 * The offsets stay on the device: a tiny kernel turns them into per-expert tile offsets and
 * each block of one launch finds its (expert, row tile) by binary search (vLLM's
 * moe_align_block_size and ggml's mm_ids_helper do the same), so no host sync and one
 * launch for all experts. Blocks past the last tile exit at once.
 * fp32: register-blocked SIMT tiles (exact fp32 products, the check mode).
 * bf16: WMMA tensor-core tiles with fp32 accumulation. */
#include <mma.h>

#include "kernels/cuda/cuda_internal.cuh"

/* tile_off[e] = sum over e' < e of ceil(rows_e' / bm) */
__global__ void tile_offsets_kernel(int *tile_off, const int *expert_off, int E, int bm) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        int acc = 0;
        for (int e = 0; e < E; e++) {
            tile_off[e] = acc;
            acc += (expert_off[e + 1] - expert_off[e] + bm - 1) / bm;
        }
        tile_off[E] = acc;
    }
}

/* ---- fp32 tiles ---------------------------------------------------------------------- */
#define BM 64
#define BN 64
#define BK 16

/* C[m0.., n0..] (= or +=) sum_k A(m,k) B(k,n) for one 64x64 tile, 256 threads.
 * A(m,k) = AT ? A[k*lda+m] : A[m*lda+k];  B(k,n) = BT ? B[n*ldb+k] : B[k*ldb+n]. */
template <bool AT, bool BT>
__device__ void tile_f32(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                         int M, int N, int K, int m0, int n0, bool accumulate) {
    __shared__ float As[BK][BM + 4], Bs[BK][BN + 4];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {{0}};
    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int i = 0; i < 4; i++) {
            int idx = threadIdx.x + i * 256;
            int mm = AT ? idx % BM : idx / BK, ka = AT ? idx / BM : idx % BK;
            int m = m0 + mm, kk = k0 + ka;
            As[ka][mm] = (m < M && kk < K) ? (AT ? A[(size_t)kk * lda + m] : A[(size_t)m * lda + kk])
                                           : 0.0f;
            int nn = BT ? idx / BK : idx % BN, kb = BT ? idx % BK : idx / BN;
            int n = n0 + nn, kn = k0 + kb;
            Bs[kb][nn] = (n < N && kn < K) ? (BT ? B[(size_t)n * ldb + kn] : B[(size_t)kn * ldb + n])
                                           : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = As[kk][ty * 4 + i];
                b[i] = Bs[kk][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        int m = m0 + ty * 4 + i;
        if (m >= M) continue;
        for (int j = 0; j < 4; j++) {
            int n = n0 + tx * 4 + j;
            if (n >= N) continue;
            float *c = C + (size_t)m * ldc + n;
            *c = accumulate ? *c + acc[i][j] : acc[i][j];
        }
    }
}

/* forward: out[rows_e, N] = x[rows_e, K] @ W_e^T */
__global__ void grouped_forward_f32_kernel(float *out, const float *x, const float *w,
                                           const int *expert_off, const int *tile_off, int E,
                                           int K, int N) {
    int tile = blockIdx.y;
    if (tile >= tile_off[E]) return;
    int e = aha_dm_find_segment(tile_off, E, tile);
    int r0 = expert_off[e], rows = expert_off[e + 1] - r0;
    tile_f32<false, true>(out + (size_t)r0 * N, N, x + (size_t)r0 * K, K, w + (size_t)e * N * K,
                          K, rows, N, K, (tile - tile_off[e]) * BM, blockIdx.x * BN, false);
}

/* dx[rows_e, K] += dout[rows_e, N] @ W_e */
__global__ void grouped_dx_f32_kernel(float *dx, const float *dout, const float *w,
                                      const int *expert_off, const int *tile_off, int E, int K,
                                      int N) {
    int tile = blockIdx.y;
    if (tile >= tile_off[E]) return;
    int e = aha_dm_find_segment(tile_off, E, tile);
    int r0 = expert_off[e], rows = expert_off[e + 1] - r0;
    tile_f32<false, false>(dx + (size_t)r0 * K, K, dout + (size_t)r0 * N, N,
                           w + (size_t)e * N * K, K, rows, K, N, (tile - tile_off[e]) * BM,
                           blockIdx.x * BN, true);
}

/* dW_e[N, K] += dout[rows_e, N]^T @ x[rows_e, K]: the expert's rows are the inner dimension */
__global__ void grouped_dw_f32_kernel(float *dw, const float *dout, const float *x,
                                      const int *expert_off, int K, int N) {
    int e = blockIdx.z;
    int r0 = expert_off[e], rows = expert_off[e + 1] - r0;
    if (rows == 0) return;
    tile_f32<true, false>(dw + (size_t)e * N * K, K, dout + (size_t)r0 * N, N,
                          x + (size_t)r0 * K, K, N, K, rows, blockIdx.y * BM, blockIdx.x * BN,
                          true);
}

static int tile_offsets(AhaCuda *cu, int **tile_off, const int *expert_off, int E, int bm) {
    CUDA_CHECK(cudaMallocAsync((void **)tile_off, sizeof(int) * (size_t)(E + 1), cu->stream));
    tile_offsets_kernel<<<1, 32, 0, cu->stream>>>(*tile_off, expert_off, E, bm);
    LAUNCH_CHECK("tile_offsets_kernel");
    return 0;
}

static int check_shape(const char *op, int S, int E, int K, int N) {
    REQUIRE_ARG(S >= 0 && E > 0 && K > 0 && N > 0, "cuda %s: bad shape S %d, E %d, K %d, N %d",
                op, S, E, K, N);
    return 0;
}

extern "C" int aha_cuda_grouped_matmul_forward(AhaCuda *cu, float *out, const float *x,
                                               const float *weight, const int *expert_off, int S,
                                               int E, int K, int N) {
    AHA_TRY(check_shape("grouped_matmul_forward", S, E, K, N));
    if (S == 0) return 0;
    int *tile_off = NULL;
    AHA_TRY(tile_offsets(cu, &tile_off, expert_off, E, BM));
    dim3 grid((N + BN - 1) / BN, (S + BM - 1) / BM + E); /* at most this many row tiles */
    grouped_forward_f32_kernel<<<grid, 256, 0, cu->stream>>>(out, x, weight, expert_off, tile_off,
                                                             E, K, N);
    cudaError_t err = cudaGetLastError();
    CUDA_CHECK(cudaFreeAsync(tile_off, cu->stream));
    if (err != cudaSuccess)
        return aha_errorf("cuda grouped_matmul_forward: launch: %s", cudaGetErrorString(err));
    return 0;
}

extern "C" int aha_cuda_grouped_matmul_backward(AhaCuda *cu, float *dx, float *dweight,
                                                const float *dout, const float *x,
                                                const float *weight, const int *expert_off,
                                                int S, int E, int K, int N) {
    AHA_TRY(check_shape("grouped_matmul_backward", S, E, K, N));
    if (S == 0) return 0;
    cudaError_t err = cudaSuccess;
    if (dx) {
        int *tile_off = NULL;
        AHA_TRY(tile_offsets(cu, &tile_off, expert_off, E, BM));
        dim3 grid((K + BN - 1) / BN, (S + BM - 1) / BM + E);
        grouped_dx_f32_kernel<<<grid, 256, 0, cu->stream>>>(dx, dout, weight, expert_off,
                                                            tile_off, E, K, N);
        err = cudaGetLastError();
        CUDA_CHECK(cudaFreeAsync(tile_off, cu->stream));
    }
    if (err == cudaSuccess && dweight) {
        dim3 grid((K + BN - 1) / BN, (N + BM - 1) / BM, E);
        grouped_dw_f32_kernel<<<grid, 256, 0, cu->stream>>>(dweight, dout, x, expert_off, K, N);
        err = cudaGetLastError();
    }
    if (err != cudaSuccess)
        return aha_errorf("cuda grouped_matmul_backward: launch: %s", cudaGetErrorString(err));
    return 0;
}

/* ---- bf16 tensor-core tiles (WMMA 16x16x16, fp32 accumulate) ------------------------- */
#define TBM 128
#define TBN 128
#define TBK 32
#define TPAD 8 /* bf16 elements of row padding: 16 bytes, against bank conflicts */

using namespace nvcuda;

/* 8 warps: warp (wm, wn) owns rows wm*32.. and columns wn*64.. of the 128x128 tile */
__global__ void __launch_bounds__(256)
grouped_forward_bf16_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                            const int *expert_off, const int *tile_off, int E, int K, int N) {
    /* wmma loads and stores want 256-bit aligned tile pointers: rows of 80 bytes keep every
     * 16-row fragment start at a multiple of 1280 bytes from an aligned base */
    __shared__ __align__(128) __nv_bfloat16 As[TBM][TBK + TPAD];
    __shared__ __align__(128) __nv_bfloat16 Bs[TBN][TBK + TPAD];
    __shared__ __align__(128) float stage[8][16 * 16];
    int tile = blockIdx.y;
    if (tile >= tile_off[E]) return;
    int e = aha_dm_find_segment(tile_off, E, tile);
    int r0 = expert_off[e], rows = expert_off[e + 1] - r0;
    int m0 = (tile - tile_off[e]) * TBM, n0 = blockIdx.x * TBN;
    const __nv_bfloat16 *A = x + (size_t)r0 * K, *B = w + (size_t)e * N * K;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wm = warp >> 1, wn = warp & 1;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (int k0 = 0; k0 < K; k0 += TBK) {
        /* 128 rows x 32 k = 512 vectors of 8 bf16 per operand: 2 per thread each */
        for (int i = 0; i < 2; i++) {
            int v = threadIdx.x + i * 256, row = v / 4, kv = (v % 4) * 8;
            int m = m0 + row, n = n0 + row, kk = k0 + kv;
            uint4 a = (m < rows && kk < K) ? *(const uint4 *)(A + (size_t)m * K + kk) : zero;
            uint4 b = (n < N && kk < K) ? *(const uint4 *)(B + (size_t)n * K + kk) : zero;
            *(uint4 *)&As[row][kv] = a;
            *(uint4 *)&Bs[row][kv] = b;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[4];
            for (int i = 0; i < 2; i++)
                wmma::load_matrix_sync(fa[i], &As[wm * 32 + i * 16][kk], TBK + TPAD);
            for (int j = 0; j < 4; j++)
                wmma::load_matrix_sync(fb[j], &Bs[wn * 64 + j * 16][kk], TBK + TPAD);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
    float *st = stage[warp];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            wmma::store_matrix_sync(st, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int idx = lane; idx < 256; idx += 32) {
                int m = m0 + wm * 32 + i * 16 + idx / 16, n = n0 + wn * 64 + j * 16 + idx % 16;
                if (m < rows && n < N) out[(size_t)(r0 + m) * N + n] = __float2bfloat16_rn(st[idx]);
            }
            __syncwarp();
        }
}

extern "C" int aha_cuda_grouped_matmul_forward_bf16(AhaCuda *cu, AhaBf16 *out, const AhaBf16 *x,
                                                    const AhaBf16 *weight, const int *expert_off,
                                                    int S, int E, int K, int N) {
    AHA_TRY(check_shape("grouped_matmul_forward_bf16", S, E, K, N));
    REQUIRE_ARG(K % 8 == 0, "cuda grouped_matmul_forward_bf16: K %d must be a multiple of 8", K);
    if (S == 0) return 0;
    int *tile_off = NULL;
    AHA_TRY(tile_offsets(cu, &tile_off, expert_off, E, TBM));
    dim3 grid((N + TBN - 1) / TBN, (S + TBM - 1) / TBM + E);
    grouped_forward_bf16_kernel<<<grid, 256, 0, cu->stream>>>(
        (__nv_bfloat16 *)out, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)weight, expert_off,
        tile_off, E, K, N);
    cudaError_t err = cudaGetLastError();
    CUDA_CHECK(cudaFreeAsync(tile_off, cu->stream));
    if (err != cudaSuccess)
        return aha_errorf("cuda grouped_matmul_forward_bf16: launch: %s", cudaGetErrorString(err));
    return 0;
}
