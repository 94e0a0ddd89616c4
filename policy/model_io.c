/* Loading a Hugging Face model directory into an AhaModel: config.json, then every tensor of
 * the model's table found in the safetensors (per-expert or fused experts, Mixtral names),
 * converted once into the float32 arena. */
#include "aha/model_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"

static int is_mixtral(const AhaModelConfig *cfg) { return strcmp(cfg->model_type, "mixtral") == 0; }

/* "model.layers.{l}.mlp.experts.{e}.{gate,up,down}_proj.weight" -> l, e, which (0, 1, 2). */
static int parse_expert_name(const char *name, int *layer, int *expert, int *which) {
    int n = 0;
    if (sscanf(name, "model.layers.%d.mlp.experts.%d.%n", layer, expert, &n) != 2 || n == 0)
        return 0;
    static const char *suffix[3] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(name + n, suffix[i]) == 0) {
            *which = i;
            return 1;
        }
    }
    return 0;
}

int aha_checkpoint_tensor_name(const AhaModelConfig *cfg, const char *model_name, char *out,
                               size_t cap) {
    int layer, expert, which, n = 0;
    int written;
    if (is_mixtral(cfg) && parse_expert_name(model_name, &layer, &expert, &which)) {
        static const char *w[3] = {"w1", "w3", "w2"};
        written = snprintf(out, cap, "model.layers.%d.block_sparse_moe.experts.%d.%s.weight",
                           layer, expert, w[which]);
    } else if (is_mixtral(cfg) && sscanf(model_name, "model.layers.%d.mlp.gate.weight%n", &layer,
                                         &n) == 1 && n > 0 && model_name[n] == '\0') {
        written = snprintf(out, cap, "model.layers.%d.block_sparse_moe.gate.weight", layer);
    } else {
        written = snprintf(out, cap, "%s", model_name);
    }
    AHA_REQUIRE(written >= 0 && (size_t)written < cap, "tensor name '%s' is too long", model_name);
    return 0;
}

/* Names collected for one error message: the first few, then a count. */
typedef struct {
    char text[1024];
    int count;
} NameList;

static void name_list_add(NameList *list, const char *name) {
    if (list->count < 6) {
        size_t used = strlen(list->text);
        snprintf(list->text + used, sizeof list->text - used, "%s'%s'", list->count ? ", " : "",
                 name);
    }
    list->count++;
}

static void name_list_finish(NameList *list) {
    if (list->count > 6) {
        size_t used = strlen(list->text);
        snprintf(list->text + used, sizeof list->text - used, " and %d more", list->count - 6);
    }
}

typedef struct {
    const AhaSafetensorsSet *set;
    unsigned char *used;      /* [set count]: the tensor fed the model */
    uint64_t dtype_bytes[AHA_DTYPE_COUNT];
    NameList missing;
    int fused_layers, per_expert_layers;
} Loader;

static size_t set_index(const Loader *ld, const AhaSafetensor *t) {
    size_t lo = 0, hi = aha_safetensors_set_count(ld->set);
    while (lo < hi) { /* the set is sorted by name */
        size_t mid = (lo + hi) / 2;
        int c = strcmp(aha_safetensors_set_tensor(ld->set, mid)->name, t->name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static void mark_used(Loader *ld, const AhaSafetensor *t) {
    size_t i = set_index(ld, t);
    if (!ld->used[i]) ld->dtype_bytes[t->dtype] += t->nbytes;
    ld->used[i] = 1;
}

static int shape_matches(const AhaSafetensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d]) return 0;
    return 1;
}

static void format_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(out + used, cap - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < cap) snprintf(out + used, cap - used, "]");
}

static int wrong_shape(const AhaSafetensor *t, int ndim, const int64_t *shape) {
    char want[96], got[96];
    format_shape(want, sizeof want, ndim, shape);
    format_shape(got, sizeof got, t->ndim, t->shape);
    return aha_errorf("%s: tensor '%s' has shape %s, the config implies %s", t->path, t->name,
                      got, want);
}

/* An expert tensor from the layer's fused gate_up_proj / down_proj, if the files have it.
 * Returns 1 when loaded, 0 when the layer is not fused, -1 on error. */
static int load_from_fused(Loader *ld, const AhaModel *m, const AhaTensor *dst, int layer,
                           int expert, int which) {
    const AhaModelConfig *c = &m->cfg;
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%s", layer,
             which == 2 ? "down_proj" : "gate_up_proj");
    const AhaSafetensor *t = aha_safetensors_set_find(ld->set, name);
    if (!t) return 0;
    int64_t E = c->num_experts, I = c->moe_intermediate_size, H = c->hidden_size;
    int64_t want_gate_up[3] = {E, 2 * I, H}, want_down[3] = {E, H, I};
    if (!shape_matches(t, 3, which == 2 ? want_down : want_gate_up))
        return wrong_shape(t, 3, which == 2 ? want_down : want_gate_up);
    uint64_t first = which == 2 ? (uint64_t)(expert * H * I)
                                : (uint64_t)(expert * 2 * I * H + (which == 1 ? I * H : 0));
    AHA_TRY(aha_safetensor_to_f32_range(t, first, dst->numel, dst->data));
    aha_safetensor_release(t);
    mark_used(ld, t);
    return 1;
}

static int load_tensor(Loader *ld, const AhaModel *m, const AhaTensor *dst) {
    int layer, expert, which;
    int is_expert = parse_expert_name(dst->name, &layer, &expert, &which);
    if (is_expert) {
        int rc = load_from_fused(ld, m, dst, layer, expert, which);
        if (rc != 0) {
            if (rc > 0 && expert == 0 && which == 0) ld->fused_layers++;
            return rc < 0 ? -1 : 0;
        }
    }
    char file_name[160];
    AHA_TRY(aha_checkpoint_tensor_name(&m->cfg, dst->name, file_name, sizeof file_name));
    const AhaSafetensor *t = aha_safetensors_set_find(ld->set, file_name);
    if (!t) t = aha_safetensors_set_find(ld->set, dst->name); /* Mixtral in transformers v5 names */
    if (!t) {
        name_list_add(&ld->missing, file_name);
        return 0;
    }
    if (is_expert && expert == 0 && which == 0) ld->per_expert_layers++;
    if (!shape_matches(t, dst->ndim, dst->shape)) return wrong_shape(t, dst->ndim, dst->shape);
    AHA_TRY(aha_safetensor_to_f32(t, dst->data));
    aha_safetensor_release(t);
    mark_used(ld, t);
    return 0;
}

static int ignorable(const AhaModel *m, const char *name) {
    size_t n = strlen(name);
    const char *inv = "rotary_emb.inv_freq";
    if (n >= strlen(inv) && strcmp(name + n - strlen(inv), inv) == 0) return 1;
    return m->cfg.tie_word_embeddings && strcmp(name, "lm_head.weight") == 0;
}

static int load_weights(AhaModel *m, const AhaSafetensorsSet *set, AhaModelSource *source) {
    Loader ld = {.set = set};
    ld.used = aha_calloc(aha_safetensors_set_count(set), 1);
    AHA_CHECK_ALLOC(ld.used);
    int rc = 0;
    for (int i = 0; i < aha_model_num_tensors(m) && rc == 0; i++)
        rc = load_tensor(&ld, m, aha_model_tensor(m, i));
    NameList unexpected = {0};
    for (size_t i = 0; i < aha_safetensors_set_count(set) && rc == 0; i++) {
        const AhaSafetensor *t = aha_safetensors_set_tensor(set, i);
        if (!ld.used[i] && !ignorable(m, t->name)) name_list_add(&unexpected, t->name);
    }
    free(ld.used);
    AHA_TRY(rc);
    name_list_finish(&ld.missing);
    name_list_finish(&unexpected);
    if (ld.missing.count && unexpected.count)
        return aha_errorf("%d tensors missing (%s) and %d unexpected (%s); is this a %s checkpoint?",
                          ld.missing.count, ld.missing.text, unexpected.count, unexpected.text,
                          m->cfg.model_type);
    AHA_REQUIRE(!ld.missing.count, "%d tensors missing: %s", ld.missing.count, ld.missing.text);
    AHA_REQUIRE(!unexpected.count, "%d unexpected tensors: %s", unexpected.count, unexpected.text);
    source->dtype = AHA_DTYPE_F32;
    for (int d = 0; d < AHA_DTYPE_COUNT; d++)
        if (ld.dtype_bytes[d] > ld.dtype_bytes[source->dtype]) source->dtype = (AhaDtype)d;
    source->layout = ld.fused_layers > ld.per_expert_layers ? AHA_EXPERT_LAYOUT_FUSED
                                                            : AHA_EXPERT_LAYOUT_PER_EXPERT;
    source->n_files = aha_safetensors_set_files(set);
    return 0;
}

AhaModel *aha_model_load_dir(const char *dir, AhaModelSource *source) {
    AhaModelSource local;
    if (!source) source = &local;
    memset(source, 0, sizeof *source);
    int n = snprintf(source->dir, sizeof source->dir, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof source->dir - 32) {
        aha_errorf("%s: directory name too long", dir);
        return NULL;
    }
    char config_path[sizeof source->dir];
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    AhaModelConfig cfg;
    if (aha_model_config_load(&cfg, config_path) != 0) return NULL;
    /* a "cpu" context of the model's own: the weights are read straight into its host
     * memory (aha_model_set_backend moves it to another CPU context) */
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (!m) {
        aha_error_prefix("%s", config_path);
        return NULL;
    }
    AhaSafetensorsSet *set = aha_safetensors_open_dir(dir);
    if (!set || load_weights(m, set, source) != 0) {
        aha_error_prefix("loading %s", dir);
        aha_safetensors_set_close(set);
        aha_model_free(m);
        return NULL;
    }
    aha_safetensors_set_close(set);
    return m;
}
