/* Prompt templates: R1-Zero (the default), plain, and Qwen's ChatML shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/dataset.h"
#include "aha/error.h"

/* DeepSeek-R1 paper, Table 1, with the question in place of "prompt". */
static const char r1_zero_head[] =
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>. User: ";
static const char r1_zero_tail[] = ". Assistant:";

const char *aha_template_name(AhaTemplate kind) {
    switch (kind) {
    case AHA_TEMPLATE_R1_ZERO: return "r1_zero";
    case AHA_TEMPLATE_PLAIN: return "plain";
    case AHA_TEMPLATE_QWEN_CHAT: return "qwen_chat";
    }
    return "unknown";
}

static char *join(const char *const *parts, size_t count) {
    size_t total = 1;
    for (size_t i = 0; i < count; i++) total += strlen(parts[i]);
    char *out = aha_malloc(total);
    if (!out) return NULL;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(parts[i]);
        memcpy(out + at, parts[i], n);
        at += n;
    }
    out[at] = '\0';
    return out;
}

char *aha_template_render(AhaTemplate kind, const char *question, const char *system_prompt,
                          int open_think) {
    if (!question) {
        aha_errorf("template %s: no question", aha_template_name(kind));
        return NULL;
    }
    int has_system = system_prompt && *system_prompt;
    switch (kind) {
    case AHA_TEMPLATE_R1_ZERO:
    case AHA_TEMPLATE_PLAIN:
        if (has_system) {
            aha_errorf("template %s: a system prompt is only used by qwen_chat",
                       aha_template_name(kind));
            return NULL;
        }
        if (kind == AHA_TEMPLATE_R1_ZERO) {
            const char *parts[] = {r1_zero_head, question, r1_zero_tail, open_think ? " <think>" : ""};
            return join(parts, 4);
        } else {
            const char *parts[] = {question, open_think ? "\n<think>" : ""};
            return join(parts, 2);
        }
    case AHA_TEMPLATE_QWEN_CHAT: {
        const char *parts[] = {
            has_system ? "<|im_start|>system\n" : "", has_system ? system_prompt : "",
            has_system ? "<|im_end|>\n" : "",
            "<|im_start|>user\n", question, "<|im_end|>\n<|im_start|>assistant\n",
            open_think ? "<think>\n" : ""};
        return join(parts, 7);
    }
    }
    aha_errorf("unknown template kind %d", (int)kind);
    return NULL;
}
