/* Causal GQA attention on the CPU. The training forward runs the decoder's row kernel on
 * every row, so both give the same bits. With head_dim a multiple of 8, the row kernel and
 * the backward use AVX2 (vec.h): scores four keys at a time, the exponentials as vectors,
 * and every sum over keys or queries kept in registers and written once. Other head sizes
 * take the plain loops. References: ref.c. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "vec.h"

static float dot(const float *a, const float *b, int n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* The reference row with vectorizable dot products (reassociated sums), any head_dim. */
/* out NULL: only the probabilities (the backward's recompute; the same bits). lse [heads]
 * (NULL ok) receives max + log(sum of exponentials) of each head's scores. */
static void row_forward_plain(float *out, float *probs, float *lse, const float *q,
                              const float *k, const float *v, int len, int kv_stride, int heads,
                              int kv_heads, int head_dim) {
    int group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int h = 0; h < heads; h++) {
        const float *qh = q + (size_t)h * head_dim;
        size_t kv_off = (size_t)(h / group) * head_dim;
        float *p = probs + (size_t)h * len;
        float max = -INFINITY;
        for (int j = 0; j < len; j++) {
            p[j] = dot(qh, k + (size_t)j * kv_stride + kv_off, head_dim) * scale;
            if (p[j] > max) max = p[j];
        }
        float sum = 0.0f;
        for (int j = 0; j < len; j++) {
            p[j] = expf(p[j] - max);
            sum += p[j];
        }
        if (lse) lse[h] = max + logf(sum);
        float inv = 1.0f / sum;
        if (out == NULL) {
            for (int j = 0; j < len; j++) p[j] *= inv;
            continue;
        }
        float *oh = out + (size_t)h * head_dim;
        memset(oh, 0, sizeof(float) * head_dim);
        for (int j = 0; j < len; j++) {
            p[j] *= inv;
            const float *vj = v + (size_t)j * kv_stride + kv_off;
            float pj = p[j];
#pragma omp simd
            for (int d = 0; d < head_dim; d++) oh[d] += pj * vj[d];
        }
    }
}

#ifdef AHA_VEC_AVX2
/* The horizontal sums of four 8-lane vectors, each ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)):
 * every dot product below reduces with this one tree, whichever function computes it. */
static inline __m128 sum4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    __m256 w = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    return _mm_add_ps(_mm256_castps256_ps128(w), _mm256_extractf128_ps(w, 1));
}

/* out[j] = <a, b_j> for four rows b_j = b + j*stride, n a multiple of 8 */
static inline __m128 dot4(const float *a, const float *b, size_t stride, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int d = 0; d < n; d += 8) {
        __m256 x = _mm256_loadu_ps(a + d);
        s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + d), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + stride + d), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 2 * stride + d), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 3 * stride + d), s3);
    }
    return sum4(s0, s1, s2, s3);
}

static inline float dot1(const float *a, const float *b, int n) {
    __m256 s = _mm256_setzero_ps();
    for (int d = 0; d < n; d += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), s);
    return _mm_cvtss_f32(sum4(s, s, s, s));
}

/* dst[j] = <a, b_j> * scale for j < len */
static void dots(float *dst, const float *a, const float *b, size_t stride, int len, int n,
                 float scale) {
    int j = 0;
    __m128 vs = _mm_set1_ps(scale);
    for (; j + 4 <= len; j += 4) _mm_storeu_ps(dst + j, _mm_mul_ps(dot4(a, b + j * stride, stride, n), vs));
    for (; j < len; j++) dst[j] = dot1(a, b + j * stride, n) * scale;
}

/* p[j] = exp(p[j] - max) / sum, all j < len; *lse (NULL ok) = max + log(sum) */
static void softmax_inplace(float *p, int len, float *lse) {
    /* the maximum is exact in any order; eight lanes avoid a serial chain of compares */
    __m256 m8 = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= len; j += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(p + j));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float max = _mm_cvtss_f32(m4);
    for (; j < len; j++) max = p[j] > max ? p[j] : max;
    __m256 vmax = _mm256_set1_ps(max), vsum = _mm256_setzero_ps();
    j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256 e = vec_exp(_mm256_sub_ps(_mm256_loadu_ps(p + j), vmax));
        _mm256_storeu_ps(p + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    if (j < len) {
        float tmp[8];
        int m = len - j;
        for (int i = 0; i < 8; i++) tmp[i] = i < m ? p[j + i] : max;
        __m256 e = vec_exp(_mm256_sub_ps(_mm256_loadu_ps(tmp), vmax));
        _mm256_storeu_ps(tmp, e);
        for (int i = 0; i < m; i++) p[j + i] = tmp[i];
        e = _mm256_and_ps(e, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m),
                                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = vec_hsum(vsum);
    if (lse) *lse = max + logf(sum);
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (j = 0; j + 8 <= len; j += 8) _mm256_storeu_ps(p + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), inv));
    float sinv = _mm256_cvtss_f32(inv);
    for (; j < len; j++) p[j] *= sinv;
}

/* dot4 for two query rows against the same four keys: each key row is loaded once. The
 * results are the same bits as two dot4 calls. */
static inline void dot4x2(__m128 *r0, __m128 *r1, const float *a0, const float *a1,
                          const float *b, size_t stride, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    for (int d = 0; d < n; d += 8) {
        __m256 x = _mm256_loadu_ps(a0 + d), y = _mm256_loadu_ps(a1 + d), kb;
        kb = _mm256_loadu_ps(b + d);
        s0 = _mm256_fmadd_ps(x, kb, s0);
        t0 = _mm256_fmadd_ps(y, kb, t0);
        kb = _mm256_loadu_ps(b + stride + d);
        s1 = _mm256_fmadd_ps(x, kb, s1);
        t1 = _mm256_fmadd_ps(y, kb, t1);
        kb = _mm256_loadu_ps(b + 2 * stride + d);
        s2 = _mm256_fmadd_ps(x, kb, s2);
        t2 = _mm256_fmadd_ps(y, kb, t2);
        kb = _mm256_loadu_ps(b + 3 * stride + d);
        s3 = _mm256_fmadd_ps(x, kb, s3);
        t3 = _mm256_fmadd_ps(y, kb, t3);
    }
    *r0 = sum4(s0, s1, s2, s3);
    *r1 = sum4(t0, t1, t2, t3);
}

/* dots() for two query rows at once (same results as two calls) */
static void dots2(float *dst0, float *dst1, const float *a0, const float *a1, const float *b,
                  size_t stride, int len, int n, float scale) {
    int j = 0;
    __m128 vs = _mm_set1_ps(scale);
    for (; j + 4 <= len; j += 4) {
        __m128 r0, r1;
        dot4x2(&r0, &r1, a0, a1, b + j * stride, stride, n);
        _mm_storeu_ps(dst0 + j, _mm_mul_ps(r0, vs));
        _mm_storeu_ps(dst1 + j, _mm_mul_ps(r1, vs));
    }
    for (; j < len; j++) {
        dst0[j] = dot1(a0, b + j * stride, n) * scale;
        dst1[j] = dot1(a1, b + j * stride, n) * scale;
    }
}

/* out[d] = sum_j p[j] v_j[d] for one head, or two (out1, p1 not NULL) sharing the value
 * rows: one chain per column, j in order (the same bits for one head or two). 32 columns
 * a pass, so each value row is loaded once per pass for both heads. */
static void weighted_values(float *out0, float *out1, const float *p0, const float *p1,
                            const float *v, size_t stride, int len, int head_dim) {
    int d = 0;
    for (; d + 32 <= head_dim; d += 32) {
        const float *vd = v + d;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        if (p1) {
            for (int j = 0; j < len; j++) {
                const float *vj = vd + (size_t)j * stride;
                __m256 x0 = _mm256_loadu_ps(vj), x1 = _mm256_loadu_ps(vj + 8);
                __m256 x2 = _mm256_loadu_ps(vj + 16), x3 = _mm256_loadu_ps(vj + 24);
                __m256 s = _mm256_set1_ps(p0[j]), t = _mm256_set1_ps(p1[j]);
                a0 = _mm256_fmadd_ps(s, x0, a0);
                a1 = _mm256_fmadd_ps(s, x1, a1);
                a2 = _mm256_fmadd_ps(s, x2, a2);
                a3 = _mm256_fmadd_ps(s, x3, a3);
                b0 = _mm256_fmadd_ps(t, x0, b0);
                b1 = _mm256_fmadd_ps(t, x1, b1);
                b2 = _mm256_fmadd_ps(t, x2, b2);
                b3 = _mm256_fmadd_ps(t, x3, b3);
            }
        } else {
            for (int j = 0; j < len; j++) {
                const float *vj = vd + (size_t)j * stride;
                __m256 s = _mm256_set1_ps(p0[j]);
                a0 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vj), a0);
                a1 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vj + 8), a1);
                a2 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vj + 16), a2);
                a3 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vj + 24), a3);
            }
        }
        _mm256_storeu_ps(out0 + d, a0);
        _mm256_storeu_ps(out0 + d + 8, a1);
        _mm256_storeu_ps(out0 + d + 16, a2);
        _mm256_storeu_ps(out0 + d + 24, a3);
        if (p1) {
            _mm256_storeu_ps(out1 + d, b0);
            _mm256_storeu_ps(out1 + d + 8, b1);
            _mm256_storeu_ps(out1 + d + 16, b2);
            _mm256_storeu_ps(out1 + d + 24, b3);
        }
    }
    for (; d < head_dim; d += 8) {
        __m256 a = _mm256_setzero_ps(), b = a;
        for (int j = 0; j < len; j++) {
            __m256 x = _mm256_loadu_ps(v + d + (size_t)j * stride);
            a = _mm256_fmadd_ps(_mm256_set1_ps(p0[j]), x, a);
            if (p1) b = _mm256_fmadd_ps(_mm256_set1_ps(p1[j]), x, b);
        }
        _mm256_storeu_ps(out0 + d, a);
        if (p1) _mm256_storeu_ps(out1 + d, b);
    }
}

/* Query heads of one KV group go two at a time, so each key and value row is loaded once
 * for both; every head's numbers are the same as when computed alone. */
static void row_forward_avx2(float *out, float *probs, float *lse, const float *q,
                             const float *k, const float *v, int len, int kv_stride, int heads,
                             int kv_heads, int head_dim) {
    int group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int h = 0; h < heads;) {
        size_t kv_off = (size_t)(h / group) * head_dim;
        int pair = h + 1 < heads && (h + 1) / group == h / group;
        float *p0 = probs + (size_t)h * len, *p1 = pair ? p0 + len : NULL;
        float *o0 = out ? out + (size_t)h * head_dim : NULL, *o1 = out && pair ? o0 + head_dim : NULL;
        const float *q0 = q + (size_t)h * head_dim;
        float *l0 = lse ? lse + h : NULL, *l1 = lse ? lse + h + 1 : NULL;
        if (pair) {
            dots2(p0, p1, q0, q0 + head_dim, k + kv_off, (size_t)kv_stride, len, head_dim, scale);
            softmax_inplace(p0, len, l0);
            softmax_inplace(p1, len, l1);
        } else {
            dots(p0, q0, k + kv_off, (size_t)kv_stride, len, head_dim, scale);
            softmax_inplace(p0, len, l0);
        }
        if (out) weighted_values(o0, o1, p0, p1, v + kv_off, (size_t)kv_stride, len, head_dim);
        h += pair ? 2 : 1;
    }
}
#endif

void aha_cpu_attention_row(float *out, float *probs, float *lse, const float *q, const float *k,
                           const float *v, int len, int kv_stride, int heads, int kv_heads,
                           int head_dim) {
#ifdef AHA_VEC_AVX2
    if (head_dim % 8 == 0) {
        row_forward_avx2(out, probs, lse, q, k, v, len, kv_stride, heads, kv_heads, head_dim);
        return;
    }
#endif
    row_forward_plain(out, probs, lse, q, k, v, len, kv_stride, heads, kv_heads, head_dim);
}

void aha_cpu_attention_row_forward(float *out, float *probs, const float *q, const float *k,
                                   const float *v, int len, int kv_stride, int heads,
                                   int kv_heads, int head_dim) {
    aha_cpu_attention_row(out, probs, NULL, q, k, v, len, kv_stride, heads, kv_heads, head_dim);
}

/* Plain backward of one (sequence, KV head): any head_dim. dp is [len] scratch. ps holds
 * row i of the probabilities at p_heads*i*(i+1)/2, head h at (h - p_h0)*(i+1) within it
 * (every head of the sequence, or only this KV head's group). */
static void backward_plain(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *ps, int p_heads,
                           int p_h0, int start, int len, int kh, int heads, int kv_heads,
                           int head_dim, float *dp) {
    int qd = heads * head_dim, kvd = kv_heads * head_dim, group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    size_t kv_off = (size_t)kh * head_dim;
    for (int i = 0; i < len; i++) {
        size_t t = (size_t)(start + i);
        for (int h = kh * group; h < (kh + 1) * group; h++) {
            const float *p = ps + (size_t)p_heads * i * (i + 1) / 2 + (size_t)(h - p_h0) * (i + 1);
            const float *dy = dout + t * qd + (size_t)h * head_dim;
            const float *qh = q + t * qd + (size_t)h * head_dim;
            float *dqh = dq ? dq + t * qd + (size_t)h * head_dim : NULL;
            float rowdot = 0.0f;
            for (int j = 0; j <= i; j++) {
                dp[j] = dot(dy, v + (size_t)(start + j) * kvd + kv_off, head_dim);
                rowdot += p[j] * dp[j];
            }
            for (int j = 0; j <= i; j++) {
                size_t row_j = (size_t)(start + j) * kvd + kv_off;
                const float *kj = k + row_j;
                float ds = p[j] * (dp[j] - rowdot) * scale, pj = p[j];
                if (dqh) {
#pragma omp simd
                    for (int d = 0; d < head_dim; d++) dqh[d] += ds * kj[d];
                }
                if (dk) {
                    float *dkj = dk + row_j;
#pragma omp simd
                    for (int d = 0; d < head_dim; d++) dkj[d] += ds * qh[d];
                }
                if (dv) {
                    float *dvj = dv + row_j;
#pragma omp simd
                    for (int d = 0; d < head_dim; d++) dvj[d] += pj * dy[d];
                }
            }
        }
    }
}

#ifdef AHA_VEC_AVX2
/* The AVX2 backward of one (sequence, KV head), head_dim a multiple of 8. Per query head,
 * first row by row: dS[i][j] = P (dP - rowdot) scale into a triangle (row i at i(i+1)/2)
 * and dq_i += sum_j dS[i][j] k_j; then key by key: dk_j += sum_i dS[i][j] q_i and
 * dv_j += sum_i P[i][j] dy_i. Every sum stays in registers; the first phase takes the
 * group's query heads two at a time so that each key and value row is loaded once. */
typedef struct {
    const float *kb, *vb;   /* this KV head's key/value rows of the sequence, stride kvd */
    const float *ps;        /* the sequence's probabilities */
    size_t qd, kvd;
    int len, heads, head_dim;
    int p_heads, p_h0;      /* ps layout: see backward_plain */
    float scale;
} BackTask;

#define P_AT(t, h, i, j) ((t)->ps[(size_t)(t)->p_heads * (i) * ((i) + 1) / 2 + (size_t)((h) - (t)->p_h0) * ((i) + 1) + (j)])

/* dq rows (qd stride) += ds rows [len] @ key rows, for one or two heads (dq1 may be NULL) */
static void dq_rows(const BackTask *t, float *dq0, float *dq1, const float *ds0, const float *ds1,
                    int n) {
    int d = 0;
    for (; d + 32 <= t->head_dim; d += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int j = 0; j < n; j++) {
            const float *kj = t->kb + (size_t)j * t->kvd + d;
            __m256 x0 = _mm256_loadu_ps(kj), x1 = _mm256_loadu_ps(kj + 8);
            __m256 x2 = _mm256_loadu_ps(kj + 16), x3 = _mm256_loadu_ps(kj + 24);
            __m256 s = _mm256_set1_ps(ds0[j]);
            a0 = _mm256_fmadd_ps(s, x0, a0);
            a1 = _mm256_fmadd_ps(s, x1, a1);
            a2 = _mm256_fmadd_ps(s, x2, a2);
            a3 = _mm256_fmadd_ps(s, x3, a3);
            if (dq1) {
                s = _mm256_set1_ps(ds1[j]);
                b0 = _mm256_fmadd_ps(s, x0, b0);
                b1 = _mm256_fmadd_ps(s, x1, b1);
                b2 = _mm256_fmadd_ps(s, x2, b2);
                b3 = _mm256_fmadd_ps(s, x3, b3);
            }
        }
#define ADD4(dst, x0, x1, x2, x3)                                                          \
    do {                                                                                   \
        _mm256_storeu_ps((dst) + d, _mm256_add_ps(_mm256_loadu_ps((dst) + d), x0));        \
        _mm256_storeu_ps((dst) + d + 8, _mm256_add_ps(_mm256_loadu_ps((dst) + d + 8), x1)); \
        _mm256_storeu_ps((dst) + d + 16, _mm256_add_ps(_mm256_loadu_ps((dst) + d + 16), x2)); \
        _mm256_storeu_ps((dst) + d + 24, _mm256_add_ps(_mm256_loadu_ps((dst) + d + 24), x3)); \
    } while (0)
        ADD4(dq0, a0, a1, a2, a3);
        if (dq1) ADD4(dq1, b0, b1, b2, b3);
#undef ADD4
    }
    for (; d < t->head_dim; d += 8) {
        __m256 a = _mm256_setzero_ps(), b = a;
        for (int j = 0; j < n; j++) {
            __m256 x = _mm256_loadu_ps(t->kb + (size_t)j * t->kvd + d);
            a = _mm256_fmadd_ps(_mm256_set1_ps(ds0[j]), x, a);
            if (dq1) b = _mm256_fmadd_ps(_mm256_set1_ps(ds1[j]), x, b);
        }
        _mm256_storeu_ps(dq0 + d, _mm256_add_ps(_mm256_loadu_ps(dq0 + d), a));
        if (dq1) _mm256_storeu_ps(dq1 + d, _mm256_add_ps(_mm256_loadu_ps(dq1 + d), b));
    }
}

/* dS = P (dP - rowdot) scale in place over dP[0..n) */
static void ds_row(float *dsi, const float *p, int n, float scale) {
    float rowdot = 0.0f;
    for (int j = 0; j < n; j++) rowdot += p[j] * dsi[j];
    for (int j = 0; j < n; j++) dsi[j] = p[j] * (dsi[j] - rowdot) * scale;
}

/* First phase for query head h0 (and h1 if >= 0): triangles ds0 (and ds1), dq. */
static void back_rows(const BackTask *t, int h0, int h1, const float *dout, float *dq,
                      float *ds0, float *ds1) {
    for (int i = 0; i < t->len; i++) {
        float *a = ds0 + (size_t)i * (i + 1) / 2, *b = ds1 + (size_t)i * (i + 1) / 2;
        const float *dy0 = dout + (size_t)i * t->qd + (size_t)h0 * t->head_dim;
        if (h1 >= 0) {
            dots2(a, b, dy0, dy0 + (size_t)(h1 - h0) * t->head_dim, t->vb, t->kvd, i + 1,
                  t->head_dim, 1.0f);
            ds_row(b, &P_AT(t, h1, i, 0), i + 1, t->scale);
        } else {
            dots(a, dy0, t->vb, t->kvd, i + 1, t->head_dim, 1.0f);
        }
        ds_row(a, &P_AT(t, h0, i, 0), i + 1, t->scale);
        if (dq) {
            float *dq0 = dq + (size_t)i * t->qd + (size_t)h0 * t->head_dim;
            dq_rows(t, dq0, h1 >= 0 ? dq0 + (size_t)(h1 - h0) * t->head_dim : NULL, a, b, i + 1);
        }
    }
}

/* Second phase for query head h: dk, dv rows of the sequence (kvd stride) accumulate. */
static void back_keys(const BackTask *t, int h, const float *q, const float *dout, float *dk,
                      float *dv, const float *ds) {
    const float *qb = q + (size_t)h * t->head_dim, *dyb = dout + (size_t)h * t->head_dim;
    for (int j = 0; j < t->len; j++) {
        size_t at = (size_t)j * t->kvd;
        int d = 0;
        /* 32 columns at a time: eight accumulators, one broadcast of dS and P per row */
        for (; d + 32 <= t->head_dim; d += 32) {
            __m256 k0 = _mm256_setzero_ps(), k1 = k0, k2 = k0, k3 = k0;
            __m256 v0 = k0, v1 = k0, v2 = k0, v3 = k0;
            /* dS[i][j] and P[i][j] by offsets that grow with i, not recomputed products */
            size_t at_ds = (size_t)j * (j + 1) / 2 + j;
            size_t hl = (size_t)(h - t->p_h0);
            size_t at_p = (size_t)t->p_heads * j * (j + 1) / 2 + hl * (j + 1) + j;
            for (int i = j; i < t->len; i++) {
                __m256 bs = _mm256_set1_ps(ds[at_ds]);
                __m256 bp = _mm256_set1_ps(t->ps[at_p]);
                at_ds += (size_t)i + 1;
                at_p += (size_t)t->p_heads * (i + 1) + hl;
                const float *qi = qb + (size_t)i * t->qd + d, *dyi = dyb + (size_t)i * t->qd + d;
                k0 = _mm256_fmadd_ps(bs, _mm256_loadu_ps(qi), k0);
                k1 = _mm256_fmadd_ps(bs, _mm256_loadu_ps(qi + 8), k1);
                k2 = _mm256_fmadd_ps(bs, _mm256_loadu_ps(qi + 16), k2);
                k3 = _mm256_fmadd_ps(bs, _mm256_loadu_ps(qi + 24), k3);
                v0 = _mm256_fmadd_ps(bp, _mm256_loadu_ps(dyi), v0);
                v1 = _mm256_fmadd_ps(bp, _mm256_loadu_ps(dyi + 8), v1);
                v2 = _mm256_fmadd_ps(bp, _mm256_loadu_ps(dyi + 16), v2);
                v3 = _mm256_fmadd_ps(bp, _mm256_loadu_ps(dyi + 24), v3);
            }
#define ADD_TO(dst, off, x) _mm256_storeu_ps((dst) + at + d + (off), _mm256_add_ps(_mm256_loadu_ps((dst) + at + d + (off)), x))
            if (dk) {
                ADD_TO(dk, 0, k0);
                ADD_TO(dk, 8, k1);
                ADD_TO(dk, 16, k2);
                ADD_TO(dk, 24, k3);
            }
            if (dv) {
                ADD_TO(dv, 0, v0);
                ADD_TO(dv, 8, v1);
                ADD_TO(dv, 16, v2);
                ADD_TO(dv, 24, v3);
            }
        }
        for (; d < t->head_dim; d += 8) {
            __m256 ak = _mm256_setzero_ps(), av = ak;
            for (int i = j; i < t->len; i++) {
                ak = _mm256_fmadd_ps(_mm256_set1_ps(ds[(size_t)i * (i + 1) / 2 + j]),
                                     _mm256_loadu_ps(qb + (size_t)i * t->qd + d), ak);
                av = _mm256_fmadd_ps(_mm256_set1_ps(P_AT(t, h, i, j)),
                                     _mm256_loadu_ps(dyb + (size_t)i * t->qd + d), av);
            }
            if (dk) ADD_TO(dk, 0, ak);
            if (dv) ADD_TO(dv, 0, av);
#undef ADD_TO
        }
    }
}
#undef P_AT

/* ds: scratch of two triangles of len(len+1)/2 floats */
static void backward_avx2(float *dq, float *dk, float *dv, const float *dout, const float *q,
                          const float *k, const float *v, const float *ps, int p_heads,
                          int p_h0, int start, int len, int kh, int heads, int kv_heads,
                          int head_dim, float *ds) {
    BackTask t = {.ps = ps, .qd = (size_t)heads * head_dim, .kvd = (size_t)kv_heads * head_dim,
                  .len = len, .heads = heads, .head_dim = head_dim, .p_heads = p_heads,
                  .p_h0 = p_h0,
                  .scale = 1.0f / sqrtf((float)head_dim)};
    t.kb = k + (size_t)start * t.kvd + (size_t)kh * head_dim;
    t.vb = v + (size_t)start * t.kvd + (size_t)kh * head_dim;
    size_t tri = (size_t)len * (len + 1) / 2, kv_at = (size_t)start * t.kvd + (size_t)kh * head_dim;
    const float *qs = q + (size_t)start * t.qd, *dys = dout + (size_t)start * t.qd;
    float *dqs = dq ? dq + (size_t)start * t.qd : NULL;
    int group = heads / kv_heads;
    for (int h = kh * group; h < (kh + 1) * group;) {
        int pair = h + 1 < (kh + 1) * group;
        back_rows(&t, h, pair ? h + 1 : -1, dys, dqs, ds, ds + tri);
        if (dk || dv) {
            back_keys(&t, h, qs, dys, dk ? dk + kv_at : NULL, dv ? dv + kv_at : NULL, ds);
            if (pair) back_keys(&t, h + 1, qs, dys, dk ? dk + kv_at : NULL, dv ? dv + kv_at : NULL, ds + tri);
        }
        h += pair ? 2 : 1;
    }
}
#endif

/* ---- the backend's attention: no probability matrix kept ------------------------------ */

/* Every row runs the decoder's row kernel (so training and decoding agree bit for bit),
 * with a per-thread softmax buffer; lse[t, h] keeps each head's log-sum-exp. */
void aha_cpu_attention_forward_lse(AhaBackend *be, float *out, float *lse, const float *q,
                                   const float *k, const float *v, const AhaSeqs *seqs,
                                   int heads, int kv_heads, int head_dim) {
    int qd = heads * head_dim, kvd = kv_heads * head_dim, n_seqs = seqs->n_seqs;
    const int *seq_start = seqs->seq_start;
    int threaded = seqs->n_rows >= 64 && !omp_in_parallel();
    int threads = threaded ? omp_get_max_threads() : 1;
    size_t per = (size_t)heads * (seqs->max_len > 0 ? seqs->max_len : 1);
    float *bufs = malloc(sizeof(float) * per * (size_t)threads);
    if (bufs == NULL) {
        aha_backend_fail(be, "attention: no memory for %d softmax buffers of %zu floats", threads, per);
        return;
    }
#pragma omp parallel num_threads(threads) if (threaded)
    {
        float *probs = bufs + per * (size_t)omp_get_thread_num();
        for (int s = 0; s < n_seqs; s++) {
            int start = seq_start[s], len = seq_start[s + 1] - start;
#pragma omp for schedule(dynamic, 8) nowait
            for (int i = 0; i < len; i++) {
                size_t t = (size_t)(start + i);
                aha_cpu_attention_row(out + t * qd, probs, lse ? lse + t * heads : NULL, q + t * qd,
                                      k + (size_t)start * kvd, v + (size_t)start * kvd, i + 1, kvd,
                                      heads, kv_heads, head_dim);
            }
        }
    }
    free(bufs);
}

/* One task per (sequence, KV head): the query heads of a group write only their own dq rows
 * and that KV head's dk/dv, so tasks never share an output. The task first recomputes its
 * group's probabilities with the forward's own row code (the same bits the forward had),
 * then runs the backward above on them. out and lse are not needed. */
void aha_cpu_attention_backward_recompute(AhaBackend *be, float *dq, float *dk, float *dv,
                                          const float *dout, const float *q, const float *k,
                                          const float *v, const AhaSeqs *seqs, int heads,
                                          int kv_heads, int head_dim) {
    int n_seqs = seqs->n_seqs, group = heads / kv_heads, max_len = seqs->max_len;
    int qd = heads * head_dim, kvd = kv_heads * head_dim;
    const int *seq_start = seqs->seq_start;
    int fast = 0;
#ifdef AHA_VEC_AVX2
    fast = head_dim % 8 == 0;
#endif
    size_t tri = (size_t)max_len * (max_len + 1) / 2;
    size_t p_size = (size_t)group * tri;
    size_t work = fast ? 2 * tri : (size_t)max_len; /* dS triangles, or one dP row */
    size_t per = p_size + work + 1;
    int tasks = n_seqs * kv_heads;
    int threaded = tasks > 1 && seqs->n_rows >= 64 && !omp_in_parallel();
    int threads = threaded ? omp_get_max_threads() : 1;
    float *bufs = malloc(sizeof(float) * per * (size_t)threads);
    if (bufs == NULL) {
        aha_backend_fail(be, "attention backward: no memory for %d buffers of %zu floats", threads, per);
        return;
    }
#pragma omp parallel num_threads(threads) if (threaded)
    {
        float *ps = bufs + per * (size_t)omp_get_thread_num(), *scratch = ps + p_size;
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < tasks; task++) {
            int s = task / kv_heads, kh = task % kv_heads;
            int start = seq_start[s], len = seq_start[s + 1] - start;
            const float *kb = k + (size_t)start * kvd + (size_t)kh * head_dim;
            for (int i = 0; i < len; i++)
                aha_cpu_attention_row(NULL, ps + (size_t)group * i * (i + 1) / 2, NULL,
                                      q + (size_t)(start + i) * qd + (size_t)kh * group * head_dim,
                                      kb, NULL, i + 1, kvd, group, 1, head_dim);
#ifdef AHA_VEC_AVX2
            if (fast) {
                backward_avx2(dq, dk, dv, dout, q, k, v, ps, group, kh * group, start, len, kh,
                              heads, kv_heads, head_dim, scratch);
                continue;
            }
#endif
            backward_plain(dq, dk, dv, dout, q, k, v, ps, group, kh * group, start, len, kh, heads,
                           kv_heads, head_dim, scratch);
        }
    }
    free(bufs);
}
