#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aha/rng.h"

/* Random123's kat_vectors, the three "philox4x32 10" lines: counter[4] key[2] -> out[4]. */
static void test_philox_known_answers(void **state) {
    (void)state;
    static const uint32_t cases[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        aha_philox4x32_10(cases[c], cases[c] + 4, out);
        for (int i = 0; i < 4; i++) assert_int_equal(out[i], cases[c][6 + i]);
    }
}

static void test_block_mapping(void **state) {
    (void)state;
    /* (seed, stream, position) -> key {seed lo, hi}, counter {pos lo, hi, stream lo, hi} */
    uint32_t out[4], expected[4];
    const uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    const uint32_t key[2] = {0xa4093822, 0x299f31d0};
    aha_philox4x32_10(ctr, key, expected);
    aha_rng_block(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, out);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], expected[i]);
}

static void test_sequential_matches_blocks_and_resumes(void **state) {
    (void)state;
    AhaRng rng;
    aha_rng_init(&rng, 42, aha_rng_stream(7, 3));
    uint32_t words[12];
    for (int i = 0; i < 12; i++) words[i] = aha_rng_u32(&rng);
    for (int b = 0; b < 3; b++) {
        uint32_t block[4];
        aha_rng_block(42, ((uint64_t)7 << 32) | 3, (uint64_t)b, block);
        for (int i = 0; i < 4; i++) assert_int_equal(words[4 * b + i], block[i]);
    }
    /* The state is four plain numbers: a copy continues identically. */
    AhaRng saved = rng;
    uint64_t a = aha_rng_u64(&rng), b = aha_rng_u64(&saved);
    assert_true(a == b);
}

static void test_streams_differ(void **state) {
    (void)state;
    uint32_t x[4], y[4], z[4];
    aha_rng_block(1, aha_rng_stream(0, 0), 0, x);
    aha_rng_block(1, aha_rng_stream(0, 1), 0, y);
    aha_rng_block(2, aha_rng_stream(0, 0), 0, z);
    assert_true(x[0] != y[0] && x[0] != z[0] && y[0] != z[0]);
}

static void test_uniform_and_normal_moments(void **state) {
    (void)state;
    AhaRng rng;
    aha_rng_init(&rng, 123, 0);
    const int n = 200000;
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    for (int i = 0; i < n; i++) {
        double u = aha_rng_double(&rng);
        assert_true(u >= 0.0 && u < 1.0);
        float f = aha_rng_float(&rng);
        assert_true(f >= 0.0f && f < 1.0f);
        sum += u;
        sum2 += u * u;
        double g = aha_rng_normal(&rng);
        assert_true(isfinite(g));
        nsum += g;
        nsum2 += g * g;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.005);
    assert_true(fabs(var - 1.0 / 12.0) < 0.002);
    assert_true(fabs(nsum / n) < 0.01);
    assert_true(fabs(nsum2 / n - 1.0) < 0.02);
    /* extremes of the word conversions */
    assert_true(aha_rng_word_to_float(0xffffffffu) < 1.0f);
    assert_true(aha_rng_words_to_double(0xffffffffu, 0xffffffffu) < 1.0);
    assert_true(aha_rng_words_to_double(0, 0) == 0.0);
}

static void test_below_is_uniform_and_in_range(void **state) {
    (void)state;
    AhaRng rng;
    aha_rng_init(&rng, 9, 1);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = aha_rng_below(&rng, 7);
        assert_true(v < 7);
        counts[v]++;
    }
    for (int i = 0; i < 7; i++) assert_true(abs(counts[i] - 10000) < 400);
    assert_true(aha_rng_below(&rng, 1) == 0);
    assert_true(aha_rng_below(&rng, 0) == 0);
    uint64_t big = (UINT64_MAX / 3) * 2; /* rejection region is large here */
    for (int i = 0; i < 100; i++) assert_true(aha_rng_below(&rng, big) < big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_block_mapping),
        cmocka_unit_test(test_sequential_matches_blocks_and_resumes),
        cmocka_unit_test(test_streams_differ),
        cmocka_unit_test(test_uniform_and_normal_moments),
        cmocka_unit_test(test_below_is_uniform_and_in_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
