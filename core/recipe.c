/* Recipes: YAML -> AhaRecipe through the key table of core/recipe_schema.c. */
#include "aha/recipe.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "aha/error.h"
#include "core/recipe_yaml.h"

/* ---- Small helpers ------------------------------------------------------------------- */

static void *field(void *base, const AhaRecipeKey *key) { return (char *)base + key->offset; }
static const void *cfield(const void *base, const AhaRecipeKey *key) {
    return (const char *)base + key->offset;
}

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

static size_t section_length(const char *key) { return (size_t)(strchr(key, '.') - key); }

static const AhaRecipeKey *find_key(const char *dotted) {
    for (int i = 0; i < aha_recipe_key_count(); i++)
        if (strcmp(aha_recipe_key(i)->key, dotted) == 0) return aha_recipe_key(i);
    return NULL;
}

static const AhaRecipeKey *find_reward_key(const char *name) {
    for (int i = 0; i < aha_recipe_reward_key_count(); i++)
        if (strcmp(aha_recipe_reward_key(i)->key, name) == 0) return aha_recipe_reward_key(i);
    return NULL;
}

static int is_section(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const char *key = aha_recipe_key(i)->key;
        if (section_length(key) == n && strncmp(key, name, n) == 0) return 1;
    }
    return 0;
}

/* The i-th '|'-separated enum value. */
static int enum_value(const char *values, int index, const char **start, size_t *length) {
    const char *p = values;
    for (int i = 0; i < index; i++) {
        p = strchr(p, '|');
        if (!p) return 0;
        p++;
    }
    const char *end = strchr(p, '|');
    *start = p;
    *length = end ? (size_t)(end - p) : strlen(p);
    return 1;
}

static int enum_index(const char *values, const char *text) {
    const char *start;
    size_t length;
    for (int i = 0; enum_value(values, i, &start, &length); i++)
        if (strlen(text) == length && strncmp(start, text, length) == 0) return i;
    return -1;
}

static const char *reward_type_name(int type) {
    const char *start;
    size_t length;
    static _Thread_local char name[32];
    if (!enum_value(aha_recipe_reward_key(0)->enum_values, type, &start, &length) || length >= sizeof name)
        return "?";
    memcpy(name, start, length);
    name[length] = '\0';
    return name;
}

const char *aha_recipe_enum_name(const char *key, int value) {
    const AhaRecipeKey *k = NULL;
    if (strncmp(key, "rewards.", 8) == 0)
        k = find_reward_key(key + 8);
    else
        k = find_key(key);
    if (!k || k->type != AHA_KEY_ENUM || value < 0) return "?";
    const char *start;
    size_t length;
    if (!enum_value(k->enum_values, value, &start, &length)) return "?";
    /* Each value is followed by '|' or the end: a static copy per call site is not needed
     * when we return a pointer into a table of separate names. */
    static _Thread_local char names[8][64];
    static _Thread_local int next;
    char *out = names[next++ % 8];
    if (length >= sizeof names[0]) return "?";
    memcpy(out, start, length);
    out[length] = '\0';
    return out;
}

/* ---- Converting one YAML node into one typed field ------------------------------------ */

typedef struct {
    const RWhere *where;
    const char *name; /* the key as the user wrote it in context: "optim.lr", "rewards[1].weight" */
    int overridden;   /* a --set replaces this value: its path need not exist */
} Ctx;

static int fail(const Ctx *c, const RNode *node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(const Ctx *c, const RNode *node, const char *fmt, ...) {
    char message[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (!c->name) return rnode_error(c->where, node, "%s", message);
    return rnode_error(c->where, node, "%s: %s", c->name, message);
}

/* The shortest decimal form that reads back to the same double; integers without exponent. */
static const char *format_double(double v, char *buf, size_t size) {
    if (v == floor(v) && fabs(v) < 1e17) {
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}


static int range_error(const Ctx *c, const RNode *node, const AhaRecipeKey *k, const char *got) {
    char lo[64], hi[64];
    format_double(k->min, lo, sizeof lo);
    format_double(k->max, hi, sizeof hi);
    const char *op = k->flags & AHA_KEY_MIN_EXCLUSIVE ? ">" : ">=";
    if (k->flags & AHA_KEY_ZERO_IS_OFF) return fail(c, node, "expected 0 (off) or a value %s %s, got %s", op, lo, got);
    if (k->max == AHA_RECIPE_NO_MAX) return fail(c, node, "expected a value %s %s, got %s", op, lo, got);
    return fail(c, node, "expected a value in %c%s, %s], got %s", k->flags & AHA_KEY_MIN_EXCLUSIVE ? '(' : '[', lo,
                hi, got);
}

static int in_range(const AhaRecipeKey *k, double v) {
    if ((k->flags & AHA_KEY_ZERO_IS_OFF) && v == 0) return 1;
    if (k->flags & AHA_KEY_MIN_EXCLUSIVE ? !(v > k->min) : !(v >= k->min)) return 0;
    return v <= k->max;
}

static int scalar_or_fail(const Ctx *c, const RNode *node, const char *expected) {
    char buf[256];
    if (!node || node->kind != RNODE_SCALAR || rnode_is_null(node))
        return fail(c, node, "expected %s, got %s", expected, rnode_describe(node, buf, sizeof buf));
    return 0;
}

/* For numbers and booleans: a quoted value is a string in YAML, so say so. */
static int unquoted_or_fail(const Ctx *c, const RNode *node, const char *expected) {
    char buf[256];
    AHA_TRY(scalar_or_fail(c, node, expected));
    if (node->quoted)
        return fail(c, node, "expected %s, got the quoted string %s (remove the quotes)", expected,
                    rnode_describe(node, buf, sizeof buf));
    return 0;
}

static int valid_utf8(const char *s) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t left = (utf8proc_ssize_t)strlen(s);
    while (left > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
        if (n < 0) return 0;
        p += n;
        left -= n;
    }
    return 1;
}

/* A string value: any scalar except a plain null (write "" for an empty string). */
static int to_string(const Ctx *c, const RNode *node, char **out) {
    char buf[256];
    if (!node || node->kind != RNODE_SCALAR || rnode_is_null(node))
        return fail(c, node, "expected a string, got %s (write \"\" for an empty string)",
                    rnode_describe(node, buf, sizeof buf));
    if (!valid_utf8(node->text)) return fail(c, node, "expected UTF-8 text");
    *out = aha_strdup(node->text);
    return *out ? 0 : -1;
}

static int check_path(const Ctx *c, const RNode *node, const AhaRecipeKey *k, const char *path) {
    if (path[0] == '\0') return 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return fail(c, node, "'%s' does not exist (relative paths are read from the current directory)", path);
        return fail(c, node, "cannot access '%s': %s", path, strerror(errno));
    }
    if ((k->flags & AHA_KEY_DIR) && !S_ISDIR(st.st_mode)) return fail(c, node, "'%s' is not a directory", path);
    if ((k->flags & AHA_KEY_FILE) && S_ISDIR(st.st_mode)) return fail(c, node, "'%s' is a directory, expected a file", path);
    return 0;
}

static void free_list(AhaStringList *list) {
    for (int i = 0; i < list->count; i++) free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* Parses node as key k's type and, only when everything is valid, stores it at dst. */
static int set_field(const Ctx *c, const AhaRecipeKey *k, const RNode *node, void *dst) {
    char got[256];
    switch (k->type) {
    case AHA_KEY_BOOL: {
        AHA_TRY(unquoted_or_fail(c, node, "true or false"));
        const char *t = node->text;
        int v;
        if (!node->quoted && (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE")))
            v = 1;
        else if (!node->quoted && (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE")))
            v = 0;
        else
            return fail(c, node, "expected true or false, got %s", rnode_describe(node, got, sizeof got));
        *(int *)dst = v;
        return 0;
    }
    case AHA_KEY_INT:
    case AHA_KEY_INT64: {
        AHA_TRY(unquoted_or_fail(c, node, "an integer"));
        const char *t = node->text;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(t, &end, 10);
        int digits = (t[0] >= '0' && t[0] <= '9') || ((t[0] == '-' || t[0] == '+') && t[1] >= '0' && t[1] <= '9');
        if (node->quoted || !digits || *end != '\0')
            return fail(c, node, "expected an integer, got %s", rnode_describe(node, got, sizeof got));
        if (errno == ERANGE || !in_range(k, (double)v)) return range_error(c, node, k, t);
        if (k->type == AHA_KEY_INT) {
            if (v < INT_MIN || v > INT_MAX) return range_error(c, node, k, t);
            *(int *)dst = (int)v;
        } else {
            *(long long *)dst = v;
        }
        return 0;
    }
    case AHA_KEY_FLOAT: {
        AHA_TRY(unquoted_or_fail(c, node, "a number"));
        const char *t = node->text;
        char *end = NULL;
        double v = strtod(t, &end);
        int numeric = strspn(t, "+-0123456789.eE") == strlen(t);
        if (node->quoted || !numeric || *end != '\0' || end == t)
            return fail(c, node, "expected a number, got %s", rnode_describe(node, got, sizeof got));
        if (!isfinite(v) || !in_range(k, v)) return range_error(c, node, k, t);
        *(double *)dst = v;
        return 0;
    }
    case AHA_KEY_STRING:
    case AHA_KEY_PATH: {
        char *s = NULL;
        AHA_TRY(to_string(c, node, &s));
        if ((k->flags & AHA_KEY_REQUIRED) && s[0] == '\0') { /* at its line, not as a missing key */
            free(s);
            return fail(c, node, "must not be empty (%s)", k->doc);
        }
        if (k->type == AHA_KEY_PATH && !c->overridden && check_path(c, node, k, s) != 0) {
            free(s);
            return -1;
        }
        free(*(char **)dst);
        *(char **)dst = s;
        return 0;
    }
    case AHA_KEY_ENUM: {
        char expected[256];
        AHA_TRY(aha_recipe_key_type_text(k, expected, sizeof expected));
        AHA_TRY(scalar_or_fail(c, node, expected));
        int v = enum_index(k->enum_values, node->text);
        if (v < 0) {
            Suggestion s = {0};
            const char *start;
            size_t length;
            for (int i = 0; enum_value(k->enum_values, i, &start, &length); i++) consider(&s, node->text, start, length);
            char hint[160];
            size_t hint_len = 0;
            if (s.best) hint_len = strcspn(s.best, "|");
            return fail(c, node, "expected %s, got %s%s", expected, rnode_describe(node, got, sizeof got),
                        did_you_mean(s.best, hint_len, hint, sizeof hint));
        }
        *(int *)dst = v;
        return 0;
    }
    case AHA_KEY_STRING_LIST: {
        if (!node || node->kind != RNODE_SEQ)
            return fail(c, node, "expected a list of strings like [\"a\", \"b\"], got %s",
                        rnode_describe(node, got, sizeof got));
        AhaStringList list = {aha_calloc((size_t)node->count, sizeof(char *)), 0};
        if (!list.items) return -1;
        for (int i = 0; i < node->count; i++) {
            char name[160];
            snprintf(name, sizeof name, "%s[%d]", c->name, i);
            Ctx item = {c->where, name, 0};
            if (to_string(&item, node->items[i], &list.items[i]) != 0) {
                free_list(&list);
                return -1;
            }
            list.count++;
        }
        free_list((AhaStringList *)dst);
        *(AhaStringList *)dst = list;
        return 0;
    }
    }
    return fail(c, node, "internal: key type %d", (int)k->type);
}

/* Parses a default from the table as if a user had written it. */
static int set_default(const AhaRecipeKey *k, void *base) {
    RWhere where = {"recipe defaults", 0};
    Ctx c = {&where, k->key, 0};
    if (!k->default_yaml) {
        /* Required keys start empty: strings "", numbers 0. */
        if (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) {
            char *empty = aha_strdup("");
            if (!empty) return -1;
            free(*(char **)field(base, k));
            *(char **)field(base, k) = empty;
        }
        return 0;
    }
    RNode *node = NULL;
    AHA_TRY(rnode_parse(k->default_yaml, strlen(k->default_yaml), &where, &node));
    int rc = set_field(&c, k, node, field(base, k));
    rnode_free(node);
    return rc;
}

/* ---- Rewards -------------------------------------------------------------------------- */

static void free_reward(AhaRewardSpec *e) {
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_reward_key(i);
        if (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) {
            free(*(char **)field(e, k));
            *(char **)field(e, k) = NULL;
        }
    }
}

static void free_rewards(AhaRewardSpec *list, int n) {
    for (int i = 0; i < n; i++) free_reward(&list[i]);
    free(list);
}

static int reward_defaults(AhaRewardSpec *e, AhaRewardType type) {
    memset(e, 0, sizeof *e);
    for (int i = 0; i < aha_recipe_reward_key_count(); i++)
        if (set_default(aha_recipe_reward_key(i), e) != 0) {
            free_reward(e);
            return -1;
        }
    e->type = type;
    return 0;
}

static int key_applies(const AhaRecipeKey *k, AhaRewardType type) { return (k->reward_types >> type) & 1u; }

/* The error for a reward key that is unknown, or known but not of this type. */
static int reward_key_error(const Ctx *entry, const RNode *at, const char *typed, AhaRewardType type) {
    const AhaRecipeKey *k = find_reward_key(typed);
    char types[128];
    if (k) {
        if (aha_recipe_reward_types_text(k, types, sizeof types) != 0) return -1;
        return fail(entry, at, "'%s' is not a key of %s rewards (it belongs to %s)", typed,
                    reward_type_name(type), types);
    }
    Suggestion s = {0};
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *cand = aha_recipe_reward_key(i);
        if (key_applies(cand, type)) consider(&s, typed, cand->key, strlen(cand->key));
    }
    char hint[160];
    return fail(entry, at, "unknown key '%s' for a %s reward%s", typed, reward_type_name(type),
                did_you_mean(s.best, s.best ? strlen(s.best) : 0, hint, sizeof hint));
}

static int find_in_map(const RNode *map, const char *name) {
    for (int i = 0; i < map->count; i++) {
        const RNode *key = map->items[2 * i];
        if (key->kind == RNODE_SCALAR && strcmp(key->text, name) == 0) return i;
    }
    return -1;
}

/* Keys of a mapping must be plain names and appear once. */
static int check_keys(const Ctx *c, const RNode *map) {
    char got[256];
    for (int i = 0; i < map->count; i++) {
        const RNode *key = map->items[2 * i];
        if (key->kind != RNODE_SCALAR || rnode_is_null(key))
            return fail(c, key, "expected a key name, got %s", rnode_describe(key, got, sizeof got));
        for (int j = 0; j < i; j++) {
            const RNode *earlier = map->items[2 * j];
            if (earlier->kind == RNODE_SCALAR && strcmp(earlier->text, key->text) == 0) {
                if (c->where->with_marks)
                    return fail(c, key, "duplicate key '%s' (first given at line %d, column %d)", key->text,
                                earlier->line, earlier->col);
                return fail(c, key, "duplicate key '%s'", key->text);
            }
        }
    }
    return 0;
}

/* Checks that hold for a whole entry once all its keys are in. */
static int check_reward_entry(const Ctx *entry, const RNode *at, const AhaRewardSpec *e) {
    if (e->type == AHA_REWARD_PLUGIN) {
        int has_path = e->path[0] != '\0', has_command = e->command[0] != '\0';
        if (!has_path && !has_command)
            return fail(entry, at, "a plugin reward needs path (a shared object) or command (a program)");
        if (has_path && has_command) return fail(entry, at, "a plugin reward takes path or command, not both");
    }
    return 0;
}

/* Builds one entry from a YAML mapping. */
static int parse_reward(const RWhere *where, int index, const RNode *node, AhaRewardSpec *out) {
    char name[64], got[256];
    snprintf(name, sizeof name, "rewards[%d]", index);
    Ctx entry = {where, name, 0};
    if (!node || node->kind != RNODE_MAP)
        return fail(&entry, node, "expected a mapping like {type: math, weight: 1.0}, got %s",
                    rnode_describe(node, got, sizeof got));
    AHA_TRY(check_keys(&entry, node));
    int type_at = find_in_map(node, "type");
    if (type_at < 0) {
        char expected[256];
        AHA_TRY(aha_recipe_key_type_text(aha_recipe_reward_key(0), expected, sizeof expected));
        return fail(&entry, node, "missing required key type (%s)", expected);
    }
    char key_name[160];
    snprintf(key_name, sizeof key_name, "%s.type", name);
    Ctx type_ctx = {where, key_name, 0};
    int type = 0;
    AHA_TRY(set_field(&type_ctx, aha_recipe_reward_key(0), node->items[2 * type_at + 1], &type));
    AHA_TRY(reward_defaults(out, (AhaRewardType)type));
    for (int i = 0; i < node->count; i++) {
        const RNode *key = node->items[2 * i];
        if (i == type_at) continue;
        const AhaRecipeKey *k = find_reward_key(key->text);
        if (!k || !key_applies(k, out->type)) {
            reward_key_error(&entry, key, key->text, out->type);
            goto fail;
        }
        snprintf(key_name, sizeof key_name, "%s.%s", name, k->key);
        Ctx c = {where, key_name, 0};
        if (set_field(&c, k, node->items[2 * i + 1], field(out, k)) != 0) goto fail;
    }
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_reward_key(i);
        if ((k->flags & AHA_KEY_REQUIRED) && key_applies(k, out->type) && find_in_map(node, k->key) < 0) {
            fail(&entry, node, "missing required key %s (%s rewards need it: %s)", k->key, reward_type_name(type),
                 k->doc);
            goto fail;
        }
    }
    if (check_reward_entry(&entry, node, out) != 0) goto fail;
    if (out->name[0] == '\0') {
        char *type_name = aha_strdup(reward_type_name(type));
        if (!type_name) goto fail;
        free(out->name);
        out->name = type_name;
    }
    return 0;
fail:
    free_reward(out);
    return -1;
}

static int check_reward_names(const RWhere *where, const RNode *list, const AhaRewardSpec *rewards, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(rewards[i].name, rewards[j].name) == 0) {
                char name[64];
                snprintf(name, sizeof name, "rewards[%d].name", i);
                Ctx c = {where, name, 0};
                return fail(&c, list ? list->items[i] : NULL,
                            "two rewards are named '%s' (rewards[%d] too); give each a distinct name",
                            rewards[i].name, j);
            }
    return 0;
}

/* Replaces the recipe's rewards with the list in node, only when all of it is valid. */
static int set_rewards(AhaRecipe *r, const RWhere *where, const RNode *node) {
    char got[256];
    Ctx c = {where, "rewards", 0};
    if (!node || node->kind != RNODE_SEQ)
        return fail(&c, node, "expected a list of rewards like [{type: math}], got %s",
                    rnode_describe(node, got, sizeof got));
    if (node->count == 0) return fail(&c, node, "expected at least one reward");
    AhaRewardSpec *list = aha_calloc((size_t)node->count, sizeof *list);
    if (!list) return -1;
    for (int i = 0; i < node->count; i++) {
        if (parse_reward(where, i, node->items[i], &list[i]) != 0) {
            free_rewards(list, i);
            return -1;
        }
        if (where->with_marks && node->items[i]) { /* for errors found later (a pattern, a plug-in) */
            list[i].line = node->items[i]->line;
            list[i].col = node->items[i]->col;
        }
    }
    if (check_reward_names(where, node, list, node->count) != 0) {
        free_rewards(list, node->count);
        return -1;
    }
    free_rewards(r->rewards, r->n_rewards);
    r->rewards = list;
    r->n_rewards = node->count;
    return 0;
}

/* ---- The document ----------------------------------------------------------------------- */

static int unknown_key(const Ctx *c, const RNode *at, const char *section, const char *leaf) {
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

static int unknown_section(const Ctx *c, const RNode *at, const char *name) {
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

/* 1 when one of the overrides assigns dotted ("model.path=..."). */
static int is_overridden(const char *dotted, const char *const *overrides, int n_overrides) {
    size_t n = strlen(dotted);
    for (int i = 0; i < n_overrides; i++)
        if (strncmp(overrides[i], dotted, n) == 0 && overrides[i][n] == '=') return 1;
    return 0;
}

static int apply_document(AhaRecipe *r, const RWhere *where, const RNode *root,
                          const char *const *overrides, int n_overrides) {
    char got[256];
    Ctx top = {where, NULL, 0};
    if (!root)
        return rnode_error(where, NULL, "the recipe is empty; expected a mapping with at least model.path");
    if (root->kind != RNODE_MAP)
        return rnode_error(where, root, "expected a mapping of sections (model:, data:, ...) at the top level, got %s",
                           rnode_describe(root, got, sizeof got));
    AHA_TRY(check_keys(&top, root));
    for (int i = 0; i < root->count; i++) {
        const RNode *key = root->items[2 * i], *value = root->items[2 * i + 1];
        const char *section = key->text;
        if (strcmp(section, "rewards") == 0) {
            AHA_TRY(set_rewards(r, where, value));
            continue;
        }
        Ctx sc = {where, section, 0};
        if (!is_section(section)) return unknown_section(&sc, key, section);
        if (!value || value->kind != RNODE_MAP || value->count == 0) {
            if (value && value->kind == RNODE_MAP) continue; /* an empty section: all defaults */
            return fail(&sc, value, "expected a mapping of %s keys, got %s", section,
                        rnode_describe(value, got, sizeof got));
        }
        AHA_TRY(check_keys(&sc, value));
        for (int j = 0; j < value->count; j++) {
            const RNode *leaf = value->items[2 * j];
            char dotted[256];
            snprintf(dotted, sizeof dotted, "%s.%s", section, leaf->text);
            const AhaRecipeKey *k = find_key(dotted);
            if (!k) return unknown_key(&sc, leaf, section, leaf->text);
            Ctx kc = {where, k->key, is_overridden(k->key, overrides, n_overrides)};
            AHA_TRY(set_field(&kc, k, value->items[2 * j + 1], field(r, k)));
        }
    }
    return 0;
}

/* Checks across keys, after the file and every override. */
static int check_recipe(const AhaRecipe *r, const RWhere *where) {
    if (r->run.eval_every > 0 && r->data.eval[0] == '\0')
        return rnode_error(where, NULL, "run.eval_every is %d but data.eval is not given", r->run.eval_every);
    if (r->algorithm.eps_high < r->algorithm.eps_low)
        return rnode_error(where, NULL,
                           "algorithm.eps_high (%g) is below algorithm.eps_low (%g): the clip range above 1 is "
                           "at least the one below (equal by default, higher in DAPO's clip-higher); swapped?",
                           r->algorithm.eps_high, r->algorithm.eps_low);
    long long completions = (long long)r->rollout.prompts_per_step * r->rollout.group_size;
    if (r->algorithm.minibatches > completions)
        return rnode_error(where, NULL,
                           "algorithm.minibatches (%d) exceeds the completions per step "
                           "(rollout.prompts_per_step x rollout.group_size = %lld)",
                           r->algorithm.minibatches, completions);
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_key(i);
        if ((k->flags & AHA_KEY_REQUIRED) && (*(char *const *)cfield(r, k))[0] == '\0')
            return rnode_error(where, NULL, "missing required key %s (%s)", k->key, k->doc);
    }
    return 0;
}

int aha_recipe_require(const AhaRecipe *r, AhaRecipePurpose purpose) {
    unsigned flag = purpose == AHA_PURPOSE_TRAIN      ? AHA_KEY_REQUIRED_TRAIN
                    : purpose == AHA_PURPOSE_PRETRAIN ? AHA_KEY_REQUIRED_PRETRAIN
                                                      : AHA_KEY_REQUIRED;
    RWhere where = {r->source && r->source[0] ? r->source : "recipe", 0};
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_key(i);
        if ((k->flags & (flag | AHA_KEY_REQUIRED)) && (*(char *const *)cfield(r, k))[0] == '\0')
            return rnode_error(&where, NULL, "missing required key %s%s (%s)", k->key,
                               k->flags & AHA_KEY_REQUIRED_TRAIN      ? " for train"
                               : k->flags & AHA_KEY_REQUIRED_PRETRAIN ? " for pretrain"
                                                                      : "",
                               k->doc);
    }
    return 0;
}

/* ---- Public entry points ---------------------------------------------------------------- */

int aha_recipe_defaults(AhaRecipe *out) {
    memset(out, 0, sizeof *out);
    out->source = aha_strdup("");
    if (!out->source) return -1;
    for (int i = 0; i < aha_recipe_key_count(); i++)
        if (set_default(aha_recipe_key(i), out) != 0) goto fail;
    out->rewards = aha_calloc(1, sizeof *out->rewards);
    if (!out->rewards) goto fail;
    if (reward_defaults(&out->rewards[0], AHA_REWARD_MATH) != 0) goto fail;
    out->n_rewards = 1;
    free(out->rewards[0].name);
    out->rewards[0].name = aha_strdup("math");
    if (!out->rewards[0].name) goto fail;
    return 0;
fail:
    aha_recipe_free(out);
    return -1;
}

static int read_file(const char *path, char **text, size_t *length) {
    FILE *f = fopen(path, "rb");
    if (!f) return aha_error_errno("%s: cannot open the recipe", path);
    size_t capacity = 4096, used = 0;
    char *buf = aha_malloc(capacity);
    if (!buf) {
        fclose(f);
        return -1;
    }
    for (;;) {
        if (used == capacity) {
            if (capacity >= (size_t)16 << 20) {
                free(buf);
                fclose(f);
                return aha_errorf("%s: larger than 16 MiB; a recipe is a short YAML file", path);
            }
            char *grown = aha_realloc(buf, capacity * 2);
            if (!grown) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = grown;
            capacity *= 2;
        }
        size_t n = fread(buf + used, 1, capacity - used, f);
        used += n;
        if (n == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return aha_error_errno("%s: reading the recipe failed", path);
    }
    *text = buf;
    *length = used;
    return 0;
}

int aha_recipe_load(const char *path, const char *const *overrides, int n_overrides, AhaRecipe *out) {
    AHA_TRY(aha_recipe_defaults(out));
    char *text = NULL;
    size_t length = 0;
    RNode *root = NULL;
    RWhere where = {path, 1};
    free(out->source);
    out->source = aha_strdup(path);
    if (!out->source) goto fail;
    if (read_file(path, &text, &length) != 0) goto fail;
    if (rnode_parse(text, length, &where, &root) != 0) goto fail;
    if (apply_document(out, &where, root, overrides, n_overrides) != 0) goto fail;
    for (int i = 0; i < n_overrides; i++)
        if (aha_recipe_set(out, overrides[i]) != 0) goto fail;
    RWhere whole = {path, 0};
    if (check_recipe(out, &whole) != 0) goto fail;
    rnode_free(root);
    free(text);
    return 0;
fail:
    rnode_free(root);
    free(text);
    aha_recipe_free(out);
    return -1;
}

/* "rewards.N.key=value": one field of an existing entry. */
static int set_reward_field(AhaRecipe *r, const RWhere *where, const char *key, const char *value_text) {
    const char *p = key + strlen("rewards.");
    char *end = NULL;
    long index = strtol(p, &end, 10);
    Ctx c = {where, key, 0};
    if (end == p || *end != '.' || index < 0)
        return fail(&c, NULL, "expected rewards.N.KEY with N the entry's index from 0");
    if (index >= r->n_rewards)
        return fail(&c, NULL, "the recipe has %d reward%s (indices 0 to %d)", r->n_rewards,
                    r->n_rewards == 1 ? "" : "s", r->n_rewards - 1);
    AhaRewardSpec *e = &r->rewards[index];
    const char *leaf = end + 1;
    if (strcmp(leaf, "type") == 0)
        return fail(&c, NULL, "the type of an entry cannot change; replace the list with --set rewards=[...]");
    const AhaRecipeKey *k = find_reward_key(leaf);
    char name[64];
    snprintf(name, sizeof name, "rewards[%ld]", index);
    Ctx entry = {where, name, 0};
    if (!k || !key_applies(k, e->type)) return reward_key_error(&entry, NULL, leaf, e->type);
    RNode *node = NULL;
    int literal = k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH || k->type == AHA_KEY_ENUM;
    RNode plain = {.kind = RNODE_SCALAR, .text = (char *)value_text, .quoted = 1};
    if (!literal || value_text[0] == '"' || value_text[0] == '\'') {
        AHA_TRY(rnode_parse(value_text, strlen(value_text), where, &node));
    }
    AhaRewardSpec updated = *e;
    /* Work on a copy of the one field so a failure leaves the entry unchanged. */
    char *old_string = (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) ? *(char **)field(e, k) : NULL;
    if (old_string) *(char **)field(&updated, k) = NULL;
    int rc = set_field(&c, k, node ? node : (literal ? &plain : NULL), field(&updated, k));
    rnode_free(node);
    if (rc != 0) return -1;
    if (check_reward_entry(&entry, NULL, &updated) != 0 ||
        (strcmp(leaf, "name") == 0 && updated.name[0] == '\0' && fail(&c, NULL, "expected a non-empty name"))) {
        if (old_string) free(*(char **)field(&updated, k));
        return -1;
    }
    AhaRewardSpec saved = *e;
    *e = updated;
    if (check_reward_names(where, NULL, r->rewards, r->n_rewards) != 0) {
        if (old_string) free(*(char **)field(e, k));
        *e = saved;
        return -1;
    }
    free(old_string);
    return 0;
}

int aha_recipe_set(AhaRecipe *r, const char *assignment) {
    char origin[320];
    snprintf(origin, sizeof origin, "--set %.300s", assignment);
    RWhere where = {origin, 0};
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return rnode_error(&where, NULL, "expected KEY=VALUE, e.g. --set optim.lr=3e-6");
    char key[256];
    size_t key_len = (size_t)(eq - assignment);
    if (key_len >= sizeof key) return rnode_error(&where, NULL, "the key is too long");
    memcpy(key, assignment, key_len);
    key[key_len] = '\0';
    const char *value_text = eq + 1;
    if (strcmp(key, "rewards") == 0) {
        RNode *node = NULL;
        AHA_TRY(rnode_parse(value_text, strlen(value_text), &where, &node));
        int rc = set_rewards(r, &where, node);
        rnode_free(node);
        return rc;
    }
    if (strncmp(key, "rewards.", 8) == 0) return set_reward_field(r, &where, key, value_text);
    const AhaRecipeKey *k = find_key(key);
    if (!k) {
        Ctx c = {&where, key, 0};
        const char *dot = strchr(key, '.');
        if (!dot) return unknown_section(&c, NULL, key);
        char section[128];
        snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
        if (!is_section(section)) return unknown_section(&c, NULL, section);
        return unknown_key(&c, NULL, section, dot + 1);
    }
    Ctx c = {&where, k->key, 0};
    int literal = k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH || k->type == AHA_KEY_ENUM;
    if (literal && value_text[0] != '"' && value_text[0] != '\'') {
        /* Strings need no quotes on the command line: the text after '=' is the value. */
        RNode plain = {.kind = RNODE_SCALAR, .text = (char *)value_text, .quoted = 1};
        return set_field(&c, k, &plain, field(r, k));
    }
    RNode *node = NULL;
    AHA_TRY(rnode_parse(value_text, strlen(value_text), &where, &node));
    int rc = set_field(&c, k, node, field(r, k));
    rnode_free(node);
    return rc;
}

void aha_recipe_free(AhaRecipe *r) {
    if (!r) return;
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_key(i);
        if (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) free(*(char **)field(r, k));
        if (k->type == AHA_KEY_STRING_LIST) free_list((AhaStringList *)field(r, k));
    }
    free_rewards(r->rewards, r->n_rewards);
    free(r->source);
    memset(r, 0, sizeof *r);
}

/* ---- Equality and the YAML dump -------------------------------------------------------- */

static int field_equal(const AhaRecipeKey *k, const void *a, const void *b) {
    const void *x = cfield(a, k), *y = cfield(b, k);
    switch (k->type) {
    case AHA_KEY_BOOL:
    case AHA_KEY_INT:
    case AHA_KEY_ENUM: return *(const int *)x == *(const int *)y;
    case AHA_KEY_INT64: return *(const long long *)x == *(const long long *)y;
    case AHA_KEY_FLOAT: return *(const double *)x == *(const double *)y;
    case AHA_KEY_STRING:
    case AHA_KEY_PATH: return strcmp(*(char *const *)x, *(char *const *)y) == 0;
    case AHA_KEY_STRING_LIST: {
        const AhaStringList *p = x, *q = y;
        if (p->count != q->count) return 0;
        for (int i = 0; i < p->count; i++)
            if (strcmp(p->items[i], q->items[i]) != 0) return 0;
        return 1;
    }
    }
    return 0;
}

int aha_recipe_equal(const AhaRecipe *a, const AhaRecipe *b) {
    for (int i = 0; i < aha_recipe_key_count(); i++)
        if (!field_equal(aha_recipe_key(i), a, b)) return 0;
    if (a->n_rewards != b->n_rewards) return 0;
    for (int e = 0; e < a->n_rewards; e++)
        for (int i = 0; i < aha_recipe_reward_key_count(); i++)
            if (!field_equal(aha_recipe_reward_key(i), &a->rewards[e], &b->rewards[e])) return 0;
    return 1;
}

/* A YAML double-quoted scalar that reads back to exactly s. */
static void write_quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void write_double(FILE *out, double v) {
    char buf[64];
    fputs(format_double(v, buf, sizeof buf), out);
}

static void write_value(FILE *out, const AhaRecipeKey *k, const void *base) {
    const void *x = cfield(base, k);
    switch (k->type) {
    case AHA_KEY_BOOL: fputs(*(const int *)x ? "true" : "false", out); break;
    case AHA_KEY_INT: fprintf(out, "%d", *(const int *)x); break;
    case AHA_KEY_INT64: fprintf(out, "%lld", *(const long long *)x); break;
    case AHA_KEY_FLOAT: write_double(out, *(const double *)x); break;
    case AHA_KEY_STRING:
    case AHA_KEY_PATH: write_quoted(out, *(char *const *)x); break;
    case AHA_KEY_ENUM: {
        const char *start;
        size_t length;
        if (enum_value(k->enum_values, *(const int *)x, &start, &length)) fprintf(out, "%.*s", (int)length, start);
        break;
    }
    case AHA_KEY_STRING_LIST: {
        const AhaStringList *list = x;
        fputc('[', out);
        for (int i = 0; i < list->count; i++) {
            if (i) fputs(", ", out);
            write_quoted(out, list->items[i]);
        }
        fputc(']', out);
        break;
    }
    }
}

int aha_recipe_dump_yaml(const AhaRecipe *r, FILE *out) {
    fprintf(out, "# aha recipe, resolved%s%s\n", r->source && r->source[0] ? " from " : "",
            r->source ? r->source : "");
    const char *section = NULL;
    size_t section_len = 0;
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_key(i);
        size_t n = section_length(k->key);
        if (!section || n != section_len || strncmp(section, k->key, n) != 0) {
            section = k->key;
            section_len = n;
            /* rewards sit between rollout and algorithm, as in the docs */
            if (strncmp(section, "algorithm.", 10) == 0) {
                fputs("rewards:\n", out);
                for (int e = 0; e < r->n_rewards; e++) {
                    const AhaRewardSpec *entry = &r->rewards[e];
                    int first = 1;
                    for (int j = 0; j < aha_recipe_reward_key_count(); j++) {
                        const AhaRecipeKey *rk = aha_recipe_reward_key(j);
                        if (!key_applies(rk, entry->type)) continue;
                        fprintf(out, "%s%s: ", first ? "  - " : "    ", rk->key);
                        write_value(out, rk, entry);
                        fputc('\n', out);
                        first = 0;
                    }
                }
            }
            fprintf(out, "%.*s:\n", (int)n, k->key);
        }
        fprintf(out, "  %s: ", k->key + n + 1);
        write_value(out, k, r);
        fputc('\n', out);
    }
    if (ferror(out)) return aha_errorf("writing the recipe as YAML failed");
    return 0;
}
