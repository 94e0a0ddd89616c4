/* A character-level tokenizer written as a Hugging Face tokenizer.json (byte-level BPE with
 * no merges), for the tiny synthetic-task models: every character of the charset is one
 * token, and the reasoning tags and the end-of-text marker are single added tokens. The
 * `tokenizers` library and aha's loader read it alike. See docs/tiny-zero.md. */
#ifndef AHA_CHAR_TOKENIZER_H
#define AHA_CHAR_TOKENIZER_H

#ifdef __cplusplus
extern "C" {
#endif

/* The characters of the synthetic tasks: digits, arithmetic, brackets, separators. */
#define AHA_CHAR_TOKENIZER_DEFAULT_CHARSET "0123456789+-*/()=,. abcdefghijklmnopqrstuvwxyz"
#define AHA_CHAR_TOKENIZER_EOS "<|endoftext|>"

/* Writes DIR/tokenizer.json and DIR/tokenizer_config.json (DIR must exist). The charset is
 * printable ASCII, each character at most once; ids follow its order, then <think>,
 * </think>, <answer>, </answer> (added, not special) and <|endoftext|> (special; the eos
 * and pad token). */
int aha_char_tokenizer_write(const char *dir, const char *charset);
/* Vocabulary size of such a tokenizer: strlen(charset) + 5. */
int aha_char_tokenizer_vocab_size(const char *charset);

#ifdef __cplusplus
}
#endif

#endif
