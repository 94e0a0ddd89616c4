/* Tiny configs of every architecture variant, shared by the policy tests. */
#ifndef AHA_TEST_MODEL_UTIL_H
#define AHA_TEST_MODEL_UTIL_H

#include <math.h>
#include <string.h>

#include "aha/model.h"

enum { TINY_QWEN3, TINY_QWEN3_SPARSE_STEP, TINY_QWEN2, TINY_OLMOE, TINY_MIXTRAL_TIED, TINY_COUNT };

static inline const char *tiny_name(int which) {
    static const char *names[] = {"qwen3_moe (per-head qk norm, mlp_only_layers)",
                                  "qwen3_moe (decoder_sparse_step 2)",
                                  "qwen2_moe (shared expert, qkv bias)",
                                  "olmoe (full-width qk norm)", "mixtral (tied embeddings)"};
    return names[which];
}

static inline void tiny_config(AhaModelConfig *c, int which) {
    static const char *types[] = {"qwen3_moe", "qwen3_moe", "qwen2_moe", "olmoe", "mixtral"};
    aha_model_config_init(c, types[which]);
    c->vocab_size = 37;
    c->hidden_size = 16;
    c->num_layers = 3;
    c->num_heads = 4;
    c->num_kv_heads = 2;
    c->head_dim = 8; /* q width 32 != hidden 16, as in Qwen3 */
    c->intermediate_size = 12;
    c->num_experts = 4;
    c->num_experts_per_tok = 2;
    c->moe_intermediate_size = 8;
    c->rope_theta = 10000.0f;
    switch (which) {
    case TINY_QWEN3:
        c->norm_topk_prob = 1;
        c->num_mlp_only_layers = 1;
        c->mlp_only_layers[0] = 1;
        break;
    case TINY_QWEN3_SPARSE_STEP: c->decoder_sparse_step = 2; break;
    case TINY_QWEN2:
        c->num_kv_heads = 4;
        c->shared_expert_intermediate_size = 10;
        break;
    case TINY_OLMOE: /* every layer MoE, so no dense width */
        c->num_experts_per_tok = 3;
        c->intermediate_size = 0;
        break;
    case TINY_MIXTRAL_TIED:
        c->tie_word_embeddings = 1;
        c->intermediate_size = 0;
        break;
    }
}

/* Random weights with norms and biases away from 1 and 0 so their gradients matter. */
static inline void tiny_init(AhaModel *m, uint64_t seed) {
    aha_model_init_random(m, seed, 0.3f);
    uint64_t s = seed * 2654435761u + 7;
    for (int i = 0; i < aha_model_num_tensors(m); i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        size_t len = strlen(t->name);
        int is_bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
        if (!is_bias && !strstr(t->name, "norm.weight")) continue;
        for (size_t j = 0; j < t->numel; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            float u = (float)((s >> 40) & 0xffffff) / 16777216.0f - 0.5f;
            t->data[j] += 0.4f * u;
        }
    }
}

#endif
