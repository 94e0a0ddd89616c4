/* The C ABI of a reward plug-in: a shared object that aha loads with dlopen (a recipe's
 * `rewards: - {type: plugin, path: ./my_reward.so}`).
 *
 * A plug-in exports two functions with C linkage:
 *
 *   int aha_reward_plugin_abi_version(void);
 *       returns AHA_REWARD_PLUGIN_ABI_VERSION as the plug-in was compiled; aha refuses to load
 *       a plug-in built against another version.
 *
 *   int aha_reward_plugin_score(const AhaPluginSample *sample, double *score,
 *                               char *reason, size_t reason_cap);
 *       returns 0 with *score set, 1 for "no score" (the sample cannot be judged), or -1 for
 *       an error; in every case it may write a short NUL-terminated reason (at most
 *       reason_cap bytes, including the NUL).
 *
 * aha calls aha_reward_plugin_score from several threads at once: it must be thread-safe.
 * It runs inside the trainer's process, so a crash in it is a crash of the run: a reward
 * that runs untrusted code or may hang belongs in a JSON-lines program plug-in instead
 * (docs/rewards.md). examples/reward_plugins/repetition.c is a complete example. */
#ifndef AHA_REWARD_PLUGIN_H
#define AHA_REWARD_PLUGIN_H

#include <stddef.h>

#define AHA_REWARD_PLUGIN_ABI_VERSION 1

typedef struct {
    const char *prompt;     /* the prompt text; "" when unknown */
    const char *completion; /* the completion text */
    const char *row_json;   /* the data-set row, all fields, as compact JSON object text */
    int completion_tokens;  /* the completion's token count; -1 when unknown */
} AhaPluginSample;

typedef int (*AhaRewardPluginAbiVersionFn)(void);
typedef int (*AhaRewardPluginScoreFn)(const AhaPluginSample *sample, double *score,
                                      char *reason, size_t reason_cap);

int aha_reward_plugin_abi_version(void);
int aha_reward_plugin_score(const AhaPluginSample *sample, double *score, char *reason,
                            size_t reason_cap);

#endif
