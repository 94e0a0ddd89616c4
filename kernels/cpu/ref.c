/* Plain C references of every kernel: the simplest correct loops, no threads, no
 * intrinsics. The tests hold the fast CPU kernels (cpu.c) and any later backend to these. */
#include <math.h>
#include <string.h>

#include "aha/kernels.h"

void aha_matmul_forward_ref(float *out, const float *in, const float *weight, const float *bias,
                            int n, int in_dim, int out_dim) {
    for (int t = 0; t < n; t++) {
        const float *x = in + (size_t)t * in_dim;
        for (int o = 0; o < out_dim; o++) {
            const float *w = weight + (size_t)o * in_dim;
            float acc = bias ? bias[o] : 0.0f;
            for (int i = 0; i < in_dim; i++) acc += x[i] * w[i];
            out[(size_t)t * out_dim + o] = acc;
        }
    }
}

void aha_matmul_backward_ref(float *din, float *dweight, float *dbias, const float *dout,
                             const float *in, const float *weight, int n, int in_dim,
                             int out_dim) {
    for (int t = 0; t < n; t++) {
        const float *dy = dout + (size_t)t * out_dim;
        const float *x = in + (size_t)t * in_dim;
        for (int o = 0; o < out_dim; o++) {
            const float *w = weight + (size_t)o * in_dim;
            if (din)
                for (int i = 0; i < in_dim; i++) din[(size_t)t * in_dim + i] += dy[o] * w[i];
            if (dweight)
                for (int i = 0; i < in_dim; i++) dweight[(size_t)o * in_dim + i] += dy[o] * x[i];
            if (dbias) dbias[o] += dy[o];
        }
    }
}

void aha_rmsnorm_forward_ref(float *out, float *rstd, const float *in, const float *weight,
                             int n, int dim, float eps) {
    for (int t = 0; t < n; t++) {
        const float *x = in + (size_t)t * dim;
        float *y = out + (size_t)t * dim;
        float sumsq = 0.0f;
        for (int i = 0; i < dim; i++) sumsq += x[i] * x[i];
        float r = 1.0f / sqrtf(sumsq / dim + eps);
        for (int i = 0; i < dim; i++) y[i] = x[i] * r * weight[i];
        if (rstd) rstd[t] = r;
    }
}

/* y = x r w with r = (mean(x^2)+eps)^-1/2, so dx = r (w dy) - r^3/dim x sum(w dy x) */
void aha_rmsnorm_backward_ref(float *din, float *dweight, const float *dout, const float *in,
                              const float *weight, const float *rstd, int n, int dim) {
    for (int t = 0; t < n; t++) {
        const float *x = in + (size_t)t * dim;
        const float *dy = dout + (size_t)t * dim;
        float r = rstd[t];
        float dot = 0.0f;
        for (int i = 0; i < dim; i++) dot += dy[i] * weight[i] * x[i];
        float c = dot * r * r * r / dim;
        for (int i = 0; i < dim; i++) {
            if (din) din[(size_t)t * dim + i] += r * weight[i] * dy[i] - c * x[i];
            if (dweight) dweight[i] += dy[i] * x[i] * r;
        }
    }
}

/* The angle is computed as transformers does, in float: pos * 1/theta^(2i/d). */
static void rope_rotate(float *x, const int *pos, int n, int heads, int head_dim, float theta,
                        float direction) {
    int half = head_dim / 2;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < half; i++) {
            float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float angle = (float)pos[t] * inv_freq;
            float c = cosf(angle), s = direction * sinf(angle);
            for (int h = 0; h < heads; h++) {
                float *v = x + ((size_t)t * heads + h) * head_dim;
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
}

void aha_rope_forward_ref(float *x, const int *pos, int n, int heads, int head_dim, float theta) {
    rope_rotate(x, pos, n, heads, head_dim, theta, 1.0f);
}

void aha_rope_backward_ref(float *dx, const int *pos, int n, int heads, int head_dim,
                           float theta) {
    rope_rotate(dx, pos, n, heads, head_dim, theta, -1.0f);
}

void aha_attention_row_forward_ref(float *out, float *probs, const float *q, const float *k,
                                   const float *v, int len, int kv_stride, int heads,
                                   int kv_heads, int head_dim) {
    int group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int h = 0; h < heads; h++) {
        const float *qh = q + (size_t)h * head_dim;
        size_t kv_off = (size_t)(h / group) * head_dim;
        float *p = probs + (size_t)h * len;
        float max = -INFINITY;
        for (int j = 0; j < len; j++) {
            const float *kj = k + (size_t)j * kv_stride + kv_off;
            float s = 0.0f;
            for (int i = 0; i < head_dim; i++) s += qh[i] * kj[i];
            p[j] = s * scale;
            if (p[j] > max) max = p[j];
        }
        float sum = 0.0f;
        for (int j = 0; j < len; j++) {
            p[j] = expf(p[j] - max);
            sum += p[j];
        }
        float *oh = out + (size_t)h * head_dim;
        memset(oh, 0, sizeof(float) * head_dim);
        for (int j = 0; j < len; j++) {
            p[j] /= sum;
            const float *vj = v + (size_t)j * kv_stride + kv_off;
            for (int i = 0; i < head_dim; i++) oh[i] += p[j] * vj[i];
        }
    }
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void aha_swiglu_forward_ref(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] * sigmoidf(gate[i]) * up[i];
}

void aha_swiglu_backward_ref(float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(gate[i]);
        if (dgate) dgate[i] += dout[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
        if (dup) dup[i] += dout[i] * gate[i] * s;
    }
}

void aha_logprob_forward_ref(float *logprob, float *entropy, const float *logits,
                             const int *targets, int n, int vocab, float temperature) {
    float inv_t = 1.0f / temperature;
    for (int t = 0; t < n; t++) {
        const float *z = logits + (size_t)t * vocab;
        float max = -INFINITY;
        for (int i = 0; i < vocab; i++) max = fmaxf(max, z[i] * inv_t);
        double sum = 0.0, sum_pz = 0.0;
        for (int i = 0; i < vocab; i++) {
            double e = exp((double)(z[i] * inv_t - max));
            sum += e;
            sum_pz += e * (z[i] * inv_t - max);
        }
        double lse = log(sum); /* relative to max */
        logprob[t] = targets[t] >= 0 ? (float)((z[targets[t]] * inv_t - max) - lse) : 0.0f;
        if (entropy) entropy[t] = (float)(lse - sum_pz / sum);
    }
}

void aha_logprob_backward_ref(float *dlogits, const float *dlogprob, const float *logits,
                              const int *targets, int n, int vocab, float temperature) {
    float inv_t = 1.0f / temperature;
    for (int t = 0; t < n; t++) {
        const float *z = logits + (size_t)t * vocab;
        float *dz = dlogits + (size_t)t * vocab;
        if (targets[t] < 0) {
            memset(dz, 0, sizeof(float) * vocab);
            continue;
        }
        float max = -INFINITY;
        for (int i = 0; i < vocab; i++) max = fmaxf(max, z[i] * inv_t);
        double sum = 0.0;
        for (int i = 0; i < vocab; i++) sum += exp((double)(z[i] * inv_t - max));
        float g = dlogprob[t] * inv_t;
        for (int i = 0; i < vocab; i++) {
            float p = (float)(exp((double)(z[i] * inv_t - max)) / sum);
            dz[i] = g * ((i == targets[t] ? 1.0f : 0.0f) - p);
        }
    }
}
