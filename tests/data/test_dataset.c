/* JSONL data sets: field mapping, errors naming file:line, filters, GSM8K / MATH-500 as they
 * are, shuffling and exact save/restore of the iterator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/dataset.h"
#include "aha/error.h"

static char path[256];

static int make_tmp(void **state) {
    (void)state;
    snprintf(path, sizeof path, "/tmp/aha_test_dataset_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int remove_tmp(void **state) {
    (void)state;
    return unlink(path);
}

static void write_data(const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_rows_keep_fields_and_json(void **state) {
    (void)state;
    write_data("{\"q\": \"What is 2+2?\", \"a\": 4, \"tests\": [\"assert f()==4\"], \"src\": \"x\"}\n"
               "\n"
               "   \n"
               "{\"q\": \"Name a prime.\", \"a\": \"7\", \"tests\": \"t\"}\n");
    AhaDatasetFields f = {.question = "q", .answer = "a", .tests = "tests"};
    AhaDataset *ds = aha_dataset_load(path, &f);
    assert_non_null(ds);
    assert_int_equal(aha_dataset_size(ds), 2);
    const AhaExample *e = aha_dataset_get(ds, 0);
    assert_int_equal(e->line, 1);
    assert_string_equal(e->question, "What is 2+2?");
    assert_string_equal(e->answer, "4");
    assert_string_equal(e->tests, "[\"assert f()==4\"]");
    assert_non_null(strstr(e->json, "\"src\":\"x\""));
    e = aha_dataset_get(ds, 1);
    assert_int_equal(e->line, 4);
    assert_string_equal(e->answer, "7");
    assert_string_equal(e->tests, "\"t\"");
    assert_null(aha_dataset_get(ds, 2));
    aha_dataset_free(ds);

    /* no answer field mapped: answer is NULL, the field is not required */
    write_data("{\"question\": \"q only\"}\n");
    AhaDatasetFields none = {.answer = ""};
    ds = aha_dataset_load(path, &none);
    assert_non_null(ds);
    assert_null(aha_dataset_get(ds, 0)->answer);
    assert_null(aha_dataset_get(ds, 0)->tests);
    aha_dataset_free(ds);
}

static void expect_error(const char *text, const AhaDatasetFields *f, const char *want) {
    write_data(text);
    AhaDataset *ds = aha_dataset_load(path, f);
    if (ds) {
        aha_dataset_free(ds);
        fail_msg("loaded, but expected an error with \"%s\"", want);
    }
    char full[512];
    snprintf(full, sizeof full, want, path);
    if (!strstr(aha_error_message(), full)) fail_msg("error \"%s\" lacks \"%s\"", aha_error_message(), full);
}

static void test_bad_lines_name_file_and_line(void **state) {
    (void)state;
    const char *ok = "{\"question\": \"a\", \"answer\": \"1\"}\n";
    char text[512];
    snprintf(text, sizeof text, "%s%s{\"question\": \"b\", \"answer\": \n", ok, ok);
    expect_error(text, NULL, "%s:3: not JSON: ");
    snprintf(text, sizeof text, "%s[1, 2]\n", ok);
    expect_error(text, NULL, "%s:2: expected a JSON object, got an array");
    snprintf(text, sizeof text, "%s\"just a string\"\n", ok);
    expect_error(text, NULL, "%s:2: expected a JSON object, got a string");
    snprintf(text, sizeof text, "%s{\"answer\": \"1\"}\n", ok);
    expect_error(text, NULL, "%s:2: missing field \"question\" (the question field)");
    snprintf(text, sizeof text, "%s{\"question\": \"b\"}\n", ok);
    expect_error(text, NULL, "%s:2: missing field \"answer\"");
    snprintf(text, sizeof text, "{\"question\": 12, \"answer\": \"1\"}\n");
    expect_error(text, NULL, "%s:1: field \"question\": expected a string, got a number");
    snprintf(text, sizeof text, "{\"question\": \"b\", \"answer\": [1]}\n");
    expect_error(text, NULL, "%s:1: field \"answer\": expected a string or a number, got an array");
    AhaDatasetFields tests = {.tests = "tests"};
    snprintf(text, sizeof text, "{\"question\": \"b\", \"answer\": \"1\", \"tests\": 3}\n");
    expect_error(text, &tests, "%s:1: field \"tests\": expected a string, an array or an object, got a number");
    expect_error("", NULL, "%s: no rows (the file is empty)");
    expect_error("\n\n", NULL, "%s: no rows (the file is empty)");
    AhaDatasetFields filter = {.filter_field = "level", .filter_value = "9"};
    snprintf(text, sizeof text, "{\"question\": \"b\", \"answer\": \"1\", \"level\": 2}\n");
    expect_error(text, &filter, "%s: no rows pass the filter");

    assert_null(aha_dataset_load("/no/such/data.jsonl", NULL));
    assert_string_equal(aha_error_message(), "data set /no/such/data.jsonl: No such file or directory");
}

/* A line of NUL bytes is not a blank line; a GSM8K-style solution without "#### N" is not a
 * gold answer (unless allowed); a line too long for memory is an error, not the end. */
static void test_lines_that_once_slipped_through(void **state) {
    (void)state;
    const char *ok = "{\"question\": \"a\", \"answer\": \"1\"}\n";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(ok, f);
    fwrite("\0\0\0\n", 1, 4, f);
    fputs(ok, f);
    fclose(f);
    assert_null(aha_dataset_load(path, NULL));
    char want[512];
    snprintf(want, sizeof want, "%s:2: not JSON: ", path);
    if (strncmp(aha_error_message(), want, strlen(want)) != 0) fail_msg("got: %s", aha_error_message());

    const char *solution = "{\"question\": \"q\", \"answer\": \"She has 3 + 4 = 7 apples.\\nSo 7.\"}\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", ok, solution);
    AhaDatasetFields math = {.final_answer = 1};
    expect_error(text, &math, "%s:2: field \"answer\" is a worked solution with no final answer (\"#### N\" or "
                              "\\boxed{}): the math reward would take the whole text as the gold; fix the row, or "
                              "accept such rows with data.bare_answers: true (aha eval: --bare-answers)");
    /* with its final answer, or allowed, it loads */
    snprintf(text, sizeof text, "%s{\"question\": \"q\", \"answer\": \"3 + 4 = 7\\n#### 7\"}\n"
             "{\"question\": \"q\", \"answer\": \"so\\n$\\\\boxed{7}$\"}\n", ok);
    write_data(text);
    AhaDataset *ds = aha_dataset_load(path, &math);
    assert_non_null(ds);
    assert_int_equal(aha_dataset_size(ds), 3);
    aha_dataset_free(ds);
    snprintf(text, sizeof text, "%s%s", ok, solution);
    write_data(text);
    ds = aha_dataset_load(path, NULL);
    assert_non_null(ds);
    aha_dataset_free(ds);

#if !defined(__SANITIZE_ADDRESS__) /* the sanitizer's allocator ends the process instead */
    /* a 64 MiB line under an address-space limit that cannot hold it */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(ok, f);
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof chunk);
    fputs("{\"question\": \"", f);
    for (int i = 0; i < 1024; i++) assert_int_equal(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);
    fputs("\", \"answer\": \"1\"}\n", f);
    fputs(ok, f);
    fclose(f);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        long pages = 0, rss;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (!statm || fscanf(statm, "%ld %ld", &pages, &rss) != 2) _exit(3);
        fclose(statm);
        struct rlimit lim = {.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (32 << 20)};
        lim.rlim_max = lim.rlim_cur;
        if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(3);
        AhaDataset *big = aha_dataset_load(path, NULL);
        if (big) _exit(1); /* the rest of the file silently dropped (or loaded: no limit) */
        char want_big[512];
        snprintf(want_big, sizeof want_big, "%s:2: reading failed after 1 lines (the rest of the file is not loaded): "
                 "Cannot allocate memory", path);
        _exit(strcmp(aha_error_message(), want_big) == 0 ? 0 : 2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

static void test_filter_keeps_matching_rows(void **state) {
    (void)state;
    write_data("{\"question\": \"a\", \"answer\": \"1\", \"level\": 5, \"subject\": \"Algebra\"}\n"
               "{\"question\": \"b\", \"answer\": \"2\", \"level\": 3, \"subject\": \"Algebra\"}\n"
               "{\"question\": \"c\", \"answer\": \"3\", \"subject\": \"Geometry\"}\n"
               "{\"question\": \"d\", \"answer\": \"4\", \"level\": 5, \"subject\": \"Geometry\"}\n");
    AhaDatasetFields f = {.filter_field = "level", .filter_value = "5"};
    AhaDataset *ds = aha_dataset_load(path, &f);
    assert_non_null(ds);
    assert_int_equal(aha_dataset_size(ds), 2);
    assert_string_equal(aha_dataset_get(ds, 0)->question, "a");
    assert_string_equal(aha_dataset_get(ds, 1)->question, "d");
    assert_int_equal(aha_dataset_get(ds, 1)->line, 4);
    aha_dataset_free(ds);
    f = (AhaDatasetFields){.filter_field = "subject", .filter_value = "Geometry"};
    ds = aha_dataset_load(path, &f);
    assert_non_null(ds);
    assert_int_equal(aha_dataset_size(ds), 2);
    assert_string_equal(aha_dataset_get(ds, 0)->question, "c");
    aha_dataset_free(ds);
}

static void test_epoch_order_is_a_seeded_permutation(void **state) {
    (void)state;
    enum { N = 97 };
    size_t a[N], b[N], c[N], d[N];
    aha_data_epoch_order(42, 0, N, a);
    aha_data_epoch_order(42, 0, N, b);
    aha_data_epoch_order(43, 0, N, c);
    aha_data_epoch_order(42, 1, N, d);
    int seen[N] = {0};
    for (size_t i = 0; i < N; i++) {
        assert_true(a[i] < N);
        seen[a[i]]++;
    }
    for (size_t i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_memory_not_equal(a, d, sizeof a);
    /* every row lands in every position about equally often: position 0 over many epochs */
    int first[4] = {0};
    size_t small[4];
    for (uint64_t e = 0; e < 4000; e++) {
        aha_data_epoch_order(7, e, 4, small);
        first[small[0]]++;
    }
    for (int i = 0; i < 4; i++) assert_true(first[i] > 850 && first[i] < 1150);
}

static void test_iterator_resumes_exactly(void **state) {
    (void)state;
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 10; i++) fprintf(f, "{\"question\": \"q%d\", \"answer\": \"%d\"}\n", i, i);
    fclose(f);
    AhaDataset *ds = aha_dataset_load(path, NULL);
    assert_non_null(ds);

    /* unshuffled: file order, epoch after epoch */
    AhaDataIter *plain = aha_data_iter_new(ds, 1, 0);
    for (size_t k = 0; k < 25; k++) {
        size_t index;
        aha_data_iter_next(plain, &index);
        assert_int_equal(index, k % 10);
    }
    assert_int_equal(aha_data_iter_cursor(plain).epoch, 2);
    aha_data_iter_free(plain);

    /* shuffled: every epoch visits each row once; a restored copy continues identically */
    AhaDataIter *it = aha_data_iter_new(ds, 1234, 1);
    size_t reference[35];
    AhaDataCursor saved = {0};
    for (size_t k = 0; k < 35; k++) {
        if (k == 13) saved = aha_data_iter_cursor(it);
        const AhaExample *e = aha_data_iter_next(it, &reference[k]);
        assert_ptr_equal(e, aha_dataset_get(ds, reference[k]));
    }
    for (size_t epoch = 0; epoch < 3; epoch++) {
        int seen[10] = {0};
        for (size_t k = 0; k < 10; k++) seen[reference[epoch * 10 + k]]++;
        for (size_t i = 0; i < 10; i++) assert_int_equal(seen[i], 1);
    }
    assert_memory_not_equal(reference, reference + 10, 10 * sizeof *reference);
    AhaDataIter *resumed = aha_data_iter_new(ds, 999, 0); /* the cursor carries seed and shuffle */
    assert_int_equal(aha_data_iter_restore(resumed, &saved), 0);
    for (size_t k = 13; k < 35; k++) {
        size_t index;
        aha_data_iter_next(resumed, &index);
        assert_int_equal(index, reference[k]);
    }
    /* a cursor from another data set, or past the end, is refused and changes nothing */
    AhaDataCursor bad = saved;
    bad.size = 11;
    assert_int_equal(aha_data_iter_restore(resumed, &bad), -1);
    assert_string_equal(aha_error_message(), "data cursor: saved for a data set of 11 rows, this one has 10");
    bad = saved;
    bad.position = 12;
    assert_int_equal(aha_data_iter_restore(resumed, &bad), -1);
    assert_int_equal(aha_data_iter_cursor(resumed).epoch, 3);
    aha_data_iter_free(resumed);
    aha_data_iter_free(it);
    aha_dataset_free(ds);
}

static void test_gsm8k_and_math500_load_as_they_are(void **state) {
    (void)state;
    if (access("/work/shared/data/gsm8k_test.jsonl", R_OK) != 0 ||
        access("/work/shared/data/math500_test.jsonl", R_OK) != 0)
        skip();
    AhaDataset *gsm = aha_dataset_load("/work/shared/data/gsm8k_test.jsonl", NULL);
    assert_non_null(gsm);
    assert_int_equal(aha_dataset_size(gsm), 1319);
    for (size_t i = 0; i < aha_dataset_size(gsm); i++)
        assert_non_null(strstr(aha_dataset_get(gsm, i)->answer, "\n#### "));
    aha_dataset_free(gsm);

    AhaDatasetFields math = {.question = "problem"};
    AhaDataset *m = aha_dataset_load("/work/shared/data/math500_test.jsonl", &math);
    assert_non_null(m);
    assert_int_equal(aha_dataset_size(m), 500);
    assert_non_null(strstr(aha_dataset_get(m, 0)->json, "\"unique_id\""));
    aha_dataset_free(m);
    math.filter_field = "level";
    math.filter_value = "5";
    m = aha_dataset_load("/work/shared/data/math500_test.jsonl", &math);
    assert_non_null(m);
    assert_true(aha_dataset_size(m) > 50 && aha_dataset_size(m) < 500);
    aha_dataset_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_keep_fields_and_json),
        cmocka_unit_test(test_bad_lines_name_file_and_line),
        cmocka_unit_test(test_lines_that_once_slipped_through),
        cmocka_unit_test(test_filter_keeps_matching_rows),
        cmocka_unit_test(test_epoch_order_is_a_seeded_permutation),
        cmocka_unit_test(test_iterator_resumes_exactly),
        cmocka_unit_test(test_gsm8k_and_math500_load_as_they_are),
    };
    return cmocka_run_group_tests(tests, make_tmp, remove_tmp);
}
