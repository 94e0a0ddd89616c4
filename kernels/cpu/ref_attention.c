/* The reference attention of the backend contract: forward keeps only the output and the
 * log-sum-exp of each (row, head); backward recomputes P = exp(S - lse) and uses
 * D = rowsum(dout * out) in place of rowsum(P dP) (the two are equal), as flash attention
 * does. Plain loops, one thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

static float score(const float *q, const float *k, int head_dim, float scale) {
    float s = 0.0f;
    for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
    return s * scale;
}

void aha_attention_forward_lse_ref(AhaBackend *be, float *out, float *lse, const float *q,
                                   const float *k, const float *v, const AhaSeqs *seqs,
                                   int heads, int kv_heads, int head_dim) {
    int qd = heads * head_dim, kvd = kv_heads * head_dim, group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    float *p = malloc(sizeof(float) * (size_t)(seqs->max_len > 0 ? seqs->max_len : 1));
    if (p == NULL) {
        aha_backend_fail(be, "attention: no memory for a row of %d scores", seqs->max_len);
        return;
    }
    for (int s = 0; s < seqs->n_seqs; s++) {
        int start = seqs->seq_start[s], len = seqs->seq_start[s + 1] - start;
        for (int i = 0; i < len; i++) {
            size_t t = (size_t)(start + i);
            for (int h = 0; h < heads; h++) {
                const float *qh = q + t * qd + (size_t)h * head_dim;
                size_t kv_off = (size_t)(h / group) * head_dim;
                float max = -INFINITY, sum = 0.0f;
                for (int j = 0; j <= i; j++) {
                    p[j] = score(qh, k + (size_t)(start + j) * kvd + kv_off, head_dim, scale);
                    max = fmaxf(max, p[j]);
                }
                for (int j = 0; j <= i; j++) sum += p[j] = expf(p[j] - max);
                float *oh = out + t * qd + (size_t)h * head_dim;
                for (int d = 0; d < head_dim; d++) {
                    float acc = 0.0f;
                    for (int j = 0; j <= i; j++) acc += p[j] * v[(size_t)(start + j) * kvd + kv_off + d];
                    oh[d] = acc / sum;
                }
                if (lse) lse[t * heads + h] = max + logf(sum);
            }
        }
    }
    free(p);
}

void aha_attention_backward_lse_ref(AhaBackend *be, float *dq, float *dk, float *dv,
                                    const float *dout, const float *q, const float *k,
                                    const float *v, const float *out, const float *lse,
                                    const AhaSeqs *seqs, int heads, int kv_heads, int head_dim) {
    (void)be;
    int qd = heads * head_dim, kvd = kv_heads * head_dim, group = heads / kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int s = 0; s < seqs->n_seqs; s++) {
        int start = seqs->seq_start[s], len = seqs->seq_start[s + 1] - start;
        for (int i = 0; i < len; i++) {
            size_t t = (size_t)(start + i);
            for (int h = 0; h < heads; h++) {
                const float *qh = q + t * qd + (size_t)h * head_dim;
                const float *dy = dout + t * qd + (size_t)h * head_dim;
                const float *oh = out + t * qd + (size_t)h * head_dim;
                size_t kv_off = (size_t)(h / group) * head_dim;
                float D = 0.0f;
                for (int d = 0; d < head_dim; d++) D += dy[d] * oh[d];
                for (int j = 0; j <= i; j++) {
                    size_t row_j = (size_t)(start + j) * kvd + kv_off;
                    float p = expf(score(qh, k + row_j, head_dim, scale) - lse[t * heads + h]);
                    float dp = 0.0f;
                    for (int d = 0; d < head_dim; d++) dp += dy[d] * v[row_j + d];
                    float ds = p * (dp - D) * scale;
                    for (int d = 0; d < head_dim; d++) {
                        if (dq) dq[t * qd + (size_t)h * head_dim + d] += ds * k[row_j + d];
                        if (dk) dk[row_j + d] += ds * qh[d];
                        if (dv) dv[row_j + d] += p * dy[d];
                    }
                }
            }
        }
    }
}
