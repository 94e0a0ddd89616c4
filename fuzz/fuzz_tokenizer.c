/* tokenizer.json: the loader (vocab, merges, added tokens, pre-tokenizer, normalizer,
 * decoder). The input is "tokenizer.json\0text"; an accepted tokenizer encodes the text
 * (a fixed one when there is no NUL) and decodes the ids back. */
#include "aha/tokenizer.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char fixed[] = "Hello, world! 12+34=46 <|im_start|>user\n\xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd  ";
    const uint8_t *nul = memchr(data, '\0', size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : fixed;
    size_t text_len = nul ? size - json_len - 1 : sizeof fixed - 1;
    const char *path = fuzz_write("tokenizer.json", data, json_len);
    AhaTokenizer *tok = aha_tokenizer_load(path);
    if (!tok) return 0;
    AhaTokenIds ids = {0};
    if (aha_tokenizer_encode(tok, text, text_len, AHA_TOKENIZE_PARSE_SPECIAL, &ids) == 0) {
        char *back = aha_tokenizer_decode(tok, ids.ids, ids.count, 0, NULL);
        free(back);
    }
    aha_token_ids_free(&ids);
    int32_t probe[] = {-1, 0, 1, 2, 255, 256, aha_tokenizer_vocab_size(tok) - 1, aha_tokenizer_vocab_size(tok)};
    char *decoded = aha_tokenizer_decode(tok, probe, sizeof probe / sizeof probe[0], 1, NULL);
    free(decoded);
    aha_tokenizer_free(tok);
    return 0;
}
