/* The countdown reward: 1 when the last <answer> block is an equation that uses each of the
 * row's "nums" exactly once and equals its "target" (exact rational arithmetic,
 * aha_countdown_check in reward/countdown_check.c), else 0. Well-formedness is the format
 * reward's job, so a wrong but tidy answer earns nothing here. */
#include <string.h>

#include "aha/reward.h"
#include "reward/math_internal.h"
#include "reward/reward_internal.h"

#define COUNTDOWN_MAX_NUMS 16 /* what aha_countdown_check accepts */
#define COUNTDOWN_MAX_EQUATION 256 /* far beyond 16 numbers with operators and parentheses */

/* The row's numbers and target; 0 when usable, else a reason for "no score" in why. */
static int read_row(const json_t *row, int *nums, int *n, long long *target, const char **why) {
    const json_t *jnums = json_object_get(row, "nums"), *jtarget = json_object_get(row, "target");
    if (!jnums || !jtarget) {
        *why = "the row has no \"nums\" and \"target\"";
        return -1;
    }
    if (!json_is_array(jnums) || json_array_size(jnums) < 1 || json_array_size(jnums) > COUNTDOWN_MAX_NUMS) {
        *why = "the row's \"nums\" is not an array of 1 to 16 numbers";
        return -1;
    }
    if (!json_is_integer(jtarget)) {
        *why = "the row's \"target\" is not an integer";
        return -1;
    }
    *n = (int)json_array_size(jnums);
    for (int i = 0; i < *n; i++) {
        const json_t *v = json_array_get(jnums, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000) {
            *why = "the row's \"nums\" holds something other than a positive integer";
            return -1;
        }
        nums[i] = (int)json_integer_value(v);
    }
    *target = (long long)json_integer_value(jtarget);
    return 0;
}

int countdown_reward_score(const RewardCall *call, AhaRewardValue *value) {
    int nums[COUNTDOWN_MAX_NUMS], n = 0;
    long long target = 0;
    const char *why = NULL;
    if (read_row(call->row, nums, &n, &target, &why) != 0) {
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "%s", why);
        return 0;
    }
    const char *begin, *end;
    if (!math_extract_range(call->sample->completion, reward_completion_len(call->sample), AHA_MATH_EXTRACT_ANSWER_TAG,
                            &begin, &end)) {
        reward_value_set(value, AHA_REWARD_SCORED, 0, "no <answer> found");
        return 0;
    }
    /* NUL and other control bytes are white space here: they neither end nor hide the equation */
    while (begin < end && ((unsigned char)*begin <= ' ' || *begin == 0x7f)) begin++;
    while (end > begin && ((unsigned char)end[-1] <= ' ' || end[-1] == 0x7f)) end--;
    if (end - begin >= COUNTDOWN_MAX_EQUATION) {
        reward_value_set(value, AHA_REWARD_SCORED, 0, "the answer is longer than %d bytes",
                         COUNTDOWN_MAX_EQUATION - 1);
        return 0;
    }
    char equation[COUNTDOWN_MAX_EQUATION];
    for (ptrdiff_t i = 0; i < end - begin; i++)
        equation[i] = (unsigned char)begin[i] < ' ' || begin[i] == 0x7f ? ' ' : begin[i];
    equation[end - begin] = '\0';
    aha_error_clear();
    if (aha_countdown_check(equation, nums, n, target) == 1)
        reward_value_set(value, AHA_REWARD_SCORED, 1, "reaches %lld: %s", target, equation);
    else
        reward_value_set(value, AHA_REWARD_SCORED, 0, "%s", aha_error_message());
    aha_error_clear();
    return 0;
}
