/* The per-layer building blocks a KV-cache decoder calls for N rows at arbitrary positions.
 * They run the training forward's own functions over temporaries in m->scratch (backend
 * memory, as every array they take). */
#include "aha/error.h"
#include "model_internal.h"

static int scratch(AhaModel *m, size_t count, float **out) {
    AHA_TRY(backend_reserve(m->backend, &m->scratch, &m->scratch_count, count, "model scratch"));
    *out = m->scratch;
    return 0;
}

/* Temporaries for one layer over n rows: the activations (no attention probabilities),
 * their int part placed after the floats, and y [n,H]. */
static int layer_temps(AhaModel *m, int layer, int n, LayerActs *a, float **y) {
    size_t nf = 0, ni = 0;
    layer_acts_carve(&m->cfg, layer, a, n, 0, NULL, &nf, NULL, &ni);
    nf = (nf + 15) / 16 * 16; /* the int part stays 64-byte aligned */
    size_t ny = (size_t)n * m->cfg.hidden_size;
    float *base = NULL;
    AHA_TRY(scratch(m, nf + ny + ni, &base));
    size_t f = 0, i = 0;
    layer_acts_carve(&m->cfg, layer, a, n, 0, base, &f, (int *)(base + nf + ny), &i);
    *y = base + nf;
    return 0;
}

static int check_layer(const AhaModel *m, int layer, int n) {
    AHA_REQUIRE(layer >= 0 && layer < m->cfg.num_layers, "layer %d does not exist (%d layers)",
                layer, m->cfg.num_layers);
    AHA_REQUIRE(n > 0, "expected at least one row, got %d", n);
    return 0;
}

int aha_model_embed(AhaModel *m, float *x, const int *tokens, int n) {
    AHA_REQUIRE(n > 0, "embed: expected at least one row, got %d", n);
    m->backend->gather_rows(m->backend, x, m->params.embed_tokens, tokens, n, m->cfg.hidden_size);
    return 0;
}

int aha_layer_qkv(AhaModel *m, int layer, float *q, float *k, float *v, const float *x,
                  const int *pos, int n) {
    AHA_TRY(check_layer(m, layer, n));
    LayerActs a;
    float *y = NULL;
    AHA_TRY(layer_temps(m, layer, n, &a, &y));
    a.x_in = (float *)x; /* only read */
    attention_qkv_forward(m, layer, &a, pos, n);
    size_t QD = (size_t)m->cfg.num_heads * m->cfg.head_dim,
           KD = (size_t)m->cfg.num_kv_heads * m->cfg.head_dim;
    AhaBackend *B = m->backend;
    B->copy(B, q, a.q, sizeof(float) * n * QD);
    B->copy(B, k, a.k, sizeof(float) * n * KD);
    B->copy(B, v, a.v, sizeof(float) * n * KD);
    return 0;
}

int aha_layer_attn_out(AhaModel *m, int layer, float *x, const float *attn, int n) {
    AHA_TRY(check_layer(m, layer, n));
    int H = m->cfg.hidden_size, QD = m->cfg.num_heads * m->cfg.head_dim;
    float *y = NULL;
    AHA_TRY(scratch(m, (size_t)n * H, &y));
    AhaBackend *B = m->backend;
    B->matmul_forward(B, y, attn, m->params.layers[layer].o_proj, NULL, n, QD, H);
    B->add(B, x, y, (size_t)n * H);
    return 0;
}

int aha_layer_ffn(AhaModel *m, int layer, float *x, int n) {
    AHA_TRY(check_layer(m, layer, n));
    const AhaModelConfig *c = &m->cfg;
    LayerActs a;
    float *y = NULL;
    AHA_TRY(layer_temps(m, layer, n, &a, &y));
    AhaBackend *B = m->backend;
    B->rmsnorm_forward(B, a.ln2, a.rstd2, x, m->params.layers[layer].post_norm, n,
                       c->hidden_size, c->rms_norm_eps);
    ffn_forward(m, layer, &a, y, n);
    B->add(B, x, y, (size_t)n * c->hidden_size);
    return 0;
}

int aha_model_head(AhaModel *m, float *logits, const float *x, int n) {
    AHA_REQUIRE(n > 0, "head: expected at least one row, got %d", n);
    const AhaModelConfig *c = &m->cfg;
    float *lnf = NULL;
    AHA_TRY(scratch(m, (size_t)n * c->hidden_size, &lnf));
    AhaBackend *B = m->backend;
    B->rmsnorm_forward(B, lnf, NULL, x, m->params.final_norm, n, c->hidden_size, c->rms_norm_eps);
    B->matmul_forward(B, logits, lnf, m->params.lm_head, NULL, n, c->hidden_size, c->vocab_size);
    return 0;
}
