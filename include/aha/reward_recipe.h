/* Builds a reward set from a recipe's `rewards:` list (include/aha/recipe.h): the reward
 * module's side of the recipe, so that core (recipe.h) never includes reward.h. */
#ifndef AHA_REWARD_RECIPE_H
#define AHA_REWARD_RECIPE_H

#include "aha/recipe.h"
#include "aha/reward.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One AhaRewardConfig per AhaRewardSpec: overlong max_len 0 becomes
 * rollout.max_new_tokens. The configs borrow the spec's strings. */
int aha_reward_config_from_spec(const AhaRewardSpec *spec, const AhaRecipe *recipe,
                                AhaRewardConfig *config);
/* The recipe's reward set with `jobs` parallel workers (0 = rollout.threads, or the number of
 * online CPUs when that is 0 too). Errors name the entry: "rewards[1] (fmt): pattern: ...". */
AhaRewardSet *aha_reward_set_from_recipe(const AhaRecipe *recipe, int jobs);

#ifdef __cplusplus
}
#endif

#endif
