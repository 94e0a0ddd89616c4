/* The "cuda" AhaBackend (include/aha/backend.h): every entry of the table over the
 * launchers of aha/cuda.h, on one device and one stream per context. Ops return nothing, so
 * a failing launcher's message is recorded with aha_backend_fail and the rest of the
 * context's work is skipped until sync or download hands the failure back.
 * Built only when backend.h exists, so the launchers could land before the interface. */
#if __has_include("aha/backend.h")
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/backend.h"
#include "kernels/cuda/cuda_internal.cuh"

typedef struct {
    AhaCuda *cu;
    void *sample_scratch; /* top-k / top-p sorting space, grown on demand */
    size_t sample_scratch_bytes;
    float *norm;          /* [1] device: grad_norm's result */
} CudaBackend;

static AhaCuda *ctx(AhaBackend *be) { return ((CudaBackend *)be->impl)->cu; }

/* run a launcher unless the context already failed; record its failure */
#define RUN(be, call)                                                                          \
    do {                                                                                       \
        if (!(be)->failed && (call) != 0) aha_backend_fail((be), "%s", aha_error_message());   \
    } while (0)

/* ---- memory ----------------------------------------------------------------------------- */
static void *cb_alloc(AhaBackend *be, size_t bytes) {
    void *p = NULL;
    if (aha_cuda_alloc(ctx(be), &p, bytes) != 0) return NULL;
    return p;
}
static void cb_free(AhaBackend *be, void *ptr) { aha_cuda_dealloc(ctx(be), ptr); }
static int cb_upload(AhaBackend *be, void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return 0;
    return aha_cuda_upload(ctx(be), dst, src, bytes);
}
static int cb_download(AhaBackend *be, void *dst, const void *src, size_t bytes) {
    if (bytes && aha_cuda_download(ctx(be), dst, src, bytes) != 0) {
        aha_backend_take_failure(be); /* the download's own error is the one to report */
        return -1;
    }
    if (bytes == 0 && aha_cuda_sync(ctx(be)) != 0) return -1;
    return aha_backend_take_failure(be);
}
static void cb_copy(AhaBackend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) RUN(be, aha_cuda_copy(ctx(be), dst, src, bytes));
}
static void cb_zero(AhaBackend *be, void *dst, size_t bytes) {
    if (bytes) RUN(be, aha_cuda_zero(ctx(be), dst, bytes));
}
static int cb_sync(AhaBackend *be) {
    if (aha_cuda_sync(ctx(be)) != 0) {
        aha_backend_take_failure(be);
        return -1;
    }
    return aha_backend_take_failure(be);
}
static void cb_destroy(AhaBackend *be) {
    CudaBackend *impl = (CudaBackend *)be->impl;
    if (impl) {
        if (impl->cu) {
            aha_cuda_dealloc(impl->cu, impl->sample_scratch);
            aha_cuda_dealloc(impl->cu, impl->norm);
            aha_cuda_free(impl->cu);
        }
        free(impl);
    }
    free(be);
}

/* ---- products ------------------------------------------------------------------------- */
static void cb_matmul_forward(AhaBackend *be, float *out, const float *in, const float *weight,
                              const float *bias, int n, int in_dim, int out_dim) {
    RUN(be, aha_cuda_matmul_forward(ctx(be), out, in, weight, bias, n, in_dim, out_dim));
}
static void cb_matmul_backward(AhaBackend *be, float *din, float *dweight, float *dbias,
                               const float *dout, const float *in, const float *weight, int n,
                               int in_dim, int out_dim) {
    RUN(be, aha_cuda_matmul_backward(ctx(be), din, dweight, dbias, dout, in, weight, n, in_dim,
                                     out_dim));
}
static void cb_grouped_forward(AhaBackend *be, float *out, const float *in, const float *weight,
                               const int *expert_off, int n_rows, int n_experts, int in_dim,
                               int out_dim) {
    RUN(be, aha_cuda_grouped_matmul_forward(ctx(be), out, in, weight, expert_off, n_rows,
                                            n_experts, in_dim, out_dim));
}
static void cb_grouped_backward(AhaBackend *be, float *din, float *dweight, const float *dout,
                                const float *in, const float *weight, const int *expert_off,
                                int n_rows, int n_experts, int in_dim, int out_dim) {
    RUN(be, aha_cuda_grouped_matmul_backward(ctx(be), din, dweight, dout, in, weight, expert_off,
                                             n_rows, n_experts, in_dim, out_dim));
}

/* ---- rows and elements ---------------------------------------------------------------- */
static void cb_gather_rows(AhaBackend *be, float *out, const float *table, const int *rows, int n,
                           int dim) {
    RUN(be, aha_cuda_embedding_forward(ctx(be), out, table, rows, n, dim));
}
static void cb_scatter_add_rows(AhaBackend *be, float *table, const float *in, const int *rows,
                                int n, int dim) {
    /* row ids are < 2^30: the sort looks at 30 bits */
    RUN(be, aha_cuda_embedding_backward(ctx(be), table, in, rows, n, dim, 1 << 30));
}
static void cb_add(AhaBackend *be, float *y, const float *x, size_t count) {
    RUN(be, aha_cuda_residual_add(ctx(be), y, x, count));
}
static void cb_scale(AhaBackend *be, float *x, size_t count, float factor) {
    RUN(be, aha_cuda_scale(ctx(be), x, count, factor));
}
static void cb_rmsnorm_forward(AhaBackend *be, float *out, float *rstd, const float *in,
                               const float *weight, int n, int dim, float eps) {
    RUN(be, aha_cuda_rmsnorm_forward(ctx(be), out, rstd, in, weight, n, dim, eps));
}
static void cb_rmsnorm_backward(AhaBackend *be, float *din, float *dweight, const float *dout,
                                const float *in, const float *weight, const float *rstd, int n,
                                int dim) {
    RUN(be, aha_cuda_rmsnorm_backward(ctx(be), din, dweight, dout, in, weight, rstd, n, dim));
}
static void cb_rope_forward(AhaBackend *be, float *x, const int *pos, int n, int heads,
                            int head_dim, float theta) {
    RUN(be, aha_cuda_rope_forward(ctx(be), x, pos, n, heads, head_dim, theta));
}
static void cb_rope_backward(AhaBackend *be, float *dx, const int *pos, int n, int heads,
                             int head_dim, float theta) {
    RUN(be, aha_cuda_rope_backward(ctx(be), dx, pos, n, heads, head_dim, theta));
}
static void cb_swiglu_forward(AhaBackend *be, float *out, const float *gate, const float *up,
                              size_t count) {
    RUN(be, aha_cuda_swiglu_forward(ctx(be), out, gate, up, count));
}
static void cb_swiglu_backward(AhaBackend *be, float *dgate, float *dup, const float *dout,
                               const float *gate, const float *up, size_t count) {
    RUN(be, aha_cuda_swiglu_backward(ctx(be), dgate, dup, dout, gate, up, count));
}

/* ---- attention -------------------------------------------------------------------------- */
static void cb_attention_forward(AhaBackend *be, float *out, float *lse, const float *q,
                                 const float *k, const float *v, const AhaSeqs *seqs, int heads,
                                 int kv_heads, int head_dim) {
    RUN(be, aha_cuda_attention_forward(ctx(be), out, lse, q, k, v, seqs->seq_start, seqs->n_seqs,
                                       seqs->n_rows, heads, kv_heads, head_dim));
}
static void cb_attention_backward(AhaBackend *be, float *dq, float *dk, float *dv,
                                  const float *dout, const float *q, const float *k,
                                  const float *v, const float *out, const float *lse,
                                  const AhaSeqs *seqs, int heads, int kv_heads, int head_dim) {
    RUN(be, aha_cuda_attention_backward(ctx(be), dq, dk, dv, dout, out, q, k, v, lse,
                                        seqs->seq_start, seqs->n_seqs, seqs->n_rows, heads,
                                        kv_heads, head_dim));
}
static float *kv_keys(float *cache, const AhaKvLayout *kv, int layer) {
    return cache + (size_t)layer * kv->n_slots * kv->max_len * kv->kv_dim;
}
static size_t kv_half(const AhaKvLayout *kv) {
    return (size_t)kv->n_layers * kv->n_slots * kv->max_len * kv->kv_dim;
}
static void cb_kv_append(AhaBackend *be, float *cache, const AhaKvLayout *kv, int layer,
                         const float *k, const float *v, const int *slots, const int *pos, int n) {
    float *keys = kv_keys(cache, kv, layer);
    RUN(be, aha_cuda_kv_append(ctx(be), keys, keys + kv_half(kv), k, v, slots, pos, n,
                               kv->max_len, kv->kv_dim));
}
static void cb_attention_decode(AhaBackend *be, float *out, const float *q, const float *cache,
                                const AhaKvLayout *kv, int layer, const int *slots,
                                const int *pos, int n, int heads, int kv_heads, int head_dim) {
    const float *keys = kv_keys((float *)cache, kv, layer);
    RUN(be, aha_cuda_decode_attention(ctx(be), out, q, keys, keys + kv_half(kv), slots, pos, n,
                                      kv->max_len, heads, kv_heads, head_dim));
}
static void cb_kv_copy_prefix(AhaBackend *be, float *cache, const AhaKvLayout *kv, int dst,
                              int src, int len) {
    RUN(be, aha_cuda_kv_copy_prefix(ctx(be), cache, kv->n_layers, kv->n_slots, kv->max_len,
                                    kv->kv_dim, dst, src, len));
}

/* ---- mixture of experts ---------------------------------------------------------------- */
static int routing_supported(AhaBackend *be, const AhaRouting *r) {
    if (r->score == AHA_ROUTER_SOFTMAX && r->bias == NULL && r->n_groups == 0 && r->scale == 1.0f)
        return 1;
    aha_backend_fail(be, "cuda router: only softmax top-k routing is implemented (score %d, "
                         "bias %s, %d groups, scale %g)",
                     (int)r->score, r->bias ? "set" : "none", r->n_groups, (double)r->scale);
    return 0;
}
static void cb_router_topk(AhaBackend *be, float *probs, float *topk_w, int *topk_idx, int n,
                           const AhaRouting *routing) {
    if (be->failed || !routing_supported(be, routing)) return;
    RUN(be, aha_cuda_moe_route(ctx(be), probs, topk_idx, topk_w, probs, n, routing->num_experts,
                               routing->top_k, routing->renormalize));
}
static void cb_moe_permute(AhaBackend *be, int *expert_off, int *slot_token, int *slot_of,
                           const int *topk_idx, int n, int num_experts, int k) {
    RUN(be, aha_cuda_moe_permute(ctx(be), expert_off, slot_token, slot_of, topk_idx, n,
                                 num_experts, k));
}
static void cb_moe_combine(AhaBackend *be, float *y, const float *eo, const float *topk_w,
                           const int *slot_of, int n, int k, int dim) {
    RUN(be, aha_cuda_moe_combine(ctx(be), y, eo, topk_w, slot_of, n, k, dim));
}
static void cb_moe_combine_backward(AhaBackend *be, float *deo, float *dw, const float *dy,
                                    const float *eo, const float *topk_w, const int *slot_of,
                                    int n, int k, int dim) {
    RUN(be, aha_cuda_moe_combine_backward(ctx(be), deo, dw, dy, eo, topk_w, slot_of, n, k, dim));
}
static void cb_moe_dispatch_backward(AhaBackend *be, float *dx, const float *dxg,
                                     const int *slot_of, int n, int k, int dim) {
    RUN(be, aha_cuda_moe_gather_backward(ctx(be), dx, dxg, slot_of, n, k, dim));
}
static void cb_router_backward(AhaBackend *be, float *dlogits, const float *probs,
                               const float *topk_w, const int *topk_idx, const float *dw,
                               const float *aux_dprob, int n, const AhaRouting *routing) {
    if (be->failed || !routing_supported(be, routing)) return;
    RUN(be, aha_cuda_moe_router_backward(ctx(be), dlogits, dw, probs, topk_idx, topk_w, aux_dprob,
                                         n, routing->num_experts, routing->top_k,
                                         routing->renormalize));
}
static void cb_shared_gate_forward(AhaBackend *be, float *y, float *gate, const float *x,
                                   const float *wg, const float *so, int n, int dim) {
    RUN(be, aha_cuda_shared_gate_forward(ctx(be), y, gate, x, wg, so, n, dim));
}
static void cb_shared_gate_backward(AhaBackend *be, float *dso, float *dlogit, const float *dy,
                                    const float *so, const float *gate, int n, int dim) {
    RUN(be, aha_cuda_shared_gate_backward(ctx(be), dso, dlogit, dy, so, gate, n, dim));
}
static void cb_shared_gate_input_backward(AhaBackend *be, float *dx, float *dwg,
                                          const float *dlogit, const float *x, const float *wg,
                                          int n, int dim) {
    RUN(be, aha_cuda_shared_gate_input_backward(ctx(be), dx, dwg, dlogit, x, wg, n, dim));
}
static void cb_expert_stats(AhaBackend *be, float *count, float *prob_sum, const int *topk_idx,
                            const float *probs, int n, int num_experts, int k) {
    RUN(be, aha_cuda_expert_stats(ctx(be), count, prob_sum, topk_idx, probs, n, num_experts, k));
}

/* ---- log-probabilities, optimizer, sampling ------------------------------------------------ */
static void cb_logprob_forward(AhaBackend *be, float *logprob, float *entropy,
                               const float *logits, const int *targets, int n, int vocab,
                               float temperature) {
    RUN(be, aha_cuda_logprob_forward(ctx(be), logprob, entropy, logits, targets, n, vocab,
                                     temperature));
}
static void cb_logprob_backward(AhaBackend *be, float *dlogits, const float *dlogprob,
                                const float *logits, const int *targets, int n, int vocab,
                                float temperature) {
    RUN(be, aha_cuda_logprob_backward(ctx(be), dlogits, dlogprob, logits, targets, n, vocab,
                                      temperature));
}
static void cb_adamw_step(AhaBackend *be, float *params, const float *grads, float *m, float *v,
                          size_t count, const AhaAdamWStep *s) {
    RUN(be, aha_cuda_adamw_step(ctx(be), params, grads, m, v, count, s->lr, s->beta1, s->beta2,
                                s->eps, s->weight_decay, s->step));
}
static int cb_grad_norm(AhaBackend *be, float *norm, const float *grads, size_t count) {
    CudaBackend *impl = (CudaBackend *)be->impl;
    float *ptrs[1] = {(float *)grads};
    RUN(be, aha_cuda_clip_grad_norm(impl->cu, ptrs, &count, 1, 0.0f, impl->norm));
    if (be->failed) return aha_backend_take_failure(be);
    return cb_download(be, norm, impl->norm, sizeof(float));
}
static void cb_sample(AhaBackend *be, int *tokens, float *logprobs, const float *logits,
                      const int *rows, const uint64_t *streams, const uint64_t *positions, int n,
                      int vocab, const AhaSampleSpec *spec) {
    CudaBackend *impl = (CudaBackend *)be->impl;
    if (be->failed) return;
    int truncate = spec->temperature > 0.0f &&
                   ((spec->top_k > 0 && spec->top_k < vocab) || spec->top_p < 1.0f);
    if (truncate) {
        size_t need = aha_cuda_sample_scratch_bytes(n, vocab);
        if (need > impl->sample_scratch_bytes) {
            aha_cuda_dealloc(impl->cu, impl->sample_scratch);
            impl->sample_scratch = NULL;
            impl->sample_scratch_bytes = 0;
            if (aha_cuda_alloc(impl->cu, &impl->sample_scratch, need) != 0) {
                aha_backend_fail(be, "%s", aha_error_message());
                return;
            }
            impl->sample_scratch_bytes = need;
        }
    }
    RUN(be, aha_cuda_sample(impl->cu, (int32_t *)tokens, logprobs, logits, rows, n, vocab,
                            spec->temperature, spec->top_k, spec->top_p, spec->seed, streams,
                            positions, impl->sample_scratch));
}

extern "C" AhaBackend *aha_backend_cuda_create(const AhaBackendOptions *options) {
    AhaBackendOptions defaults;
    memset(&defaults, 0, sizeof defaults);
    if (options == NULL) options = &defaults;
    AhaBackend *be = (AhaBackend *)calloc(1, sizeof *be);
    CudaBackend *impl = (CudaBackend *)calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        aha_errorf("cuda backend: out of memory for the context");
        return NULL;
    }
    be->impl = impl;
    be->destroy = cb_destroy;
    impl->cu = aha_cuda_create(options->device);
    if (!impl->cu || aha_cuda_alloc(impl->cu, (void **)&impl->norm, sizeof(float)) != 0) {
        char message[512];
        snprintf(message, sizeof message, "%s", aha_error_message());
        cb_destroy(be);
        aha_errorf("%s", message);
        return NULL;
    }
    be->name = "cuda";
    be->device = options->device;
    /* cuBLASLt chooses its kernel per shape: a row's product can depend on the batch */
    be->batch_invariant = 0;
    be->host_memory = 0;
    be->alloc = cb_alloc;
    be->free = cb_free;
    be->upload = cb_upload;
    be->download = cb_download;
    be->copy = cb_copy;
    be->zero = cb_zero;
    be->sync = cb_sync;
    be->matmul_forward = cb_matmul_forward;
    be->matmul_backward = cb_matmul_backward;
    be->grouped_matmul_forward = cb_grouped_forward;
    be->grouped_matmul_backward = cb_grouped_backward;
    be->gather_rows = cb_gather_rows;
    be->scatter_add_rows = cb_scatter_add_rows;
    be->add = cb_add;
    be->scale = cb_scale;
    be->rmsnorm_forward = cb_rmsnorm_forward;
    be->rmsnorm_backward = cb_rmsnorm_backward;
    be->rope_forward = cb_rope_forward;
    be->rope_backward = cb_rope_backward;
    be->swiglu_forward = cb_swiglu_forward;
    be->swiglu_backward = cb_swiglu_backward;
    be->attention_forward = cb_attention_forward;
    be->attention_backward = cb_attention_backward;
    be->kv_append = cb_kv_append;
    be->attention_decode = cb_attention_decode;
    be->kv_copy_prefix = cb_kv_copy_prefix;
    be->router_topk = cb_router_topk;
    be->moe_permute = cb_moe_permute;
    be->moe_combine = cb_moe_combine;
    be->moe_combine_backward = cb_moe_combine_backward;
    be->moe_dispatch_backward = cb_moe_dispatch_backward;
    be->router_backward = cb_router_backward;
    be->shared_gate_forward = cb_shared_gate_forward;
    be->shared_gate_backward = cb_shared_gate_backward;
    be->shared_gate_input_backward = cb_shared_gate_input_backward;
    be->expert_stats = cb_expert_stats;
    be->logprob_forward = cb_logprob_forward;
    be->logprob_backward = cb_logprob_backward;
    be->adamw_step = cb_adamw_step;
    be->grad_norm = cb_grad_norm;
    be->sample = cb_sample;
    return be;
}
#endif
