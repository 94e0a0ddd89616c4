/* The batch-invariant product (see rollout/matmul.h). The reference and the AVX2 kernel do
 * the same float operations per element: lane l of the accumulator sums x[8j+l]*w[8j+l]
 * with a fused multiply-add, j ascending; the lanes are summed as ((0+4)+(2+6))+((1+5)+(3+7));
 * the tail elements are added in order with fused multiply-adds; the bias last. */
#include "rollout/matmul.h"

#include <math.h>
#include <stddef.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define AHA_HAVE_AVX2 1
#endif

static inline float lanes_sum(const float lane[8]) {
    float a = lane[0] + lane[4], b = lane[2] + lane[6], c = lane[1] + lane[5], d = lane[3] + lane[7];
    return (a + b) + (c + d);
}

static inline float dot_ref(const float *x, const float *w, int k) {
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int body = k & ~7;
    for (int i = 0; i < body; i += 8)
        for (int l = 0; l < 8; l++) lane[l] = fmaf(x[i + l], w[i + l], lane[l]);
    float acc = lanes_sum(lane);
    for (int i = body; i < k; i++) acc = fmaf(x[i], w[i], acc);
    return acc;
}

void aha_matmul_forward_invariant_ref(float *out, const float *in, const float *weight,
                                      const float *bias, int n, int in_dim, int out_dim) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < out_dim; o++) {
            float acc = dot_ref(in + (size_t)t * in_dim, weight + (size_t)o * in_dim, in_dim);
            out[(size_t)t * out_dim + o] = bias ? acc + bias[o] : acc;
        }
}

#ifdef AHA_HAVE_AVX2
static inline float finish(__m256 acc, const float *x, const float *w, int body, int k) {
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    float sum = lanes_sum(lane);
    for (int i = body; i < k; i++) sum = fmaf(x[i], w[i], sum);
    return sum;
}

/* 4 rows x 3 columns of out; 12 accumulators stay in registers. */
static void block_4x3(float *out, int ldo, const float *in, const float *weight, int k) {
    const float *x0 = in, *x1 = in + k, *x2 = in + 2 * (size_t)k, *x3 = in + 3 * (size_t)k;
    const float *w0 = weight, *w1 = weight + k, *w2 = weight + 2 * (size_t)k;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    int body = k & ~7;
    for (int i = 0; i < body; i += 8) {
        __m256 b0 = _mm256_loadu_ps(w0 + i), b1 = _mm256_loadu_ps(w1 + i), b2 = _mm256_loadu_ps(w2 + i);
        __m256 a = _mm256_loadu_ps(x0 + i);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        c02 = _mm256_fmadd_ps(a, b2, c02);
        a = _mm256_loadu_ps(x1 + i);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        c12 = _mm256_fmadd_ps(a, b2, c12);
        a = _mm256_loadu_ps(x2 + i);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        c22 = _mm256_fmadd_ps(a, b2, c22);
        a = _mm256_loadu_ps(x3 + i);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        c32 = _mm256_fmadd_ps(a, b2, c32);
    }
    out[0] = finish(c00, x0, w0, body, k);
    out[1] = finish(c01, x0, w1, body, k);
    out[2] = finish(c02, x0, w2, body, k);
    out[ldo + 0] = finish(c10, x1, w0, body, k);
    out[ldo + 1] = finish(c11, x1, w1, body, k);
    out[ldo + 2] = finish(c12, x1, w2, body, k);
    out[2 * ldo + 0] = finish(c20, x2, w0, body, k);
    out[2 * ldo + 1] = finish(c21, x2, w1, body, k);
    out[2 * ldo + 2] = finish(c22, x2, w2, body, k);
    out[3 * ldo + 0] = finish(c30, x3, w0, body, k);
    out[3 * ldo + 1] = finish(c31, x3, w1, body, k);
    out[3 * ldo + 2] = finish(c32, x3, w2, body, k);
}

static inline float dot_avx2(const float *x, const float *w, int k) {
    __m256 acc = _mm256_setzero_ps();
    int body = k & ~7;
    for (int i = 0; i < body; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), acc);
    return finish(acc, x, w, body, k);
}
#endif

/* Output tiles: ROWS x COLS elements; a tile's weight rows (COLS x in_dim) stay in cache
 * while its rows stream past them. */
enum { TILE_ROWS = 64, TILE_COLS = 48 };

void aha_matmul_forward_invariant(float *out, const float *in, const float *weight,
                                  const float *bias, int n, int in_dim, int out_dim) {
#ifndef AHA_HAVE_AVX2
    aha_matmul_forward_invariant_ref(out, in, weight, bias, n, in_dim, out_dim);
#else
    if (n <= 0 || out_dim <= 0) return;
    int row_tiles = (n + TILE_ROWS - 1) / TILE_ROWS, col_tiles = (out_dim + TILE_COLS - 1) / TILE_COLS;
    const int k = in_dim;
#pragma omp parallel for collapse(2) schedule(static)
    for (int ct = 0; ct < col_tiles; ct++) {
        for (int rt = 0; rt < row_tiles; rt++) {
            int r0 = rt * TILE_ROWS, r1 = r0 + TILE_ROWS < n ? r0 + TILE_ROWS : n;
            int c0 = ct * TILE_COLS, c1 = c0 + TILE_COLS < out_dim ? c0 + TILE_COLS : out_dim;
            int r = r0;
            for (; r + 4 <= r1; r += 4) {
                int c = c0;
                for (; c + 3 <= c1; c += 3)
                    block_4x3(out + (size_t)r * out_dim + c, out_dim, in + (size_t)r * k,
                              weight + (size_t)c * k, k);
                for (; c < c1; c++)
                    for (int i = 0; i < 4; i++)
                        out[(size_t)(r + i) * out_dim + c] =
                            dot_avx2(in + (size_t)(r + i) * k, weight + (size_t)c * k, k);
            }
            for (; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    out[(size_t)r * out_dim + c] = dot_avx2(in + (size_t)r * k, weight + (size_t)c * k, k);
            if (bias)
                for (int rr = r0; rr < r1; rr++)
                    for (int c = c0; c < c1; c++) out[(size_t)rr * out_dim + c] += bias[c];
        }
    }
#endif
}
