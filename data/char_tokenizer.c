#include "aha/char_tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "aha/error.h"
#include "aha/fs.h"

static const char *const tag_tokens[] = {"<think>", "</think>", "<answer>", "</answer>"};

/* GPT-2's bytes_to_unicode for printable ASCII: space maps to U+0120, the rest to itself. */
static void byte_level_symbol(char c, char out[4]) {
    if (c == ' ') {
        memcpy(out, "\xc4\xa0", 3);
    } else {
        out[0] = c;
        out[1] = '\0';
    }
}

int aha_char_tokenizer_vocab_size(const char *charset) {
    return (int)strlen(charset) + (int)(sizeof tag_tokens / sizeof tag_tokens[0]) + 1;
}

static json_t *added_token(int id, const char *content, int special) {
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                     special);
}

static int write_json(json_t *root, const char *dir, const char *name) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return aha_errorf("%s/%s: path too long", dir, name);
    if (json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        return aha_errorf("%s: cannot write the file", path);
    return 0;
}

int aha_char_tokenizer_write(const char *dir, const char *charset) {
    size_t n = strlen(charset);
    AHA_REQUIRE(n > 0, "char tokenizer: the charset is empty");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)charset[i];
        AHA_REQUIRE(c >= 0x20 && c < 0x7f,
                    "char tokenizer: charset character %zu (byte 0x%02x) is not printable ASCII", i, c);
        AHA_REQUIRE(memchr(charset, c, i) == NULL,
                    "char tokenizer: charset character '%c' appears twice", c);
    }
    json_t *vocab = json_object();
    json_t *added = json_array();
    int failed = !vocab || !added;
    int id = 0;
    for (size_t i = 0; i < n && !failed; i++, id++) {
        char symbol[4];
        byte_level_symbol(charset[i], symbol);
        failed |= json_object_set_new(vocab, symbol, json_integer(id)) != 0;
    }
    for (size_t t = 0; t < sizeof tag_tokens / sizeof tag_tokens[0] && !failed; t++, id++) {
        failed |= json_object_set_new(vocab, tag_tokens[t], json_integer(id)) != 0;
        failed |= json_array_append_new(added, added_token(id, tag_tokens[t], 0)) != 0;
    }
    if (!failed) {
        failed |= json_object_set_new(vocab, AHA_CHAR_TOKENIZER_EOS, json_integer(id)) != 0;
        failed |= json_array_append_new(added, added_token(id, AHA_CHAR_TOKENIZER_EOS, 1)) != 0;
    }
    json_t *tokenizer = failed ? NULL : json_pack(
        "{s:s, s:n, s:n, s:o, s:n, s:{s:s, s:b, s:b, s:b}, s:n, s:{s:s, s:b, s:b, s:b},"
        " s:{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:[]}}",
        "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer",
        "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0,
        "post_processor",
        "decoder", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0,
        "model", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
        "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0,
        "vocab", vocab, "merges");
    if (!tokenizer) {
        if (failed) {
            json_decref(vocab);
            json_decref(added);
        }
        return aha_errorf("char tokenizer: out of memory building tokenizer.json");
    }
    int rc = aha_mkdir_p(dir);
    if (rc == 0) rc = write_json(tokenizer, dir, "tokenizer.json");
    json_decref(tokenizer);
    AHA_TRY(rc);
    json_t *config = json_pack("{s:s, s:s, s:n, s:s, s:i, s:b}", "tokenizer_class",
                               "PreTrainedTokenizerFast", "eos_token", AHA_CHAR_TOKENIZER_EOS,
                               "bos_token", "pad_token", AHA_CHAR_TOKENIZER_EOS,
                               "model_max_length", 4096, "clean_up_tokenization_spaces", 0);
    AHA_CHECK_ALLOC(config);
    rc = write_json(config, dir, "tokenizer_config.json");
    json_decref(config);
    return rc;
}
