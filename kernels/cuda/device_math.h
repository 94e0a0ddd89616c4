/* The per-element and per-row math of the CUDA kernels as __host__ __device__ inline
 * functions, so a plain C test (tests/kernels/test_cuda_math.c) runs the very code the GPU
 * runs against the CPU references. Plain C11 when not compiled by nvcc. */
#ifndef AHA_KERNELS_CUDA_DEVICE_MATH_H
#define AHA_KERNELS_CUDA_DEVICE_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define AHA_HD __host__ __device__ __forceinline__
#else
#define AHA_HD static inline
#endif

/* ---- SwiGLU -------------------------------------------------------------------------- */
AHA_HD float aha_dm_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

AHA_HD float aha_dm_swiglu(float gate, float up) { return gate * aha_dm_sigmoid(gate) * up; }

AHA_HD void aha_dm_swiglu_backward(float dout, float gate, float up, float *dgate, float *dup) {
    float s = aha_dm_sigmoid(gate);
    *dgate = dout * up * s * (1.0f + gate * (1.0f - s));
    *dup = dout * gate * s;
}

/* ---- RoPE (half-split; the angle as transformers computes it, in float) -------------- */
/* inv_freq_i = 1 / theta^(2i/d). The CUDA backend evaluates this on the HOST (the C
 * library's powf, as kernels/cpu/ref.c) and uploads the table, so the device's angle
 * pos * inv_freq_i is the CPU's float to the bit; only cosf/sinf differ (by an ulp or two). */
AHA_HD float aha_dm_rope_inv_freq(int i, int head_dim, float theta) {
    return 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
}

/* rotates the pair (x[i], x[i + half]) by +angle (direction 1) or -angle (-1) */
AHA_HD void aha_dm_rope_pair(float *a, float *b, float c, float s, float direction) {
    float x = *a, y = *b;
    s *= direction;
    *a = x * c - y * s;
    *b = y * c + x * s;
}

/* ---- AdamW (torch.optim.AdamW, as policy/adamw.c) ------------------------------------ */
typedef struct {
    float beta1, beta2, eps;
    float step_size;  /* lr / (1 - beta1^t) */
    float bc2_sqrt;   /* sqrt(1 - beta2^t) */
    float decay;      /* 1 - lr * weight_decay */
} AhaDmAdamW;

AHA_HD AhaDmAdamW aha_dm_adamw_consts(float lr, float beta1, float beta2, float eps,
                                     float weight_decay, int64_t step) {
    AhaDmAdamW c;
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.eps = eps;
    c.step_size = lr / (1.0f - powf(beta1, (float)step));
    c.bc2_sqrt = sqrtf(1.0f - powf(beta2, (float)step));
    c.decay = 1.0f - lr * weight_decay;
    return c;
}

AHA_HD void aha_dm_adamw(const AhaDmAdamW *c, float *p, float g, float *m, float *v) {
    *m = c->beta1 * *m + (1.0f - c->beta1) * g;
    *v = c->beta2 * *v + (1.0f - c->beta2) * g * g;
    float denom = sqrtf(*v) / c->bc2_sqrt + c->eps;
    *p = *p * c->decay - c->step_size * *m / denom;
}

/* ---- Philox4x32-10 (core/rng.c; key = seed, counter = position then stream) --------- */
AHA_HD void aha_dm_philox(uint64_t seed, uint64_t stream, uint64_t position, uint32_t out[4]) {
    uint32_t x0 = (uint32_t)position, x1 = (uint32_t)(position >> 32);
    uint32_t x2 = (uint32_t)stream, x3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        x0 = hi1 ^ x1 ^ k0;
        x1 = lo1;
        x2 = hi0 ^ x3 ^ k1;
        x3 = lo0;
    }
    out[0] = x0;
    out[1] = x1;
    out[2] = x2;
    out[3] = x3;
}

/* the sampler's uniform: 53 bits of words 0 and 1 (aha_rng_words_to_double) */
AHA_HD double aha_dm_sample_uniform(uint64_t seed, uint64_t stream, uint64_t position) {
    uint32_t w[4];
    aha_dm_philox(seed, stream, position, w);
    uint64_t bits = ((uint64_t)(w[0] >> 5) << 26) | (w[1] >> 6);
    return (double)bits * (1.0 / 9007199254740992.0);
}

/* ---- MoE routing of one token (policy/moe.c route()) --------------------------------- */
/* p[E] holds the router logits and receives the softmax; idx/w [k]. */
AHA_HD void aha_dm_route_token(float *p, int E, int k, int norm_topk, int *idx, float *w) {
    float max = -INFINITY, sum = 0.0f;
    for (int e = 0; e < E; e++) max = fmaxf(max, p[e]);
    for (int e = 0; e < E; e++) {
        p[e] = expf(p[e] - max);
        sum += p[e];
    }
    for (int e = 0; e < E; e++) p[e] /= sum;
    float wsum = 0.0f;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int i = 0; i < j; i++) taken |= idx[i] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        idx[j] = best;
        w[j] = p[best];
        wsum += p[best];
    }
    if (norm_topk)
        for (int j = 0; j < k; j++) w[j] /= wsum;
}

/* Router backward of one token (policy/moe.c ffn_backward): dp[E] receives d/dlogits.
 * dw[k]: gradient of the top-k weights; aux_dprob[E] may be NULL. */
AHA_HD void aha_dm_router_backward_token(float *dp, const float *p, const int *idx,
                                         const float *w, const float *dw,
                                         const float *aux_dprob, int E, int k, int norm_topk) {
    for (int e = 0; e < E; e++) dp[e] = aux_dprob ? aux_dprob[e] : 0.0f;
    if (norm_topk) {
        float sum = 0.0f, dot = 0.0f;
        for (int j = 0; j < k; j++) {
            sum += p[idx[j]];
            dot += dw[j] * w[j];
        }
        for (int j = 0; j < k; j++) dp[idx[j]] += (dw[j] - dot) / sum;
    } else {
        for (int j = 0; j < k; j++) dp[idx[j]] += dw[j];
    }
    float pdp = 0.0f;
    for (int e = 0; e < E; e++) pdp += p[e] * dp[e];
    for (int e = 0; e < E; e++) dp[e] = p[e] * (dp[e] - pdp);
}

/* ---- Index math ---------------------------------------------------------------------- */
/* The sequence holding row t of a packed batch: the s with starts[s] <= t < starts[s+1]
 * (starts[n_seqs+1], nondecreasing; empty sequences are skipped). */
AHA_HD int aha_dm_find_segment(const int *starts, int n_segments, int t) {
    int lo = 0, hi = n_segments - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (starts[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* ---- Log-softmax statistics over vocabulary chunks ----------------------------------- */
/* state = {max, sum of exp(y - max), sum of exp(y - max) * (y - max), target's y}; merging a
 * chunk's (max_c, sum_c, sum_pz_c) taken relative to max_c. */
AHA_HD void aha_dm_lse_merge(double *state, double max_c, double sum_c, double sum_pz_c) {
    double m = state[0];
    if (sum_c == 0.0) return;
    if (state[1] == 0.0) {
        state[0] = max_c;
        state[1] = sum_c;
        state[2] = sum_pz_c;
        return;
    }
    double nm = m > max_c ? m : max_c;
    double a = exp(m - nm), b = exp(max_c - nm);
    /* sum e'(y - nm) = a * (sum_pz + sum * (m - nm)) */
    state[2] = a * (state[2] + state[1] * (m - nm)) + b * (sum_pz_c + sum_c * (max_c - nm));
    state[1] = a * state[1] + b * sum_c;
    state[0] = nm;
}

/* logprob and entropy of a finished state */
AHA_HD void aha_dm_lse_finish(const double *state, int has_target, float *logprob,
                              float *entropy) {
    double lse = log(state[1]);
    *logprob = has_target ? (float)((state[3] - state[0]) - lse) : 0.0f;
    *entropy = (float)(lse - state[2] / state[1]);
}

#endif
