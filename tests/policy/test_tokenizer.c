/* Tokenizer behaviour beyond parity: hand-checked merges, lookups, tokenizer_config.json,
 * streaming decode of split characters, threads, and every bad input with its message. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/tokenizer.h"

#define FIXTURES "tests/fixtures/tokenizer"

/* A tiny valid tokenizer.json; variants replace one part. */
#define MODEL "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3,\"aa\":4,\"c\":5},\"merges\":[\"a b\",[\"a\",\"a\"]]}"
#define PRE "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"
#define DEC "{\"type\":\"ByteLevel\"}"
#define ADDED "[{\"id\":6,\"content\":\"<eos>\",\"special\":true,\"normalized\":false}]"

static char tmp_dir[256];

static int make_tmp(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/aha_test_tokenizer_XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd);
}

static void write_file(const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    unlink(path);
}

static void write_tokenizer(const char *model, const char *normalizer, const char *pre,
                            const char *decoder, const char *added) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"version\":\"1.0\",\"added_tokens\":%s,\"normalizer\":%s,\"pre_tokenizer\":%s,"
             "\"decoder\":%s,\"model\":%s}",
             added, normalizer, pre, decoder, model);
    write_file("tokenizer.json", json);
}

static void encode_expect(const AhaTokenizer *tok, const char *text, const int32_t *want, size_t n) {
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, text, strlen(text), AHA_TOKENIZE_PARSE_SPECIAL, &ids), 0);
    assert_int_equal(ids.count, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids.ids[i], want[i]);
    aha_token_ids_free(&ids);
}

static void test_merges_by_rank_leftmost_first(void **state) {
    (void)state;
    write_tokenizer(MODEL, "null", PRE, DEC, ADDED);
    AhaTokenizer *tok = aha_tokenizer_load(tmp_dir);
    assert_non_null(tok);
    encode_expect(tok, "ab", (int32_t[]){2}, 1);
    encode_expect(tok, "ba", (int32_t[]){1, 0}, 2);
    encode_expect(tok, "aab", (int32_t[]){0, 2}, 2);   /* "a b" ranks before "a a" */
    encode_expect(tok, "aaa", (int32_t[]){4, 0}, 2);   /* ties go left */
    encode_expect(tok, "a b", (int32_t[]){0, 3, 1}, 3); /* " b" is a piece; no "Ġb" token */
    encode_expect(tok, "a<eos>c", (int32_t[]){0, 6, 5}, 3);
    encode_expect(tok, "d", NULL, 0);                   /* no token for "d", no unk: dropped */
    assert_int_equal(aha_tokenizer_vocab_size(tok), 7);
    assert_int_equal(aha_tokenizer_eos_id(tok), -1);   /* no tokenizer_config.json */
    assert_int_equal(aha_tokenizer_chat_shape(tok), AHA_CHAT_NONE);

    /* without PARSE_SPECIAL the special token is plain text */
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, "<eos>", 5, 0, &ids), 0);
    assert_true(ids.count == 0 || ids.ids[0] != 6);
    aha_token_ids_free(&ids);
    aha_tokenizer_free(tok);
}

static void test_qwen2_lookups_and_config(void **state) {
    (void)state;
    AhaTokenizer *tok = aha_tokenizer_load(FIXTURES "/qwen2");
    assert_non_null(tok);
    int32_t im_end = aha_tokenizer_token_id(tok, "<|im_end|>");
    assert_true(im_end >= 0);
    assert_int_equal(aha_tokenizer_eos_id(tok), im_end);
    assert_int_equal(aha_tokenizer_pad_id(tok), aha_tokenizer_token_id(tok, "<|endoftext|>"));
    assert_int_equal(aha_tokenizer_bos_id(tok), -1);
    assert_int_equal(aha_tokenizer_chat_shape(tok), AHA_CHAT_CHATML);
    assert_true(aha_tokenizer_is_special(tok, im_end));
    int32_t think = aha_tokenizer_token_id(tok, "<think>");
    assert_true(think >= 0);
    assert_false(aha_tokenizer_is_special(tok, think));
    assert_int_equal(aha_tokenizer_token_id(tok, "no such token"), -1);

    size_t len;
    const char *bytes = aha_tokenizer_token_bytes(tok, aha_tokenizer_token_id(tok, "\xC4\xA0"), &len);
    assert_int_equal(len, 1);
    assert_memory_equal(bytes, " ", 1);
    bytes = aha_tokenizer_token_bytes(tok, im_end, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(bytes, "<|im_end|>", 10);
    bytes = aha_tokenizer_token_bytes(tok, 1 << 20, &len);
    assert_int_equal(len, 0);

    /* decode skips ids that name no token, and special ones on request */
    int32_t ids[] = {think, -5, 1 << 20, im_end};
    char *text = aha_tokenizer_decode(tok, ids, 4, 0, &len);
    assert_string_equal(text, "<think><|im_end|>");
    free(text);
    text = aha_tokenizer_decode(tok, ids, 4, 1, NULL);
    assert_string_equal(text, "<think>");
    free(text);
    aha_tokenizer_free(tok);
}

static void test_file_path_reads_sibling_config(void **state) {
    (void)state;
    AhaTokenizer *tok = aha_tokenizer_load(FIXTURES "/deepseek3/tokenizer.json");
    assert_non_null(tok);
    int32_t bos = aha_tokenizer_token_id(tok, "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");
    assert_true(bos >= 0);
    assert_int_equal(aha_tokenizer_bos_id(tok), bos);
    assert_true(aha_tokenizer_eos_id(tok) >= 0);
    assert_int_equal(aha_tokenizer_chat_shape(tok), AHA_CHAT_NONE);
    aha_tokenizer_free(tok);
}

static void test_stream_holds_partial_characters(void **state) {
    (void)state;
    AhaTokenizer *tok = aha_tokenizer_load(FIXTURES "/qwen2");
    assert_non_null(tok);
    /* the single-byte tokens of U+00E9 (C3 A9) and of the euro sign (E2 82 AC) */
    int32_t c3 = aha_tokenizer_token_id(tok, "\xC3\x83"), a9 = aha_tokenizer_token_id(tok, "\xC2\xA9");
    int32_t e2 = aha_tokenizer_token_id(tok, "\xC3\xA2"), x82 = aha_tokenizer_token_id(tok, "\xC4\xA4");
    int32_t ac = aha_tokenizer_token_id(tok, "\xC2\xAC"), a = aha_tokenizer_token_id(tok, "a");
    assert_true(c3 >= 0 && a9 >= 0 && e2 >= 0 && x82 >= 0 && ac >= 0 && a >= 0);
    size_t len;
    assert_memory_equal(aha_tokenizer_token_bytes(tok, x82, &len), "\x82", 1);

    AhaDecodeStream *s = aha_decode_stream_new(tok, 0);
    const char *text;
    assert_int_equal(aha_decode_stream_push(s, c3, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(aha_decode_stream_push(s, a9, &text, &len), 0);
    assert_string_equal(text, "\xC3\xA9");
    assert_int_equal(aha_decode_stream_push(s, e2, &text, &len), 0);
    assert_int_equal(aha_decode_stream_push(s, x82, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(aha_decode_stream_push(s, ac, &text, &len), 0);
    assert_string_equal(text, "\xE2\x82\xAC");
    /* a cut character followed by ASCII: one U+FFFD, then the ASCII */
    assert_int_equal(aha_decode_stream_push(s, e2, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(aha_decode_stream_push(s, a, &text, &len), 0);
    assert_string_equal(text, "\xEF\xBF\xBD" "a");
    /* flush turns a held partial character into U+FFFD */
    assert_int_equal(aha_decode_stream_push(s, c3, &text, &len), 0);
    assert_int_equal(aha_decode_stream_flush(s, &text, &len), 0);
    assert_string_equal(text, "\xEF\xBF\xBD");
    aha_decode_stream_free(s);

    int32_t cut[] = {a, e2, x82};
    char *all = aha_tokenizer_decode(tok, cut, 3, 0, NULL);
    assert_string_equal(all, "a\xEF\xBF\xBD");
    free(all);
    aha_tokenizer_free(tok);
}

typedef struct {
    const AhaTokenizer *tok;
    const char *text;
    AhaTokenIds ids;
    int rc;
} Job;

static void *encode_job(void *arg) {
    Job *job = arg;
    for (int round = 0; round < 20 && job->rc == 0; round++) {
        job->ids.count = 0;
        job->rc = aha_tokenizer_encode(job->tok, job->text, strlen(job->text), AHA_TOKENIZE_PARSE_SPECIAL, &job->ids);
    }
    return NULL;
}

static void test_threads_share_a_tokenizer(void **state) {
    (void)state;
    AhaTokenizer *tok = aha_tokenizer_load(FIXTURES "/qwen2");
    assert_non_null(tok);
    const char *text = "Natalia sold clips to 48 of her friends in April, and then she sold half "
                       "as many clips in May. 我们的数学问题 <|im_end|> \xF0\x9F\x98\x80 x = [i**2]";
    AhaTokenIds want = {0};
    assert_int_equal(aha_tokenizer_encode(tok, text, strlen(text), AHA_TOKENIZE_PARSE_SPECIAL, &want), 0);
    Job jobs[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (Job){tok, text, {0}, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, encode_job, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(jobs[t].rc, 0);
        assert_int_equal(jobs[t].ids.count, want.count);
        assert_memory_equal(jobs[t].ids.ids, want.ids, want.count * sizeof *want.ids);
        aha_token_ids_free(&jobs[t].ids);
    }
    aha_token_ids_free(&want);
    aha_tokenizer_free(tok);
}

static void test_invalid_utf8_is_an_error_without_damage(void **state) {
    (void)state;
    AhaTokenizer *tok = aha_tokenizer_load(FIXTURES "/qwen2");
    assert_non_null(tok);
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, "hi", 2, 0, &ids), 0);
    size_t before = ids.count;
    assert_int_equal(aha_tokenizer_encode(tok, "abc\xC3(", 5, 0, &ids), -1);
    assert_string_equal(aha_error_message(), "text is not valid UTF-8 at byte 3");
    assert_int_equal(ids.count, before);
    assert_int_equal(aha_tokenizer_encode(tok, "\xED\xA0\x80", 3, 0, &ids), -1); /* a surrogate */
    assert_int_equal(ids.count, before);
    aha_token_ids_free(&ids);
    aha_tokenizer_free(tok);
}

/* Loads tmp_dir and expects an error message containing each of the given parts. */
static void expect_load_error(const char *part1, const char *part2) {
    AhaTokenizer *tok = aha_tokenizer_load(tmp_dir);
    if (tok) {
        aha_tokenizer_free(tok);
        fail_msg("loaded, but expected an error with \"%s\"", part1);
    }
    const char *msg = aha_error_message();
    if (!strstr(msg, part1) || (part2 && !strstr(msg, part2)))
        fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", msg, part1, part2 ? part2 : "");
}

static void test_bad_files_are_clear_errors(void **state) {
    (void)state;
    assert_null(aha_tokenizer_load("/no/such/dir"));
    assert_non_null(strstr(aha_error_message(), "/no/such/dir: No such file"));

    remove_file("tokenizer.json");
    expect_load_error("no tokenizer.json", NULL);
    write_file("tokenizer.model", "spm");
    expect_load_error("SentencePiece", "tokenizer.model");
    remove_file("tokenizer.model");

    write_file("tokenizer.json", "{\"model\": {\n  \"type\": \"BPE\",\n  oops\n}}");
    expect_load_error("tokenizer.json:3:", NULL);
    write_file("tokenizer.json", "[1, 2]");
    expect_load_error("expected a JSON object", NULL);

    write_tokenizer("{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}", "null", PRE, DEC, "[]");
    expect_load_error("\"Unigram\" is not supported", "tokenizer.json");
    write_tokenizer("{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}", "null", PRE, DEC, "[]");
    expect_load_error("\"WordPiece\" is not supported", NULL);
    write_tokenizer("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a x\"]}", "null", PRE, DEC, "[]");
    expect_load_error("model.merges[0]", "the right token is not in model.vocab");
    write_tokenizer("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"aa\"]}", "null", PRE, DEC, "[]");
    expect_load_error("model.merges[0]", "two tokens");
    write_tokenizer("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a\"]}", "null", PRE, DEC, "[]");
    expect_load_error("merged token \"aa\" is not in model.vocab", NULL);
    write_tokenizer("{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}", "null", PRE, DEC, "[]");
    expect_load_error("model.vocab[\"a\"]", "expected an id");
    write_tokenizer("{\"type\":\"BPE\",\"vocab\":{\"a\":0}}", "null", PRE, DEC, "[]");
    expect_load_error("model.merges: expected an array", NULL);
    write_tokenizer("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"dropout\":0.1}", "null", PRE, DEC, "[]");
    expect_load_error("dropout", NULL);

    write_tokenizer(MODEL, "{\"type\":\"Lowercase\"}", PRE, DEC, "[]");
    expect_load_error("normalizer type \"Lowercase\" is not supported", NULL);
    write_tokenizer(MODEL, "null", "{\"type\":\"Metaspace\",\"replacement\":\"_\"}", DEC, "[]");
    expect_load_error("pre-tokenizer type \"Metaspace\" is not supported", NULL);
    write_tokenizer(MODEL, "null", "null", DEC, "[]");
    expect_load_error("only byte-level BPE", NULL);
    write_tokenizer(MODEL, "null",
                    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                    "\"behavior\":\"Isolated\",\"invert\":false}," PRE "]}", DEC, "[]");
    expect_load_error("pre_tokenizer.pretokenizers[0]", "does not compile");
    write_tokenizer(MODEL, "null",
                    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
                    "\"behavior\":\"Sideways\",\"invert\":false}," PRE "]}", DEC, "[]");
    expect_load_error("\"Sideways\" is not one of", NULL);
    write_tokenizer(MODEL, "null",
                    "{\"type\":\"Sequence\",\"pretokenizers\":[" PRE ",{\"type\":\"Split\",\"pattern\":{\"String\":\"a\"},"
                    "\"behavior\":\"Isolated\",\"invert\":false}]}", DEC, "[]");
    expect_load_error("ByteLevel must be the last", NULL);
    write_tokenizer(MODEL, "null", PRE, "{\"type\":\"Metaspace\"}", "[]");
    expect_load_error("decoder type \"Metaspace\" is not supported", NULL);
    write_tokenizer(MODEL, "null", PRE, DEC, "[{\"id\":7,\"content\":5}]");
    expect_load_error("added_tokens[0].content", NULL);
    write_tokenizer(MODEL, "null", PRE, DEC, "[{\"id\":7,\"content\":\"x\",\"special\":\"yes\"}]");
    expect_load_error("added_tokens[0].special: expected a boolean", NULL);

    write_tokenizer(MODEL, "null", PRE, DEC, ADDED);
    write_file("tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    expect_load_error("tokenizer_config.json: eos_token \"</s>\" is not a token", NULL);
    write_file("tokenizer_config.json", "{\"eos_token\": 3}");
    expect_load_error("eos_token: expected a string", NULL);
    write_file("tokenizer_config.json", "{\"eos_token\": {\"content\": \"<eos>\"}, \"chat_template\": \"{{ x }}\"}");
    AhaTokenizer *tok = aha_tokenizer_load(tmp_dir);
    assert_non_null(tok);
    assert_int_equal(aha_tokenizer_eos_id(tok), 6);
    assert_int_equal(aha_tokenizer_chat_shape(tok), AHA_CHAT_OTHER);
    aha_tokenizer_free(tok);
    remove_file("tokenizer_config.json");
}

/* Runs a shell command, returns its exit status and its stdout in out. */
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli_round_trip(void **state) {
    (void)state;
    const char *bin = getenv("AHA_BIN");
    if (!bin) skip();
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "printf 'Hello <|im_end|> 42' | '%s' tokenize --model " FIXTURES "/qwen2", bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);

    AhaTokenizer *tok = aha_tokenizer_load(FIXTURES "/qwen2");
    assert_non_null(tok);
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, "Hello <|im_end|> 42", 19, AHA_TOKENIZE_PARSE_SPECIAL, &ids), 0);
    char want[256];
    size_t used = 0;
    for (size_t i = 0; i < ids.count; i++) used += (size_t)snprintf(want + used, sizeof want - used, i ? " %d" : "%d", ids.ids[i]);
    snprintf(want + used, sizeof want - used, "\n");
    assert_string_equal(out, want);
    aha_token_ids_free(&ids);
    aha_tokenizer_free(tok);

    want[strlen(want) - 1] = '\0';
    snprintf(cmd, sizeof cmd, "echo '%s' | '%s' tokenize --decode --model " FIXTURES "/qwen2", want, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "Hello <|im_end|> 42\n");
    snprintf(cmd, sizeof cmd, "echo '%s' | '%s' tokenize --decode --skip-special --model " FIXTURES "/qwen2", want, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "Hello  42\n");

    snprintf(cmd, sizeof cmd, "echo 1 x | '%s' tokenize --decode --model " FIXTURES "/qwen2 2>&1", bin);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "aha tokenize: error: stdin: expected token ids, got 'x"));
    snprintf(cmd, sizeof cmd, "echo hi | '%s' tokenize --model /no/such 2>&1", bin);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "aha tokenize: error: tokenizer: /no/such: No such file"));
    snprintf(cmd, sizeof cmd, "echo hi | '%s' tokenize 2>&1", bin);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "--model DIR is required"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges_by_rank_leftmost_first),
        cmocka_unit_test(test_qwen2_lookups_and_config),
        cmocka_unit_test(test_file_path_reads_sibling_config),
        cmocka_unit_test(test_stream_holds_partial_characters),
        cmocka_unit_test(test_threads_share_a_tokenizer),
        cmocka_unit_test(test_invalid_utf8_is_an_error_without_damage),
        cmocka_unit_test(test_bad_files_are_clear_errors),
        cmocka_unit_test(test_cli_round_trip),
    };
    return cmocka_run_group_tests(tests, make_tmp, remove_tmp);
}
