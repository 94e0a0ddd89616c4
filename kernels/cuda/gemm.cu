/* Dense products through cuBLASLt. Row-major A[n, in] @ W[out, in]^T is the column-major
 * product W^T-view: C(out x n) = op(W)(out x in) * X(in x n), so each row-major call maps to
 * one column-major cuBLASLt matmul without copies.
 * fp32 uses CUBLAS_COMPUTE_32F (TF32 off: full fp32 products, as the CPU); bf16 uses bf16
 * operands with CUBLAS_COMPUTE_32F accumulation. */
#include "kernels/cuda/cuda_internal.cuh"

typedef struct {
    cublasOperation_t transa, transb;
    int m, n, k;
    const void *A;
    int lda;
    const void *B;
    int ldb;
    void *D;
    int ldd;
    cudaDataType_t ab_type, d_type;
    float beta;
    const float *bias; /* [m], fp32, added per row of the column-major result */
} LtProduct;

static int lt_layout(cublasLtMatrixLayout_t *layout, cudaDataType_t type, int rows, int cols,
                     int ld) {
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(layout, type, (uint64_t)rows, (uint64_t)cols, ld));
    return 0;
}

static int lt_run(AhaCuda *cu, cublasLtMatmulDesc_t desc, const LtProduct *p,
                  cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                  cublasLtMatrixLayout_t ld) {
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &cu->workspace_bytes,
        sizeof cu->workspace_bytes);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(cu->lt, desc, la, lb, ld, ld, pref, 1, &heur, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS)
        return aha_errorf("cublasLtMatmulAlgoGetHeuristic (m %d, n %d, k %d): %s", p->m, p->n,
                          p->k, aha_cublas_status_name(st));
    if (found == 0)
        return aha_errorf("cublasLtMatmulAlgoGetHeuristic: no algorithm for m %d, n %d, k %d",
                          p->m, p->n, p->k);
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(cu->lt, desc, &alpha, p->A, la, p->B, lb, &p->beta, p->D, ld,
                                p->D, ld, &heur.algo, cu->workspace, cu->workspace_bytes,
                                cu->stream));
    return 0;
}

static int lt_product(AhaCuda *cu, const LtProduct *p) {
    if (p->m == 0 || p->n == 0) return 0;
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    int rc = -1;
    cublasStatus_t st = cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) {
        aha_errorf("cublasLtMatmulDescCreate: %s", aha_cublas_status_name(st));
        goto done;
    }
    st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &p->transa,
                                        sizeof p->transa);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &p->transb,
                                            sizeof p->transb);
    if (st == CUBLAS_STATUS_SUCCESS && p->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bias_type = CUDA_R_32F;
        st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                &bias_type, sizeof bias_type);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                &p->bias, sizeof p->bias);
    }
    if (st != CUBLAS_STATUS_SUCCESS) {
        aha_errorf("cublasLtMatmulDescSetAttribute: %s", aha_cublas_status_name(st));
        goto done;
    }
    {
        int a_rows = p->transa == CUBLAS_OP_N ? p->m : p->k;
        int a_cols = p->transa == CUBLAS_OP_N ? p->k : p->m;
        int b_rows = p->transb == CUBLAS_OP_N ? p->k : p->n;
        int b_cols = p->transb == CUBLAS_OP_N ? p->n : p->k;
        if (lt_layout(&la, p->ab_type, a_rows, a_cols, p->lda) != 0 ||
            lt_layout(&lb, p->ab_type, b_rows, b_cols, p->ldb) != 0 ||
            lt_layout(&ld, p->d_type, p->m, p->n, p->ldd) != 0)
            goto done;
    }
    rc = lt_run(cu, desc, p, la, lb, ld);
done:
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (ld) cublasLtMatrixLayoutDestroy(ld);
    if (desc) cublasLtMatmulDescDestroy(desc);
    return rc;
}

/* dbias[o] += sum_t dout[t, o]: one thread per column, rows in order (deterministic) */
__global__ void column_sums_kernel(float *dbias, const float *dout, int n, int cols) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= cols) return;
    float acc = 0.0f;
    for (int t = 0; t < n; t++) acc += dout[(size_t)t * cols + o];
    dbias[o] += acc;
}

extern "C" int aha_cuda_matmul_forward(AhaCuda *cu, float *out, const float *in,
                                       const float *weight, const float *bias, int n, int in_dim,
                                       int out_dim) {
    REQUIRE_ARG(n >= 0 && in_dim > 0 && out_dim > 0, "cuda matmul_forward: bad shape %d x %d x %d",
                n, in_dim, out_dim);
    LtProduct p = {CUBLAS_OP_T, CUBLAS_OP_N, out_dim, n, in_dim, weight, in_dim, in, in_dim,
                   out, out_dim, CUDA_R_32F, CUDA_R_32F, 0.0f, bias};
    if (lt_product(cu, &p) != 0) return aha_error_prefix("cuda matmul_forward");
    return 0;
}

extern "C" int aha_cuda_matmul_backward(AhaCuda *cu, float *din, float *dweight, float *dbias,
                                        const float *dout, const float *in, const float *weight,
                                        int n, int in_dim, int out_dim) {
    REQUIRE_ARG(n >= 0 && in_dim > 0 && out_dim > 0,
                "cuda matmul_backward: bad shape %d x %d x %d", n, in_dim, out_dim);
    if (n == 0) return 0;
    if (din) { /* din^T(in x n) += W(in x out, col-major view) * dout^T(out x n) */
        LtProduct p = {CUBLAS_OP_N, CUBLAS_OP_N, in_dim, n, out_dim, weight, in_dim, dout,
                       out_dim, din, in_dim, CUDA_R_32F, CUDA_R_32F, 1.0f, NULL};
        if (lt_product(cu, &p) != 0) return aha_error_prefix("cuda matmul_backward (din)");
    }
    if (dweight) { /* dW^T(in x out) += in^T-view(in x n) * dout(n x out) */
        LtProduct p = {CUBLAS_OP_N, CUBLAS_OP_T, in_dim, out_dim, n, in, in_dim, dout, out_dim,
                       dweight, in_dim, CUDA_R_32F, CUDA_R_32F, 1.0f, NULL};
        if (lt_product(cu, &p) != 0) return aha_error_prefix("cuda matmul_backward (dweight)");
    }
    if (dbias) {
        column_sums_kernel<<<aha_cuda_blocks((size_t)out_dim, 256), 256, 0, cu->stream>>>(
            dbias, dout, n, out_dim);
        LAUNCH_CHECK("column_sums_kernel");
    }
    return 0;
}

extern "C" int aha_cuda_matmul_forward_bf16(AhaCuda *cu, AhaBf16 *out, const AhaBf16 *in,
                                            const AhaBf16 *weight, int n, int in_dim,
                                            int out_dim) {
    REQUIRE_ARG(n >= 0 && in_dim > 0 && out_dim > 0,
                "cuda matmul_forward_bf16: bad shape %d x %d x %d", n, in_dim, out_dim);
    LtProduct p = {CUBLAS_OP_T, CUBLAS_OP_N, out_dim, n, in_dim, weight, in_dim, in, in_dim,
                   out, out_dim, CUDA_R_16BF, CUDA_R_16BF, 0.0f, NULL};
    if (lt_product(cu, &p) != 0) return aha_error_prefix("cuda matmul_forward_bf16");
    return 0;
}

__global__ void f32_to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void bf16_to_f32_kernel(float *out, const __nv_bfloat16 *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __bfloat162float(in[i]);
}

extern "C" int aha_cuda_f32_to_bf16(AhaCuda *cu, AhaBf16 *out, const float *in, size_t n) {
    if (n == 0) return 0;
    f32_to_bf16_kernel<<<aha_cuda_blocks(n, 256), 256, 0, cu->stream>>>((__nv_bfloat16 *)out, in,
                                                                         n);
    LAUNCH_CHECK("f32_to_bf16_kernel");
    return 0;
}

extern "C" int aha_cuda_bf16_to_f32(AhaCuda *cu, float *out, const AhaBf16 *in, size_t n) {
    if (n == 0) return 0;
    bf16_to_f32_kernel<<<aha_cuda_blocks(n, 256), 256, 0, cu->stream>>>(
        out, (const __nv_bfloat16 *)in, n);
    LAUNCH_CHECK("bf16_to_f32_kernel");
    return 0;
}
