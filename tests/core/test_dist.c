/* The communication layer as one process (no launcher): a job of one whose collectives
 * leave or copy the data; the share arithmetic; a built-without-MPI binary refusing a
 * launcher's job of several; NCCL's communicator of one when a GPU is present (the device
 * check), else skipped with a message. The many-process cases: tests/rl/test_distributed.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/dist.h"
#include "aha/error.h"

static void test_without_mpi_a_launched_job_is_refused(void **state) {
    (void)state;
    if (aha_dist_built_with_mpi()) {
        fprintf(stderr, "skipped: this aha is built with MPI (tests/rl/test_distributed.c launches it)\n");
        skip();
    }
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    assert_true(aha_dist_launched());
    assert_int_equal(aha_dist_init(), -1);
    assert_non_null(strstr(aha_error_message(), "launched as one of 2 processes, but this aha was built without MPI"));
    unsetenv("OMPI_COMM_WORLD_SIZE");
}

static void test_one_process(void **state) {
    (void)state;
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    unsetenv("PMI_SIZE");
    assert_false(aha_dist_launched());
    assert_int_equal(aha_dist_init(), 0);
    assert_int_equal(aha_dist_init(), 0); /* twice: a no-op */
    assert_int_equal(aha_dist_size(), 1);
    assert_int_equal(aha_dist_rank(), 0);
    assert_int_equal(aha_dist_local_rank(), 0);
    assert_int_equal(aha_dist_local_size(), 1);
    float x[3] = {1.5f, -2.0f, 3.0f};
    assert_int_equal(aha_dist_allreduce(x, 3, AHA_DIST_FLOAT, AHA_DIST_SUM), 0);
    assert_true(x[0] == 1.5f && x[1] == -2.0f && x[2] == 3.0f);
    double d = 2.5;
    assert_int_equal(aha_dist_allreduce(&d, 1, AHA_DIST_DOUBLE, AHA_DIST_MAX), 0);
    assert_true(d == 2.5);
    char *all = NULL;
    size_t lens[1] = {0};
    assert_int_equal(aha_dist_allgather_bytes("abc", 3, &all, lens), 0);
    assert_int_equal(lens[0], 3);
    assert_memory_equal(all, "abc", 3);
    free(all);
    assert_int_equal(aha_dist_gather_bytes("", 0, 0, &all, lens), 0);
    assert_non_null(all);
    assert_int_equal(lens[0], 0);
    free(all);
    assert_int_equal(aha_dist_gather_bytes("x", 1, 1, &all, lens), -1);
    assert_non_null(strstr(aha_error_message(), "gather: root 1 of 1 ranks"));
    assert_int_equal(aha_dist_broadcast(x, sizeof x, 0), 0);
    assert_int_equal(aha_dist_broadcast(x, sizeof x, 2), -1);
    assert_non_null(strstr(aha_error_message(), "broadcast: root 2 of 1 ranks"));
    size_t counts[1] = {3};
    assert_int_equal(aha_dist_reduce_scatter_float(x, counts), 0);
    assert_int_equal(aha_dist_allgather_float(x, counts), 0);
    assert_true(x[0] == 1.5f && x[2] == 3.0f);
    char *recv = NULL;
    size_t send_counts[1] = {2}, recv_counts[1] = {0};
    assert_int_equal(aha_dist_alltoallv_bytes("hi", send_counts, &recv, recv_counts), 0);
    assert_int_equal(recv_counts[0], 2);
    assert_memory_equal(recv, "hi", 2);
    free(recv);
    assert_int_equal(aha_dist_barrier(), 0);
    assert_true(aha_dist_comm_seconds() == 0.0); /* nothing went over a wire */
    assert_int_equal(aha_dist_finalize(), 0);
}

static void test_shares_cover_the_range(void **state) {
    (void)state;
    for (int n = 1; n <= 5; n++) {
        for (size_t count = 0; count <= 11; count++) {
            assert_int_equal(aha_dist_share_lo(count, 0, n), 0);
            assert_int_equal(aha_dist_share_lo(count, n, n), count);
            for (int r = 0; r < n; r++) {
                size_t a = aha_dist_share_lo(count, r, n), b = aha_dist_share_lo(count, r + 1, n);
                assert_true(a <= b && b - a <= count / (size_t)n + 1);
            }
        }
    }
    /* no overflow for parameter counts of large models */
    assert_int_equal(aha_dist_share_lo((size_t)671e9, 127, 128), (size_t)((671e9 * 127) / 128));
}

static void test_nccl_one_process(void **state) {
    (void)state;
    if (!aha_dist_nccl_built()) {
        assert_int_equal(aha_dist_nccl_init(), -1);
        assert_non_null(strstr(aha_error_message(), "NCCL: this aha was built without it"));
        fprintf(stderr, "skipped: aha was built without NCCL\n");
        skip();
    }
    if (aha_dist_nccl_init() != 0) {
        /* without a GPU (the CI machine) the communicator cannot be made: say so */
        fprintf(stderr, "skipped: NCCL is built but cannot start here: %s\n", aha_error_message());
        skip();
    }
    assert_int_equal(aha_dist_nccl_finalize(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_mpi_a_launched_job_is_refused),
        cmocka_unit_test(test_one_process),
        cmocka_unit_test(test_shares_cover_the_range),
        cmocka_unit_test(test_nccl_one_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
