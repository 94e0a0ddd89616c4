/* Private to kernels/cpu/: the fast kernels defined outside cpu.c, placed in its table. */
#ifndef AHA_KERNELS_CPU_INTERNAL_H
#define AHA_KERNELS_CPU_INTERNAL_H

#include <stddef.h>

#include "aha/kernels.h"

/* pointwise.c (same contracts as the AhaKernels entries) */
void aha_cpu_rmsnorm_forward(float *out, float *rstd, const float *in, const float *weight, int n,
                             int dim, float eps);
void aha_cpu_rmsnorm_backward(float *din, float *dweight, const float *dout, const float *in,
                              const float *weight, const float *rstd, int n, int dim);
void aha_cpu_rope_forward(float *x, const int *pos, int n, int heads, int head_dim, float theta);
void aha_cpu_rope_backward(float *dx, const int *pos, int n, int heads, int head_dim, float theta);
void aha_cpu_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
void aha_cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, size_t n);

/* attention.c */
void aha_cpu_attention_row_forward(float *out, float *probs, const float *q, const float *k,
                                   const float *v, int len, int kv_stride, int heads,
                                   int kv_heads, int head_dim);
void aha_cpu_attention_forward(float *out, float *probs, const float *q, const float *k,
                               const float *v, const int *seq_start, int n_seqs, int heads,
                               int kv_heads, int head_dim);
void aha_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                                const float *q, const float *k, const float *v,
                                const float *probs, const int *seq_start, int n_seqs, int heads,
                                int kv_heads, int head_dim);

/* logprob.c */
void aha_cpu_logprob_forward(float *logprob, float *entropy, const float *logits,
                             const int *targets, int n, int vocab, float temperature);
void aha_cpu_logprob_backward(float *dlogits, const float *dlogprob, const float *logits,
                              const int *targets, int n, int vocab, float temperature);

#endif
