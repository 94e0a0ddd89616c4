/* The attention half of a layer around the attention kernel: input norm, q/k/v projections
 * (+ bias), q/k RMSNorm (per head or over the whole projection), RoPE; and their backward. */
#include "model_internal.h"

void attention_qkv_forward(const AhaModel *m, int layer, LayerActs *a, const int *pos, int T) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *K = m->backend;
    const AhaLayerWeights *w = &m->params.layers[layer];
    int H = c->hidden_size, nh = c->num_heads, nkv = c->num_kv_heads, hd = c->head_dim;
    int QD = nh * hd, KD = nkv * hd;
    K->rmsnorm_forward(K, a->ln1, a->rstd1, a->x_in, w->input_norm, T, H, c->rms_norm_eps);
    int normed = c->qk_norm != AHA_QK_NORM_NONE;
    K->matmul_forward(K, normed ? a->q_pre : a->q, a->ln1, w->q_proj, w->q_bias, T, H, QD);
    K->matmul_forward(K, normed ? a->k_pre : a->k, a->ln1, w->k_proj, w->k_bias, T, H, KD);
    K->matmul_forward(K, a->v, a->ln1, w->v_proj, w->v_bias, T, H, KD);
    if (c->qk_norm == AHA_QK_NORM_PER_HEAD) {
        K->rmsnorm_forward(K, a->q, a->q_rstd, a->q_pre, w->q_norm, T * nh, hd, c->rms_norm_eps);
        K->rmsnorm_forward(K, a->k, a->k_rstd, a->k_pre, w->k_norm, T * nkv, hd, c->rms_norm_eps);
    } else if (c->qk_norm == AHA_QK_NORM_FULL) {
        K->rmsnorm_forward(K, a->q, a->q_rstd, a->q_pre, w->q_norm, T, QD, c->rms_norm_eps);
        K->rmsnorm_forward(K, a->k, a->k_rstd, a->k_pre, w->k_norm, T, KD, c->rms_norm_eps);
    }
    K->rope_forward(K, a->q, pos, T, nh, hd, c->rope_theta);
    K->rope_forward(K, a->k, pos, T, nkv, hd, c->rope_theta);
}

/* dq, dk: gradients at the rotated q, k (rotated back in place); dv at v. dln1 and the
 * parameter gradients g accumulate.
 * dpre_q [T,QD] and dpre_k [T,KD] are scratch for the q/k norm backward. */
void attention_qkv_backward(const AhaModel *m, int layer, AhaLayerWeights *g, const LayerActs *a,
                            float *dln1, float *dq, float *dk, float *dv, float *dpre_q,
                            float *dpre_k, const int *pos, int T) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *K = m->backend;
    const AhaLayerWeights *w = &m->params.layers[layer];
    int H = c->hidden_size, nh = c->num_heads, nkv = c->num_kv_heads, hd = c->head_dim;
    int QD = nh * hd, KD = nkv * hd;
    K->rope_backward(K, dq, pos, T, nh, hd, c->rope_theta);
    K->rope_backward(K, dk, pos, T, nkv, hd, c->rope_theta);
    if (c->qk_norm != AHA_QK_NORM_NONE) {
        K->zero(K, dpre_q, sizeof(float) * (size_t)T * QD);
        K->zero(K, dpre_k, sizeof(float) * (size_t)T * KD);
        if (c->qk_norm == AHA_QK_NORM_PER_HEAD) {
            K->rmsnorm_backward(K, dpre_q, g->q_norm, dq, a->q_pre, w->q_norm, a->q_rstd, T * nh, hd);
            K->rmsnorm_backward(K, dpre_k, g->k_norm, dk, a->k_pre, w->k_norm, a->k_rstd, T * nkv, hd);
        } else {
            K->rmsnorm_backward(K, dpre_q, g->q_norm, dq, a->q_pre, w->q_norm, a->q_rstd, T, QD);
            K->rmsnorm_backward(K, dpre_k, g->k_norm, dk, a->k_pre, w->k_norm, a->k_rstd, T, KD);
        }
        dq = dpre_q;
        dk = dpre_k;
    }
    K->matmul_backward(K, dln1, g->q_proj, g->q_bias, dq, a->ln1, w->q_proj, T, H, QD);
    K->matmul_backward(K, dln1, g->k_proj, g->k_bias, dk, a->ln1, w->k_proj, T, H, KD);
    K->matmul_backward(K, dln1, g->v_proj, g->v_bias, dv, a->ln1, w->v_proj, T, H, KD);
}
