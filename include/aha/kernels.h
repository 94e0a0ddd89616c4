/* The dense CPU kernels over host pointers, as one table per variant: aha_kernels_cpu()
 * (OpenMP, OpenBLAS sgemm, AVX2) and aha_kernels_cpu_ref() (the plain C references, each also
 * exported by name as aha_<op>_ref). They are the building stones of the "cpu" and "cpu-ref"
 * backends (aha/backend.h), which is what the model, the sampler and the optimizer call; use
 * this table only to test or benchmark a CPU kernel on its own.
 *
 * Conventions (llm.c): row-major float32; `n` rows; weights are [out, in] as in Hugging
 * Face; forward functions overwrite their outputs; backward functions ACCUMULATE (+=) into
 * every gradient they are given, and any gradient pointer may be NULL when not needed. */
#ifndef AHA_KERNELS_H
#define AHA_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AhaKernels {
    const char *name;

    /* out[n,out_dim] = in[n,in_dim] @ weight[out_dim,in_dim]^T (+ bias[out_dim] if not NULL) */
    void (*matmul_forward)(float *out, const float *in, const float *weight, const float *bias,
                           int n, int in_dim, int out_dim);
    /* din[n,in_dim] += dout @ weight; dweight[out_dim,in_dim] += dout^T @ in;
     * dbias[out_dim] += column sums of dout */
    void (*matmul_backward)(float *din, float *dweight, float *dbias, const float *dout,
                            const float *in, const float *weight, int n, int in_dim,
                            int out_dim);

    /* out[n,dim] = in * rsqrt(mean(in^2) + eps) * weight[dim]; rstd[n] (may be NULL) keeps
     * the reciprocal RMS for backward. out may equal in. */
    void (*rmsnorm_forward)(float *out, float *rstd, const float *in, const float *weight,
                            int n, int dim, float eps);
    void (*rmsnorm_backward)(float *din, float *dweight, const float *dout, const float *in,
                             const float *weight, const float *rstd, int n, int dim);

    /* Rotary embedding, half-split (element j pairs with j + head_dim/2), in place on
     * x[n, heads, head_dim] at positions pos[n]; inv_freq_i = theta^(-2i/head_dim).
     * rope_backward rotates a gradient back (the transpose, i.e. the inverse rotation). */
    void (*rope_forward)(float *x, const int *pos, int n, int heads, int head_dim, float theta);
    void (*rope_backward)(float *dx, const int *pos, int n, int heads, int head_dim,
                          float theta);

    /* Causal GQA attention of ONE query row against `len` key/value rows (the row itself is
     * the last of them): out[heads*head_dim], probs[heads*len] (scratch that receives the
     * softmax), q[heads*head_dim], key row j at k + j*kv_stride (kv_heads*head_dim values),
     * same for v. Scale head_dim^-0.5; query head h reads KV head h / (heads/kv_heads).
     * The training attention of the CPU backend runs exactly this for every row, so a
     * KV-cache decoder calling it gets the trainer's numbers. The training attention itself
     * is an AhaBackend op (aha/backend.h: no probability matrix is kept). */
    void (*attention_row_forward)(float *out, float *probs, const float *q, const float *k,
                                  const float *v, int len, int kv_stride, int heads,
                                  int kv_heads, int head_dim);
    /* out[n] = silu(gate[n]) * up[n] */
    void (*swiglu_forward)(float *out, const float *gate, const float *up, size_t n);
    void (*swiglu_backward)(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, size_t n);

    /* For each row t of logits[n,vocab] at temperature tau, with p = softmax(logits/tau):
     * logprob[t] = log p[targets[t]] (0 when targets[t] < 0), entropy[t] = -sum p log p
     * (entropy may be NULL). */
    void (*logprob_forward)(float *logprob, float *entropy, const float *logits,
                            const int *targets, int n, int vocab, float temperature);
    /* dlogits[n,vocab] = dlogprob[t] * (onehot(target) - p) / tau (OVERWRITES; rows with
     * target < 0 get zeros). */
    void (*logprob_backward)(float *dlogits, const float *dlogprob, const float *logits,
                             const int *targets, int n, int vocab, float temperature);
} AhaKernels;

const AhaKernels *aha_kernels_cpu(void);
const AhaKernels *aha_kernels_cpu_ref(void);

/* Threads for the CPU backend (OpenMP and OpenBLAS); n <= 0 keeps the current setting. */
void aha_kernels_set_threads(int n);
int aha_kernels_threads(void);

/* The plain C references (same signatures as the table entries). */
void aha_matmul_forward_ref(float *out, const float *in, const float *weight, const float *bias,
                            int n, int in_dim, int out_dim);
void aha_matmul_backward_ref(float *din, float *dweight, float *dbias, const float *dout,
                             const float *in, const float *weight, int n, int in_dim,
                             int out_dim);
void aha_rmsnorm_forward_ref(float *out, float *rstd, const float *in, const float *weight,
                             int n, int dim, float eps);
void aha_rmsnorm_backward_ref(float *din, float *dweight, const float *dout, const float *in,
                              const float *weight, const float *rstd, int n, int dim);
void aha_rope_forward_ref(float *x, const int *pos, int n, int heads, int head_dim,
                          float theta);
void aha_rope_backward_ref(float *dx, const int *pos, int n, int heads, int head_dim,
                           float theta);
void aha_attention_row_forward_ref(float *out, float *probs, const float *q, const float *k,
                                   const float *v, int len, int kv_stride, int heads,
                                   int kv_heads, int head_dim);
void aha_swiglu_forward_ref(float *out, const float *gate, const float *up, size_t n);
void aha_swiglu_backward_ref(float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, size_t n);
void aha_logprob_forward_ref(float *logprob, float *entropy, const float *logits,
                             const int *targets, int n, int vocab, float temperature);
void aha_logprob_backward_ref(float *dlogits, const float *dlogprob, const float *logits,
                              const int *targets, int n, int vocab, float temperature);

#ifdef __cplusplus
}
#endif

#endif
