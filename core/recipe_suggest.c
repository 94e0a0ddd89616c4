/* Messages for names that are not in the key table, with the closest one that reads as a
 * typo: "unknown key 'optim.lrr' (did you mean optim.lr?)". */
#include "core/recipe_internal.h"

#include <stdio.h>
#include <string.h>


static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best) best = above + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[m];
}

/* Keeps the closest candidate within a distance that still reads as a typo. */
typedef struct {
    const char *best;
    size_t distance;
} Suggestion;

static void consider(Suggestion *s, const char *typed, const char *candidate, size_t candidate_len) {
    char name[128];
    if (candidate_len >= sizeof name) return;
    memcpy(name, candidate, candidate_len);
    name[candidate_len] = '\0';
    size_t d = edit_distance(typed, name);
    size_t limit = strlen(typed) < 4 ? 1 : strlen(typed) / 3 + 1;
    if (d <= limit && (!s->best || d < s->distance)) {
        s->best = candidate;
        s->distance = d;
    }
}

/* " (did you mean X?)" or "" */
static const char *did_you_mean(const char *candidate, size_t length, char *buf, size_t size) {
    if (!candidate) return "";
    snprintf(buf, size, " (did you mean %.*s?)", (int)length, candidate);
    return buf;
}

const char *aha_recipe_enum_hint(const char *values, const char *typed, char *buf, size_t size) {
    Suggestion s = {0};
    const char *start;
    size_t length;
    for (int i = 0; aha_recipe_enum_value(values, i, &start, &length); i++) consider(&s, typed, start, length);
    return did_you_mean(s.best, s.best ? strcspn(s.best, "|") : 0, buf, size);
}

/* The error for a reward key that is unknown, or known but not of this type. */
int aha_recipe_reward_key_error(const RecipeCtx *entry, const RNode *at, const char *typed, AhaRewardType type) {
    const AhaRecipeKey *k = aha_recipe_find_reward_key(typed);
    char types[128];
    if (k) {
        if (aha_recipe_reward_types_text(k, types, sizeof types) != 0) return -1;
        return aha_recipe_fail(entry, at, "'%s' is not a key of %s rewards (it belongs to %s)", typed,
                    aha_recipe_reward_type_name(type), types);
    }
    Suggestion s = {0};
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *cand = aha_recipe_reward_key(i);
        if (key_applies(cand, type)) consider(&s, typed, cand->key, strlen(cand->key));
    }
    char hint[160];
    return aha_recipe_fail(entry, at, "unknown key '%s' for a %s reward%s", typed, aha_recipe_reward_type_name(type),
                did_you_mean(s.best, s.best ? strlen(s.best) : 0, hint, sizeof hint));
}

int aha_recipe_unknown_key(const RecipeCtx *c, const RNode *at, const char *section, const char *leaf) {
    Suggestion s = {0};
    char hint[160];
    size_t n = strlen(section);
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const char *key = aha_recipe_key(i)->key;
        if (section_length(key) == n && strncmp(key, section, n) == 0) {
            Suggestion one = {0};
            consider(&one, leaf, key + n + 1, strlen(key + n + 1));
            if (one.best && (!s.best || one.distance < s.distance)) {
                s.best = key;
                s.distance = one.distance;
            }
        }
    }
    if (!s.best) /* the right name in the wrong section */
        for (int i = 0; i < aha_recipe_key_count(); i++) {
            const char *key = aha_recipe_key(i)->key;
            if (strcmp(key + section_length(key) + 1, leaf) == 0) s.best = key;
        }
    return rnode_error(c->where, at, "unknown key '%s.%s'%s", section, leaf,
                did_you_mean(s.best, s.best ? strlen(s.best) : 0, hint, sizeof hint));
}

int aha_recipe_unknown_section(const RecipeCtx *c, const RNode *at, const char *name) {
    Suggestion s = {0};
    char hint[160];
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const char *key = aha_recipe_key(i)->key;
        consider(&s, name, key, section_length(key));
    }
    consider(&s, name, "rewards", 7);
    size_t length = s.best ? (strcmp(s.best, "rewards") == 0 ? 7 : section_length(s.best)) : 0;
    if (!s.best) /* a key written without its section */
        for (int i = 0; i < aha_recipe_key_count(); i++) {
            const char *key = aha_recipe_key(i)->key;
            if (strcmp(key + section_length(key) + 1, name) == 0) {
                s.best = key;
                length = strlen(key);
            }
        }
    return rnode_error(c->where, at, "unknown section '%s'%s; sections are model, data, rollout, rewards, algorithm, "
                       "optim, run, pretrain, distributed",
                name, did_you_mean(s.best, length, hint, sizeof hint));
}
