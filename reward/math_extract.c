/* Finding the final answer: the last \boxed{} / \fbox{} (nested braces), the last
 * <answer>...</answer> block, or a gold field's "#### N" line. */
#include "aha/math_answer.h"

#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "reward/math_internal.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *math_strndup_trimmed(const char *begin, const char *end) {
    while (begin < end && is_space(*begin)) begin++;
    while (end > begin && is_space(end[-1])) end--;
    size_t n = (size_t)(end - begin);
    char *out = aha_malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, begin, n);
    out[n] = '\0';
    return out;
}

/* The brace group opened at *open ('{'): returns the position of its matching '}' or NULL
 * when the text ends first (a truncated completion). "\{" and "\}" are literal braces. */
static const char *match_brace(const char *open, const char *end) {
    int depth = 0;
    for (const char *p = open; p < end; p++) {
        if (*p == '\\' && p + 1 < end) {
            p++;
            continue;
        }
        if (*p == '{') depth++;
        else if (*p == '}' && --depth == 0) return p;
    }
    return NULL;
}

/* The last complete \boxed{...} or \fbox{...} in [begin, end): content range in *content_begin
 * and *content_end, the command's start in *at. Returns 0 when there is none. Also accepts
 * "\boxed 5" (a single token after a space), as LaTeX does.
 * Candidates are tried from the end. A box that never closes bounds the search of every
 * earlier one (an earlier brace cannot close past a later one that never closes), so the
 * whole search is linear even in text full of unclosed boxes. */
static int last_boxed(const char *begin, const char *end, const char **at, const char **content_begin,
                      const char **content_end) {
    const char *limit = end;
    for (const char *p = end; p-- > begin;) {
        if (*p != '\\') continue;
        size_t name_len;
        if ((size_t)(end - p) >= 6 && memcmp(p, "\\boxed", 6) == 0) name_len = 6;
        else if ((size_t)(end - p) >= 5 && memcmp(p, "\\fbox", 5) == 0) name_len = 5;
        else continue;
        const char *q = p + name_len;
        if (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))) continue; /* \boxedfoo */
        const char *after_name = q;
        while (q < end && is_space(*q)) q++;
        if (q < end && *q == '{') {
            const char *close = q < limit ? match_brace(q, limit) : NULL;
            if (!close) {
                if (q < limit) limit = q;
                continue;
            }
            *at = p;
            *content_begin = q + 1;
            *content_end = close;
            return 1;
        } else if (q > after_name && q < end) {
            const char *t = q;
            while (t < end && !is_space(*t) && *t != '$') t++;
            if (t == q) continue;
            *at = p;
            *content_begin = q;
            *content_end = t;
            return 1;
        }
    }
    return 0;
}

/* The last complete <answer>...</answer> block in [begin, end). */
static int last_answer_tag(const char *begin, const char *end, const char **at, const char **content_begin,
                           const char **content_end) {
    static const char open_tag[] = "<answer>", close_tag[] = "</answer>";
    const char *close = NULL;
    for (const char *p = begin; p + sizeof close_tag - 1 <= end; p++)
        if (memcmp(p, close_tag, sizeof close_tag - 1) == 0) close = p;
    if (!close) return 0;
    const char *open = NULL;
    for (const char *p = begin; p + sizeof open_tag - 1 <= close; p++)
        if (memcmp(p, open_tag, sizeof open_tag - 1) == 0) open = p;
    if (!open) return 0;
    *at = open;
    *content_begin = open + sizeof open_tag - 1;
    *content_end = close;
    return 1;
}

int math_extract_range(const char *text, size_t len, AhaMathExtract mode, const char **begin, const char **end) {
    const char *text_end = text + len;
    const char *box_at = NULL, *box_begin = NULL, *box_end = NULL;
    const char *tag_at = NULL, *tag_begin = NULL, *tag_end = NULL;
    int have_box = mode != AHA_MATH_EXTRACT_ANSWER_TAG && last_boxed(text, text_end, &box_at, &box_begin, &box_end);
    int have_tag = mode != AHA_MATH_EXTRACT_BOXED && last_answer_tag(text, text_end, &tag_at, &tag_begin, &tag_end);
    if (have_tag) {
        /* A box inside the answer block names the answer more precisely than the block. */
        const char *inner_at, *inner_begin, *inner_end;
        if (last_boxed(tag_begin, tag_end, &inner_at, &inner_begin, &inner_end)) {
            tag_begin = inner_begin;
            tag_end = inner_end;
        }
    }
    /* AUTO: whichever the completion states last is its final answer. */
    if (have_box && (!have_tag || box_at > tag_at)) {
        *begin = box_begin;
        *end = box_end;
        return 1;
    }
    if (have_tag) {
        *begin = tag_begin;
        *end = tag_end;
        return 1;
    }
    return 0;
}

char *aha_math_extract(const char *completion, AhaMathExtract mode) {
    if (!completion) return NULL;
    const char *begin, *end;
    if (!math_extract_range(completion, strlen(completion), mode, &begin, &end)) return NULL;
    return math_strndup_trimmed(begin, end);
}

void math_gold_range(const char *gold, size_t len, const char **begin, const char **end) {
    const char *text_end = gold + len;
    const char *hashes = NULL;
    for (const char *p = gold; p + 4 <= text_end; p++)
        if (memcmp(p, "####", 4) == 0) hashes = p;
    *begin = gold;
    *end = text_end;
    if (hashes) {
        *begin = hashes + 4;
        const char *eol = memchr(*begin, '\n', (size_t)(text_end - *begin));
        if (eol) *end = eol;
    } else {
        const char *at;
        last_boxed(gold, text_end, &at, begin, end);
    }
    while (*begin < *end && is_space(**begin)) (*begin)++;
    while (*end > *begin && is_space((*end)[-1])) (*end)--;
}

char *aha_math_gold(const char *gold) {
    if (!gold) return NULL;
    const char *begin, *end;
    math_gold_range(gold, strlen(gold), &begin, &end);
    if (begin == end) return NULL;
    return math_strndup_trimmed(begin, end);
}
