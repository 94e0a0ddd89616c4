/* The math reward wraps the math answer checker (include/aha/math_answer.h): the completion's
 * final answer against the row's "answer" (a string, or a JSON number). */
#include <stdio.h>
#include <string.h>

#include "aha/math_answer.h"
#include "reward/reward_internal.h"

_Static_assert((int)AHA_REWARD_EXTRACT_AUTO == (int)AHA_MATH_EXTRACT_AUTO &&
                   (int)AHA_REWARD_EXTRACT_BOXED == (int)AHA_MATH_EXTRACT_BOXED &&
                   (int)AHA_REWARD_EXTRACT_ANSWER_TAG == (int)AHA_MATH_EXTRACT_ANSWER_TAG,
               "AhaRewardExtract mirrors AhaMathExtract");

int math_reward_score(AhaRewardExtract extract, const RewardCall *call, AhaRewardValue *value) {
    const json_t *answer = json_object_get(call->row, "answer");
    char number[64];
    const char *gold = json_string_value(answer);
    size_t gold_len = json_string_length(answer);
    if (json_is_integer(answer)) {
        snprintf(number, sizeof number, "%lld", (long long)json_integer_value(answer));
        gold = number;
        gold_len = strlen(number);
    } else if (json_is_real(answer)) {
        snprintf(number, sizeof number, "%.17g", json_real_value(answer));
        gold = number;
        gold_len = strlen(number);
    }
    if (!gold) {
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0,
                         answer ? "the row's \"answer\" is not a string or number"
                                : "the row has no \"answer\"");
        return 0;
    }
    double score = 0.0;
    char reason[AHA_REWARD_REASON_MAX];
    int rc = aha_math_score_n(call->sample->completion, reward_completion_len(call->sample), gold, gold_len,
                              (AhaMathExtract)extract, &score, reason, sizeof reason);
    if (rc < 0) return aha_error_prefix("math");
    reward_value_set(value, rc == 0 ? AHA_REWARD_SCORED : AHA_REWARD_NO_SCORE, score, "%s", reason);
    return 0;
}
