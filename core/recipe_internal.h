/* What the files of the recipe loader share; internal to core/recipe*.c.
 *
 *   recipe.c          loading a file: defaults, the document, checks across keys, freeing
 *   recipe_keys.c     looking keys and enum values up in the table of core/recipe_schema.c
 *   recipe_field.c    one YAML node into one typed field, with its error message
 *   recipe_rewards.c  the rewards list: entries, their keys, distinct names
 *   recipe_set.c      --set KEY=VALUE overrides
 *   recipe_suggest.c  "unknown key" messages with a did-you-mean suggestion
 *   recipe_equal.c    field-by-field equality
 *   recipe_dump.c     the resolved recipe as YAML that loads back to the same recipe
 *
 * Every error goes through aha_recipe_fail or rnode_error, so messages name the origin, the
 * line and column, and the key. */
#ifndef AHA_CORE_RECIPE_INTERNAL_H
#define AHA_CORE_RECIPE_INTERNAL_H

#include <stddef.h>
#include <string.h>

#include "aha/recipe.h"
#include "core/recipe_yaml.h"

/* Where a value sits, for messages and for path checks. */
typedef struct {
    const RWhere *where;
    const char *name; /* the key as the user wrote it in context: "optim.lr", "rewards[1].weight" */
    int overridden;   /* a --set replaces this value: its path need not exist */
} RecipeCtx;

/* The field a key describes inside a recipe, a section or a reward entry. */
static inline void *field(void *base, const AhaRecipeKey *key) { return (char *)base + key->offset; }
static inline const void *cfield(const void *base, const AhaRecipeKey *key) {
    return (const char *)base + key->offset;
}

/* The length of "optim" in "optim.lr". */
static inline size_t section_length(const char *key) { return (size_t)(strchr(key, '.') - key); }

static inline int key_applies(const AhaRecipeKey *k, AhaRewardType type) { return (k->reward_types >> type) & 1u; }

/* ---- recipe_keys.c ---- */
const AhaRecipeKey *aha_recipe_find_key(const char *dotted);
const AhaRecipeKey *aha_recipe_find_reward_key(const char *name);
int aha_recipe_is_section(const char *name);
/* The index-th '|'-separated value of values: 1 with its start and length, 0 past the end. */
int aha_recipe_enum_value(const char *values, int index, const char **start, size_t *length);
int aha_recipe_enum_index(const char *values, const char *text); /* -1 when not a value */
const char *aha_recipe_reward_type_name(int type);

/* ---- recipe_field.c ---- */
/* Records "<where>: <name>: <message>" for node; returns -1. */
int aha_recipe_fail(const RecipeCtx *c, const RNode *node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *aha_recipe_format_double(double v, char *buf, size_t size);
/* Parses node as key k's type and, only when everything is valid, stores it at dst. */
int aha_recipe_set_field(const RecipeCtx *c, const AhaRecipeKey *k, const RNode *node, void *dst);
int aha_recipe_set_default(const AhaRecipeKey *k, void *base);
int aha_recipe_check_keys(const RecipeCtx *c, const RNode *map);
void aha_recipe_free_list(AhaStringList *list);

/* ---- recipe_rewards.c ---- */
void aha_recipe_free_rewards(AhaRewardSpec *list, int n);
int aha_recipe_reward_defaults(AhaRewardSpec *e, AhaRewardType type);
int aha_recipe_check_reward_entry(const RecipeCtx *entry, const RNode *at, const AhaRewardSpec *e);
int aha_recipe_check_reward_names(const RWhere *where, const RNode *list, const AhaRewardSpec *rewards, int n);
int aha_recipe_set_rewards(AhaRecipe *r, const RWhere *where, const RNode *node);

/* ---- recipe_suggest.c: each records its message and returns -1 ---- */
int aha_recipe_reward_key_error(const RecipeCtx *entry, const RNode *at, const char *typed, AhaRewardType type);
int aha_recipe_unknown_key(const RecipeCtx *c, const RNode *at, const char *section, const char *leaf);
int aha_recipe_unknown_section(const RecipeCtx *c, const RNode *at, const char *name);
/* " (did you mean X?)" for the enum value closest to typed, or "". */
const char *aha_recipe_enum_hint(const char *values, const char *typed, char *buf, size_t size);

#endif
