/* The KV-cache forward (see rollout/forward.h). */
#include "rollout/forward.h"

#include <string.h>

#include "aha/error.h"

int aha_cache_forward_init(AhaCacheForward *fw, AhaBackend *be, const AhaModelConfig *cfg,
                           int max_rows) {
    memset(fw, 0, sizeof *fw);
    size_t rows = (size_t)max_rows;
    size_t q_dim = (size_t)cfg->num_heads * cfg->head_dim;
    size_t kv_dim = (size_t)cfg->num_kv_heads * cfg->head_dim;
    fw->backend = be;
    fw->max_rows = max_rows;
    fw->x = be->alloc(be, rows * cfg->hidden_size * sizeof(float));
    fw->q = be->alloc(be, rows * q_dim * sizeof(float));
    fw->k = be->alloc(be, rows * kv_dim * sizeof(float));
    fw->v = be->alloc(be, rows * kv_dim * sizeof(float));
    fw->attn = be->alloc(be, rows * q_dim * sizeof(float));
    fw->selected = be->alloc(be, rows * cfg->hidden_size * sizeof(float));
    fw->rows = be->alloc(be, 4 * rows * sizeof(int));
    if (!fw->x || !fw->q || !fw->k || !fw->v || !fw->attn || !fw->selected || !fw->rows) {
        aha_cache_forward_free(fw);
        return aha_error_prefix("KV-cache forward workspace for %d rows", max_rows);
    }
    return 0;
}

void aha_cache_forward_free(AhaCacheForward *fw) {
    AhaBackend *be = fw->backend;
    if (be) {
        be->free(be, fw->x);
        be->free(be, fw->q);
        be->free(be, fw->k);
        be->free(be, fw->v);
        be->free(be, fw->attn);
        be->free(be, fw->selected);
        be->free(be, fw->rows);
    }
    memset(fw, 0, sizeof *fw);
}

int aha_cache_forward(AhaModel *m, AhaKvCache *cache, AhaCacheForward *fw, int n,
                      const int *tokens, const int *slots, const int *pos,
                      const int *logit_rows, int n_logits, float *logits) {
    const AhaModelConfig *cfg = &m->cfg;
    AhaBackend *B = m->backend;
    const int hidden = cfg->hidden_size;
    AHA_REQUIRE(n >= 0 && n <= fw->max_rows && n_logits <= n,
                "KV-cache forward: %d rows (%d with logits) for a workspace of %d", n, n_logits,
                fw->max_rows);
    if (n == 0) return 0;
    int *d_tokens = fw->rows, *d_slots = d_tokens + fw->max_rows, *d_pos = d_slots + fw->max_rows,
        *d_logit_rows = d_pos + fw->max_rows;
    AHA_TRY(B->upload(B, d_tokens, tokens, sizeof(int) * (size_t)n));
    AHA_TRY(B->upload(B, d_slots, slots, sizeof(int) * (size_t)n));
    AHA_TRY(B->upload(B, d_pos, pos, sizeof(int) * (size_t)n));
    if (n_logits > 0) AHA_TRY(B->upload(B, d_logit_rows, logit_rows, sizeof(int) * (size_t)n_logits));
    AHA_TRY(aha_model_embed(m, fw->x, d_tokens, n));
    for (int layer = 0; layer < cfg->num_layers; layer++) {
        AHA_TRY(aha_layer_qkv(m, layer, fw->q, fw->k, fw->v, fw->x, d_pos, n));
        B->kv_append(B, cache->memory, &cache->layout, layer, fw->k, fw->v, d_slots, d_pos, n);
        B->attention_decode(B, fw->attn, fw->q, cache->memory, &cache->layout, layer, d_slots,
                            d_pos, n, cfg->num_heads, cfg->num_kv_heads, cfg->head_dim);
        AHA_TRY(aha_layer_attn_out(m, layer, fw->x, fw->attn, n));
        AHA_TRY(aha_layer_ffn(m, layer, fw->x, n));
    }
    if (n_logits == 0) return B->sync(B);
    B->gather_rows(B, fw->selected, fw->x, d_logit_rows, n_logits, hidden);
    AHA_TRY(aha_model_head(m, logits, fw->selected, n_logits));
    return B->sync(B);
}
