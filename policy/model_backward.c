/* The backward pass: from d(loss)/d(logprob) through the LM head (recomputing logits in row
 * chunks), the layers in reverse, to the embedding; plus the load-balancing loss. */
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "model_internal.h"

/* Backward temporaries, one layer's worth, carved from A->scratch. */
typedef struct {
    float *dx;      /* [T,H] gradient of the residual stream */
    float *dln;     /* [T,H] gradient of a norm's output */
    float *dattn;   /* [T,QD] */
    float *dq;      /* [T,QD] */
    float *dk;      /* [T,KD] */
    float *dv;      /* [T,KD] */
    float *dpre_q;  /* [T,QD] */
    float *dpre_k;  /* [T,KD] */
    float *logits;  /* [C,V] one chunk of the LM head */
    float *dlogits; /* [C,V] */
    float *aux;     /* [E] */
    float *ffn;     /* ffn_backward_scratch */
} Grads;

static size_t carve(const AhaModelConfig *c, int T, int C, float *base, Grads *g) {
    size_t n = (size_t)T, H = c->hidden_size, QD = (size_t)c->num_heads * c->head_dim,
           KD = (size_t)c->num_kv_heads * c->head_dim, off = 0;
    size_t sizes[] = {n * H, n * H, n * QD, n * QD, n * KD, n * KD, n * QD, n * KD,
                      (size_t)C * c->vocab_size, (size_t)C * c->vocab_size,
                      (size_t)c->num_experts, ffn_backward_scratch(c, T)};
    float **ptrs[] = {&g->dx, &g->dln, &g->dattn, &g->dq, &g->dk, &g->dv, &g->dpre_q,
                      &g->dpre_k, &g->logits, &g->dlogits, &g->aux, &g->ffn};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = base ? base + off : NULL;
        off += sizes[i];
    }
    return off;
}

static int head_backward(AhaModel *m, const float *dlogprob, Grads *g, int C) {
    const AhaModelConfig *c = &m->cfg;
    const AhaKernels *K = m->kernels;
    AhaActivations *A = m->acts;
    int T = A->T, H = c->hidden_size, V = c->vocab_size;
    memset(g->dln, 0, sizeof(float) * (size_t)T * H);
    for (int r0 = 0; r0 < T; r0 += C) {
        int n = T - r0 < C ? T - r0 : C;
        const float *lnf = A->lnf + (size_t)r0 * H;
        K->matmul_forward(g->logits, lnf, m->params.lm_head, NULL, n, H, V);
        K->logprob_backward(g->dlogits, dlogprob + r0, g->logits, A->targets + r0, n, V,
                            A->temperature);
        K->matmul_backward(g->dln + (size_t)r0 * H, m->grads.lm_head, NULL, g->dlogits, lnf,
                           m->params.lm_head, n, H, V);
    }
    memset(g->dx, 0, sizeof(float) * (size_t)T * H);
    K->rmsnorm_backward(g->dx, m->grads.final_norm, g->dln, A->x_final, m->params.final_norm,
                        A->rstdf, T, H);
    return 0;
}

static void layer_backward(AhaModel *m, int l, Grads *g, const float *aux) {
    const AhaModelConfig *c = &m->cfg;
    const AhaKernels *K = m->kernels;
    AhaActivations *A = m->acts;
    const LayerActs *a = &A->layers[l];
    const AhaLayerWeights *w = &m->params.layers[l];
    AhaLayerWeights *gw = &m->grads.layers[l];
    int T = A->T, H = c->hidden_size, QD = c->num_heads * c->head_dim,
        KD = c->num_kv_heads * c->head_dim;
    size_t n = (size_t)T;
    /* FFN: g->dx holds d/d(layer output); the residual passes it to x_mid unchanged */
    memset(g->dln, 0, sizeof(float) * n * H);
    ffn_backward(m, l, a, g->dln, g->dx, aux, T, g->ffn);
    K->rmsnorm_backward(g->dx, gw->post_norm, g->dln, a->x_mid, w->post_norm, a->rstd2, T, H);
    /* attention */
    memset(g->dattn, 0, sizeof(float) * n * QD);
    K->matmul_backward(g->dattn, gw->o_proj, NULL, g->dx, a->attn, w->o_proj, T, QD, H);
    memset(g->dq, 0, sizeof(float) * n * QD);
    memset(g->dk, 0, sizeof(float) * n * KD);
    memset(g->dv, 0, sizeof(float) * n * KD);
    K->attention_backward(g->dq, g->dk, g->dv, g->dattn, a->q, a->k, a->v, a->probs,
                          A->seq_start, A->n_seqs, c->num_heads, c->num_kv_heads, c->head_dim);
    memset(g->dln, 0, sizeof(float) * n * H);
    attention_qkv_backward(m, l, a, g->dln, g->dq, g->dk, g->dv, g->dpre_q, g->dpre_k, A->pos, T);
    K->rmsnorm_backward(g->dx, gw->input_norm, g->dln, a->x_in, w->input_norm, a->rstd1, T, H);
}

int aha_model_backward(AhaModel *m, const float *dlogprob, float aux_coef) {
    const AhaModelConfig *c = &m->cfg;
    AhaActivations *A = m->acts;
    AHA_REQUIRE(A->T > 0 && A->have_logprobs,
                "backward: call aha_model_forward and aha_model_logprobs first");
    AHA_TRY(aha_model_alloc_grads(m));
    int T = A->T, H = c->hidden_size;
    int C = T < 64 ? T : 64;
    Grads g;
    size_t need = carve(c, T, C, NULL, &g);
    if (need > A->scratch_capacity) {
        free(A->scratch);
        A->scratch_capacity = 0;
        A->scratch = aha_malloc(need * sizeof(float));
        if (A->scratch == NULL) return aha_error_prefix("backward scratch (%d tokens)", T);
        A->scratch_capacity = need;
    }
    carve(c, T, C, A->scratch, &g);
    AHA_TRY(head_backward(m, dlogprob, &g, C));
    const float *aux = NULL;
    if (aux_coef != 0.0f && c->num_experts > 0) {
        aux_loss_dprob(m, aux_coef, g.aux);
        aux = g.aux;
    }
    for (int l = c->num_layers - 1; l >= 0; l--) layer_backward(m, l, &g, aux);
    float *gemb = m->grads.embed_tokens;
    for (int t = 0; t < T; t++) {
        float *row = gemb + (size_t)A->tokens[t] * H;
        const float *d = g.dx + (size_t)t * H;
        for (int i = 0; i < H; i++) row[i] += d[i];
    }
    return 0;
}
