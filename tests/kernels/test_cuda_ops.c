/* Every launcher of the CUDA backend (aha/cuda.h) against the CPU references, on random
 * inputs at sizes above every vector and tile threshold (rows >= 32, head_dim 64 and 128,
 * vocabulary >= 4096, 64 experts top-8 and 8 experts top-2). Each check prints one line
 *   opcheck <op> <dtype> maxrel <error> tol <tolerance> pass|FAIL
 * (max |got - want| / max |want|) that scripts/device_check.sh gathers into its table.
 * Without a CUDA build or without a device the test checks that the context fails cleanly
 * and skips the rest: nothing here has run on a GPU until device_check.sh has. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/backend.h"
#include "aha/cuda.h"
#include "aha/error.h"
#include "aha/kernels.h"
#include "aha/optim.h"
#include "aha/rng.h"
#include "kernels/cuda/device_math.h"
#include "rollout/sample.h"

#ifdef AHA_HAVE_CUDA

#define TOL_ELEMENTWISE 1e-5 /* fp32, no products: a few ulps of expf/cosf apart */
#define TOL_PRODUCTS 1e-4    /* fp32 with dot products or GEMMs: summation order */
/* bf16 operands and output: each input carries 2^-9 relative rounding, the output another
 * 2^-9, and fp32 accumulation over K terms of mixed sign: 1e-2 of the largest |value|
 * leaves room for that and still catches any indexing or tiling error (those are O(1)). */
#define TOL_BF16 1e-2

static AhaCuda *cu;
static int failures;

static uint64_t lcg = 2024;
static float uniform(void) { /* [-1, 1) */
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * uniform();
    return x;
}

static void *dev(const void *host, size_t bytes) {
    void *d = NULL;
    if (aha_cuda_alloc(cu, &d, bytes) != 0) fail_msg("%s", aha_error_message());
    if (host && aha_cuda_upload(cu, d, host, bytes) != 0) fail_msg("%s", aha_error_message());
    if (!host && aha_cuda_zero(cu, d, bytes) != 0) fail_msg("%s", aha_error_message());
    return d;
}
static void *devf(const float *host, size_t n) { return dev(host, n * sizeof(float)); }
static float *back(const void *d, size_t n) {
    float *h = malloc(n * sizeof(float));
    if (aha_cuda_download(cu, h, d, n * sizeof(float)) != 0) fail_msg("%s", aha_error_message());
    return h;
}
#define OK(call)                                                                               \
    do {                                                                                       \
        if ((call) != 0) fail_msg("%s: %s", #call, aha_error_message());                        \
    } while (0)

static double max_rel(const float *got, const float *want, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isinf(got[i])) return INFINITY;
        diff = fmax(diff, fabs((double)got[i] - want[i]));
        scale = fmax(scale, fabs((double)want[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static void report(const char *op, const char *dtype, double err, double tol) {
    int pass = err <= tol;
    printf("opcheck %-34s %-5s maxrel %.3e tol %.0e %s\n", op, dtype, err, tol,
           pass ? "pass" : "FAIL");
    fflush(stdout);
    if (!pass) failures++;
}
static void compare(const char *op, const float *d_got, const float *want, size_t n, double tol) {
    float *got = back(d_got, n);
    report(op, "fp32", max_rel(got, want, n), tol);
    free(got);
}

static int setup(void **state) {
    (void)state;
    if (aha_cuda_device_count() == 0) return 0;
    cu = aha_cuda_create(0);
    if (!cu) fail_msg("a device is visible but the context failed: %s", aha_error_message());
    printf("cuda device: %s\n", aha_cuda_describe(cu));
    return 0;
}
static int teardown(void **state) {
    (void)state;
    aha_cuda_free(cu);
    return 0;
}

static void test_context_without_device_fails_cleanly(void **state) {
    (void)state;
    if (aha_cuda_device_count() > 0) skip();
    aha_error_clear();
    AhaCuda *none = aha_cuda_create(0);
    assert_null(none);
    assert_non_null(strstr(aha_error_message(), "no CUDA device is visible"));
    printf("no CUDA device here: %s (the GPU checks are skipped)\n", aha_error_message());
}

#define NEED_DEVICE                                                                            \
    do {                                                                                       \
        if (!cu) skip();                                                                       \
    } while (0)

/* ---- dense products ------------------------------------------------------------------ */
static void test_matmul(void **state) {
    (void)state;
    NEED_DEVICE;
    const int n = 67, in = 96, out = 130;
    float *x = rnd((size_t)n * in, 1), *w = rnd((size_t)out * in, 1), *b = rnd(out, 1);
    float *dy = rnd((size_t)n * out, 1), *want = malloc(sizeof(float) * n * out);
    float *dx = calloc((size_t)n * in, 4), *dw = calloc((size_t)out * in, 4), *db = calloc(out, 4);
    float *d_x = devf(x, (size_t)n * in), *d_w = devf(w, (size_t)out * in), *d_b = devf(b, out);
    float *d_y = devf(NULL, (size_t)n * out), *d_dy = devf(dy, (size_t)n * out);
    float *d_dx = devf(dx, (size_t)n * in), *d_dw = devf(dw, (size_t)out * in), *d_db = devf(db, out);
    aha_matmul_forward_ref(want, x, w, b, n, in, out);
    OK(aha_cuda_matmul_forward(cu, d_y, d_x, d_w, d_b, n, in, out));
    compare("matmul_forward", d_y, want, (size_t)n * out, TOL_PRODUCTS);
    aha_matmul_backward_ref(dx, dw, db, dy, x, w, n, in, out);
    OK(aha_cuda_matmul_backward(cu, d_dx, d_dw, d_db, d_dy, d_x, d_w, n, in, out));
    compare("matmul_backward din", d_dx, dx, (size_t)n * in, TOL_PRODUCTS);
    compare("matmul_backward dweight", d_dw, dw, (size_t)out * in, TOL_PRODUCTS);
    compare("matmul_backward dbias", d_db, db, out, TOL_PRODUCTS);

    /* bf16: the reference runs on the bf16-rounded inputs */
    AhaBf16 *d_xb = dev(NULL, (size_t)n * in * 2), *d_wb = dev(NULL, (size_t)out * in * 2);
    AhaBf16 *d_yb = dev(NULL, (size_t)n * out * 2);
    OK(aha_cuda_f32_to_bf16(cu, d_xb, d_x, (size_t)n * in));
    OK(aha_cuda_f32_to_bf16(cu, d_wb, d_w, (size_t)out * in));
    OK(aha_cuda_bf16_to_f32(cu, d_x, d_xb, (size_t)n * in));
    OK(aha_cuda_bf16_to_f32(cu, d_w, d_wb, (size_t)out * in));
    float *xr = back(d_x, (size_t)n * in), *wr = back(d_w, (size_t)out * in);
    aha_matmul_forward_ref(want, xr, wr, NULL, n, in, out);
    OK(aha_cuda_matmul_forward_bf16(cu, d_yb, d_xb, d_wb, n, in, out));
    OK(aha_cuda_bf16_to_f32(cu, d_y, d_yb, (size_t)n * out));
    float *got = back(d_y, (size_t)n * out);
    report("matmul_forward", "bf16", max_rel(got, want, (size_t)n * out), TOL_BF16);
    free(got), free(xr), free(wr);
    void *all[] = {d_x, d_w, d_b, d_y, d_dy, d_dx, d_dw, d_db, d_xb, d_wb, d_yb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) aha_cuda_dealloc(cu, all[i]);
    free(x), free(w), free(b), free(dy), free(want), free(dx), free(dw), free(db);
    assert_int_equal(failures, 0);
}

/* ---- rows and elements --------------------------------------------------------------- */
static void test_rmsnorm_rope_swiglu(void **state) {
    (void)state;
    NEED_DEVICE;
    const int n = 33, dim = 1000;
    size_t nd = (size_t)n * dim;
    float *x = rnd(nd, 2), *w = rnd(dim, 1), *dy = rnd(nd, 1), *y = malloc(nd * 4);
    float *r = malloc(n * 4), *dx = calloc(nd, 4), *dw = calloc(dim, 4);
    float *d_x = devf(x, nd), *d_w = devf(w, dim), *d_y = devf(NULL, nd), *d_r = devf(NULL, n);
    float *d_dy = devf(dy, nd), *d_dx = devf(NULL, nd), *d_dw = devf(NULL, dim);
    aha_rmsnorm_forward_ref(y, r, x, w, n, dim, 1e-6f);
    OK(aha_cuda_rmsnorm_forward(cu, d_y, d_r, d_x, d_w, n, dim, 1e-6f));
    compare("rmsnorm_forward", d_y, y, nd, TOL_ELEMENTWISE);
    compare("rmsnorm_forward rstd", d_r, r, n, TOL_ELEMENTWISE);
    aha_rmsnorm_backward_ref(dx, dw, dy, x, w, r, n, dim);
    OK(aha_cuda_rmsnorm_backward(cu, d_dx, d_dw, d_dy, d_x, d_w, d_r, n, dim));
    compare("rmsnorm_backward din", d_dx, dx, nd, TOL_ELEMENTWISE);
    compare("rmsnorm_backward dweight", d_dw, dw, dim, TOL_ELEMENTWISE);

    for (int hd = 64; hd <= 128; hd += 64) {
        const int heads = 4, rows = 40;
        size_t m = (size_t)rows * heads * hd;
        int pos[40];
        for (int t = 0; t < rows; t++) pos[t] = t * 101;
        float *q = rnd(m, 1);
        int *d_pos = dev(pos, sizeof pos);
        float *d_q = devf(q, m);
        aha_rope_forward_ref(q, pos, rows, heads, hd, 1e6f);
        OK(aha_cuda_rope_forward(cu, d_q, d_pos, rows, heads, hd, 1e6f));
        compare(hd == 64 ? "rope_forward hd64" : "rope_forward hd128", d_q, q, m, TOL_ELEMENTWISE);
        aha_rope_backward_ref(q, pos, rows, heads, hd, 1e6f);
        OK(aha_cuda_rope_backward(cu, d_q, d_pos, rows, heads, hd, 1e6f));
        compare(hd == 64 ? "rope_backward hd64" : "rope_backward hd128", d_q, q, m,
                TOL_ELEMENTWISE);
        aha_cuda_dealloc(cu, d_pos), aha_cuda_dealloc(cu, d_q), free(q);
    }

    const size_t count = 10007;
    float *g = rnd(count, 4), *u = rnd(count, 1), *o = malloc(count * 4), *dd = rnd(count, 1);
    float *dg = calloc(count, 4), *du = calloc(count, 4);
    float *d_g = devf(g, count), *d_u = devf(u, count), *d_o = devf(NULL, count);
    float *d_dd = devf(dd, count), *d_dg = devf(NULL, count), *d_du = devf(NULL, count);
    aha_swiglu_forward_ref(o, g, u, count);
    OK(aha_cuda_swiglu_forward(cu, d_o, d_g, d_u, count));
    compare("swiglu_forward", d_o, o, count, TOL_ELEMENTWISE);
    aha_swiglu_backward_ref(dg, du, dd, g, u, count);
    OK(aha_cuda_swiglu_backward(cu, d_dg, d_du, d_dd, d_g, d_u, count));
    compare("swiglu_backward dgate", d_dg, dg, count, TOL_ELEMENTWISE);
    compare("swiglu_backward dup", d_du, du, count, TOL_ELEMENTWISE);
    for (size_t i = 0; i < count; i++) o[i] += u[i];
    OK(aha_cuda_residual_add(cu, d_o, d_u, count));
    compare("residual_add", d_o, o, count, TOL_ELEMENTWISE);

    void *all[] = {d_x, d_w, d_y, d_r, d_dy, d_dx, d_dw, d_g, d_u, d_o, d_dd, d_dg, d_du};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) aha_cuda_dealloc(cu, all[i]);
    free(x), free(w), free(dy), free(y), free(r), free(dx), free(dw);
    free(g), free(u), free(o), free(dd), free(dg), free(du);
    assert_int_equal(failures, 0);
}

static void test_embedding(void **state) {
    (void)state;
    NEED_DEVICE;
    const int V = 4099, H = 96, n = 300;
    int tokens[300];
    for (int t = 0; t < n; t++) tokens[t] = t % 7 == 0 ? 5 : (int)((uniform() + 1) * 0.5f * V);
    float *table = rnd((size_t)V * H, 1), *dx = rnd((size_t)n * H, 1);
    float *x = malloc((size_t)n * H * 4), *dt = calloc((size_t)V * H, 4);
    for (int t = 0; t < n; t++) memcpy(x + (size_t)t * H, table + (size_t)tokens[t] * H, H * 4);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < H; i++) dt[(size_t)tokens[t] * H + i] += dx[(size_t)t * H + i];
    int *d_tok = dev(tokens, sizeof tokens);
    float *d_table = devf(table, (size_t)V * H), *d_x = devf(NULL, (size_t)n * H);
    float *d_dx = devf(dx, (size_t)n * H), *d_dt = devf(NULL, (size_t)V * H);
    OK(aha_cuda_embedding_forward(cu, d_x, d_table, d_tok, n, H));
    compare("embedding_forward (gather_rows)", d_x, x, (size_t)n * H, TOL_ELEMENTWISE);
    OK(aha_cuda_embedding_backward(cu, d_dt, d_dx, d_tok, n, H, V));
    compare("embedding_backward (scatter_add)", d_dt, dt, (size_t)V * H, TOL_ELEMENTWISE);
    void *all[] = {d_tok, d_table, d_x, d_dx, d_dt};
    for (size_t i = 0; i < 5; i++) aha_cuda_dealloc(cu, all[i]);
    free(table), free(dx), free(x), free(dt);
    assert_int_equal(failures, 0);
}

/* ---- attention ------------------------------------------------------------------------ */
static void attention_case(int head_dim) {
    const int heads = 8, kv = 2, n_seqs = 3;
    const int seq_start[4] = {0, 33, 34, 104};
    const int T = seq_start[3];
    size_t qn = (size_t)T * heads * head_dim, kn = (size_t)T * kv * head_dim;
    float *q = rnd(qn, 1), *k = rnd(kn, 1), *v = rnd(kn, 1), *dout = rnd(qn, 1);
    float *out = malloc(qn * 4), *dq = calloc(qn, 4), *dk = calloc(kn, 4), *dv = calloc(kn, 4);
    /* the reference backend (host memory): out and lse kept, the backward recomputes */
    AhaBackend *ref = aha_backend_create("cpu-ref", NULL);
    assert_non_null(ref);
    const AhaSeqs seqs = {seq_start, n_seqs, T, 70};
    float *lse = malloc((size_t)T * heads * 4);
    ref->attention_forward(ref, out, lse, q, k, v, &seqs, heads, kv, head_dim);
    ref->attention_backward(ref, dq, dk, dv, dout, q, k, v, out, lse, &seqs, heads, kv, head_dim);
    free(lse);
    aha_backend_free(ref);
    int *d_ss = dev(seq_start, sizeof seq_start);
    float *d_q = devf(q, qn), *d_k = devf(k, kn), *d_v = devf(v, kn), *d_do = devf(dout, qn);
    float *d_o = devf(NULL, qn), *d_lse = devf(NULL, (size_t)T * heads);
    float *d_dq = devf(NULL, qn), *d_dk = devf(NULL, kn), *d_dv = devf(NULL, kn);
    char name[64];
    OK(aha_cuda_attention_forward(cu, d_o, d_lse, d_q, d_k, d_v, d_ss, n_seqs, T, heads, kv,
                                  head_dim));
    snprintf(name, sizeof name, "attention_forward hd%d", head_dim);
    compare(name, d_o, out, qn, TOL_PRODUCTS);
    OK(aha_cuda_attention_backward(cu, d_dq, d_dk, d_dv, d_do, d_o, d_q, d_k, d_v, d_lse, d_ss,
                                   n_seqs, T, heads, kv, head_dim));
    snprintf(name, sizeof name, "attention_backward dq hd%d", head_dim);
    compare(name, d_dq, dq, qn, TOL_PRODUCTS);
    snprintf(name, sizeof name, "attention_backward dk hd%d", head_dim);
    compare(name, d_dk, dk, kn, TOL_PRODUCTS);
    snprintf(name, sizeof name, "attention_backward dv hd%d", head_dim);
    compare(name, d_dv, dv, kn, TOL_PRODUCTS);

    /* decode: the last row of sequence 2 from a KV cache of 4 slots x 80 positions; slot 1
     * holds sequence 2's first 70 rows (prefix-copied from slot 3), then the row itself */
    const int slots = 4, max_len = 80, kvd = kv * head_dim, L = 70;
    float *d_cache = devf(NULL, (size_t)2 * slots * max_len * kvd);
    float *d_ck = d_cache, *d_cv = d_cache + (size_t)slots * max_len * kvd;
    int slot3[70], posv[70];
    for (int i = 0; i < L; i++) slot3[i] = 3, posv[i] = i;
    int *d_s = dev(slot3, sizeof slot3), *d_p = dev(posv, sizeof posv);
    OK(aha_cuda_kv_append(cu, d_ck, d_cv, d_k + (size_t)seq_start[2] * kvd,
                          d_v + (size_t)seq_start[2] * kvd, d_s, d_p, L, max_len, kvd));
    OK(aha_cuda_kv_copy_prefix(cu, d_cache, 1, slots, max_len, kvd, 1, 3, L - 1));
    int one_slot = 1, one_pos = L - 1;
    int *d_s1 = dev(&one_slot, sizeof(int)), *d_p1 = dev(&one_pos, sizeof(int));
    OK(aha_cuda_kv_append(cu, d_ck, d_cv, d_k + (size_t)(seq_start[2] + L - 1) * kvd,
                          d_v + (size_t)(seq_start[2] + L - 1) * kvd, d_s1, d_p1, 1, max_len,
                          kvd));
    float *d_dec = devf(NULL, (size_t)heads * head_dim);
    OK(aha_cuda_decode_attention(cu, d_dec, d_q + (size_t)(seq_start[2] + L - 1) * heads * head_dim,
                                 d_ck, d_cv, d_s1, d_p1, 1, max_len, heads, kv, head_dim));
    snprintf(name, sizeof name, "kv_append+copy+decode hd%d", head_dim);
    compare(name, d_dec, out + (size_t)(seq_start[2] + L - 1) * heads * head_dim,
            (size_t)heads * head_dim, TOL_PRODUCTS);
    void *all[] = {d_ss, d_q, d_k, d_v, d_do, d_o, d_lse, d_dq, d_dk, d_dv, d_cache, d_s, d_p,
                   d_s1, d_p1, d_dec};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) aha_cuda_dealloc(cu, all[i]);
    free(q), free(k), free(v), free(dout), free(out), free(dq), free(dk), free(dv);
}

static void test_attention(void **state) {
    (void)state;
    NEED_DEVICE;
    attention_case(64);
    attention_case(128);
    assert_int_equal(failures, 0);
}

/* ---- MoE ------------------------------------------------------------------------------ */
static void moe_case(int E, int k, int norm) {
    const int T = 40, H = 96, I = 80;
    const int S = T * k;
    char name[80], tag[16];
    snprintf(tag, sizeof tag, "E%d k%d", E, k);
    float *logits = rnd((size_t)T * E, 3), *p = malloc((size_t)T * E * 4);
    int *idx = malloc((size_t)S * 4);
    float *w = malloc((size_t)S * 4);
    memcpy(p, logits, (size_t)T * E * 4);
    for (int t = 0; t < T; t++)
        aha_dm_route_token(p + (size_t)t * E, E, k, norm, idx + (size_t)t * k, w + (size_t)t * k);
    float *d_p = devf(logits, (size_t)T * E), *d_w = devf(NULL, S);
    int *d_idx = dev(NULL, (size_t)S * 4);
    OK(aha_cuda_moe_route(cu, d_p, d_idx, d_w, d_p, T, E, k, norm));
    int *gidx = (int *)back(d_idx, S);
    snprintf(name, sizeof name, "router_topk probs %s", tag);
    compare(name, d_p, p, (size_t)T * E, TOL_ELEMENTWISE);
    snprintf(name, sizeof name, "router_topk weights %s", tag);
    compare(name, d_w, w, S, TOL_ELEMENTWISE);
    snprintf(name, sizeof name, "router_topk indices %s", tag);
    report(name, "int", memcmp(gidx, idx, (size_t)S * 4) == 0 ? 0.0 : 1.0, 0.0);

    /* the counting sort of policy/moe.c */
    int *off = calloc(E + 1, 4), *slot_token = malloc(S * 4), *slot_of = malloc(S * 4);
    int *fill = calloc(E, 4);
    for (int s = 0; s < S; s++) off[idx[s] + 1]++;
    for (int e = 0; e < E; e++) off[e + 1] += off[e];
    for (int t = 0; t < T; t++)
        for (int j = 0; j < k; j++) {
            int e = idx[t * k + j], slot = off[e] + fill[e]++;
            slot_token[slot] = t;
            slot_of[t * k + j] = slot;
        }
    int *d_off = dev(NULL, (size_t)(E + 1) * 4), *d_st = dev(NULL, S * 4), *d_so = dev(NULL, S * 4);
    OK(aha_cuda_moe_permute(cu, d_off, d_st, d_so, d_idx, T, E, k));
    int *g_off = (int *)back(d_off, E + 1), *g_st = (int *)back(d_st, S), *g_so = (int *)back(d_so, S);
    int same = !memcmp(g_off, off, (E + 1) * 4) && !memcmp(g_st, slot_token, S * 4) &&
               !memcmp(g_so, slot_of, S * 4);
    snprintf(name, sizeof name, "moe_permute %s", tag);
    report(name, "int", same ? 0.0 : 1.0, 0.0);

    /* dispatch, experts (grouped GEMM), combine, and back */
    float *x = rnd((size_t)T * H, 1), *wg = rnd((size_t)E * I * H, 0.3f);
    float *xg = malloc((size_t)S * H * 4), *eo = malloc((size_t)S * I * 4);
    for (int s = 0; s < S; s++) memcpy(xg + (size_t)s * H, x + (size_t)slot_token[s] * H, H * 4);
    for (int e = 0; e < E; e++)
        if (off[e + 1] > off[e])
            aha_matmul_forward_ref(eo + (size_t)off[e] * I, xg + (size_t)off[e] * H,
                                   wg + (size_t)e * I * H, NULL, off[e + 1] - off[e], H, I);
    float *d_x = devf(x, (size_t)T * H), *d_xg = devf(NULL, (size_t)S * H);
    float *d_wg = devf(wg, (size_t)E * I * H), *d_eo = devf(NULL, (size_t)S * I);
    OK(aha_cuda_moe_gather(cu, d_xg, d_x, d_st, S, H));
    snprintf(name, sizeof name, "moe_dispatch (gather) %s", tag);
    compare(name, d_xg, xg, (size_t)S * H, TOL_ELEMENTWISE);
    OK(aha_cuda_grouped_matmul_forward(cu, d_eo, d_xg, d_wg, d_off, S, E, H, I));
    snprintf(name, sizeof name, "grouped_matmul_forward %s", tag);
    compare(name, d_eo, eo, (size_t)S * I, TOL_PRODUCTS);
    float *deo = rnd((size_t)S * I, 1), *dxg = calloc((size_t)S * H, 4), *dwg = calloc((size_t)E * I * H, 4);
    for (int e = 0; e < E; e++)
        if (off[e + 1] > off[e])
            aha_matmul_backward_ref(dxg + (size_t)off[e] * H, dwg + (size_t)e * I * H, NULL,
                                    deo + (size_t)off[e] * I, xg + (size_t)off[e] * H,
                                    wg + (size_t)e * I * H, off[e + 1] - off[e], H, I);
    float *d_deo = devf(deo, (size_t)S * I), *d_dxg = devf(NULL, (size_t)S * H);
    float *d_dwg = devf(NULL, (size_t)E * I * H);
    OK(aha_cuda_grouped_matmul_backward(cu, d_dxg, d_dwg, d_deo, d_xg, d_wg, d_off, S, E, H, I));
    snprintf(name, sizeof name, "grouped_matmul_backward din %s", tag);
    compare(name, d_dxg, dxg, (size_t)S * H, TOL_PRODUCTS);
    snprintf(name, sizeof name, "grouped_matmul_backward dweight %s", tag);
    compare(name, d_dwg, dwg, (size_t)E * I * H, TOL_PRODUCTS);

    /* bf16 grouped forward on the bf16-rounded operands */
    AhaBf16 *d_xb = dev(NULL, (size_t)S * H * 2), *d_wb = dev(NULL, (size_t)E * I * H * 2);
    AhaBf16 *d_eb = dev(NULL, (size_t)S * I * 2);
    OK(aha_cuda_f32_to_bf16(cu, d_xb, d_xg, (size_t)S * H));
    OK(aha_cuda_f32_to_bf16(cu, d_wb, d_wg, (size_t)E * I * H));
    OK(aha_cuda_bf16_to_f32(cu, d_xg, d_xb, (size_t)S * H));
    OK(aha_cuda_bf16_to_f32(cu, d_wg, d_wb, (size_t)E * I * H));
    float *xr = back(d_xg, (size_t)S * H), *wr = back(d_wg, (size_t)E * I * H);
    float *eor = malloc((size_t)S * I * 4);
    for (int e = 0; e < E; e++)
        if (off[e + 1] > off[e])
            aha_matmul_forward_ref(eor + (size_t)off[e] * I, xr + (size_t)off[e] * H,
                                   wr + (size_t)e * I * H, NULL, off[e + 1] - off[e], H, I);
    OK(aha_cuda_grouped_matmul_forward_bf16(cu, d_eb, d_xb, d_wb, d_off, S, E, H, I));
    OK(aha_cuda_bf16_to_f32(cu, d_eo, d_eb, (size_t)S * I));
    float *got = back(d_eo, (size_t)S * I);
    snprintf(name, sizeof name, "grouped_matmul_forward %s", tag);
    report(name, "bf16", max_rel(got, eor, (size_t)S * I), TOL_BF16);

    /* combine (over expert outputs of width I, standing in for H) and its backward */
    float *y = calloc((size_t)T * I, 4), *dy = rnd((size_t)T * I, 1);
    float *deo2 = malloc((size_t)S * I * 4), *dw = malloc((size_t)S * 4);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < k; j++)
            for (int i = 0; i < I; i++)
                y[(size_t)t * I + i] += w[t * k + j] * eor[(size_t)slot_of[t * k + j] * I + i];
    for (int t = 0; t < T; t++)
        for (int j = 0; j < k; j++) {
            size_t sl = (size_t)slot_of[t * k + j];
            float dot = 0;
            for (int i = 0; i < I; i++) {
                dot += dy[(size_t)t * I + i] * eor[sl * I + i];
                deo2[sl * I + i] = w[t * k + j] * dy[(size_t)t * I + i];
            }
            dw[t * k + j] = dot;
        }
    float *d_eor = devf(eor, (size_t)S * I), *d_y = devf(NULL, (size_t)T * I);
    float *d_dy = devf(dy, (size_t)T * I), *d_deo2 = devf(NULL, (size_t)S * I), *d_dw = devf(NULL, S);
    OK(aha_cuda_moe_combine(cu, d_y, d_eor, d_w, d_so, T, k, I));
    snprintf(name, sizeof name, "moe_combine %s", tag);
    compare(name, d_y, y, (size_t)T * I, TOL_ELEMENTWISE);
    OK(aha_cuda_moe_combine_backward(cu, d_deo2, d_dw, d_dy, d_eor, d_w, d_so, T, k, I));
    snprintf(name, sizeof name, "moe_combine_backward deo %s", tag);
    compare(name, d_deo2, deo2, (size_t)S * I, TOL_ELEMENTWISE);
    snprintf(name, sizeof name, "moe_combine_backward dw %s", tag);
    compare(name, d_dw, dw, S, TOL_PRODUCTS);

    float *dx = calloc((size_t)T * H, 4);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < k; j++)
            for (int i = 0; i < H; i++) dx[(size_t)t * H + i] += dxg[(size_t)slot_of[t * k + j] * H + i];
    float *d_dx = devf(NULL, (size_t)T * H);
    OK(aha_cuda_moe_gather_backward(cu, d_dx, d_dxg, d_so, T, k, H));
    snprintf(name, sizeof name, "moe_dispatch_backward %s", tag);
    compare(name, d_dx, dx, (size_t)T * H, TOL_PRODUCTS);

    float *aux = rnd(E, 0.01f), *dl = malloc((size_t)T * E * 4);
    for (int t = 0; t < T; t++)
        aha_dm_router_backward_token(dl + (size_t)t * E, p + (size_t)t * E, idx + t * k, w + t * k,
                                     dw + t * k, aux, E, k, norm);
    float *d_aux = devf(aux, E), *d_dl = devf(NULL, (size_t)T * E);
    OK(aha_cuda_moe_router_backward(cu, d_dl, d_dw, d_p, d_idx, d_w, d_aux, T, E, k, norm));
    snprintf(name, sizeof name, "router_backward %s", tag);
    compare(name, d_dl, dl, (size_t)T * E, TOL_PRODUCTS);

    double *d_cnt = dev(NULL, E * 8), *d_ps = dev(NULL, E * 8), cnt[64], ps[64];
    OK(aha_cuda_moe_stats(cu, d_cnt, d_ps, d_off, d_p, T, E));
    OK(aha_cuda_download(cu, cnt, d_cnt, E * 8));
    OK(aha_cuda_download(cu, ps, d_ps, E * 8));
    double err = 0;
    for (int e = 0; e < E; e++) {
        double want_ps = 0;
        for (int t = 0; t < T; t++) want_ps += p[(size_t)t * E + e];
        err = fmax(err, fabs(cnt[e] - (off[e + 1] - off[e])));
        err = fmax(err, fabs(ps[e] - want_ps) / T);
    }
    snprintf(name, sizeof name, "expert_stats %s", tag);
    report(name, "fp64", err, TOL_ELEMENTWISE);

    void *all[] = {d_p, d_w, d_idx, d_off, d_st, d_so, d_x, d_xg, d_wg, d_eo, d_deo, d_dxg, d_dwg,
                   d_xb, d_wb, d_eb, d_eor, d_y, d_dy, d_deo2, d_dw, d_dx, d_aux, d_dl, d_cnt, d_ps};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) aha_cuda_dealloc(cu, all[i]);
    void *host[] = {logits, p, idx, w, gidx, off, slot_token, slot_of, fill, g_off, g_st, g_so,
                    x, wg, xg, eo, deo, dxg, dwg, xr, wr, eor, got, y, dy, deo2, dw, dx, aux, dl};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) free(host[i]);
}

static void test_moe(void **state) {
    (void)state;
    NEED_DEVICE;
    moe_case(64, 8, 1);
    moe_case(8, 2, 0);
    assert_int_equal(failures, 0);
}

/* ---- log-probs, optimizer, sampling --------------------------------------------------- */
static void test_logprob(void **state) {
    (void)state;
    NEED_DEVICE;
    const int n = 37, V = 4099;
    size_t nv = (size_t)n * V;
    float *z = rnd(nv, 6), *dlp = rnd(n, 1), *lp = malloc(n * 4), *ent = malloc(n * 4);
    float *dz = malloc(nv * 4);
    int tg[37];
    for (int t = 0; t < n; t++) tg[t] = t == 3 ? -1 : (t * 997) % V;
    for (int pass = 0; pass < 2; pass++) {
        float tau = pass ? 0.7f : 1.0f;
        aha_logprob_forward_ref(lp, ent, z, tg, n, V, tau);
        aha_logprob_backward_ref(dz, dlp, z, tg, n, V, tau);
        float *d_z = devf(z, nv), *d_dlp = devf(dlp, n), *d_lp = devf(NULL, n);
        float *d_ent = devf(NULL, n), *d_dz = devf(NULL, nv);
        int *d_tg = dev(tg, sizeof tg);
        double *d_state = dev(NULL, (size_t)n * 4 * 8);
        OK(aha_cuda_logprob_forward(cu, d_lp, d_ent, d_z, d_tg, n, V, tau));
        compare(pass ? "logprob_forward T0.7" : "logprob_forward", d_lp, lp, n, TOL_ELEMENTWISE);
        compare(pass ? "logprob_forward entropy T0.7" : "logprob_forward entropy", d_ent, ent, n,
                TOL_ELEMENTWISE);
        OK(aha_cuda_logprob_backward(cu, d_dz, d_dlp, d_z, d_tg, n, V, tau));
        compare(pass ? "logprob_backward T0.7" : "logprob_backward", d_dz, dz, nv, TOL_ELEMENTWISE);
        /* the same over vocabulary chunks of 1000 columns of a [n, V] matrix */
        OK(aha_cuda_logprob_chunk_init(cu, d_state, n));
        for (int c0 = 0; c0 < V; c0 += 1000)
            OK(aha_cuda_logprob_chunk_accumulate(cu, d_state, d_z + c0, V, d_tg, n, c0,
                                                 V - c0 < 1000 ? V - c0 : 1000, tau));
        OK(aha_cuda_logprob_chunk_finish(cu, d_lp, d_ent, d_state, d_tg, n));
        compare("logprob chunked", d_lp, lp, n, TOL_ELEMENTWISE);
        compare("logprob chunked entropy", d_ent, ent, n, TOL_ELEMENTWISE);
        for (int c0 = 0; c0 < V; c0 += 1000)
            OK(aha_cuda_logprob_chunk_backward(cu, d_dz + c0, V, d_dlp, d_z + c0, d_state, d_tg, n,
                                               c0, V - c0 < 1000 ? V - c0 : 1000, tau));
        compare("logprob chunked backward", d_dz, dz, nv, TOL_ELEMENTWISE);
        void *all[] = {d_z, d_dlp, d_lp, d_ent, d_dz, d_tg, d_state};
        for (size_t i = 0; i < 7; i++) aha_cuda_dealloc(cu, all[i]);
    }
    free(z), free(dlp), free(lp), free(ent), free(dz);
    assert_int_equal(failures, 0);
}

static void test_adamw_and_grad_norm(void **state) {
    (void)state;
    NEED_DEVICE;
    const size_t N = 100003;
    AhaAdamWConfig cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    AhaAdamW opt;
    OK(aha_adamw_init(&opt, NULL, N, &cfg));
    float *p = rnd(N, 1), *g = malloc(N * 4);
    float *d_p = devf(p, N), *d_g = devf(NULL, N), *d_m = devf(NULL, N), *d_v = devf(NULL, N);
    for (int step = 1; step <= 3; step++) {
        for (size_t i = 0; i < N; i++) g[i] = 1e-2f * uniform();
        OK(aha_cuda_upload(cu, d_g, g, N * 4));
        aha_adamw_step(&opt, p, g, 1e-3f);
        OK(aha_cuda_adamw_step(cu, d_p, d_g, d_m, d_v, N, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step));
    }
    compare("adamw_step (3 steps) params", d_p, p, N, TOL_ELEMENTWISE);
    compare("adamw_step (3 steps) moments", d_v, opt.v, N, TOL_ELEMENTWISE);
    /* two tensors: the norm over both, clipped to half of it */
    float *g2 = rnd(777, 3);
    float *d_g2 = devf(g2, 777), *d_norm = devf(NULL, 1);
    float *both = malloc((N + 777) * 4);
    memcpy(both, g, N * 4), memcpy(both + N, g2, 777 * 4);
    double sumsq = 0;
    for (size_t i = 0; i < N + 777; i++) sumsq += (double)both[i] * both[i];
    float want_norm = (float)sqrt(sumsq);
    float norm = aha_clip_grad_norm(NULL, both, N + 777, 0.5f * want_norm);
    float *ptrs[2] = {d_g, d_g2};
    size_t counts[2] = {N, 777};
    OK(aha_cuda_clip_grad_norm(cu, ptrs, counts, 2, 0.5f * want_norm, d_norm));
    compare("grad_norm", d_norm, &norm, 1, TOL_ELEMENTWISE);
    compare("clip (scale) tensor 1", d_g, both, N, TOL_ELEMENTWISE);
    compare("clip (scale) tensor 2", d_g2, both + N, 777, TOL_ELEMENTWISE);
    void *all[] = {d_p, d_g, d_m, d_v, d_g2, d_norm};
    for (size_t i = 0; i < 6; i++) aha_cuda_dealloc(cu, all[i]);
    aha_adamw_free(&opt);
    free(p), free(g), free(g2), free(both);
    assert_int_equal(failures, 0);
}

static void test_sample(void **state) {
    (void)state;
    NEED_DEVICE;
    const int n = 64, V = 5003;
    size_t nv = (size_t)n * V;
    float *z = rnd(nv, 5);
    uint64_t streams[64], positions[64];
    int rows[64];
    for (int i = 0; i < n; i++) {
        streams[i] = aha_rng_stream((uint32_t)i / 4, (uint32_t)i % 4);
        positions[i] = (uint64_t)i * 3;
        rows[i] = n - 1 - i; /* sequence i reads row n-1-i */
    }
    AhaTokenWeight *scratch = malloc(sizeof *scratch * V);
    float *d_z = devf(z, nv), *d_lp = devf(NULL, n);
    int *d_tok = dev(NULL, n * 4), *d_rows = dev(rows, sizeof rows);
    uint64_t *d_st = dev(streams, sizeof streams), *d_pos = dev(positions, sizeof positions);
    void *d_scratch = dev(NULL, aha_cuda_sample_scratch_bytes(n, V));
    const struct {
        const char *name;
        float temperature, top_p;
        int top_k;
    } cases[] = {{"sample greedy", 0, 1, 0},     {"sample T1", 1, 1, 0},
                 {"sample T0.7 top_k 50", 0.7f, 1, 50}, {"sample T1 top_p 0.9", 1, 0.9f, 0},
                 {"sample top_k 20 top_p 0.8", 1, 0.8f, 20}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        AhaSamplingParams sp;
        aha_sampling_params_default(&sp);
        sp.temperature = cases[c].temperature;
        sp.top_p = cases[c].top_p;
        sp.top_k = cases[c].top_k;
        sp.seed = 77;
        int want_tok[64];
        float want_lp[64];
        for (int i = 0; i < n; i++) {
            uint32_t blk[4];
            aha_rng_block(77, streams[i], positions[i], blk);
            double u = aha_rng_words_to_double(blk[0], blk[1]);
            want_tok[i] = aha_sample_logits(z + (size_t)rows[i] * V, V, &sp, u, scratch, &want_lp[i]);
        }
        OK(aha_cuda_sample(cu, d_tok, d_lp, d_z, d_rows, n, V, sp.temperature, sp.top_k, sp.top_p,
                           77, d_st, d_pos, d_scratch));
        int got_tok[64];
        OK(aha_cuda_download(cu, got_tok, d_tok, sizeof got_tok));
        int mismatches = 0;
        for (int i = 0; i < n; i++) mismatches += got_tok[i] != want_tok[i];
        char name[80];
        snprintf(name, sizeof name, "%s tokens", cases[c].name);
        report(name, "int", (double)mismatches / n, 0.0);
        snprintf(name, sizeof name, "%s logprobs", cases[c].name);
        if (mismatches == 0) compare(name, d_lp, want_lp, n, TOL_ELEMENTWISE);
    }
    void *all[] = {d_z, d_lp, d_tok, d_rows, d_st, d_pos, d_scratch};
    for (size_t i = 0; i < 7; i++) aha_cuda_dealloc(cu, all[i]);
    free(z), free(scratch);
    assert_int_equal(failures, 0);
}

static void test_shared_gate_stats_scale(void **state) {
    (void)state;
    NEED_DEVICE;
    const int n = 45, dim = 96, E = 64, k = 8;
    size_t nd = (size_t)n * dim;
    float *x = rnd(nd, 1), *wg = rnd(dim, 0.3f), *so = rnd(nd, 1), *dy = rnd(nd, 1);
    float *y = rnd(nd, 1), *gate = malloc(n * 4), *dso = malloc(nd * 4), *dl = malloc(n * 4);
    float *dx = rnd(nd, 1), *dwg = rnd(dim, 1);
    float *d_x = devf(x, nd), *d_wg = devf(wg, dim), *d_so = devf(so, nd), *d_dy = devf(dy, nd);
    float *d_y = devf(y, nd), *d_gate = devf(NULL, n), *d_dso = devf(NULL, nd);
    float *d_dl = devf(NULL, n), *d_dx = devf(dx, nd), *d_dwg = devf(dwg, dim);
    for (int t = 0; t < n; t++) {
        float z = 0, dot = 0;
        for (int i = 0; i < dim; i++) z += x[(size_t)t * dim + i] * wg[i];
        gate[t] = 1.0f / (1.0f + expf(-z));
        for (int i = 0; i < dim; i++) {
            y[(size_t)t * dim + i] += gate[t] * so[(size_t)t * dim + i];
            dot += dy[(size_t)t * dim + i] * so[(size_t)t * dim + i];
            dso[(size_t)t * dim + i] = gate[t] * dy[(size_t)t * dim + i];
        }
        dl[t] = dot * gate[t] * (1.0f - gate[t]);
        for (int i = 0; i < dim; i++) {
            dx[(size_t)t * dim + i] += dl[t] * wg[i];
            dwg[i] += dl[t] * x[(size_t)t * dim + i];
        }
    }
    OK(aha_cuda_shared_gate_forward(cu, d_y, d_gate, d_x, d_wg, d_so, n, dim));
    compare("shared_gate_forward y", d_y, y, nd, TOL_PRODUCTS);
    compare("shared_gate_forward gate", d_gate, gate, n, TOL_PRODUCTS);
    OK(aha_cuda_shared_gate_backward(cu, d_dso, d_dl, d_dy, d_so, d_gate, n, dim));
    compare("shared_gate_backward dso", d_dso, dso, nd, TOL_PRODUCTS);
    compare("shared_gate_backward dlogit", d_dl, dl, n, TOL_PRODUCTS);
    OK(aha_cuda_shared_gate_input_backward(cu, d_dx, d_dwg, d_dl, d_x, d_wg, n, dim));
    compare("shared_gate_input_backward dx", d_dx, dx, nd, TOL_PRODUCTS);
    compare("shared_gate_input_backward dwg", d_dwg, dwg, dim, TOL_PRODUCTS);
    for (size_t i = 0; i < nd; i++) x[i] *= 0.37f;
    OK(aha_cuda_scale(cu, d_x, nd, 0.37f));
    compare("scale", d_x, x, nd, TOL_ELEMENTWISE);

    float *probs = rnd((size_t)n * E, 1), *cnt = calloc(E, 4), *ps = calloc(E, 4);
    int *idx = malloc((size_t)n * k * 4);
    for (int t = 0; t < n; t++)
        aha_dm_route_token(probs + (size_t)t * E, E, k, 1, idx + (size_t)t * k, dso);
    for (int s = 0; s < n * k; s++) cnt[idx[s]] += 1;
    for (int e = 0; e < E; e++)
        for (int t = 0; t < n; t++) ps[e] += probs[(size_t)t * E + e];
    float *d_p = devf(probs, (size_t)n * E), *d_cnt = devf(NULL, E), *d_ps = devf(NULL, E);
    int *d_idx = dev(idx, (size_t)n * k * 4);
    OK(aha_cuda_expert_stats(cu, d_cnt, d_ps, d_idx, d_p, n, E, k));
    compare("expert_stats (float) count", d_cnt, cnt, E, 0.0);
    compare("expert_stats (float) prob_sum", d_ps, ps, E, TOL_ELEMENTWISE);
    void *all[] = {d_x, d_wg, d_so, d_dy, d_y, d_gate, d_dso, d_dl, d_dx, d_dwg, d_p, d_cnt, d_ps,
                   d_idx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) aha_cuda_dealloc(cu, all[i]);
    void *host[] = {x, wg, so, dy, y, gate, dso, dl, dx, dwg, probs, cnt, ps, idx};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) free(host[i]);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_without_device_fails_cleanly),
        cmocka_unit_test(test_shared_gate_stats_scale),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_rmsnorm_rope_swiglu),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_moe),
        cmocka_unit_test(test_logprob),
        cmocka_unit_test(test_adamw_and_grad_norm),
        cmocka_unit_test(test_sample),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

#else /* no CUDA backend in this build */

static void test_cuda_backend_not_built(void **state) {
    (void)state;
    printf("libaha was built without the CUDA backend (AHA_CUDA=OFF or no nvcc)\n");
    skip();
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cuda_backend_not_built)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
