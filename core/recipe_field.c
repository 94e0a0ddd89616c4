/* Converting one YAML node into one typed field of a recipe, with the message that says what
 * was expected: numbers in range, booleans, strings (UTF-8), paths that exist, enums, lists. */
#include "core/recipe_internal.h"

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

int aha_recipe_fail(const RecipeCtx *c, const RNode *node, const char *fmt, ...) {
    char message[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (!c->name) return rnode_error(c->where, node, "%s", message);
    return rnode_error(c->where, node, "%s: %s", c->name, message);
}

/* The shortest decimal form that reads back to the same double; integers without exponent. */
const char *aha_recipe_format_double(double v, char *buf, size_t size) {
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

static int range_error(const RecipeCtx *c, const RNode *node, const AhaRecipeKey *k, const char *got) {
    char lo[64], hi[64];
    aha_recipe_format_double(k->min, lo, sizeof lo);
    aha_recipe_format_double(k->max, hi, sizeof hi);
    const char *op = k->flags & AHA_KEY_MIN_EXCLUSIVE ? ">" : ">=";
    if (k->flags & AHA_KEY_ZERO_IS_OFF) return aha_recipe_fail(c, node, "expected 0 (off) or a value %s %s, got %s", op, lo, got);
    if (k->max == AHA_RECIPE_NO_MAX) return aha_recipe_fail(c, node, "expected a value %s %s, got %s", op, lo, got);
    return aha_recipe_fail(c, node, "expected a value in %c%s, %s], got %s", k->flags & AHA_KEY_MIN_EXCLUSIVE ? '(' : '[', lo,
                hi, got);
}

static int in_range(const AhaRecipeKey *k, double v) {
    if ((k->flags & AHA_KEY_ZERO_IS_OFF) && v == 0) return 1;
    if (k->flags & AHA_KEY_MIN_EXCLUSIVE ? !(v > k->min) : !(v >= k->min)) return 0;
    return v <= k->max;
}

static int scalar_or_fail(const RecipeCtx *c, const RNode *node, const char *expected) {
    char buf[256];
    if (!node || node->kind != RNODE_SCALAR || rnode_is_null(node))
        return aha_recipe_fail(c, node, "expected %s, got %s", expected, rnode_describe(node, buf, sizeof buf));
    return 0;
}

/* For numbers and booleans: a quoted value is a string in YAML, so say so. */
static int unquoted_or_fail(const RecipeCtx *c, const RNode *node, const char *expected) {
    char buf[256];
    AHA_TRY(scalar_or_fail(c, node, expected));
    if (node->quoted)
        return aha_recipe_fail(c, node, "expected %s, got the quoted string %s (remove the quotes)", expected,
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
static int to_string(const RecipeCtx *c, const RNode *node, char **out) {
    char buf[256];
    if (!node || node->kind != RNODE_SCALAR || rnode_is_null(node))
        return aha_recipe_fail(c, node, "expected a string, got %s (write \"\" for an empty string)",
                    rnode_describe(node, buf, sizeof buf));
    if (!valid_utf8(node->text)) return aha_recipe_fail(c, node, "expected UTF-8 text");
    *out = aha_strdup(node->text);
    return *out ? 0 : -1;
}

static int check_path(const RecipeCtx *c, const RNode *node, const AhaRecipeKey *k, const char *path) {
    if (path[0] == '\0') return 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return aha_recipe_fail(c, node, "'%s' does not exist (relative paths are read from the current directory)", path);
        return aha_recipe_fail(c, node, "cannot access '%s': %s", path, strerror(errno));
    }
    if ((k->flags & AHA_KEY_DIR) && !S_ISDIR(st.st_mode)) return aha_recipe_fail(c, node, "'%s' is not a directory", path);
    if ((k->flags & AHA_KEY_FILE) && S_ISDIR(st.st_mode)) return aha_recipe_fail(c, node, "'%s' is a directory, expected a file", path);
    return 0;
}

void aha_recipe_free_list(AhaStringList *list) {
    for (int i = 0; i < list->count; i++) free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* Parses node as key k's type and, only when everything is valid, stores it at dst. */
int aha_recipe_set_field(const RecipeCtx *c, const AhaRecipeKey *k, const RNode *node, void *dst) {
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
            return aha_recipe_fail(c, node, "expected true or false, got %s", rnode_describe(node, got, sizeof got));
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
            return aha_recipe_fail(c, node, "expected an integer, got %s", rnode_describe(node, got, sizeof got));
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
            return aha_recipe_fail(c, node, "expected a number, got %s", rnode_describe(node, got, sizeof got));
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
            return aha_recipe_fail(c, node, "must not be empty (%s)", k->doc);
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
        int v = aha_recipe_enum_index(k->enum_values, node->text);
        if (v < 0) {
            char hint[160];
            return aha_recipe_fail(c, node, "expected %s, got %s%s", expected, rnode_describe(node, got, sizeof got),
                                   aha_recipe_enum_hint(k->enum_values, node->text, hint, sizeof hint));
        }
        *(int *)dst = v;
        return 0;
    }
    case AHA_KEY_STRING_LIST: {
        if (!node || node->kind != RNODE_SEQ)
            return aha_recipe_fail(c, node, "expected a list of strings like [\"a\", \"b\"], got %s",
                        rnode_describe(node, got, sizeof got));
        AhaStringList list = {aha_calloc((size_t)node->count, sizeof(char *)), 0};
        if (!list.items) return -1;
        for (int i = 0; i < node->count; i++) {
            char name[160];
            snprintf(name, sizeof name, "%s[%d]", c->name, i);
            RecipeCtx item = {c->where, name, 0};
            if (to_string(&item, node->items[i], &list.items[i]) != 0) {
                aha_recipe_free_list(&list);
                return -1;
            }
            list.count++;
        }
        aha_recipe_free_list((AhaStringList *)dst);
        *(AhaStringList *)dst = list;
        return 0;
    }
    }
    return aha_recipe_fail(c, node, "internal: key type %d", (int)k->type);
}

/* Parses a default from the table as if a user had written it. */
int aha_recipe_set_default(const AhaRecipeKey *k, void *base) {
    RWhere where = {"recipe defaults", 0};
    RecipeCtx c = {&where, k->key, 0};
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
    int rc = aha_recipe_set_field(&c, k, node, field(base, k));
    rnode_free(node);
    return rc;
}

/* Keys of a mapping must be plain names and appear once. */
int aha_recipe_check_keys(const RecipeCtx *c, const RNode *map) {
    char got[256];
    for (int i = 0; i < map->count; i++) {
        const RNode *key = map->items[2 * i];
        if (key->kind != RNODE_SCALAR || rnode_is_null(key))
            return aha_recipe_fail(c, key, "expected a key name, got %s", rnode_describe(key, got, sizeof got));
        for (int j = 0; j < i; j++) {
            const RNode *earlier = map->items[2 * j];
            if (earlier->kind == RNODE_SCALAR && strcmp(earlier->text, key->text) == 0) {
                if (c->where->with_marks)
                    return aha_recipe_fail(c, key, "duplicate key '%s' (first given at line %d, column %d)", key->text,
                                earlier->line, earlier->col);
                return aha_recipe_fail(c, key, "duplicate key '%s'", key->text);
            }
        }
    }
    return 0;
}
