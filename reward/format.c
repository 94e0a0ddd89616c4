/* The format reward: 1 when the completion matches a PCRE2 pattern, else 0. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "reward/reward_internal.h"

/* Bounds on one match so a pathological pattern fails that sample instead of spinning. */
#define FORMAT_MATCH_LIMIT 20000000u
#define FORMAT_DEPTH_LIMIT 100000u
#define FORMAT_HEAP_LIMIT_KIB 65536u

struct FormatReward {
    pcre2_code *code;
    pcre2_match_context *match_context; /* read-only once built: shared by every worker */
    int search;
};

FormatReward *format_reward_create(const AhaRewardConfig *config) {
    const char *pattern = config->pattern ? config->pattern : AHA_REWARD_R1_FORMAT;
    FormatReward *fr = aha_calloc(1, sizeof *fr);
    if (!fr) return NULL;
    int errcode;
    PCRE2_SIZE erroffset;
    /* Anchoring is compiled in: the JIT ignores match-time ANCHORED/ENDANCHORED. */
    uint32_t anchoring = config->match_search ? 0 : PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    fr->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_DOTALL | PCRE2_MATCH_INVALID_UTF | anchoring, &errcode, &erroffset, NULL);
    if (!fr->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        aha_errorf("pattern: %s at offset %zu in '%s'", (const char *)msg, (size_t)erroffset, pattern);
        free(fr);
        return NULL;
    }
    fr->match_context = pcre2_match_context_create(NULL);
    if (!fr->match_context) {
        format_reward_free(fr);
        aha_errorf("pattern: out of memory creating a PCRE2 match context");
        return NULL;
    }
    /* JIT when the platform has it (several times faster); the interpreter otherwise. */
    pcre2_jit_compile(fr->code, PCRE2_JIT_COMPLETE);
    pcre2_set_match_limit(fr->match_context, FORMAT_MATCH_LIMIT);
    pcre2_set_depth_limit(fr->match_context, FORMAT_DEPTH_LIMIT);
    pcre2_set_heap_limit(fr->match_context, FORMAT_HEAP_LIMIT_KIB);
    fr->search = config->match_search;
    return fr;
}

int format_reward_score(FormatReward *fr, const RewardCall *call, AhaRewardValue *value) {
    const char *text = call->sample->completion;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(fr->code, NULL);
    AHA_CHECK_ALLOC(md);
    size_t len = reward_completion_len(call->sample);
    int rc = pcre2_match(fr->code, (PCRE2_SPTR)text, len, 0, 0, md,
                         fr->match_context);
    /* The JIT's default 32 KiB stack can run out on deep patterns: the interpreter then. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(fr->code, (PCRE2_SPTR)text, len, 0, PCRE2_NO_JIT, md,
                         fr->match_context);
    /* With invalid UTF-8 PCRE2 anchors to valid segments: insist on the whole subject. */
    if (rc >= 0 && !fr->search) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] != 0 || ov[1] != len) rc = PCRE2_ERROR_NOMATCH;
    }
    pcre2_match_data_free(md);
    if (rc >= 0) {
        reward_value_set(value, AHA_REWARD_SCORED, 1.0, fr->search ? "pattern found" : "matches the format");
    } else if (rc == PCRE2_ERROR_NOMATCH) {
        reward_value_set(value, AHA_REWARD_SCORED, 0.0,
                         fr->search ? "pattern not found" : "does not match the format");
    } else {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return aha_errorf("format match failed: %s", (const char *)msg);
    }
    return 0;
}

void format_reward_free(FormatReward *fr) {
    if (!fr) return;
    pcre2_match_context_free(fr->match_context);
    pcre2_code_free(fr->code);
    free(fr);
}
