/* AdamW against the update written out in double, step by step; clipping; bad settings. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/optim.h"

static void test_adamw_matches_hand_computed(void **state) {
    (void)state;
    enum { N = 5, STEPS = 4 };
    float p[N] = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f};
    double ref[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) ref[i] = p[i];
    const float lrs[STEPS] = {1e-2f, 5e-3f, 2e-2f, 1e-3f};
    AhaAdamWConfig cfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    AhaAdamW opt;
    assert_int_equal(aha_adamw_init(&opt, NULL, N, &cfg), 0); /* host memory: the cpu backend */
    for (int s = 1; s <= STEPS; s++) {
        float g[N];
        for (int i = 0; i < N; i++) g[i] = (float)(sin(3.0 * i + s) * (i + 1));
        g[3] = 0.0f; /* a zero gradient still decays and moves with momentum */
        aha_adamw_step(&opt, p, g, lrs[s - 1]);
        for (int i = 0; i < N; i++) {
            double lr = lrs[s - 1];
            ref[i] *= 1.0 - lr * 0.1;
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.95 * v[i] + 0.05 * (double)g[i] * g[i];
            double mhat = m[i] / (1.0 - pow(0.9, s)), denom = sqrt(v[i] / (1.0 - pow(0.95, s))) + 1e-8;
            ref[i] -= lr * mhat / denom;
        }
        for (int i = 0; i < N; i++) assert_float_equal(p[i], ref[i], 1e-6);
    }
    assert_int_equal(opt.step, STEPS);
    aha_adamw_free(&opt);
}

static void test_clip_grad_norm(void **state) {
    (void)state;
    float g[4] = {3.0f, 0.0f, -4.0f, 0.0f};
    assert_float_equal(aha_clip_grad_norm(NULL, g, 4, 0.0f), 5.0f, 1e-6); /* 0: no clipping */
    assert_float_equal(g[0], 3.0f, 0.0);
    assert_float_equal(aha_clip_grad_norm(NULL, g, 4, 10.0f), 5.0f, 1e-6); /* under the limit */
    assert_float_equal(g[2], -4.0f, 0.0);
    assert_float_equal(aha_clip_grad_norm(NULL, g, 4, 1.0f), 5.0f, 1e-6);
    assert_float_equal(g[0], 0.6f, 1e-6);
    assert_float_equal(g[2], -0.8f, 1e-6);
    assert_float_equal(aha_clip_grad_norm(NULL, g, 4, 0.0f), 1.0f, 1e-5);
}

static void test_bad_settings(void **state) {
    (void)state;
    AhaAdamW opt;
    AhaAdamWConfig bad = {.beta1 = 1.0f, .beta2 = 0.999f, .eps = 1e-8f};
    assert_int_equal(aha_adamw_init(&opt, NULL, 3, &bad), -1);
    assert_non_null(strstr(aha_error_message(), "beta1"));
    bad = (AhaAdamWConfig){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 0.0f};
    assert_int_equal(aha_adamw_init(&opt, NULL, 3, &bad), -1);
    assert_non_null(strstr(aha_error_message(), "eps"));
    bad = (AhaAdamWConfig){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = -1.0f};
    assert_int_equal(aha_adamw_init(&opt, NULL, 3, &bad), -1);
    assert_non_null(strstr(aha_error_message(), "weight_decay"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_hand_computed),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
