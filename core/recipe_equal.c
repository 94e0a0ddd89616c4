/* Two recipes are equal when every key of the table and every reward entry is. */
#include "core/recipe_internal.h"

#include <string.h>


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
