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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
