/* The CPU backend: OpenBLAS sgemm for the products, OpenMP across rows (or sequences and
 * KV heads) for everything else. Row-wise kernels run the reference row code on each
 * thread's share, so they give the reference's numbers exactly. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "aha/kernels.h"
#include "cpu_internal.h"

/* OpenBLAS runs single-threaded and the products are split across OpenMP threads by rows
 * of the output: one thread pool, so BLAS workers never spin against OpenMP workers. */
static int split(int n, int part, int parts) { return (int)((long long)n * part / parts); }

static void matmul_forward(float *out, const float *in, const float *weight, const float *bias,
                           int n, int in_dim, int out_dim) {
    if (n <= 0) return;
#pragma omp parallel if (n >= 32)
    {
        int lo = split(n, omp_get_thread_num(), omp_get_num_threads());
        int hi = split(n, omp_get_thread_num() + 1, omp_get_num_threads());
        if (hi > lo) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, out_dim, in_dim, 1.0f,
                        in + (size_t)lo * in_dim, in_dim, weight, in_dim, 0.0f,
                        out + (size_t)lo * out_dim, out_dim);
            if (bias)
                for (int t = lo; t < hi; t++)
                    for (int o = 0; o < out_dim; o++) out[(size_t)t * out_dim + o] += bias[o];
        }
    }
}

static void matmul_backward(float *din, float *dweight, float *dbias, const float *dout,
                            const float *in, const float *weight, int n, int in_dim, int out_dim) {
    if (n <= 0) return;
#pragma omp parallel if (n >= 32)
    {
        int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        int lo = split(n, tid, nth), hi = split(n, tid + 1, nth);
        if (din && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, in_dim, out_dim, 1.0f,
                        dout + (size_t)lo * out_dim, out_dim, weight, in_dim, 1.0f,
                        din + (size_t)lo * in_dim, in_dim);
        /* the weight gradient sums over rows, so it is split by output feature instead */
        int o0 = split(out_dim, tid, nth), o1 = split(out_dim, tid + 1, nth);
        if (dweight && o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, in_dim, n, 1.0f,
                        dout + o0, out_dim, in, in_dim, 1.0f, dweight + (size_t)o0 * in_dim, in_dim);
        if (dbias)
            for (int t = 0; t < n; t++)
                for (int o = o0; o < o1; o++) dbias[o] += dout[(size_t)t * out_dim + o];
    }
}

static const AhaKernels cpu_kernels = {
    .name = "cpu",
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .rmsnorm_forward = aha_cpu_rmsnorm_forward,
    .rmsnorm_backward = aha_cpu_rmsnorm_backward,
    .rope_forward = aha_cpu_rope_forward,
    .rope_backward = aha_cpu_rope_backward,
    .attention_row_forward = aha_cpu_attention_row_forward,
    .swiglu_forward = aha_cpu_swiglu_forward,
    .swiglu_backward = aha_cpu_swiglu_backward,
    .logprob_forward = aha_cpu_logprob_forward,
    .logprob_backward = aha_cpu_logprob_backward,
};

static const AhaKernels cpu_ref_kernels = {
    .name = "cpu-ref",
    .matmul_forward = aha_matmul_forward_ref,
    .matmul_backward = aha_matmul_backward_ref,
    .rmsnorm_forward = aha_rmsnorm_forward_ref,
    .rmsnorm_backward = aha_rmsnorm_backward_ref,
    .rope_forward = aha_rope_forward_ref,
    .rope_backward = aha_rope_backward_ref,
    .attention_row_forward = aha_attention_row_forward_ref,
    .swiglu_forward = aha_swiglu_forward_ref,
    .swiglu_backward = aha_swiglu_backward_ref,
    .logprob_forward = aha_logprob_forward_ref,
    .logprob_backward = aha_logprob_backward_ref,
};

const AhaKernels *aha_kernels_cpu(void) {
    openblas_set_num_threads(1); /* see matmul_forward */
    return &cpu_kernels;
}
const AhaKernels *aha_kernels_cpu_ref(void) { return &cpu_ref_kernels; }

void aha_kernels_set_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
}

int aha_kernels_threads(void) { return omp_get_max_threads(); }
