/* Saving an AhaModel as a Hugging Face model directory: config.json, model.safetensors (the
 * source's names, expert layout and dtype), and the source's tokenizer files. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/fs.h"
#include "aha/model_io.h"

#define PATH_CAP 4096

static int join(char *out, const char *dir, const char *name) {
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    AHA_REQUIRE(n > 0 && n < PATH_CAP, "path %s/%s is too long", dir, name);
    return 0;
}


static int is_expert_tensor(const char *name, int *layer, int *expert, int *which) {
    int n = 0;
    if (sscanf(name, "model.layers.%d.mlp.experts.%d.%n", layer, expert, &n) != 2 || n == 0)
        return 0;
    *which = strcmp(name + n, "gate_proj.weight") == 0 ? 0
             : strcmp(name + n, "up_proj.weight") == 0 ? 1
             : strcmp(name + n, "down_proj.weight") == 0 ? 2 : -1;
    return *which >= 0;
}

/* The fused layout gathers a layer's experts from consecutive table entries. */
static int check_order(const AhaTensor *t, int layer, int expert, int which) {
    int l, e, w;
    AHA_REQUIRE(t && is_expert_tensor(t->name, &l, &e, &w) && l == layer && e == expert &&
                    w == which,
                "the model's tensor table does not list layer %d's experts in the order "
                "gate_proj[0..E), up_proj[0..E), down_proj[0..E)", layer);
    return 0;
}

/* The safetensors entries of the model in its table order; experts either per expert or, for
 * the fused layout, two tensors per layer whose parts point at the per-expert arrays. */
typedef struct {
    AhaSafetensorsEntry *entries;
    size_t count;
    char (*names)[160];
    AhaSafetensorsPart *parts;
} Plan;

static void plan_free(Plan *p) {
    free(p->entries);
    free(p->names);
    free(p->parts);
}

static int plan_entries(Plan *plan, const AhaModel *m, AhaExpertLayout layout, AhaDtype dtype) {
    const AhaModelConfig *c = &m->cfg;
    int n = aha_model_num_tensors(m);
    plan->entries = aha_calloc((size_t)n, sizeof *plan->entries);
    plan->names = aha_calloc((size_t)n, sizeof *plan->names);
    plan->parts = aha_calloc((size_t)n, sizeof *plan->parts);
    AHA_CHECK_ALLOC(plan->entries);
    AHA_CHECK_ALLOC(plan->names);
    AHA_CHECK_ALLOC(plan->parts);
    size_t used_parts = 0;
    int64_t E = c->num_experts, I = c->moe_intermediate_size, H = c->hidden_size;
    for (int i = 0; i < n; i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        AhaSafetensorsEntry *e = &plan->entries[plan->count];
        char *name = plan->names[plan->count];
        int layer, expert, which;
        if (layout == AHA_EXPERT_LAYOUT_FUSED && is_expert_tensor(t->name, &layer, &expert, &which)) {
            /* The table holds gate_0..gate_{E-1}, up_0.., down_0..: gate_up interleaves
             * gate_e and up_e, so its parts are gathered when the first gate is reached. */
            if (which == 1 || expert != 0) continue;
            e->dtype = dtype;
            e->ndim = 3;
            e->shape[0] = E;
            e->parts = &plan->parts[used_parts];
            if (which == 0) {
                snprintf(name, 160, "model.layers.%d.mlp.experts.gate_up_proj", layer);
                e->shape[1] = 2 * I;
                e->shape[2] = H;
                for (int x = 0; x < E; x++) {
                    const AhaTensor *gate = aha_model_tensor(m, i + x);
                    const AhaTensor *up = aha_model_tensor(m, i + (int)E + x);
                    AHA_TRY(check_order(gate, layer, x, 0));
                    AHA_TRY(check_order(up, layer, x, 1));
                    plan->parts[used_parts++] = (AhaSafetensorsPart){gate->data, gate->numel};
                    plan->parts[used_parts++] = (AhaSafetensorsPart){up->data, up->numel};
                }
            } else {
                snprintf(name, 160, "model.layers.%d.mlp.experts.down_proj", layer);
                e->shape[1] = H;
                e->shape[2] = I;
                for (int x = 0; x < E; x++) {
                    const AhaTensor *down = aha_model_tensor(m, i + x);
                    AHA_TRY(check_order(down, layer, x, 2));
                    plan->parts[used_parts++] = (AhaSafetensorsPart){down->data, down->numel};
                }
            }
            e->n_parts = (int)(&plan->parts[used_parts] - e->parts);
        } else {
            if (layout == AHA_EXPERT_LAYOUT_FUSED) snprintf(name, 160, "%s", t->name);
            else AHA_TRY(aha_checkpoint_tensor_name(c, t->name, name, 160));
            e->dtype = dtype;
            e->ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
            e->data = t->data;
        }
        e->name = name;
        plan->count++;
    }
    return 0;
}

/* config.json through the policy's writer, plus torch_dtype, replaced atomically. */
static int write_config(const AhaModel *m, const char *dir, AhaDtype dtype) {
    char path[PATH_CAP], tmp[PATH_CAP];
    AHA_TRY(join(path, dir, "config.json"));
    AHA_TRY(join(tmp, dir, ".config.json.tmp"));
    AHA_TRY(aha_model_config_save(&m->cfg, tmp));
    json_error_t jerr;
    json_t *root = json_load_file(tmp, 0, &jerr);
    AHA_REQUIRE(root, "%s: %s", tmp, jerr.text);
    int rc = json_object_set_new(root, "torch_dtype",
                                 json_string(dtype == AHA_DTYPE_BF16 ? "bfloat16" : "float32"));
    if (rc == 0) rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0) {
        unlink(tmp);
        return aha_errorf("%s: cannot write", tmp);
    }
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    AHA_CHECK_SYS(fd >= 0, "%s", tmp);
    rc = fsync(fd);
    close(fd);
    AHA_CHECK_SYS(rc == 0, "fsync %s", tmp);
    AHA_CHECK_SYS(rename(tmp, path) == 0, "renaming %s", tmp);
    return 0;
}

/* A sharded model left in dir by an earlier save would shadow model.safetensors: remove the
 * index first (the loader prefers it), then the shards it named. */
static int remove_stale_shards(const char *dir) {
    char index_path[PATH_CAP];
    AHA_TRY(join(index_path, dir, "model.safetensors.index.json"));
    json_t *index = json_load_file(index_path, 0, NULL);
    if (!index) {
        AHA_CHECK_SYS(unlink(index_path) == 0 || errno == ENOENT, "removing %s", index_path);
        return 0;
    }
    if (unlink(index_path) != 0) {
        int rc = aha_error_errno("removing %s", index_path);
        json_decref(index); /* not leaked on this path */
        return rc;
    }
    const char *key;
    json_t *file;
    json_object_foreach(json_object_get(index, "weight_map"), key, file) {
        const char *shard = json_string_value(file);
        char path[PATH_CAP];
        if (!shard || strchr(shard, '/') || shard[0] == '.' ||
            strcmp(shard, "model.safetensors") == 0 || join(path, dir, shard) != 0)
            continue;
        unlink(path); /* listed many times: only the first unlink finds it */
    }
    json_decref(index);
    return 0;
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    AHA_CHECK_SYS(in, "opening %s", from);
    char tmp[PATH_CAP];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *out = n > 0 && n < PATH_CAP ? fopen(tmp, "wb") : NULL;
    if (!out) {
        fclose(in);
        return aha_error_errno("creating %s", tmp);
    }
    char buf[1 << 15];
    size_t got;
    int rc = 0;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, got, out) != got) rc = -1;
    if (ferror(in)) rc = -1;
    fclose(in);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) rc = -1;
    if (fclose(out) != 0) rc = -1;
    if (rc == 0 && rename(tmp, to) != 0) rc = -1;
    if (rc != 0) {
        aha_error_errno("copying %s to %s", from, to);
        unlink(tmp);
    }
    return rc;
}

static const char *const tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "generation_config.json",
    "special_tokens_map.json", "vocab.json", "merges.txt",
};

static int copy_tokenizer_files(const char *from_dir, const char *to_dir) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!from_dir[0] || !realpath(from_dir, a)) return 0; /* the source is gone: nothing to copy */
    AHA_CHECK_SYS(realpath(to_dir, b), "%s", to_dir);
    if (strcmp(a, b) == 0) return 0;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
        char from[PATH_CAP], to[PATH_CAP];
        AHA_TRY(join(from, from_dir, tokenizer_files[i]));
        AHA_TRY(join(to, to_dir, tokenizer_files[i]));
        if (access(from, F_OK) == 0) AHA_TRY(copy_file(from, to));
    }
    return 0;
}

static int save_dir(const AhaModel *m, const char *dir, const AhaModelSource *source,
                    AhaDtype dtype) {
    AhaExpertLayout layout = source ? source->layout : AHA_EXPERT_LAYOUT_PER_EXPERT;
    if (dtype == AHA_DTYPE_AS_SOURCE)
        dtype = source && source->dtype == AHA_DTYPE_BF16 ? AHA_DTYPE_BF16 : AHA_DTYPE_F32;
    AHA_REQUIRE(dtype == AHA_DTYPE_F32 || dtype == AHA_DTYPE_BF16,
                "can save F32 or BF16 weights, not %s", aha_dtype_name(dtype));
    AHA_TRY(aha_mkdir_p(dir));
    Plan plan = {0};
    char path[PATH_CAP];
    int rc = plan_entries(&plan, m, layout, dtype);
    if (rc == 0) rc = join(path, dir, "model.safetensors");
    static const char *const metadata[] = {"format", "pt", NULL};
    if (rc == 0) rc = aha_safetensors_write(path, plan.entries, plan.count, metadata);
    plan_free(&plan);
    AHA_TRY(rc);
    AHA_TRY(write_config(m, dir, dtype));
    AHA_TRY(remove_stale_shards(dir));
    if (source) AHA_TRY(copy_tokenizer_files(source->dir, dir));
    return 0;
}

int aha_model_save_dir(const AhaModel *m, const char *dir, const AhaModelSource *source,
                       AhaDtype dtype) {
    /* the writer reads the tensors in place (a device backend would download them first) */
    AHA_REQUIRE(m->backend->host_memory,
                "saving the model to %s: the %s backend's memory is not host memory, and saving "
                "from it is not implemented", dir, m->backend->name);
    AHA_TRY(m->backend->sync(m->backend));
    if (save_dir(m, dir, source, dtype) != 0) return aha_error_prefix("saving the model to %s", dir);
    return 0;
}
