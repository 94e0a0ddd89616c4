/* Loading tokenizer.json / tokenizer_config.json, decoding, the streaming decoder. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "aha/error.h"
#include "policy/tokenizer_internal.h"

#define MAX_TOKEN_ID (1 << 24) /* a larger id in a file is a mistake, not a vocabulary */

/* ---------------------------------------------------------------- JSON helpers */

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* A boolean field; absent or null gives the default. */
static int get_bool(const json_t *obj, const char *key, int fallback, int *out, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return 0;
    }
    AHA_REQUIRE(json_is_boolean(v), "%s.%s: expected a boolean, got %s", where, key,
                json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

static const char *get_type(const json_t *obj) {
    return json_string_value(json_object_get(obj, "type"));
}

/* ---------------------------------------------------------------- byte-level text */

/* The library's ByteLevel decoder for one token: every character maps back to its byte
 * when all of them are in the GPT-2 table, otherwise the token's own UTF-8 bytes. */
static int byte_level_decode(const char *token, size_t len, char *out, size_t *out_len) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)token + i,
                                              (utf8proc_ssize_t)(len - i), &cp);
        int b = k > 0 ? tok_codepoint_to_byte((uint32_t)cp) : -1;
        if (b < 0) {
            memcpy(out, token, len);
            *out_len = len;
            return 0;
        }
        out[n++] = (char)b;
        i += (size_t)k;
    }
    *out_len = n;
    return 0;
}

/* ---------------------------------------------------------------- sections */

static int parse_normalizer(AhaTokenizer *tok, const json_t *norm) {
    if (!norm || json_is_null(norm)) return 0;
    AHA_REQUIRE(json_is_object(norm), "normalizer: expected an object, got %s", json_type_name(norm));
    const char *type = get_type(norm);
    AHA_REQUIRE(type, "normalizer: missing \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(norm, "normalizers");
        AHA_REQUIRE(json_is_array(list), "normalizer.normalizers: expected an array");
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            if (tok->normalizer != NORM_NONE)
                return aha_errorf("normalizer: a Sequence of more than one normalizer is not "
                                  "supported");
            if (parse_normalizer(tok, item) != 0)
                return aha_error_prefix("normalizer.normalizers[%zu]", i);
        }
        return 0;
    }
    if (strcmp(type, "NFC") == 0) tok->normalizer = NORM_NFC;
    else if (strcmp(type, "NFD") == 0) tok->normalizer = NORM_NFD;
    else if (strcmp(type, "NFKC") == 0) tok->normalizer = NORM_NFKC;
    else if (strcmp(type, "NFKD") == 0) tok->normalizer = NORM_NFKD;
    else
        return aha_errorf("normalizer type \"%s\" is not supported (NFC, NFD, NFKC, NFKD or a "
                          "Sequence of one of them)", type);
    return 0;
}

static int parse_split(PreTokStep *step, const json_t *obj, const char *where) {
    json_t *pattern = json_object_get(obj, "pattern");
    AHA_REQUIRE(json_is_object(pattern), "%s.pattern: expected {\"Regex\": ...} or {\"String\": ...}", where);
    const char *regex = json_string_value(json_object_get(pattern, "Regex"));
    json_t *literal = json_object_get(pattern, "String");
    if (regex) {
        step->regex = tok_regex_compile(regex, where);
        if (!step->regex) return -1;
    } else if (json_is_string(literal)) {
        AHA_REQUIRE(json_string_length(literal) > 0, "%s.pattern.String: empty pattern", where);
        step->literal_len = json_string_length(literal);
        step->literal = aha_malloc(step->literal_len + 1);
        AHA_CHECK_ALLOC(step->literal);
        memcpy(step->literal, json_string_value(literal), step->literal_len + 1);
    } else {
        return aha_errorf("%s.pattern: expected {\"Regex\": ...} or {\"String\": ...}", where);
    }
    const char *behavior = json_string_value(json_object_get(obj, "behavior"));
    AHA_REQUIRE(behavior, "%s.behavior: expected a string", where);
    if (strcmp(behavior, "Isolated") == 0) step->behavior = SPLIT_ISOLATED;
    else if (strcmp(behavior, "Removed") == 0) step->behavior = SPLIT_REMOVED;
    else if (strcmp(behavior, "MergedWithPrevious") == 0) step->behavior = SPLIT_MERGED_WITH_PREVIOUS;
    else if (strcmp(behavior, "MergedWithNext") == 0) step->behavior = SPLIT_MERGED_WITH_NEXT;
    else if (strcmp(behavior, "Contiguous") == 0) step->behavior = SPLIT_CONTIGUOUS;
    else
        return aha_errorf("%s.behavior: \"%s\" is not one of Isolated, Removed, "
                          "MergedWithPrevious, MergedWithNext, Contiguous", where, behavior);
    return get_bool(obj, "invert", 0, &step->invert, where);
}

static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int parse_step(PreTokStep *step, const json_t *obj, const char *where) {
    AHA_REQUIRE(json_is_object(obj), "%s: expected an object, got %s", where, json_type_name(obj));
    const char *type = get_type(obj);
    AHA_REQUIRE(type, "%s: missing \"type\"", where);
    if (strcmp(type, "Split") == 0) return parse_split(step, obj, where);
    if (strcmp(type, "ByteLevel") == 0) {
        step->is_byte_level = 1;
        AHA_TRY(get_bool(obj, "add_prefix_space", 1, &step->add_prefix_space, where));
        AHA_TRY(get_bool(obj, "use_regex", 1, &step->use_regex, where));
        if (step->use_regex) {
            step->regex = tok_regex_compile(gpt2_regex, where);
            if (!step->regex) return -1;
        }
        return 0;
    }
    return aha_errorf("%s: pre-tokenizer type \"%s\" is not supported (Sequence of Split and "
                      "ByteLevel)", where, type);
}

static int parse_pre_tokenizer(AhaTokenizer *tok, const json_t *pre) {
    AHA_REQUIRE(pre && !json_is_null(pre),
                "pre_tokenizer: missing; only byte-level BPE (a ByteLevel pre-tokenizer) is "
                "supported");
    AHA_REQUIRE(json_is_object(pre), "pre_tokenizer: expected an object, got %s", json_type_name(pre));
    const char *type = get_type(pre);
    AHA_REQUIRE(type, "pre_tokenizer: missing \"type\"");
    json_t *single = NULL;
    json_t *list = NULL;
    if (strcmp(type, "Sequence") == 0) {
        list = json_object_get(pre, "pretokenizers");
        AHA_REQUIRE(json_is_array(list), "pre_tokenizer.pretokenizers: expected an array");
    } else {
        single = (json_t *)pre;
    }
    size_t count = list ? json_array_size(list) : 1;
    AHA_REQUIRE(count > 0, "pre_tokenizer: empty Sequence; a ByteLevel step is required");
    tok->steps = aha_calloc(count, sizeof *tok->steps);
    AHA_CHECK_ALLOC(tok->steps);
    for (size_t i = 0; i < count; i++) {
        char where[64];
        if (list) snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%zu]", i);
        else snprintf(where, sizeof where, "pre_tokenizer");
        tok->step_count = i + 1;
        AHA_TRY(parse_step(&tok->steps[i], list ? json_array_get(list, i) : single, where));
        if (tok->steps[i].is_byte_level && i + 1 != count)
            return aha_errorf("%s: ByteLevel must be the last pre-tokenizer", where);
    }
    AHA_REQUIRE(tok->steps[count - 1].is_byte_level,
                "pre_tokenizer: no ByteLevel step; only byte-level BPE is supported");
    return 0;
}

static int parse_decoder(const json_t *dec) {
    AHA_REQUIRE(dec && !json_is_null(dec), "decoder: missing; expected ByteLevel");
    const char *type = get_type(dec);
    AHA_REQUIRE(type, "decoder: missing \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(dec, "decoders");
        if (json_array_size(list) == 1) return parse_decoder(json_array_get(list, 0));
        return aha_errorf("decoder: a Sequence decoder is not supported (ByteLevel only)");
    }
    AHA_REQUIRE(strcmp(type, "ByteLevel") == 0,
                "decoder type \"%s\" is not supported (ByteLevel only)", type);
    return 0;
}

/* Splits a legacy "left right" merge; exactly one space, as the library requires. */
static int split_merge_string(const char *s, size_t len, size_t *space) {
    const char *sp = memchr(s, ' ', len);
    if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp - s) - 1)) return -1;
    *space = (size_t)(sp - s);
    return 0;
}

static int parse_model(AhaTokenizer *tok, const json_t *model) {
    AHA_REQUIRE(json_is_object(model), "model: expected an object");
    const char *type = get_type(model);
    if (type && strcmp(type, "BPE") != 0)
        return aha_errorf("model type \"%s\" is not supported: aha reads byte-level BPE "
                          "tokenizers only (Unigram/SentencePiece, WordPiece and WordLevel "
                          "are not)", type);
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    AHA_REQUIRE(json_is_object(vocab), "model.vocab: expected an object of token -> id");
    AHA_REQUIRE(json_is_array(merges), "model.merges: expected an array");

    json_t *v;
    if ((v = json_object_get(model, "dropout")) && !json_is_null(v) && json_number_value(v) > 0)
        return aha_errorf("model.dropout: BPE dropout is not supported (it makes encoding random)");
    const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *suffix = json_string_value(json_object_get(model, "end_of_word_suffix"));
    AHA_REQUIRE(!prefix || !*prefix, "model.continuing_subword_prefix is not supported");
    AHA_REQUIRE(!suffix || !*suffix, "model.end_of_word_suffix is not supported");
    int byte_fallback = 0;
    AHA_TRY(get_bool(model, "byte_fallback", 0, &byte_fallback, "model"));
    AHA_TRY(get_bool(model, "ignore_merges", 0, &tok->ignore_merges, "model"));
    AHA_TRY(get_bool(model, "fuse_unk", 0, &tok->fuse_unk, "model"));

    AHA_TRY(tok_strmap_init(&tok->vocab, json_object_size(vocab)));
    const char *key;
    json_object_foreach(vocab, key, v) {
        AHA_REQUIRE(json_is_integer(v) && json_integer_value(v) >= 0 &&
                        json_integer_value(v) < MAX_TOKEN_ID,
                    "model.vocab[\"%s\"]: expected an id in [0, %d)", key, MAX_TOKEN_ID);
        int32_t id = (int32_t)json_integer_value(v);
        AHA_TRY(tok_strmap_put(&tok->vocab, key, strlen(key), id));
        if (id + 1 > tok->vocab_size) tok->vocab_size = id + 1;
    }

    tok->unk_id = -1;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (unk) {
        tok->unk_id = tok_strmap_get(&tok->vocab, unk, strlen(unk));
        AHA_REQUIRE(tok->unk_id >= 0, "model.unk_token \"%s\" is not in model.vocab", unk);
    }
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = tok_byte_to_codepoint(b);
        char s[3];
        size_t n = 0;
        if (cp < 0x80) {
            s[n++] = (char)cp;
        } else {
            s[n++] = (char)(0xC0 | (cp >> 6));
            s[n++] = (char)(0x80 | (cp & 0x3F));
        }
        tok->byte_id[b] = tok_strmap_get(&tok->vocab, s, n);
        if (tok->byte_id[b] < 0 && byte_fallback)
            return aha_errorf("model.byte_fallback is true and byte 0x%02X has no byte-level "
                              "token; byte-fallback (SentencePiece-style) BPE is not supported", b);
    }

    size_t count = json_array_size(merges);
    AHA_TRY(tok_merges_init(tok, count));
    int32_t rank = 0;
    size_t i;
    json_array_foreach(merges, i, v) {
        const char *left, *right;
        size_t left_len, right_len;
        char buffer[512];
        char *owned = NULL;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            size_t len = json_string_length(v);
            if (len >= 8 && strncmp(s, "#version", 8) == 0) continue;
            size_t space;
            if (split_merge_string(s, len, &space) != 0)
                return aha_errorf("model.merges[%zu]: \"%s\" is not two tokens separated by "
                                  "one space", i, s);
            left = s;
            left_len = space;
            right = s + space + 1;
            right_len = len - space - 1;
        } else if (json_is_array(v) && json_array_size(v) == 2 &&
                   json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1))) {
            left = json_string_value(json_array_get(v, 0));
            left_len = json_string_length(json_array_get(v, 0));
            right = json_string_value(json_array_get(v, 1));
            right_len = json_string_length(json_array_get(v, 1));
        } else {
            return aha_errorf("model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
        }
        int32_t left_id = tok_strmap_get(&tok->vocab, left, left_len);
        int32_t right_id = tok_strmap_get(&tok->vocab, right, right_len);
        AHA_REQUIRE(left_id >= 0 && right_id >= 0,
                    "model.merges[%zu]: \"%.*s\" + \"%.*s\": %s is not in model.vocab", i,
                    (int)left_len, left, (int)right_len, right,
                    left_id < 0 ? "the left token" : "the right token");
        char *joined = buffer;
        if (left_len + right_len > sizeof buffer) {
            joined = owned = aha_malloc(left_len + right_len);
            AHA_CHECK_ALLOC(owned);
        }
        memcpy(joined, left, left_len);
        memcpy(joined + left_len, right, right_len);
        int32_t merged = tok_strmap_get(&tok->vocab, joined, left_len + right_len);
        free(owned);
        AHA_REQUIRE(merged >= 0, "model.merges[%zu]: the merged token \"%.*s%.*s\" is not in "
                    "model.vocab", i, (int)left_len, left, (int)right_len, right);
        AHA_TRY(tok_merges_put(tok, left_id, right_id, rank++, merged));
    }
    return 0;
}

static int compare_added(const void *a, const void *b) {
    const AddedToken *x = a, *y = b;
    unsigned char fx = (unsigned char)x->content[0], fy = (unsigned char)y->content[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->content_len != y->content_len) return x->content_len > y->content_len ? -1 : 1;
    return x->id - y->id;
}

static int parse_added_tokens(AhaTokenizer *tok, const json_t *list) {
    AHA_TRY(tok_strmap_init(&tok->added_ids, 64));
    if (!list || json_is_null(list)) return 0;
    AHA_REQUIRE(json_is_array(list), "added_tokens: expected an array");
    tok->added = aha_calloc(json_array_size(list), sizeof *tok->added);
    AHA_CHECK_ALLOC(tok->added);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        AHA_REQUIRE(json_is_object(item), "%s: expected an object", where);
        json_t *id = json_object_get(item, "id");
        json_t *content = json_object_get(item, "content");
        AHA_REQUIRE(json_is_integer(id) && json_integer_value(id) >= 0 &&
                        json_integer_value(id) < MAX_TOKEN_ID,
                    "%s.id: expected an id in [0, %d)", where, MAX_TOKEN_ID);
        AHA_REQUIRE(json_is_string(content), "%s.content: expected a string", where);
        AddedToken *t = &tok->added[tok->added_count++];
        t->id = (int32_t)json_integer_value(id);
        AHA_TRY(get_bool(item, "single_word", 0, &t->single_word, where));
        AHA_TRY(get_bool(item, "lstrip", 0, &t->lstrip, where));
        AHA_TRY(get_bool(item, "rstrip", 0, &t->rstrip, where));
        AHA_TRY(get_bool(item, "special", 0, &t->special, where));
        AHA_TRY(get_bool(item, "normalized", !t->special, &t->normalized, where));
        const char *text = json_string_value(content);
        size_t len = json_string_length(content);
        AHA_TRY(tok_strmap_put(&tok->added_ids, text, len, t->id));
        /* A normalized token is matched in normalized text, so in its normalized form. */
        NormKind kind = t->normalized ? tok->normalizer : NORM_NONE;
        t->content = tok_normalize(kind, text, len, &t->content_len);
        if (!t->content) return aha_error_prefix("%s", where);
        if (t->id + 1 > tok->vocab_size) tok->vocab_size = t->id + 1;
    }
    /* Empty tokens never match; they stay for decoding but out of the buckets. */
    qsort(tok->added, tok->added_count, sizeof *tok->added, compare_added);
    size_t k = 0;
    while (k < tok->added_count && tok->added[k].content_len == 0) k++;
    for (unsigned b = 0; b <= 256; b++) {
        while (k < tok->added_count && (unsigned char)tok->added[k].content[0] < b) k++;
        tok->added_bucket[b] = k;
    }
    return 0;
}

/* Decoded bytes and the special flag of every id. */
static int build_token_table(AhaTokenizer *tok) {
    size_t n = (size_t)tok->vocab_size;
    tok->token_offset = aha_calloc(n + 1, sizeof *tok->token_offset);
    tok->token_special = aha_calloc(n, 1);
    AHA_CHECK_ALLOC(tok->token_offset);
    AHA_CHECK_ALLOC(tok->token_special);
    /* source[id] = (pointer, length) of the token's string; added tokens win */
    const char **text = aha_calloc(n, sizeof *text);
    size_t *text_len = aha_calloc(n, sizeof *text_len);
    if (!text || !text_len) {
        free(text);
        free(text_len);
        return -1;
    }
    size_t total = 0;
    for (size_t e = 0; e < tok->vocab.count; e++) {
        int32_t id = tok->vocab.value[e];
        text[id] = tok->vocab.pool + tok->vocab.key_offset[e];
        text_len[id] = tok->vocab.key_len[e];
    }
    for (size_t k = 0; k < tok->added_count; k++) {
        const AddedToken *t = &tok->added[k];
        text[t->id] = t->content;
        text_len[t->id] = t->content_len;
        tok->token_special[t->id] = (unsigned char)t->special;
    }
    for (size_t id = 0; id < n; id++) total += text_len[id];
    tok->token_bytes = aha_malloc(total + 1);
    if (!tok->token_bytes) {
        free(text);
        free(text_len);
        return -1;
    }
    size_t at = 0;
    for (size_t id = 0; id < n; id++) {
        tok->token_offset[id] = at;
        size_t len = 0;
        if (text[id]) byte_level_decode(text[id], text_len[id], tok->token_bytes + at, &len);
        at += len;
    }
    tok->token_offset[n] = at;
    free(text);
    free(text_len);
    return 0;
}

/* tokenizer_config.json: special token names and the chat template's shape. */
static const char *config_token_name(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static int parse_config(AhaTokenizer *tok, const char *path) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return aha_errorf("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    int rc = 0;
    if (!json_is_object(root)) rc = aha_errorf("%s: expected a JSON object", path);
    const char *keys[3] = {"eos_token", "bos_token", "pad_token"};
    int32_t *ids[3] = {&tok->eos_id, &tok->bos_id, &tok->pad_id};
    for (int k = 0; k < 3 && rc == 0; k++) {
        json_t *v = json_object_get(root, keys[k]);
        if (!v || json_is_null(v)) continue;
        const char *name = config_token_name(v);
        if (!name) {
            rc = aha_errorf("%s: %s: expected a string or {\"content\": ...}", path, keys[k]);
            break;
        }
        *ids[k] = aha_tokenizer_token_id(tok, name);
        if (*ids[k] < 0) rc = aha_errorf("%s: %s \"%s\" is not a token of the tokenizer", path, keys[k], name);
    }
    json_t *chat = rc == 0 ? json_object_get(root, "chat_template") : NULL;
    const char *template = NULL;
    if (json_is_string(chat)) {
        template = json_string_value(chat);
    } else if (json_is_array(chat)) { /* [{name, template}]: the "default" one, else the first */
        size_t i;
        json_t *item;
        json_array_foreach(chat, i, item) {
            const char *t = json_string_value(json_object_get(item, "template"));
            const char *name = json_string_value(json_object_get(item, "name"));
            if (t && (!template || (name && strcmp(name, "default") == 0))) template = t;
        }
    }
    if (template)
        tok->chat_shape = strstr(template, "<|im_start|>") ? AHA_CHAT_CHATML : AHA_CHAT_OTHER;
    json_decref(root);
    return rc;
}

static int parse_tokenizer_json(AhaTokenizer *tok, const char *path) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return aha_errorf("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    int rc = 0;
    if (!json_is_object(root)) rc = aha_errorf("expected a JSON object");
    if (rc == 0) rc = parse_model(tok, json_object_get(root, "model"));
    if (rc == 0) rc = parse_normalizer(tok, json_object_get(root, "normalizer"));
    if (rc == 0) rc = parse_pre_tokenizer(tok, json_object_get(root, "pre_tokenizer"));
    if (rc == 0) rc = parse_decoder(json_object_get(root, "decoder"));
    if (rc == 0) rc = parse_added_tokens(tok, json_object_get(root, "added_tokens"));
    if (rc == 0) rc = build_token_table(tok);
    json_decref(root);
    if (rc != 0) return aha_error_prefix("%s", path);
    return 0;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

AhaTokenizer *aha_tokenizer_load(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        aha_error_errno("tokenizer: %s", path);
        return NULL;
    }
    char json_path[4096], config_path[4096];
    if (S_ISDIR(st.st_mode)) {
        snprintf(json_path, sizeof json_path, "%s/tokenizer.json", path);
        snprintf(config_path, sizeof config_path, "%s/tokenizer_config.json", path);
        if (!is_file(json_path)) {
            char spm[4096];
            snprintf(spm, sizeof spm, "%s/tokenizer.model", path);
            if (is_file(spm))
                aha_errorf("%s: has tokenizer.model (SentencePiece) but no tokenizer.json; "
                           "SentencePiece tokenizers are not supported", path);
            else
                aha_errorf("%s: no tokenizer.json in this directory", path);
            return NULL;
        }
    } else {
        snprintf(json_path, sizeof json_path, "%s", path);
        const char *slash = strrchr(path, '/');
        int dir_len = slash ? (int)(slash - path) : 1;
        snprintf(config_path, sizeof config_path, "%.*s/tokenizer_config.json", dir_len,
                 slash ? path : ".");
    }
    AhaTokenizer *tok = aha_calloc(1, sizeof *tok);
    if (!tok) return NULL;
    tok->eos_id = tok->bos_id = tok->pad_id = -1;
    tok->unk_id = -1;
    pthread_mutex_init(&tok->cache_lock, NULL);
    if (tok_strmap_init(&tok->cache, 1024) != 0 || parse_tokenizer_json(tok, json_path) != 0 ||
        (is_file(config_path) && parse_config(tok, config_path) != 0)) {
        aha_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

void aha_tokenizer_free(AhaTokenizer *tok) {
    if (!tok) return;
    tok_strmap_free(&tok->vocab);
    tok_strmap_free(&tok->added_ids);
    tok_strmap_free(&tok->cache);
    free(tok->merges);
    for (size_t i = 0; i < tok->step_count; i++) {
        pcre2_code_free(tok->steps[i].regex);
        free(tok->steps[i].literal);
    }
    free(tok->steps);
    for (size_t i = 0; i < tok->added_count; i++) free(tok->added[i].content);
    free(tok->added);
    free(tok->token_bytes);
    free(tok->token_offset);
    free(tok->token_special);
    free(tok->cache_ids);
    pthread_mutex_destroy(&tok->cache_lock);
    free(tok);
}

/* ---------------------------------------------------------------- lookups */

int aha_tokenizer_encode(const AhaTokenizer *tok, const char *text, size_t len, int flags,
                         AhaTokenIds *out) {
    size_t before = out->count;
    if (tok_encode_text(tok, text, len, flags, out) != 0) {
        out->count = before; /* a failed call leaves the list as it was */
        return -1;
    }
    return 0;
}

const char *aha_tokenizer_token_bytes(const AhaTokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->vocab_size) {
        *len = 0;
        return "";
    }
    *len = tok->token_offset[id + 1] - tok->token_offset[id];
    return tok->token_bytes + tok->token_offset[id];
}

int32_t aha_tokenizer_token_id(const AhaTokenizer *tok, const char *token) {
    size_t len = strlen(token);
    int32_t id = tok_strmap_get(&tok->added_ids, token, len);
    return id >= 0 ? id : tok_strmap_get(&tok->vocab, token, len);
}

int aha_tokenizer_is_special(const AhaTokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->vocab_size && tok->token_special[id];
}

int32_t aha_tokenizer_vocab_size(const AhaTokenizer *tok) { return tok->vocab_size; }
int32_t aha_tokenizer_eos_id(const AhaTokenizer *tok) { return tok->eos_id; }
int32_t aha_tokenizer_bos_id(const AhaTokenizer *tok) { return tok->bos_id; }
int32_t aha_tokenizer_pad_id(const AhaTokenizer *tok) { return tok->pad_id; }
AhaChatShape aha_tokenizer_chat_shape(const AhaTokenizer *tok) { return tok->chat_shape; }

/* ---------------------------------------------------------------- decoding */

typedef struct {
    char *data;
    size_t len, cap;
} Buffer;

static int buffer_append(Buffer *b, const char *bytes, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *data = aha_realloc(b->data, cap);
        AHA_CHECK_ALLOC(data);
        b->data = data;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Appends bytes[0..n) as valid UTF-8, each maximal invalid part replaced by U+FFFD (as
 * Rust's from_utf8_lossy). With hold_partial, a cut character at the end is not emitted;
 * returns how many bytes were consumed. */
static size_t utf8_lossy(Buffer *out, const char *bytes, size_t n, int hold_partial, int *rc) {
    size_t i = 0;
    *rc = 0;
    while (i < n && *rc == 0) {
        int k = tok_utf8_sequence((const unsigned char *)bytes + i, n - i);
        if (k > 0) {
            size_t run = i;
            while (run < n && (unsigned char)bytes[run] < 0x80) run++; /* ASCII fast path */
            if (run > i) {
                *rc = buffer_append(out, bytes + i, run - i);
                i = run;
                continue;
            }
            *rc = buffer_append(out, bytes + i, (size_t)k);
            i += (size_t)k;
        } else if (k == 0) {
            if (hold_partial) break;
            *rc = buffer_append(out, replacement, 3);
            i = n;
        } else {
            *rc = buffer_append(out, replacement, 3);
            i += (size_t)(-k);
        }
    }
    return i;
}

char *aha_tokenizer_decode(const AhaTokenizer *tok, const int32_t *ids, size_t n,
                           int skip_special, size_t *len) {
    Buffer raw = {0}, text = {0};
    int rc = buffer_append(&text, "", 0);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (skip_special && aha_tokenizer_is_special(tok, ids[i])) continue;
        size_t k;
        const char *bytes = aha_tokenizer_token_bytes(tok, ids[i], &k);
        rc = buffer_append(&raw, bytes, k);
    }
    if (rc == 0) utf8_lossy(&text, raw.data, raw.len, 0, &rc);
    free(raw.data);
    if (rc != 0) {
        free(text.data);
        return NULL;
    }
    if (len) *len = text.len;
    return text.data;
}

struct AhaDecodeStream {
    const AhaTokenizer *tok;
    int skip_special;
    Buffer pending; /* bytes of an unfinished character */
    Buffer text;    /* the last chunk handed out */
};

AhaDecodeStream *aha_decode_stream_new(const AhaTokenizer *tok, int skip_special) {
    AhaDecodeStream *s = aha_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->tok = tok;
    s->skip_special = skip_special;
    return s;
}

int aha_decode_stream_push(AhaDecodeStream *s, int32_t id, const char **text, size_t *len) {
    s->text.len = 0;
    AHA_TRY(buffer_append(&s->text, "", 0));
    if (!(s->skip_special && aha_tokenizer_is_special(s->tok, id))) {
        size_t k;
        const char *bytes = aha_tokenizer_token_bytes(s->tok, id, &k);
        AHA_TRY(buffer_append(&s->pending, bytes, k));
    }
    int rc;
    size_t used = utf8_lossy(&s->text, s->pending.data, s->pending.len, 1, &rc);
    AHA_TRY(rc);
    memmove(s->pending.data, s->pending.data + used, s->pending.len - used);
    s->pending.len -= used;
    *text = s->text.data;
    *len = s->text.len;
    return 0;
}

int aha_decode_stream_flush(AhaDecodeStream *s, const char **text, size_t *len) {
    s->text.len = 0;
    AHA_TRY(buffer_append(&s->text, "", 0));
    int rc;
    utf8_lossy(&s->text, s->pending.data, s->pending.len, 0, &rc);
    AHA_TRY(rc);
    s->pending.len = 0;
    *text = s->text.data;
    *len = s->text.len;
    return 0;
}

void aha_decode_stream_free(AhaDecodeStream *s) {
    if (!s) return;
    free(s->pending.data);
    free(s->text.data);
    free(s);
}
