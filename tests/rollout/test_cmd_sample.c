/* aha sample, run as a user would: a tiny random model directory, token-id and text
 * prompts, JSON output, and every bad argument a clear error. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/model.h"
#include "aha/model_io.h"

static char model_dir[64], text_dir[128];

static int make_dir_model(const char *dir, int vocab) {
    AhaModelConfig cfg;
    if (aha_model_config_init(&cfg, "qwen3_moe") != 0) return -1;
    cfg.vocab_size = vocab;
    cfg.hidden_size = 16;
    cfg.num_layers = 2;
    cfg.num_heads = 2;
    cfg.num_kv_heads = 1;
    cfg.head_dim = 8;
    cfg.intermediate_size = 16;
    cfg.num_experts = 4;
    cfg.num_experts_per_tok = 2;
    cfg.moe_intermediate_size = 8;
    cfg.max_position_embeddings = 128;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (!m) return -1;
    aha_model_init_random(m, 3, 0.5f);
    int rc = aha_model_save_dir(m, dir, NULL, AHA_DTYPE_F32);
    aha_model_free(m);
    return rc;
}

static int setup(void **state) {
    (void)state;
    snprintf(model_dir, sizeof model_dir, "/tmp/aha_test_sample_XXXXXX");
    if (!mkdtemp(model_dir)) return -1;
    snprintf(text_dir, sizeof text_dir, "%s/with_tokenizer", model_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/ids", model_dir);
    if (make_dir_model(cmd, 64) != 0 || make_dir_model(text_dir, 1536) != 0) return -1;
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/tokenizer/qwen2/tokenizer.json "
                              "tests/fixtures/tokenizer/qwen2/tokenizer_config.json %s/", text_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", model_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs `aha sample ARGS`, returns the exit status; out receives stdout+stderr. */
static int run_sample(char *out, size_t cap, const char *fmt, ...) {
    const char *bin = getenv("AHA_BIN");
    if (!bin) bin = AHA_BUILD_DIR "/aha";
    char args[1024], cmd[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s sample %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_json_output_with_token_ids(void **state) {
    (void)state;
    static char out[1 << 16], again[1 << 16];
    assert_int_equal(run_sample(out, sizeof out, "--model %s/ids --prompt-ids 1,2,3 -n 3 "
                                "--max-new-tokens 6 --seed 5 --json", model_dir), 0);
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    if (!root) fail_msg("not JSON: %s\n%s", err.text, out);
    assert_int_equal(json_array_size(json_object_get(root, "prompt_ids")), 3);
    json_t *samples = json_object_get(root, "samples");
    assert_int_equal(json_array_size(samples), 3);
    for (size_t s = 0; s < 3; s++) {
        json_t *o = json_array_get(samples, s);
        assert_string_equal(json_string_value(json_object_get(o, "stop")), "length");
        assert_int_equal(json_integer_value(json_object_get(o, "n_tokens")), 6);
        json_t *lps = json_object_get(o, "logprobs");
        assert_int_equal(json_array_size(lps), 6);
        for (size_t t = 0; t < 6; t++) assert_true(json_real_value(json_array_get(lps, t)) <= 0.0);
        assert_null(json_object_get(o, "text")); /* no tokenizer */
    }
    json_decref(root);
    assert_int_equal(run_sample(again, sizeof again, "--model %s/ids --prompt-ids 1,2,3 -n 3 "
                                "--max-new-tokens 6 --seed 5 --json", model_dir), 0);
    assert_string_equal(out, again);
    /* plain output lists the ids */
    assert_int_equal(run_sample(out, sizeof out, "--model %s/ids --prompt-ids 7 --max-new-tokens 2",
                                model_dir), 0);
    assert_non_null(strstr(out, "--- sample 0: 2 tokens, stop length"));
}

static void test_text_prompt_greedy_and_stop(void **state) {
    (void)state;
    static char out[1 << 16];
    assert_int_equal(run_sample(out, sizeof out, "--model %s --prompt 'Hello world' -n 2 "
                                "--temperature 0 --max-new-tokens 5 --json", text_dir), 0);
    json_t *root = json_loads(out, 0, NULL);
    assert_non_null(root);
    json_t *samples = json_object_get(root, "samples");
    const char *a = json_string_value(json_object_get(json_array_get(samples, 0), "text"));
    const char *b = json_string_value(json_object_get(json_array_get(samples, 1), "text"));
    assert_non_null(a);
    assert_string_equal(a, b); /* greedy: every sample the same */
    json_decref(root);
    /* a one-byte stop string from sample 0's text stops it there */
    assert_int_equal(run_sample(out, sizeof out, "--model %s --prompt 'Hello world' -n 4 "
                                "--max-new-tokens 40 --seed 2 --stop e --stop a --json", text_dir), 0);
    root = json_loads(out, 0, NULL);
    assert_non_null(root);
    samples = json_object_get(root, "samples");
    for (size_t s = 0; s < json_array_size(samples); s++) {
        json_t *o = json_array_get(samples, s);
        const char *stop = json_string_value(json_object_get(o, "stop"));
        const char *text = json_string_value(json_object_get(o, "text"));
        if (strcmp(stop, "stop") == 0) assert_true(strchr(text, 'e') || strchr(text, 'a'));
        else assert_string_equal(stop, json_integer_value(json_object_get(o, "n_tokens")) == 40 ? "length" : "eos");
    }
    json_decref(root);
}

static void expect_error(int code, const char *needle, const char *args) {
    static char out[1 << 14];
    int rc = run_sample(out, sizeof out, "%s", args);
    if (rc != code || !strstr(out, needle))
        fail_msg("aha sample %s: exit %d (want %d), output:\n%s(want '%s')", args, rc, code, out, needle);
}

static void test_bad_arguments(void **state) {
    (void)state;
    char args[1024];
    expect_error(2, "--model DIR is required", "--prompt-ids 1");
    snprintf(args, sizeof args, "--model %s/ids", model_dir);
    expect_error(2, "give exactly one of --prompt and --prompt-ids", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt hi", model_dir);
    expect_error(1, "no tokenizer.json, which --prompt needs", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1,x", model_dir);
    expect_error(1, "--prompt-ids: expected comma-separated token ids, got '1,x'", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1 --temperature -1", model_dir);
    expect_error(2, "--temperature: expected a number", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1 --max-new-tokens 0", model_dir);
    expect_error(1, "max_new_tokens: expected an integer >= 1, got 0", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1 --temperature 0 --top-p 0.5", model_dir);
    expect_error(1, "temperature 0 means greedy decoding", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1,64", model_dir);
    expect_error(1, "prompt 0, token 1: id 64 is outside the vocabulary of 64", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1 -n 0", model_dir);
    expect_error(2, "-n: expected an integer", args);
    snprintf(args, sizeof args, "--model %s/missing --prompt-ids 1", model_dir);
    expect_error(1, "aha sample: error:", args);
    snprintf(args, sizeof args, "--model %s/ids --prompt-ids 1 --bogus", model_dir);
    expect_error(2, "unknown option", args);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_output_with_token_ids),
        cmocka_unit_test(test_text_prompt_greedy_and_stop),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
