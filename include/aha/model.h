/* The MoE policy: config.json, one parameter arena, training forward/backward over a packed
 * batch, per-token log-probs and entropy, and per-layer building blocks for a KV-cache decoder.
 *
 * Architecture (Qwen3-MoE family, with the switches Qwen2-MoE, OLMoE and Mixtral need):
 *   x = embed[tokens]
 *   per layer: x += o_proj(attn(rope(qk_norm(q_proj(n1(x)))), rope(qk_norm(k_proj(..))), v))
 *              x += ffn(n2(x))      ffn = dense SwiGLU MLP, or MoE:
 *                 p = softmax(router(x)); top-k of p; w = p_topk (/ sum if norm_topk_prob)
 *                 y = sum_j w_j * expert_j(x)  (+ sigmoid(shared_gate . x) * shared(x))
 *   logits = lm_head(norm(x))
 * All math is float32, on the model's backend (aha/backend.h): every arena below is backend
 * memory, and every op of the forward, backward and decode building blocks is a backend op.
 * See docs/model.md. */
#ifndef AHA_MODEL_H
#define AHA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "aha/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AHA_MAX_LAYERS 256
#define AHA_MAX_EOS 8
/* Bounds on every size read from config.json: a hostile file is an error naming the key,
 * never a product that overflows or an allocation sized by it. */
#define AHA_MAX_EXPERTS 1024
#define AHA_MAX_VOCAB (1 << 22)
#define AHA_MAX_WIDTH (1 << 20)        /* hidden_size, intermediate sizes */
#define AHA_MAX_HEADS 1024             /* attention and key/value heads */
#define AHA_MAX_HEAD_DIM 4096
#define AHA_MAX_POSITIONS (1 << 24)    /* max_position_embeddings */
#define AHA_MAX_PARAMS (1ull << 38)    /* total parameters (1 TiB in F32) */
#define AHA_MODEL_TYPE_MAX 32

typedef enum {
    AHA_QK_NORM_NONE = 0,  /* Qwen2-MoE, Mixtral */
    AHA_QK_NORM_PER_HEAD,  /* Qwen3-MoE: q_norm/k_norm weight [head_dim], per head */
    AHA_QK_NORM_FULL,      /* OLMoE: q_norm [heads*head_dim], k_norm [kv_heads*head_dim] */
} AhaQkNorm;

typedef struct {
    char model_type[AHA_MODEL_TYPE_MAX]; /* qwen3_moe | qwen2_moe | olmoe | mixtral */
    int vocab_size;                      /* V */
    int hidden_size;                     /* H */
    int num_layers;                      /* L */
    int num_heads;                       /* nh */
    int num_kv_heads;                    /* nkv (divides nh) */
    int head_dim;                        /* hd (may differ from H/nh) */
    int intermediate_size;               /* dense-MLP width of non-MoE layers */
    int num_experts;                     /* E */
    int num_experts_per_tok;             /* k */
    int moe_intermediate_size;           /* I: width of one expert */
    int shared_expert_intermediate_size; /* 0: no shared expert (Qwen2-MoE has one) */
    int norm_topk_prob;                  /* renormalize the top-k weights to sum 1 */
    int decoder_sparse_step;             /* layer i is MoE iff (i+1) % step == 0 and ... */
    int num_mlp_only_layers;             /* ... i is not in mlp_only_layers */
    int mlp_only_layers[AHA_MAX_LAYERS];
    AhaQkNorm qk_norm;
    int qkv_bias;                        /* q/k/v projections have biases (Qwen2-MoE) */
    int tie_word_embeddings;             /* lm_head shares embed_tokens */
    float rms_norm_eps;
    float rope_theta;
    float router_aux_loss_coef;          /* informational: the recipe passes aux_coef */
    float initializer_range;
    int max_position_embeddings;
    int bos_token_id;                    /* -1 when absent */
    int pad_token_id;                    /* -1 when absent */
    int num_eos;                         /* eos_token_id: an int or a list in config.json */
    int eos_token_ids[AHA_MAX_EOS];
} AhaModelConfig;

/* Defaults of transformers' config class for model_type (qwen3_moe, qwen2_moe, olmoe,
 * mixtral); callers then set the sizes. */
int aha_model_config_init(AhaModelConfig *cfg, const char *model_type);
/* Checks sizes and consistency; the error names the field. */
int aha_model_config_validate(const AhaModelConfig *cfg);
/* Reads a Hugging Face config.json. Unknown model types and unsupported settings
 * (rope scaling, sliding windows, hidden_act other than silu, attention_bias, clip_qkv...)
 * are errors that name the key. */
int aha_model_config_load(AhaModelConfig *cfg, const char *path);
/* Writes a config.json that transformers loads (architectures, model_type, all fields). */
int aha_model_config_save(const AhaModelConfig *cfg, const char *path);
int aha_model_layer_is_moe(const AhaModelConfig *cfg, int layer);
/* Parameter count, and the parameters one token touches (k experts, no unused experts). */
size_t aha_model_config_num_params(const AhaModelConfig *cfg);
size_t aha_model_config_active_params(const AhaModelConfig *cfg);

/* One layer's weights: pointers into an arena (parameters or gradients, same layout), in
 * backend memory.
 * Unused pointers are NULL (e.g. the MoE fields of a dense layer). */
typedef struct {
    float *input_norm;         /* [H] */
    float *q_proj;             /* [nh*hd, H] */
    float *q_bias;             /* [nh*hd] */
    float *k_proj;             /* [nkv*hd, H] */
    float *k_bias;             /* [nkv*hd] */
    float *v_proj;             /* [nkv*hd, H] */
    float *v_bias;             /* [nkv*hd] */
    float *q_norm;             /* [hd] per-head, or [nh*hd] full */
    float *k_norm;             /* [hd] per-head, or [nkv*hd] full */
    float *o_proj;             /* [H, nh*hd] */
    float *post_norm;          /* [H] post_attention_layernorm */
    float *mlp_gate;           /* [Id, H] dense layer */
    float *mlp_up;             /* [Id, H] */
    float *mlp_down;           /* [H, Id] */
    float *router;             /* [E, H] mlp.gate */
    float *expert_gate;        /* [E, I, H] expert e at + e*I*H */
    float *expert_up;          /* [E, I, H] */
    float *expert_down;        /* [E, H, I] */
    float *shared_gate;        /* [Is, H] mlp.shared_expert.gate_proj */
    float *shared_up;          /* [Is, H] */
    float *shared_down;        /* [H, Is] */
    float *shared_expert_gate; /* [1, H] */
} AhaLayerWeights;

typedef struct {
    float *memory;           /* the arena (backend memory): every tensor below points into it */
    size_t count;            /* floats in the arena */
    float *embed_tokens;     /* [V, H] */
    float *final_norm;       /* [H] */
    float *lm_head;          /* [V, H]; equals embed_tokens when tied */
    AhaLayerWeights *layers; /* [L] */
} AhaParams;

/* One entry of the tensor table: Hugging Face name and shape, in arena order. */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    size_t offset; /* in floats from the arena start; the gradient is at grads.memory+offset */
    size_t numel;
    float *data;   /* params.memory + offset (backend memory: download to read it on the host) */
} AhaTensor;

/* A packed batch: n_seqs sequences laid end to end, no padding. Sequence s is tokens
 * [seq_start[s], seq_start[s+1]); positions restart at 0 in each sequence. */
typedef struct {
    int n_seqs;
    const int *seq_start; /* [n_seqs+1], seq_start[0] = 0, nondecreasing */
    const int *tokens;    /* [seq_start[n_seqs]] */
} AhaBatch;

typedef struct AhaActivations AhaActivations;

typedef struct {
    AhaModelConfig cfg;
    AhaBackend *backend;       /* runs every op and owns every arena of the model */
    int owns_backend;          /* aha_model_free frees it */
    AhaParams params;
    AhaParams grads;           /* memory NULL until aha_model_alloc_grads / first backward */
    int num_tensors;
    AhaTensor *tensors;        /* [num_tensors] */
    AhaActivations *acts;      /* training state of the last forward (opaque) */
    float *scratch;            /* for the building blocks (backend memory); grows as needed */
    size_t scratch_count;
} AhaModel;

/* The model's arenas on backend (NULL: a "cpu" context of its own, freed with the model). */
AhaModel *aha_model_create(const AhaModelConfig *cfg, AhaBackend *backend);
/* Runs the model on another context of the same backend and device from now on (the
 * sampler's and the trainer's batch-invariant contexts); memory stays where it is. With
 * owned, the model frees the context. The previous context is freed if the model owned it. */
int aha_model_set_backend(AhaModel *m, AhaBackend *backend, int owned);
void aha_model_free(AhaModel *m);
/* Normal(0, std) weights (Box-Muller on a fixed generator), norms set to 1, biases 0. */
int aha_model_init_random(AhaModel *m, uint64_t seed, float std);
/* dst and src must have identical configs. */
int aha_model_copy_params(AhaModel *dst, const AhaModel *src);
int aha_model_alloc_grads(AhaModel *m);
void aha_model_zero_grads(AhaModel *m);

int aha_model_num_tensors(const AhaModel *m);
const AhaTensor *aha_model_tensor(const AhaModel *m, int i);
const AhaTensor *aha_model_find_tensor(const AhaModel *m, const char *name); /* NULL: none */

/* Training forward over a packed batch: keeps what backward needs. Token ids are checked
 * against the vocabulary. */
int aha_model_forward(AhaModel *m, const AhaBatch *batch);
/* After forward: logprob[T] = log softmax(logits/temperature)[targets[t]] (0 where
 * targets[t] == -1, the unscored rows), entropy[T] (may be NULL) of that distribution.
 * Works in row chunks; at most one [chunk x V] logits buffer exists. Remembers targets and
 * temperature for backward. */
int aha_model_logprobs(AhaModel *m, const int *targets, float temperature, float *logprob,
                       float *entropy);
/* Backward of sum_t dlogprob[t]*logprob[t] (from the last aha_model_logprobs) plus
 * aux_coef * aha_model_aux_loss(m); ACCUMULATES into m->grads (allocated on first use). */
int aha_model_backward(AhaModel *m, const float *dlogprob, float aux_coef);
/* The load-balancing loss of the last forward, as transformers computes it: over all MoE
 * layers' tokens together, E * sum_e f_e * P_e with f_e the fraction of (token, slot)
 * assignments... (see docs/model.md). 0 without MoE layers. */
float aha_model_aux_loss(const AhaModel *m);
/* Fraction of the top-k assignments that went to each expert in `layer` during the last
 * forward (sums to 1); returns -1 for a dense layer. load[E]. */
int aha_model_expert_load(const AhaModel *m, int layer, float *load);
/* logits[T, V] of the last forward (for tests; materializes the whole matrix). */
int aha_model_logits(AhaModel *m, float *logits);

/* ---- Building blocks for a KV-cache decoder: N rows at arbitrary positions, nothing kept.
 * They use the training forward's ops. x is the residual stream [N, H], updated in place.
 * Every array is backend memory (tokens and pos too). They use m->scratch, so one model must
 * not run them from two threads at once. */
/* x[N,H] = embed_tokens[tokens[N]] (tokens are not checked: the caller's job) */
int aha_model_embed(AhaModel *m, float *x, const int *tokens, int n);
/* input norm, q/k/v projections (+ bias), q/k norm, RoPE at pos[N]:
 * q[N, nh*hd], k[N, nkv*hd], v[N, nkv*hd]. */
int aha_layer_qkv(AhaModel *m, int layer, float *q, float *k, float *v, const float *x,
                  const int *pos, int n);
/* x[N,H] += attn[N, nh*hd] @ o_proj^T  (attention itself: backend->attention_decode) */
int aha_layer_attn_out(AhaModel *m, int layer, float *x, const float *attn, int n);
/* x[N,H] += ffn(post_norm(x)): dense MLP or router + top-k + experts + shared expert. */
int aha_layer_ffn(AhaModel *m, int layer, float *x, int n);
/* logits[N,V] = lm_head(final_norm(x)) */
int aha_model_head(AhaModel *m, float *logits, const float *x, int n);

#ifdef __cplusplus
}
#endif

#endif
