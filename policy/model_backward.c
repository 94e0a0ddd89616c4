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

/* Rows per chunk of the LM head in backward: about 256K logits (two such buffers live at
 * once), at least 64 rows; small vocabularies get few large products. */
static int head_rows(const AhaModelConfig *c, int T) {
    int rows = (int)((size_t)(1 << 18) / (size_t)c->vocab_size);
    if (rows < 64) rows = 64;
    return rows < T ? rows : T;
}

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

static void head_backward(const AhaModel *m, ActsPart *A, AhaParams *grads,
                          const float *dlogprob, float temperature, Grads *g, int C) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *K = m->backend;
    int T = A->T, H = c->hidden_size, V = c->vocab_size;
    K->zero(K, g->dln, sizeof(float) * (size_t)T * H);
    for (int r0 = 0; r0 < T; r0 += C) {
        int n = T - r0 < C ? T - r0 : C;
        const float *lnf = A->lnf + (size_t)r0 * H;
        K->matmul_forward(K, g->logits, lnf, m->params.lm_head, NULL, n, H, V);
        K->logprob_backward(K, g->dlogits, dlogprob + r0, g->logits, A->targets + r0, n, V,
                            temperature);
        K->matmul_backward(K, g->dln + (size_t)r0 * H, grads->lm_head, NULL, g->dlogits, lnf,
                           m->params.lm_head, n, H, V);
    }
    K->zero(K, g->dx, sizeof(float) * (size_t)T * H);
    K->rmsnorm_backward(K, g->dx, grads->final_norm, g->dln, A->x_final, m->params.final_norm,
                        A->rstdf, T, H);
}

static void layer_backward(const AhaModel *m, ActsPart *A, AhaLayerWeights *gw, int l, Grads *g,
                           const float *aux) {
    const AhaModelConfig *c = &m->cfg;
    AhaBackend *K = m->backend;
    const LayerActs *a = &A->layers[l];
    const AhaLayerWeights *w = &m->params.layers[l];
    int T = A->T, H = c->hidden_size, QD = c->num_heads * c->head_dim,
        KD = c->num_kv_heads * c->head_dim;
    size_t n = (size_t)T;
    /* FFN: g->dx holds d/d(layer output); the residual passes it to x_mid unchanged */
    K->zero(K, g->dln, sizeof(float) * n * H);
    ffn_backward(m, l, gw, a, g->dln, g->dx, aux, T, g->ffn);
    K->rmsnorm_backward(K, g->dx, gw->post_norm, g->dln, a->x_mid, w->post_norm, a->rstd2, T, H);
    /* attention */
    K->zero(K, g->dattn, sizeof(float) * n * QD);
    K->matmul_backward(K, g->dattn, gw->o_proj, NULL, g->dx, a->attn, w->o_proj, T, QD, H);
    K->zero(K, g->dq, sizeof(float) * n * QD);
    K->zero(K, g->dk, sizeof(float) * n * KD);
    K->zero(K, g->dv, sizeof(float) * n * KD);
    K->attention_backward(K, g->dq, g->dk, g->dv, g->dattn, a->q, a->k, a->v, a->attn, a->lse,
                          &A->seqs, c->num_heads, c->num_kv_heads, c->head_dim);
    K->zero(K, g->dln, sizeof(float) * n * H);
    attention_qkv_backward(m, l, gw, a, g->dln, g->dq, g->dk, g->dv, g->dpre_q, g->dpre_k,
                           A->pos, T);
    K->rmsnorm_backward(K, g->dx, gw->input_norm, g->dln, a->x_in, w->input_norm, a->rstd1, T, H);
}

/* One part's whole backward, accumulating into grads. */
static void backward_part(const AhaModel *m, ActsPart *A, AhaParams *grads,
                          const float *dlogprob, float temperature, const float *aux) {
    const AhaModelConfig *c = &m->cfg;
    int T = A->T, H = c->hidden_size;
    Grads g;
    carve(c, T, head_rows(c, T), A->scratch, &g);
    head_backward(m, A, grads, dlogprob, temperature, &g, head_rows(c, T));
    for (int l = c->num_layers - 1; l >= 0; l--)
        layer_backward(m, A, &grads->layers[l], l, &g, aux);
    m->backend->scatter_add_rows(m->backend, grads->embed_tokens, g.dx, A->tokens, T, H);
}

/* A view of `memory` laid out like `like` (same offsets); layers[L] receives the layers. */
static void rebase_params(AhaParams *out, AhaLayerWeights *layers, const AhaParams *like,
                          float *memory, int num_layers) {
#define REBASE(p) ((p) ? memory + ((p) - like->memory) : NULL)
    out->memory = memory;
    out->count = like->count;
    out->embed_tokens = REBASE(like->embed_tokens);
    out->final_norm = REBASE(like->final_norm);
    out->lm_head = REBASE(like->lm_head);
    out->layers = layers;
    for (int l = 0; l < num_layers; l++) {
        const AhaLayerWeights *a = &like->layers[l];
        AhaLayerWeights *b = &layers[l];
        b->input_norm = REBASE(a->input_norm);
        b->q_proj = REBASE(a->q_proj);
        b->q_bias = REBASE(a->q_bias);
        b->k_proj = REBASE(a->k_proj);
        b->k_bias = REBASE(a->k_bias);
        b->v_proj = REBASE(a->v_proj);
        b->v_bias = REBASE(a->v_bias);
        b->q_norm = REBASE(a->q_norm);
        b->k_norm = REBASE(a->k_norm);
        b->o_proj = REBASE(a->o_proj);
        b->post_norm = REBASE(a->post_norm);
        b->mlp_gate = REBASE(a->mlp_gate);
        b->mlp_up = REBASE(a->mlp_up);
        b->mlp_down = REBASE(a->mlp_down);
        b->router = REBASE(a->router);
        b->expert_gate = REBASE(a->expert_gate);
        b->expert_up = REBASE(a->expert_up);
        b->expert_down = REBASE(a->expert_down);
        b->shared_gate = REBASE(a->shared_gate);
        b->shared_up = REBASE(a->shared_up);
        b->shared_down = REBASE(a->shared_down);
        b->shared_expert_gate = REBASE(a->shared_expert_gate);
    }
#undef REBASE
}

/* Scratch for one part, its dlogprob uploaded into p->io + 2T, and for parts after the
 * first a private gradient arena. */
static int prepare_part(AhaModel *m, ActsPart *p, int index, const float *dlogprob) {
    AhaBackend *B = m->backend;
    Grads counted;
    size_t need = carve(&m->cfg, p->T, head_rows(&m->cfg, p->T), NULL, &counted);
    AHA_TRY(backend_reserve(B, &p->scratch, &p->scratch_capacity, need, "backward scratch"));
    AHA_TRY(backend_reserve(B, &p->io, &p->io_capacity, 4 * (size_t)p->T, "backward"));
    AHA_TRY(B->upload(B, p->io + 2 * p->T, dlogprob + p->row0, sizeof(float) * (size_t)p->T));
    if (index == 0) return 0;
    if (p->grad_memory == NULL) {
        p->grad_memory = B->alloc(B, m->grads.count * sizeof(float));
        if (p->grad_memory == NULL) return aha_error_prefix("gradients of a batch part");
    }
    rebase_params(&p->grads, p->grad_layers, &m->grads, p->grad_memory, m->cfg.num_layers);
    return 0;
}

int aha_model_backward(AhaModel *m, const float *dlogprob, float aux_coef) {
    const AhaModelConfig *c = &m->cfg;
    AhaActivations *A = m->acts;
    AHA_REQUIRE(A->T > 0 && A->have_logprobs,
                "backward: call aha_model_forward and aha_model_logprobs first");
    AHA_TRY(aha_model_alloc_grads(m));
    int n = A->n_parts;
    AhaBackend *B = m->backend;
    for (int i = 0; i < n; i++) AHA_TRY(prepare_part(m, A->part[i], i, dlogprob));
    const float *aux = NULL;
    if (aux_coef != 0.0f && c->num_experts > 0) {
        /* part 0's Grads.aux [E]: carved for every part, unused by backward_part */
        Grads g0;
        carve(c, A->part[0]->T, head_rows(c, A->part[0]->T), A->part[0]->scratch, &g0);
        float *host = aha_malloc(sizeof(float) * (size_t)c->num_experts);
        if (host == NULL) return aha_error_prefix("backward");
        int rc = aux_loss_dprob(m, aux_coef, host);
        if (rc == 0) rc = B->upload(B, g0.aux, host, sizeof(float) * (size_t)c->num_experts);
        free(host);
        AHA_TRY(rc);
        aux = g0.aux;
    }
    size_t count = m->grads.count;
    if (n == 1) { /* outside a parallel region, see aha_model_forward */
        ActsPart *p = A->part[0];
        backward_part(m, p, &m->grads, p->io + 2 * p->T, A->temperature, aux);
        return B->sync(B);
    }
    /* part 0 accumulates into m->grads, the others into their own zeroed arenas */
#pragma omp parallel for schedule(static, 1) num_threads(n)
    for (int i = 0; i < n; i++) {
        ActsPart *p = A->part[i];
        AhaParams *grads = &m->grads;
        if (i > 0) {
            B->zero(B, p->grad_memory, count * sizeof(float));
            grads = &p->grads;
        }
        backward_part(m, p, grads, p->io + 2 * p->T, A->temperature, aux);
    }
    /* then the other parts are added into m->grads, in part order */
    for (int i = 1; i < n; i++) B->add(B, m->grads.memory, A->part[i]->grad_memory, count);
    return B->sync(B);
}
