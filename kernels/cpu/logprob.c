/* Log-softmax of a target and the entropy, per row of logits, with AVX2: exponentials as
 * float vectors (vec.h), their sums in double as in the reference (ref.c), so the result
 * stays within a few 1e-7 of it. Each row is computed the same way whatever rows come
 * with it; the sampler records its log-probs with this same kernel. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "vec.h"

#ifdef AHA_VEC_AVX2
/* x[i] * inv_t - max for the 8 elements at z + i (m valid, the rest zero), and their mask */
static inline __m256 shifted(const float *z, int i, int m, __m256 inv_t, __m256 max, __m256 *valid) {
    __m256 x;
    if (m == 8) {
        x = _mm256_loadu_ps(z + i);
        *valid = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    } else {
        float tmp[8] = {0};
        memcpy(tmp, z + i, sizeof(float) * (size_t)m);
        x = _mm256_loadu_ps(tmp);
        *valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m),
                                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    }
    return _mm256_and_ps(_mm256_sub_ps(_mm256_mul_ps(x, inv_t), max), *valid);
}

static float row_max(const float *z, int vocab, float inv_t) {
    __m256 m8 = _mm256_set1_ps(-INFINITY), vt = _mm256_set1_ps(inv_t);
    int i = 0;
    for (; i + 8 <= vocab; i += 8) m8 = _mm256_max_ps(m8, _mm256_mul_ps(_mm256_loadu_ps(z + i), vt));
    float tmp[8], max = -INFINITY;
    _mm256_storeu_ps(tmp, m8);
    for (int l = 0; l < 8; l++) max = tmp[l] > max ? tmp[l] : max;
    for (; i < vocab; i++) max = z[i] * inv_t > max ? z[i] * inv_t : max;
    return max;
}

static inline double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* sum of exp(y - max) and of exp(y - max) * (y - max), y = z * inv_t, in double */
static void row_sums(const float *z, int vocab, float inv_t, float max, double *sum, double *sum_pz) {
    __m256 vt = _mm256_set1_ps(inv_t), vmax = _mm256_set1_ps(max);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    for (int i = 0; i < vocab; i += 8) {
        __m256 valid, d = shifted(z, i, vocab - i < 8 ? vocab - i : 8, vt, vmax, &valid);
        __m256 e = _mm256_and_ps(vec_exp(d), valid);
        __m256 ed = _mm256_mul_ps(e, d);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        q0 = _mm256_add_pd(q0, _mm256_cvtps_pd(_mm256_castps256_ps128(ed)));
        q1 = _mm256_add_pd(q1, _mm256_cvtps_pd(_mm256_extractf128_ps(ed, 1)));
    }
    *sum = hsum_pd(_mm256_add_pd(s0, s1));
    *sum_pz = hsum_pd(_mm256_add_pd(q0, q1));
}
#endif

void aha_cpu_logprob_forward(float *logprob, float *entropy, const float *logits,
                             const int *targets, int n, int vocab, float temperature) {
#pragma omp parallel for schedule(static) if (n >= 64)
    for (int t = 0; t < n; t++) {
#ifdef AHA_VEC_AVX2
        const float *z = logits + (size_t)t * vocab;
        float inv_t = 1.0f / temperature, max = row_max(z, vocab, inv_t);
        double sum, sum_pz;
        row_sums(z, vocab, inv_t, max, &sum, &sum_pz);
        double lse = log(sum);
        logprob[t] = targets[t] >= 0 ? (float)((z[targets[t]] * inv_t - max) - lse) : 0.0f;
        if (entropy) entropy[t] = (float)(lse - sum_pz / sum);
#else
        aha_logprob_forward_ref(logprob + t, entropy ? entropy + t : NULL,
                                logits + (size_t)t * vocab, targets + t, 1, vocab, temperature);
#endif
    }
}

void aha_cpu_logprob_backward(float *dlogits, const float *dlogprob, const float *logits,
                              const int *targets, int n, int vocab, float temperature) {
#pragma omp parallel for schedule(static) if (n >= 64)
    for (int t = 0; t < n; t++) {
#ifdef AHA_VEC_AVX2
        const float *z = logits + (size_t)t * vocab;
        float *dz = dlogits + (size_t)t * vocab;
        if (targets[t] < 0) {
            memset(dz, 0, sizeof(float) * (size_t)vocab);
            continue;
        }
        float inv_t = 1.0f / temperature, max = row_max(z, vocab, inv_t);
        double sum, sum_pz;
        row_sums(z, vocab, inv_t, max, &sum, &sum_pz);
        /* dz = g (onehot - p), p = exp(y - max) / sum divided in double */
        float g = dlogprob[t] * inv_t;
        __m256 vt = _mm256_set1_ps(inv_t), vmax = _mm256_set1_ps(max), vg = _mm256_set1_ps(g);
        __m256d vsum = _mm256_set1_pd(sum);
        for (int i = 0; i < vocab; i += 8) {
            int m = vocab - i < 8 ? vocab - i : 8;
            __m256 valid, e = vec_exp(shifted(z, i, m, vt, vmax, &valid));
            __m128 p0 = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)), vsum));
            __m128 p1 = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)), vsum));
            __m256 p = _mm256_insertf128_ps(_mm256_castps128_ps256(p0), p1, 1);
            __m256 r = _mm256_mul_ps(vg, _mm256_sub_ps(_mm256_setzero_ps(), p));
            float tmp[8];
            _mm256_storeu_ps(tmp, r);
            if (targets[t] >= i && targets[t] < i + m) {
                float pt = _mm256_cvtss_f32(_mm256_permutevar8x32_ps(p, _mm256_set1_epi32(targets[t] - i)));
                tmp[targets[t] - i] = g * (1.0f - pt);
            }
            memcpy(dz + i, tmp, sizeof(float) * (size_t)m);
        }
#else
        aha_logprob_backward_ref(dlogits + (size_t)t * vocab, dlogprob + t,
                                 logits + (size_t)t * vocab, targets + t, 1, vocab, temperature);
#endif
    }
}
