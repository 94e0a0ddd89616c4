/* Tiny random models and requests shared by the rollout tests. */
#ifndef AHA_TEST_ROLLOUT_FIXTURES_H
#define AHA_TEST_ROLLOUT_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/model.h"
#include "aha/sampler.h"

/* The architectures the policy supports, each with its distinguishing features on. */
enum { ARCH_QWEN3, ARCH_QWEN2, ARCH_OLMOE, ARCH_MIXTRAL, ARCH_COUNT };

static inline AhaModel *tiny_model(int arch, uint64_t seed) {
    static const char *types[ARCH_COUNT] = {"qwen3_moe", "qwen2_moe", "olmoe", "mixtral"};
    AhaModelConfig cfg;
    if (aha_model_config_init(&cfg, types[arch]) != 0) return NULL;
    cfg.vocab_size = 61;
    cfg.hidden_size = 24;
    cfg.num_layers = 2;
    cfg.num_heads = 4;
    cfg.num_kv_heads = 2;
    cfg.head_dim = arch == ARCH_QWEN3 ? 8 : 6; /* qwen3: head_dim != hidden / heads */
    cfg.intermediate_size = 20;
    cfg.num_experts = 4;
    cfg.num_experts_per_tok = 2;
    cfg.moe_intermediate_size = 12;
    cfg.max_position_embeddings = 64;
    if (arch == ARCH_QWEN3) {
        cfg.num_mlp_only_layers = 1; /* layer 0 is a dense MLP */
        cfg.mlp_only_layers[0] = 0;
        cfg.norm_topk_prob = 1;
    }
    if (arch == ARCH_QWEN2) cfg.shared_expert_intermediate_size = 16;
    if (arch == ARCH_OLMOE) cfg.tie_word_embeddings = 1;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (m) aha_model_init_random(m, seed, 0.3f);
    return m;
}

/* B prompts of lengths 1 + (b * 5) % 9 .. with deterministic ids. */
typedef struct TestPrompts {
    int n;
    int32_t *tokens[16];
    int lens[16];
} TestPrompts;

static inline void make_prompts(TestPrompts *p, int n, int vocab, uint32_t salt) {
    p->n = n;
    for (int b = 0; b < n; b++) {
        p->lens[b] = 1 + (int)((b * 5 + salt) % 9);
        p->tokens[b] = malloc(sizeof(int32_t) * (size_t)p->lens[b]);
        for (int t = 0; t < p->lens[b]; t++)
            p->tokens[b][t] = (int32_t)((b * 131 + t * 17 + salt * 7 + 3) % (uint32_t)vocab);
    }
}

static inline void free_prompts(TestPrompts *p) {
    for (int b = 0; b < p->n; b++) free(p->tokens[b]);
}

static inline AhaRolloutRequest make_request(const TestPrompts *p, int group_size, float t,
                                             float top_p, int top_k, int max_new) {
    AhaRolloutRequest req;
    memset(&req, 0, sizeof req);
    req.n_prompts = p->n;
    req.prompts = (const int32_t *const *)p->tokens;
    req.prompt_lens = p->lens;
    req.group_size = group_size;
    aha_sampling_params_default(&req.params);
    req.params.temperature = t;
    req.params.top_p = top_p;
    req.params.top_k = top_k;
    req.params.max_new_tokens = max_new;
    req.params.seed = 1234;
    return req;
}

/* Collects groups by prompt index. */
typedef struct Collected {
    int n_prompts;
    int n_groups;
    int order[64];              /* prompt index of the i-th group delivered */
    AhaRolloutGroup *by_prompt[64];
} Collected;

static inline int collect(void *ctx, AhaRolloutGroup *group) {
    Collected *c = ctx;
    if (group->prompt_index < 0 || group->prompt_index >= c->n_prompts || c->by_prompt[group->prompt_index]) {
        aha_rollout_group_free(group);
        return -1;
    }
    c->order[c->n_groups++] = group->prompt_index;
    c->by_prompt[group->prompt_index] = group;
    return 0;
}

static inline void collected_free(Collected *c) {
    for (int i = 0; i < 64; i++) aha_rollout_group_free(c->by_prompt[i]);
    memset(c, 0, sizeof *c);
}

static inline int same_completion(const AhaCompletion *a, const AhaCompletion *b) {
    return a->n_tokens == b->n_tokens && a->stop == b->stop &&
           memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens) == 0 &&
           memcmp(a->logprobs, b->logprobs, sizeof(float) * (size_t)a->n_tokens) == 0;
}

#endif
