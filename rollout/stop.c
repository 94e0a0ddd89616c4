/* Stop strings across token boundaries (see rollout/sample.h). A match must end inside the
 * newly appended bytes; earlier matches would already have stopped the sequence. */
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "rollout/sample.h"

int aha_stop_strings_init(AhaStopStrings *stops, const char *const *strings, int n) {
    memset(stops, 0, sizeof *stops);
    if (n == 0) return 0;
    stops->lens = aha_calloc((size_t)n, sizeof *stops->lens);
    AHA_CHECK_ALLOC(stops->lens);
    stops->strings = strings;
    stops->n = n;
    size_t longest = 0;
    for (int i = 0; i < n; i++) {
        stops->lens[i] = strlen(strings[i]);
        AHA_REQUIRE(stops->lens[i] > 0, "stop_strings[%d]: expected a non-empty string", i);
        if (stops->lens[i] > longest) longest = stops->lens[i];
    }
    stops->tail_capacity = longest - 1;
    return 0;
}

void aha_stop_strings_free(AhaStopStrings *stops) {
    free(stops->lens);
    memset(stops, 0, sizeof *stops);
}

/* Byte at index i of the concatenation tail[0..tail_len) + bytes[0..n). */
static inline char joined_at(const char *tail, size_t tail_len, const char *bytes, size_t i) {
    return i < tail_len ? tail[i] : bytes[i - tail_len];
}

int aha_stop_strings_feed(const AhaStopStrings *stops, char *tail, size_t *tail_len,
                          const char *bytes, size_t n) {
    size_t old_len = *tail_len, joined_len = old_len + n;
    int matched = 0;
    for (int s = 0; s < stops->n && !matched; s++) {
        const char *stop = stops->strings[s];
        size_t len = stops->lens[s];
        /* Candidate ends: every position inside the new bytes. */
        for (size_t end = old_len + 1; end <= joined_len && !matched; end++) {
            if (end < len) continue;
            size_t start = end - len, j = 0;
            while (j < len && joined_at(tail, old_len, bytes, start + j) == stop[j]) j++;
            matched = j == len;
        }
    }
    /* Keep the last tail_capacity bytes of the joined text. */
    size_t keep = joined_len < stops->tail_capacity ? joined_len : stops->tail_capacity;
    size_t from = joined_len - keep;
    if (keep == 0) {
        /* nothing to remember (tail may be NULL) */
    } else if (from < old_len) {
        memmove(tail, tail + from, old_len - from);
        memcpy(tail + (old_len - from), bytes, n);
    } else {
        memcpy(tail, bytes + (from - old_len), keep);
    }
    *tail_len = keep;
    return matched;
}
