/* Prompt templates: the exact R1-Zero text, plain, Qwen ChatML, open <think>. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/dataset.h"
#include "aha/error.h"
#include "aha/tokenizer.h"

static void expect(AhaTemplate kind, const char *question, const char *system, int think, const char *want) {
    char *got = aha_template_render(kind, question, system, think);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_r1_zero_is_the_paper_text(void **state) {
    (void)state;
    const char *head =
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
        "The assistant first thinks about the reasoning process in the mind and then provides the user with "
        "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
        "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
        "</answer>. User: ";
    char want[1024];
    snprintf(want, sizeof want, "%sWhat is 6*7?. Assistant:", head);
    expect(AHA_TEMPLATE_R1_ZERO, "What is 6*7?", NULL, 0, want);
    snprintf(want, sizeof want, "%sWhat is 6*7?. Assistant: <think>", head);
    expect(AHA_TEMPLATE_R1_ZERO, "What is 6*7?", "", 1, want);
}

static void test_plain_and_qwen_chat(void **state) {
    (void)state;
    expect(AHA_TEMPLATE_PLAIN, "2+2=", NULL, 0, "2+2=");
    expect(AHA_TEMPLATE_PLAIN, "2+2=", NULL, 1, "2+2=\n<think>");
    expect(AHA_TEMPLATE_QWEN_CHAT, "Hi?", NULL, 0,
           "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n");
    expect(AHA_TEMPLATE_QWEN_CHAT, "Hi?", "Be brief.", 1,
           "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
           "<|im_start|>assistant\n<think>\n");
    assert_string_equal(aha_template_name(AHA_TEMPLATE_QWEN_CHAT), "qwen_chat");
}

static void test_bad_arguments(void **state) {
    (void)state;
    assert_null(aha_template_render(AHA_TEMPLATE_R1_ZERO, "q", "system text", 0));
    assert_string_equal(aha_error_message(), "template r1_zero: a system prompt is only used by qwen_chat");
    assert_null(aha_template_render(AHA_TEMPLATE_PLAIN, NULL, NULL, 0));
    assert_string_equal(aha_error_message(), "template plain: no question");
}

static void test_chat_markers_tokenize_as_special_tokens(void **state) {
    (void)state;
    AhaTokenizer *tok = aha_tokenizer_load("tests/fixtures/tokenizer/qwen2");
    assert_non_null(tok);
    char *prompt = aha_template_render(AHA_TEMPLATE_QWEN_CHAT, "Hi?", NULL, 1);
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, prompt, strlen(prompt), AHA_TOKENIZE_PARSE_SPECIAL, &ids), 0);
    int32_t start = aha_tokenizer_token_id(tok, "<|im_start|>"), end = aha_tokenizer_token_id(tok, "<|im_end|>");
    assert_int_equal(ids.ids[0], start);
    int starts = 0, ends = 0;
    for (size_t i = 0; i < ids.count; i++) {
        starts += ids.ids[i] == start;
        ends += ids.ids[i] == end;
    }
    assert_int_equal(starts, 2);
    assert_int_equal(ends, 1);
    assert_int_equal(ids.ids[ids.count - 2], aha_tokenizer_token_id(tok, "<think>"));
    char *back = aha_tokenizer_decode(tok, ids.ids, ids.count, 0, NULL);
    assert_string_equal(back, prompt);
    free(back);
    free(prompt);
    aha_token_ids_free(&ids);
    aha_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_r1_zero_is_the_paper_text),
        cmocka_unit_test(test_plain_and_qwen_chat),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_chat_markers_tokenize_as_special_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
