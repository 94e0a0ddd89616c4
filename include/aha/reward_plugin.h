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
 * aha loads the plug-in in the trainer (checking the ABI) and calls it in forked helper
 * processes, one per reward worker, started on first use and kept across calls: a crash or
 * a hang (past the reward's timeout_s) in the plug-in costs that sample its score, and the
 * helper is started afresh. So the plug-in must not rely on threads it started when loaded
 * (a fork keeps only the calling thread), and whatever state it keeps between calls lives in
 * one helper. Being a fork of the trainer, it is not a sandbox: untrusted code belongs in
 * the code reward's sandbox (docs/rewards.md). examples/reward_plugins/repetition.c is a complete example. */
#ifndef AHA_REWARD_PLUGIN_H
#define AHA_REWARD_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHA_REWARD_PLUGIN_ABI_VERSION 1

typedef struct {
    const char *prompt;     /* the prompt text; "" when unknown */
    const char *completion; /* the completion text */
    const char *row_json;   /* the data-set row, all fields, as compact JSON object text */
    int completion_tokens;  /* the completion's token count; -1 when unknown */
    /* The texts' lengths in bytes: a text may hold NULs (JSON's \u0000), so read it by its
     * length. Added at the end, so plug-ins built against the older header still work. */
    size_t prompt_len;
    size_t completion_len;
} AhaPluginSample;

typedef int (*AhaRewardPluginAbiVersionFn)(void);
typedef int (*AhaRewardPluginScoreFn)(const AhaPluginSample *sample, double *score,
                                      char *reason, size_t reason_cap);

int aha_reward_plugin_abi_version(void);
int aha_reward_plugin_score(const AhaPluginSample *sample, double *score, char *reason,
                            size_t reason_cap);

#ifdef __cplusplus
}
#endif

#endif
