/* The KV-cache forward (see rollout/forward.h). */
#include "rollout/forward.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"

int aha_cache_forward_init(AhaCacheForward *fw, const AhaModelConfig *cfg, int max_rows,
                           int max_len) {
    memset(fw, 0, sizeof *fw);
    size_t rows = (size_t)max_rows;
    size_t q_dim = (size_t)cfg->num_heads * cfg->head_dim;
    size_t kv_dim = (size_t)cfg->num_kv_heads * cfg->head_dim;
    fw->max_rows = max_rows;
    fw->n_prob_buffers = omp_get_max_threads();
    fw->x = aha_malloc(rows * cfg->hidden_size * sizeof(float));
    fw->q = aha_malloc(rows * q_dim * sizeof(float));
    fw->k = aha_malloc(rows * kv_dim * sizeof(float));
    fw->v = aha_malloc(rows * kv_dim * sizeof(float));
    fw->attn = aha_malloc(rows * q_dim * sizeof(float));
    fw->selected = aha_malloc(rows * cfg->hidden_size * sizeof(float));
    fw->probs = aha_malloc((size_t)fw->n_prob_buffers * cfg->num_heads * max_len * sizeof(float));
    if (!fw->x || !fw->q || !fw->k || !fw->v || !fw->attn || !fw->selected || !fw->probs) {
        aha_cache_forward_free(fw);
        return aha_error_prefix("KV-cache forward workspace for %d rows", max_rows);
    }
    return 0;
}

void aha_cache_forward_free(AhaCacheForward *fw) {
    free(fw->x);
    free(fw->q);
    free(fw->k);
    free(fw->v);
    free(fw->attn);
    free(fw->selected);
    free(fw->probs);
    memset(fw, 0, sizeof *fw);
}

int aha_cache_forward(AhaModel *m, AhaKvCache *cache, AhaCacheForward *fw, int n,
                      const int *tokens, const int *slots, const int *pos,
                      const int *logit_rows, int n_logits, float *logits) {
    const AhaModelConfig *cfg = &m->cfg;
    const int hidden = cfg->hidden_size, heads = cfg->num_heads, kv_heads = cfg->num_kv_heads;
    const int head_dim = cfg->head_dim, q_dim = heads * head_dim, kv_dim = cache->kv_dim;
    AHA_REQUIRE(n >= 0 && n <= fw->max_rows && n_logits <= n,
                "KV-cache forward: %d rows (%d with logits) for a workspace of %d", n, n_logits,
                fw->max_rows);
    if (n == 0) return 0;
    AHA_TRY(aha_model_embed(m, fw->x, tokens, n));
    for (int layer = 0; layer < cfg->num_layers; layer++) {
        AHA_TRY(aha_layer_qkv(m, layer, fw->q, fw->k, fw->v, fw->x, pos, n));
        for (int i = 0; i < n; i++) {
            size_t at = (size_t)pos[i] * kv_dim;
            memcpy(aha_kv_keys(cache, layer, slots[i]) + at, fw->k + (size_t)i * kv_dim,
                   (size_t)kv_dim * sizeof(float));
            memcpy(aha_kv_values(cache, layer, slots[i]) + at, fw->v + (size_t)i * kv_dim,
                   (size_t)kv_dim * sizeof(float));
        }
        /* Rows are independent; each thread has its own softmax buffer. The kernel runs
         * serially inside (OpenMP does not nest by default), as in the training forward. */
        const AhaKernels *kern = m->kernels;
#pragma omp parallel for schedule(dynamic, 1) num_threads(fw->n_prob_buffers)
        for (int i = 0; i < n; i++) {
            int thread = omp_get_thread_num();
            float *probs = fw->probs + (size_t)thread * heads * cache->max_len;
            kern->attention_row_forward(fw->attn + (size_t)i * q_dim, probs,
                                        fw->q + (size_t)i * q_dim,
                                        aha_kv_keys(cache, layer, slots[i]),
                                        aha_kv_values(cache, layer, slots[i]), pos[i] + 1,
                                        kv_dim, heads, kv_heads, head_dim);
        }
        AHA_TRY(aha_layer_attn_out(m, layer, fw->x, fw->attn, n));
        AHA_TRY(aha_layer_ffn(m, layer, fw->x, n));
    }
    if (n_logits == 0) return 0;
    for (int j = 0; j < n_logits; j++)
        memcpy(fw->selected + (size_t)j * hidden, fw->x + (size_t)logit_rows[j] * hidden,
               (size_t)hidden * sizeof(float));
    return aha_model_head(m, logits, fw->selected, n_logits);
}
