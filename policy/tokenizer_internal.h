/* Private to policy/tokenizer*.c: the loaded tokenizer and the helpers its files share. */
#ifndef AHA_TOKENIZER_INTERNAL_H
#define AHA_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "aha/tokenizer.h"

/* ---- string -> int32 hash map (open addressing, keys copied into one pool) ---- */
typedef struct {
    uint32_t *slots;   /* [capacity] entry index + 1, 0 = empty */
    size_t capacity;   /* power of two */
    size_t count;
    size_t *key_offset; /* [count] into pool */
    uint32_t *key_len;  /* [count] */
    int32_t *value;     /* [count] */
    char *pool;
    size_t pool_used, pool_cap;
    size_t entries_cap;
} TokStrMap;

int tok_strmap_init(TokStrMap *map, size_t expected);
void tok_strmap_free(TokStrMap *map);
/* Inserts or replaces. */
int tok_strmap_put(TokStrMap *map, const char *key, size_t len, int32_t value);
/* The value, or -1 when absent. */
int32_t tok_strmap_get(const TokStrMap *map, const char *key, size_t len);
uint64_t tok_hash_bytes(const char *key, size_t len);

/* ---- pre-tokenizer steps ---- */
typedef enum {
    SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_WITH_PREVIOUS, SPLIT_MERGED_WITH_NEXT,
    SPLIT_CONTIGUOUS,
} SplitBehavior;

typedef struct {
    int is_byte_level;     /* else a Split */
    /* Split */
    pcre2_code *regex;     /* NULL for a literal String pattern */
    char *literal;         /* the String pattern */
    size_t literal_len;
    SplitBehavior behavior;
    int invert;
    /* ByteLevel */
    int add_prefix_space;
    int use_regex;         /* GPT-2's regex, compiled into regex */
} PreTokStep;

typedef enum { NORM_NONE, NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD } NormKind;

typedef struct {
    int32_t id;
    char *content;          /* as matched: normalized form when `normalized` */
    size_t content_len;
    int single_word, lstrip, rstrip, normalized, special;
} AddedToken;

typedef struct {
    uint64_t key;   /* (left id << 32) | right id; 0 with rank -1 = empty */
    int32_t rank;   /* -1 = empty slot */
    int32_t merged; /* id of left+right */
} MergeSlot;

struct AhaTokenizer {
    TokStrMap vocab;            /* BPE vocabulary: token string as written -> id */
    int32_t byte_id[256];       /* id of the single byte-level character of each byte, -1 */
    MergeSlot *merges;          /* [merge_capacity] open addressing */
    size_t merge_capacity;
    size_t merge_count;
    int ignore_merges;
    int32_t unk_id;             /* -1 when no unk_token */
    int fuse_unk;

    NormKind normalizer;
    PreTokStep *steps;          /* [step_count] ending with the ByteLevel step */
    size_t step_count;

    AddedToken *added;          /* [added_count] by first byte, then longest first */
    size_t added_count;
    size_t added_bucket[257];   /* tokens starting with byte b: added[bucket[b]..bucket[b+1]) */
    TokStrMap added_ids;        /* content as written -> id */

    int32_t vocab_size;         /* max id + 1 */
    char *token_bytes;          /* decoded bytes of every id, back to back */
    size_t *token_offset;       /* [vocab_size + 1] into token_bytes */
    unsigned char *token_special; /* [vocab_size] */

    int32_t eos_id, bos_id, pad_id;
    AhaChatShape chat_shape;

    /* word -> ids cache, shared by threads */
    pthread_mutex_t cache_lock;
    TokStrMap cache;            /* piece bytes -> offset into cache_ids */
    int32_t *cache_ids;         /* [cache_ids_cap]: count, then the ids */
    size_t cache_ids_used, cache_ids_cap;
};

/* policy/tokenizer_bpe.c */
int tok_merges_init(AhaTokenizer *tok, size_t count);
int tok_merges_put(AhaTokenizer *tok, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* Appends the ids of one pre-tokenized piece (raw bytes). */
int tok_bpe_piece(const AhaTokenizer *tok, const char *piece, size_t len, AhaTokenIds *out);

/* policy/tokenizer_pretok.c */
/* Compiles a Split / GPT-2 regex with PCRE2 UTF|UCP after making \s and \S agree with
 * Unicode White_Space (PCRE2 counts U+180E as a space; the library's regex engine does not). */
pcre2_code *tok_regex_compile(const char *pattern, const char *where);
/* Text -> normalized, pre-tokenized pieces -> BPE ids. */
int tok_encode_text(const AhaTokenizer *tok, const char *text, size_t len, int flags,
                    AhaTokenIds *out);
/* Applies the normalizer; returns a malloc'd string (NUL-terminated) with its length. */
char *tok_normalize(NormKind kind, const char *text, size_t len, size_t *out_len);

/* GPT-2 bytes_to_unicode: the code point each byte maps to. */
uint32_t tok_byte_to_codepoint(unsigned byte);
/* The byte a code point maps back to, or -1. */
int tok_codepoint_to_byte(uint32_t cp);
/* Length of the valid UTF-8 sequence at s[0..n): >0 valid length; 0 when the bytes are a
 * proper prefix of a valid sequence cut by n; -k when s[0..k) is a maximal invalid part. */
int tok_utf8_sequence(const unsigned char *s, size_t n);

#endif
