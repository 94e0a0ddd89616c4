/* The whole model's gradient against central finite differences, for every architecture
 * variant: loss = sum_t r_t * logprob_t (temperature 0.8, some rows unscored) + aux_coef *
 * load-balancing loss. Each tensor is checked along a random direction of its own (so every
 * tensor's gradient is tested, with a signal far above float32 rounding), and a few single
 * coordinates are checked as well. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aha/model.h"
#include "policy/test_model_util.h"

enum { T = 12 };
static const int tokens[T] = {3, 17, 8, 36, 1, 22, 9, 9, 30, 5, 14, 2};
static const int starts[4] = {0, 5, 5, 12};
static const float temperature = 0.8f, aux_coef = 0.3f;
static int targets[T];
static float weights[T];

/* Routing is piecewise constant: a perturbation that flips a top-k choice makes the finite
 * difference meaningless, so each evaluation reports the expert loads it saw. */
static float loads[AHA_MAX_LAYERS * 8];

static void record_loads(AhaModel *m, float *out) {
    for (int l = 0; l < m->cfg.num_layers; l++)
        if (aha_model_layer_is_moe(&m->cfg, l)) aha_model_expert_load(m, l, out + l * m->cfg.num_experts);
}

static int same_routing(AhaModel *m) {
    float now[AHA_MAX_LAYERS * 8] = {0};
    record_loads(m, now);
    return memcmp(now, loads, sizeof(float) * m->cfg.num_layers * m->cfg.num_experts) == 0;
}

static double loss(AhaModel *m) {
    AhaBatch b = {3, starts, tokens};
    float lp[T];
    assert_int_equal(aha_model_forward(m, &b), 0);
    assert_int_equal(aha_model_logprobs(m, targets, temperature, lp, NULL), 0);
    double sum = 0.0;
    for (int t = 0; t < T; t++) sum += (double)weights[t] * lp[t];
    return sum + (double)aux_coef * aha_model_aux_loss(m);
}

static uint64_t rng = 12345;
static float uniform(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

static void check_variant(int which, const char *backend) {
    AhaModelConfig c;
    tiny_config(&c, which);
    AhaBackend *be = aha_backend_create(backend, NULL);
    assert_non_null(be);
    AhaModel *m = aha_model_create(&c, be);
    assert_non_null(m);
    tiny_init(m, 100 + which);
    for (int t = 0; t < T; t++) {
        targets[t] = t % 4 == 3 ? -1 : (t * 5 + 2) % c.vocab_size;
        weights[t] = uniform() * 2.0f;
    }
    AhaBatch b = {3, starts, tokens};
    float lp[T];
    assert_int_equal(aha_model_forward(m, &b), 0);
    assert_int_equal(aha_model_logprobs(m, targets, temperature, lp, NULL), 0);
    assert_int_equal(aha_model_alloc_grads(m), 0);
    aha_model_zero_grads(m);
    assert_int_equal(aha_model_backward(m, weights, aux_coef), 0);
    memset(loads, 0, sizeof loads);
    record_loads(m, loads);

    size_t n = m->params.count;
    float *saved = malloc(n * sizeof(float)), *dir = malloc(n * sizeof(float));
    memcpy(saved, m->params.memory, n * sizeof(float));
    double worst = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < aha_model_num_tensors(m); i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        /* a unit direction within this tensor */
        double norm = 0.0;
        for (size_t j = 0; j < t->numel; j++) {
            dir[j] = uniform();
            norm += (double)dir[j] * dir[j];
        }
        double analytic = 0.0;
        const float *g = m->grads.memory + t->offset;
        for (size_t j = 0; j < t->numel; j++) {
            dir[j] = (float)(dir[j] / sqrt(norm));
            analytic += (double)g[j] * dir[j];
        }
        double eps = 1e-2, numeric = 0.0;
        for (int attempt = 0; attempt < 6; attempt++, eps /= 2) {
            for (size_t j = 0; j < t->numel; j++) t->data[j] = saved[t->offset + j] + (float)eps * dir[j];
            double plus = loss(m);
            int same = same_routing(m);
            for (size_t j = 0; j < t->numel; j++) t->data[j] = saved[t->offset + j] - (float)eps * dir[j];
            double minus = loss(m);
            same = same && same_routing(m);
            numeric = (plus - minus) / (2 * eps);
            if (same) break;
        }
        memcpy(t->data, saved + t->offset, t->numel * sizeof(float));
        double err = fabs(numeric - analytic) / fmax(1e-2, fmax(fabs(numeric), fabs(analytic)));
        if (err > worst) {
            worst = err;
            worst_name = t->name;
        }
        if (err > 2e-2)
            fail_msg("%s [%s]: %s: analytic %.6g vs numeric %.6g", tiny_name(which),
                     be->name, t->name, analytic, numeric);
    }
    printf("  %-48s [%s] worst relative error %.2e (%s)\n", tiny_name(which), be->name,
           worst, worst_name);
    free(saved);
    free(dir);
    aha_model_free(m);
    aha_backend_free(be);
}

static void test_qwen3(void **state) {
    (void)state;
    check_variant(TINY_QWEN3, "cpu");
    check_variant(TINY_QWEN3, "cpu-ref");
}
static void test_qwen3_sparse_step(void **state) {
    (void)state;
    check_variant(TINY_QWEN3_SPARSE_STEP, "cpu");
}
static void test_qwen2(void **state) {
    (void)state;
    check_variant(TINY_QWEN2, "cpu");
    check_variant(TINY_QWEN2, "cpu-ref");
}
static void test_olmoe(void **state) {
    (void)state;
    check_variant(TINY_OLMOE, "cpu");
}
static void test_mixtral_tied(void **state) {
    (void)state;
    check_variant(TINY_MIXTRAL_TIED, "cpu");
}

/* backward accumulates: twice the call, twice the gradient */
static void test_backward_accumulates(void **state) {
    (void)state;
    AhaModelConfig c;
    tiny_config(&c, TINY_QWEN2);
    AhaModel *m = aha_model_create(&c, NULL);
    tiny_init(m, 5);
    for (int t = 0; t < T; t++) {
        targets[t] = t % c.vocab_size;
        weights[t] = -1.0f / T;
    }
    loss(m);
    assert_int_equal(aha_model_backward(m, weights, 0.01f), 0);
    float *once = malloc(m->grads.count * sizeof(float));
    memcpy(once, m->grads.memory, m->grads.count * sizeof(float));
    assert_int_equal(aha_model_backward(m, weights, 0.01f), 0);
    for (size_t i = 0; i < m->grads.count; i++) assert_float_equal(m->grads.memory[i], 2 * once[i], 1e-6);
    free(once);
    aha_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_qwen3_sparse_step),
        cmocka_unit_test(test_qwen2),
        cmocka_unit_test(test_olmoe),
        cmocka_unit_test(test_mixtral_tied),
        cmocka_unit_test(test_backward_accumulates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
