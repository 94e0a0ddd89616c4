/* The tiny-model data tools: the character tokenizer, Countdown steps, the pre-training
 * corpus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/char_tokenizer.h"
#include "aha/corpus.h"
#include "aha/error.h"
#include "aha/tokenizer.h"

static char *make_temp_dir(void) {
    char *dir = strdup("/tmp/aha-tiny-data-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_tree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_char_tokenizer_round_trip(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    assert_int_equal(aha_char_tokenizer_write(dir, "0123456789+= "), 0);
    AhaTokenizer *tok = aha_tokenizer_load(dir);
    assert_non_null(tok);
    assert_int_equal(aha_tokenizer_vocab_size(tok), aha_char_tokenizer_vocab_size("0123456789+= "));
    const char *text = "12+3<think>2+3=5 1</think><answer>15</answer><|endoftext|>";
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, text, strlen(text), AHA_TOKENIZE_PARSE_SPECIAL, &ids), 0);
    /* 12+3 = 4 characters, then each tag and the eos are one token each. */
    assert_int_equal(ids.ids[0], 1);
    assert_int_equal(ids.ids[4], aha_tokenizer_token_id(tok, "<think>"));
    assert_int_equal(ids.ids[ids.count - 1], aha_tokenizer_eos_id(tok));
    assert_int_equal((int)ids.count, 4 + 1 + 7 + 1 + 1 + 2 + 1 + 1);
    char *back = aha_tokenizer_decode(tok, ids.ids, ids.count, 0, NULL);
    assert_string_equal(back, text);
    free(back);
    aha_token_ids_free(&ids);
    aha_tokenizer_free(tok);
    remove_tree(dir);
    free(dir);
}

static void test_char_tokenizer_rejects_bad_charsets(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    assert_int_equal(aha_char_tokenizer_write(dir, "0123+3"), -1);
    assert_non_null(strstr(aha_error_message(), "'3' appears twice"));
    assert_int_equal(aha_char_tokenizer_write(dir, "ab\tc"), -1);
    assert_non_null(strstr(aha_error_message(), "not printable ASCII"));
    assert_int_equal(aha_char_tokenizer_write(dir, ""), -1);
    assert_int_equal(aha_char_tokenizer_write("/dev/null/dir", "01"), -1);
    assert_non_null(strstr(aha_error_message(), "creating directory /dev/null"));
    remove_tree(dir);
    free(dir);
}

static void test_countdown_steps(void **state) {
    (void)state;
    char steps[256];
    assert_int_equal(aha_countdown_steps("(55-36)*7-68", steps, sizeof steps), 0);
    assert_string_equal(steps, "55-36=19 19*7=133 133-68=65");
    assert_int_equal(aha_countdown_steps("(3+15*78)/23", steps, sizeof steps), 0);
    assert_string_equal(steps, "15*78=1170 3+1170=1173 1173/23=51");
    assert_int_equal(aha_countdown_steps("7/2", steps, sizeof steps), -1);
    assert_int_equal(aha_countdown_steps("(1+2", steps, sizeof steps), -1);
    assert_int_equal(aha_countdown_steps("1+x", steps, sizeof steps), -1);
    assert_non_null(strstr(aha_error_message(), "'1+x'"));
    assert_int_equal(aha_countdown_steps("1+2+3+4", steps, 8), -1);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_corpus_shares_and_forms(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char task[512], out[512];
    snprintf(task, sizeof task, "%s/train.jsonl", dir);
    snprintf(out, sizeof out, "%s/corpus.jsonl", dir);
    write_file(task, "{\"question\":\"123+456+789\",\"answer\":\"1368\"}\n"
                     "\n"
                     "{\"question\":\"make 65 from 55 36 7 68\",\"answer\":\"(55-36)*7-68\",\"nums\":[55,36,7,68],\"target\":65}\n");
    size_t docs = 0, worked = 0;
    assert_int_equal(aha_corpus_write(task, 1.0, 1, out, &docs, &worked), 0);
    assert_int_equal(docs, 2);
    assert_int_equal(worked, 2);
    assert_string_equal(read_file(out),
                        "{\"text\":\"123+456+789<think>3+6+9+0=18 2+5+8+1=16 1+4+7+1=13</think><answer>1368</answer>\"}\n"
                        "{\"text\":\"make 65 from 55 36 7 68<think>55-36=19 19*7=133 133-68=65</think><answer>(55-36)*7-68</answer>\"}\n");
    assert_int_equal(aha_corpus_write(task, 0.0, 1, out, &docs, &worked), 0);
    assert_int_equal(worked, 0);
    assert_string_equal(read_file(out), "{\"text\":\"123+456+789<answer>1368</answer>\"}\n"
                                        "{\"text\":\"make 65 from 55 36 7 68<answer>(55-36)*7-68</answer>\"}\n");
    remove_tree(dir);
    free(dir);
}

static void test_corpus_share_is_drawn_per_row(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char task[512], out[512];
    snprintf(task, sizeof task, "%s/train.jsonl", dir);
    snprintf(out, sizeof out, "%s/corpus.jsonl", dir);
    FILE *f = fopen(task, "w");
    assert_non_null(f);
    for (int i = 0; i < 2000; i++) fprintf(f, "{\"question\":\"%d+%d\",\"answer\":\"%d\"}\n", i, 7, i + 7);
    fclose(f);
    size_t docs = 0, worked = 0, worked_again = 0;
    assert_int_equal(aha_corpus_write(task, 0.16, 5, out, &docs, &worked), 0);
    assert_int_equal(docs, 2000);
    assert_in_range(worked, 240, 400); /* 320 expected; the draw is fixed by the seed */
    assert_int_equal(aha_corpus_write(task, 0.16, 5, out, &docs, &worked_again), 0);
    assert_int_equal(worked, worked_again);
    remove_tree(dir);
    free(dir);
}

static void test_corpus_bad_inputs(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char task[512], out[512];
    snprintf(task, sizeof task, "%s/train.jsonl", dir);
    snprintf(out, sizeof out, "%s/corpus.jsonl", dir);
    write_file(task, "{\"question\":\"1+2\",\"answer\":\"3\"}\n{\"question\":\"1+2\"}\n");
    assert_int_equal(aha_corpus_write(task, 0.5, 1, out, NULL, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "train.jsonl:2: expected an object with string"));
    assert_int_equal(access(out, F_OK), -1); /* nothing half-written is left */
    write_file(task, "{\"question\":\"1+2\",\"answer\":\"4\"}\n");
    assert_int_equal(aha_corpus_write(task, 1.0, 1, out, NULL, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "the worked sum gives 3, the row's answer is 4"));
    assert_int_equal(aha_corpus_write(task, 1.5, 1, out, NULL, NULL), -1);
    assert_int_equal(aha_corpus_write("/nonexistent.jsonl", 0.5, 1, out, NULL, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "/nonexistent.jsonl"));
    remove_tree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_char_tokenizer_round_trip),
        cmocka_unit_test(test_char_tokenizer_rejects_bad_charsets),
        cmocka_unit_test(test_countdown_steps),
        cmocka_unit_test(test_corpus_shares_and_forms),
        cmocka_unit_test(test_corpus_share_is_drawn_per_row),
        cmocka_unit_test(test_corpus_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
