/* Every kernel: its backward against central finite differences (loss = sum r*out, summed
 * in double, each input checked along random directions and at single coordinates), and the
 * fast CPU kernel against the plain C reference on odd sizes. Attention is checked in its
 * backend form (aha/backend.h); tests/kernels/test_backend_ops.c covers every backend op. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/backend.h"
#include "aha/kernels.h"

static uint64_t rng = 99;
static float uniform(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}
static float *randn(size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * scale * uniform();
    return x;
}
static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

typedef double (*LossFn)(void *ctx);

/* Checks d loss / d x against grad along 3 random directions and at 3 coordinates. */
static void check_grad(const char *what, LossFn loss, void *ctx, float *x, const float *grad,
                       size_t n, double eps, double tol) {
    float *saved = malloc(n * sizeof(float)), *dir = malloc(n * sizeof(float));
    memcpy(saved, x, n * sizeof(float));
    for (int trial = 0; trial < 6; trial++) {
        if (trial < 3) {
            for (size_t i = 0; i < n; i++) dir[i] = uniform();
        } else {
            memset(dir, 0, n * sizeof(float));
            dir[(size_t)((uniform() + 0.5f) * (n - 1))] = 1.0f;
        }
        /* the analytic side uses the step float rounding actually made, x+ - x- */
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

static void assert_close(const char *what, const float *a, const float *b, size_t n, float tol) {
    for (size_t i = 0; i < n; i++)
        if (fabsf(a[i] - b[i]) > tol * fmaxf(1.0f, fabsf(b[i])))
            fail_msg("%s[%zu]: %.8g vs reference %.8g", what, i, a[i], b[i]);
}

/* ---- matmul */
typedef struct { float *out, *in, *w, *b, *r; int n, i, o; } MatmulCtx;
static double matmul_loss(void *p) {
    MatmulCtx *c = p;
    aha_matmul_forward_ref(c->out, c->in, c->w, c->b, c->n, c->i, c->o);
    return weighted(c->out, c->r, (size_t)c->n * c->o);
}

static void test_matmul(void **state) {
    (void)state;
    int n = 7, i = 13, o = 9;
    MatmulCtx c = {zeros(n * o), randn(n * i, 1), randn(o * i, 1), randn(o, 1), randn(n * o, 1), n, i, o};
    float *din = zeros(n * i), *dw = zeros(o * i), *db = zeros(o);
    aha_matmul_backward_ref(din, dw, db, c.r, c.in, c.w, n, i, o);
    check_grad("matmul din", matmul_loss, &c, c.in, din, n * i, 1e-2, 1e-3);
    check_grad("matmul dweight", matmul_loss, &c, c.w, dw, o * i, 1e-2, 1e-3);
    check_grad("matmul dbias", matmul_loss, &c, c.b, db, o, 1e-2, 1e-3);
    const AhaKernels *K = aha_kernels_cpu();
    float *fast = zeros(n * o), *fdin = zeros(n * i), *fdw = zeros(o * i), *fdb = zeros(o);
    K->matmul_forward(fast, c.in, c.w, c.b, n, i, o);
    aha_matmul_forward_ref(c.out, c.in, c.w, c.b, n, i, o);
    assert_close("matmul forward", fast, c.out, n * o, 1e-5f);
    K->matmul_backward(fdin, fdw, fdb, c.r, c.in, c.w, n, i, o);
    assert_close("matmul din", fdin, din, n * i, 1e-5f);
    assert_close("matmul dweight", fdw, dw, o * i, 1e-5f);
    assert_close("matmul dbias", fdb, db, o, 1e-5f);
    free(c.out), free(c.in), free(c.w), free(c.b), free(c.r);
    free(din), free(dw), free(db), free(fast), free(fdin), free(fdw), free(fdb);
}

/* ---- rmsnorm */
typedef struct { float *out, *rstd, *in, *w, *r; int n, d; } NormCtx;
static double norm_loss(void *p) {
    NormCtx *c = p;
    aha_rmsnorm_forward_ref(c->out, c->rstd, c->in, c->w, c->n, c->d, 1e-5f);
    return weighted(c->out, c->r, (size_t)c->n * c->d);
}

static void test_rmsnorm(void **state) {
    (void)state;
    int n = 5, d = 11;
    NormCtx c = {zeros(n * d), zeros(n), randn(n * d, 1), randn(d, 1), randn(n * d, 1), n, d};
    norm_loss(&c);
    float *din = zeros(n * d), *dw = zeros(d);
    aha_rmsnorm_backward_ref(din, dw, c.r, c.in, c.w, c.rstd, n, d);
    check_grad("rmsnorm din", norm_loss, &c, c.in, din, n * d, 1e-3, 2e-3);
    check_grad("rmsnorm dweight", norm_loss, &c, c.w, dw, d, 1e-3, 2e-3);
    const AhaKernels *K = aha_kernels_cpu();
    float *fast = zeros(n * d), *frstd = zeros(n), *fdin = zeros(n * d), *fdw = zeros(d);
    K->rmsnorm_forward(fast, frstd, c.in, c.w, n, d, 1e-5f);
    norm_loss(&c);
    assert_close("rmsnorm forward", fast, c.out, n * d, 1e-6f);
    K->rmsnorm_backward(fdin, fdw, c.r, c.in, c.w, frstd, n, d);
    assert_close("rmsnorm din", fdin, din, n * d, 1e-5f);
    assert_close("rmsnorm dweight", fdw, dw, d, 1e-5f);
    free(c.out), free(c.rstd), free(c.in), free(c.w), free(c.r);
    free(din), free(dw), free(fast), free(frstd), free(fdin), free(fdw);
}

/* ---- rope: backward is the transpose (<R x, y> = <x, R^T y>), and rotation keeps norms */
static void test_rope(void **state) {
    (void)state;
    int n = 6, heads = 3, hd = 8, pos[6] = {0, 1, 2, 7, 100, 5000};
    size_t len = (size_t)n * heads * hd;
    float *x = randn(len, 1), *y = randn(len, 1), *rx = malloc(len * 4), *ry = malloc(len * 4);
    memcpy(rx, x, len * 4);
    memcpy(ry, y, len * 4);
    aha_rope_forward_ref(rx, pos, n, heads, hd, 10000.0f);
    aha_rope_backward_ref(ry, pos, n, heads, hd, 10000.0f);
    assert_float_equal(weighted(rx, y, len), weighted(x, ry, len), 1e-4);
    assert_float_equal(weighted(rx, rx, len), weighted(x, x, len), 1e-3);
    assert_close("rope position 0 is the identity", rx, x, heads * hd, 0.0f);
    /* pair (0, hd/2) at position 1 rotates by exactly 1 radian */
    float c1 = cosf(1.0f), s1 = sinf(1.0f);
    size_t r1 = (size_t)heads * hd;
    assert_float_equal(rx[r1], x[r1] * c1 - x[r1 + hd / 2] * s1, 1e-6);
    float *fast = malloc(len * 4);
    memcpy(fast, x, len * 4);
    aha_kernels_cpu()->rope_forward(fast, pos, n, heads, hd, 10000.0f);
    assert_close("rope fast", fast, rx, len, 1e-6f);
    memcpy(fast, y, len * 4);
    aha_kernels_cpu()->rope_backward(fast, pos, n, heads, hd, 10000.0f);
    assert_close("rope backward fast", fast, ry, len, 1e-6f);
    free(x), free(y), free(rx), free(ry), free(fast);
}

/* ---- attention over a packed batch with GQA: the backend contract (aha/backend.h), in
 * which the forward keeps the output and the log-sum-exp and the backward recomputes. */
enum { HEADS = 4, KV = 2, HD = 6 };
static const int att_starts[4] = {0, 5, 6, 13};
static const AhaSeqs att_seqs = {att_starts, 3, 13, 7};
typedef struct { AhaBackend *be; float *out, *lse, *q, *k, *v, *r; } AttCtx;
static double att_loss(void *p) {
    AttCtx *c = p;
    c->be->attention_forward(c->be, c->out, c->lse, c->q, c->k, c->v, &att_seqs, HEADS, KV, HD);
    return weighted(c->out, c->r, 13 * HEADS * HD);
}

static void test_attention(void **state) {
    (void)state;
    int T = 13, qd = HEADS * HD, kvd = KV * HD;
    AhaBackend *ref = aha_backend_create("cpu-ref", NULL), *fast = aha_backend_create("cpu", NULL);
    assert_non_null(ref), assert_non_null(fast);
    AttCtx c = {ref, zeros(T * qd), zeros(T * HEADS), randn(T * qd, 1), randn(T * kvd, 1),
                randn(T * kvd, 1), randn(T * qd, 1)};
    att_loss(&c);
    float *dq = zeros(T * qd), *dk = zeros(T * kvd), *dv = zeros(T * kvd);
    /* causal and per sequence: the first row of each sequence attends only to itself */
    for (int d = 0; d < HD; d++) assert_float_equal(c.out[5 * qd + d], c.v[5 * kvd + d], 1e-6);
    ref->attention_backward(ref, dq, dk, dv, c.r, c.q, c.k, c.v, c.out, c.lse, &att_seqs, HEADS, KV, HD);
    check_grad("attention dq", att_loss, &c, c.q, dq, T * qd, 1e-2, 2e-3);
    check_grad("attention dk", att_loss, &c, c.k, dk, T * kvd, 1e-2, 2e-3);
    check_grad("attention dv", att_loss, &c, c.v, dv, T * kvd, 1e-2, 2e-3);
    float *out = zeros(T * qd), *lse = zeros(T * HEADS), *fdq = zeros(T * qd), *fdk = zeros(T * kvd),
          *fdv = zeros(T * kvd);
    fast->attention_forward(fast, out, lse, c.q, c.k, c.v, &att_seqs, HEADS, KV, HD);
    att_loss(&c); /* c.out and c.lse at the unperturbed inputs again */
    assert_close("attention forward", out, c.out, T * qd, 1e-5f);
    assert_close("attention lse", lse, c.lse, T * HEADS, 1e-5f);
    fast->attention_backward(fast, fdq, fdk, fdv, c.r, c.q, c.k, c.v, out, lse, &att_seqs, HEADS, KV, HD);
    assert_close("attention dq", fdq, dq, T * qd, 1e-5f);
    assert_close("attention dk", fdk, dk, T * kvd, 1e-5f);
    assert_close("attention dv", fdv, dv, T * kvd, 1e-5f);
    free(c.out), free(c.lse), free(c.q), free(c.k), free(c.v), free(c.r);
    free(dq), free(dk), free(dv), free(out), free(lse), free(fdq), free(fdk), free(fdv);
    aha_backend_free(ref), aha_backend_free(fast);
}

/* ---- swiglu */
typedef struct { float *out, *g, *u, *r; size_t n; } SwigluCtx;
static double swiglu_loss(void *p) {
    SwigluCtx *c = p;
    aha_swiglu_forward_ref(c->out, c->g, c->u, c->n);
    return weighted(c->out, c->r, c->n);
}

static void test_swiglu(void **state) {
    (void)state;
    size_t n = 9000; /* more than one block of the fast kernel */
    SwigluCtx c = {zeros(n), randn(n, 4), randn(n, 2), randn(n, 1), n};
    float *dg = zeros(n), *du = zeros(n);
    aha_swiglu_backward_ref(dg, du, c.r, c.g, c.u, n);
    check_grad("swiglu dgate", swiglu_loss, &c, c.g, dg, n, 1e-3, 2e-3);
    check_grad("swiglu dup", swiglu_loss, &c, c.u, du, n, 1e-3, 2e-3);
    const AhaKernels *K = aha_kernels_cpu();
    float *out = zeros(n), *fdg = zeros(n), *fdu = zeros(n);
    K->swiglu_forward(out, c.g, c.u, n);
    swiglu_loss(&c);
    assert_close("swiglu forward", out, c.out, n, 1e-6f);
    K->swiglu_backward(fdg, fdu, c.r, c.g, c.u, n);
    assert_close("swiglu dgate", fdg, dg, n, 1e-6f);
    assert_close("swiglu dup", fdu, du, n, 1e-6f);
    free(c.out), free(c.g), free(c.u), free(c.r), free(dg), free(du), free(out), free(fdg), free(fdu);
}

/* ---- log-prob of a target at a temperature */
typedef struct { float *lp, *logits, *r; int *targets; int n, v; float temp; } LogprobCtx;
static double logprob_loss(void *p) {
    LogprobCtx *c = p;
    aha_logprob_forward_ref(c->lp, NULL, c->logits, c->targets, c->n, c->v, c->temp);
    return weighted(c->lp, c->r, c->n);
}

static void test_logprob(void **state) {
    (void)state;
    int n = 4, v = 29, targets[4] = {3, -1, 28, 0};
    LogprobCtx c = {zeros(n), randn(n * v, 6), randn(n, 1), targets, n, v, 0.7f};
    float *dlogits = zeros(n * v);
    aha_logprob_backward_ref(dlogits, c.r, c.logits, targets, n, v, c.temp);
    check_grad("logprob dlogits", logprob_loss, &c, c.logits, dlogits, n * v, 1e-2, 2e-3);
    for (int i = 0; i < v; i++) assert_float_equal(dlogits[v + i], 0.0f, 0.0); /* unscored row */
    const AhaKernels *K = aha_kernels_cpu();
    float *lp = zeros(n), *ent = zeros(n), *rent = zeros(n), *fd = zeros(n * v);
    aha_logprob_forward_ref(c.lp, rent, c.logits, targets, n, v, c.temp);
    K->logprob_forward(lp, ent, c.logits, targets, n, v, c.temp);
    assert_close("logprob", lp, c.lp, n, 1e-6f);
    assert_close("entropy", ent, rent, n, 1e-6f);
    assert_float_equal(lp[1], 0.0f, 0.0);
    K->logprob_backward(fd, c.r, c.logits, targets, n, v, c.temp);
    assert_close("logprob backward", fd, dlogits, n * v, 1e-6f);
    /* uniform logits: entropy log V */
    float flat[29] = {0};
    int t0 = 0;
    aha_logprob_forward_ref(lp, ent, flat, &t0, 1, v, 1.0f);
    assert_float_equal(ent[0], logf((float)v), 1e-5);
    assert_float_equal(lp[0], -logf((float)v), 1e-5);
    free(c.lp), free(c.logits), free(c.r), free(dlogits), free(lp), free(ent), free(rent), free(fd);
}

/* The vector attention (head_dim a multiple of 8): forward and backward against the
 * reference on sequences up to 70 rows (every tail length of the four-key and eight-key
 * blocks), each training row equal bit for bit to the decoder's row kernel, and each head of
 * a KV group equal to the head computed alone. */
static void attention_vector_case(int H, int KVH, int D) {
    enum { NS = 5 };
    const int starts[NS + 1] = {0, 1, 8, 48, 118, 131};
    const AhaSeqs seqs = {starts, NS, 131, 70};
    int T = starts[NS], qd = H * D, kvd = KVH * D;
    AhaBackend *ref = aha_backend_create("cpu-ref", NULL), *fast = aha_backend_create("cpu", NULL);
    assert_non_null(ref), assert_non_null(fast);
    float *q = randn((size_t)T * qd, 1), *k = randn((size_t)T * kvd, 1), *v = randn((size_t)T * kvd, 1);
    float *dy = randn((size_t)T * qd, 1);
    float *out = zeros((size_t)T * qd), *lse = zeros((size_t)T * H), *rout = zeros((size_t)T * qd),
          *rlse = zeros((size_t)T * H);
    fast->attention_forward(fast, out, lse, q, k, v, &seqs, H, KVH, D);
    ref->attention_forward(ref, rout, rlse, q, k, v, &seqs, H, KVH, D);
    assert_close("attention forward (vector)", out, rout, (size_t)T * qd, 1e-5f);
    assert_close("attention lse (vector)", lse, rlse, (size_t)T * H, 1e-5f);
    const AhaKernels *K = aha_kernels_cpu();
    float *row_out = zeros((size_t)H * D), *row_probs = zeros((size_t)H * 70);
    for (int s = 0; s < NS; s++)
        for (int t = starts[s]; t < starts[s + 1]; t++) {
            int i = t - starts[s];
            K->attention_row_forward(row_out, row_probs, q + (size_t)t * qd, k + (size_t)starts[s] * kvd,
                                     v + (size_t)starts[s] * kvd, i + 1, kvd, H, KVH, D);
            assert_memory_equal(row_out, out + (size_t)t * qd, sizeof(float) * H * D);
        }
    for (int h = 0; h < H; h++) {
        int t = 100, s = 3, i = t - starts[s];
        float alone[64], alone_p[70];
        K->attention_row_forward(alone, alone_p, q + (size_t)t * qd + h * D,
                                 k + (size_t)starts[s] * kvd + (h / (H / KVH)) * D,
                                 v + (size_t)starts[s] * kvd + (h / (H / KVH)) * D, i + 1, kvd, 1, 1, D);
        assert_memory_equal(alone, out + (size_t)t * qd + h * D, sizeof(float) * D);
    }
    float *dq = zeros((size_t)T * qd), *dk = zeros((size_t)T * kvd), *dv = zeros((size_t)T * kvd);
    float *rdq = zeros((size_t)T * qd), *rdk = zeros((size_t)T * kvd), *rdv = zeros((size_t)T * kvd);
    for (size_t i = 0; i < (size_t)T * kvd; i++) dk[i] = rdk[i] = 0.25f; /* backward accumulates */
    fast->attention_backward(fast, dq, dk, dv, dy, q, k, v, out, lse, &seqs, H, KVH, D);
    ref->attention_backward(ref, rdq, rdk, rdv, dy, q, k, v, rout, rlse, &seqs, H, KVH, D);
    assert_close("attention dq (vector)", dq, rdq, (size_t)T * qd, 1e-5f);
    assert_close("attention dk (vector)", dk, rdk, (size_t)T * kvd, 1e-5f);
    assert_close("attention dv (vector)", dv, rdv, (size_t)T * kvd, 1e-5f);
    free(q), free(k), free(v), free(dy), free(out), free(lse), free(rout), free(rlse);
    free(dq), free(dk), free(dv), free(rdq), free(rdk), free(rdv), free(row_out), free(row_probs);
    aha_backend_free(ref), aha_backend_free(fast);
}

static void test_attention_vector_path(void **state) {
    (void)state;
    attention_vector_case(4, 2, 32); /* query heads in pairs */
    attention_vector_case(6, 2, 48); /* a pair and a single per group; a 16-column tail */
    attention_vector_case(3, 3, 8);  /* one query head per KV head */
}

/* ---- the fast row kernels give a row the same bits whatever batch it comes in (the KV-cache
 * decoder runs them on a few rows, the trainer on thousands, with and without threads). */
static void test_rows_do_not_depend_on_the_batch(void **state) {
    (void)state;
    const AhaKernels *K = aha_kernels_cpu();
    /* RMSNorm: enough rows to take the threaded path; a width with a scalar tail */
    int n = 300, d = 100, row = 123;
    float *in = randn((size_t)n * d, 1), *w = randn(d, 1), *dy = randn((size_t)n * d, 1);
    float *out = zeros((size_t)n * d), *rstd = zeros(n), *one = zeros(d), *one_rstd = zeros(1);
    float *ref = zeros((size_t)n * d), *ref_rstd = zeros(n);
    K->rmsnorm_forward(out, rstd, in, w, n, d, 1e-6f);
    K->rmsnorm_forward(one, one_rstd, in + (size_t)row * d, w, 1, d, 1e-6f);
    assert_memory_equal(one, out + (size_t)row * d, sizeof(float) * d);
    assert_memory_equal(one_rstd, rstd + row, sizeof(float));
    aha_rmsnorm_forward_ref(ref, ref_rstd, in, w, n, d, 1e-6f);
    assert_close("rmsnorm forward (threaded)", out, ref, (size_t)n * d, 1e-6f);
    float *din = zeros((size_t)n * d), *dw = zeros(d), *din1 = zeros(d), *dw1 = zeros(d);
    float *rdin = zeros((size_t)n * d), *rdw = zeros(d), *dw_serial = zeros(d);
    K->rmsnorm_backward(din, dw, dy, in, w, rstd, n, d);
    K->rmsnorm_backward(din1, dw1, dy + (size_t)row * d, in + (size_t)row * d, w, rstd + row, 1, d);
    assert_memory_equal(din1, din + (size_t)row * d, sizeof(float) * d);
    for (int t = 0; t < n; t++) /* row by row (the serial path) sums dweight in the same order */
        K->rmsnorm_backward(NULL, dw_serial, dy + (size_t)t * d, in + (size_t)t * d, w, rstd + t, 1, d);
    assert_memory_equal(dw_serial, dw, sizeof(float) * d);
    aha_rmsnorm_backward_ref(rdin, rdw, dy, in, w, rstd, n, d);
    assert_close("rmsnorm din (threaded)", din, rdin, (size_t)n * d, 1e-5f);
    assert_close("rmsnorm dweight (threaded)", dw, rdw, d, 1e-4f);
    free(in), free(w), free(dy), free(out), free(rstd), free(one), free(one_rstd), free(ref);
    free(ref_rstd), free(din), free(dw), free(din1), free(dw1), free(rdin), free(rdw), free(dw_serial);

    /* RoPE: many rows at repeated positions use a table of angles, one row computes its own;
     * head_dim 20 leaves a scalar tail in each half */
    int heads = 3, hd = 20, rows = 200, pos[200];
    for (int t = 0; t < rows; t++) pos[t] = (t * 7) % 50;
    size_t len = (size_t)rows * heads * hd;
    float *x = randn(len, 1), *fast = malloc(len * 4), *slow = malloc(len * 4);
    for (int dir = 0; dir < 2; dir++) {
        memcpy(fast, x, len * 4);
        memcpy(slow, x, len * 4);
        if (dir == 0) {
            K->rope_forward(fast, pos, rows, heads, hd, 10000.0f);
            aha_rope_forward_ref(slow, pos, rows, heads, hd, 10000.0f);
        } else {
            K->rope_backward(fast, pos, rows, heads, hd, 10000.0f);
            aha_rope_backward_ref(slow, pos, rows, heads, hd, 10000.0f);
        }
        assert_close("rope table", fast, slow, len, 1e-6f);
        for (int t = 0; t < rows; t += 37) {
            float alone[60];
            memcpy(alone, x + (size_t)t * heads * hd, sizeof alone);
            if (dir == 0) K->rope_forward(alone, pos + t, 1, heads, hd, 10000.0f);
            else K->rope_backward(alone, pos + t, 1, heads, hd, 10000.0f);
            assert_memory_equal(alone, fast + (size_t)t * heads * hd, sizeof alone);
        }
    }
    free(x), free(fast), free(slow);

    /* SwiGLU: an element's value does not depend on its place (vector body or tail) */
    size_t m = 9003;
    float *g = randn(m, 4), *u = randn(m, 2), *r = randn(m, 1), *y = zeros(m), *ry = zeros(m);
    float *dg = zeros(m), *du = zeros(m), *rdg = zeros(m), *rdu = zeros(m);
    K->swiglu_forward(y, g, u, m);
    K->swiglu_backward(dg, du, r, g, u, m);
    aha_swiglu_forward_ref(ry, g, u, m);
    aha_swiglu_backward_ref(rdg, rdu, r, g, u, m);
    assert_close("swiglu forward (tail)", y, ry, m, 1e-6f);
    assert_close("swiglu dgate (tail)", dg, rdg, m, 1e-6f);
    assert_close("swiglu dup (tail)", du, rdu, m, 1e-6f);
    for (size_t at = 0; at + 5 <= m; at += 4097) {
        float y5[5], dg5[5] = {0}, du5[5] = {0};
        K->swiglu_forward(y5, g + at, u + at, 5);
        K->swiglu_backward(dg5, du5, r + at, g + at, u + at, 5);
        assert_memory_equal(y5, y + at, sizeof y5);
        assert_memory_equal(dg5, dg + at, sizeof dg5);
        assert_memory_equal(du5, du + at, sizeof du5);
    }
    free(g), free(u), free(r), free(y), free(ry), free(dg), free(du), free(rdg), free(rdu);
}

/* The vector log-prob kernels against the reference on a large vocabulary (with a tail),
 * at two temperatures, and a row alone equal bit for bit to the same row in a batch (the
 * sampler records its log-probs one row at a time). */
static void test_logprob_vector_path(void **state) {
    (void)state;
    enum { N = 70, V = 1003 };
    const AhaKernels *K = aha_kernels_cpu();
    float *z = randn((size_t)N * V, 8), *r = randn(N, 1);
    int targets[N];
    for (int t = 0; t < N; t++) targets[t] = t % 9 == 8 ? -1 : (t * 131) % V;
    targets[1] = V - 1; /* the target in the tail */
    float lp[N], ent[N], rlp[N], rent[N];
    float *dz = zeros((size_t)N * V), *rdz = zeros((size_t)N * V);
    for (int k = 0; k < 2; k++) {
        float temp = k ? 0.6f : 1.0f;
        K->logprob_forward(lp, ent, z, targets, N, V, temp);
        aha_logprob_forward_ref(rlp, rent, z, targets, N, V, temp);
        assert_close("logprob (vector)", lp, rlp, N, 1e-6f);
        assert_close("entropy (vector)", ent, rent, N, 1e-6f);
        K->logprob_backward(dz, r, z, targets, N, V, temp);
        aha_logprob_backward_ref(rdz, r, z, targets, N, V, temp);
        assert_close("logprob backward (vector)", dz, rdz, (size_t)N * V, 1e-6f);
        for (int t = 0; t < N; t += 13) {
            float one, one_ent;
            K->logprob_forward(&one, &one_ent, z + (size_t)t * V, targets + t, 1, V, temp);
            assert_memory_equal(&one, lp + t, sizeof one);
            assert_memory_equal(&one_ent, ent + t, sizeof one_ent);
        }
    }
    free(z), free(r), free(dz), free(rdz);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),    cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),      cmocka_unit_test(test_attention),
        cmocka_unit_test(test_swiglu),    cmocka_unit_test(test_logprob),
        cmocka_unit_test(test_rows_do_not_depend_on_the_batch),
        cmocka_unit_test(test_attention_vector_path),
        cmocka_unit_test(test_logprob_vector_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
