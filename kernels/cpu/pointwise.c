/* The row-wise and element-wise CPU kernels: RMSNorm, RoPE, SwiGLU, vectorized with AVX2
 * (vec.h). Each row is computed by one function whether the rows are split across threads
 * or not, so a row's result never depends on the batch it came in (the KV-cache decoder and
 * the training forward agree bit for bit). The references are in ref.c. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "vec.h"

/* Rows per thread below which a kernel stays on one thread (a fork costs more). */
enum { ROWS_PER_THREAD = 64 };

static int worth_threads(size_t work) { return work >= 2 * ROWS_PER_THREAD * 128; }

/* ---- RMSNorm */

static float sum_squares(const float *x, int dim) {
    int i = 0;
    float s = 0.0f;
#ifdef AHA_VEC_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= dim; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    s = vec_hsum(acc);
#endif
    for (; i < dim; i++) s += x[i] * x[i];
    return s;
}

static void rmsnorm_row(float *y, float *rstd, const float *x, const float *w, int dim, float eps) {
    float r = 1.0f / sqrtf(sum_squares(x, dim) / dim + eps);
    int i = 0;
#ifdef AHA_VEC_AVX2
    __m256 vr = _mm256_set1_ps(r);
    for (; i + 8 <= dim; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vr),
                                              _mm256_loadu_ps(w + i)));
#endif
    for (; i < dim; i++) y[i] = x[i] * r * w[i];
    if (rstd) *rstd = r;
}

void aha_cpu_rmsnorm_forward(float *out, float *rstd, const float *in, const float *weight, int n,
                             int dim, float eps) {
#pragma omp parallel for schedule(static) if (worth_threads((size_t)n * dim))
    for (int t = 0; t < n; t++)
        rmsnorm_row(out + (size_t)t * dim, rstd ? rstd + t : NULL, in + (size_t)t * dim, weight,
                    dim, eps);
}

/* din += r w dy - (r^3/dim) sum(w dy x) x;  dweight += r dy x (dweight may be NULL) */
static void rmsnorm_backward_row(float *din, float *dweight, const float *dy, const float *x,
                                 const float *w, float r, int dim) {
    int i = 0;
    float dot = 0.0f;
#ifdef AHA_VEC_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= dim; i += 8)
        acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(w + i)),
                              _mm256_loadu_ps(x + i), acc);
    dot = vec_hsum(acc);
#endif
    for (; i < dim; i++) dot += dy[i] * w[i] * x[i];
    float c = dot * r * r * r / dim;
    i = 0;
#ifdef AHA_VEC_AVX2
    __m256 vr = _mm256_set1_ps(r), vc = _mm256_set1_ps(c);
    for (; i + 8 <= dim; i += 8) {
        __m256 vdy = _mm256_loadu_ps(dy + i), vx = _mm256_loadu_ps(x + i);
        if (din) {
            __m256 g = _mm256_mul_ps(_mm256_mul_ps(vr, _mm256_loadu_ps(w + i)), vdy);
            g = _mm256_fnmadd_ps(vc, vx, g);
            _mm256_storeu_ps(din + i, _mm256_add_ps(_mm256_loadu_ps(din + i), g));
        }
        if (dweight)
            _mm256_storeu_ps(dweight + i, _mm256_fmadd_ps(_mm256_mul_ps(vdy, vx), vr,
                                                          _mm256_loadu_ps(dweight + i)));
    }
#endif
    for (; i < dim; i++) {
        if (din) din[i] += r * w[i] * dy[i] - c * x[i];
        if (dweight) dweight[i] += dy[i] * x[i] * r;
    }
}

void aha_cpu_rmsnorm_backward(float *din, float *dweight, const float *dout, const float *in,
                              const float *weight, const float *rstd, int n, int dim) {
    if (!worth_threads((size_t)n * dim) || omp_in_parallel()) {
        for (int t = 0; t < n; t++) /* one pass: din and dweight together */
            rmsnorm_backward_row(din ? din + (size_t)t * dim : NULL, dweight, dout + (size_t)t * dim,
                                 in + (size_t)t * dim, weight, rstd[t], dim);
        return;
    }
    /* din rows are independent; dweight sums over rows, so it stays serial (in row order) */
    if (din) {
#pragma omp parallel for schedule(static)
        for (int t = 0; t < n; t++)
            rmsnorm_backward_row(din + (size_t)t * dim, NULL, dout + (size_t)t * dim,
                                 in + (size_t)t * dim, weight, rstd[t], dim);
    }
    if (dweight)
        for (int t = 0; t < n; t++) {
            const float *dy = dout + (size_t)t * dim, *x = in + (size_t)t * dim;
            float r = rstd[t];
            int i = 0;
#ifdef AHA_VEC_AVX2
            __m256 vr = _mm256_set1_ps(r);
            for (; i + 8 <= dim; i += 8)
                _mm256_storeu_ps(dweight + i,
                                 _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i),
                                                               _mm256_loadu_ps(x + i)),
                                                 vr, _mm256_loadu_ps(dweight + i)));
#endif
            for (; i < dim; i++) dweight[i] += dy[i] * x[i] * r;
        }
}

/* ---- RoPE */

/* cos and sin of pos * inv_freq[i] for i < half, computed as the reference does (float
 * angle, cosf, sinf), so a position's table is the same whichever rows come with it. */
static void rope_angles(float *cs, float *sn, int pos, const float *inv_freq, int half) {
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        cs[i] = cosf(angle);
        sn[i] = sinf(angle);
    }
}

static void rope_row(float *x, const float *cs, const float *sn, int heads, int head_dim,
                     float direction) {
    int half = head_dim / 2;
    for (int h = 0; h < heads; h++) {
        float *a = x + (size_t)h * head_dim, *b = a + half;
        int i = 0;
#ifdef AHA_VEC_AVX2
        __m256 dir = _mm256_set1_ps(direction);
        for (; i + 8 <= half; i += 8) {
            __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);
            __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_mul_ps(dir, _mm256_loadu_ps(sn + i));
            _mm256_storeu_ps(a + i, _mm256_sub_ps(_mm256_mul_ps(va, c), _mm256_mul_ps(vb, s)));
            _mm256_storeu_ps(b + i, _mm256_add_ps(_mm256_mul_ps(vb, c), _mm256_mul_ps(va, s)));
        }
#endif
        for (; i < half; i++) {
            float va = a[i], vb = b[i], c = cs[i], s = direction * sn[i];
            a[i] = va * c - vb * s;
            b[i] = vb * c + va * s;
        }
    }
}

/* With many rows the angles come from a table over positions 0..max (training batches
 * repeat the same few positions); otherwise each row computes its own. */
static void rope(float *x, const int *pos, int n, int heads, int head_dim, float theta,
                 float direction) {
    int half = head_dim / 2, max_pos = 0;
    if (n <= 0 || half <= 0) return;
    for (int t = 0; t < n; t++) max_pos = pos[t] > max_pos ? pos[t] : max_pos;
    float *inv_freq = malloc(sizeof(float) * (size_t)half);
    size_t table_rows = (size_t)max_pos + 1 <= (size_t)n ? (size_t)max_pos + 1 : 0;
    float *table = malloc(sizeof(float) * 2 * (size_t)half * (table_rows ? table_rows : 1));
    if (inv_freq == NULL || table == NULL) { /* no memory for tables: the reference's way */
        free(inv_freq);
        free(table);
        if (direction > 0) aha_rope_forward_ref(x, pos, n, heads, head_dim, theta);
        else aha_rope_backward_ref(x, pos, n, heads, head_dim, theta);
        return;
    }
    for (int i = 0; i < half; i++) inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
    for (size_t p = 0; p < table_rows; p++)
        rope_angles(table + 2 * p * half, table + (2 * p + 1) * half, (int)p, inv_freq, half);
    int threaded = worth_threads((size_t)n * heads * head_dim);
#pragma omp parallel if (threaded)
    {
        float *own = table_rows ? NULL : malloc(sizeof(float) * 2 * (size_t)half);
#pragma omp for schedule(static)
        for (int t = 0; t < n; t++) {
            const float *cs, *sn;
            if (table_rows) {
                cs = table + 2 * (size_t)pos[t] * half;
                sn = cs + half;
            } else if (own) {
                rope_angles(own, own + half, pos[t], inv_freq, half);
                cs = own;
                sn = own + half;
            } else {
                float *row = x + (size_t)t * heads * head_dim;
                if (direction > 0) aha_rope_forward_ref(row, pos + t, 1, heads, head_dim, theta);
                else aha_rope_backward_ref(row, pos + t, 1, heads, head_dim, theta);
                continue;
            }
            rope_row(x + (size_t)t * heads * head_dim, cs, sn, heads, head_dim, direction);
        }
        free(own);
    }
    free(inv_freq);
    free(table);
}

void aha_cpu_rope_forward(float *x, const int *pos, int n, int heads, int head_dim, float theta) {
    rope(x, pos, n, heads, head_dim, theta, 1.0f);
}

void aha_cpu_rope_backward(float *dx, const int *pos, int n, int heads, int head_dim, float theta) {
    rope(dx, pos, n, heads, head_dim, theta, -1.0f);
}

/* ---- SwiGLU: the last partial vector goes through the same vector code (zero padded), so
 * an element's value does not depend on where it falls in the array. */

#ifdef AHA_VEC_AVX2
static inline __m256 load_tail(const float *x, size_t n) {
    float tmp[8] = {0};
    memcpy(tmp, x, n * sizeof(float));
    return _mm256_loadu_ps(tmp);
}

static inline void store_tail(float *x, __m256 v, size_t n) {
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(x, tmp, n * sizeof(float));
}
#endif

static void swiglu_forward_block(float *out, const float *gate, const float *up, size_t n) {
#ifdef AHA_VEC_AVX2
    for (size_t i = 0; i < n; i += 8) {
        size_t m = n - i < 8 ? n - i : 8;
        __m256 g = m == 8 ? _mm256_loadu_ps(gate + i) : load_tail(gate + i, m);
        __m256 u = m == 8 ? _mm256_loadu_ps(up + i) : load_tail(up + i, m);
        __m256 y = _mm256_mul_ps(_mm256_mul_ps(g, vec_sigmoid(g)), u);
        if (m == 8) _mm256_storeu_ps(out + i, y);
        else store_tail(out + i, y, m);
    }
#else
    aha_swiglu_forward_ref(out, gate, up, n);
#endif
}

static void swiglu_backward_block(float *dgate, float *dup, const float *dout, const float *gate,
                                  const float *up, size_t n) {
#ifdef AHA_VEC_AVX2
    __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        size_t m = n - i < 8 ? n - i : 8;
#define LOAD(p) (m == 8 ? _mm256_loadu_ps((p) + i) : load_tail((p) + i, m))
        __m256 g = LOAD(gate), u = LOAD(up), dy = LOAD(dout), s = vec_sigmoid(g);
        if (dgate) {
            /* d/dg [g s(g)] = s (1 + g (1 - s)) */
            __m256 d = _mm256_mul_ps(s, _mm256_fmadd_ps(g, _mm256_sub_ps(one, s), one));
            __m256 r = _mm256_fmadd_ps(_mm256_mul_ps(dy, u), d, LOAD(dgate));
            if (m == 8) _mm256_storeu_ps(dgate + i, r);
            else store_tail(dgate + i, r, m);
        }
        if (dup) {
            __m256 r = _mm256_fmadd_ps(_mm256_mul_ps(dy, g), s, LOAD(dup));
            if (m == 8) _mm256_storeu_ps(dup + i, r);
            else store_tail(dup + i, r, m);
        }
#undef LOAD
    }
#else
    aha_swiglu_backward_ref(dgate, dup, dout, gate, up, n);
#endif
}

enum { SWIGLU_BLOCK = 4096 };

void aha_cpu_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    size_t nblocks = (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK;
#pragma omp parallel for schedule(static) if (nblocks > 4)
    for (size_t b = 0; b < nblocks; b++) {
        size_t lo = b * SWIGLU_BLOCK, cnt = n - lo < SWIGLU_BLOCK ? n - lo : SWIGLU_BLOCK;
        swiglu_forward_block(out + lo, gate + lo, up + lo, cnt);
    }
}

void aha_cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, size_t n) {
    size_t nblocks = (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK;
#pragma omp parallel for schedule(static) if (nblocks > 4)
    for (size_t b = 0; b < nblocks; b++) {
        size_t lo = b * SWIGLU_BLOCK, cnt = n - lo < SWIGLU_BLOCK ? n - lo : SWIGLU_BLOCK;
        swiglu_backward_block(dgate ? dgate + lo : NULL, dup ? dup + lo : NULL, dout + lo,
                              gate + lo, up + lo, cnt);
    }
}
