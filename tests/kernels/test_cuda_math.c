/* The per-element and per-row math that the CUDA kernels run (kernels/cuda/device_math.h),
 * run here on the CPU against the references it must reproduce: Philox against core/rng.c,
 * SwiGLU, RoPE and log-prob against kernels/cpu/ref.c, AdamW against policy/adamw.c, the
 * router's top-k and its backward against a brute-force sort and finite differences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/kernels.h"
#include "aha/optim.h"
#include "aha/rng.h"
#include "kernels/cuda/device_math.h"

static uint64_t lcg = 12345;
static float uniform(void) { /* [-1, 1) */
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static void assert_close(double got, double want, double rel, const char *what, int i) {
    double err = fabs(got - want) / fmax(1e-30, fmax(fabs(want), 1e-3));
    if (!(err <= rel)) fail_msg("%s[%d]: got %.9g, want %.9g (rel %.3g)", what, i, got, want, err);
}

static void test_philox_matches_core_rng(void **state) {
    (void)state;
    const uint64_t seeds[] = {0, 1, 0xdeadbeefcafef00dULL};
    for (int a = 0; a < 3; a++)
        for (uint64_t stream = 0; stream < 5; stream++)
            for (uint64_t pos = 0; pos < 300; pos += 37) {
                uint64_t st = aha_rng_stream((uint32_t)stream * 7919u, (uint32_t)stream);
                uint64_t p = pos | (pos << 33);
                uint32_t want[4], got[4];
                aha_rng_block(seeds[a], st, p, want);
                aha_dm_philox(seeds[a], st, p, got);
                assert_memory_equal(got, want, sizeof want);
                double u = aha_dm_sample_uniform(seeds[a], st, p);
                assert_true(u == aha_rng_words_to_double(want[0], want[1]));
            }
}

static void test_swiglu_matches_reference(void **state) {
    (void)state;
    enum { N = 257 };
    float gate[N], up[N], dout[N], out[N], dg[N] = {0}, du[N] = {0};
    for (int i = 0; i < N; i++) {
        gate[i] = 6.0f * uniform();
        up[i] = uniform();
        dout[i] = uniform();
    }
    aha_swiglu_forward_ref(out, gate, up, N);
    aha_swiglu_backward_ref(dg, du, dout, gate, up, N);
    for (int i = 0; i < N; i++) {
        float g, u;
        aha_dm_swiglu_backward(dout[i], gate[i], up[i], &g, &u);
        assert_close(aha_dm_swiglu(gate[i], up[i]), out[i], 1e-6, "swiglu", i);
        assert_close(g, dg[i], 1e-6, "dgate", i);
        assert_close(u, du[i], 1e-6, "dup", i);
    }
}

static void rope_device_math(float *x, const int *pos, int n, int heads, int hd, float theta,
                             float direction) {
    int half = hd / 2;
    for (size_t idx = 0; idx < (size_t)n * heads * half; idx++) { /* the kernel's index map */
        int i = (int)(idx % half);
        size_t th = idx / half;
        int t = (int)(th / heads);
        float angle = (float)pos[t] * aha_dm_rope_inv_freq(i, hd, theta);
        float *v = x + th * hd;
        aha_dm_rope_pair(&v[i], &v[i + half], cosf(angle), sinf(angle), direction);
    }
}

static void test_rope_matches_reference(void **state) {
    (void)state;
    enum { NT = 37, HEADS = 3, HD = 128 };
    int pos[NT];
    static float a[NT * HEADS * HD], b[NT * HEADS * HD];
    for (int t = 0; t < NT; t++) pos[t] = t * 113;
    for (int i = 0; i < NT * HEADS * HD; i++) a[i] = b[i] = uniform();
    aha_rope_forward_ref(a, pos, NT, HEADS, HD, 1e6f);
    rope_device_math(b, pos, NT, HEADS, HD, 1e6f, 1.0f);
    for (int i = 0; i < NT * HEADS * HD; i++) assert_close(b[i], a[i], 1e-6, "rope", i);
    aha_rope_backward_ref(a, pos, NT, HEADS, HD, 1e6f);
    rope_device_math(b, pos, NT, HEADS, HD, 1e6f, -1.0f);
    for (int i = 0; i < NT * HEADS * HD; i++) assert_close(b[i], a[i], 1e-6, "rope back", i);
}

static void test_adamw_matches_optimizer(void **state) {
    (void)state;
    enum { N = 1000 };
    AhaAdamWConfig cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    AhaAdamW opt;
    assert_int_equal(aha_adamw_init(&opt, NULL, N, &cfg), 0);
    float p_ref[N], p[N], m[N] = {0}, v[N] = {0}, g[N];
    for (int i = 0; i < N; i++) p_ref[i] = p[i] = uniform();
    for (int step = 1; step <= 3; step++) {
        for (int i = 0; i < N; i++) g[i] = uniform() * 1e-2f;
        aha_adamw_step(&opt, p_ref, g, 3e-4f);
        AhaDmAdamW c = aha_dm_adamw_consts(3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
        for (int i = 0; i < N; i++) aha_dm_adamw(&c, &p[i], g[i], &m[i], &v[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_close(p[i], p_ref[i], 1e-6, "adamw p", i);
        assert_close(m[i], opt.m[i], 1e-6, "adamw m", i);
    }
    aha_adamw_free(&opt);
}

/* brute force: indices sorted by (prob desc, index asc) */
static void test_route_token_top_k_and_ties(void **state) {
    (void)state;
    enum { E = 64, K = 8 };
    for (int trial = 0; trial < 20; trial++) {
        float p[E], logits[E], w[K];
        int idx[K];
        for (int e = 0; e < E; e++) logits[e] = p[e] = trial % 4 == 0 ? (float)(e % 5) : uniform();
        aha_dm_route_token(p, E, K, trial % 2, idx, w);
        double sum = 0;
        for (int e = 0; e < E; e++) sum += p[e];
        assert_close(sum, 1.0, 1e-5, "softmax sum", trial);
        int order[E];
        for (int e = 0; e < E; e++) order[e] = e;
        for (int i = 0; i < E; i++) /* selection sort, stable on index */
            for (int j = i + 1; j < E; j++)
                if (logits[order[j]] > logits[order[i]] ||
                    (logits[order[j]] == logits[order[i]] && order[j] < order[i])) {
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
        double wsum = 0;
        for (int j = 0; j < K; j++) {
            assert_int_equal(idx[j], order[j]);
            wsum += w[j];
        }
        if (trial % 2) assert_close(wsum, 1.0, 1e-5, "renormalized weights", trial);
    }
}

/* loss = sum_j c_j w_j + sum_e a_e p_e over the router logits, top-k set held fixed */
static double route_loss(const float *logits, int E, int k, int norm, const int *fixed_idx,
                         const float *c, const float *a) {
    float p[64];
    for (int e = 0; e < E; e++) p[e] = logits[e];
    float max = -INFINITY, sum = 0;
    for (int e = 0; e < E; e++) max = fmaxf(max, p[e]);
    for (int e = 0; e < E; e++) sum += (p[e] = expf(p[e] - max));
    double loss = 0, wsum = 0;
    for (int e = 0; e < E; e++) {
        p[e] /= sum;
        loss += (double)a[e] * p[e];
    }
    for (int j = 0; j < k; j++) wsum += p[fixed_idx[j]];
    for (int j = 0; j < k; j++) loss += c[j] * (norm ? p[fixed_idx[j]] / wsum : p[fixed_idx[j]]);
    return loss;
}

static void test_router_backward_finite_differences(void **state) {
    (void)state;
    enum { E = 16, K = 4 };
    for (int norm = 0; norm < 2; norm++) {
        float logits[E], p[E], w[K], c[K], a[E], dl[E];
        int idx[K];
        for (int e = 0; e < E; e++) {
            logits[e] = p[e] = 2.0f * uniform();
            a[e] = uniform();
        }
        for (int j = 0; j < K; j++) c[j] = uniform();
        aha_dm_route_token(p, E, K, norm, idx, w);
        aha_dm_router_backward_token(dl, p, idx, w, c, a, E, K, norm);
        for (int e = 0; e < E; e++) {
            float saved = logits[e], h = 1e-2f;
            logits[e] = saved + h;
            double up = route_loss(logits, E, K, norm, idx, c, a);
            logits[e] = saved - h;
            double down = route_loss(logits, E, K, norm, idx, c, a);
            logits[e] = saved;
            double numeric = (up - down) / (2.0 * h);
            if (fabs(numeric - dl[e]) > 2e-3 * fmax(1.0, fabs(numeric)))
                fail_msg("norm %d: dlogit[%d] %.6g vs numeric %.6g", norm, e, dl[e], numeric);
        }
    }
}

static void test_find_segment_skips_empty(void **state) {
    (void)state;
    const int starts[] = {0, 3, 3, 3, 7, 8, 8}; /* 6 segments, 1, 2 and 5 empty */
    int want[8] = {0, 0, 0, 3, 3, 3, 3, 4};
    for (int t = 0; t < 8; t++) assert_int_equal(aha_dm_find_segment(starts, 6, t), want[t]);
}

static void test_lse_chunks_match_logprob_reference(void **state) {
    (void)state;
    enum { V = 4099, CHUNK = 1000 };
    static float z[V];
    for (int i = 0; i < V; i++) z[i] = 8.0f * uniform();
    const int targets[] = {0, 1234, V - 1};
    for (int r = 0; r < 3; r++) {
        float tau = r == 1 ? 0.7f : 1.0f, inv_t = 1.0f / tau;
        double st[4] = {-INFINITY, 0, 0, 0};
        for (int c0 = 0; c0 < V; c0 += CHUNK) { /* the chunk kernel, serially */
            int cols = V - c0 < CHUNK ? V - c0 : CHUNK;
            float max = -INFINITY;
            for (int i = 0; i < cols; i++) max = fmaxf(max, z[c0 + i] * inv_t);
            double sum = 0, spz = 0;
            for (int i = 0; i < cols; i++) {
                float d = z[c0 + i] * inv_t - max;
                double e = exp((double)d);
                sum += e;
                spz += e * d;
            }
            if (targets[r] >= c0 && targets[r] < c0 + cols) st[3] = (double)(z[targets[r]] * inv_t);
            aha_dm_lse_merge(st, max, sum, spz);
        }
        float lp, ent, lp_ref, ent_ref;
        aha_dm_lse_finish(st, 1, &lp, &ent);
        aha_logprob_forward_ref(&lp_ref, &ent_ref, z, &targets[r], 1, V, tau);
        assert_close(lp, lp_ref, 1e-6, "chunked logprob", r);
        assert_close(ent, ent_ref, 1e-6, "chunked entropy", r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_matches_core_rng),
        cmocka_unit_test(test_swiglu_matches_reference),
        cmocka_unit_test(test_rope_matches_reference),
        cmocka_unit_test(test_adamw_matches_optimizer),
        cmocka_unit_test(test_route_token_top_k_and_ties),
        cmocka_unit_test(test_router_backward_finite_differences),
        cmocka_unit_test(test_find_segment_skips_empty),
        cmocka_unit_test(test_lse_chunks_match_logprob_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
