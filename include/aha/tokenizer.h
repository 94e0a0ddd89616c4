/* Hugging Face tokenizer.json (byte-level BPE) for aha, matching the `tokenizers` library.
 *
 * Supported: model BPE (merges as "a b" strings or [["a","b"]] pairs, ignore_merges, unk
 * token), added tokens (leftmost-longest, special / single_word / lstrip / rstrip /
 * normalized), normalizer NFC/NFD/NFKC/NFKD or an empty Sequence, pre-tokenizer Sequence of
 * Split (Regex through PCRE2 UTF+UCP, String literal; every behaviour; invert) ending in
 * ByteLevel (add_prefix_space, use_regex), decoder ByteLevel. Anything else (Unigram,
 * WordPiece, WordLevel, SentencePiece-style Metaspace, ...) is refused by name at load time.
 * See docs/tokenizer.md.
 *
 * A loaded tokenizer is read-only except for an internal word cache behind a mutex, so
 * encode and decode may be called from several threads at once. */
#ifndef AHA_TOKENIZER_H
#define AHA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AhaTokenizer AhaTokenizer;

/* A growable list of token ids. Zero-initialise it; encode appends to it. */
typedef struct {
    int32_t *ids;    /* [capacity] */
    size_t count;
    size_t capacity;
} AhaTokenIds;

int aha_token_ids_push(AhaTokenIds *list, int32_t id);
void aha_token_ids_free(AhaTokenIds *list);

/* path: a model directory (reads DIR/tokenizer.json and, when present,
 * DIR/tokenizer_config.json) or the path of a tokenizer.json file (its directory's
 * tokenizer_config.json is read when present). NULL with the error recorded. */
AhaTokenizer *aha_tokenizer_load(const char *path);
void aha_tokenizer_free(AhaTokenizer *tok);

/* encode flags */
enum {
    /* Match special added tokens (<|im_start|>, <|endoftext|>) written in the text, as the
     * `tokenizers` library does by default. Without it they are tokenized as plain text
     * (the library's split_special_tokens); non-special added tokens always match. */
    AHA_TOKENIZE_PARSE_SPECIAL = 1,
};

/* Appends the ids of text[0..len) to out. No BOS/EOS is added (callers add bos_id when the
 * model wants one). text must be valid UTF-8: anything else is an error naming the byte. */
int aha_tokenizer_encode(const AhaTokenizer *tok, const char *text, size_t len, int flags,
                         AhaTokenIds *out);

/* The text of ids[0..n): a malloc'd NUL-terminated string (free it), its length in *len
 * when len is not NULL. Invalid UTF-8 produced by the bytes becomes U+FFFD, as in the
 * library. With skip_special, special added tokens are left out. Ids that name no token
 * (negative, past the vocabulary, holes) produce nothing, as in the library. */
char *aha_tokenizer_decode(const AhaTokenizer *tok, const int32_t *ids, size_t n,
                           int skip_special, size_t *len);

/* The raw bytes one token decodes to (not NUL-terminated, may be a partial UTF-8
 * character); *len = 0 and an empty string for ids that name no token. Stays valid for
 * the tokenizer's lifetime. The sampler uses it to match stop strings. */
const char *aha_tokenizer_token_bytes(const AhaTokenizer *tok, int32_t id, size_t *len);

/* The id of a token written as in tokenizer.json (added tokens first, then the BPE
 * vocabulary, e.g. "<|im_end|>" or "Ġthe"); -1 when there is none (no error recorded). */
int32_t aha_tokenizer_token_id(const AhaTokenizer *tok, const char *token);

/* 1 when id is an added token marked special, else 0. */
int aha_tokenizer_is_special(const AhaTokenizer *tok, int32_t id);

/* One more than the largest id of any token (vocabulary and added tokens). */
int32_t aha_tokenizer_vocab_size(const AhaTokenizer *tok);

/* From tokenizer_config.json (eos_token, bos_token, pad_token); -1 when not set. */
int32_t aha_tokenizer_eos_id(const AhaTokenizer *tok);
int32_t aha_tokenizer_bos_id(const AhaTokenizer *tok);
int32_t aha_tokenizer_pad_id(const AhaTokenizer *tok);

/* The basic shape of tokenizer_config.json's chat_template. */
typedef enum {
    AHA_CHAT_NONE = 0,   /* no chat template */
    AHA_CHAT_CHATML,     /* <|im_start|>{role}\n{content}<|im_end|>\n (Qwen) */
    AHA_CHAT_OTHER,      /* a template of another shape */
} AhaChatShape;
AhaChatShape aha_tokenizer_chat_shape(const AhaTokenizer *tok);

/* Streaming decoder: feed ids one at a time and get text as soon as it is complete UTF-8;
 * the bytes of a partial character are held back until the token that completes it. The
 * concatenation of every push and the final flush equals aha_tokenizer_decode of all ids. */
typedef struct AhaDecodeStream AhaDecodeStream;

AhaDecodeStream *aha_decode_stream_new(const AhaTokenizer *tok, int skip_special);
/* Sets *text and *len to the newly completed text (valid until the next call on the stream). */
int aha_decode_stream_push(AhaDecodeStream *stream, int32_t id, const char **text, size_t *len);
/* Emits what is held back (an unfinished character becomes U+FFFD) and resets the stream. */
int aha_decode_stream_flush(AhaDecodeStream *stream, const char **text, size_t *len);
void aha_decode_stream_free(AhaDecodeStream *stream);

#ifdef __cplusplus
}
#endif

#endif
