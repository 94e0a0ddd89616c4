/* The two CPU backends as AhaBackend contexts: "cpu" (the fast kernels of this folder) and
 * "cpu-ref" (the plain references). Both keep their memory on the host (backend.c). With
 * batch_invariant set, matmul_forward is the batch-invariant product of
 * matmul_invariant.c (the AVX2 kernel, or its plain form, which gives the same bits). */
#include <omp.h>
#include <string.h>

#include "aha/error.h"
#include "aha/kernels.h"
#include "cpu_internal.h"
#include "kernels/cpu/matmul_invariant.h"

/* ---- thin adapters from the kernel functions of aha/kernels.h ------------------------- */

#define KERNEL_ADAPTERS(prefix, table)                                                         \
    static void prefix##_matmul_forward(AhaBackend *be, float *out, const float *in,           \
                                        const float *w, const float *b, int n, int i, int o) { \
        (void)be;                                                                              \
        table->matmul_forward(out, in, w, b, n, i, o);                                         \
    }                                                                                          \
    static void prefix##_matmul_backward(AhaBackend *be, float *din, float *dw, float *db,     \
                                         const float *dout, const float *in, const float *w,   \
                                         int n, int i, int o) {                                \
        (void)be;                                                                              \
        table->matmul_backward(din, dw, db, dout, in, w, n, i, o);                             \
    }                                                                                          \
    static void prefix##_rmsnorm_forward(AhaBackend *be, float *out, float *rstd,              \
                                         const float *in, const float *w, int n, int dim,      \
                                         float eps) {                                          \
        (void)be;                                                                              \
        table->rmsnorm_forward(out, rstd, in, w, n, dim, eps);                                 \
    }                                                                                          \
    static void prefix##_rmsnorm_backward(AhaBackend *be, float *din, float *dw,               \
                                          const float *dout, const float *in, const float *w,  \
                                          const float *rstd, int n, int dim) {                 \
        (void)be;                                                                              \
        table->rmsnorm_backward(din, dw, dout, in, w, rstd, n, dim);                           \
    }                                                                                          \
    static void prefix##_rope_forward(AhaBackend *be, float *x, const int *pos, int n,         \
                                      int heads, int hd, float theta) {                        \
        (void)be;                                                                              \
        table->rope_forward(x, pos, n, heads, hd, theta);                                      \
    }                                                                                          \
    static void prefix##_rope_backward(AhaBackend *be, float *x, const int *pos, int n,        \
                                       int heads, int hd, float theta) {                       \
        (void)be;                                                                              \
        table->rope_backward(x, pos, n, heads, hd, theta);                                     \
    }                                                                                          \
    static void prefix##_swiglu_forward(AhaBackend *be, float *out, const float *g,            \
                                        const float *u, size_t n) {                            \
        (void)be;                                                                              \
        table->swiglu_forward(out, g, u, n);                                                   \
    }                                                                                          \
    static void prefix##_swiglu_backward(AhaBackend *be, float *dg, float *du,                 \
                                         const float *dout, const float *g, const float *u,    \
                                         size_t n) {                                           \
        (void)be;                                                                              \
        table->swiglu_backward(dg, du, dout, g, u, n);                                         \
    }                                                                                          \
    static void prefix##_logprob_forward(AhaBackend *be, float *lp, float *ent,                \
                                         const float *logits, const int *targets, int n,       \
                                         int vocab, float temperature) {                       \
        (void)be;                                                                              \
        table->logprob_forward(lp, ent, logits, targets, n, vocab, temperature);               \
    }                                                                                          \
    static void prefix##_logprob_backward(AhaBackend *be, float *dl, const float *dlp,         \
                                          const float *logits, const int *targets, int n,      \
                                          int vocab, float temperature) {                      \
        (void)be;                                                                              \
        table->logprob_backward(dl, dlp, logits, targets, n, vocab, temperature);              \
    }

KERNEL_ADAPTERS(fast, aha_kernels_cpu())
KERNEL_ADAPTERS(ref, aha_kernels_cpu_ref())

static void matmul_forward_invariant(AhaBackend *be, float *out, const float *in,
                                     const float *w, const float *b, int n, int i, int o) {
    (void)be;
    aha_matmul_forward_invariant(out, in, w, b, n, i, o);
}

static void matmul_forward_invariant_ref(AhaBackend *be, float *out, const float *in,
                                         const float *w, const float *b, int n, int i, int o) {
    (void)be;
    aha_matmul_forward_invariant_ref(out, in, w, b, n, i, o);
}

/* ---- rows and elements --------------------------------------------------------------- */

/* Below this many floats a copy or an add costs less than waking the other threads (the
 * decoder's few hundred rows per step); the training batch's are far above it. */
enum { PARALLEL_FLOATS = 1 << 20 };

static void gather_rows_fast(AhaBackend *be, float *out, const float *table, const int *rows,
                             int n, int dim) {
    (void)be;
#pragma omp parallel for schedule(static) if ((size_t)n * dim >= PARALLEL_FLOATS)
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * dim, table + (size_t)rows[i] * dim, sizeof(float) * dim);
}

static void gather_rows_ref(AhaBackend *be, float *out, const float *table, const int *rows,
                            int n, int dim) {
    (void)be;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < dim; d++) out[(size_t)i * dim + d] = table[(size_t)rows[i] * dim + d];
}

/* in row order on one thread: a row that repeats gets its sums in the same order always */
static void scatter_add_rows(AhaBackend *be, float *table, const float *in, const int *rows,
                             int n, int dim) {
    (void)be;
    for (int i = 0; i < n; i++) {
        float *dst = table + (size_t)rows[i] * dim;
        const float *src = in + (size_t)i * dim;
        for (int d = 0; d < dim; d++) dst[d] += src[d];
    }
}

static void add_fast(AhaBackend *be, float *y, const float *x, size_t count) {
    (void)be;
#pragma omp parallel for schedule(static) if (count >= PARALLEL_FLOATS)
    for (size_t i = 0; i < count; i++) y[i] += x[i];
}

static void add_ref(AhaBackend *be, float *y, const float *x, size_t count) {
    (void)be;
    for (size_t i = 0; i < count; i++) y[i] += x[i];
}

static void scale_fast(AhaBackend *be, float *x, size_t count, float factor) {
    (void)be;
#pragma omp parallel for schedule(static) if (count >= PARALLEL_FLOATS)
    for (size_t i = 0; i < count; i++) x[i] *= factor;
}

static void scale_ref(AhaBackend *be, float *x, size_t count, float factor) {
    (void)be;
    for (size_t i = 0; i < count; i++) x[i] *= factor;
}

static void attention_backward_fast(AhaBackend *be, float *dq, float *dk, float *dv,
                                    const float *dout, const float *q, const float *k,
                                    const float *v, const float *out, const float *lse,
                                    const AhaSeqs *seqs, int heads, int kv_heads, int head_dim) {
    (void)out;
    (void)lse;
    aha_cpu_attention_backward_recompute(be, dq, dk, dv, dout, q, k, v, seqs, heads, kv_heads,
                                         head_dim);
}

/* ---- the contexts -------------------------------------------------------------------- */

static void destroy(AhaBackend *be) { aha_host_free(NULL, be); }

#define HOST_MEMORY                                                                            \
    .host_memory = 1, .alloc = aha_host_alloc, .free = aha_host_free, .upload = aha_host_upload, \
    .download = aha_host_download, .copy = aha_host_copy, .zero = aha_host_zero,               \
    .sync = aha_host_sync, .destroy = destroy

static const AhaBackend cpu_template = {
    .name = "cpu",
    HOST_MEMORY,
    .matmul_forward = fast_matmul_forward,
    .matmul_backward = fast_matmul_backward,
    .grouped_matmul_forward = aha_cpu_grouped_matmul_forward,
    .grouped_matmul_backward = aha_cpu_grouped_matmul_backward,
    .gather_rows = gather_rows_fast,
    .scatter_add_rows = scatter_add_rows,
    .add = add_fast,
    .scale = scale_fast,
    .rmsnorm_forward = fast_rmsnorm_forward,
    .rmsnorm_backward = fast_rmsnorm_backward,
    .rope_forward = fast_rope_forward,
    .rope_backward = fast_rope_backward,
    .swiglu_forward = fast_swiglu_forward,
    .swiglu_backward = fast_swiglu_backward,
    .attention_forward = aha_cpu_attention_forward_lse,
    .attention_backward = attention_backward_fast,
    .kv_append = aha_kv_append_ref,
    .attention_decode = aha_cpu_attention_decode,
    .kv_copy_prefix = aha_kv_copy_prefix_ref,
    .router_topk = aha_cpu_router_topk,
    .moe_permute = aha_moe_permute_ref,
    .moe_combine = aha_cpu_moe_combine,
    .moe_combine_backward = aha_cpu_moe_combine_backward,
    .moe_dispatch_backward = aha_cpu_moe_dispatch_backward,
    .router_backward = aha_cpu_router_backward,
    .shared_gate_forward = aha_cpu_shared_gate_forward,
    .shared_gate_backward = aha_cpu_shared_gate_backward,
    .shared_gate_input_backward = aha_shared_gate_input_backward_ref,
    .expert_stats = aha_expert_stats_ref,
    .logprob_forward = fast_logprob_forward,
    .logprob_backward = fast_logprob_backward,
    .adamw_step = aha_cpu_adamw_step,
    .grad_norm = aha_cpu_grad_norm,
    .sample = aha_cpu_sample,
};

static const AhaBackend ref_template = {
    .name = "cpu-ref",
    HOST_MEMORY,
    .matmul_forward = ref_matmul_forward,
    .matmul_backward = ref_matmul_backward,
    .grouped_matmul_forward = aha_grouped_matmul_forward_ref,
    .grouped_matmul_backward = aha_grouped_matmul_backward_ref,
    .gather_rows = gather_rows_ref,
    .scatter_add_rows = scatter_add_rows,
    .add = add_ref,
    .scale = scale_ref,
    .rmsnorm_forward = ref_rmsnorm_forward,
    .rmsnorm_backward = ref_rmsnorm_backward,
    .rope_forward = ref_rope_forward,
    .rope_backward = ref_rope_backward,
    .swiglu_forward = ref_swiglu_forward,
    .swiglu_backward = ref_swiglu_backward,
    .attention_forward = aha_attention_forward_lse_ref,
    .attention_backward = aha_attention_backward_lse_ref,
    .kv_append = aha_kv_append_ref,
    .attention_decode = aha_attention_decode_ref,
    .kv_copy_prefix = aha_kv_copy_prefix_ref,
    .router_topk = aha_router_topk_ref,
    .moe_permute = aha_moe_permute_ref,
    .moe_combine = aha_moe_combine_ref,
    .moe_combine_backward = aha_moe_combine_backward_ref,
    .moe_dispatch_backward = aha_moe_dispatch_backward_ref,
    .router_backward = aha_router_backward_ref,
    .shared_gate_forward = aha_shared_gate_forward_ref,
    .shared_gate_backward = aha_shared_gate_backward_ref,
    .shared_gate_input_backward = aha_shared_gate_input_backward_ref,
    .expert_stats = aha_expert_stats_ref,
    .logprob_forward = ref_logprob_forward,
    .logprob_backward = ref_logprob_backward,
    .adamw_step = aha_adamw_step_ref,
    .grad_norm = aha_grad_norm_ref,
    .sample = aha_sample_ref,
};

AhaBackend *aha_cpu_backend_create(const AhaBackendOptions *options, int reference) {
    AhaBackend *be = aha_host_alloc(NULL, sizeof *be);
    if (be == NULL) return NULL;
    *be = reference ? ref_template : cpu_template;
    be->device = 0;
    if (options->batch_invariant) {
        be->matmul_forward = reference ? matmul_forward_invariant_ref : matmul_forward_invariant;
        be->batch_invariant = 1;
    }
    if (!reference) (void)aha_kernels_cpu(); /* one thread pool: OpenBLAS single-threaded */
    if (options->threads > 0) aha_kernels_set_threads(options->threads);
    return be;
}
