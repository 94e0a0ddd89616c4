/* Finished groups and rollout options. */
#include <stdlib.h>
#include <string.h>

#include "aha/sampler.h"

void aha_rollout_options_default(AhaRolloutOptions *options) {
    memset(options, 0, sizeof *options);
    options->share_prefix = 1;
}

void aha_rollout_group_free(AhaRolloutGroup *group) {
    if (!group) return;
    for (int s = 0; s < group->n_samples && group->samples; s++) {
        free(group->samples[s].tokens);
        free(group->samples[s].logprobs);
    }
    free(group->samples);
    free(group);
}
