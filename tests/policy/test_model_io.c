/* Hugging Face model directories: loading every fixture architecture and layout (per expert,
 * fused, Mixtral names, bf16, sharded), saving with the source's names, layout and dtype,
 * tokenizer files carried over, and clear errors for directories that do not fit. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "aha/error.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/safetensors.h"
#include "policy/st_test_util.h"

#define FIXTURES AHA_SOURCE_DIR "/tests/fixtures/policy"

static char tmpdir[64];

static int setup(void **state) {
    (void)state;
    return make_temp_dir(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

static AhaModel *load_ok(const char *dir, AhaModelSource *source) {
    AhaModel *m = aha_model_load_dir(dir, source);
    if (!m) fail_msg("loading %s: %s", dir, aha_error_message());
    return m;
}

/* Every model tensor equals the file tensor of the same (hub) name, optionally rounded to
 * bf16 first. */
static void assert_matches_file(const AhaModel *m, const char *file, int round_bf16) {
    AhaSafetensorsFile *f = aha_safetensors_open(file);
    assert_non_null(f);
    assert_int_equal(aha_safetensors_count(f), aha_model_num_tensors(m));
    for (int i = 0; i < aha_model_num_tensors(m); i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        char name[160];
        assert_int_equal(aha_checkpoint_tensor_name(&m->cfg, t->name, name, sizeof name), 0);
        const AhaSafetensor *ft = aha_safetensors_find(f, name);
        if (!ft) fail_msg("%s has no '%s'", file, name);
        float *want = malloc(ft->numel * sizeof *want);
        assert_int_equal(ft->numel, t->numel);
        assert_int_equal(aha_safetensor_to_f32(ft, want), 0);
        for (size_t j = 0; j < t->numel; j++) {
            float w = round_bf16 ? aha_bf16_to_f32(aha_f32_to_bf16(want[j])) : want[j];
            if (t->data[j] != w) fail_msg("%s[%zu]: %g != %g", t->name, j, t->data[j], w);
        }
        free(want);
    }
    aha_safetensors_close(f);
}

static void test_load_every_architecture(void **state) {
    (void)state;
    const char *archs[] = {"qwen3_moe", "qwen2_moe", "olmoe", "mixtral"};
    for (int a = 0; a < 4; a++) {
        char dir[256], file[300];
        snprintf(dir, sizeof dir, FIXTURES "/%s", archs[a]);
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        AhaModelSource src;
        AhaModel *m = load_ok(dir, &src);
        assert_string_equal(m->cfg.model_type, archs[a]);
        assert_int_equal(src.dtype, AHA_DTYPE_F32);
        assert_int_equal(src.layout, AHA_EXPERT_LAYOUT_PER_EXPERT);
        assert_int_equal(src.n_files, 1);
        assert_string_equal(src.dir, dir);
        assert_matches_file(m, file, 0);
        aha_model_free(m);
    }
}

static void test_mixtral_names(void **state) {
    (void)state;
    AhaModel *m = load_ok(FIXTURES "/mixtral", NULL);
    char name[160];
    assert_int_equal(aha_checkpoint_tensor_name(&m->cfg, "model.layers.1.mlp.experts.3.up_proj.weight",
                                                name, sizeof name), 0);
    assert_string_equal(name, "model.layers.1.block_sparse_moe.experts.3.w3.weight");
    assert_int_equal(aha_checkpoint_tensor_name(&m->cfg, "model.layers.0.mlp.gate.weight", name,
                                                sizeof name), 0);
    assert_string_equal(name, "model.layers.0.block_sparse_moe.gate.weight");
    assert_int_equal(aha_checkpoint_tensor_name(&m->cfg, "model.layers.0.self_attn.q_proj.weight",
                                                name, sizeof name), 0);
    assert_string_equal(name, "model.layers.0.self_attn.q_proj.weight");
    aha_model_free(m);
}

static void test_fused_bf16_and_sharded_bf16(void **state) {
    (void)state;
    AhaModelSource src;
    AhaModel *m = load_ok(FIXTURES "/qwen3_moe_fused_bf16", &src);
    assert_int_equal(src.dtype, AHA_DTYPE_BF16);
    assert_int_equal(src.layout, AHA_EXPERT_LAYOUT_FUSED);
    /* The same weights as the fp32 fixture, rounded to bf16: the fused slices land on the
     * right experts. */
    assert_matches_file(m, FIXTURES "/qwen3_moe/model.safetensors", 1);
    aha_model_free(m);

    m = load_ok(FIXTURES "/qwen2_moe_sharded_bf16", &src);
    assert_int_equal(src.dtype, AHA_DTYPE_BF16);
    assert_int_equal(src.layout, AHA_EXPERT_LAYOUT_PER_EXPERT);
    assert_int_equal(src.n_files, 3);
    assert_matches_file(m, FIXTURES "/qwen2_moe/model.safetensors", 1);
    aha_model_free(m);
}

/* The set of tensor names and dtypes of a file, as one sorted string. */
static char *describe_file(const char *path) {
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    if (!f) fail_msg("%s", aha_error_message());
    size_t n = aha_safetensors_count(f);
    const char **names = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = aha_safetensors_tensor(f, i)->name;
    for (size_t i = 1; i < n; i++) /* insertion sort: a few dozen names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *x = names[j];
            names[j] = names[j - 1];
            names[j - 1] = x;
        }
    size_t cap = 64 * n + 1, used = 0;
    char *out = calloc(cap, 1);
    for (size_t i = 0; i < n; i++) {
        const AhaSafetensor *t = aha_safetensors_find(f, names[i]);
        used += (size_t)snprintf(out + used, cap - used, "%s:%s;", t->name, aha_dtype_name(t->dtype));
        assert_true(used < cap);
    }
    free(names);
    aha_safetensors_close(f);
    return out;
}

static void test_save_keeps_names_layout_and_dtype(void **state) {
    (void)state;
    struct {
        const char *fixture;
        AhaDtype dtype;
    } cases[] = {
        {"mixtral", AHA_DTYPE_AS_SOURCE},              /* block_sparse_moe names, F32 */
        {"qwen3_moe_fused_bf16", AHA_DTYPE_AS_SOURCE}, /* fused, BF16 in -> BF16 out */
        {"qwen2_moe_sharded_bf16", AHA_DTYPE_AS_SOURCE},
        {"qwen2_moe", AHA_DTYPE_AS_SOURCE},
    };
    for (int c = 0; c < 4; c++) {
        char src_dir[256], out_dir[256], path[300], orig[300];
        snprintf(src_dir, sizeof src_dir, FIXTURES "/%s", cases[c].fixture);
        snprintf(out_dir, sizeof out_dir, "%s/save_%d/nested", tmpdir, c);
        AhaModelSource src;
        AhaModel *m = load_ok(src_dir, &src);
        if (aha_model_save_dir(m, out_dir, &src, cases[c].dtype) != 0)
            fail_msg("%s", aha_error_message());
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        char *saved = describe_file(path);
        if (src.n_files == 1) {
            snprintf(orig, sizeof orig, "%s/model.safetensors", src_dir);
            char *want = describe_file(orig);
            assert_string_equal(saved, want);
            free(want);
        } else {
            assert_null(strstr(saved, ":F32;"));
        }
        free(saved);
        /* It loads back to identical weights with the same source description. */
        AhaModelSource again;
        AhaModel *back = load_ok(out_dir, &again);
        assert_int_equal(again.dtype, src.dtype);
        assert_int_equal(again.layout, src.layout);
        assert_memory_equal(back->params.memory, m->params.memory, m->params.count * sizeof(float));
        assert_int_equal(memcmp(&back->cfg, &m->cfg, sizeof m->cfg), 0);
        snprintf(path, sizeof path, "%s/config.json", out_dir);
        json_t *cfg = json_load_file(path, 0, NULL);
        assert_non_null(cfg);
        assert_string_equal(json_string_value(json_object_get(cfg, "torch_dtype")),
                            src.dtype == AHA_DTYPE_BF16 ? "bfloat16" : "float32");
        json_decref(cfg);
        aha_model_free(back);
        aha_model_free(m);
    }
}

static void test_save_f32_explicitly_and_without_source(void **state) {
    (void)state;
    AhaModelSource src;
    AhaModel *m = load_ok(FIXTURES "/qwen3_moe_fused_bf16", &src);
    char out[256], path[300];
    snprintf(out, sizeof out, "%s/f32", tmpdir);
    assert_int_equal(aha_model_save_dir(m, out, &src, AHA_DTYPE_F32), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    char *d = describe_file(path);
    assert_non_null(strstr(d, "model.layers.0.mlp.experts.gate_up_proj:F32;"));
    free(d);
    /* Without a source: per-expert hub names, F32. */
    snprintf(out, sizeof out, "%s/nosource", tmpdir);
    assert_int_equal(aha_model_save_dir(m, out, NULL, AHA_DTYPE_AS_SOURCE), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    d = describe_file(path);
    assert_non_null(strstr(d, "model.layers.0.mlp.experts.3.down_proj.weight:F32;"));
    assert_null(strstr(d, "gate_up_proj"));
    free(d);
    assert_int_equal(aha_model_save_dir(m, out, NULL, AHA_DTYPE_F16), -1);
    assert_non_null(strstr(aha_error_message(), "can save F32 or BF16 weights, not F16"));
    aha_model_free(m);
}

/* Copies a fixture directory's files into dst (flat). */
static void copy_dir(const char *src, const char *dst) {
    assert_int_equal(mkdir(dst, 0755), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char from[600], to[600];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        size_t n;
        void *bytes = read_bytes(from, &n);
        assert_non_null(bytes);
        assert_int_equal(write_bytes(to, bytes, n), 0);
        free(bytes);
    }
    closedir(d);
}

static void test_tokenizer_files_and_stale_shards(void **state) {
    (void)state;
    char src_dir[256], out_dir[256], path[600];
    snprintf(src_dir, sizeof src_dir, "%s/with_tokenizer", tmpdir);
    copy_dir(FIXTURES "/qwen2_moe_sharded_bf16", src_dir);
    const char *tok = "{\"model\":{\"type\":\"BPE\"}}";
    const char *gen = "{\"eos_token_id\":2}";
    snprintf(path, sizeof path, "%s/tokenizer.json", src_dir);
    assert_int_equal(write_bytes(path, tok, strlen(tok)), 0);
    snprintf(path, sizeof path, "%s/generation_config.json", src_dir);
    assert_int_equal(write_bytes(path, gen, strlen(gen)), 0);

    AhaModelSource src;
    AhaModel *m = load_ok(src_dir, &src);
    snprintf(out_dir, sizeof out_dir, "%s/trained", tmpdir);
    assert_int_equal(aha_model_save_dir(m, out_dir, &src, AHA_DTYPE_AS_SOURCE), 0);
    size_t n;
    snprintf(path, sizeof path, "%s/tokenizer.json", out_dir);
    char *bytes = read_bytes(path, &n);
    assert_non_null(bytes);
    assert_int_equal(n, strlen(tok));
    assert_memory_equal(bytes, tok, n);
    free(bytes);
    snprintf(path, sizeof path, "%s/generation_config.json", out_dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", out_dir);
    assert_int_equal(access(path, F_OK), -1); /* absent in the source: not invented */
    /* config.json, model.safetensors, tokenizer.json, generation_config.json */
    assert_int_equal(count_dir_entries(out_dir), 4);

    /* Saving over the sharded source replaces the shards with one file. */
    assert_int_equal(aha_model_save_dir(m, src_dir, &src, AHA_DTYPE_AS_SOURCE), 0);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", src_dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/model-00001-of-00003.safetensors", src_dir);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_dir_entries(src_dir), 4);
    AhaModelSource again;
    AhaModel *back = load_ok(src_dir, &again);
    assert_int_equal(again.n_files, 1);
    assert_memory_equal(back->params.memory, m->params.memory, m->params.count * sizeof(float));
    aha_model_free(back);
    aha_model_free(m);
}

/* A copy of the qwen3_moe fixture whose model.safetensors is rewritten by edit(). */
typedef void (*EditFn)(AhaSafetensorsEntry *entries, size_t *count);

static void make_edited(const char *dir, EditFn edit) {
    copy_dir(FIXTURES "/qwen3_moe", dir);
    AhaModel *m = load_ok(FIXTURES "/qwen3_moe", NULL);
    size_t n = (size_t)aha_model_num_tensors(m);
    AhaSafetensorsEntry *entries = calloc(n + 1, sizeof *entries);
    for (size_t i = 0; i < n; i++) {
        const AhaTensor *t = aha_model_tensor(m, (int)i);
        entries[i] = (AhaSafetensorsEntry){.name = t->name, .dtype = AHA_DTYPE_F32,
                                           .ndim = t->ndim, .data = t->data};
        for (int d = 0; d < t->ndim; d++) entries[i].shape[d] = t->shape[d];
    }
    edit(entries, &n);
    char path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(aha_safetensors_write(path, entries, n, NULL), 0);
    free(entries);
    aha_model_free(m);
}

static void drop_q_proj(AhaSafetensorsEntry *e, size_t *n) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(e[i].name, "model.layers.2.self_attn.q_proj.weight") == 0) {
            memmove(&e[i], &e[i + 1], (*n - i - 1) * sizeof *e);
            (*n)--;
            return;
        }
}

static float extra_data[16];

static void add_extra(AhaSafetensorsEntry *e, size_t *n) {
    e[*n] = (AhaSafetensorsEntry){.name = "model.layers.0.mlp.experts.9.gate_proj.weight",
                                  .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {16},
                                  .data = extra_data};
    (*n)++;
}

static void add_inv_freq(AhaSafetensorsEntry *e, size_t *n) {
    e[*n] = (AhaSafetensorsEntry){.name = "model.layers.0.self_attn.rotary_emb.inv_freq",
                                  .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {4},
                                  .data = extra_data};
    (*n)++;
}

static void drop_and_add(AhaSafetensorsEntry *e, size_t *n) {
    drop_q_proj(e, n);
    add_extra(e, n);
}

static void transpose_o_proj(AhaSafetensorsEntry *e, size_t *n) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(e[i].name, "model.layers.0.self_attn.o_proj.weight") == 0) {
            int64_t x = e[i].shape[0];
            e[i].shape[0] = e[i].shape[1];
            e[i].shape[1] = x;
        }
}

static void test_errors_name_the_tensor(void **state) {
    (void)state;
    struct {
        EditFn edit;
        const char *expect;
    } cases[] = {
        {drop_q_proj, "1 tensors missing: 'model.layers.2.self_attn.q_proj.weight'"},
        {add_extra, "1 unexpected tensors: 'model.layers.0.mlp.experts.9.gate_proj.weight'"},
        {transpose_o_proj,
         "tensor 'model.layers.0.self_attn.o_proj.weight' has shape [32, 16], the config implies [16, 32]"},
    };
    for (int c = 0; c < 3; c++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/edited_%d", tmpdir, c);
        make_edited(dir, cases[c].edit);
        aha_error_clear();
        AhaModel *m = aha_model_load_dir(dir, NULL);
        if (m || !strstr(aha_error_message(), cases[c].expect) || !strstr(aha_error_message(), dir))
            fail_msg("case %d: expected '%s', got %s", c, cases[c].expect,
                     m ? "success" : aha_error_message());
    }
    /* A rotary inv_freq buffer from an old checkpoint is ignored. */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/inv_freq", tmpdir);
    make_edited(dir, add_inv_freq);
    AhaModel *m = load_ok(dir, NULL);
    aha_model_free(m);

    /* Weights of another architecture: the first misshapen tensor is named. */
    snprintf(dir, sizeof dir, "%s/mismatch", tmpdir);
    copy_dir(FIXTURES "/mixtral", dir);
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *cfg = read_bytes(FIXTURES "/qwen3_moe/config.json", &n);
    assert_int_equal(write_bytes(path, cfg, n), 0);
    free(cfg);
    assert_null(aha_model_load_dir(dir, NULL));
    assert_non_null(strstr(aha_error_message(),
                           "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [16, 16]"));
    /* Missing and unexpected names together: both lists, and a hint. */
    snprintf(dir, sizeof dir, "%s/both", tmpdir);
    make_edited(dir, drop_and_add);
    assert_null(aha_model_load_dir(dir, NULL));
    assert_non_null(strstr(aha_error_message(), "1 tensors missing ('model.layers.2.self_attn."
                                                "q_proj.weight') and 1 unexpected ('model.layers.0."
                                                "mlp.experts.9.gate_proj.weight'); is this a "
                                                "qwen3_moe checkpoint?"));

    /* No config.json; no weights; an unsupported dtype. */
    snprintf(dir, sizeof dir, "%s/empty", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_null(aha_model_load_dir(dir, NULL));
    assert_non_null(strstr(aha_error_message(), "config.json"));
    snprintf(path, sizeof path, "%s/config.json", dir);
    cfg = read_bytes(FIXTURES "/qwen3_moe/config.json", &n);
    assert_int_equal(write_bytes(path, cfg, n), 0);
    free(cfg);
    assert_null(aha_model_load_dir(dir, NULL));
    assert_non_null(strstr(aha_error_message(), "no model.safetensors"));
}

static void test_unsupported_dtype_is_named(void **state) {
    (void)state;
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/int_weights", tmpdir);
    copy_dir(FIXTURES "/qwen3_moe", dir);
    /* Rewrite the header of model.safetensors so one F32 tensor claims to be I32 (same size). */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n;
    char *bytes = read_bytes(path, &n);
    uint64_t hlen;
    memcpy(&hlen, bytes, 8);
    char *at = strstr(bytes + 8, "\"model.norm.weight\":{\"dtype\":\"F32\"");
    assert_non_null(at);
    assert_true(at < bytes + 8 + hlen);
    memcpy(strstr(at, "F32"), "I32", 3);
    assert_int_equal(write_bytes(path, bytes, n), 0);
    free(bytes);
    assert_null(aha_model_load_dir(dir, NULL));
    assert_non_null(strstr(aha_error_message(), "tensor 'model.norm.weight' has dtype I32"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_every_architecture),
        cmocka_unit_test(test_mixtral_names),
        cmocka_unit_test(test_fused_bf16_and_sharded_bf16),
        cmocka_unit_test(test_save_keeps_names_layout_and_dtype),
        cmocka_unit_test(test_save_f32_explicitly_and_without_source),
        cmocka_unit_test(test_tokenizer_files_and_stale_shards),
        cmocka_unit_test(test_errors_name_the_tensor),
        cmocka_unit_test(test_unsupported_dtype_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
