/* Private to kernels/cpu/: the fast kernels defined outside cpu.c, placed in its table. */
#ifndef AHA_KERNELS_CPU_INTERNAL_H
#define AHA_KERNELS_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aha/backend.h"
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

/* attention.c; aha_cpu_attention_row: out NULL computes only probs; lse [heads] NULL ok */
void aha_cpu_attention_row(float *out, float *probs, float *lse, const float *q, const float *k,
                           const float *v, int len, int kv_stride, int heads, int kv_heads,
                           int head_dim);
void aha_cpu_attention_forward_lse(AhaBackend *be, float *out, float *lse, const float *q,
                                   const float *k, const float *v, const AhaSeqs *seqs,
                                   int heads, int kv_heads, int head_dim);
void aha_cpu_attention_backward_recompute(AhaBackend *be, float *dq, float *dk, float *dv,
                                          const float *dout, const float *q, const float *k,
                                          const float *v, const AhaSeqs *seqs, int heads,
                                          int kv_heads, int head_dim);
void aha_cpu_attention_row_forward(float *out, float *probs, const float *q, const float *k,
                                   const float *v, int len, int kv_stride, int heads,
                                   int kv_heads, int head_dim);
/* logprob.c */
void aha_cpu_logprob_forward(float *logprob, float *entropy, const float *logits,
                             const int *targets, int n, int vocab, float temperature);
void aha_cpu_logprob_backward(float *dlogits, const float *dlogprob, const float *logits,
                              const int *targets, int n, int vocab, float temperature);

/* ---- the AhaBackend entries (contracts in aha/backend.h) ---------------------------- */

/* backend.c: host memory, shared by "cpu" and "cpu-ref"; backend_cpu.c: the contexts */
void *aha_host_alloc(AhaBackend *be, size_t bytes);
void aha_host_free(AhaBackend *be, void *ptr);
int aha_host_upload(AhaBackend *be, void *dst, const void *src, size_t bytes);
int aha_host_download(AhaBackend *be, void *dst, const void *src, size_t bytes);
void aha_host_copy(AhaBackend *be, void *dst, const void *src, size_t bytes);
void aha_host_zero(AhaBackend *be, void *dst, size_t bytes);
int aha_host_sync(AhaBackend *be);
AhaBackend *aha_cpu_backend_create(const AhaBackendOptions *options, int reference);

/* ref_attention.c */
void aha_attention_forward_lse_ref(AhaBackend *be, float *out, float *lse, const float *q,
                                   const float *k, const float *v, const AhaSeqs *seqs,
                                   int heads, int kv_heads, int head_dim);
void aha_attention_backward_lse_ref(AhaBackend *be, float *dq, float *dk, float *dv,
                                    const float *dout, const float *q, const float *k,
                                    const float *v, const float *out, const float *lse,
                                    const AhaSeqs *seqs, int heads, int kv_heads, int head_dim);

/* decode.c */
void aha_kv_append_ref(AhaBackend *be, float *cache, const AhaKvLayout *kv, int layer,
                       const float *k, const float *v, const int *slots, const int *pos, int n);
void aha_kv_copy_prefix_ref(AhaBackend *be, float *cache, const AhaKvLayout *kv, int dst,
                            int src, int len);
void aha_cpu_attention_decode(AhaBackend *be, float *out, const float *q, const float *cache,
                              const AhaKvLayout *kv, int layer, const int *slots, const int *pos,
                              int n, int heads, int kv_heads, int head_dim);
void aha_attention_decode_ref(AhaBackend *be, float *out, const float *q, const float *cache,
                              const AhaKvLayout *kv, int layer, const int *slots, const int *pos,
                              int n, int heads, int kv_heads, int head_dim);
void aha_cpu_sample(AhaBackend *be, int *tokens, float *logprobs, const float *logits,
                    const int *rows, const uint64_t *streams, const uint64_t *positions, int n,
                    int vocab, const AhaSampleSpec *spec);
void aha_sample_ref(AhaBackend *be, int *tokens, float *logprobs, const float *logits,
                    const int *rows, const uint64_t *streams, const uint64_t *positions, int n,
                    int vocab, const AhaSampleSpec *spec);

/* optim.c */
void aha_cpu_adamw_step(AhaBackend *be, float *params, const float *grads, float *m, float *v,
                        size_t count, const AhaAdamWStep *s);
void aha_adamw_step_ref(AhaBackend *be, float *params, const float *grads, float *m, float *v,
                        size_t count, const AhaAdamWStep *s);
int aha_cpu_grad_norm(AhaBackend *be, float *norm, const float *grads, size_t count);
int aha_grad_norm_ref(AhaBackend *be, float *norm, const float *grads, size_t count);

/* ref_moe.c: references, and the row functions both backends run */
int aha_routing_unsupported(AhaBackend *be, const AhaRouting *r); /* 1 after aha_backend_fail */
void aha_router_topk_row(float *p, float *w, int *idx, int E, int k, int renormalize);
void aha_router_backward_row(float *dp, const float *p, const float *wt, const int *idx,
                             const float *dwt, const float *aux_dprob, int E, int k,
                             int renormalize);
void aha_router_topk_ref(AhaBackend *be, float *probs, float *topk_w, int *topk_idx, int n,
                         const AhaRouting *r);
void aha_moe_permute_ref(AhaBackend *be, int *off, int *slot_token, int *slot_of,
                         const int *topk_idx, int n, int E, int k);
void aha_grouped_matmul_forward_ref(AhaBackend *be, float *out, const float *in,
                                    const float *weight, const int *off, int n_rows, int E,
                                    int in_dim, int out_dim);
void aha_grouped_matmul_backward_ref(AhaBackend *be, float *din, float *dweight,
                                     const float *dout, const float *in, const float *weight,
                                     const int *off, int n_rows, int E, int in_dim, int out_dim);
void aha_moe_combine_ref(AhaBackend *be, float *y, const float *eo, const float *topk_w,
                         const int *slot_of, int n, int k, int H);
void aha_moe_combine_backward_ref(AhaBackend *be, float *deo, float *dw, const float *dy,
                                  const float *eo, const float *topk_w, const int *slot_of,
                                  int n, int k, int H);
void aha_moe_dispatch_backward_ref(AhaBackend *be, float *dx, const float *dxg,
                                   const int *slot_of, int n, int k, int H);
void aha_router_backward_ref(AhaBackend *be, float *dlogits, const float *probs,
                             const float *topk_w, const int *topk_idx, const float *dw,
                             const float *aux_dprob, int n, const AhaRouting *r);
void aha_shared_gate_forward_ref(AhaBackend *be, float *y, float *gate, const float *x,
                                 const float *wg, const float *so, int n, int H);
void aha_shared_gate_backward_ref(AhaBackend *be, float *dso, float *dlogit, const float *dy,
                                  const float *so, const float *gate, int n, int H);
void aha_shared_gate_input_backward_ref(AhaBackend *be, float *dx, float *dwg,
                                        const float *dlogit, const float *x, const float *wg,
                                        int n, int H);
void aha_expert_stats_ref(AhaBackend *be, float *count, float *prob_sum, const int *topk_idx,
                          const float *probs, int n, int E, int k);

/* moe.c: the CPU backend's */
void aha_cpu_router_topk(AhaBackend *be, float *probs, float *topk_w, int *topk_idx, int n,
                         const AhaRouting *r);
void aha_cpu_grouped_matmul_forward(AhaBackend *be, float *out, const float *in,
                                    const float *weight, const int *off, int n_rows, int E,
                                    int in_dim, int out_dim);
void aha_cpu_grouped_matmul_backward(AhaBackend *be, float *din, float *dweight,
                                     const float *dout, const float *in, const float *weight,
                                     const int *off, int n_rows, int E, int in_dim, int out_dim);
void aha_cpu_moe_combine(AhaBackend *be, float *y, const float *eo, const float *topk_w,
                         const int *slot_of, int n, int k, int H);
void aha_cpu_moe_combine_backward(AhaBackend *be, float *deo, float *dw, const float *dy,
                                  const float *eo, const float *topk_w, const int *slot_of,
                                  int n, int k, int H);
void aha_cpu_moe_dispatch_backward(AhaBackend *be, float *dx, const float *dxg,
                                   const int *slot_of, int n, int k, int H);
void aha_cpu_router_backward(AhaBackend *be, float *dlogits, const float *probs,
                             const float *topk_w, const int *topk_idx, const float *dw,
                             const float *aux_dprob, int n, const AhaRouting *r);
void aha_cpu_shared_gate_forward(AhaBackend *be, float *y, float *gate, const float *x,
                                 const float *wg, const float *so, int n, int H);
void aha_cpu_shared_gate_backward(AhaBackend *be, float *dso, float *dlogit, const float *dy,
                                  const float *so, const float *gate, int n, int H);

#endif
