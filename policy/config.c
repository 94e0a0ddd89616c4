/* config.json <-> AhaModelConfig (jansson). Four Hugging Face model types map onto one set of
 * architecture-neutral fields; anything that would silently change the model is an error. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aha/error.h"
#include "aha/model.h"

typedef enum { QWEN3_MOE, QWEN2_MOE, OLMOE, MIXTRAL, UNKNOWN_TYPE } ModelType;

static ModelType model_type_of(const char *s) {
    if (strcmp(s, "qwen3_moe") == 0) return QWEN3_MOE;
    if (strcmp(s, "qwen2_moe") == 0) return QWEN2_MOE;
    if (strcmp(s, "olmoe") == 0) return OLMOE;
    if (strcmp(s, "mixtral") == 0) return MIXTRAL;
    return UNKNOWN_TYPE;
}

int aha_model_config_init(AhaModelConfig *cfg, const char *model_type) {
    ModelType type = model_type_of(model_type);
    AHA_REQUIRE(type != UNKNOWN_TYPE,
                "model_type '%s' is not supported (expected qwen3_moe, qwen2_moe, olmoe or mixtral)",
                model_type);
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", model_type);
    cfg->decoder_sparse_step = 1;
    cfg->rms_norm_eps = 1e-6f;
    cfg->rope_theta = 10000.0f;
    cfg->router_aux_loss_coef = 0.001f;
    cfg->initializer_range = 0.02f;
    cfg->max_position_embeddings = 32768;
    cfg->bos_token_id = -1;
    cfg->pad_token_id = -1;
    switch (type) {
    case QWEN3_MOE: cfg->qk_norm = AHA_QK_NORM_PER_HEAD; break;
    case QWEN2_MOE: cfg->qkv_bias = 1; break;
    case OLMOE:
        cfg->qk_norm = AHA_QK_NORM_FULL;
        cfg->rms_norm_eps = 1e-5f;
        cfg->router_aux_loss_coef = 0.01f;
        cfg->max_position_embeddings = 4096;
        break;
    case MIXTRAL:
        cfg->norm_topk_prob = 1;
        cfg->rms_norm_eps = 1e-5f;
        cfg->rope_theta = 1e6f;
        cfg->max_position_embeddings = 131072;
        break;
    case UNKNOWN_TYPE: break;
    }
    return 0;
}

int aha_model_layer_is_moe(const AhaModelConfig *cfg, int layer) {
    if (cfg->num_experts <= 0) return 0;
    for (int i = 0; i < cfg->num_mlp_only_layers; i++)
        if (cfg->mlp_only_layers[i] == layer) return 0;
    return (layer + 1) % cfg->decoder_sparse_step == 0;
}

int aha_model_config_validate(const AhaModelConfig *c) {
    AHA_REQUIRE(model_type_of(c->model_type) != UNKNOWN_TYPE, "model_type '%s' is not supported",
                c->model_type);
    struct { const char *name; int value; } positive[] = {
        {"vocab_size", c->vocab_size},         {"hidden_size", c->hidden_size},
        {"num_hidden_layers", c->num_layers},  {"num_attention_heads", c->num_heads},
        {"num_key_value_heads", c->num_kv_heads}, {"head_dim", c->head_dim},
        {"decoder_sparse_step", c->decoder_sparse_step},
    };
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
        AHA_REQUIRE(positive[i].value > 0, "%s: expected a positive integer, got %d",
                    positive[i].name, positive[i].value);
    struct { const char *name; int value, max; } bounded[] = {
        {"vocab_size", c->vocab_size, AHA_MAX_VOCAB},
        {"hidden_size", c->hidden_size, AHA_MAX_WIDTH},
        {"num_hidden_layers", c->num_layers, AHA_MAX_LAYERS},
        {"num_attention_heads", c->num_heads, AHA_MAX_HEADS},
        {"num_key_value_heads", c->num_kv_heads, AHA_MAX_HEADS},
        {"head_dim", c->head_dim, AHA_MAX_HEAD_DIM},
        {"intermediate_size", c->intermediate_size, AHA_MAX_WIDTH},
        {"moe_intermediate_size", c->moe_intermediate_size, AHA_MAX_WIDTH},
        {"shared_expert_intermediate_size", c->shared_expert_intermediate_size, AHA_MAX_WIDTH},
        {"num_experts", c->num_experts, AHA_MAX_EXPERTS},
        {"num_experts_per_tok", c->num_experts_per_tok, AHA_MAX_EXPERTS},
        {"decoder_sparse_step", c->decoder_sparse_step, AHA_MAX_LAYERS},
        {"max_position_embeddings", c->max_position_embeddings, AHA_MAX_POSITIONS},
    };
    for (size_t i = 0; i < sizeof bounded / sizeof bounded[0]; i++)
        AHA_REQUIRE(bounded[i].value <= bounded[i].max, "%s: %d exceeds the limit of %d", bounded[i].name,
                    bounded[i].value, bounded[i].max);
    AHA_REQUIRE(c->max_position_embeddings > 0,
                "max_position_embeddings: expected a positive integer (the context length), got %d",
                c->max_position_embeddings);
    AHA_REQUIRE(c->num_heads % c->num_kv_heads == 0,
                "num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
                c->num_heads, c->num_kv_heads);
    AHA_REQUIRE(c->head_dim % 2 == 0, "head_dim: RoPE needs an even head_dim, got %d", c->head_dim);
    AHA_REQUIRE(c->num_experts >= 0, "num_experts: expected >= 0, got %d", c->num_experts);
    AHA_REQUIRE(c->shared_expert_intermediate_size >= 0,
                "shared_expert_intermediate_size: expected >= 0, got %d",
                c->shared_expert_intermediate_size);
    int any_moe = 0, any_dense = 0;
    for (int l = 0; l < c->num_layers; l++) {
        if (aha_model_layer_is_moe(c, l)) any_moe = 1;
        else any_dense = 1;
    }
    for (int i = 0; i < c->num_mlp_only_layers; i++)
        AHA_REQUIRE(c->mlp_only_layers[i] >= 0 && c->mlp_only_layers[i] < c->num_layers,
                    "mlp_only_layers[%d]: layer %d does not exist (num_hidden_layers %d)", i,
                    c->mlp_only_layers[i], c->num_layers);
    if (any_moe) {
        AHA_REQUIRE(c->num_experts_per_tok > 0 && c->num_experts_per_tok <= c->num_experts,
                    "num_experts_per_tok: expected 1..num_experts (%d), got %d", c->num_experts,
                    c->num_experts_per_tok);
        AHA_REQUIRE(c->moe_intermediate_size > 0,
                    "moe_intermediate_size: expected a positive integer, got %d",
                    c->moe_intermediate_size);
    }
    if (any_dense)
        AHA_REQUIRE(c->intermediate_size > 0,
                    "intermediate_size: expected a positive integer (dense layers exist), got %d",
                    c->intermediate_size);
    AHA_REQUIRE(c->rms_norm_eps > 0 && isfinite(c->rms_norm_eps),
                "rms_norm_eps: expected a positive number");
    AHA_REQUIRE(c->rope_theta > 0 && isfinite(c->rope_theta), "rope_theta: expected a positive number");
    AHA_REQUIRE(c->num_eos >= 0 && c->num_eos <= AHA_MAX_EOS, "eos_token_id: at most %d ids",
                AHA_MAX_EOS);
    /* in double: each size is bounded, their products are not */
    double H = c->hidden_size, q = (double)c->num_heads * c->head_dim, kv = (double)c->num_kv_heads * c->head_dim;
    double per_layer = 4 * H + 2 * q * H + 2 * kv * H + 2 * (q + kv) + 3 * (double)c->intermediate_size * H +
                       (double)c->num_experts * H * (1 + 3 * (double)c->moe_intermediate_size) +
                       3 * (double)c->shared_expert_intermediate_size * H + H;
    double total = 2 * (double)c->vocab_size * H + H + c->num_layers * per_layer;
    AHA_REQUIRE(total <= (double)AHA_MAX_PARAMS, "the sizes make about %.3g parameters, more than the limit of %.3g",
                total, (double)AHA_MAX_PARAMS);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Loading */

static int get_int(json_t *root, const char *key, int *out, int required) {
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v)) {
        AHA_REQUIRE(!required, "%s: missing (expected an integer)", key);
        return 0;
    }
    AHA_REQUIRE(json_is_integer(v), "%s: expected an integer", key);
    json_int_t x = json_integer_value(v);
    AHA_REQUIRE(x >= -1 && x <= 1000000000, "%s: %lld is out of range", key, (long long)x);
    *out = (int)x;
    return 0;
}

static int get_float(json_t *root, const char *key, float *out) {
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v)) return 0;
    AHA_REQUIRE(json_is_number(v), "%s: expected a number", key);
    *out = (float)json_number_value(v);
    return 0;
}

static int get_bool(json_t *root, const char *key, int *out) {
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v)) return 0;
    AHA_REQUIRE(json_is_boolean(v), "%s: expected true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* A key whose presence with a value other than `allowed` (null/false/0 by default) would
 * change the model in a way aha does not implement. */
static int reject_truthy(json_t *root, const char *key, const char *why) {
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v) || json_is_false(v)) return 0;
    if (json_is_integer(v) && json_integer_value(v) == 0) return 0;
    if (json_is_real(v) && json_real_value(v) == 0.0) return 0;
    return aha_errorf("%s: %s is not supported", key, why);
}

static int load_rope(json_t *root, AhaModelConfig *cfg) {
    AHA_TRY(get_float(root, "rope_theta", &cfg->rope_theta));
    AHA_TRY(reject_truthy(root, "rope_scaling", "RoPE scaling"));
    json_t *rp = json_object_get(root, "rope_parameters");
    if (rp == NULL || json_is_null(rp)) return 0;
    AHA_REQUIRE(json_is_object(rp), "rope_parameters: expected an object");
    json_t *type = json_object_get(rp, "rope_type");
    if (type != NULL && !json_is_null(type)) {
        AHA_REQUIRE(json_is_string(type) && strcmp(json_string_value(type), "default") == 0,
                    "rope_parameters.rope_type: only \"default\" is supported");
    }
    const char *key;
    json_t *value;
    json_object_foreach(rp, key, value) {
        AHA_REQUIRE(strcmp(key, "rope_type") == 0 || strcmp(key, "rope_theta") == 0,
                    "rope_parameters.%s: not supported (only rope_theta with rope_type default)",
                    key);
    }
    if (get_float(rp, "rope_theta", &cfg->rope_theta) != 0)
        return aha_error_prefix("rope_parameters");
    return 0;
}

static int load_eos(json_t *root, AhaModelConfig *cfg) {
    json_t *v = json_object_get(root, "eos_token_id");
    cfg->num_eos = 0;
    if (v == NULL || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        cfg->eos_token_ids[cfg->num_eos++] = (int)json_integer_value(v);
        return 0;
    }
    AHA_REQUIRE(json_is_array(v), "eos_token_id: expected an integer or a list of integers");
    AHA_REQUIRE(json_array_size(v) <= AHA_MAX_EOS, "eos_token_id: at most %d ids", AHA_MAX_EOS);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        AHA_REQUIRE(json_is_integer(item), "eos_token_id[%zu]: expected an integer", i);
        cfg->eos_token_ids[cfg->num_eos++] = (int)json_integer_value(item);
    }
    return 0;
}

static int load_fields(json_t *root, AhaModelConfig *cfg) {
    AHA_REQUIRE(json_is_object(root), "expected a JSON object at the top level");
    json_t *mt = json_object_get(root, "model_type");
    AHA_REQUIRE(mt != NULL && json_is_string(mt), "model_type: missing (expected a string)");
    if (aha_model_config_init(cfg, json_string_value(mt)) != 0) return aha_error_prefix("model_type");
    ModelType type = model_type_of(cfg->model_type);

    json_t *act = json_object_get(root, "hidden_act");
    if (act != NULL && !json_is_null(act))
        AHA_REQUIRE(json_is_string(act) && strcmp(json_string_value(act), "silu") == 0,
                    "hidden_act: only \"silu\" is supported");
    AHA_TRY(reject_truthy(root, "use_sliding_window", "sliding-window attention"));
    if (type == MIXTRAL) AHA_TRY(reject_truthy(root, "sliding_window", "sliding-window attention"));
    AHA_TRY(reject_truthy(root, "attention_bias", "a bias on the attention projections"));
    AHA_TRY(reject_truthy(root, "clip_qkv", "clipping q/k/v"));
    AHA_TRY(reject_truthy(root, "router_jitter_noise", "router jitter"));
    AHA_TRY(load_rope(root, cfg));

    AHA_TRY(get_int(root, "vocab_size", &cfg->vocab_size, 1));
    AHA_TRY(get_int(root, "hidden_size", &cfg->hidden_size, 1));
    AHA_TRY(get_int(root, "num_hidden_layers", &cfg->num_layers, 1));
    AHA_TRY(get_int(root, "num_attention_heads", &cfg->num_heads, 1));
    cfg->num_kv_heads = cfg->num_heads;
    AHA_TRY(get_int(root, "num_key_value_heads", &cfg->num_kv_heads, 0));
    AHA_REQUIRE(cfg->num_heads > 0, "num_attention_heads: expected a positive integer");
    cfg->head_dim = cfg->hidden_size / cfg->num_heads;
    AHA_TRY(get_int(root, "head_dim", &cfg->head_dim, 0));
    AHA_TRY(get_int(root, "max_position_embeddings", &cfg->max_position_embeddings, 0));
    AHA_TRY(get_float(root, "rms_norm_eps", &cfg->rms_norm_eps));
    AHA_TRY(get_float(root, "router_aux_loss_coef", &cfg->router_aux_loss_coef));
    AHA_TRY(get_float(root, "initializer_range", &cfg->initializer_range));
    AHA_TRY(get_bool(root, "tie_word_embeddings", &cfg->tie_word_embeddings));
    AHA_TRY(get_int(root, "bos_token_id", &cfg->bos_token_id, 0));
    AHA_TRY(get_int(root, "pad_token_id", &cfg->pad_token_id, 0));
    AHA_TRY(load_eos(root, cfg));
    AHA_TRY(get_int(root, "num_experts_per_tok", &cfg->num_experts_per_tok, 1));
    /* transformers v5 writes num_local_experts for qwen3_moe; the hub files say num_experts */
    const char *experts_key = json_object_get(root, "num_experts") ? "num_experts"
                                                                   : "num_local_experts";
    AHA_TRY(get_int(root, experts_key, &cfg->num_experts, 1));

    if (type == MIXTRAL || type == OLMOE) {
        /* one expert width, every layer MoE */
        AHA_TRY(get_int(root, "intermediate_size", &cfg->moe_intermediate_size, 1));
        if (type == OLMOE) AHA_TRY(get_bool(root, "norm_topk_prob", &cfg->norm_topk_prob));
    } else {
        AHA_TRY(get_int(root, "intermediate_size", &cfg->intermediate_size, 0));
        AHA_TRY(get_int(root, "moe_intermediate_size", &cfg->moe_intermediate_size, 1));
        AHA_TRY(get_bool(root, "norm_topk_prob", &cfg->norm_topk_prob));
        AHA_TRY(get_int(root, "decoder_sparse_step", &cfg->decoder_sparse_step, 0));
        json_t *mlp_only = json_object_get(root, "mlp_only_layers");
        if (mlp_only != NULL && !json_is_null(mlp_only)) {
            AHA_REQUIRE(json_is_array(mlp_only), "mlp_only_layers: expected a list of integers");
            AHA_REQUIRE(json_array_size(mlp_only) <= AHA_MAX_LAYERS,
                        "mlp_only_layers: more than %d entries", AHA_MAX_LAYERS);
            size_t i;
            json_t *item;
            json_array_foreach(mlp_only, i, item) {
                AHA_REQUIRE(json_is_integer(item), "mlp_only_layers[%zu]: expected an integer", i);
                cfg->mlp_only_layers[cfg->num_mlp_only_layers++] = (int)json_integer_value(item);
            }
        }
        if (type == QWEN2_MOE) {
            AHA_TRY(get_bool(root, "qkv_bias", &cfg->qkv_bias));
            AHA_TRY(get_int(root, "shared_expert_intermediate_size",
                            &cfg->shared_expert_intermediate_size, 1));
        }
    }
    return aha_model_config_validate(cfg);
}

int aha_model_config_load(AhaModelConfig *cfg, const char *path) {
    struct stat st;
    AHA_CHECK_SYS(stat(path, &st) == 0, "%s: cannot open", path);
    AHA_REQUIRE(!S_ISDIR(st.st_mode), "%s: is a directory, expected a config.json file", path);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL && jerr.line < 1) return aha_errorf("%s: %s", path, jerr.text); /* not a syntax error */
    if (root == NULL) return aha_errorf("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    int rc = load_fields(root, cfg);
    json_decref(root);
    if (rc != 0) return aha_error_prefix("%s", path);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Saving */

/* The shortest decimal that reads back as the same float, so 1e-6f is written 1e-06. */
static json_t *json_float(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)f);
    for (int digits = 6; digits < 9; digits++) {
        char shorter[32];
        snprintf(shorter, sizeof shorter, "%.*g", digits, (double)f);
        if (strtof(shorter, NULL) == f) return json_real(strtod(shorter, NULL));
    }
    return json_real(strtod(buf, NULL));
}

static int set_new(json_t *root, const char *key, json_t *value) {
    AHA_REQUIRE(value != NULL, "config.json: out of memory building %s", key);
    AHA_REQUIRE(json_object_set_new(root, key, value) == 0, "config.json: cannot set %s", key);
    return 0;
}

/* json_array_append_new, checked (it fails on a NULL value, i.e. out of memory). */
static int append_new(json_t *array, json_t *value, const char *key) {
    AHA_REQUIRE(json_array_append_new(array, value) == 0, "config.json: out of memory building %s", key);
    return 0;
}

static int build_json(const AhaModelConfig *c, json_t *root) {
    ModelType type = model_type_of(c->model_type);
    static const char *arch[] = {"Qwen3MoeForCausalLM", "Qwen2MoeForCausalLM",
                                 "OlmoeForCausalLM", "MixtralForCausalLM"};
    json_t *archs = json_array();
    AHA_REQUIRE(archs != NULL, "config.json: out of memory");
    if (append_new(archs, json_string(arch[type]), "architectures") != 0) {
        json_decref(archs);
        return -1;
    }
    AHA_TRY(set_new(root, "architectures", archs));
    AHA_TRY(set_new(root, "model_type", json_string(c->model_type)));
    AHA_TRY(set_new(root, "vocab_size", json_integer(c->vocab_size)));
    AHA_TRY(set_new(root, "hidden_size", json_integer(c->hidden_size)));
    AHA_TRY(set_new(root, "num_hidden_layers", json_integer(c->num_layers)));
    AHA_TRY(set_new(root, "num_attention_heads", json_integer(c->num_heads)));
    AHA_TRY(set_new(root, "num_key_value_heads", json_integer(c->num_kv_heads)));
    AHA_TRY(set_new(root, "head_dim", json_integer(c->head_dim)));
    AHA_TRY(set_new(root, "hidden_act", json_string("silu")));
    AHA_TRY(set_new(root, "max_position_embeddings", json_integer(c->max_position_embeddings)));
    AHA_TRY(set_new(root, "rms_norm_eps", json_float(c->rms_norm_eps)));
    AHA_TRY(set_new(root, "rope_theta", json_float(c->rope_theta)));
    AHA_TRY(set_new(root, "initializer_range", json_float(c->initializer_range)));
    AHA_TRY(set_new(root, "router_aux_loss_coef", json_float(c->router_aux_loss_coef)));
    AHA_TRY(set_new(root, "tie_word_embeddings", json_boolean(c->tie_word_embeddings)));
    AHA_TRY(set_new(root, "num_experts_per_tok", json_integer(c->num_experts_per_tok)));
    AHA_TRY(set_new(root, type == MIXTRAL ? "num_local_experts" : "num_experts",
                    json_integer(c->num_experts)));
    AHA_TRY(set_new(root, "bos_token_id", c->bos_token_id >= 0 ? json_integer(c->bos_token_id)
                                                                : json_null()));
    AHA_TRY(set_new(root, "pad_token_id", c->pad_token_id >= 0 ? json_integer(c->pad_token_id)
                                                                : json_null()));
    json_t *eos = json_null();
    if (c->num_eos == 1) eos = json_integer(c->eos_token_ids[0]);
    if (c->num_eos > 1) {
        eos = json_array();
        AHA_REQUIRE(eos != NULL, "config.json: out of memory");
        for (int i = 0; i < c->num_eos; i++)
            if (append_new(eos, json_integer(c->eos_token_ids[i]), "eos_token_id") != 0) {
                json_decref(eos);
                return -1;
            }
    }
    AHA_TRY(set_new(root, "eos_token_id", eos));
    AHA_TRY(set_new(root, "use_cache", json_true()));
    if (type == MIXTRAL || type == OLMOE) {
        AHA_TRY(set_new(root, "intermediate_size", json_integer(c->moe_intermediate_size)));
        if (type == OLMOE) AHA_TRY(set_new(root, "norm_topk_prob", json_boolean(c->norm_topk_prob)));
        return 0;
    }
    AHA_TRY(set_new(root, "intermediate_size", json_integer(c->intermediate_size)));
    AHA_TRY(set_new(root, "moe_intermediate_size", json_integer(c->moe_intermediate_size)));
    AHA_TRY(set_new(root, "norm_topk_prob", json_boolean(c->norm_topk_prob)));
    AHA_TRY(set_new(root, "decoder_sparse_step", json_integer(c->decoder_sparse_step)));
    json_t *mlp_only = json_array();
    AHA_REQUIRE(mlp_only != NULL, "config.json: out of memory");
    for (int i = 0; i < c->num_mlp_only_layers; i++)
        if (append_new(mlp_only, json_integer(c->mlp_only_layers[i]), "mlp_only_layers") != 0) {
            json_decref(mlp_only);
            return -1;
        }
    AHA_TRY(set_new(root, "mlp_only_layers", mlp_only));
    AHA_TRY(set_new(root, "use_sliding_window", json_false()));
    if (type == QWEN3_MOE) AHA_TRY(set_new(root, "attention_bias", json_false()));
    if (type == QWEN2_MOE) {
        AHA_TRY(set_new(root, "qkv_bias", json_boolean(c->qkv_bias)));
        AHA_TRY(set_new(root, "shared_expert_intermediate_size",
                        json_integer(c->shared_expert_intermediate_size)));
    }
    return 0;
}

/* The architectures a model type can express: a config that needs a switch the type's
 * transformers class does not have cannot be saved as that type. */
static int check_expressible(const AhaModelConfig *c) {
    ModelType type = model_type_of(c->model_type);
    AhaQkNorm want_norm = type == QWEN3_MOE ? AHA_QK_NORM_PER_HEAD
                          : type == OLMOE   ? AHA_QK_NORM_FULL
                                            : AHA_QK_NORM_NONE;
    AHA_REQUIRE(c->qk_norm == want_norm, "qk_norm: %s cannot express this q/k norm", c->model_type);
    AHA_REQUIRE(!c->qkv_bias || type == QWEN2_MOE, "qkv_bias: %s has no q/k/v bias", c->model_type);
    AHA_REQUIRE(c->shared_expert_intermediate_size == 0 || type == QWEN2_MOE,
                "shared_expert_intermediate_size: %s has no shared expert", c->model_type);
    if (type == MIXTRAL)
        AHA_REQUIRE(c->norm_topk_prob, "norm_topk_prob: mixtral always renormalizes");
    if (type == MIXTRAL || type == OLMOE)
        AHA_REQUIRE(c->decoder_sparse_step == 1 && c->num_mlp_only_layers == 0,
                    "decoder_sparse_step/mlp_only_layers: %s has no dense layers", c->model_type);
    return 0;
}

int aha_model_config_save(const AhaModelConfig *cfg, const char *path) {
    if (aha_model_config_validate(cfg) != 0 || check_expressible(cfg) != 0)
        return aha_error_prefix("%s", path);
    json_t *root = json_object();
    AHA_CHECK_ALLOC(root);
    int rc = build_json(cfg, root);
    if (rc == 0 && json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
        rc = aha_error_errno("%s: cannot write", path);
    json_decref(root);
    if (rc != 0) return aha_error_prefix("%s", path);
    return 0;
}

size_t aha_model_config_num_params(const AhaModelConfig *c) {
    size_t H = c->hidden_size, V = c->vocab_size, q = (size_t)c->num_heads * c->head_dim,
           kv = (size_t)c->num_kv_heads * c->head_dim;
    size_t n = V * H * (c->tie_word_embeddings ? 1 : 2) + H;
    for (int l = 0; l < c->num_layers; l++) {
        n += 2 * H + q * H + 2 * kv * H + H * q;
        if (c->qkv_bias) n += q + 2 * kv;
        if (c->qk_norm == AHA_QK_NORM_PER_HEAD) n += 2 * (size_t)c->head_dim;
        if (c->qk_norm == AHA_QK_NORM_FULL) n += q + kv;
        if (aha_model_layer_is_moe(c, l)) {
            n += (size_t)c->num_experts * H + (size_t)c->num_experts * 3 * c->moe_intermediate_size * H;
            if (c->shared_expert_intermediate_size > 0)
                n += 3 * (size_t)c->shared_expert_intermediate_size * H + H;
        } else {
            n += 3 * (size_t)c->intermediate_size * H;
        }
    }
    return n;
}

size_t aha_model_config_active_params(const AhaModelConfig *c) {
    size_t n = aha_model_config_num_params(c);
    size_t unused = (size_t)(c->num_experts - c->num_experts_per_tok) * 3 *
                    c->moe_intermediate_size * c->hidden_size;
    for (int l = 0; l < c->num_layers; l++)
        if (aha_model_layer_is_moe(c, l)) n -= unused;
    return n;
}
