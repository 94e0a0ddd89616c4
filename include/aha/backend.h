/* The compute backend: a context that owns memory on one device and runs every op one GRPO
 * step needs on it (training forward and backward, router, experts, optimizer, KV-cache
 * decoding, sampling).
 *
 * A backend is an AhaBackend: a C struct of function pointers (ggml's backend interface
 * style) plus the backend's private state. Create one per device AND per thread that
 * launches work: the sampler thread and the trainer each get their own context (on CUDA,
 * their own stream). Contexts of one backend in one process share memory: a pointer from
 * one context's alloc may be passed to another's ops once the writer's sync has returned.
 *
 *   "cpu"      OpenMP across rows, OpenBLAS sgemm for the products, AVX2 row kernels
 *              (kernels/cpu/). Backend memory is host memory.
 *   "cpu-ref"  the plain C references (kernels/cpu/ref*.c): one loop nest per op, one thread,
 *              the numbers every other backend is checked against (tests/kernels/
 *              test_backend_ops.c). Backend memory is host memory.
 *   "cuda"     kernels/cuda/, when libaha was built with it (AHA_HAVE_CUDA) and a device is
 *              there; see docs/ARCHITECTURE.md.
 *
 * Memory. Every pointer an op takes is BACKEND memory (from alloc, or an offset into it)
 * unless its comment says "host". Host code reads and writes it only through upload and
 * download (host_memory = 1 says the backend's memory is plain host memory, which code not
 * yet routed through the backend relies on; such code checks the flag).
 *
 * Ordering and errors. Ops run in call order on their context. They return nothing: a
 * backend that meets a failure inside an op (no scratch memory, a setting it does not
 * implement) records it, skips the rest of its work, and the next sync (or download)
 * returns -1 with the message (aha/error.h). CPU contexts finish every op before returning.
 *
 * Conventions (llm.c, as aha/kernels.h): row-major float32, int32 indices; `n` rows; weights
 * [out, in] as in Hugging Face. Forward ops OVERWRITE their outputs; backward ops ACCUMULATE
 * (+=) into every gradient they are given unless the entry says "overwrites", and a gradient
 * pointer may be NULL where the entry says so. Sizes are host ints. T = rows, H = hidden
 * size, E = experts, k = experts per token, S = T*k expert slots, QD = heads*head_dim,
 * KD = kv_heads*head_dim, V = vocabulary. */
#ifndef AHA_BACKEND_H
#define AHA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AhaBackend AhaBackend;

typedef struct AhaBackendOptions {
    int device;          /* device ordinal (CUDA); the CPU backends ignore it */
    int batch_invariant; /* 1: matmul_forward must give a row the same bits whatever the
                            number of rows, the row's place and the thread count (the sampler
                            and the trainer ask for this, so the trainer's log-probs equal
                            the sampler's). A backend that cannot sets batch_invariant = 0 in
                            the context, and the trainer then reports the gap. */
    int threads;         /* CPU threads (OpenMP); <= 0 keeps the process setting */
} AhaBackendOptions;

/* A packed batch of sequences for attention: sequence s is rows
 * [seq_start[s], seq_start[s+1]); attention never crosses sequences. */
typedef struct AhaSeqs {
    const int *seq_start; /* backend memory [n_seqs+1], seq_start[0] = 0, nondecreasing */
    int n_seqs;
    int n_rows;           /* host copy of seq_start[n_seqs] */
    int max_len;          /* host: the longest sequence */
} AhaSeqs;

/* The KV cache arena: keys [n_layers, n_slots, max_len, kv_dim], then values of the same
 * shape. Slot `slot` of layer `l` has its keys at cache + ((l*n_slots + slot)*max_len)*kv_dim,
 * one row of kv_dim floats per position. */
typedef struct AhaKvLayout {
    int n_layers, n_slots, max_len, kv_dim;
} AhaKvLayout;

/* How router logits become expert choices and mixing weights. Today: softmax over E, the k
 * largest (ties: lower expert index first), optionally renormalized to sum 1. The fields
 * marked "reserved" are for sigmoid scoring with a selection bias and group-limited top-k
 * (DeepSeek-V3); a backend given a value it does not implement fails the op. */
typedef enum AhaRouterScore {
    AHA_ROUTER_SOFTMAX = 0,
    AHA_ROUTER_SIGMOID = 1, /* reserved */
} AhaRouterScore;

typedef struct AhaRouting {
    int num_experts;      /* E */
    int top_k;            /* k <= E */
    AhaRouterScore score;
    int renormalize;      /* w_j = p_j / sum of the k chosen p (norm_topk_prob) */
    const float *bias;    /* reserved: [E] added to scores for the choice only; NULL */
    int n_groups;         /* reserved: group-limited top-k over n_groups groups; 0 = off */
    int topk_groups;      /* reserved: groups kept; 0 */
    float scale;          /* reserved: routed_scaling_factor on the weights; 1 */
} AhaRouting;

/* One AdamW step (torch.optim.AdamW), computed exactly as aha/optim.h writes it:
 *   bc1 = 1 - beta1^step, bc2_sqrt = sqrt(1 - beta2^step) (powf, sqrtf on the host values)
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g g
 *   p = p (1 - lr wd) - (lr / bc1) m / (sqrt(v) / bc2_sqrt + eps) */
typedef struct AhaAdamWStep {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step; /* >= 1: the step being taken */
} AhaAdamWStep;

/* Sampling settings of one call (aha/sampler.h has their meaning). */
typedef struct AhaSampleSpec {
    float temperature; /* > 0 samples; 0 greedy (argmax, lowest id on ties) */
    float top_p;       /* (0, 1]; 1 = off */
    int top_k;         /* 0 = off */
    uint64_t seed;     /* Philox key (aha/rng.h) */
} AhaSampleSpec;

struct AhaBackend {
    const char *name;    /* "cpu", "cpu-ref", "cuda" */
    int device;
    int batch_invariant; /* see AhaBackendOptions; what this context actually gives */
    int host_memory;     /* backend memory is host memory (the CPU backends) */
    void *impl;          /* the backend's private state */
    int failed;          /* a failure is recorded (aha_backend_fail) */
    char failure[256];   /* its message */

    /* ---- memory -------------------------------------------------------------------- */
    /* bytes of backend memory, 64-byte aligned, contents undefined; NULL (error recorded)
     * when there is not enough. bytes = 0 gives a valid pointer. */
    void *(*alloc)(AhaBackend *be, size_t bytes);
    void (*free)(AhaBackend *be, void *ptr); /* NULL is ignored */
    /* host src -> backend dst; src may be reused when it returns. 0 or -1. */
    int (*upload)(AhaBackend *be, void *dst, const void *src, size_t bytes);
    /* backend src -> host dst, after every op issued before it; 0, or -1 when this or an
     * earlier op failed. */
    int (*download)(AhaBackend *be, void *dst, const void *src, size_t bytes);
    /* backend -> backend (regions must not overlap), and zero fill, ordered with the ops */
    void (*copy)(AhaBackend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(AhaBackend *be, void *dst, size_t bytes);
    /* waits for every op issued so far; 0, or -1 with the first recorded failure (which it
     * clears). */
    int (*sync)(AhaBackend *be);
    /* frees the context's own state (not memory it handed out); aha_backend_free calls it */
    void (*destroy)(AhaBackend *be);

    /* ---- dense products ------------------------------------------------------------- */
    /* out[n,out_dim] = in[n,in_dim] @ weight[out_dim,in_dim]^T (+ bias[out_dim], NULL ok).
     * Batch-invariant when the context says so. */
    void (*matmul_forward)(AhaBackend *be, float *out, const float *in, const float *weight,
                           const float *bias, int n, int in_dim, int out_dim);
    /* din[n,in_dim] += dout @ weight; dweight[out_dim,in_dim] += dout^T @ in;
     * dbias[out_dim] += column sums of dout. Each of din, dweight, dbias may be NULL. */
    void (*matmul_backward)(AhaBackend *be, float *din, float *dweight, float *dbias,
                            const float *dout, const float *in, const float *weight, int n,
                            int in_dim, int out_dim);
    /* The expert GEMM over permuted rows: rows [off[e], off[e+1]) of in[n_rows,in_dim] go
     * through expert e's weight[e][out_dim][in_dim]:
     *   out[r] = in[r] @ weight[e]^T  for off[e] <= r < off[e+1]
     * expert_off [n_experts+1] backend memory from moe_permute. Row indices are absolute
     * (into in and out); rows outside [off[0], off[n_experts]) are left alone, so a caller
     * that runs only experts [e0, e1) (expert parallel) passes expert_off + e0, weight + e0
     * experts and n_experts = e1 - e0; usually off[0] = 0 and off[E] = n_rows. The rows of
     * one expert get exactly matmul_forward's numbers for that many rows. */
    void (*grouped_matmul_forward)(AhaBackend *be, float *out, const float *in,
                                   const float *weight, const int *expert_off, int n_rows,
                                   int n_experts, int in_dim, int out_dim);
    /* din[n_rows,in_dim] += dout @ weight[e]; dweight[e] += dout_e^T @ in_e (din or dweight
     * may be NULL), per expert as matmul_backward; rows as in the forward. */
    void (*grouped_matmul_backward)(AhaBackend *be, float *din, float *dweight,
                                    const float *dout, const float *in, const float *weight,
                                    const int *expert_off, int n_rows, int n_experts,
                                    int in_dim, int out_dim);

    /* ---- rows and elements ------------------------------------------------------------ */
    /* out[i,:] = table[rows[i],:] for i < n (embedding lookup, MoE dispatch). rows [n]. */
    void (*gather_rows)(AhaBackend *be, float *out, const float *table, const int *rows, int n,
                        int dim);
    /* table[rows[i],:] += in[i,:], i = 0..n-1 in order (embedding backward; the order makes
     * repeated rows deterministic). */
    void (*scatter_add_rows)(AhaBackend *be, float *table, const float *in, const int *rows,
                             int n, int dim);
    /* y[count] += x[count] (residual add, gradient sums) */
    void (*add)(AhaBackend *be, float *y, const float *x, size_t count);
    /* x[count] *= factor (gradient clipping) */
    void (*scale)(AhaBackend *be, float *x, size_t count, float factor);
    /* out[n,dim] = in * rsqrt(mean(in^2) + eps) * weight[dim]; rstd[n] (NULL ok) keeps
     * 1/RMS for backward. out may equal in. */
    void (*rmsnorm_forward)(AhaBackend *be, float *out, float *rstd, const float *in,
                            const float *weight, int n, int dim, float eps);
    /* din[n,dim] +=, dweight[dim] += (NULL ok); rstd from the forward */
    void (*rmsnorm_backward)(AhaBackend *be, float *din, float *dweight, const float *dout,
                             const float *in, const float *weight, const float *rstd, int n,
                             int dim);
    /* Rotary embedding, half-split (element j pairs with j + head_dim/2), IN PLACE on
     * x[n, heads, head_dim] at positions pos[n]; inv_freq_i = theta^(-2i/head_dim).
     * rope_backward applies the inverse rotation to a gradient, in place. */
    void (*rope_forward)(AhaBackend *be, float *x, const int *pos, int n, int heads,
                         int head_dim, float theta);
    void (*rope_backward)(AhaBackend *be, float *dx, const int *pos, int n, int heads,
                          int head_dim, float theta);
    /* out[count] = silu(gate) * up */
    void (*swiglu_forward)(AhaBackend *be, float *out, const float *gate, const float *up,
                           size_t count);
    /* dgate += dout * d silu(gate) * up; dup += dout * silu(gate) */
    void (*swiglu_backward)(AhaBackend *be, float *dgate, float *dup, const float *dout,
                            const float *gate, const float *up, size_t count);

    /* ---- attention ---------------------------------------------------------------------- */
    /* Causal GQA attention over packed sequences, scale head_dim^-0.5, query head h reads
     * KV head h / (heads/kv_heads). q/out [n_rows, QD], k/v [n_rows, KD].
     * lse[n_rows, heads] (NULL ok) receives log sum_j exp(score_ij): with out it is all the
     * backward needs, no probability matrix is kept (flash-style recompute). */
    void (*attention_forward)(AhaBackend *be, float *out, float *lse, const float *q,
                              const float *k, const float *v, const AhaSeqs *seqs, int heads,
                              int kv_heads, int head_dim);
    /* dq [n_rows,QD], dk, dv [n_rows,KD] accumulate (each NULL ok); out and lse from the
     * forward on the same q, k, v (a backend may recompute them instead). */
    void (*attention_backward)(AhaBackend *be, float *dq, float *dk, float *dv,
                               const float *dout, const float *q, const float *k,
                               const float *v, const float *out, const float *lse,
                               const AhaSeqs *seqs, int heads, int kv_heads, int head_dim);
    /* KV cache: k, v [n, KD] rows go to position pos[i] of slot slots[i] in `layer`.
     * slots, pos [n]; pos[i] < max_len. */
    void (*kv_append)(AhaBackend *be, float *cache, const AhaKvLayout *kv, int layer,
                      const float *k, const float *v, const int *slots, const int *pos, int n);
    /* Decode attention: row i (q [n,QD] -> out [n,QD]) attends to positions [0, pos[i]] of
     * slot slots[i] in `layer` (its own K/V appended first). Gives exactly the numbers the
     * training attention_forward gives the same row of a sequence. */
    void (*attention_decode)(AhaBackend *be, float *out, const float *q, const float *cache,
                             const AhaKvLayout *kv, int layer, const int *slots,
                             const int *pos, int n, int heads, int kv_heads, int head_dim);
    /* Prefix sharing: positions [0, len) of every layer, K and V, from slot src to slot dst
     * (host ints; dst != src). */
    void (*kv_copy_prefix)(AhaBackend *be, float *cache, const AhaKvLayout *kv, int dst,
                           int src, int len);

    /* ---- mixture of experts ---------------------------------------------------------- */
    /* probs[n,E]: router logits in, scores out (softmax over E), in place. topk_idx[n,k] the
     * chosen experts, best first (ties: lower index), topk_w[n,k] their mixing weights. */
    void (*router_topk)(AhaBackend *be, float *probs, float *topk_w, int *topk_idx, int n,
                        const AhaRouting *routing);
    /* Counting sort of the (token, j) assignments by expert, stable in (t, j) order:
     * expert_off[E+1] (expert e owns slots [off[e], off[e+1])), slot_token[S] the token of
     * each slot, slot_of[n,k] the slot of (t, j). All overwritten. */
    void (*moe_permute)(AhaBackend *be, int *expert_off, int *slot_token, int *slot_of,
                        const int *topk_idx, int n, int num_experts, int k);
    /* y[t] = sum_j topk_w[t,j] * eo[slot_of[t,j]] in j order (overwrites y [n,H]) */
    void (*moe_combine)(AhaBackend *be, float *y, const float *eo, const float *topk_w,
                        const int *slot_of, int n, int k, int dim);
    /* overwrites deo[S,H] (deo[slot_of[t,j]] = topk_w[t,j] dy[t]) and dw[n,k]
     * (dw[t,j] = dy[t] . eo[slot_of[t,j]]) */
    void (*moe_combine_backward)(AhaBackend *be, float *deo, float *dw, const float *dy,
                                 const float *eo, const float *topk_w, const int *slot_of,
                                 int n, int k, int dim);
    /* dx[t] += sum_j dxg[slot_of[t,j]] in j order (the backward of the dispatch gather) */
    void (*moe_dispatch_backward)(AhaBackend *be, float *dx, const float *dxg,
                                  const int *slot_of, int n, int k, int dim);
    /* Overwrites dlogits[n,E], the gradient at the router logits, from dw[n,k] (at the
     * mixing weights, through the renormalization when set) plus aux_dprob[E] (NULL ok: the
     * load-balancing term, added to every token's probability gradient), through the
     * softmax. probs, topk_w, topk_idx from router_topk. */
    void (*router_backward)(AhaBackend *be, float *dlogits, const float *probs,
                            const float *topk_w, const int *topk_idx, const float *dw,
                            const float *aux_dprob, int n, const AhaRouting *routing);
    /* Shared expert gate: gate[t] = sigmoid(x[t] . wg) (overwritten, [n]) and
     * y[t] += gate[t] * so[t]. x, so, y [n,dim]; wg [dim]. */
    void (*shared_gate_forward)(AhaBackend *be, float *y, float *gate, const float *x,
                                const float *wg, const float *so, int n, int dim);
    /* Overwrites dso[n,dim] = gate dy and dlogit[n] = (dy . so) gate (1 - gate). */
    void (*shared_gate_backward)(AhaBackend *be, float *dso, float *dlogit, const float *dy,
                                 const float *so, const float *gate, int n, int dim);
    /* dx[t] += dlogit[t] wg; dwg += sum_t dlogit[t] x[t] (t in order) */
    void (*shared_gate_input_backward)(AhaBackend *be, float *dx, float *dwg,
                                       const float *dlogit, const float *x, const float *wg,
                                       int n, int dim);
    /* count[e] += number of (t, j) with topk_idx = e; prob_sum[e] += sum_t probs[t,e]
     * (t in order). count, prob_sum [E]. */
    void (*expert_stats)(AhaBackend *be, float *count, float *prob_sum, const int *topk_idx,
                         const float *probs, int n, int num_experts, int k);

    /* ---- log-probabilities ------------------------------------------------------------- */
    /* Per row t of logits[n,V], p = softmax(logits/temperature): logprob[t] = log
     * p[targets[t]] (0 where targets[t] < 0), entropy[t] = -sum p log p (NULL ok). The
     * caller passes the LM head's logits a chunk of rows at a time. */
    void (*logprob_forward)(AhaBackend *be, float *logprob, float *entropy,
                            const float *logits, const int *targets, int n, int vocab,
                            float temperature);
    /* OVERWRITES dlogits[n,V] = dlogprob[t] (onehot(target) - p) / temperature (zeros where
     * target < 0) */
    void (*logprob_backward)(AhaBackend *be, float *dlogits, const float *dlogprob,
                             const float *logits, const int *targets, int n, int vocab,
                             float temperature);

    /* ---- optimizer -------------------------------------------------------------------- */
    /* AdamW over whole arenas params, grads, m, v [count] (one call for every tensor) */
    void (*adamw_step)(AhaBackend *be, float *params, const float *grads, float *m, float *v,
                       size_t count, const AhaAdamWStep *step);
    /* *norm (host) = sqrt(sum grads^2) accumulated in double, over the whole arena; waits
     * for the result. 0, or -1 as sync. */
    int (*grad_norm)(AhaBackend *be, float *norm, const float *grads, size_t count);

    /* ---- sampling ------------------------------------------------------------------------ */
    /* Sequence i draws from logits row rows[i] of logits[*,V]: u = the first two words of
     * the Philox block (spec->seed, streams[i], positions[i]) as a 53-bit double
     * (aha_rng_words_to_double), then temperature / top-k / top-p / greedy exactly as
     * aha/sampler.h defines them. tokens[n] the draws; logprobs[n] = logprob_forward of the
     * drawn token at the temperature (1 when greedy), the trainer's own numbers.
     * rows, streams, positions [n] backend memory. */
    void (*sample)(AhaBackend *be, int *tokens, float *logprobs, const float *logits,
                   const int *rows, const uint64_t *streams, const uint64_t *positions, int n,
                   int vocab, const AhaSampleSpec *spec);
};

/* Backends compiled into libaha, in order: "cpu", "cpu-ref", then "cuda" when built. */
int aha_backend_count(void);
const char *aha_backend_name(int i);
/* A new context of the named backend (options NULL: device 0, not batch-invariant, the
 * process's threads). NULL with an error recorded: an unknown name, a backend not built, or
 * no device. */
AhaBackend *aha_backend_create(const char *name, const AhaBackendOptions *options);
void aha_backend_free(AhaBackend *be);

/* For backend implementations: record the context's first failure (printf format); sync
 * returns it. */
void aha_backend_fail(AhaBackend *be, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Takes the recorded failure: 0 if none, else -1 with it as the thread's error (clears it). */
int aha_backend_take_failure(AhaBackend *be);

/* Implemented by kernels/cuda/ when AHA_HAVE_CUDA; aha_backend_create("cuda", ...) calls
 * it. NULL with an error when no device can be used. */
AhaBackend *aha_backend_cuda_create(const AhaBackendOptions *options);

#ifdef __cplusplus
}
#endif

#endif
