/* --set KEY=VALUE: one override on a loaded recipe ("optim.lr=3e-6", "rewards.0.weight=2",
 * "rewards=[{type: math}]"); a failure leaves the recipe unchanged. */
#include "core/recipe_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"

/* Strings need no quotes on the command line: for a string, path or enum key the text after
 * '=' is the value unless it starts with a quote; anything else is read as YAML. */
static int set_from_text(const RecipeCtx *c, const AhaRecipeKey *k, const char *value_text, void *dst) {
    int literal = k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH || k->type == AHA_KEY_ENUM;
    if (literal && value_text[0] != '"' && value_text[0] != '\'') {
        RNode plain = {.kind = RNODE_SCALAR, .text = (char *)value_text, .quoted = 1};
        return aha_recipe_set_field(c, k, &plain, dst);
    }
    RNode *node = NULL;
    AHA_TRY(rnode_parse(value_text, strlen(value_text), c->where, &node));
    int rc = aha_recipe_set_field(c, k, node, dst);
    rnode_free(node);
    return rc;
}

/* "rewards.N.key=value": one field of an existing entry. */
static int set_reward_field(AhaRecipe *r, const RWhere *where, const char *key, const char *value_text) {
    const char *p = key + strlen("rewards.");
    char *end = NULL;
    long index = strtol(p, &end, 10);
    RecipeCtx c = {where, key, 0};
    if (end == p || *end != '.' || index < 0)
        return aha_recipe_fail(&c, NULL, "expected rewards.N.KEY with N the entry's index from 0");
    if (index >= r->n_rewards)
        return aha_recipe_fail(&c, NULL, "the recipe has %d reward%s (indices 0 to %d)", r->n_rewards,
                    r->n_rewards == 1 ? "" : "s", r->n_rewards - 1);
    AhaRewardSpec *e = &r->rewards[index];
    const char *leaf = end + 1;
    if (strcmp(leaf, "type") == 0)
        return aha_recipe_fail(&c, NULL, "the type of an entry cannot change; replace the list with --set rewards=[...]");
    const AhaRecipeKey *k = aha_recipe_find_reward_key(leaf);
    char name[64];
    snprintf(name, sizeof name, "rewards[%ld]", index);
    RecipeCtx entry = {where, name, 0};
    if (!k || !key_applies(k, e->type)) return aha_recipe_reward_key_error(&entry, NULL, leaf, e->type);
    AhaRewardSpec updated = *e;
    /* Work on a copy of the one field so a failure leaves the entry unchanged. */
    char *old_string = (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) ? *(char **)field(e, k) : NULL;
    if (old_string) *(char **)field(&updated, k) = NULL;
    if (set_from_text(&c, k, value_text, field(&updated, k)) != 0) return -1;
    if (aha_recipe_check_reward_entry(&entry, NULL, &updated) != 0 ||
        (strcmp(leaf, "name") == 0 && updated.name[0] == '\0' && aha_recipe_fail(&c, NULL, "expected a non-empty name"))) {
        if (old_string) free(*(char **)field(&updated, k));
        return -1;
    }
    AhaRewardSpec saved = *e;
    *e = updated;
    if (aha_recipe_check_reward_names(where, NULL, r->rewards, r->n_rewards) != 0) {
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
        int rc = aha_recipe_set_rewards(r, &where, node);
        rnode_free(node);
        return rc;
    }
    if (strncmp(key, "rewards.", 8) == 0) return set_reward_field(r, &where, key, value_text);
    const AhaRecipeKey *k = aha_recipe_find_key(key);
    if (!k) {
        RecipeCtx c = {&where, key, 0};
        const char *dot = strchr(key, '.');
        if (!dot) return aha_recipe_unknown_section(&c, NULL, key);
        char section[128];
        snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
        if (!aha_recipe_is_section(section)) return aha_recipe_unknown_section(&c, NULL, section);
        return aha_recipe_unknown_key(&c, NULL, section, dot + 1);
    }
    RecipeCtx c = {&where, k->key, 0};
    return set_from_text(&c, k, value_text, field(r, k));
}
