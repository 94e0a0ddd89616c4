/* The bridge from a recipe's rewards list to a reward set. */
#include "aha/reward_recipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "aha/error.h"

int aha_reward_config_from_spec(const AhaRewardSpec *spec, const AhaRecipe *recipe,
                                AhaRewardConfig *c) {
    aha_reward_config_default(c, spec->type);
    c->name = spec->name;
    c->weight = spec->weight;
    c->extract = (AhaRewardExtract)spec->extract;
    c->pattern = spec->pattern && spec->pattern[0] ? spec->pattern : NULL;
    c->match_search = spec->match == AHA_MATCH_SEARCH;
    c->code_mode = spec->mode;
    if (spec->timeout_s > 0) c->timeout_s = spec->timeout_s;
    if (spec->memory_mb > 0) c->memory_mb = spec->memory_mb;
    c->target_len = spec->target;
    c->penalty = spec->penalty;
    c->max_len = spec->max_len > 0 ? spec->max_len : recipe->rollout.max_new_tokens;
    c->cache_len = spec->cache_len;
    c->path = spec->path && spec->path[0] ? spec->path : NULL;
    c->command = spec->command && spec->command[0] ? spec->command : NULL;
    return 0;
}

AhaRewardSet *aha_reward_set_from_recipe(const AhaRecipe *recipe, int jobs) {
    if (recipe->n_rewards < 1) {
        aha_errorf("rewards: the recipe lists no reward");
        return NULL;
    }
    if (jobs <= 0) jobs = recipe->rollout.threads;
    if (jobs <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = cpus > 0 ? (int)cpus : 1;
    }
    AhaRewardConfig *configs = aha_calloc((size_t)recipe->n_rewards, sizeof *configs);
    if (!configs) return NULL;
    for (int i = 0; i < recipe->n_rewards; i++)
        aha_reward_config_from_spec(&recipe->rewards[i], recipe, &configs[i]);
    AhaRewardSet *set = aha_reward_set_create(configs, recipe->n_rewards, jobs);
    free(configs);
    int index; /* a bad pattern or plug-in: point at its entry in the recipe file */
    if (!set && sscanf(aha_error_message(), "rewards[%d]", &index) == 1 && index >= 0 && index < recipe->n_rewards &&
        recipe->rewards[index].line > 0)
        aha_error_prefix("%s:%d:%d", recipe->source, recipe->rewards[index].line, recipe->rewards[index].col);
    return set;
}
