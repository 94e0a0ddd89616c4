/* The CUDA backend's launchers: every op of a GRPO step over DEVICE pointers, on one
 * device and one stream (kernels/cuda/, docs/gpu.md).
 *
 * Each function mirrors the plain C reference of the same op (aha/kernels.h,
 * kernels/cpu/ref.c, policy/moe.c, policy/adamw.c, rollout/sample.c, core/rng.c): same
 * argument order, same math, fp32 unless the name says bf16, forward functions overwrite
 * their outputs and backward functions ACCUMULATE (+=) into every gradient they are given
 * (NULL: not needed). Integer index arrays (positions, sequence starts, routing tables)
 * live on the device too. Every launcher queues work on the context's stream and returns
 * 0, or -1 with an aha_errorf message naming the CUDA/cuBLAS call that failed; none
 * synchronizes with the host except aha_cuda_sync and the download.
 *
 * Nothing here has run on a GPU yet (docs/gpu.md says what is verified). */
#ifndef AHA_CUDA_H
#define AHA_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t AhaBf16; /* bfloat16 storage (the high half of a float32) */

typedef struct AhaCuda AhaCuda;

/* ---- Context and memory ------------------------------------------------------------- */
/* Devices visible to the CUDA runtime; 0 (no error) when there is none or no driver. */
int aha_cuda_device_count(void);
/* A context on `device`: its own stream, cuBLASLt handle and workspace. NULL with a clear
 * message when no device is visible or the device cannot be opened. */
AhaCuda *aha_cuda_create(int device);
void aha_cuda_free(AhaCuda *cu);
/* "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)" */
const char *aha_cuda_describe(const AhaCuda *cu);
void *aha_cuda_stream(const AhaCuda *cu); /* the cudaStream_t */

int aha_cuda_alloc(AhaCuda *cu, void **ptr, size_t bytes);
void aha_cuda_dealloc(AhaCuda *cu, void *ptr);
int aha_cuda_upload(AhaCuda *cu, void *dst, const void *src, size_t bytes);   /* host -> dev */
int aha_cuda_download(AhaCuda *cu, void *dst, const void *src, size_t bytes); /* dev -> host, syncs */
int aha_cuda_copy(AhaCuda *cu, void *dst, const void *src, size_t bytes);     /* dev -> dev */
int aha_cuda_zero(AhaCuda *cu, void *ptr, size_t bytes);
int aha_cuda_sync(AhaCuda *cu);
/* Median milliseconds of `reps` runs of fn(ctx) (which queues work on cu's stream), timed
 * with CUDA events after `warmup` untimed runs; -1 with an error recorded when fn or a CUDA
 * call fails. For benchmarks (scripts/cuda_bench.c). */
double aha_cuda_time_ms(AhaCuda *cu, int (*fn)(void *ctx), void *ctx, int warmup, int reps);

/* ---- Dense products (cuBLASLt) ------------------------------------------------------- */
/* fp32 with TF32 off (CUBLAS_COMPUTE_32F): out[n,out_dim] = in[n,in_dim] @ weight^T (+bias) */
int aha_cuda_matmul_forward(AhaCuda *cu, float *out, const float *in, const float *weight,
                            const float *bias, int n, int in_dim, int out_dim);
/* din += dout @ weight; dweight += dout^T @ in; dbias += column sums of dout */
int aha_cuda_matmul_backward(AhaCuda *cu, float *din, float *dweight, float *dbias,
                             const float *dout, const float *in, const float *weight, int n,
                             int in_dim, int out_dim);
/* bf16 operands, fp32 accumulate, bf16 output */
int aha_cuda_matmul_forward_bf16(AhaCuda *cu, AhaBf16 *out, const AhaBf16 *in,
                                 const AhaBf16 *weight, int n, int in_dim, int out_dim);
int aha_cuda_f32_to_bf16(AhaCuda *cu, AhaBf16 *out, const float *in, size_t n);
int aha_cuda_bf16_to_f32(AhaCuda *cu, float *out, const AhaBf16 *in, size_t n);

/* ---- Pointwise and row ops ----------------------------------------------------------- */
int aha_cuda_rmsnorm_forward(AhaCuda *cu, float *out, float *rstd, const float *in,
                             const float *weight, int n, int dim, float eps);
int aha_cuda_rmsnorm_backward(AhaCuda *cu, float *din, float *dweight, const float *dout,
                              const float *in, const float *weight, const float *rstd, int n,
                              int dim);
/* half-split RoPE in place on x[n, heads, head_dim] at pos[n] (device) */
int aha_cuda_rope_forward(AhaCuda *cu, float *x, const int *pos, int n, int heads,
                          int head_dim, float theta);
int aha_cuda_rope_backward(AhaCuda *cu, float *dx, const int *pos, int n, int heads,
                           int head_dim, float theta);
int aha_cuda_swiglu_forward(AhaCuda *cu, float *out, const float *gate, const float *up,
                            size_t n);
int aha_cuda_swiglu_backward(AhaCuda *cu, float *dgate, float *dup, const float *dout,
                             const float *gate, const float *up, size_t n);
/* x[n] += y[n] */
int aha_cuda_residual_add(AhaCuda *cu, float *x, const float *y, size_t n);
/* x[n] *= factor */
int aha_cuda_scale(AhaCuda *cu, float *x, size_t n, float factor);
/* x[n,H] = table[tokens[n], H] */
int aha_cuda_embedding_forward(AhaCuda *cu, float *x, const float *table, const int *tokens,
                               int n, int H);
/* dtable[tokens[t]] += dx[t] for every t; deterministic (each table row sums its tokens in
 * order), so repeated tokens need no atomics */
int aha_cuda_embedding_backward(AhaCuda *cu, float *dtable, const float *dx, const int *tokens,
                                int n, int H, int vocab);

/* ---- Attention (flash-style: no probability matrix, one log-sum-exp per row) ---------- */
/* Causal GQA over a packed batch: sequence s is rows [seq_start[s], seq_start[s+1]) with
 * seq_start on the device; q/out [T, heads*head_dim], k/v [T, kv_heads*head_dim];
 * lse[T, heads] (NULL ok) keeps log sum exp of the scaled scores for backward.
 * head_dim <= 256 and a multiple of 32. */
int aha_cuda_attention_forward(AhaCuda *cu, float *out, float *lse, const float *q,
                               const float *k, const float *v, const int *seq_start,
                               int n_seqs, int T, int heads, int kv_heads, int head_dim);
/* Recomputes the probabilities from lse; dq, dk, dv accumulate (each NULL ok);
 * deterministic (no atomics) */
int aha_cuda_attention_backward(AhaCuda *cu, float *dq, float *dk, float *dv,
                                const float *dout, const float *out, const float *q,
                                const float *k, const float *v, const float *lse,
                                const int *seq_start, int n_seqs, int T, int heads,
                                int kv_heads, int head_dim);

/* ---- KV cache and decode ------------------------------------------------------------- */
/* One layer's cache: keys [slots, max_len, kv_dim], values the same. Row r of k/v [n,kv_dim]
 * goes to (slot[r], pos[r]). */
int aha_cuda_kv_append(AhaCuda *cu, float *cache_k, float *cache_v, const float *k,
                       const float *v, const int *slot, const int *pos, int n, int max_len,
                       int kv_dim);
/* Prefix sharing: positions [0, len) of slot src to slot dst, for `layers` consecutive
 * layer caches of `slots` slots each (keys then values, as rollout/kvcache.h lays them). */
int aha_cuda_kv_copy_prefix(AhaCuda *cu, float *cache, int layers, int slots, int max_len,
                            int kv_dim, int dst, int src, int len);
/* Row r (query q[r, heads*head_dim]) attends to positions [0, pos[r]] of slot slot[r]
 * (its own K/V appended first): out[r, heads*head_dim]; the training forward's row math. */
int aha_cuda_decode_attention(AhaCuda *cu, float *out, const float *q, const float *cache_k,
                              const float *cache_v, const int *slot, const int *pos, int n,
                              int max_len, int heads, int kv_heads, int head_dim);

/* ---- MoE ----------------------------------------------------------------------------- */
/* Per token: probs = softmax(logits[T,E]) (in place into probs), the k largest (ties: lower
 * index), weights renormalized when norm_topk; topk_idx/topk_w [T,k]. */
int aha_cuda_moe_route(AhaCuda *cu, float *probs, int *topk_idx, float *topk_w,
                       const float *logits, int T, int E, int k, int norm_topk);
/* Counting sort of the (token, j) assignments by expert, on the device, in (t, j) order
 * within each expert as policy/moe.c does: expert_off[E+1], slot_token[T*k],
 * slot_of[T*k]. */
int aha_cuda_moe_permute(AhaCuda *cu, int *expert_off, int *slot_token, int *slot_of,
                         const int *topk_idx, int T, int E, int k);
/* xg[s, H] = x[slot_token[s], H] */
int aha_cuda_moe_gather(AhaCuda *cu, float *xg, const float *x, const int *slot_token, int S,
                        int H);
/* dx[t] += sum_j dxg[slot_of[t, j]] */
int aha_cuda_moe_gather_backward(AhaCuda *cu, float *dx, const float *dxg, const int *slot_of,
                                 int T, int k, int H);
/* y[t] = sum_j topk_w[t,j] * eo[slot_of[t,j]]  (overwrites; fixed order) */
int aha_cuda_moe_combine(AhaCuda *cu, float *y, const float *eo, const float *topk_w,
                         const int *slot_of, int T, int k, int H);
/* deo[slot] = w * dy[t] (overwrites); dw[t,j] = dy[t] . eo[slot] (overwrites) */
int aha_cuda_moe_combine_backward(AhaCuda *cu, float *deo, float *dw, const float *dy,
                                  const float *eo, const float *topk_w, const int *slot_of,
                                  int T, int k, int H);
/* dlogits[T,E] (overwrites) from dw[T,k] through the renormalization, plus aux_dprob[E]
 * (may be NULL), through the softmax */
int aha_cuda_moe_router_backward(AhaCuda *cu, float *dlogits, const float *dw,
                                 const float *probs, const int *topk_idx, const float *topk_w,
                                 const float *aux_dprob, int T, int E, int k, int norm_topk);
/* counts[E] += assignments per expert (from expert_off), prob_sum[E] += sum_t probs[t,e]
 * (double, for the load-balancing loss and aha_model_expert_load) */
int aha_cuda_moe_stats(AhaCuda *cu, double *counts, double *prob_sum, const int *expert_off,
                       const float *probs, int T, int E);
/* The same statistics from the top-k table, in float as the CPU backend keeps them:
 * count[E] += assignments per expert, prob_sum[E] += sum_t probs[t,e] in token order. */
int aha_cuda_expert_stats(AhaCuda *cu, float *count, float *prob_sum, const int *topk_idx,
                          const float *probs, int n, int E, int k);
/* Shared expert gate: gate[t] = sigmoid(x[t] . wg), y[t] += gate[t] so[t] (x, so, y [n,dim]);
 * backward: dso = gate dy and dlogit[t] = (dy . so) gate (1 - gate) (both overwrite), then
 * dx[t] += dlogit[t] wg and dwg += sum_t dlogit[t] x[t] (each NULL ok). */
int aha_cuda_shared_gate_forward(AhaCuda *cu, float *y, float *gate, const float *x,
                                 const float *wg, const float *so, int n, int dim);
int aha_cuda_shared_gate_backward(AhaCuda *cu, float *dso, float *dlogit, const float *dy,
                                  const float *so, const float *gate, int n, int dim);
int aha_cuda_shared_gate_input_backward(AhaCuda *cu, float *dx, float *dwg, const float *dlogit,
                                        const float *x, const float *wg, int n, int dim);
/* Grouped expert GEMM over the permuted rows: expert e owns rows
 * [expert_off[e], expert_off[e+1]) (device offsets, no host sync); weight [E, N, K].
 *   forward:  out[rows_e, N] = x[rows_e, K] @ W_e^T     (overwrites)
 *   backward: dx[rows_e, K] += dout[rows_e, N] @ W_e;  dW_e += dout^T @ x */
int aha_cuda_grouped_matmul_forward(AhaCuda *cu, float *out, const float *x,
                                    const float *weight, const int *expert_off, int S, int E,
                                    int K, int N);
int aha_cuda_grouped_matmul_backward(AhaCuda *cu, float *dx, float *dweight, const float *dout,
                                     const float *x, const float *weight,
                                     const int *expert_off, int S, int E, int K, int N);
/* bf16 operands and output, fp32 accumulate (tensor cores through WMMA) */
int aha_cuda_grouped_matmul_forward_bf16(AhaCuda *cu, AhaBf16 *out, const AhaBf16 *x,
                                         const AhaBf16 *weight, const int *expert_off, int S,
                                         int E, int K, int N);

/* ---- Log-probabilities --------------------------------------------------------------- */
/* Rows of logits [n, vocab] at temperature tau: logprob[t] = log softmax(z/tau)[targets[t]]
 * (0 when targets[t] < 0), entropy (may be NULL). Sums in double as in the reference. */
int aha_cuda_logprob_forward(AhaCuda *cu, float *logprob, float *entropy, const float *logits,
                             const int *targets, int n, int vocab, float temperature);
/* dlogits = dlogprob * (onehot - p) / tau (OVERWRITES; rows with target < 0 get zeros) */
int aha_cuda_logprob_backward(AhaCuda *cu, float *dlogits, const float *dlogprob,
                              const float *logits, const int *targets, int n, int vocab,
                              float temperature);
/* The same over vocabulary chunks, so the whole [n, V] logits never exist: state[n, 4]
 * (doubles: max, sum, sum of e*(y-max), the target's y) starts with ..._chunk_init, each
 * chunk of columns [col0, col0 + cols) of a [n, cols] logits block (leading dimension ld)
 * is folded in, and ..._chunk_finish writes logprob and entropy. */
int aha_cuda_logprob_chunk_init(AhaCuda *cu, double *state, int n);
int aha_cuda_logprob_chunk_accumulate(AhaCuda *cu, double *state, const float *logits, int ld,
                                      const int *targets, int n, int col0, int cols,
                                      float temperature);
int aha_cuda_logprob_chunk_finish(AhaCuda *cu, float *logprob, float *entropy,
                                  const double *state, const int *targets, int n);
/* dlogits for one chunk from the finished state (overwrites [n, cols], leading dim ld) */
int aha_cuda_logprob_chunk_backward(AhaCuda *cu, float *dlogits, int ld, const float *dlogprob,
                                    const float *logits, const double *state,
                                    const int *targets, int n, int col0, int cols,
                                    float temperature);

/* ---- Optimizer ----------------------------------------------------------------------- */
/* One AdamW step of torch.optim.AdamW over count floats (aha/optim.h), step >= 1. */
int aha_cuda_adamw_step(AhaCuda *cu, float *params, const float *grads, float *m, float *v,
                        size_t count, float lr, float beta1, float beta2, float eps,
                        float weight_decay, int64_t step);
/* Global L2 norm of several gradient tensors (pointers and counts in HOST arrays, n_tensors
 * of them): norm_out (device float) = sqrt(sum of squares in double); when max_norm > 0 and
 * the norm exceeds it every tensor is scaled by max_norm / (norm + 1e-6) on the device,
 * without a host round trip. */
int aha_cuda_clip_grad_norm(AhaCuda *cu, float *const *grads, const size_t *counts,
                            int n_tensors, float max_norm, float *norm_out);

/* ---- Sampling ------------------------------------------------------------------------ */
/* Sequence i draws one token from logits row rows[i] (NULL: row i) of logits[*, vocab] as
 * rollout/sample.c picks it, with u drawn on the device from the Philox block
 * (seed, stream[i], position[i]) (aha/rng.h, aha/sampler.h); temperature 0: argmax.
 * Writes tokens[n] and logprobs[n] (device); scratch of aha_cuda_sample_scratch_bytes
 * (needed only with top-k / top-p). */
size_t aha_cuda_sample_scratch_bytes(int n, int vocab);
int aha_cuda_sample(AhaCuda *cu, int32_t *tokens, float *logprobs, const float *logits,
                    const int *rows, int n, int vocab, float temperature, int top_k, float top_p,
                    uint64_t seed, const uint64_t *stream, const uint64_t *position,
                    void *scratch);

#ifdef __cplusplus
}
#endif

#endif
