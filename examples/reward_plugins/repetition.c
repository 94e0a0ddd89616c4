/* An example reward plug-in: penalizes completions that repeat themselves.
 * Score = distinct non-empty lines / non-empty lines (1.0 = no line repeated); no score for a
 * completion without any non-empty line.
 *
 * Build:  cc -O2 -shared -fPIC -I include examples/reward_plugins/repetition.c -o repetition.so
 * Use:    rewards: [{type: plugin, name: repetition, path: ./repetition.so, weight: 0.2}]
 *         aha reward score --reward ./repetition.so --in samples.jsonl */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/reward_plugin.h"

int aha_reward_plugin_abi_version(void) { return AHA_REWARD_PLUGIN_ABI_VERSION; }

typedef struct {
    const char *start;
    size_t len;
} Line;

static int line_cmp(const void *a, const void *b) {
    const Line *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->start, y->start, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Thread-safe: everything lives on this call's stack or heap. */
int aha_reward_plugin_score(const AhaPluginSample *sample, double *score, char *reason,
                            size_t reason_cap) {
    const char *text = sample->completion;
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == '\n';
    Line *lines = malloc(cap * sizeof *lines);
    if (!lines) {
        snprintf(reason, reason_cap, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (const char *p = text;;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r')) len--;
        if (len) lines[n++] = (Line){p, len};
        if (!end) break;
        p = end + 1;
    }
    if (n == 0) {
        free(lines);
        snprintf(reason, reason_cap, "no non-empty line");
        return 1;
    }
    qsort(lines, n, sizeof *lines, line_cmp);
    size_t distinct = 1;
    for (size_t i = 1; i < n; i++) distinct += line_cmp(&lines[i - 1], &lines[i]) != 0;
    free(lines);
    *score = (double)distinct / (double)n;
    snprintf(reason, reason_cap, "%zu distinct of %zu lines", distinct, n);
    return 0;
}
