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
static void row_forward_plain(float *out, float *probs, const float *q, const float *k,
                              const float *v, int len, int kv_stride, int heads, int kv_heads,
                              int head_dim) {
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
        float inv = 1.0f / sum, *oh = out + (size_t)h * head_dim;
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
#define HALVES(s) _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1))
    __m128 t01 = _mm_hadd_ps(HALVES(s0), HALVES(s1)), t23 = _mm_hadd_ps(HALVES(s2), HALVES(s3));
#undef HALVES
    return _mm_hadd_ps(t01, t23);
}

static inline float dot1(const float *a, const float *b, int n) {
    __m256 s = _mm256_setzero_ps();
    for (int d = 0; d < n; d += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), s);
    return vec_hsum(s);
}

/* dst[j] = <a, b_j> * scale for j < len */
static void dots(float *dst, const float *a, const float *b, size_t stride, int len, int n,
                 float scale) {
    int j = 0;
    __m128 vs = _mm_set1_ps(scale);
    for (; j + 4 <= len; j += 4) _mm_storeu_ps(dst + j, _mm_mul_ps(dot4(a, b + j * stride, stride, n), vs));
    for (; j < len; j++) dst[j] = dot1(a, b + j * stride, n) * scale;
}

/* p[j] = exp(p[j] - max) / sum, all j < len */
static void softmax_inplace(float *p, int len) {
    float max = -INFINITY;
    for (int j = 0; j < len; j++) max = p[j] > max ? p[j] : max;
    __m256 vmax = _mm256_set1_ps(max), vsum = _mm256_setzero_ps();
    int j = 0;
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
    __m256 inv = _mm256_set1_ps(1.0f / vec_hsum(vsum));
    for (j = 0; j + 8 <= len; j += 8) _mm256_storeu_ps(p + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), inv));
    float sinv = _mm256_cvtss_f32(inv);
    for (; j < len; j++) p[j] *= sinv;
}

static void row_forward_avx2(float *out, float *probs, const float *q, const float *k,
                             const float *v, int len, int kv_stride, int heads, int kv_heads,
                             int head_dim) {
    int group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int h = 0; h < heads; h++) {
        size_t kv_off = (size_t)(h / group) * head_dim;
        float *p = probs + (size_t)h * len, *oh = out + (size_t)h * head_dim;
        dots(p, q + (size_t)h * head_dim, k + kv_off, (size_t)kv_stride, len, head_dim, scale);
        softmax_inplace(p, len);
        for (int d = 0; d < head_dim; d += 8) {
            const float *vd = v + kv_off + d;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            int j = 0;
            for (; j + 2 <= len; j += 2) {
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(vd + (size_t)j * kv_stride), a0);
                a1 = _mm256_fmadd_ps(_mm256_set1_ps(p[j + 1]),
                                     _mm256_loadu_ps(vd + (size_t)(j + 1) * kv_stride), a1);
            }
            if (j < len)
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(vd + (size_t)j * kv_stride), a0);
            _mm256_storeu_ps(oh + d, _mm256_add_ps(a0, a1));
        }
    }
}
#endif

void aha_cpu_attention_row_forward(float *out, float *probs, const float *q, const float *k,
                                   const float *v, int len, int kv_stride, int heads,
                                   int kv_heads, int head_dim) {
#ifdef AHA_VEC_AVX2
    if (head_dim % 8 == 0) {
        row_forward_avx2(out, probs, q, k, v, len, kv_stride, heads, kv_heads, head_dim);
        return;
    }
#endif
    row_forward_plain(out, probs, q, k, v, len, kv_stride, heads, kv_heads, head_dim);
}

void aha_cpu_attention_forward(float *out, float *probs, const float *q, const float *k,
                               const float *v, const int *seq_start, int n_seqs, int heads,
                               int kv_heads, int head_dim) {
    int qd = heads * head_dim, kvd = kv_heads * head_dim;
    /* one parallel region; the rows of each sequence are shared out without a barrier */
#pragma omp parallel if (seq_start[n_seqs] >= 64 && !omp_in_parallel())
    for (int s = 0; s < n_seqs; s++) {
        int start = seq_start[s], len = seq_start[s + 1] - start;
        float *ps = probs + aha_attention_probs_offset(seq_start, s, heads);
#pragma omp for schedule(dynamic, 8) nowait
        for (int i = 0; i < len; i++) {
            size_t t = (size_t)(start + i);
            aha_cpu_attention_row_forward(out + t * qd, ps + (size_t)heads * i * (i + 1) / 2,
                                          q + t * qd, k + (size_t)start * kvd,
                                          v + (size_t)start * kvd, i + 1, kvd, heads, kv_heads,
                                          head_dim);
        }
    }
}

/* Plain backward of one (sequence, KV head): any head_dim. dp is [len] scratch. */
static void backward_plain(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *ps, int start, int len,
                           int kh, int heads, int kv_heads, int head_dim, float *dp) {
    int qd = heads * head_dim, kvd = kv_heads * head_dim, group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    size_t kv_off = (size_t)kh * head_dim;
    for (int i = 0; i < len; i++) {
        size_t t = (size_t)(start + i);
        for (int h = kh * group; h < (kh + 1) * group; h++) {
            const float *p = ps + (size_t)heads * i * (i + 1) / 2 + (size_t)h * (i + 1);
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
/* AVX2 backward of one (sequence, KV head), head_dim a multiple of 8. For each query head:
 * first, row by row, dS[i][j] = P (dP - rowdot) scale into the triangle ds (row i at
 * i(i+1)/2) and dq_i = sum_j dS[i][j] k_j; then, key by key, dk_j = sum_i dS[i][j] q_i and
 * dv_j = sum_i P[i][j] dy_i. Every sum stays in registers. */
static void backward_avx2(float *dq, float *dk, float *dv, const float *dout, const float *q,
                          const float *k, const float *v, const float *ps, int start, int len,
                          int kh, int heads, int kv_heads, int head_dim, float *ds) {
    size_t qd = (size_t)heads * head_dim, kvd = (size_t)kv_heads * head_dim;
    int group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    const float *kb = k + (size_t)start * kvd + (size_t)kh * head_dim;
    const float *vb = v + (size_t)start * kvd + (size_t)kh * head_dim;
    for (int h = kh * group; h < (kh + 1) * group; h++) {
        const float *qb = q + (size_t)start * qd + (size_t)h * head_dim;
        const float *dyb = dout + (size_t)start * qd + (size_t)h * head_dim;
#define P_AT(i, j) (ps[(size_t)heads * (i) * ((i) + 1) / 2 + (size_t)h * ((i) + 1) + (j)])
        for (int i = 0; i < len; i++) {
            float *dsi = ds + (size_t)i * (i + 1) / 2;
            const float *p = &P_AT(i, 0), *dy = dyb + (size_t)i * qd;
            dots(dsi, dy, vb, kvd, i + 1, head_dim, 1.0f); /* dP[i][j] */
            float rowdot = 0.0f;
            for (int j = 0; j <= i; j++) rowdot += p[j] * dsi[j];
            for (int j = 0; j <= i; j++) dsi[j] = p[j] * (dsi[j] - rowdot) * scale;
            if (dq) {
                float *dqi = dq + (size_t)(start + i) * qd + (size_t)h * head_dim;
                int d = 0;
                for (; d + 32 <= head_dim; d += 32) {
                    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                    for (int j = 0; j <= i; j++) {
                        __m256 b = _mm256_set1_ps(dsi[j]);
                        const float *kj = kb + (size_t)j * kvd + d;
                        a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(kj), a0);
                        a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(kj + 8), a1);
                        a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(kj + 16), a2);
                        a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(kj + 24), a3);
                    }
                    _mm256_storeu_ps(dqi + d, _mm256_add_ps(_mm256_loadu_ps(dqi + d), a0));
                    _mm256_storeu_ps(dqi + d + 8, _mm256_add_ps(_mm256_loadu_ps(dqi + d + 8), a1));
                    _mm256_storeu_ps(dqi + d + 16, _mm256_add_ps(_mm256_loadu_ps(dqi + d + 16), a2));
                    _mm256_storeu_ps(dqi + d + 24, _mm256_add_ps(_mm256_loadu_ps(dqi + d + 24), a3));
                }
                for (; d < head_dim; d += 8) {
                    __m256 a = _mm256_setzero_ps();
                    for (int j = 0; j <= i; j++)
                        a = _mm256_fmadd_ps(_mm256_set1_ps(dsi[j]), _mm256_loadu_ps(kb + (size_t)j * kvd + d), a);
                    _mm256_storeu_ps(dqi + d, _mm256_add_ps(_mm256_loadu_ps(dqi + d), a));
                }
            }
        }
        if (!dk && !dv) continue;
        for (int j = 0; j < len; j++) {
            size_t at = (size_t)(start + j) * kvd + (size_t)kh * head_dim;
            int d = 0;
            /* 32 columns at a time: eight accumulators, one broadcast of dS and P per row */
            for (; d + 32 <= head_dim; d += 32) {
                __m256 k0 = _mm256_setzero_ps(), k1 = k0, k2 = k0, k3 = k0;
                __m256 v0 = k0, v1 = k0, v2 = k0, v3 = k0;
                for (int i = j; i < len; i++) {
                    __m256 bs = _mm256_set1_ps(ds[(size_t)i * (i + 1) / 2 + j]);
                    __m256 bp = _mm256_set1_ps(P_AT(i, j));
                    const float *qi = qb + (size_t)i * qd + d, *dyi = dyb + (size_t)i * qd + d;
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
            for (; d < head_dim; d += 8) {
                __m256 ak = _mm256_setzero_ps(), av = ak;
                for (int i = j; i < len; i++) {
                    ak = _mm256_fmadd_ps(_mm256_set1_ps(ds[(size_t)i * (i + 1) / 2 + j]),
                                         _mm256_loadu_ps(qb + (size_t)i * qd + d), ak);
                    av = _mm256_fmadd_ps(_mm256_set1_ps(P_AT(i, j)),
                                         _mm256_loadu_ps(dyb + (size_t)i * qd + d), av);
                }
                if (dk) ADD_TO(dk, 0, ak);
                if (dv) ADD_TO(dv, 0, av);
#undef ADD_TO
            }
        }
#undef P_AT
    }
}
#endif

/* One task per (sequence, KV head): the query heads of a group write only their own dq rows
 * and that KV head's dk/dv, so tasks never share an output. */
void aha_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                                const float *q, const float *k, const float *v,
                                const float *probs, const int *seq_start, int n_seqs, int heads,
                                int kv_heads, int head_dim) {
    int max_len = 0;
    for (int s = 0; s < n_seqs; s++)
        if (seq_start[s + 1] - seq_start[s] > max_len) max_len = seq_start[s + 1] - seq_start[s];
    int fast = 0;
#ifdef AHA_VEC_AVX2
    fast = head_dim % 8 == 0;
#endif
    size_t scratch = fast ? (size_t)max_len * (max_len + 1) / 2 : (size_t)max_len;
    if (scratch == 0) scratch = 1;
    int tasks = n_seqs * kv_heads;
    int threaded = tasks > 1 && seq_start[n_seqs] >= 64 && !omp_in_parallel();
    int threads = threaded ? omp_get_max_threads() : 1;
    float *bufs = malloc(sizeof(float) * scratch * (size_t)threads);
    if (bufs == NULL) { /* no memory for scratch: the reference needs none */
        aha_attention_backward_ref(dq, dk, dv, dout, q, k, v, probs, seq_start, n_seqs, heads,
                                   kv_heads, head_dim);
        return;
    }
#pragma omp parallel num_threads(threads) if (threaded)
    {
        float *buf = bufs + scratch * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < tasks; task++) {
            int s = task / kv_heads, kh = task % kv_heads;
            int start = seq_start[s], len = seq_start[s + 1] - start;
            const float *ps = probs + aha_attention_probs_offset(seq_start, s, heads);
#ifdef AHA_VEC_AVX2
            if (fast) {
                backward_avx2(dq, dk, dv, dout, q, k, v, ps, start, len, kh, heads, kv_heads,
                              head_dim, buf);
                continue;
            }
#endif
            backward_plain(dq, dk, dv, dout, q, k, v, ps, start, len, kh, heads, kv_heads,
                           head_dim, buf);
        }
    }
    free(bufs);
}
