/* The rewards list of a recipe: each entry from a mapping (its type first, then only the keys
 * of that type), required keys, plug-in entries, and distinct names. */
#include "core/recipe_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"

static void free_reward(AhaRewardSpec *e) {
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_reward_key(i);
        if (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) {
            free(*(char **)field(e, k));
            *(char **)field(e, k) = NULL;
        }
    }
}

void aha_recipe_free_rewards(AhaRewardSpec *list, int n) {
    for (int i = 0; i < n; i++) free_reward(&list[i]);
    free(list);
}

int aha_recipe_reward_defaults(AhaRewardSpec *e, AhaRewardType type) {
    memset(e, 0, sizeof *e);
    for (int i = 0; i < aha_recipe_reward_key_count(); i++)
        if (aha_recipe_set_default(aha_recipe_reward_key(i), e) != 0) {
            free_reward(e);
            return -1;
        }
    e->type = type;
    return 0;
}

static int find_in_map(const RNode *map, const char *name) {
    for (int i = 0; i < map->count; i++) {
        const RNode *key = map->items[2 * i];
        if (key->kind == RNODE_SCALAR && strcmp(key->text, name) == 0) return i;
    }
    return -1;
}

/* Checks that hold for a whole entry once all its keys are in. */
int aha_recipe_check_reward_entry(const RecipeCtx *entry, const RNode *at, const AhaRewardSpec *e) {
    if (e->type == AHA_REWARD_PLUGIN) {
        int has_path = e->path[0] != '\0', has_command = e->command[0] != '\0';
        if (!has_path && !has_command)
            return aha_recipe_fail(entry, at, "a plugin reward needs path (a shared object) or command (a program)");
        if (has_path && has_command) return aha_recipe_fail(entry, at, "a plugin reward takes path or command, not both");
    }
    return 0;
}

/* Builds one entry from a YAML mapping. */
static int parse_reward(const RWhere *where, int index, const RNode *node, AhaRewardSpec *out) {
    char name[64], got[256];
    snprintf(name, sizeof name, "rewards[%d]", index);
    RecipeCtx entry = {where, name, 0};
    if (!node || node->kind != RNODE_MAP)
        return aha_recipe_fail(&entry, node, "expected a mapping like {type: math, weight: 1.0}, got %s",
                    rnode_describe(node, got, sizeof got));
    AHA_TRY(aha_recipe_check_keys(&entry, node));
    int type_at = find_in_map(node, "type");
    if (type_at < 0) {
        char expected[256];
        AHA_TRY(aha_recipe_key_type_text(aha_recipe_reward_key(0), expected, sizeof expected));
        return aha_recipe_fail(&entry, node, "missing required key type (%s)", expected);
    }
    char key_name[160];
    snprintf(key_name, sizeof key_name, "%s.type", name);
    RecipeCtx type_ctx = {where, key_name, 0};
    int type = 0;
    AHA_TRY(aha_recipe_set_field(&type_ctx, aha_recipe_reward_key(0), node->items[2 * type_at + 1], &type));
    AHA_TRY(aha_recipe_reward_defaults(out, (AhaRewardType)type));
    for (int i = 0; i < node->count; i++) {
        const RNode *key = node->items[2 * i];
        if (i == type_at) continue;
        const AhaRecipeKey *k = aha_recipe_find_reward_key(key->text);
        if (!k || !key_applies(k, out->type)) {
            aha_recipe_reward_key_error(&entry, key, key->text, out->type);
            goto aha_recipe_fail;
        }
        snprintf(key_name, sizeof key_name, "%s.%s", name, k->key);
        RecipeCtx c = {where, key_name, 0};
        if (aha_recipe_set_field(&c, k, node->items[2 * i + 1], field(out, k)) != 0) goto aha_recipe_fail;
    }
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_reward_key(i);
        if ((k->flags & AHA_KEY_REQUIRED) && key_applies(k, out->type) && find_in_map(node, k->key) < 0) {
            aha_recipe_fail(&entry, node, "missing required key %s (%s rewards need it: %s)", k->key, aha_recipe_reward_type_name(type),
                 k->doc);
            goto aha_recipe_fail;
        }
    }
    if (aha_recipe_check_reward_entry(&entry, node, out) != 0) goto aha_recipe_fail;
    if (out->name[0] == '\0') {
        char *type_name = aha_strdup(aha_recipe_reward_type_name(type));
        if (!type_name) goto aha_recipe_fail;
        free(out->name);
        out->name = type_name;
    }
    return 0;
aha_recipe_fail:
    free_reward(out);
    return -1;
}

int aha_recipe_check_reward_names(const RWhere *where, const RNode *list, const AhaRewardSpec *rewards, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(rewards[i].name, rewards[j].name) == 0) {
                char name[64];
                snprintf(name, sizeof name, "rewards[%d].name", i);
                RecipeCtx c = {where, name, 0};
                return aha_recipe_fail(&c, list ? list->items[i] : NULL,
                            "two rewards are named '%s' (rewards[%d] too); give each a distinct name",
                            rewards[i].name, j);
            }
    return 0;
}

/* Replaces the recipe's rewards with the list in node, only when all of it is valid. */
int aha_recipe_set_rewards(AhaRecipe *r, const RWhere *where, const RNode *node) {
    char got[256];
    RecipeCtx c = {where, "rewards", 0};
    if (!node || node->kind != RNODE_SEQ)
        return aha_recipe_fail(&c, node, "expected a list of rewards like [{type: math}], got %s",
                    rnode_describe(node, got, sizeof got));
    if (node->count == 0) return aha_recipe_fail(&c, node, "expected at least one reward");
    AhaRewardSpec *list = aha_calloc((size_t)node->count, sizeof *list);
    if (!list) return -1;
    for (int i = 0; i < node->count; i++) {
        if (parse_reward(where, i, node->items[i], &list[i]) != 0) {
            aha_recipe_free_rewards(list, i);
            return -1;
        }
        if (where->with_marks && node->items[i]) { /* for errors found later (a pattern, a plug-in) */
            list[i].line = node->items[i]->line;
            list[i].col = node->items[i]->col;
        }
    }
    if (aha_recipe_check_reward_names(where, node, list, node->count) != 0) {
        aha_recipe_free_rewards(list, node->count);
        return -1;
    }
    aha_recipe_free_rewards(r->rewards, r->n_rewards);
    r->rewards = list;
    r->n_rewards = node->count;
    return 0;
}
