/* Recipes: a YAML file -> AhaRecipe, through the key table of core/recipe_schema.c: defaults,
 * the document section by section, --set overrides, then the checks across keys. The other
 * core/recipe_*.c files hold the pieces (core/recipe_internal.h lists them). */
#include "aha/recipe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "core/recipe_internal.h"

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
    RecipeCtx top = {where, NULL, 0};
    if (!root)
        return rnode_error(where, NULL, "the recipe is empty; expected a mapping with at least model.path");
    if (root->kind != RNODE_MAP)
        return rnode_error(where, root, "expected a mapping of sections (model:, data:, ...) at the top level, got %s",
                           rnode_describe(root, got, sizeof got));
    AHA_TRY(aha_recipe_check_keys(&top, root));
    for (int i = 0; i < root->count; i++) {
        const RNode *key = root->items[2 * i], *value = root->items[2 * i + 1];
        const char *section = key->text;
        if (strcmp(section, "rewards") == 0) {
            AHA_TRY(aha_recipe_set_rewards(r, where, value));
            continue;
        }
        RecipeCtx sc = {where, section, 0};
        if (!aha_recipe_is_section(section)) return aha_recipe_unknown_section(&sc, key, section);
        if (!value || value->kind != RNODE_MAP || value->count == 0) {
            if (value && value->kind == RNODE_MAP) continue; /* an empty section: all defaults */
            return aha_recipe_fail(&sc, value, "expected a mapping of %s keys, got %s", section,
                        rnode_describe(value, got, sizeof got));
        }
        AHA_TRY(aha_recipe_check_keys(&sc, value));
        for (int j = 0; j < value->count; j++) {
            const RNode *leaf = value->items[2 * j];
            char dotted[256];
            snprintf(dotted, sizeof dotted, "%s.%s", section, leaf->text);
            const AhaRecipeKey *k = aha_recipe_find_key(dotted);
            if (!k) return aha_recipe_unknown_key(&sc, leaf, section, leaf->text);
            RecipeCtx kc = {where, k->key, is_overridden(k->key, overrides, n_overrides)};
            AHA_TRY(aha_recipe_set_field(&kc, k, value->items[2 * j + 1], field(r, k)));
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
        if (aha_recipe_set_default(aha_recipe_key(i), out) != 0) goto aha_recipe_fail;
    out->rewards = aha_calloc(1, sizeof *out->rewards);
    if (!out->rewards) goto aha_recipe_fail;
    if (aha_recipe_reward_defaults(&out->rewards[0], AHA_REWARD_MATH) != 0) goto aha_recipe_fail;
    out->n_rewards = 1;
    free(out->rewards[0].name);
    out->rewards[0].name = aha_strdup("math");
    if (!out->rewards[0].name) goto aha_recipe_fail;
    return 0;
aha_recipe_fail:
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
    if (!out->source) goto aha_recipe_fail;
    if (read_file(path, &text, &length) != 0) goto aha_recipe_fail;
    if (rnode_parse(text, length, &where, &root) != 0) goto aha_recipe_fail;
    if (apply_document(out, &where, root, overrides, n_overrides) != 0) goto aha_recipe_fail;
    for (int i = 0; i < n_overrides; i++)
        if (aha_recipe_set(out, overrides[i]) != 0) goto aha_recipe_fail;
    RWhere whole = {path, 0};
    if (check_recipe(out, &whole) != 0) goto aha_recipe_fail;
    rnode_free(root);
    free(text);
    return 0;
aha_recipe_fail:
    rnode_free(root);
    free(text);
    aha_recipe_free(out);
    return -1;
}

void aha_recipe_free(AhaRecipe *r) {
    if (!r) return;
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_key(i);
        if (k->type == AHA_KEY_STRING || k->type == AHA_KEY_PATH) free(*(char **)field(r, k));
        if (k->type == AHA_KEY_STRING_LIST) aha_recipe_free_list((AhaStringList *)field(r, k));
    }
    aha_recipe_free_rewards(r->rewards, r->n_rewards);
    free(r->source);
    memset(r, 0, sizeof *r);
}
