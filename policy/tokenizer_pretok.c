/* From text to BPE pieces: added tokens, the normalizer, the Split / ByteLevel
 * pre-tokenizers, in the order and with the rules of the `tokenizers` library
 * (added_vocabulary.rs, normalizer.rs split, pre_tokenizers/byte_level.rs). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "aha/error.h"
#include "policy/tokenizer_internal.h"

/* ---------------------------------------------------------------- bytes and UTF-8 */

uint32_t tok_byte_to_codepoint(unsigned byte) {
    /* GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100+n
     * in byte order. */
    if ((byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE)
        return byte;
    uint32_t n = 0;
    for (unsigned b = 0; b < byte; b++)
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) n++;
    return 0x100 + n;
}

int tok_codepoint_to_byte(uint32_t cp) {
    if (cp < 0x100) {
        if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE) return (int)cp;
        return -1;
    }
    if (cp >= 0x100 + 68) return -1;
    uint32_t n = 0;
    for (unsigned b = 0; b < 256; b++) {
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) continue;
        if (0x100 + n == cp) return (int)b;
        n++;
    }
    return -1;
}

int tok_utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) return 0;
        unsigned char c = s[k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (c < l || c > h) return -k;
    }
    return need + 1;
}

static uint32_t decode_at(const char *s, size_t n, size_t at, size_t *size) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + at,
                                          (utf8proc_ssize_t)(n - at), &cp);
    *size = k > 0 ? (size_t)k : 1;
    return k > 0 ? (uint32_t)cp : 0xFFFD;
}

/* Unicode White_Space, which the library's regex engines mean by \s. */
static int is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Rust regex \w: alphabetic, marks, decimal digits, connector punctuation, joiners. */
static int is_word_char(uint32_t c) {
    if (c == 0x200C || c == 0x200D) return 1;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

static uint32_t last_char_before(const char *s, size_t at) {
    size_t i = at;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) i--;
    size_t size;
    return decode_at(s, at, i, &size);
}

/* ---------------------------------------------------------------- normalizer */

char *tok_normalize(NormKind kind, const char *text, size_t len, size_t *out_len) {
    if (kind == NORM_NONE) {
        char *copy = aha_malloc(len + 1);
        if (!copy) return NULL;
        memcpy(copy, text, len);
        copy[len] = '\0';
        *out_len = len;
        return copy;
    }
    utf8proc_option_t options = UTF8PROC_STABLE;
    if (kind == NORM_NFC || kind == NORM_NFKC) options |= UTF8PROC_COMPOSE;
    else options |= UTF8PROC_DECOMPOSE;
    if (kind == NORM_NFKC || kind == NORM_NFKD) options |= UTF8PROC_COMPAT;
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                      &out, options);
    if (n < 0) {
        aha_errorf("Unicode normalization failed: %s", utf8proc_errmsg(n));
        return NULL;
    }
    *out_len = (size_t)n;
    return (char *)out;
}

/* ---------------------------------------------------------------- regex */

#define WHITE_SPACE_LIST "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Rewrites \s and \S to Unicode White_Space. Outside a class \s becomes [list] and \S
 * [^list]; inside one \s becomes the list and \S becomes \S plus U+180E (the one character
 * PCRE2 wrongly calls a space). Everything else is copied unchanged. */
static char *rewrite_white_space(const char *pattern) {
    size_t n = strlen(pattern), used = 0;
    size_t escapes = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (pattern[i] == '\\' && (pattern[i + 1] == 's' || pattern[i + 1] == 'S')) escapes++;
    size_t cap = n + escapes * (sizeof WHITE_SPACE_LIST + 8) + 1;
    char *out = aha_malloc(cap);
    if (!out) return NULL;
#define EMIT(str)                                                                             \
    do {                                                                                      \
        size_t l_ = strlen(str);                                                              \
        memcpy(out + used, str, l_);                                                          \
        used += l_;                                                                           \
    } while (0)
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < n) {
            char e = pattern[i + 1];
            if (e == 's') {
                EMIT(in_class ? WHITE_SPACE_LIST : "[" WHITE_SPACE_LIST "]");
            } else if (e == 'S') {
                EMIT(in_class ? "\\S\\x{180E}" : "[^" WHITE_SPACE_LIST "]");
            } else if (e == 'Q') { /* literal run up to \E */
                size_t end = i + 2;
                while (end < n && !(pattern[end] == '\\' && end + 1 < n && pattern[end + 1] == 'E'))
                    end++;
                size_t stop = end < n ? end + 2 : n;
                memcpy(out + used, pattern + i, stop - i);
                used += stop - i;
                i = stop - 1;
                continue;
            } else {
                out[used++] = c;
                out[used++] = e;
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            out[used++] = c;
            if (i + 1 < n && pattern[i + 1] == '^') out[used++] = pattern[++i];
            if (i + 1 < n && pattern[i + 1] == ']') out[used++] = pattern[++i]; /* literal ] */
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && pattern[i + 1] == ':') { /* [:alpha:] */
            const char *close = strstr(pattern + i + 2, ":]");
            if (close) {
                size_t stop = (size_t)(close - pattern) + 2;
                memcpy(out + used, pattern + i, stop - i);
                used += stop - i;
                i = stop - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        out[used++] = c;
    }
#undef EMIT
    out[used] = '\0';
    return out;
}

pcre2_code *tok_regex_compile(const char *pattern, const char *where) {
    char *rewritten = rewrite_white_space(pattern);
    if (!rewritten) return NULL;
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)rewritten, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, NULL);
    free(rewritten);
    if (!re) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        aha_errorf("%s: regex does not compile with PCRE2: %s (pattern %s)", where,
                   (const char *)message, pattern);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; the interpreter is the fallback */
    return re;
}

/* ---------------------------------------------------------------- piece lists */

typedef struct {
    size_t start, end;
    int is_match;
} Span;

typedef struct {
    Span *items;
    size_t count, capacity;
} SpanList;

static int span_push(SpanList *list, size_t start, size_t end, int is_match) {
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 32;
        Span *items = aha_realloc(list->items, cap * sizeof *items);
        AHA_CHECK_ALLOC(items);
        list->items = items;
        list->capacity = cap;
    }
    list->items[list->count++] = (Span){start, end, is_match};
    return 0;
}

/* Pieces of the working text: byte ranges into a pool that also holds the prefixed copies
 * ByteLevel's add_prefix_space makes. */
typedef struct {
    char *pool;
    size_t used, capacity;
    SpanList pieces;
} Work;

static int pool_reserve(Work *w, size_t n) {
    if (w->used + n > w->capacity) {
        size_t cap = w->capacity ? w->capacity : 256;
        while (cap < w->used + n) cap *= 2;
        char *pool = aha_realloc(w->pool, cap);
        AHA_CHECK_ALLOC(pool);
        w->pool = pool;
        w->capacity = cap;
    }
    return 0;
}

/* bytes must not point into the pool (it may move). */
static int pool_append(Work *w, const char *bytes, size_t n, size_t *at) {
    AHA_TRY(pool_reserve(w, n));
    if (n) memcpy(w->pool + w->used, bytes, n);
    *at = w->used;
    w->used += n;
    return 0;
}

/* All matches of a regex as the library's onig find_iter reports them: an empty match right
 * where the previous match ended is skipped and the search moves one character on. */
static int regex_spans(pcre2_code *re, pcre2_match_data *md, const char *s, size_t n,
                       SpanList *out) {
    size_t pos = 0, prev = 0;
    int have_last = 0;
    size_t last_end = 0;
    while (pos <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof message);
            return aha_errorf("pre-tokenizer regex failed: %s", (const char *)message);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && last_end == me) {
            if (me >= n) break;
            size_t size;
            decode_at(s, n, me, &size);
            pos = me + size;
            continue;
        }
        if (prev != ms) AHA_TRY(span_push(out, prev, ms, 0));
        AHA_TRY(span_push(out, ms, me, 1));
        prev = me;
        pos = me;
        have_last = 1;
        last_end = me;
    }
    if (prev != n) AHA_TRY(span_push(out, prev, n, 0));
    return 0;
}

static int literal_spans(const char *lit, size_t lit_len, const char *s, size_t n,
                         SpanList *out) {
    size_t prev = 0, pos = 0;
    while (pos + lit_len <= n) {
        const char *hit = memmem(s + pos, n - pos, lit, lit_len);
        if (!hit) break;
        size_t ms = (size_t)(hit - s), me = ms + lit_len;
        if (prev != ms) AHA_TRY(span_push(out, prev, ms, 0));
        AHA_TRY(span_push(out, ms, me, 1));
        prev = pos = me;
    }
    if (prev != n) AHA_TRY(span_push(out, prev, n, 0));
    return 0;
}

/* normalizer.rs NormalizedString::split, offsets relative to the piece. */
static int apply_behavior(const SpanList *matches, SplitBehavior behavior, SpanList *out) {
    out->count = 0;
    int previous_match = 0;
    switch (behavior) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < matches->count; i++)
            AHA_TRY(span_push(out, matches->items[i].start, matches->items[i].end, 0));
        break;
    case SPLIT_REMOVED:
        for (size_t i = 0; i < matches->count; i++)
            if (!matches->items[i].is_match)
                AHA_TRY(span_push(out, matches->items[i].start, matches->items[i].end, 0));
        break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < matches->count; i++) {
            const Span *m = &matches->items[i];
            if (m->is_match == previous_match && out->count > 0)
                out->items[out->count - 1].end = m->end;
            else
                AHA_TRY(span_push(out, m->start, m->end, 0));
            previous_match = m->is_match;
        }
        break;
    case SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < matches->count; i++) {
            const Span *m = &matches->items[i];
            if (m->is_match && !previous_match && out->count > 0)
                out->items[out->count - 1].end = m->end;
            else
                AHA_TRY(span_push(out, m->start, m->end, 0));
            previous_match = m->is_match;
        }
        break;
    case SPLIT_MERGED_WITH_NEXT:
        for (size_t k = matches->count; k-- > 0;) {
            const Span *m = &matches->items[k];
            if (m->is_match && !previous_match && out->count > 0)
                out->items[out->count - 1].start = m->start;
            else
                AHA_TRY(span_push(out, m->start, m->end, 0));
            previous_match = m->is_match;
        }
        for (size_t i = 0, j = out->count ? out->count - 1 : 0; i < j; i++, j--) {
            Span t = out->items[i];
            out->items[i] = out->items[j];
            out->items[j] = t;
        }
        break;
    }
    return 0;
}

typedef struct {
    pcre2_match_data *md;   /* sized for the largest pattern */
    SpanList matches, split;
} Scratch;

/* Runs every pre-tokenizer step over w->pieces, then BPE over the final pieces. */
static int pretokenize_and_encode(const AhaTokenizer *tok, Work *w, Scratch *sc,
                                  AhaTokenIds *out) {
    for (size_t st = 0; st < tok->step_count; st++) {
        const PreTokStep *step = &tok->steps[st];
        SpanList next = {0};
        int rc = 0;
        for (size_t p = 0; p < w->pieces.count && rc == 0; p++) {
            size_t start = w->pieces.items[p].start, len = w->pieces.items[p].end - start;
            if (step->is_byte_level && step->add_prefix_space &&
                (len == 0 || w->pool[start] != ' ')) {
                rc = pool_reserve(w, len + 1);
                if (rc != 0) break;
                size_t at = w->used;
                w->pool[at] = ' ';
                memcpy(w->pool + at + 1, w->pool + start, len);
                w->used += len + 1;
                start = at;
                len += 1;
            }
            if (rc != 0) break;
            int split = step->is_byte_level ? step->use_regex : 1;
            if (!split) {
                rc = span_push(&next, start, start + len, 0);
                continue;
            }
            sc->matches.count = 0;
            const char *s = w->pool + start;
            if (step->regex)
                rc = regex_spans(step->regex, sc->md, s, len, &sc->matches);
            else
                rc = literal_spans(step->literal, step->literal_len, s, len, &sc->matches);
            if (rc == 0 && step->invert)
                for (size_t i = 0; i < sc->matches.count; i++)
                    sc->matches.items[i].is_match = !sc->matches.items[i].is_match;
            SplitBehavior behavior = step->is_byte_level ? SPLIT_ISOLATED : step->behavior;
            if (rc == 0) rc = apply_behavior(&sc->matches, behavior, &sc->split);
            for (size_t i = 0; i < sc->split.count && rc == 0; i++)
                if (sc->split.items[i].end > sc->split.items[i].start) /* empties are dropped */
                    rc = span_push(&next, start + sc->split.items[i].start,
                                   start + sc->split.items[i].end, 0);
        }
        free(w->pieces.items);
        w->pieces = next;
        AHA_TRY(rc);
    }
    for (size_t p = 0; p < w->pieces.count; p++) {
        const Span *piece = &w->pieces.items[p];
        AHA_TRY(tok_bpe_piece(tok, w->pool + piece->start, piece->end - piece->start, out));
    }
    return 0;
}

/* ---------------------------------------------------------------- added tokens */

typedef struct {
    int32_t id;       /* -1 for text */
    size_t start, end;
} Segment;

typedef struct {
    Segment *items;
    size_t count, capacity;
} SegmentList;

static int segment_push(SegmentList *list, int32_t id, size_t start, size_t end) {
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 16;
        Segment *items = aha_realloc(list->items, cap * sizeof *items);
        AHA_CHECK_ALLOC(items);
        list->items = items;
        list->capacity = cap;
    }
    list->items[list->count++] = (Segment){id, start, end};
    return 0;
}

/* added_vocabulary.rs find_matches: leftmost-longest non-overlapping matches of the added
 * tokens whose `normalized` flag equals `normalized`, with the special / single_word /
 * lstrip / rstrip rules; the segments cover s[0..n). */
static int find_added(const AhaTokenizer *tok, const char *s, size_t n, int normalized,
                      int parse_special, SegmentList *out) {
    size_t start_offset = 0, pos = 0;
    while (pos < n) {
        const AddedToken *hit = NULL;
        unsigned char first = (unsigned char)s[pos];
        for (size_t k = tok->added_bucket[first]; k < tok->added_bucket[first + 1]; k++) {
            const AddedToken *t = &tok->added[k]; /* longest first */
            if (t->normalized != normalized || t->content_len == 0 || t->content_len > n - pos)
                continue;
            if (memcmp(t->content, s + pos, t->content_len) == 0) {
                hit = t;
                break;
            }
        }
        if (!hit) {
            pos++;
            continue;
        }
        size_t start = pos, stop = pos + hit->content_len;
        pos = stop;
        if (hit->special && !parse_special) continue;
        if (hit->single_word) {
            size_t size;
            int start_space = start == 0 || !is_word_char(last_char_before(s, start));
            int stop_space = stop == n || !is_word_char(decode_at(s, n, stop, &size));
            if (!start_space || !stop_space) continue;
        }
        if (hit->lstrip) {
            size_t new_start = start;
            while (new_start > 0) {
                size_t back = new_start - 1;
                while (back > 0 && ((unsigned char)s[back] & 0xC0) == 0x80) back--;
                size_t size;
                if (!is_white_space(decode_at(s, n, back, &size))) break;
                new_start = back;
            }
            start = new_start > start_offset ? new_start : start_offset;
        }
        if (hit->rstrip) {
            while (stop < n) {
                size_t size;
                if (!is_white_space(decode_at(s, n, stop, &size))) break;
                stop += size;
            }
            pos = stop;
        }
        if (start_offset < start) AHA_TRY(segment_push(out, -1, start_offset, start));
        AHA_TRY(segment_push(out, hit->id, start, stop));
        start_offset = stop;
    }
    if (start_offset != n) AHA_TRY(segment_push(out, -1, start_offset, n));
    return 0;
}

/* ---------------------------------------------------------------- encode */

static int encode_normalized_segment(const AhaTokenizer *tok, const char *text, size_t len,
                                     int parse_special, Scratch *sc, AhaTokenIds *out) {
    size_t norm_len = 0;
    char *norm = tok_normalize(tok->normalizer, text, len, &norm_len);
    if (!norm) return -1;
    SegmentList segs = {0};
    int rc = find_added(tok, norm, norm_len, 1, parse_special, &segs);
    for (size_t i = 0; i < segs.count && rc == 0; i++) {
        const Segment *g = &segs.items[i];
        if (g->id >= 0) {
            rc = aha_token_ids_push(out, g->id);
            continue;
        }
        Work w = {0};
        size_t at;
        rc = pool_append(&w, norm + g->start, g->end - g->start, &at);
        if (rc == 0) rc = span_push(&w.pieces, at, at + (g->end - g->start), 0);
        if (rc == 0) rc = pretokenize_and_encode(tok, &w, sc, out);
        free(w.pool);
        free(w.pieces.items);
    }
    free(segs.items);
    free(norm);
    return rc;
}

int tok_encode_text(const AhaTokenizer *tok, const char *text, size_t len, int flags,
                    AhaTokenIds *out) {
    for (size_t i = 0; i < len;) {
        int k = tok_utf8_sequence((const unsigned char *)text + i, len - i);
        if (k <= 0) return aha_errorf("text is not valid UTF-8 at byte %zu", i);
        i += (size_t)k;
    }
    int parse_special = (flags & AHA_TOKENIZE_PARSE_SPECIAL) != 0;
    Scratch sc = {0};
    sc.md = pcre2_match_data_create(8, NULL);
    AHA_CHECK_ALLOC(sc.md);
    SegmentList segs = {0};
    int rc = find_added(tok, text, len, 0, parse_special, &segs);
    for (size_t i = 0; i < segs.count && rc == 0; i++) {
        const Segment *g = &segs.items[i];
        if (g->id >= 0)
            rc = aha_token_ids_push(out, g->id);
        else
            rc = encode_normalized_segment(tok, text + g->start, g->end - g->start,
                                           parse_special, &sc, out);
    }
    free(segs.items);
    free(sc.matches.items);
    free(sc.split.items);
    pcre2_match_data_free(sc.md);
    return rc;
}
