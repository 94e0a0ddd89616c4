/* Parity with the Hugging Face `tokenizers` library: for every string of
 * tests/fixtures/tokenizer/corpus.jsonl and every fixture tokenizer, the ids must be the
 * library's (count + FNV-1a hash, and in full for the first strings), the ids with special
 * tokens not parsed likewise, and decoding (plain, skip_special, streamed) must give the
 * library's text exactly. Fixtures: scripts/make_tokenizer_fixtures.py. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/tokenizer.h"

#define FIXTURES "tests/fixtures/tokenizer"
#define MAX_REPORTS 8

typedef struct {
    char **text;
    size_t *len;
    size_t count;
} Corpus;

static Corpus corpus;

static int load_corpus(void **state) {
    (void)state;
    FILE *f = fopen(FIXTURES "/corpus.jsonl", "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        json_t *s = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!json_is_string(s)) return -1;
        corpus.text = realloc(corpus.text, (corpus.count + 1) * sizeof *corpus.text);
        corpus.len = realloc(corpus.len, (corpus.count + 1) * sizeof *corpus.len);
        corpus.len[corpus.count] = json_string_length(s);
        corpus.text[corpus.count] = malloc(corpus.len[corpus.count] + 1);
        memcpy(corpus.text[corpus.count], json_string_value(s), corpus.len[corpus.count] + 1);
        corpus.count++;
        json_decref(s);
    }
    free(line);
    fclose(f);
    return corpus.count >= 5000 ? 0 : -1;
}

static int free_corpus(void **state) {
    (void)state;
    for (size_t i = 0; i < corpus.count; i++) free(corpus.text[i]);
    free(corpus.text);
    free(corpus.len);
    return 0;
}

static uint64_t fnv_ids(const int32_t *ids, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) h = (h ^ (((uint32_t)ids[i] >> (8 * b)) & 0xFF)) * 0x100000001B3ull;
    return h;
}

static uint64_t fnv_text(const char *s, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001B3ull;
    return h;
}

/* "key=" field of a line, NULL when absent. */
static const char *field(const char *line, const char *key) {
    size_t k = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += k)
        if ((p == line || p[-1] == ' ') && p[k] == '=') return p + k + 1;
    return NULL;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "    %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 64 ? " ...\n" : "\n");
}

typedef struct {
    size_t strings, ids, no_special, decoded, skipped, streamed, reports;
} Failures;

static void report(Failures *f, const char *name, size_t i, const char *what) {
    if (f->reports++ >= MAX_REPORTS) return;
    fprintf(stderr, "  %s: corpus[%zu] %s; text: ", name, i, what);
    for (size_t k = 0; k < corpus.len[i] && k < 120; k++) {
        unsigned char c = (unsigned char)corpus.text[i][k];
        if (c < 0x20 || c == 0x7F) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputc('\n', stderr);
}

static void check_decode(const AhaTokenizer *tok, const AhaTokenIds *ids, size_t i,
                         const char *line, const char *name, Failures *f) {
    uint64_t want = fnv_text(corpus.text[i], corpus.len[i]);
    const char *d = field(line, "decoded");
    if (d) want = strtoull(d, NULL, 16);
    uint64_t want_skip = want;
    const char *s = field(line, "skip");
    if (s) want_skip = strtoull(s, NULL, 16);

    size_t len;
    char *text = aha_tokenizer_decode(tok, ids->ids, ids->count, 0, &len);
    assert_non_null(text);
    if (fnv_text(text, len) != want) {
        f->decoded++;
        report(f, name, i, "decode differs");
        fprintf(stderr, "    decoded: %.*s\n", (int)(len < 200 ? len : 200), text);
    }
    /* streaming, one id at a time, must give the same bytes */
    AhaDecodeStream *stream = aha_decode_stream_new(tok, 0);
    assert_non_null(stream);
    char *joined = malloc(len + 64);
    size_t used = 0, cap = len + 64;
    for (size_t k = 0; k <= ids->count; k++) {
        const char *piece;
        size_t n;
        if (k < ids->count) assert_int_equal(aha_decode_stream_push(stream, ids->ids[k], &piece, &n), 0);
        else assert_int_equal(aha_decode_stream_flush(stream, &piece, &n), 0);
        if (used + n > cap) joined = realloc(joined, cap = (used + n) * 2);
        memcpy(joined + used, piece, n);
        used += n;
    }
    if (used != len || memcmp(joined, text, len) != 0) {
        f->streamed++;
        report(f, name, i, "streamed decode differs from decode");
    }
    free(joined);
    aha_decode_stream_free(stream);
    free(text);

    text = aha_tokenizer_decode(tok, ids->ids, ids->count, 1, &len);
    assert_non_null(text);
    if (fnv_text(text, len) != want_skip) {
        f->skipped++;
        report(f, name, i, "decode with skip_special differs");
    }
    free(text);
}

static void check_tokenizer(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "/%s", name);
    AhaTokenizer *tok = aha_tokenizer_load(path);
    if (!tok) fprintf(stderr, "%s\n", aha_error_message());
    assert_non_null(tok);

    snprintf(path, sizeof path, FIXTURES "/%s/expected.txt", name);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    char *line = NULL;
    size_t cap = 0, stride = 1, k = 0, tested = 0;
    Failures f = {0};
    assert_true(getline(&line, &cap, file) > 0);
    assert_int_equal(sscanf(line, "# line k: corpus[k*%zu]", &stride), 1);
    while (getline(&line, &cap, file) > 0) {
        size_t i = k++ * stride;
        assert_true(i < corpus.count);
        tested++;
        const char *want = field(line, "ids");
        assert_non_null(want);
        size_t want_count = strtoull(want, NULL, 10);
        uint64_t want_hash = strtoull(strchr(want, ':') + 1, NULL, 16);

        AhaTokenIds ids = {0};
        if (aha_tokenizer_encode(tok, corpus.text[i], corpus.len[i], AHA_TOKENIZE_PARSE_SPECIAL, &ids) != 0) {
            fprintf(stderr, "  %s: corpus[%zu]: %s\n", name, i, aha_error_message());
            fail();
        }
        if (ids.count != want_count || fnv_ids(ids.ids, ids.count) != want_hash) {
            f.ids++;
            report(&f, name, i, "ids differ");
            print_ids("aha", ids.ids, ids.count);
            fprintf(stderr, "    library: %zu ids\n", want_count);
        }
        const char *full = field(line, "full");
        if (full) { /* the explicit list must agree with the hash: guards the fixture itself */
            AhaTokenIds listed = {0};
            for (char *end; *full && *full != ' ' && *full != '\n'; full = end + (*end == ',')) {
                assert_int_equal(aha_token_ids_push(&listed, (int32_t)strtol(full, &end, 10)), 0);
            }
            assert_int_equal(listed.count, want_count);
            assert_true(fnv_ids(listed.ids, listed.count) == want_hash);
            if (ids.count == listed.count && ids.count > 0)
                if (memcmp(ids.ids, listed.ids, ids.count * sizeof *ids.ids) != 0) print_ids("library", listed.ids, listed.count);
            aha_token_ids_free(&listed);
        }
        const char *plain = field(line, "nospecial");
        if (plain) {
            AhaTokenIds no_special = {0};
            assert_int_equal(aha_tokenizer_encode(tok, corpus.text[i], corpus.len[i], 0, &no_special), 0);
            if (no_special.count != strtoull(plain, NULL, 10) ||
                fnv_ids(no_special.ids, no_special.count) != strtoull(strchr(plain, ':') + 1, NULL, 16)) {
                f.no_special++;
                report(&f, name, i, "ids without parsing special tokens differ");
                print_ids("aha", no_special.ids, no_special.count);
            }
            aha_token_ids_free(&no_special);
        }
        check_decode(tok, &ids, i, line, name, &f);
        aha_token_ids_free(&ids);
    }
    free(line);
    fclose(file);
    fprintf(stderr, "%s: %zu strings, mismatches: ids %zu, no-special ids %zu, decode %zu, "
            "skip-special decode %zu, streamed %zu\n", name, tested, f.ids, f.no_special,
            f.decoded, f.skipped, f.streamed);
    assert_true(tested * stride >= corpus.count - stride + 1);
    assert_int_equal(f.ids + f.no_special + f.decoded + f.skipped + f.streamed, 0);
    aha_tokenizer_free(tok);
}

static void test_qwen2(void **state) { (void)state; check_tokenizer("qwen2"); }
static void test_deepseek3(void **state) { (void)state; check_tokenizer("deepseek3"); }
static void test_gpt2_added(void **state) { (void)state; check_tokenizer("gpt2_added"); }
static void test_splits(void **state) { (void)state; check_tokenizer("splits"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen2),
        cmocka_unit_test(test_deepseek3),
        cmocka_unit_test(test_gpt2_added),
        cmocka_unit_test(test_splits),
    };
    return cmocka_run_group_tests(tests, load_corpus, free_corpus);
}
