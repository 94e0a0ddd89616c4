/* The batch-invariant product: bit-equal to its plain C form for every shape, each row's
 * result independent of the rows around it and of the thread count, and close to a
 * double-precision product. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/rng.h"
#include "kernels/cpu/matmul_invariant.h"

static float *random_floats(size_t n, uint64_t stream) {
    AhaRng rng;
    aha_rng_init(&rng, 77, stream);
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = (float)aha_rng_normal(&rng);
    return v;
}

static void test_equals_reference_for_all_shapes(void **state) {
    (void)state;
    static const int rows[] = {1, 2, 3, 4, 5, 7, 9, 64, 67};
    static const int ins[] = {1, 7, 8, 9, 24, 31, 65};
    static const int outs[] = {1, 2, 3, 4, 47, 48, 49, 100};
    for (size_t a = 0; a < sizeof rows / sizeof *rows; a++)
        for (size_t b = 0; b < sizeof ins / sizeof *ins; b++)
            for (size_t c = 0; c < sizeof outs / sizeof *outs; c++) {
                int n = rows[a], k = ins[b], o = outs[c];
                float *x = random_floats((size_t)n * k, 1), *w = random_floats((size_t)o * k, 2);
                float *bias = random_floats((size_t)o, 3);
                float *fast = malloc(sizeof(float) * n * o), *ref = malloc(sizeof(float) * n * o);
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    const float *bb = with_bias ? bias : NULL;
                    aha_matmul_forward_invariant(fast, x, w, bb, n, k, o);
                    aha_matmul_forward_invariant_ref(ref, x, w, bb, n, k, o);
                    if (memcmp(fast, ref, sizeof(float) * n * o) != 0)
                        fail_msg("n %d in %d out %d bias %d: kernel != reference", n, k, o, with_bias);
                    for (int t = 0; t < n; t++)
                        for (int j = 0; j < o; j++) {
                            double exact = bb ? bb[j] : 0.0, scale = 1.0;
                            for (int i = 0; i < k; i++) {
                                exact += (double)x[t * k + i] * w[j * k + i];
                                scale += fabs((double)x[t * k + i] * w[j * k + i]);
                            }
                            assert_true(fabs(fast[t * o + j] - exact) <= 1e-6 * scale);
                        }
                }
                free(x);
                free(w);
                free(bias);
                free(fast);
                free(ref);
            }
}

static void test_rows_do_not_depend_on_the_batch_or_threads(void **state) {
    (void)state;
    const int n = 133, k = 256, o = 150;
    float *x = random_floats((size_t)n * k, 4), *w = random_floats((size_t)o * k, 5);
    float *all = malloc(sizeof(float) * n * o), *one = malloc(sizeof(float) * o);
    float *two = malloc(sizeof(float) * n * o);
    omp_set_num_threads(2);
    aha_matmul_forward_invariant(all, x, w, NULL, n, k, o);
    omp_set_num_threads(1);
    aha_matmul_forward_invariant(two, x, w, NULL, n, k, o);
    omp_set_num_threads(2);
    assert_memory_equal(all, two, sizeof(float) * n * o);
    for (int t = 0; t < n; t += 7) {
        aha_matmul_forward_invariant(one, x + (size_t)t * k, w, NULL, 1, k, o);
        assert_memory_equal(one, all + (size_t)t * o, sizeof(float) * o);
    }
    /* a slice starting at an odd row */
    aha_matmul_forward_invariant(two, x + 5 * k, w, NULL, 37, k, o);
    assert_memory_equal(two, all + 5 * o, sizeof(float) * 37 * o);
    free(x);
    free(w);
    free(all);
    free(one);
    free(two);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_reference_for_all_shapes),
        cmocka_unit_test(test_rows_do_not_depend_on_the_batch_or_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
