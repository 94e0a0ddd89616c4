/* Looking keys, sections and enum values up in the key table of core/recipe_schema.c. */
#include "core/recipe_internal.h"

#include <string.h>


const AhaRecipeKey *aha_recipe_find_key(const char *dotted) {
    for (int i = 0; i < aha_recipe_key_count(); i++)
        if (strcmp(aha_recipe_key(i)->key, dotted) == 0) return aha_recipe_key(i);
    return NULL;
}

const AhaRecipeKey *aha_recipe_find_reward_key(const char *name) {
    for (int i = 0; i < aha_recipe_reward_key_count(); i++)
        if (strcmp(aha_recipe_reward_key(i)->key, name) == 0) return aha_recipe_reward_key(i);
    return NULL;
}

int aha_recipe_is_section(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const char *key = aha_recipe_key(i)->key;
        if (section_length(key) == n && strncmp(key, name, n) == 0) return 1;
    }
    return 0;
}

/* The i-th '|'-separated enum value. */
int aha_recipe_enum_value(const char *values, int index, const char **start, size_t *length) {
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

int aha_recipe_enum_index(const char *values, const char *text) {
    const char *start;
    size_t length;
    for (int i = 0; aha_recipe_enum_value(values, i, &start, &length); i++)
        if (strlen(text) == length && strncmp(start, text, length) == 0) return i;
    return -1;
}

const char *aha_recipe_reward_type_name(int type) {
    const char *start;
    size_t length;
    static _Thread_local char name[32];
    if (!aha_recipe_enum_value(aha_recipe_reward_key(0)->enum_values, type, &start, &length) || length >= sizeof name)
        return "?";
    memcpy(name, start, length);
    name[length] = '\0';
    return name;
}

const char *aha_recipe_enum_name(const char *key, int value) {
    const AhaRecipeKey *k = NULL;
    if (strncmp(key, "rewards.", 8) == 0)
        k = aha_recipe_find_reward_key(key + 8);
    else
        k = aha_recipe_find_key(key);
    if (!k || k->type != AHA_KEY_ENUM || value < 0) return "?";
    const char *start;
    size_t length;
    if (!aha_recipe_enum_value(k->enum_values, value, &start, &length)) return "?";
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
