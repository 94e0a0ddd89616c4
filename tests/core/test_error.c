#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"

static int read_key(int fail) {
    if (fail) return aha_errorf("expected a number, got 'abc'");
    return 0;
}

static int load_recipe(int fail) {
    if (read_key(fail) != 0) return aha_error_prefix("recipe.yaml:3:5: optim.lr");
    return 0;
}

static void test_context_reads_outermost_first(void **state) {
    (void)state;
    assert_int_equal(load_recipe(1), -1);
    assert_string_equal(aha_error_message(), "recipe.yaml:3:5: optim.lr: expected a number, got 'abc'");
    aha_error_clear();
    assert_int_equal(load_recipe(0), 0);
}

static void test_errno_message(void **state) {
    (void)state;
    errno = ENOENT;
    assert_int_equal(aha_error_errno("opening %s", "x.yaml"), -1);
    assert_string_equal(aha_error_message(), "opening x.yaml: No such file or directory");
}

static void test_calloc_overflow_is_an_error(void **state) {
    (void)state;
    assert_null(aha_calloc(SIZE_MAX / 2, 4));
    assert_non_null(strstr(aha_error_message(), "overflows"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_reads_outermost_first),
        cmocka_unit_test(test_errno_message),
        cmocka_unit_test(test_calloc_overflow_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
