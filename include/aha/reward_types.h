/* The kinds of reward a recipe can name, and their options: the vocabulary shared by the
 * recipe (core/, aha/recipe.h) and the reward set (reward/, aha/reward.h), kept apart so that
 * core does not depend on the reward module. The recipe's YAML names follow these orders. */
#ifndef AHA_REWARD_TYPES_H
#define AHA_REWARD_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AHA_REWARD_MATH,     /* final answer equals the row's "answer" */
    AHA_REWARD_FORMAT,   /* the completion matches a PCRE2 pattern */
    AHA_REWARD_CODE,     /* the completion's program (Python, C, C++) passes the row's tests */
    AHA_REWARD_LENGTH,   /* -penalty per completion token beyond target_len */
    AHA_REWARD_OVERLONG, /* DAPO's soft overlong penalty (max_len, cache_len) */
    AHA_REWARD_PLUGIN,   /* a C shared object (path) or a JSON-lines program (command) */
    AHA_REWARD_COUNTDOWN, /* the <answer> equation uses the row's "nums" once each, = "target" */
} AhaRewardType;

/* Where the math reward looks for the final answer (same order as AhaMathExtract). */
typedef enum {
    AHA_REWARD_EXTRACT_AUTO,       /* the last \boxed{} / \fbox{}, else <answer>...</answer> */
    AHA_REWARD_EXTRACT_BOXED,      /* only \boxed{} / \fbox{} */
    AHA_REWARD_EXTRACT_ANSWER_TAG, /* only <answer>...</answer> */
} AhaRewardExtract;

typedef enum { AHA_CODE_FRACTION, AHA_CODE_ALL } AhaCodeMode;

#ifdef __cplusplus
}
#endif

#endif
