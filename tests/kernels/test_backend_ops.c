/* Every op of aha/backend.h on every backend this libaha has ("cpu", "cuda" when built and a
 * device is there), forward and backward, against the plain reference backend "cpu-ref", at
 * sizes past every threading and vector threshold (>= 64 rows, head_dim 64 and 128 and one
 * that is not a multiple of 8, vocabularies over 4096, 64 experts top-8 and 8 top-2), in the
 * style of ggml's test-backend-ops. A backend that cannot be created is skipped with its
 * reason printed, so the same binary checks CUDA on a GPU machine.
 *
 * Agreement is the normwise relative error max|a - r| / max|r|: at most 1e-5 for ops without
 * a product, 1e-4 with one (tolerance names below); indices, tokens and the KV cache's bytes
 * must be equal. Properties every backend promises are checked on each backend alone: a
 * batch-invariant matmul gives a row the same bits in any batch, decode attention gives the
 * training attention's bits, backward ops accumulate. The backward ops that
 * tests/kernels/test_kernels.c does not already check (the attention of this contract, the
 * router, the combine, the shared-expert gate) are checked against central finite
 * differences on the reference backend. */
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
#include "aha/error.h"

static const double tol_plain = 1e-5, tol_gemm = 1e-4;

/* ---- host data ------------------------------------------------------------------------ */

static uint64_t rng_state = 12345;
static float uniform(void) { /* [-0.5, 0.5) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}
static int below(int n) { return (int)((uniform() + 0.5f) * n) % n; }

static float *host_rand(size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * scale * uniform();
    return x;
}

/* ---- device buffers on the tested backend and on the reference, freed per case --------- */

static AhaBackend *B, *R; /* tested, reference */
static const char *label; /* the tested context's name in messages */
static int failures;

enum { MAX_TRACKED = 256 };
static struct { AhaBackend *be; void *ptr; } tracked[MAX_TRACKED];
static int n_tracked;

static void *dev_alloc(AhaBackend *be, size_t bytes) {
    void *p = be->alloc(be, bytes);
    if (p == NULL) fail_msg("%s: alloc %zu bytes: %s", be->name, bytes, aha_error_message());
    assert_true(n_tracked < MAX_TRACKED);
    tracked[n_tracked].be = be;
    tracked[n_tracked++].ptr = p;
    return p;
}

static void release_all(void) {
    for (int i = 0; i < n_tracked; i++) tracked[i].be->free(tracked[i].be, tracked[i].ptr);
    n_tracked = 0;
}

typedef struct { void *b, *r; size_t bytes; } Pair; /* the same data on B and on R */

static Pair pair(const void *host, size_t bytes) {
    Pair p = {dev_alloc(B, bytes), dev_alloc(R, bytes), bytes};
    if (host) {
        assert_int_equal(B->upload(B, p.b, host, bytes), 0);
        assert_int_equal(R->upload(R, p.r, host, bytes), 0);
    } else {
        B->zero(B, p.b, bytes);
        R->zero(R, p.r, bytes);
    }
    return p;
}
static Pair pairf(const float *host, size_t n) { return pair(host, n * sizeof(float)); }
static Pair pairi(const int *host, size_t n) { return pair(host, n * sizeof(int)); }
#define FB(p) ((float *)(p).b)
#define FR(p) ((float *)(p).r)
#define IB(p) ((int *)(p).b)
#define IR(p) ((int *)(p).r)

static void download(AhaBackend *be, void *host, const void *dev, size_t bytes) {
    if (be->download(be, host, dev, bytes) != 0) fail_msg("%s: %s", be->name, aha_error_message());
}

/* Compares a float output of both backends by normwise relative error. */
static void expect_close(const char *what, Pair p, double tol) {
    size_t n = p.bytes / sizeof(float);
    float *a = malloc(p.bytes + 4), *r = malloc(p.bytes + 4);
    download(B, a, p.b, p.bytes);
    download(R, r, p.r, p.bytes);
    double diff = 0.0, ref = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        if (d > diff || isnan(a[i])) diff = isnan(a[i]) ? INFINITY : d, worst = i;
        if (fabs((double)r[i]) > ref) ref = fabs((double)r[i]);
    }
    double err = diff / (ref > 0.0 ? ref : 1.0);
    if (!(err <= tol)) {
        print_error("%s: %s relative error %.3g > %.1g (element %zu: %.9g vs reference %.9g)\n",
                    label, what, err, tol, worst, n ? a[worst] : 0.0f, n ? r[worst] : 0.0f);
        failures++;
    }
    free(a);
    free(r);
}

static void expect_equal(const char *what, Pair p) {
    unsigned char *a = malloc(p.bytes + 1), *r = malloc(p.bytes + 1);
    download(B, a, p.b, p.bytes);
    download(R, r, p.r, p.bytes);
    if (memcmp(a, r, p.bytes) != 0) {
        print_error("%s: %s differs from the reference\n", label, what);
        failures++;
    }
    free(a);
    free(r);
}

static void end_case(void) {
    if (B->sync(B) != 0) fail_msg("%s: %s", label, aha_error_message());
    if (R->sync(R) != 0) fail_msg("reference: %s", aha_error_message());
    release_all();
}

/* ---- dense products ---------------------------------------------------------------------- */

static void case_matmul(int n, int in, int out, int with_bias) {
    float *x = host_rand((size_t)n * in, 1), *w = host_rand((size_t)out * in, 0.3f),
          *bias = host_rand(out, 1), *dy = host_rand((size_t)n * out, 1),
          *init_dx = host_rand((size_t)n * in, 1), *init_dw = host_rand((size_t)out * in, 1),
          *init_db = host_rand(out, 1);
    Pair X = pairf(x, (size_t)n * in), W = pairf(w, (size_t)out * in), Bi = pairf(bias, out);
    Pair Y = pairf(NULL, (size_t)n * out), DY = pairf(dy, (size_t)n * out);
    Pair DX = pairf(init_dx, (size_t)n * in), DW = pairf(init_dw, (size_t)out * in),
         DB = pairf(init_db, out);
    B->matmul_forward(B, FB(Y), FB(X), FB(W), with_bias ? FB(Bi) : NULL, n, in, out);
    R->matmul_forward(R, FR(Y), FR(X), FR(W), with_bias ? FR(Bi) : NULL, n, in, out);
    expect_close("matmul_forward", Y, tol_gemm);
    /* backward accumulates into nonzero gradients */
    B->matmul_backward(B, FB(DX), FB(DW), with_bias ? FB(DB) : NULL, FB(DY), FB(X), FB(W), n, in, out);
    R->matmul_backward(R, FR(DX), FR(DW), with_bias ? FR(DB) : NULL, FR(DY), FR(X), FR(W), n, in, out);
    expect_close("matmul_backward din", DX, tol_gemm);
    expect_close("matmul_backward dweight", DW, tol_gemm);
    expect_close("matmul_backward dbias", DB, tol_gemm);
    /* NULL gradients are allowed */
    B->matmul_backward(B, NULL, FB(DW), NULL, FB(DY), FB(X), FB(W), n, in, out);
    R->matmul_backward(R, NULL, FR(DW), NULL, FR(DY), FR(X), FR(W), n, in, out);
    expect_close("matmul_backward dweight only", DW, tol_gemm);
    end_case();
    free(x), free(w), free(bias), free(dy), free(init_dx), free(init_dw), free(init_db);
}

/* A batch-invariant context gives rows [lo, lo+m) the same bits alone as inside the batch. */
static void case_matmul_invariance(int n, int in, int out) {
    if (!B->batch_invariant) return;
    float *x = host_rand((size_t)n * in, 1), *w = host_rand((size_t)out * in, 0.3f),
          *bias = host_rand(out, 1);
    float *full = malloc(sizeof(float) * n * out), *part = malloc(sizeof(float) * 5 * out);
    float *X = dev_alloc(B, sizeof(float) * n * in), *W = dev_alloc(B, sizeof(float) * out * in);
    float *Bi = dev_alloc(B, sizeof(float) * out), *Y = dev_alloc(B, sizeof(float) * n * out);
    B->upload(B, X, x, sizeof(float) * n * in);
    B->upload(B, W, w, sizeof(float) * out * in);
    B->upload(B, Bi, bias, sizeof(float) * out);
    B->matmul_forward(B, Y, X, W, Bi, n, in, out);
    download(B, full, Y, sizeof(float) * n * out);
    for (int lo = 0; lo + 5 <= n; lo += n / 3) {
        for (int m = 1; m <= 5; m += 4) {
            B->matmul_forward(B, Y, X + (size_t)lo * in, W, Bi, m, in, out);
            download(B, part, Y, sizeof(float) * m * out);
            if (memcmp(part, full + (size_t)lo * out, sizeof(float) * m * out) != 0) {
                print_error("%s: rows %d..%d alone differ from the same rows in a batch of %d\n",
                            label, lo, lo + m - 1, n);
                failures++;
            }
        }
    }
    end_case();
    free(x), free(w), free(bias), free(full), free(part);
}

/* expert_off for n_rows rows over E experts, some experts empty */
static int *random_offsets(int E, int n_rows) {
    int *off = calloc((size_t)E + 1, sizeof(int));
    for (int r = 0; r < n_rows; r++) off[1 + below(E / 2 + 1) * 2 % E]++; /* odd experts stay empty */
    for (int e = 0; e < E; e++) off[e + 1] += off[e];
    return off;
}

static void case_grouped_matmul(int E, int n_rows, int in, int out) {
    int *off = random_offsets(E, n_rows);
    float *x = host_rand((size_t)n_rows * in, 1), *w = host_rand((size_t)E * out * in, 0.3f),
          *dy = host_rand((size_t)n_rows * out, 1), *dx0 = host_rand((size_t)n_rows * in, 1),
          *dw0 = host_rand((size_t)E * out * in, 1);
    Pair OFF = pairi(off, (size_t)E + 1), X = pairf(x, (size_t)n_rows * in),
         W = pairf(w, (size_t)E * out * in), Y = pairf(NULL, (size_t)n_rows * out),
         DY = pairf(dy, (size_t)n_rows * out), DX = pairf(dx0, (size_t)n_rows * in),
         DW = pairf(dw0, (size_t)E * out * in);
    B->grouped_matmul_forward(B, FB(Y), FB(X), FB(W), IB(OFF), n_rows, E, in, out);
    R->grouped_matmul_forward(R, FR(Y), FR(X), FR(W), IR(OFF), n_rows, E, in, out);
    expect_close("grouped_matmul_forward", Y, tol_gemm);
    B->grouped_matmul_backward(B, FB(DX), FB(DW), FB(DY), FB(X), FB(W), IB(OFF), n_rows, E, in, out);
    R->grouped_matmul_backward(R, FR(DX), FR(DW), FR(DY), FR(X), FR(W), IR(OFF), n_rows, E, in, out);
    expect_close("grouped_matmul_backward din", DX, tol_gemm);
    expect_close("grouped_matmul_backward dweight", DW, tol_gemm);
    end_case();
    free(off), free(x), free(w), free(dy), free(dx0), free(dw0);
}

/* ---- rows and elements --------------------------------------------------------------------- */

static void case_rows_and_elements(int n, int dim, int table_rows) {
    int *rows = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) rows[i] = i % 7 == 3 ? rows[i / 2] : below(table_rows); /* repeats */
    size_t count = (size_t)n * dim + 5;
    float *table = host_rand((size_t)table_rows * dim, 1), *x = host_rand(count, 1),
          *y = host_rand(count, 1);
    Pair ROWS = pairi(rows, n), T = pairf(table, (size_t)table_rows * dim),
         OUT = pairf(NULL, (size_t)n * dim), X = pairf(x, count), Y = pairf(y, count);
    B->gather_rows(B, FB(OUT), FB(T), IB(ROWS), n, dim);
    R->gather_rows(R, FR(OUT), FR(T), IR(ROWS), n, dim);
    expect_equal("gather_rows", OUT);
    B->scatter_add_rows(B, FB(T), FB(X), IB(ROWS), n, dim);
    R->scatter_add_rows(R, FR(T), FR(X), IR(ROWS), n, dim);
    expect_close("scatter_add_rows", T, tol_plain);
    B->add(B, FB(Y), FB(X), count);
    R->add(R, FR(Y), FR(X), count);
    expect_close("add", Y, tol_plain);
    B->scale(B, FB(Y), count, 0.37f);
    R->scale(R, FR(Y), count, 0.37f);
    expect_close("scale", Y, tol_plain);
    Pair C = pairf(NULL, count);
    B->copy(B, FB(C), FB(Y), count * sizeof(float));
    R->copy(R, FR(C), FR(Y), count * sizeof(float));
    expect_close("copy", C, 0.0);
    end_case();
    free(rows), free(table), free(x), free(y);
}

static void case_rmsnorm(int n, int dim) {
    float *x = host_rand((size_t)n * dim, 2), *w = host_rand(dim, 1), *dy = host_rand((size_t)n * dim, 1);
    Pair X = pairf(x, (size_t)n * dim), W = pairf(w, dim), Y = pairf(NULL, (size_t)n * dim),
         RS = pairf(NULL, n), DY = pairf(dy, (size_t)n * dim), DX = pairf(dy, (size_t)n * dim),
         DW = pairf(w, dim);
    B->rmsnorm_forward(B, FB(Y), FB(RS), FB(X), FB(W), n, dim, 1e-6f);
    R->rmsnorm_forward(R, FR(Y), FR(RS), FR(X), FR(W), n, dim, 1e-6f);
    expect_close("rmsnorm_forward", Y, tol_plain);
    expect_close("rmsnorm_forward rstd", RS, tol_plain);
    B->rmsnorm_backward(B, FB(DX), FB(DW), FB(DY), FB(X), FB(W), FB(RS), n, dim);
    R->rmsnorm_backward(R, FR(DX), FR(DW), FR(DY), FR(X), FR(W), FR(RS), n, dim);
    expect_close("rmsnorm_backward din", DX, tol_plain);
    expect_close("rmsnorm_backward dweight", DW, tol_plain);
    end_case();
    free(x), free(w), free(dy);
}

static void case_rope(int n, int heads, int head_dim) {
    int *pos = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) pos[i] = below(4000);
    size_t count = (size_t)n * heads * head_dim;
    float *x = host_rand(count, 1);
    Pair P = pairi(pos, n), X = pairf(x, count), DX = pairf(x, count);
    B->rope_forward(B, FB(X), IB(P), n, heads, head_dim, 1e6f);
    R->rope_forward(R, FR(X), IR(P), n, heads, head_dim, 1e6f);
    expect_close("rope_forward", X, tol_plain);
    B->rope_backward(B, FB(DX), IB(P), n, heads, head_dim, 1e6f);
    R->rope_backward(R, FR(DX), IR(P), n, heads, head_dim, 1e6f);
    expect_close("rope_backward", DX, tol_plain);
    end_case();
    free(pos), free(x);
}

static void case_swiglu(size_t count) {
    float *g = host_rand(count, 6), *u = host_rand(count, 2), *dy = host_rand(count, 1);
    Pair G = pairf(g, count), U = pairf(u, count), Y = pairf(NULL, count), DY = pairf(dy, count),
         DG = pairf(u, count), DU = pairf(g, count);
    B->swiglu_forward(B, FB(Y), FB(G), FB(U), count);
    R->swiglu_forward(R, FR(Y), FR(G), FR(U), count);
    expect_close("swiglu_forward", Y, tol_plain);
    B->swiglu_backward(B, FB(DG), FB(DU), FB(DY), FB(G), FB(U), count);
    R->swiglu_backward(R, FR(DG), FR(DU), FR(DY), FR(G), FR(U), count);
    expect_close("swiglu_backward dgate", DG, tol_plain);
    expect_close("swiglu_backward dup", DU, tol_plain);
    end_case();
    free(g), free(u), free(dy);
}

/* ---- attention ------------------------------------------------------------------------------ */

typedef struct { int n_seqs, seq_start[8], n_rows, max_len; } Packing;

static Packing packing(const int *lens, int n) {
    Packing p = {.n_seqs = n};
    for (int s = 0; s < n; s++) {
        p.seq_start[s + 1] = p.seq_start[s] + lens[s];
        if (lens[s] > p.max_len) p.max_len = lens[s];
    }
    p.n_rows = p.seq_start[n];
    return p;
}

static void case_attention(const int *lens, int n_seqs, int heads, int kv_heads, int head_dim) {
    Packing pk = packing(lens, n_seqs);
    int T = pk.n_rows;
    size_t qn = (size_t)T * heads * head_dim, kn = (size_t)T * kv_heads * head_dim;
    float *q = host_rand(qn, 2), *k = host_rand(kn, 2), *v = host_rand(kn, 1), *dy = host_rand(qn, 1);
    Pair SS = pairi(pk.seq_start, (size_t)n_seqs + 1), Q = pairf(q, qn), K = pairf(k, kn),
         V = pairf(v, kn), O = pairf(NULL, qn), L = pairf(NULL, (size_t)T * heads),
         DY = pairf(dy, qn), DQ = pairf(q, qn), DK = pairf(k, kn), DV = pairf(v, kn);
    AhaSeqs sb = {IB(SS), n_seqs, T, pk.max_len}, sr = {IR(SS), n_seqs, T, pk.max_len};
    B->attention_forward(B, FB(O), FB(L), FB(Q), FB(K), FB(V), &sb, heads, kv_heads, head_dim);
    R->attention_forward(R, FR(O), FR(L), FR(Q), FR(K), FR(V), &sr, heads, kv_heads, head_dim);
    expect_close("attention_forward", O, tol_plain);
    expect_close("attention_forward lse", L, tol_plain);
    B->attention_backward(B, FB(DQ), FB(DK), FB(DV), FB(DY), FB(Q), FB(K), FB(V), FB(O), FB(L), &sb,
                          heads, kv_heads, head_dim);
    R->attention_backward(R, FR(DQ), FR(DK), FR(DV), FR(DY), FR(Q), FR(K), FR(V), FR(O), FR(L), &sr,
                          heads, kv_heads, head_dim);
    expect_close("attention_backward dq", DQ, tol_plain);
    expect_close("attention_backward dk", DK, tol_plain);
    expect_close("attention_backward dv", DV, tol_plain);
    end_case();
    free(q), free(k), free(v), free(dy);
}

/* KV append, decode attention, prefix copy against the reference; and on the tested backend
 * alone: decoding each row of a sequence from the cache gives the training forward's bits. */
static void case_decode(int heads, int kv_heads, int head_dim) {
    AhaKvLayout kv = {.n_layers = 2, .n_slots = 6, .max_len = 80, .kv_dim = kv_heads * head_dim};
    size_t cache_n = 2 * (size_t)kv.n_layers * kv.n_slots * kv.max_len * kv.kv_dim;
    int n = 6, slots[6] = {0, 1, 2, 3, 4, 5}, pos[6] = {0, 79, 33, 64, 7, 70};
    size_t qn = (size_t)n * heads * head_dim, kn = (size_t)n * kv.kv_dim;
    float *cache = host_rand(cache_n, 2), *q = host_rand(qn, 2), *k = host_rand(kn, 2),
          *v = host_rand(kn, 1);
    Pair C = pairf(cache, cache_n), S = pairi(slots, n), P = pairi(pos, n), Q = pairf(q, qn),
         K = pairf(k, kn), V = pairf(v, kn), O = pairf(NULL, qn);
    B->kv_append(B, FB(C), &kv, 1, FB(K), FB(V), IB(S), IB(P), n);
    R->kv_append(R, FR(C), &kv, 1, FR(K), FR(V), IR(S), IR(P), n);
    expect_equal("kv_append", C);
    B->attention_decode(B, FB(O), FB(Q), FB(C), &kv, 1, IB(S), IB(P), n, heads, kv_heads, head_dim);
    R->attention_decode(R, FR(O), FR(Q), FR(C), &kv, 1, IR(S), IR(P), n, heads, kv_heads, head_dim);
    expect_close("attention_decode", O, tol_plain);
    B->kv_copy_prefix(B, FB(C), &kv, 4, 1, 77);
    R->kv_copy_prefix(R, FR(C), &kv, 4, 1, 77);
    expect_equal("kv_copy_prefix", C);
    end_case();

    /* decode == training forward, bit for bit, on B */
    int len = 70;
    size_t sq = (size_t)len * heads * head_dim, sk = (size_t)len * kv.kv_dim;
    float *q2 = host_rand(sq, 2), *k2 = host_rand(sk, 2), *v2 = host_rand(sk, 1);
    float *train = malloc(sizeof(float) * sq), *dec = malloc(sizeof(float) * sq);
    int *iota = malloc(sizeof(int) * len), *zero_slots = calloc((size_t)len, sizeof(int));
    for (int i = 0; i < len; i++) iota[i] = i;
    int ss[2] = {0, len};
    float *dq = dev_alloc(B, sq * 4), *dk = dev_alloc(B, sk * 4), *dv = dev_alloc(B, sk * 4),
          *dout = dev_alloc(B, sq * 4), *dcache = dev_alloc(B, cache_n * 4);
    int *dss = dev_alloc(B, sizeof ss), *dpos = dev_alloc(B, sizeof(int) * len),
        *dslots = dev_alloc(B, sizeof(int) * len);
    B->upload(B, dq, q2, sq * 4), B->upload(B, dk, k2, sk * 4), B->upload(B, dv, v2, sk * 4);
    B->upload(B, dss, ss, sizeof ss), B->upload(B, dpos, iota, sizeof(int) * len);
    B->upload(B, dslots, zero_slots, sizeof(int) * len);
    AhaSeqs seqs = {dss, 1, len, len};
    B->attention_forward(B, dout, NULL, dq, dk, dv, &seqs, heads, kv_heads, head_dim);
    download(B, train, dout, sq * 4);
    B->kv_append(B, dcache, &kv, 0, dk, dv, dslots, dpos, len);
    B->attention_decode(B, dout, dq, dcache, &kv, 0, dslots, dpos, len, heads, kv_heads, head_dim);
    download(B, dec, dout, sq * 4);
    if (memcmp(train, dec, sq * 4) != 0) {
        print_error("%s: decode attention (head_dim %d) differs from the training forward\n", label,
                    head_dim);
        failures++;
    }
    end_case();
    free(cache), free(q), free(k), free(v), free(q2), free(k2), free(v2), free(train), free(dec);
    free(iota), free(zero_slots);
}

/* ---- mixture of experts ----------------------------------------------------------------- */

static AhaRouting routing(int E, int k, int renormalize) {
    return (AhaRouting){.num_experts = E, .top_k = k, .score = AHA_ROUTER_SOFTMAX,
                        .renormalize = renormalize, .scale = 1.0f};
}

static void case_moe(int T, int E, int k, int H, int renormalize) {
    AhaRouting rt = routing(E, k, renormalize);
    size_t S = (size_t)T * k;
    float *logits = host_rand((size_t)T * E, 4), *eo = host_rand(S * H, 1),
          *dy = host_rand((size_t)T * H, 1), *aux = host_rand(E, 0.01f), *x = host_rand((size_t)T * H, 1),
          *wg = host_rand(H, 0.2f), *so = host_rand((size_t)T * H, 1), *dx0 = host_rand((size_t)T * H, 1);
    Pair PR = pairf(logits, (size_t)T * E), W = pairf(NULL, S), IDX = pairi(NULL, S),
         OFF = pairi(NULL, (size_t)E + 1), ST = pairi(NULL, S), SO = pairi(NULL, S);
    B->router_topk(B, FB(PR), FB(W), IB(IDX), T, &rt);
    R->router_topk(R, FR(PR), FR(W), IR(IDX), T, &rt);
    expect_close("router_topk probs", PR, tol_plain);
    expect_close("router_topk weights", W, tol_plain);
    expect_equal("router_topk experts", IDX);
    /* the rest runs on the reference's choices, so one near-tie cannot cascade */
    int *idx = malloc(sizeof(int) * S);
    float *probs = malloc(sizeof(float) * T * E), *w = malloc(sizeof(float) * S);
    download(R, idx, IR(IDX), sizeof(int) * S);
    download(R, probs, FR(PR), sizeof(float) * T * E);
    download(R, w, FR(W), sizeof(float) * S);
    B->upload(B, IB(IDX), idx, sizeof(int) * S);
    B->upload(B, FB(PR), probs, sizeof(float) * T * E);
    B->upload(B, FB(W), w, sizeof(float) * S);
    B->moe_permute(B, IB(OFF), IB(ST), IB(SO), IB(IDX), T, E, k);
    R->moe_permute(R, IR(OFF), IR(ST), IR(SO), IR(IDX), T, E, k);
    expect_equal("moe_permute expert_off", OFF);
    expect_equal("moe_permute slot_token", ST);
    expect_equal("moe_permute slot_of", SO);

    Pair EO = pairf(eo, S * H), Y = pairf(NULL, (size_t)T * H), DY = pairf(dy, (size_t)T * H),
         DEO = pairf(NULL, S * H), DW = pairf(NULL, S), DX = pairf(dx0, (size_t)T * H),
         DL = pairf(NULL, (size_t)T * E), AUX = pairf(aux, E);
    B->moe_combine(B, FB(Y), FB(EO), FB(W), IB(SO), T, k, H);
    R->moe_combine(R, FR(Y), FR(EO), FR(W), IR(SO), T, k, H);
    expect_close("moe_combine", Y, tol_plain);
    B->moe_combine_backward(B, FB(DEO), FB(DW), FB(DY), FB(EO), FB(W), IB(SO), T, k, H);
    R->moe_combine_backward(R, FR(DEO), FR(DW), FR(DY), FR(EO), FR(W), IR(SO), T, k, H);
    expect_close("moe_combine_backward deo", DEO, tol_plain);
    expect_close("moe_combine_backward dw", DW, tol_plain);
    B->moe_dispatch_backward(B, FB(DX), FB(EO), IB(SO), T, k, H);
    R->moe_dispatch_backward(R, FR(DX), FR(EO), IR(SO), T, k, H);
    expect_close("moe_dispatch_backward", DX, tol_plain);
    for (int with_aux = 0; with_aux < 2; with_aux++) {
        B->router_backward(B, FB(DL), FB(PR), FB(W), IB(IDX), FB(DW), with_aux ? FB(AUX) : NULL, T, &rt);
        R->router_backward(R, FR(DL), FR(PR), FR(W), IR(IDX), FR(DW), with_aux ? FR(AUX) : NULL, T, &rt);
        expect_close(with_aux ? "router_backward with aux" : "router_backward", DL, tol_plain);
    }

    Pair X = pairf(x, (size_t)T * H), WG = pairf(wg, H), SOUT = pairf(so, (size_t)T * H),
         G = pairf(NULL, T), DSO = pairf(NULL, (size_t)T * H), DLG = pairf(NULL, T),
         DWG = pairf(wg, H);
    B->shared_gate_forward(B, FB(Y), FB(G), FB(X), FB(WG), FB(SOUT), T, H);
    R->shared_gate_forward(R, FR(Y), FR(G), FR(X), FR(WG), FR(SOUT), T, H);
    expect_close("shared_gate_forward y", Y, tol_plain);
    expect_close("shared_gate_forward gate", G, tol_plain);
    B->shared_gate_backward(B, FB(DSO), FB(DLG), FB(DY), FB(SOUT), FB(G), T, H);
    R->shared_gate_backward(R, FR(DSO), FR(DLG), FR(DY), FR(SOUT), FR(G), T, H);
    expect_close("shared_gate_backward dso", DSO, tol_plain);
    expect_close("shared_gate_backward dlogit", DLG, tol_plain);
    B->shared_gate_input_backward(B, FB(DX), FB(DWG), FB(DLG), FB(X), FB(WG), T, H);
    R->shared_gate_input_backward(R, FR(DX), FR(DWG), FR(DLG), FR(X), FR(WG), T, H);
    expect_close("shared_gate_input_backward dx", DX, tol_plain);
    expect_close("shared_gate_input_backward dwg", DWG, tol_plain);

    float *count0 = host_rand(E, 3), *psum0 = host_rand(E, 3);
    Pair CNT = pairf(count0, E), PSUM = pairf(psum0, E);
    B->expert_stats(B, FB(CNT), FB(PSUM), IB(IDX), FB(PR), T, E, k);
    R->expert_stats(R, FR(CNT), FR(PSUM), IR(IDX), FR(PR), T, E, k);
    expect_close("expert_stats count", CNT, 0.0);
    expect_close("expert_stats prob_sum", PSUM, tol_plain);
    end_case();
    free(logits), free(eo), free(dy), free(aux), free(x), free(wg), free(so), free(dx0);
    free(idx), free(probs), free(w), free(count0), free(psum0);
}

/* ---- log-probs, optimizer, sampling ------------------------------------------------------ */

static void case_logprob(int n, int vocab, float temperature) {
    int *targets = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) targets[i] = i % 9 == 4 ? -1 : below(vocab);
    float *logits = host_rand((size_t)n * vocab, 16), *dlp = host_rand(n, 1);
    Pair TG = pairi(targets, n), LG = pairf(logits, (size_t)n * vocab), LP = pairf(NULL, n),
         EN = pairf(NULL, n), DLP = pairf(dlp, n), DL = pairf(NULL, (size_t)n * vocab);
    B->logprob_forward(B, FB(LP), FB(EN), FB(LG), IB(TG), n, vocab, temperature);
    R->logprob_forward(R, FR(LP), FR(EN), FR(LG), IR(TG), n, vocab, temperature);
    expect_close("logprob_forward", LP, tol_plain);
    expect_close("logprob_forward entropy", EN, tol_plain);
    B->logprob_backward(B, FB(DL), FB(DLP), FB(LG), IB(TG), n, vocab, temperature);
    R->logprob_backward(R, FR(DL), FR(DLP), FR(LG), IR(TG), n, vocab, temperature);
    expect_close("logprob_backward", DL, tol_plain);
    end_case();
    free(targets), free(logits), free(dlp);
}

static void case_optimizer(size_t count) {
    float *p = host_rand(count, 1), *g = host_rand(count, 0.1f), *m = host_rand(count, 0.01f),
          *v = host_rand(count, 0.01f);
    for (size_t i = 0; i < count; i++) v[i] = fabsf(v[i]);
    Pair P = pairf(p, count), G = pairf(g, count), M = pairf(m, count), V = pairf(v, count);
    AhaAdamWStep step = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f,
                         .weight_decay = 0.1f, .step = 3};
    B->adamw_step(B, FB(P), FB(G), FB(M), FB(V), count, &step);
    R->adamw_step(R, FR(P), FR(G), FR(M), FR(V), count, &step);
    expect_close("adamw_step params", P, tol_plain);
    expect_close("adamw_step m", M, tol_plain);
    expect_close("adamw_step v", V, tol_plain);
    float nb = 0, nr = 0;
    assert_int_equal(B->grad_norm(B, &nb, FB(G), count), 0);
    assert_int_equal(R->grad_norm(R, &nr, FR(G), count), 0);
    if (!(fabsf(nb - nr) <= tol_plain * nr)) {
        print_error("%s: grad_norm %.9g vs reference %.9g\n", label, nb, nr);
        failures++;
    }
    end_case();
    free(p), free(g), free(m), free(v);
}

static void case_sample(int n, int vocab, AhaSampleSpec spec) {
    int n_rows = n / 2, *rows = malloc(sizeof(int) * n);
    uint64_t *streams = malloc(sizeof(uint64_t) * n), *positions = malloc(sizeof(uint64_t) * n);
    for (int i = 0; i < n; i++) {
        rows[i] = i % n_rows; /* two sequences per row, as prefill with prefix sharing */
        streams[i] = ((uint64_t)(i / 3) << 32) | (uint64_t)i;
        positions[i] = (uint64_t)(i * 7);
    }
    float *logits = host_rand((size_t)n_rows * vocab, 12);
    Pair RW = pairi(rows, n), STR = pair(streams, sizeof(uint64_t) * n),
         POS = pair(positions, sizeof(uint64_t) * n), LG = pairf(logits, (size_t)n_rows * vocab),
         TOK = pairi(NULL, n), LP = pairf(NULL, n);
    B->sample(B, IB(TOK), FB(LP), FB(LG), IB(RW), STR.b, POS.b, n, vocab, &spec);
    R->sample(R, IR(TOK), FR(LP), FR(LG), IR(RW), STR.r, POS.r, n, vocab, &spec);
    expect_equal("sample tokens", TOK);
    expect_close("sample logprobs", LP, tol_plain);
    end_case();
    free(rows), free(streams), free(positions), free(logits);
}

/* ---- the cases on one tested context --------------------------------------------------- */

static int n_cases;
#define CASE(call) (call, n_cases++)

static void run_all_cases(void) {
    CASE(case_matmul(67, 96, 80, 1));
    CASE(case_matmul(33, 64, 200, 0));
    CASE(case_matmul_invariance(67, 96, 80));
    CASE(case_grouped_matmul(64, 70 * 8, 64, 48));
    CASE(case_grouped_matmul(8, 70 * 2, 96, 40));
    CASE(case_rows_and_elements(70, 96, 50));
    CASE(case_rmsnorm(70, 128));
    CASE(case_rmsnorm(280, 64));
    CASE(case_rope(70, 4, 64));
    CASE(case_rope(70, 2, 128));
    CASE(case_swiglu((size_t)70 * 96 + 3));
    static const int lens1[] = {1, 37, 70, 5}, lens2[] = {66, 3};
    CASE(case_attention(lens1, 4, 4, 2, 64));
    CASE(case_attention(lens2, 2, 2, 1, 128));
    CASE(case_attention(lens2, 2, 3, 3, 40)); /* not a multiple of 8: the plain path */
    CASE(case_attention(lens1, 4, 6, 2, 48)); /* a pair and a single per group, a 16-column tail */
    CASE(case_decode(4, 2, 64));
    CASE(case_decode(2, 1, 128));
    CASE(case_moe(70, 64, 8, 64, 1));
    CASE(case_moe(70, 8, 2, 96, 0));
    CASE(case_logprob(33, 4099, 1.0f));
    CASE(case_logprob(40, 4096, 0.7f));
    CASE(case_optimizer(10007));
    CASE(case_sample(40, 4096, ((AhaSampleSpec){.temperature = 0.0f, .top_p = 1.0f, .seed = 1})));
    CASE(case_sample(40, 4096, ((AhaSampleSpec){.temperature = 1.0f, .top_p = 1.0f, .seed = 2})));
    CASE(case_sample(40, 4099, ((AhaSampleSpec){.temperature = 0.8f, .top_p = 1.0f, .top_k = 50, .seed = 3})));
    CASE(case_sample(40, 4096, ((AhaSampleSpec){.temperature = 1.2f, .top_p = 0.9f, .top_k = 0, .seed = 4})));
}

static void test_every_backend_against_the_reference(void **state) {
    (void)state;
    AhaBackendOptions plain = {0}, invariant = {.batch_invariant = 1};
    int tested = 0;
    for (int i = 0; i < aha_backend_count(); i++) {
        const char *name = aha_backend_name(i);
        if (strcmp(name, "cpu-ref") == 0) continue;
        for (int inv = 0; inv < 2; inv++) {
            const AhaBackendOptions *opt = inv ? &invariant : &plain;
            B = aha_backend_create(name, opt);
            if (B == NULL) {
                printf("skipping backend %s: %s\n", name, aha_error_message());
                break;
            }
            R = aha_backend_create("cpu-ref", opt);
            assert_non_null(R);
            char buf[64];
            snprintf(buf, sizeof buf, "%s%s", name, inv ? " (batch-invariant)" : "");
            label = buf;
            if (inv && !B->batch_invariant) printf("%s: cannot be batch-invariant\n", name);
            failures = 0;
            n_cases = 0;
            run_all_cases();
            printf("%s: %d cases against cpu-ref, %d failures\n", label, n_cases, failures);
            assert_int_equal(failures, 0);
            aha_backend_free(B);
            aha_backend_free(R);
            tested++;
        }
    }
    assert_true(tested >= 2); /* at least the CPU backend, plain and batch-invariant */
}

/* The invariant matmul of the CPU backend and its plain form give the same bits. */
static void test_invariant_matmul_is_bitwise_the_reference(void **state) {
    (void)state;
    AhaBackendOptions opt = {.batch_invariant = 1};
    B = aha_backend_create("cpu", &opt);
    R = aha_backend_create("cpu-ref", &opt);
    assert_non_null(B), assert_non_null(R);
    assert_true(B->batch_invariant && R->batch_invariant);
    label = "cpu (batch-invariant)";
    int n = 70, in = 100, out = 37;
    float *x = host_rand((size_t)n * in, 1), *w = host_rand((size_t)out * in, 0.3f), *b = host_rand(out, 1);
    Pair X = pairf(x, (size_t)n * in), W = pairf(w, (size_t)out * in), Bi = pairf(b, out),
         Y = pairf(NULL, (size_t)n * out);
    B->matmul_forward(B, FB(Y), FB(X), FB(W), FB(Bi), n, in, out);
    R->matmul_forward(R, FR(Y), FR(X), FR(W), FR(Bi), n, in, out);
    failures = 0;
    expect_equal("invariant matmul_forward", Y);
    assert_int_equal(failures, 0);
    end_case();
    aha_backend_free(B);
    aha_backend_free(R);
    free(x), free(w), free(b);
}

/* ---- finite differences on the reference backend ----------------------------------------- */

typedef double (*LossFn)(void *ctx);

/* d loss / d x (x host memory that loss() reads) against grad along 3 random directions */
static void check_grad(const char *what, LossFn loss, void *ctx, float *x, const float *grad,
                       size_t n, double eps, double tol) {
    float *saved = malloc(n * sizeof(float)), *dir = malloc(n * sizeof(float));
    memcpy(saved, x, n * sizeof(float));
    for (int trial = 0; trial < 3; trial++) {
        for (size_t i = 0; i < n; i++) dir[i] = uniform();
        double analytic = 0.0;
        for (size_t i = 0; i < n; i++) {
            float up = saved[i] + (float)eps * dir[i], down = saved[i] - (float)eps * dir[i];
            analytic += (double)grad[i] * ((double)up - down) / (2 * eps);
        }
        for (size_t i = 0; i < n; i++) x[i] = saved[i] + (float)eps * dir[i];
        double plus = loss(ctx);
        for (size_t i = 0; i < n; i++) x[i] = saved[i] - (float)eps * dir[i];
        double minus = loss(ctx);
        memcpy(x, saved, n * sizeof(float));
        double numeric = (plus - minus) / (2 * eps);
        double err = fabs(numeric - analytic) / fmax(1e-2, fmax(fabs(numeric), fabs(analytic)));
        if (err > tol) fail_msg("%s trial %d: analytic %.7g vs numeric %.7g", what, trial, analytic, numeric);
    }
    free(saved);
    free(dir);
}

static double weighted(const float *out, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * out[i];
    return s;
}

/* the reference backend's memory is host memory: the checks call it on host arrays */
typedef struct { AhaBackend *be; float *q, *k, *v, *out, *lse, *r; AhaSeqs seqs; int h, kvh, hd; } AttnFd;
static double attn_loss(void *p) {
    AttnFd *c = p;
    c->be->attention_forward(c->be, c->out, c->lse, c->q, c->k, c->v, &c->seqs, c->h, c->kvh, c->hd);
    return weighted(c->out, c->r, (size_t)c->seqs.n_rows * c->h * c->hd);
}

static void test_attention_backward_finite_differences(void **state) {
    (void)state;
    AhaBackend *ref = aha_backend_create("cpu-ref", NULL);
    assert_non_null(ref);
    assert_true(ref->host_memory);
    static const int ss[] = {0, 4, 9};
    AttnFd c = {.be = ref, .seqs = {ss, 2, 9, 5}, .h = 4, .kvh = 2, .hd = 8};
    size_t qn = 9 * 4 * 8, kn = 9 * 2 * 8;
    c.q = host_rand(qn, 1), c.k = host_rand(kn, 1), c.v = host_rand(kn, 1), c.r = host_rand(qn, 1);
    c.out = calloc(qn, 4), c.lse = calloc(9 * 4, 4);
    float *dq = calloc(qn, 4), *dk = calloc(kn, 4), *dv = calloc(kn, 4);
    attn_loss(&c);
    ref->attention_backward(ref, dq, dk, dv, c.r, c.q, c.k, c.v, c.out, c.lse, &c.seqs, 4, 2, 8);
    check_grad("attention dq", attn_loss, &c, c.q, dq, qn, 1e-2, 2e-3);
    check_grad("attention dk", attn_loss, &c, c.k, dk, kn, 1e-2, 2e-3);
    check_grad("attention dv", attn_loss, &c, c.v, dv, kn, 1e-2, 2e-3);
    free(c.q), free(c.k), free(c.v), free(c.r), free(c.out), free(c.lse), free(dq), free(dk), free(dv);
    aha_backend_free(ref);
}

/* y = combine(router_topk(logits), eo): the router, combine and their backward together */
typedef struct {
    AhaBackend *be;
    AhaRouting rt;
    float *logits, *probs, *w, *eo, *y, *r;
    int *idx, *off, *slot_token, *slot_of, T, H;
} MoeFd;
static double moe_loss(void *p) {
    MoeFd *c = p;
    int E = c->rt.num_experts, k = c->rt.top_k;
    memcpy(c->probs, c->logits, sizeof(float) * c->T * E);
    c->be->router_topk(c->be, c->probs, c->w, c->idx, c->T, &c->rt);
    c->be->moe_permute(c->be, c->off, c->slot_token, c->slot_of, c->idx, c->T, E, k);
    c->be->moe_combine(c->be, c->y, c->eo, c->w, c->slot_of, c->T, k, c->H);
    return weighted(c->y, c->r, (size_t)c->T * c->H);
}

static void test_router_and_combine_finite_differences(void **state) {
    (void)state;
    AhaBackend *ref = aha_backend_create("cpu-ref", NULL);
    assert_non_null(ref);
    for (int renorm = 0; renorm < 2; renorm++) {
        int T = 6, E = 8, k = 2, H = 5;
        MoeFd c = {.be = ref, .rt = routing(E, k, renorm), .T = T, .H = H};
        /* well separated logits, so a small step cannot change the top-k choice */
        c.logits = malloc(sizeof(float) * T * E);
        for (int t = 0; t < T; t++)
            for (int e = 0; e < E; e++) c.logits[t * E + e] = 0.6f * (float)((e * 5 + t * 3) % E) + 0.1f * uniform();
        c.probs = malloc(sizeof(float) * T * E), c.w = malloc(sizeof(float) * T * k);
        c.eo = host_rand((size_t)T * k * H, 1), c.y = malloc(sizeof(float) * T * H), c.r = host_rand((size_t)T * H, 1);
        c.idx = malloc(sizeof(int) * T * k), c.off = malloc(sizeof(int) * (E + 1));
        c.slot_token = malloc(sizeof(int) * T * k), c.slot_of = malloc(sizeof(int) * T * k);
        moe_loss(&c);
        float *deo = malloc(sizeof(float) * T * k * H), *dw = malloc(sizeof(float) * T * k),
              *dlogits = malloc(sizeof(float) * T * E);
        ref->moe_combine_backward(ref, deo, dw, c.r, c.eo, c.w, c.slot_of, T, k, H);
        ref->router_backward(ref, dlogits, c.probs, c.w, c.idx, dw, NULL, T, &c.rt);
        check_grad("moe_combine deo", moe_loss, &c, c.eo, deo, (size_t)T * k * H, 1e-2, 2e-3);
        check_grad(renorm ? "router logits (renormalized)" : "router logits", moe_loss, &c, c.logits,
                   dlogits, (size_t)T * E, 1e-3, 5e-3);
        free(c.logits), free(c.probs), free(c.w), free(c.eo), free(c.y), free(c.r), free(c.idx);
        free(c.off), free(c.slot_token), free(c.slot_of), free(deo), free(dw), free(dlogits);
    }
    aha_backend_free(ref);
}

typedef struct { AhaBackend *be; float *x, *wg, *so, *y, *gate, *r; int T, H; } GateFd;
static double gate_loss(void *p) {
    GateFd *c = p;
    memset(c->y, 0, sizeof(float) * c->T * c->H);
    c->be->shared_gate_forward(c->be, c->y, c->gate, c->x, c->wg, c->so, c->T, c->H);
    return weighted(c->y, c->r, (size_t)c->T * c->H);
}

static void test_shared_gate_finite_differences(void **state) {
    (void)state;
    AhaBackend *ref = aha_backend_create("cpu-ref", NULL);
    assert_non_null(ref);
    int T = 5, H = 7;
    GateFd c = {.be = ref, .T = T, .H = H};
    c.x = host_rand((size_t)T * H, 1), c.wg = host_rand(H, 1), c.so = host_rand((size_t)T * H, 1);
    c.y = malloc(sizeof(float) * T * H), c.gate = malloc(sizeof(float) * T), c.r = host_rand((size_t)T * H, 1);
    gate_loss(&c);
    float *dso = malloc(sizeof(float) * T * H), *dlogit = malloc(sizeof(float) * T);
    float *dx = calloc((size_t)T * H, 4), *dwg = calloc(H, 4);
    ref->shared_gate_backward(ref, dso, dlogit, c.r, c.so, c.gate, T, H);
    ref->shared_gate_input_backward(ref, dx, dwg, dlogit, c.x, c.wg, T, H);
    check_grad("shared gate dso", gate_loss, &c, c.so, dso, (size_t)T * H, 1e-2, 2e-3);
    check_grad("shared gate dx", gate_loss, &c, c.x, dx, (size_t)T * H, 1e-2, 2e-3);
    check_grad("shared gate dwg", gate_loss, &c, c.wg, dwg, H, 1e-2, 2e-3);
    free(c.x), free(c.wg), free(c.so), free(c.y), free(c.gate), free(c.r), free(dso), free(dlogit);
    free(dx), free(dwg);
    aha_backend_free(ref);
}

/* ---- errors a caller can meet --------------------------------------------------------------- */

static void test_unknown_backend_and_unsupported_routing(void **state) {
    (void)state;
    assert_null(aha_backend_create("tpu", NULL));
    assert_non_null(strstr(aha_error_message(), "backend \"tpu\": unknown"));
#ifndef AHA_HAVE_CUDA
    assert_null(aha_backend_create("cuda", NULL));
    assert_non_null(strstr(aha_error_message(), "built without CUDA"));
#endif
    for (int i = 0; i < 2; i++) {
        AhaBackend *be = aha_backend_create(i ? "cpu-ref" : "cpu", NULL);
        assert_non_null(be);
        AhaRouting rt = routing(8, 2, 1);
        rt.score = AHA_ROUTER_SIGMOID;
        float probs[8] = {0}, w[2];
        int idx[2];
        be->router_topk(be, probs, w, idx, 1, &rt);
        assert_int_equal(be->sync(be), -1);
        assert_non_null(strstr(aha_error_message(), "only softmax top-k"));
        assert_int_equal(be->sync(be), 0); /* sync took the failure */
        aha_backend_free(be);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_backend_against_the_reference),
        cmocka_unit_test(test_invariant_matmul_is_bitwise_the_reference),
        cmocka_unit_test(test_attention_backward_finite_differences),
        cmocka_unit_test(test_router_and_combine_finite_differences),
        cmocka_unit_test(test_shared_gate_finite_differences),
        cmocka_unit_test(test_unknown_backend_and_unsupported_routing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
