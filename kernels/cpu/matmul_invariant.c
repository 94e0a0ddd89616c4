/* The batch-invariant product (see matmul_invariant.h). Every output element, in the
 * reference and in the AVX2 kernel alike, is acc = fma(x[i], w[i], acc) for i = 0..k-1
 * from acc = 0, then acc + bias: one vector lane of the kernel does exactly what fmaf does
 * in the reference, so the results are bit-identical. */
#include "kernels/cpu/matmul_invariant.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define AHA_HAVE_AVX2 1
#endif

void aha_matmul_forward_invariant_ref(float *out, const float *in, const float *weight,
                                      const float *bias, int n, int in_dim, int out_dim) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < out_dim; o++) {
            const float *x = in + (size_t)t * in_dim, *w = weight + (size_t)o * in_dim;
            float acc = 0.0f;
            for (int i = 0; i < in_dim; i++) acc = fmaf(x[i], w[i], acc);
            out[(size_t)t * out_dim + o] = bias ? acc + bias[o] : acc;
        }
}

#ifdef AHA_HAVE_AVX2
enum { PANEL = 16, ROWS = 6 };

/* panel[k][16] = weight rows c0..c0+15 transposed (zeros past the last column). */
static void pack_panel(float *panel, const float *weight, int k, int c0, int cols) {
    for (int i = 0; i < k; i++)
        for (int j = 0; j < PANEL; j++)
            panel[(size_t)i * PANEL + j] = j < cols ? weight[(size_t)(c0 + j) * k + i] : 0.0f;
}

static inline void store_row(float *out, __m256 lo, __m256 hi, const float *bias, int cols) {
    float tmp[PANEL];
    _mm256_storeu_ps(tmp, lo);
    _mm256_storeu_ps(tmp + 8, hi);
    for (int j = 0; j < cols; j++) out[j] = bias ? tmp[j] + bias[j] : tmp[j];
}

/* 6 rows x 16 columns: 12 accumulators (named, so that they stay in registers), 2 panel
 * loads and 6 broadcasts per input element. */
#define FMA_ROW(x, lo, hi)                                                                    \
    do {                                                                                      \
        __m256 a = _mm256_broadcast_ss((x) + i);                                              \
        lo = _mm256_fmadd_ps(a, b0, lo);                                                      \
        hi = _mm256_fmadd_ps(a, b1, hi);                                                      \
    } while (0)

static void kernel_6x16(float *out, int ldo, const float *in, int k, const float *panel,
                        const float *bias, int cols) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *x0 = in, *x1 = in + k, *x2 = in + 2 * (size_t)k, *x3 = in + 3 * (size_t)k,
                *x4 = in + 4 * (size_t)k, *x5 = in + 5 * (size_t)k;
    for (int i = 0; i < k; i++) {
        __m256 b0 = _mm256_loadu_ps(panel + (size_t)i * PANEL);
        __m256 b1 = _mm256_loadu_ps(panel + (size_t)i * PANEL + 8);
        FMA_ROW(x0, c00, c01);
        FMA_ROW(x1, c10, c11);
        FMA_ROW(x2, c20, c21);
        FMA_ROW(x3, c30, c31);
        FMA_ROW(x4, c40, c41);
        FMA_ROW(x5, c50, c51);
    }
    store_row(out, c00, c01, bias, cols);
    store_row(out + (size_t)ldo, c10, c11, bias, cols);
    store_row(out + 2 * (size_t)ldo, c20, c21, bias, cols);
    store_row(out + 3 * (size_t)ldo, c30, c31, bias, cols);
    store_row(out + 4 * (size_t)ldo, c40, c41, bias, cols);
    store_row(out + 5 * (size_t)ldo, c50, c51, bias, cols);
}
#undef FMA_ROW

/* One row x 16 columns, the same operations per element. */
static void kernel_1x16(float *out, const float *x, int k, const float *panel,
                        const float *bias, int cols) {
    __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
    for (int i = 0; i < k; i++) {
        __m256 a = _mm256_broadcast_ss(x + i);
        c0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(panel + (size_t)i * PANEL), c0);
        c1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(panel + (size_t)i * PANEL + 8), c1);
    }
    store_row(out, c0, c1, bias, cols);
}
#endif

void aha_matmul_forward_invariant(float *out, const float *in, const float *weight,
                                  const float *bias, int n, int in_dim, int out_dim) {
#ifndef AHA_HAVE_AVX2
    aha_matmul_forward_invariant_ref(out, in, weight, bias, n, in_dim, out_dim);
#else
    if (n <= 0 || out_dim <= 0) return;
    const int k = in_dim, panels = (out_dim + PANEL - 1) / PANEL;
    /* Rows are cut into blocks so that both threads have work when there are few panels;
     * a block re-packs its panel, a small cost next to 64+ rows of products. */
    const int row_block = 192, row_blocks = (n + row_block - 1) / row_block;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *panel = malloc(sizeof(float) * (size_t)k * PANEL);
        if (!panel) failed = 1;
#pragma omp for collapse(2) schedule(static)
        for (int p = 0; p < panels; p++) {
            for (int rb = 0; rb < row_blocks; rb++) {
                if (!panel) continue;
                int c0 = p * PANEL, cols = out_dim - c0 < PANEL ? out_dim - c0 : PANEL;
                int r0 = rb * row_block, r1 = r0 + row_block < n ? r0 + row_block : n;
                pack_panel(panel, weight, k, c0, cols);
                const float *b = bias ? bias + c0 : NULL;
                int r = r0;
                for (; r + ROWS <= r1; r += ROWS)
                    kernel_6x16(out + (size_t)r * out_dim + c0, out_dim, in + (size_t)r * k, k,
                                panel, b, cols);
                for (; r < r1; r++)
                    kernel_1x16(out + (size_t)r * out_dim + c0, in + (size_t)r * k, k, panel, b, cols);
            }
        }
        free(panel);
    }
    /* Without memory for a panel, the plain form gives the same numbers. */
    if (failed) aha_matmul_forward_invariant_ref(out, in, weight, bias, n, in_dim, out_dim);
#endif
}
