/* Timings of the CUDA backend for scripts/device_check.sh (a benchmark, not a test): the
 * bf16 GEMM of our cuBLASLt path, the grouped expert GEMM of Qwen3-30B-A3B's MoE layer
 * (128 experts, top-8, hidden 2048, expert size 768, 16k tokens) against the dense GEMM of
 * the same total shape, and attention forward + backward at head_dim 128 over 4k tokens.
 * Prints one "bench <name> <ms> ms <TFLOP/s> TFLOP/s" line each. Built with the CUDA
 * backend only (CMakeLists.txt); exits 0 with a note when no device is visible. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/cuda.h"
#include "aha/error.h"

static AhaCuda *cu;
static uint64_t lcg = 7;

static float uniform(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* a device buffer of n random floats (never zeros: they run faster than real data) */
static float *random_f32(size_t n, float scale) {
    float *host = malloc(n * sizeof(float)), *d = NULL;
    if (!host) return NULL;
    for (size_t i = 0; i < n; i++) host[i] = scale * uniform();
    if (aha_cuda_alloc(cu, (void **)&d, n * sizeof(float)) != 0 ||
        aha_cuda_upload(cu, d, host, n * sizeof(float)) != 0)
        d = NULL;
    free(host);
    return d;
}

static AhaBf16 *random_bf16(size_t n, float scale) {
    float *f = random_f32(n, scale);
    AhaBf16 *b = NULL;
    if (!f || aha_cuda_alloc(cu, (void **)&b, n * 2) != 0 || aha_cuda_f32_to_bf16(cu, b, f, n) != 0)
        b = NULL;
    aha_cuda_dealloc(cu, f);
    return b;
}

typedef struct {
    void *out, *in, *w, *extra1, *extra2, *extra3, *extra4, *extra5;
    const int *off;
    int n, k, m, e, heads, kv, hd;
} Job;

static int dense_bf16(void *p) {
    Job *j = p;
    return aha_cuda_matmul_forward_bf16(cu, j->out, j->in, j->w, j->n, j->k, j->m);
}
static int grouped_bf16(void *p) {
    Job *j = p;
    return aha_cuda_grouped_matmul_forward_bf16(cu, j->out, j->in, j->w, j->off, j->n, j->e, j->k,
                                                j->m);
}
static int attention_fwd(void *p) {
    Job *j = p;
    return aha_cuda_attention_forward(cu, j->out, j->extra1, j->in, j->w, j->extra2, j->off, 1,
                                      j->n, j->heads, j->kv, j->hd);
}
static int attention_bwd(void *p) {
    Job *j = p; /* extra3: dout, extra5: dq, extra4: dk, dv at extra4 + n*kv*hd */
    float *dkv = j->extra4;
    return aha_cuda_attention_backward(cu, j->extra5, dkv, dkv + (size_t)j->n * j->kv * j->hd,
                                       j->extra3, j->out, j->in, j->w, j->extra2, j->extra1,
                                       j->off, 1, j->n, j->heads, j->kv, j->hd);
}

static int report(const char *name, double ms, double flops) {
    if (ms < 0) {
        fprintf(stderr, "cuda_bench: %s: %s\n", name, aha_error_message());
        return -1;
    }
    printf("bench %s %.3f ms %.1f TFLOP/s\n", name, ms, flops / (ms * 1e-3) / 1e12);
    fflush(stdout);
    return 0;
}

#define CHECK(x)                                                                               \
    do {                                                                                       \
        if (!(x)) {                                                                            \
            fprintf(stderr, "cuda_bench: %s: %s\n", #x, aha_error_message());                  \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

int main(void) {
    if (aha_cuda_device_count() == 0) {
        printf("bench skipped: no CUDA device is visible\n");
        return 0;
    }
    CHECK((cu = aha_cuda_create(0)) != NULL);
    printf("bench device %s\n", aha_cuda_describe(cu));

    /* dense bf16 GEMM, 8192^3 */
    {
        const int N = 8192;
        Job j = {0};
        j.n = j.k = j.m = N;
        CHECK((j.in = random_bf16((size_t)N * N, 1)) != NULL);
        CHECK((j.w = random_bf16((size_t)N * N, 1)) != NULL);
        CHECK(aha_cuda_alloc(cu, &j.out, (size_t)N * N * 2) == 0);
        CHECK(report("gemm_bf16_8192", aha_cuda_time_ms(cu, dense_bf16, &j, 3, 20),
                     2.0 * N * N * N) == 0);
        aha_cuda_dealloc(cu, j.in), aha_cuda_dealloc(cu, j.w), aha_cuda_dealloc(cu, j.out);
    }

    /* the MoE layer: 16384 tokens x top-8 = 131072 rows, hidden 2048 -> expert size 768 */
    {
        const int tokens = 16384, E = 128, k = 8, H = 2048, I = 768, S = tokens * k;
        int *count = calloc(E, sizeof(int)), *off = malloc((E + 1) * sizeof(int));
        CHECK(count && off);
        for (int t = 0; t < tokens; t++) { /* k distinct random experts per token */
            int chosen[8];
            for (int j = 0; j < k; j++) {
                int e, again;
                do {
                    e = (int)((uniform() + 1.0f) * 0.5f * E) % E;
                    again = 0;
                    for (int i = 0; i < j; i++) again |= chosen[i] == e;
                } while (again);
                chosen[j] = e;
                count[e]++;
            }
        }
        off[0] = 0;
        for (int e = 0; e < E; e++) off[e + 1] = off[e] + count[e];
        int *d_off = NULL;
        CHECK(aha_cuda_alloc(cu, (void **)&d_off, (E + 1) * sizeof(int)) == 0);
        CHECK(aha_cuda_upload(cu, d_off, off, (E + 1) * sizeof(int)) == 0);
        Job j = {0};
        j.n = S, j.k = H, j.m = I, j.e = E, j.off = d_off;
        CHECK((j.in = random_bf16((size_t)S * H, 1)) != NULL);
        CHECK((j.w = random_bf16((size_t)E * I * H, 0.05f)) != NULL);
        CHECK(aha_cuda_alloc(cu, &j.out, (size_t)S * I * 2) == 0);
        double flops = 2.0 * S * H * I;
        Job dense = j;
        dense.w = j.w; /* expert 0's weight stands in for one dense [I, H] matrix */
        CHECK(report("moe_dense_bf16_131072x2048x768", aha_cuda_time_ms(cu, dense_bf16, &dense, 3, 20),
                     flops) == 0);
        CHECK(report("moe_grouped_bf16_e128_k8_h2048_i768_t16k",
                     aha_cuda_time_ms(cu, grouped_bf16, &j, 3, 20), flops) == 0);
        aha_cuda_dealloc(cu, j.in), aha_cuda_dealloc(cu, j.w), aha_cuda_dealloc(cu, j.out);
        aha_cuda_dealloc(cu, d_off);
        free(count), free(off);
    }

    /* attention, one causal sequence of 4096 tokens, 32 query heads, 4 KV heads, head_dim 128:
     * forward 2 T^2 hd heads FLOPs (QK^T and PV over the causal half), backward 2.5 times it */
    {
        const int T = 4096, heads = 32, kv = 4, hd = 128;
        int ss[2] = {0, T}, *d_ss = NULL;
        CHECK(aha_cuda_alloc(cu, (void **)&d_ss, sizeof ss) == 0);
        CHECK(aha_cuda_upload(cu, d_ss, ss, sizeof ss) == 0);
        size_t qn = (size_t)T * heads * hd, kn = (size_t)T * kv * hd;
        Job j = {0};
        j.n = T, j.heads = heads, j.kv = kv, j.hd = hd, j.off = d_ss;
        CHECK((j.in = random_f32(qn, 1)) != NULL);      /* q */
        CHECK((j.w = random_f32(kn, 1)) != NULL);       /* k */
        CHECK((j.extra2 = random_f32(kn, 1)) != NULL);  /* v */
        CHECK((j.extra3 = random_f32(qn, 1)) != NULL);  /* dout */
        CHECK(aha_cuda_alloc(cu, &j.extra5, qn * 4) == 0); /* dq */
        CHECK(aha_cuda_zero(cu, j.extra5, qn * 4) == 0);
        CHECK(aha_cuda_alloc(cu, &j.out, qn * 4) == 0);
        CHECK(aha_cuda_alloc(cu, &j.extra1, (size_t)T * heads * 4) == 0); /* lse */
        CHECK(aha_cuda_alloc(cu, &j.extra4, 2 * kn * 4) == 0);            /* dk, dv */
        CHECK(aha_cuda_zero(cu, j.extra4, 2 * kn * 4) == 0);
        double fwd = 2.0 * T * (double)T * hd * heads;
        double ms_f = aha_cuda_time_ms(cu, attention_fwd, &j, 1, 5);
        CHECK(report("attention_fwd_fp32_hd128_t4096", ms_f, fwd) == 0);
        double ms_b = aha_cuda_time_ms(cu, attention_bwd, &j, 1, 5);
        CHECK(report("attention_bwd_fp32_hd128_t4096", ms_b, 2.5 * fwd) == 0);
        CHECK(report("attention_fwdbwd_fp32_hd128_t4096", ms_f + ms_b, 3.5 * fwd) == 0);
        void *all[] = {d_ss, j.in, j.w, j.extra2, j.extra3, j.out, j.extra1, j.extra4, j.extra5};
        for (size_t i = 0; i < 9; i++) aha_cuda_dealloc(cu, all[i]);
    }
    aha_cuda_free(cu);
    return 0;
}
