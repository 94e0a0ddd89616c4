/* Plug-in rewards as shared objects (include/aha/reward_plugin.h), loaded with dlopen. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/reward_plugin.h"
#include "reward/reward_internal.h"

struct PluginReward {
    void *handle;
    char *label; /* "plugin 'name' (path)" for messages */
    AhaRewardPluginScoreFn score;
};

PluginReward *plugin_so_create(const AhaRewardConfig *config, const char *name) {
    PluginReward *pr = aha_calloc(1, sizeof *pr);
    if (!pr) return NULL;
    size_t n = strlen(name) + strlen(config->path) + 32;
    pr->label = aha_malloc(n);
    if (!pr->label) {
        free(pr);
        return NULL;
    }
    snprintf(pr->label, n, "plugin '%s' (%s)", name, config->path);
    /* dlopen searches the library path for a bare name; a plug-in is a file the user names. */
    if (!strchr(config->path, '/')) {
        aha_errorf("%s: path: expected a path to a .so file (write ./%s for one in the current "
                   "directory)", pr->label, config->path);
        plugin_so_free(pr);
        return NULL;
    }
    dlerror();
    pr->handle = dlopen(config->path, RTLD_NOW | RTLD_LOCAL);
    if (!pr->handle) {
        const char *why = dlerror();
        aha_errorf("%s: cannot load: %s", pr->label, why ? why : "dlopen failed");
        plugin_so_free(pr);
        return NULL;
    }
    AhaRewardPluginAbiVersionFn version;
    *(void **)&version = dlsym(pr->handle, "aha_reward_plugin_abi_version");
    *(void **)&pr->score = dlsym(pr->handle, "aha_reward_plugin_score");
    const char *missing = !version ? "aha_reward_plugin_abi_version"
                          : !pr->score ? "aha_reward_plugin_score" : NULL;
    if (missing) {
        aha_errorf("%s: does not export %s() (see include/aha/reward_plugin.h)", pr->label, missing);
        plugin_so_free(pr);
        return NULL;
    }
    int v = version();
    if (v != AHA_REWARD_PLUGIN_ABI_VERSION) {
        aha_errorf("%s: built for plug-in ABI version %d, this aha speaks version %d; rebuild it "
                   "against this include/aha/reward_plugin.h", pr->label, v,
                   AHA_REWARD_PLUGIN_ABI_VERSION);
        plugin_so_free(pr);
        return NULL;
    }
    return pr;
}

int plugin_so_score(PluginReward *pr, const RewardCall *call, AhaRewardValue *value) {
    char *row = json_dumps(call->row, JSON_COMPACT);
    AHA_CHECK_ALLOC(row);
    AhaPluginSample s = {.prompt = call->sample->prompt ? call->sample->prompt : "",
                         .completion = call->sample->completion,
                         .row_json = row,
                         .completion_tokens = call->sample->completion_tokens < 0
                                                  ? -1 : call->sample->completion_tokens};
    char reason[AHA_REWARD_REASON_MAX] = "";
    double score = 0.0;
    int rc = pr->score(&s, &score, reason, sizeof reason);
    free(row);
    reason[sizeof reason - 1] = '\0';
    if (rc == 0 && isfinite(score)) reward_value_set(value, AHA_REWARD_SCORED, score, "%s", reason);
    else if (rc == 0) return aha_errorf("%s: returned a score that is not finite", pr->label);
    else if (rc == 1) reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "%s", reason);
    else return aha_errorf("%s: %s", pr->label, reason[0] ? reason : "failed without a reason");
    return 0;
}

void plugin_so_free(PluginReward *pr) {
    if (!pr) return;
    if (pr->handle) dlclose(pr->handle);
    free(pr->label);
    free(pr);
}
