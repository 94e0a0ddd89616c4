/* Private to policy/model*.c, attention*.c, moe*.c: the activation arena and the pieces of
 * the forward and backward passes. */
#ifndef AHA_MODEL_INTERNAL_H
#define AHA_MODEL_INTERNAL_H

#include "aha/model.h"

/* What one layer keeps from the training forward (pointers into AhaActivations' arenas, all
 * backend memory), or, for the decoding building blocks, temporaries over m->scratch for N
 * rows. T = rows, QD = nh*hd, KD = nkv*hd, S = T*k expert slots. */
typedef struct {
    float *x_in;         /* [T,H] residual entering the layer */
    float *ln1;          /* [T,H] */
    float *rstd1;        /* [T] */
    float *q_pre;        /* [T,QD] before q norm (NULL without qk norm) */
    float *k_pre;        /* [T,KD] */
    float *q_rstd;       /* [T*nh] per head, [T] full */
    float *k_rstd;       /* [T*nkv] per head, [T] full */
    float *q;            /* [T,QD] normed, rotated */
    float *k;            /* [T,KD] */
    float *v;            /* [T,KD] */
    float *lse;          /* [T,nh] attention log-sum-exp (no probabilities are kept) */
    float *attn;         /* [T,QD] attention output before o_proj */
    float *x_mid;        /* [T,H] residual after attention */
    float *ln2;          /* [T,H] */
    float *rstd2;        /* [T] */
    float *mlp_gate;     /* [T,Id] dense layer */
    float *mlp_up;       /* [T,Id] */
    float *mlp_h;        /* [T,Id] */
    float *router_probs; /* [T,E] */
    float *topk_w;       /* [T,k] mixing weights (renormalized if norm_topk_prob) */
    int *topk_idx;       /* [T,k] */
    int *expert_off;     /* [E+1] expert e owns slots [off[e], off[e+1]) */
    int *slot_token;     /* [S] token of each slot */
    int *slot_of;        /* [T,k] slot of (t, j) */
    float *xg;           /* [S,H] gathered ln2 rows */
    float *eg;           /* [S,I] */
    float *eu;           /* [S,I] */
    float *eh;           /* [S,I] */
    float *eo;           /* [S,H] expert outputs */
    float *sg;           /* [T,Is] shared expert */
    float *su;           /* [T,Is] */
    float *sh;           /* [T,Is] */
    float *so;           /* [T,H] */
    float *sgate;        /* [T] sigmoid(shared_expert_gate . ln2) */
} LayerActs;

/* A contiguous run of a packed batch's sequences with everything its forward keeps. The
 * batch is split into parts so that each thread trains one part on its own (one fork and
 * join per pass, not one per op); a single-threaded run has one part. */
typedef struct {
    int T, n_seqs;           /* rows and sequences of this part */
    int row0;                /* its first row in the whole batch */
    AhaSeqs seqs;            /* the part's packing for attention (seq_start below) */
    size_t float_capacity, int_capacity;
    float *floats;           /* the float arena (backend memory, as everything below) */
    int *ints;               /* the int arena */
    int *tokens;             /* [T] */
    int *pos;                /* [T] */
    int *seq_start;          /* [n_seqs+1], from 0 */
    int *targets;            /* [T] from aha_model_logprobs */
    LayerActs layers[AHA_MAX_LAYERS];
    float *x_final;          /* [T,H] residual after the last layer */
    float *lnf;              /* [T,H] */
    float *rstdf;            /* [T] */
    float *expert_count;     /* [L,E] top-k assignments per expert (MoE layers) */
    float *prob_sum;         /* [L,E] sum over tokens of router probabilities */
    float *scratch;          /* backward temporaries, see model_backward.c */
    float *logits;           /* [rows, V] one chunk of the LM head for aha_model_logprobs */
    size_t logits_capacity;
    float *io;               /* [4T] log-probs, entropies, dlogprob in and out of the host */
    size_t io_capacity;
    size_t scratch_capacity;
    float *grad_memory;      /* parts after the first: their own gradient arena, added into
                                m->grads at the end of backward */
    AhaParams grads;         /* views of grad_memory laid out as m->grads */
    AhaLayerWeights grad_layers[AHA_MAX_LAYERS];
} ActsPart;

enum { AHA_MAX_PARTS = 16 };

struct AhaActivations {
    int T, n_seqs;           /* the whole batch */
    int n_parts;
    ActsPart *part[AHA_MAX_PARTS]; /* allocated on first use, kept across steps */
    float temperature;
    int have_logprobs;
};

/* Frees the activations and every part (model_forward.c). */
void aha_activations_free(AhaBackend *be, AhaActivations *A);

/* Grows a backend buffer of floats to at least count (contents lost); 0 or -1. */
int backend_reserve(AhaBackend *be, float **buf, size_t *capacity, size_t count, const char *what);

/* Carves one layer's activations for T rows (S = T*k slots; with_lse: the attention's
 * log-sum-exp, which the decode building blocks do not keep) from the float and int arenas at
 * offsets *nf and *ni, advancing them; with NULL bases it only counts. x_in and x_mid are
 * left to the caller. */
void layer_acts_carve(const AhaModelConfig *c, int layer, LayerActs *a, int T, int with_lse,
                      float *fbase, size_t *nf, int *ibase, size_t *ni);

/* model_forward.c: coef * d(aux loss)/d(router probability of expert e), for every MoE
 * layer and token of the last forward (all parts); dprob[E]. */
int aux_loss_dprob(const AhaModel *m, float coef, float *dprob);

/* attention.c */
void attention_qkv_forward(const AhaModel *m, int layer, LayerActs *a, const int *pos, int T);
void attention_qkv_backward(const AhaModel *m, int layer, AhaLayerWeights *g,
                            const LayerActs *a, float *dln1,
                            float *dq, float *dk, float *dv, float *dpre_q, float *dpre_k,
                            const int *pos, int T);

/* moe_ep.c: the experts [first, end) this process runs (all of them without expert
 * parallel), and the all-gather of the rows of every member's experts (rows [S, width] in
 * slot order, expert e's slots at [expert_off[e], expert_off[e+1])). With more than one
 * member they read expert_off and the rows on the host (a host-memory backend). */
int moe_ep_first_expert(int E);
int moe_ep_end_expert(int E);
void moe_ep_share_rows(float *rows, const int *expert_off, int E, int width);

/* moe.c: the router settings of a config */
AhaRouting model_routing(const AhaModelConfig *c);
/* moe.c: ffn over a->ln2 into y (overwritten) */
void ffn_forward(const AhaModel *m, int layer, LayerActs *a, float *y, int T);
/* dy [T,H] -> dln2 [T,H] (accumulated) and the parameter gradients g (accumulated); aux_dprob[E] (or NULL)
 * is added to the gradient of every router probability. scratch: ffn_backward_scratch. */
void ffn_backward(const AhaModel *m, int layer, AhaLayerWeights *g, const LayerActs *a,
                  float *dln2, const float *dy, const float *aux_dprob, int T, float *scratch);
size_t ffn_backward_scratch(const AhaModelConfig *c, int T);

#endif
