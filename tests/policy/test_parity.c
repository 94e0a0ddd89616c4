/* Parity with Hugging Face transformers: the fixtures of scripts/make_policy_fixtures.py
 * (tiny random qwen3_moe, qwen2_moe, olmoe, mixtral in fp32) loaded from their model
 * directories must give transformers' logits, loss, load-balancing loss and parameter
 * gradients for the same packed batch, to a relative error under 1e-4. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/optim.h"
#include "aha/safetensors.h"

#define FIXTURES AHA_SOURCE_DIR "/tests/fixtures/policy"
#define TOLERANCE 1e-4

typedef struct {
    int n_seqs, T, n_scored;
    int seq_start[8];
    int *tokens, *targets;
    double loss, aux_loss;
    json_t *root;
} Fixture;

static int *int_array(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int *out = calloc((size_t)*n + 1, sizeof *out);
    for (int i = 0; i < *n; i++) out[i] = (int)json_integer_value(json_array_get(a, (size_t)i));
    return out;
}

static void fixture_load(Fixture *fx, const char *arch) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "/%s/batch.json", arch);
    json_error_t jerr;
    fx->root = json_load_file(path, 0, &jerr);
    if (!fx->root) fail_msg("%s: %s", path, jerr.text);
    int n;
    int *starts = int_array(json_object_get(fx->root, "seq_start"), &n);
    assert_true(n >= 2 && n <= 8);
    memcpy(fx->seq_start, starts, sizeof(int) * (size_t)n);
    free(starts);
    fx->n_seqs = n - 1;
    fx->tokens = int_array(json_object_get(fx->root, "tokens"), &fx->T);
    fx->targets = int_array(json_object_get(fx->root, "targets"), &n);
    assert_int_equal(n, fx->T);
    fx->n_scored = (int)json_integer_value(json_object_get(fx->root, "n_scored"));
    fx->loss = json_real_value(json_object_get(fx->root, "loss"));
    fx->aux_loss = json_real_value(json_object_get(fx->root, "aux_loss"));
}

static void fixture_free(Fixture *fx) {
    free(fx->tokens);
    free(fx->targets);
    json_decref(fx->root);
}

/* max |got - want| / max |want|, with floor standing in for max |want| when that is smaller
 * (a tensor whose true gradient is zero or tiny, such as an expert no token chose). */
static double relative_error(const float *got, const float *want, size_t n, double floor) {
    double diff = 0, scale = floor;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)got[i] - want[i]));
        scale = fmax(scale, fabs((double)want[i]));
        if (isnan(got[i])) return INFINITY;
    }
    return scale > 0 ? diff / scale : diff;
}

static float *expected_tensor(const AhaSafetensorsFile *f, const char *name, size_t numel) {
    const AhaSafetensor *t = aha_safetensors_find(f, name);
    if (!t) fail_msg("expected.safetensors has no '%s'", name);
    assert_int_equal(t->numel, numel);
    float *out = malloc(numel * sizeof *out);
    assert_int_equal(aha_safetensor_to_f32(t, out), 0);
    return out;
}

static double max_abs_with_prefix(const AhaSafetensorsFile *f, const char *prefix) {
    double m = 0;
    for (size_t i = 0; i < aha_safetensors_count(f); i++) {
        const AhaSafetensor *t = aha_safetensors_tensor(f, i);
        if (strncmp(t->name, prefix, strlen(prefix)) != 0) continue;
        float *v = malloc(t->numel * sizeof *v + 1);
        assert_int_equal(aha_safetensor_to_f32(t, v), 0);
        for (uint64_t j = 0; j < t->numel; j++) m = fmax(m, fabs(v[j]));
        free(v);
    }
    return m;
}

/* Every parameter's gradient against prefix + its file name in expected.safetensors. */
static void check_grads(AhaModel *m, const AhaSafetensorsFile *expected, const char *prefix,
                        const char *arch) {
    double floor = 1e-3 * max_abs_with_prefix(expected, prefix), worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < aha_model_num_tensors(m); i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        char file_name[160], key[200];
        assert_int_equal(aha_checkpoint_tensor_name(&m->cfg, t->name, file_name, sizeof file_name), 0);
        snprintf(key, sizeof key, "%s%s", prefix, file_name);
        float *want = expected_tensor(expected, key, t->numel);
        double err = relative_error(m->grads.memory + t->offset, want, t->numel, floor);
        if (err > worst) {
            worst = err;
            worst_name = t->name;
        }
        if (err >= TOLERANCE) fail_msg("%s: %s relative error %.3g", arch, key, err);
        free(want);
    }
    print_message("%s: %s* worst relative error %.3g (%s)\n", arch, prefix, worst, worst_name);
}

/* Saves m under AHA_BUILD_DIR/parity_saved/<name>/model and, beside it, the logits aha
 * computes for the fixture batch after loading that directory back. The fixture script
 * (--check-saved) then loads the directory into transformers and compares. */
static void save_for_transformers(const char *name, const AhaModel *m, const AhaModelSource *source,
                                  AhaDtype dtype, const Fixture *fx) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, AHA_BUILD_DIR "/parity_saved/%s/model", name);
    if (aha_model_save_dir(m, dir, source, dtype) != 0) fail_msg("%s", aha_error_message());
    AhaModel *back = aha_model_load_dir(dir, NULL);
    if (!back) fail_msg("%s", aha_error_message());
    AhaBatch batch = {.n_seqs = fx->n_seqs, .seq_start = fx->seq_start, .tokens = fx->tokens};
    assert_int_equal(aha_model_forward(back, &batch), 0);
    float *logits = malloc((size_t)fx->T * (size_t)back->cfg.vocab_size * sizeof *logits);
    assert_int_equal(aha_model_logits(back, logits), 0);
    AhaSafetensorsEntry e = {.name = "logits", .dtype = AHA_DTYPE_F32, .ndim = 2,
                             .shape = {fx->T, back->cfg.vocab_size}, .data = logits};
    snprintf(path, sizeof path, AHA_BUILD_DIR "/parity_saved/%s/aha_logits.safetensors", name);
    assert_int_equal(aha_safetensors_write(path, &e, 1, NULL), 0);
    free(logits);
    aha_model_free(back);
}

static void check_arch(const char *arch, int with_aux_grads) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, FIXTURES "/%s", arch);
    AhaModelSource source;
    AhaModel *m = aha_model_load_dir(dir, &source);
    if (!m) fail_msg("%s", aha_error_message());
    assert_string_equal(m->cfg.model_type, arch);
    Fixture fx;
    fixture_load(&fx, arch);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    AhaSafetensorsFile *expected = aha_safetensors_open(path);
    assert_non_null(expected);

    AhaBatch batch = {.n_seqs = fx.n_seqs, .seq_start = fx.seq_start, .tokens = fx.tokens};
    assert_int_equal(aha_model_forward(m, &batch), 0);
    size_t V = (size_t)m->cfg.vocab_size;
    float *logits = malloc((size_t)fx.T * V * sizeof *logits);
    assert_int_equal(aha_model_logits(m, logits), 0);
    float *want = expected_tensor(expected, "logits", (size_t)fx.T * V);
    double err = relative_error(logits, want, (size_t)fx.T * V, 0);
    print_message("%s: logits relative error %.3g\n", arch, err);
    assert_true(err < TOLERANCE);
    free(want);
    free(logits);

    float *logprob = calloc((size_t)fx.T, sizeof *logprob);
    float *dlogprob = calloc((size_t)fx.T, sizeof *dlogprob);
    assert_int_equal(aha_model_logprobs(m, fx.targets, 1.0f, logprob, NULL), 0);
    double loss = 0;
    for (int t = 0; t < fx.T; t++) {
        if (fx.targets[t] < 0) continue;
        loss -= logprob[t];
        dlogprob[t] = -1.0f / (float)fx.n_scored;
    }
    loss /= fx.n_scored;
    print_message("%s: loss %.7f (transformers %.7f), aux %.7f (%.7f)\n", arch, loss, fx.loss,
                  aha_model_aux_loss(m), fx.aux_loss);
    assert_true(fabs(loss - fx.loss) < TOLERANCE * fabs(fx.loss));
    assert_true(fabs(aha_model_aux_loss(m) - fx.aux_loss) < TOLERANCE * fabs(fx.aux_loss));

    assert_int_equal(aha_model_alloc_grads(m), 0);
    aha_model_zero_grads(m);
    assert_int_equal(aha_model_backward(m, dlogprob, 0.0f), 0);
    check_grads(m, expected, "grad.", arch);
    if (with_aux_grads) {
        memset(dlogprob, 0, (size_t)fx.T * sizeof *dlogprob);
        aha_model_zero_grads(m);
        assert_int_equal(aha_model_backward(m, dlogprob, 1.0f), 0);
        check_grads(m, expected, "aux_grad.", arch);
    }
    free(logprob);
    free(dlogprob);
    aha_safetensors_close(expected);
    save_for_transformers(arch, m, &source, AHA_DTYPE_AS_SOURCE, &fx);
    if (strcmp(arch, "qwen3_moe") == 0 || strcmp(arch, "qwen2_moe") == 0) {
        char variant[64], variant_dir[600];
        snprintf(variant, sizeof variant, "%s_%s", arch,
                 strcmp(arch, "qwen3_moe") == 0 ? "fused_bf16" : "sharded_bf16");
        snprintf(variant_dir, sizeof variant_dir, FIXTURES "/%s", variant);
        AhaModel *v = aha_model_load_dir(variant_dir, &source);
        assert_non_null(v);
        save_for_transformers(variant, v, &source, AHA_DTYPE_AS_SOURCE, &fx);
        aha_model_free(v);
    }
    fixture_free(&fx);
    aha_model_free(m);
}

/* Three training steps (forward, backward of the mean cross-entropy, global norm clipping,
 * AdamW) against torch.optim.AdamW after torch.nn.utils.clip_grad_norm_. */
static void test_adamw_steps(void **state) {
    (void)state;
    const char *arch = "qwen3_moe";
    AhaModel *m = aha_model_load_dir(FIXTURES "/qwen3_moe", NULL);
    if (!m) fail_msg("%s", aha_error_message());
    Fixture fx;
    fixture_load(&fx, arch);
    json_t *hp = json_object_get(fx.root, "adamw");
    assert_non_null(hp);
    AhaAdamWConfig cfg = {
        .beta1 = (float)json_real_value(json_object_get(hp, "beta1")),
        .beta2 = (float)json_real_value(json_object_get(hp, "beta2")),
        .eps = (float)json_real_value(json_object_get(hp, "eps")),
        .weight_decay = (float)json_real_value(json_object_get(hp, "weight_decay")),
    };
    float lr = (float)json_real_value(json_object_get(hp, "lr"));
    float max_norm = (float)json_real_value(json_object_get(hp, "max_grad_norm"));
    json_t *norms = json_object_get(hp, "grad_norms");
    int steps = (int)json_integer_value(json_object_get(hp, "steps"));
    assert_int_equal((int)json_array_size(norms), steps);
    AhaAdamW opt;
    assert_int_equal(aha_adamw_init(&opt, m->backend, m->params.count, &cfg), 0);
    assert_int_equal(aha_model_alloc_grads(m), 0);
    AhaBatch batch = {.n_seqs = fx.n_seqs, .seq_start = fx.seq_start, .tokens = fx.tokens};
    float *logprob = calloc((size_t)fx.T, sizeof *logprob);
    float *dlogprob = calloc((size_t)fx.T, sizeof *dlogprob);
    for (int t = 0; t < fx.T; t++) dlogprob[t] = fx.targets[t] >= 0 ? -1.0f / (float)fx.n_scored : 0;
    for (int step = 0; step < steps; step++) {
        assert_int_equal(aha_model_forward(m, &batch), 0);
        assert_int_equal(aha_model_logprobs(m, fx.targets, 1.0f, logprob, NULL), 0);
        aha_model_zero_grads(m);
        assert_int_equal(aha_model_backward(m, dlogprob, 0.0f), 0);
        float norm = aha_clip_grad_norm(m->backend, m->grads.memory, m->grads.count, max_norm);
        double want = json_real_value(json_array_get(norms, (size_t)step));
        print_message("%s: step %d grad norm %.7f (torch %.7f)\n", arch, step + 1, norm, want);
        assert_true(fabs(norm - want) < TOLERANCE * want);
        aha_adamw_step(&opt, m->params.memory, m->grads.memory, lr);
    }
    char path[512];
    snprintf(path, sizeof path, FIXTURES "/%s/expected.safetensors", arch);
    AhaSafetensorsFile *expected = aha_safetensors_open(path);
    assert_non_null(expected);
    /* Compare the updates (after - before), which are ~1e-3 of the weights. */
    AhaModel *before = aha_model_load_dir(FIXTURES "/qwen3_moe", NULL);
    assert_non_null(before);
    double worst = 0;
    for (int i = 0; i < aha_model_num_tensors(m); i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        const float *initial = aha_model_tensor(before, i)->data;
        char key[200];
        snprintf(key, sizeof key, "adamw.%s", t->name);
        float *want = expected_tensor(expected, key, t->numel);
        float *got = malloc(t->numel * sizeof *got);
        for (size_t j = 0; j < t->numel; j++) {
            got[j] = t->data[j] - initial[j];
            want[j] -= initial[j];
        }
        double err = relative_error(got, want, t->numel, 0);
        worst = fmax(worst, err);
        if (err >= 1e-3) fail_msg("%s: %s update relative error %.3g", arch, key, err);
        free(got);
        free(want);
    }
    aha_model_free(before);
    save_for_transformers("qwen3_moe_trained_bf16", m, NULL, AHA_DTYPE_BF16, &fx);
    print_message("%s: updates after %d AdamW steps, worst relative error %.3g\n", arch, steps,
                  worst);
    aha_safetensors_close(expected);
    free(logprob);
    free(dlogprob);
    aha_adamw_free(&opt);
    fixture_free(&fx);
    aha_model_free(m);
}

static void test_qwen3_moe(void **state) {
    (void)state;
    check_arch("qwen3_moe", 1);
}

static void test_qwen2_moe(void **state) {
    (void)state;
    check_arch("qwen2_moe", 1);
}

static void test_olmoe(void **state) {
    (void)state;
    check_arch("olmoe", 0);
}

static void test_mixtral(void **state) {
    (void)state;
    check_arch("mixtral", 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3_moe),
        cmocka_unit_test(test_qwen2_moe),
        cmocka_unit_test(test_olmoe),
        cmocka_unit_test(test_mixtral),
        cmocka_unit_test(test_adamw_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
