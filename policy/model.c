/* The parameter arena: one float32 allocation of backend memory carved, in Hugging Face
 * tensor order, into the shape-commented pointers of AhaParams; the tensor table names every
 * piece. Gradients use the same layout in their own arena. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/model.h"
#include "model_internal.h"

/* Walks the layout once: counts floats, and when base is set, points p's tensors at it;
 * when table is set, names each tensor. */
typedef struct {
    float *base;
    size_t offset;
    AhaTensor *table;
    int count;
} Carver;

static float *take(Carver *cv, int64_t d0, int64_t d1, const char *fmt, ...) AHA_PRINTF(4, 5);

static float *take(Carver *cv, int64_t d0, int64_t d1, const char *fmt, ...) {
    size_t numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    if (cv->table) {
        AhaTensor *t = &cv->table[cv->count];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof t->name, fmt, ap);
        va_end(ap);
        t->ndim = d1 > 0 ? 2 : 1;
        t->shape[0] = d0;
        t->shape[1] = d1 > 0 ? d1 : 0;
        t->offset = cv->offset;
        t->numel = numel;
        t->data = cv->base ? cv->base + cv->offset : NULL;
    }
    float *ptr = cv->base ? cv->base + cv->offset : NULL;
    cv->offset += numel;
    cv->count++;
    return ptr;
}

static void carve(const AhaModelConfig *c, Carver *cv, AhaParams *p) {
    int64_t H = c->hidden_size, V = c->vocab_size, QD = (int64_t)c->num_heads * c->head_dim,
            KD = (int64_t)c->num_kv_heads * c->head_dim, E = c->num_experts,
            I = c->moe_intermediate_size, Is = c->shared_expert_intermediate_size,
            Id = c->intermediate_size;
    p->embed_tokens = take(cv, V, H, "model.embed_tokens.weight");
    for (int l = 0; l < c->num_layers; l++) {
        AhaLayerWeights *w = &p->layers[l];
        memset(w, 0, sizeof *w);
        const char *pre = "model.layers";
        w->input_norm = take(cv, H, 0, "%s.%d.input_layernorm.weight", pre, l);
        w->q_proj = take(cv, QD, H, "%s.%d.self_attn.q_proj.weight", pre, l);
        if (c->qkv_bias) w->q_bias = take(cv, QD, 0, "%s.%d.self_attn.q_proj.bias", pre, l);
        w->k_proj = take(cv, KD, H, "%s.%d.self_attn.k_proj.weight", pre, l);
        if (c->qkv_bias) w->k_bias = take(cv, KD, 0, "%s.%d.self_attn.k_proj.bias", pre, l);
        w->v_proj = take(cv, KD, H, "%s.%d.self_attn.v_proj.weight", pre, l);
        if (c->qkv_bias) w->v_bias = take(cv, KD, 0, "%s.%d.self_attn.v_proj.bias", pre, l);
        if (c->qk_norm != AHA_QK_NORM_NONE) {
            int full = c->qk_norm == AHA_QK_NORM_FULL;
            w->q_norm = take(cv, full ? QD : c->head_dim, 0, "%s.%d.self_attn.q_norm.weight", pre, l);
            w->k_norm = take(cv, full ? KD : c->head_dim, 0, "%s.%d.self_attn.k_norm.weight", pre, l);
        }
        w->o_proj = take(cv, H, QD, "%s.%d.self_attn.o_proj.weight", pre, l);
        w->post_norm = take(cv, H, 0, "%s.%d.post_attention_layernorm.weight", pre, l);
        if (aha_model_layer_is_moe(c, l)) {
            w->router = take(cv, E, H, "%s.%d.mlp.gate.weight", pre, l);
            for (int e = 0; e < E; e++) {
                float *t = take(cv, I, H, "%s.%d.mlp.experts.%d.gate_proj.weight", pre, l, e);
                if (e == 0) w->expert_gate = t;
            }
            for (int e = 0; e < E; e++) {
                float *t = take(cv, I, H, "%s.%d.mlp.experts.%d.up_proj.weight", pre, l, e);
                if (e == 0) w->expert_up = t;
            }
            for (int e = 0; e < E; e++) {
                float *t = take(cv, H, I, "%s.%d.mlp.experts.%d.down_proj.weight", pre, l, e);
                if (e == 0) w->expert_down = t;
            }
            if (Is > 0) {
                w->shared_gate = take(cv, Is, H, "%s.%d.mlp.shared_expert.gate_proj.weight", pre, l);
                w->shared_up = take(cv, Is, H, "%s.%d.mlp.shared_expert.up_proj.weight", pre, l);
                w->shared_down = take(cv, H, Is, "%s.%d.mlp.shared_expert.down_proj.weight", pre, l);
                w->shared_expert_gate = take(cv, 1, H, "%s.%d.mlp.shared_expert_gate.weight", pre, l);
            }
        } else {
            w->mlp_gate = take(cv, Id, H, "%s.%d.mlp.gate_proj.weight", pre, l);
            w->mlp_up = take(cv, Id, H, "%s.%d.mlp.up_proj.weight", pre, l);
            w->mlp_down = take(cv, H, Id, "%s.%d.mlp.down_proj.weight", pre, l);
        }
    }
    p->final_norm = take(cv, H, 0, "model.norm.weight");
    p->lm_head = c->tie_word_embeddings ? p->embed_tokens : take(cv, V, H, "lm_head.weight");
}

/* a zeroed arena of backend memory */
static int alloc_arena(AhaBackend *be, const AhaModelConfig *c, AhaParams *p, AhaTensor *table) {
    Carver count = {0};
    AhaParams tmp;
    AhaLayerWeights layers[AHA_MAX_LAYERS];
    tmp.layers = layers;
    carve(c, &count, &tmp);
    p->count = count.offset;
    p->memory = be->alloc(be, p->count * sizeof(float));
    if (p->memory == NULL) return aha_error_prefix("parameter arena of %zu floats", p->count);
    be->zero(be, p->memory, p->count * sizeof(float));
    if (p->layers == NULL) {
        p->layers = aha_calloc((size_t)c->num_layers, sizeof(AhaLayerWeights));
        if (p->layers == NULL) return -1;
    }
    Carver cv = {.base = p->memory, .table = table};
    carve(c, &cv, p);
    return 0;
}

AhaModel *aha_model_create(const AhaModelConfig *cfg, AhaBackend *backend) {
    if (aha_model_config_validate(cfg) != 0) {
        aha_error_prefix("model config");
        return NULL;
    }
    AhaModel *m = aha_calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->cfg = *cfg;
    m->backend = backend;
    if (backend == NULL) {
        m->backend = aha_backend_create("cpu", NULL);
        m->owns_backend = 1;
        if (m->backend == NULL) {
            free(m);
            return NULL;
        }
    }
    Carver count = {0};
    AhaParams tmp;
    AhaLayerWeights layers[AHA_MAX_LAYERS];
    tmp.layers = layers;
    carve(cfg, &count, &tmp);
    m->num_tensors = count.count;
    m->tensors = aha_calloc((size_t)m->num_tensors, sizeof(AhaTensor));
    m->acts = aha_calloc(1, sizeof(AhaActivations));
    if (m->tensors == NULL || m->acts == NULL ||
        alloc_arena(m->backend, cfg, &m->params, m->tensors) != 0) {
        aha_model_free(m);
        return NULL;
    }
    return m;
}

void aha_model_free(AhaModel *m) {
    if (m == NULL) return;
    AhaBackend *be = m->backend;
    be->free(be, m->params.memory);
    free(m->params.layers);
    be->free(be, m->grads.memory);
    free(m->grads.layers);
    free(m->tensors);
    aha_activations_free(be, m->acts);
    be->free(be, m->scratch);
    if (m->owns_backend) aha_backend_free(be);
    free(m);
}

int aha_model_set_backend(AhaModel *m, AhaBackend *backend, int owned) {
    /* memory stays: the new context must reach it (host memory, or the same device) */
    AHA_REQUIRE(backend && ((backend->host_memory && m->backend->host_memory) ||
                            (strcmp(backend->name, m->backend->name) == 0 &&
                             backend->device == m->backend->device)),
                "model backend: a model on %s (device %d) can only move to another context of the "
                "same backend and device, not %s", m->backend->name, m->backend->device,
                backend ? backend->name : "(none)");
    if (backend == m->backend) {
        m->owns_backend = m->owns_backend || owned;
        return 0;
    }
    AHA_TRY(m->backend->sync(m->backend));
    if (m->owns_backend) aha_backend_free(m->backend);
    m->backend = backend;
    m->owns_backend = owned;
    return 0;
}

int aha_model_alloc_grads(AhaModel *m) {
    if (m->grads.memory) return 0;
    return alloc_arena(m->backend, &m->cfg, &m->grads, NULL);
}

void aha_model_zero_grads(AhaModel *m) {
    if (m->grads.memory) m->backend->zero(m->backend, m->grads.memory, m->grads.count * sizeof(float));
}

int aha_model_num_tensors(const AhaModel *m) { return m->num_tensors; }

const AhaTensor *aha_model_tensor(const AhaModel *m, int i) {
    if (i < 0 || i >= m->num_tensors) return NULL;
    return &m->tensors[i];
}

const AhaTensor *aha_model_find_tensor(const AhaModel *m, const char *name) {
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

int aha_model_copy_params(AhaModel *dst, const AhaModel *src) {
    AHA_REQUIRE(dst->params.count == src->params.count &&
                    memcmp(&dst->cfg, &src->cfg, sizeof dst->cfg) == 0,
                "copy_params: the two models have different configs");
    AHA_REQUIRE(strcmp(dst->backend->name, src->backend->name) == 0,
                "copy_params: a model on %s cannot take parameters from one on %s",
                dst->backend->name, src->backend->name);
    AHA_TRY(src->backend->sync(src->backend));
    dst->backend->copy(dst->backend, dst->params.memory, src->params.memory,
                       src->params.count * sizeof(float));
    return dst->backend->sync(dst->backend);
}

/* splitmix64: a small generator with a well-mixed output for any seed */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Values are made on the host a tensor at a time and uploaded (on the CPU backends that is
 * one memcpy per tensor). */
int aha_model_init_random(AhaModel *m, uint64_t seed, float std) {
    uint64_t state = seed;
    size_t largest = 0;
    for (int i = 0; i < m->num_tensors; i++)
        if (m->tensors[i].numel > largest) largest = m->tensors[i].numel;
    float *host = aha_malloc(largest * sizeof(float));
    if (host == NULL) return aha_error_prefix("random initialization");
    for (int i = 0; i < m->num_tensors; i++) {
        AhaTensor *t = &m->tensors[i];
        size_t len = strlen(t->name);
        int is_bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
        int is_norm = strstr(t->name, "norm.weight") != NULL;
        for (size_t j = 0; j < t->numel; j++) {
            if (is_bias) host[j] = 0.0f;
            else if (is_norm) host[j] = 1.0f;
            else {
                double u1 = uniform01(&state), u2 = uniform01(&state);
                host[j] = (float)(std * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
            }
        }
        if (m->backend->upload(m->backend, t->data, host, t->numel * sizeof(float)) != 0) {
            free(host);
            return aha_error_prefix("random initialization of %s", t->name);
        }
    }
    free(host);
    return 0;
}
