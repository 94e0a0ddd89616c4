/* Shared between the reward set (reward.c) and the rewards it dispatches to. */
#ifndef AHA_REWARD_INTERNAL_H
#define AHA_REWARD_INTERNAL_H

#include <jansson.h>
#include <string.h>

#include "aha/error.h"
#include "aha/reward.h"

/* What one reward call sees: the sample and its row, parsed once per sample. */
typedef struct {
    const AhaRewardSample *sample;
    const json_t *row;  /* a JSON object (possibly empty), never NULL */
    int sample_index;
    int worker;         /* 0 .. jobs-1: which per-worker resources (plug-in processes) to use */
} RewardCall;

/* Fills a value; the reason is printf-formatted and truncated to fit. */
void reward_value_set(AhaRewardValue *value, AhaRewardStatus status, double score,
                      const char *fmt, ...) AHA_PRINTF(4, 5);

/* Each built-in keeps its compiled state behind an opaque pointer. A score function returns
 * 0 after filling *value (any status), or -1 with an error recorded (the set turns it into a
 * FAILED component). */
typedef struct FormatReward FormatReward;
FormatReward *format_reward_create(const AhaRewardConfig *config);
int format_reward_score(FormatReward *fr, const RewardCall *call, AhaRewardValue *value);
void format_reward_free(FormatReward *fr);

typedef struct CodeReward CodeReward;
CodeReward *code_reward_create(const AhaRewardConfig *config);
int code_reward_score(CodeReward *cr, const RewardCall *call, AhaRewardValue *value);
void code_reward_free(CodeReward *cr);

int math_reward_score(AhaRewardExtract extract, const RewardCall *call, AhaRewardValue *value);
int countdown_reward_score(const RewardCall *call, AhaRewardValue *value);

typedef struct PluginReward PluginReward; /* a shared object (reward/plugin.c), run in forked hosts */
PluginReward *plugin_so_create(const AhaRewardConfig *config, const char *name, int jobs);
int plugin_so_score(PluginReward *pr, const RewardCall *call, AhaRewardValue *value);
void plugin_so_free(PluginReward *pr);

typedef struct ExecReward ExecReward; /* a JSON-lines program (reward/plugin_exec.c) */
ExecReward *plugin_exec_create(const AhaRewardConfig *config, const char *name, int jobs);
int plugin_exec_score(ExecReward *er, const RewardCall *call, AhaRewardValue *value);
void plugin_exec_free(ExecReward *er);
/* One reply line of a JSON-lines plug-in into *value; errors start with label. */
int plugin_exec_parse_reply(const char *label, const char *reply, AhaRewardValue *value);
/* The same protocol served by host(arg, socket) in a forked child of the trainer instead of
 * a program: how C plug-ins run, so that their crashes and hangs stay out of the run. */
typedef int (*PluginHostFn)(void *arg, int socket_fd);
ExecReward *plugin_exec_create_host(const char *label, PluginHostFn host, void *arg,
                                    double timeout_s, int jobs);

/* The JSON request both plug-in kinds receive: {"prompt", "completion", "row",
 * "completion_tokens"}. Returns a malloc'ed compact one-line string, or NULL. */
char *reward_request_json(const RewardCall *call);

/* The sample's texts' lengths (a length of 0 means strlen). */
static inline size_t reward_completion_len(const AhaRewardSample *s) {
    return s->completion_len ? s->completion_len : strlen(s->completion);
}
static inline size_t reward_prompt_len(const AhaRewardSample *s) {
    return !s->prompt ? 0 : s->prompt_len ? s->prompt_len : strlen(s->prompt);
}

/* Monotonic seconds. */
double reward_now(void);

#endif
