/* config.json: Hugging Face files of each supported type load into the neutral fields, a
 * saved config reads back identical, and every unsupported or malformed value is a clear
 * error naming the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/model.h"
#include "policy/test_model_util.h"

static char path[256];

static int setup(void **state) {
    (void)state;
    snprintf(path, sizeof path, "%s/test_config_XXXXXX", AHA_BUILD_DIR);
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(path);
    return 0;
}

static void write_file(const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The shape of Qwen3-30B-A3B's config.json (hub spelling), sizes shrunk. */
static const char *qwen3_hub =
    "{\"architectures\": [\"Qwen3MoeForCausalLM\"], \"attention_bias\": false,"
    " \"attention_dropout\": 0.0, \"bos_token_id\": 151643, \"decoder_sparse_step\": 1,"
    " \"eos_token_id\": 151645, \"head_dim\": 128, \"hidden_act\": \"silu\","
    " \"hidden_size\": 2048, \"initializer_range\": 0.02, \"intermediate_size\": 6144,"
    " \"max_position_embeddings\": 40960, \"max_window_layers\": 48, \"mlp_only_layers\": [],"
    " \"model_type\": \"qwen3_moe\", \"moe_intermediate_size\": 768, \"norm_topk_prob\": true,"
    " \"num_attention_heads\": 32, \"num_experts\": 128, \"num_experts_per_tok\": 8,"
    " \"num_hidden_layers\": 48, \"num_key_value_heads\": 4, \"output_router_logits\": false,"
    " \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": 1000000.0,"
    " \"router_aux_loss_coef\": 0.001, \"sliding_window\": null, \"tie_word_embeddings\": false,"
    " \"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"use_sliding_window\": false,"
    " \"vocab_size\": 151936}";

static void test_qwen3_hub_config(void **state) {
    (void)state;
    write_file(qwen3_hub);
    AhaModelConfig c;
    assert_int_equal(aha_model_config_load(&c, path), 0);
    assert_string_equal(c.model_type, "qwen3_moe");
    assert_int_equal(c.hidden_size, 2048);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.num_layers, 48);
    assert_int_equal(c.num_kv_heads, 4);
    assert_int_equal(c.num_experts, 128);
    assert_int_equal(c.num_experts_per_tok, 8);
    assert_int_equal(c.moe_intermediate_size, 768);
    assert_int_equal(c.intermediate_size, 6144);
    assert_true(c.norm_topk_prob);
    assert_int_equal(c.qk_norm, AHA_QK_NORM_PER_HEAD);
    assert_false(c.qkv_bias);
    assert_int_equal(c.shared_expert_intermediate_size, 0);
    assert_float_equal(c.rope_theta, 1e6, 1e-3);
    assert_float_equal(c.rms_norm_eps, 1e-6, 1e-12);
    assert_int_equal(c.bos_token_id, 151643);
    assert_int_equal(c.num_eos, 1);
    assert_int_equal(c.eos_token_ids[0], 151645);
    for (int l = 0; l < 48; l++) assert_true(aha_model_layer_is_moe(&c, l));
    /* 30.5B total, 3.3B active, as published */
    assert_true(aha_model_config_num_params(&c) > 30000000000ull &&
                aha_model_config_num_params(&c) < 31000000000ull);
    assert_true(aha_model_config_active_params(&c) > 3000000000ull &&
                aha_model_config_active_params(&c) < 3500000000ull);
}

/* What transformers 5 writes: num_local_experts, rope_parameters, eos as a list. */
static void test_transformers_v5_spelling(void **state) {
    (void)state;
    write_file("{\"model_type\": \"qwen2_moe\", \"vocab_size\": 100, \"hidden_size\": 32,"
               " \"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
               " \"intermediate_size\": 64, \"moe_intermediate_size\": 16,"
               " \"shared_expert_intermediate_size\": 48, \"num_experts\": 6,"
               " \"num_experts_per_tok\": 2, \"decoder_sparse_step\": 2, \"mlp_only_layers\": [3],"
               " \"qkv_bias\": true, \"eos_token_id\": [7, 9], \"sliding_window\": 0,"
               " \"use_sliding_window\": false, \"layer_types\": [\"full_attention\"],"
               " \"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}}");
    AhaModelConfig c;
    assert_int_equal(aha_model_config_load(&c, path), 0);
    assert_int_equal(c.head_dim, 8);
    assert_true(c.qkv_bias);
    assert_int_equal(c.shared_expert_intermediate_size, 48);
    assert_float_equal(c.rope_theta, 5e5, 1e-3);
    assert_int_equal(c.num_eos, 2);
    assert_int_equal(c.eos_token_ids[1], 9);
    /* layer i is MoE iff (i+1) % 2 == 0 and i not in [3] */
    assert_false(aha_model_layer_is_moe(&c, 0));
    assert_true(aha_model_layer_is_moe(&c, 1));
    assert_false(aha_model_layer_is_moe(&c, 2));
    assert_false(aha_model_layer_is_moe(&c, 3));
}

static void test_olmoe_and_mixtral(void **state) {
    (void)state;
    write_file("{\"model_type\": \"olmoe\", \"vocab_size\": 50304, \"hidden_size\": 2048,"
               " \"num_hidden_layers\": 16, \"num_attention_heads\": 16,"
               " \"num_key_value_heads\": 16, \"intermediate_size\": 1024, \"num_experts\": 64,"
               " \"num_experts_per_tok\": 8, \"norm_topk_prob\": false, \"clip_qkv\": null,"
               " \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"eos_token_id\": 50279,"
               " \"pad_token_id\": 1, \"router_aux_loss_coef\": 0.01}");
    AhaModelConfig c;
    assert_int_equal(aha_model_config_load(&c, path), 0);
    assert_int_equal(c.qk_norm, AHA_QK_NORM_FULL);
    assert_int_equal(c.moe_intermediate_size, 1024);
    assert_false(c.norm_topk_prob);
    assert_int_equal(c.pad_token_id, 1);
    assert_float_equal(c.router_aux_loss_coef, 0.01, 1e-9);
    write_file("{\"model_type\": \"mixtral\", \"vocab_size\": 32000, \"hidden_size\": 4096,"
               " \"num_hidden_layers\": 32, \"num_attention_heads\": 32,"
               " \"num_key_value_heads\": 8, \"intermediate_size\": 14336,"
               " \"num_local_experts\": 8, \"num_experts_per_tok\": 2, \"sliding_window\": null,"
               " \"rope_theta\": 1000000.0, \"router_jitter_noise\": 0.0}");
    assert_int_equal(aha_model_config_load(&c, path), 0);
    assert_int_equal(c.qk_norm, AHA_QK_NORM_NONE);
    assert_true(c.norm_topk_prob);
    assert_int_equal(c.num_experts, 8);
    assert_int_equal(c.moe_intermediate_size, 14336);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    for (int which = 0; which < TINY_COUNT; which++) {
        AhaModelConfig c, back;
        tiny_config(&c, which);
        c.num_eos = 2;
        c.eos_token_ids[0] = 3;
        c.eos_token_ids[1] = 4;
        c.bos_token_id = 2;
        c.rms_norm_eps = 1e-6f;
        assert_int_equal(aha_model_config_save(&c, path), 0);
        assert_int_equal(aha_model_config_load(&back, path), 0);
        if (memcmp(&c, &back, sizeof c) != 0) fail_msg("%s: config changed on round trip", tiny_name(which));
    }
    /* a config its model type cannot express is refused, not silently changed */
    AhaModelConfig c;
    tiny_config(&c, TINY_QWEN3);
    c.shared_expert_intermediate_size = 8;
    assert_int_equal(aha_model_config_save(&c, path), -1);
    assert_non_null(strstr(aha_error_message(), "shared_expert_intermediate_size"));
}

static void expect_error(const char *json, const char *needle) {
    write_file(json);
    AhaModelConfig c;
    assert_int_equal(aha_model_config_load(&c, path), -1);
    const char *msg = aha_error_message();
    if (strstr(msg, needle) == NULL || strstr(msg, path) == NULL)
        fail_msg("expected an error naming '%s' and the file, got: %s", needle, msg);
}

#define BASE "\"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1," \
             " \"num_attention_heads\": 2, \"moe_intermediate_size\": 4, \"num_experts\": 2," \
             " \"num_experts_per_tok\": 1"

static void test_errors_name_the_key(void **state) {
    (void)state;
    expect_error("{\"model_type\": \"llama\", " BASE "}", "model_type 'llama' is not supported");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"rope_scaling\": {\"type\": \"yarn\"}}",
                 "rope_scaling");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE
                 ", \"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}",
                 "rope_parameters.rope_type");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"use_sliding_window\": true}",
                 "use_sliding_window");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"hidden_act\": \"gelu\"}", "hidden_act");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"attention_bias\": true}",
                 "attention_bias");
    expect_error("{\"model_type\": \"olmoe\", " BASE ", \"intermediate_size\": 4, \"clip_qkv\": 8.0}",
                 "clip_qkv");
    expect_error("{\"model_type\": \"mixtral\", \"vocab_size\": 10, \"hidden_size\": 8,"
                 " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 4,"
                 " \"num_local_experts\": 2, \"num_experts_per_tok\": 1, \"sliding_window\": 4096}",
                 "sliding_window");
    expect_error("{\"model_type\": \"qwen3_moe\", \"vocab_size\": 10, \"num_hidden_layers\": 1,"
                 " \"num_attention_heads\": 2, \"moe_intermediate_size\": 4, \"num_experts\": 2,"
                 " \"num_experts_per_tok\": 1}",
                 "hidden_size: missing");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"head_dim\": \"64\"}",
                 "head_dim: expected an integer");
    expect_error("{\"model_type\": \"qwen3_moe\", \"vocab_size\": 10, \"hidden_size\": 8,"
                 " \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
                 " \"moe_intermediate_size\": 4, \"num_experts\": 2, \"num_experts_per_tok\": 3}",
                 "num_experts_per_tok");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"num_key_value_heads\": 3}",
                 "num_key_value_heads");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"mlp_only_layers\": [5]}",
                 "mlp_only_layers[0]: layer 5 does not exist");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"mlp_only_layers\": [0]}",
                 "intermediate_size: expected a positive integer");
    expect_error("{\"model_type\": \"qwen3_moe\", " BASE ", \"norm_topk_prob\": 1}",
                 "norm_topk_prob: expected true or false");
    expect_error("{\"model_type\": \"qwen3_moe\",\n \"hidden_size\": 8,,}", ":2:");
    expect_error("[1, 2]", "expected a JSON object");
    AhaModelConfig c;
    assert_int_equal(aha_model_config_load(&c, "/nonexistent/config.json"), -1);
    assert_non_null(strstr(aha_error_message(), "/nonexistent/config.json"));
}

/* Every size read from the file is bounded: a hostile config.json is an error naming the
 * key, never a crash (the sizes once made stack arrays in the MoE block). */
static void test_hostile_sizes_are_refused(void **state) {
    (void)state;
    static const struct { const char *key, *value, *message; } cases[] = {
        {"num_experts", "1000000000", "num_experts: 1000000000 exceeds the limit of 1024"},
        {"hidden_size", "999999999", "hidden_size: 999999999 exceeds the limit of 1048576"},
        {"vocab_size", "1000000000", "vocab_size: 1000000000 exceeds the limit of 4194304"},
        {"num_attention_heads", "65536", "num_attention_heads: 65536 exceeds the limit of 1024"},
        {"head_dim", "100000", "head_dim: 100000 exceeds the limit of 4096"},
        {"moe_intermediate_size", "999999999", "moe_intermediate_size: 999999999 exceeds the limit of 1048576"},
        /* 0 once meant "no limit" to the sampler */
        {"max_position_embeddings", "0",
         "max_position_embeddings: expected a positive integer (the context length), got 0"},
        {"max_position_embeddings", "-1", "max_position_embeddings: expected a positive integer"},
    };
    static const char *const base[][2] = {{"vocab_size", "10"}, {"hidden_size", "8"}, {"num_hidden_layers", "1"},
                                          {"num_attention_heads", "2"}, {"num_key_value_heads", "1"}, {"head_dim", "4"},
                                          {"moe_intermediate_size", "4"}, {"num_experts", "2"},
                                          {"num_experts_per_tok", "1"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[1024];
        int n = snprintf(json, sizeof json, "{\"model_type\": \"qwen3_moe\", \"%s\": %s", cases[i].key,
                         cases[i].value);
        for (size_t b = 0; b < sizeof base / sizeof base[0]; b++)
            if (strcmp(base[b][0], cases[i].key) != 0)
                n += snprintf(json + n, sizeof json - (size_t)n, ", \"%s\": %s", base[b][0], base[b][1]);
        snprintf(json + n, sizeof json - (size_t)n, "}");
        expect_error(json, cases[i].message);
    }
    expect_error("{\"model_type\": \"qwen3_moe\", \"vocab_size\": 4000000, \"hidden_size\": 1000000,"
                 " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"head_dim\": 64, \"moe_intermediate_size\": 4,"
                 " \"num_experts\": 2, \"num_experts_per_tok\": 1}",
                 "the sizes make about 8e+12 parameters, more than the limit of 2.75e+11");
}

/* A file that cannot be opened is not reported at line -1, a directory not as bad JSON. */
static void test_open_errors(void **state) {
    (void)state;
    AhaModelConfig c;
    assert_int_equal(aha_model_config_load(&c, "/nonexistent/config.json"), -1);
    const char *msg = aha_error_message();
    if (strcmp(msg, "/nonexistent/config.json: cannot open: No such file or directory") != 0)
        fail_msg("got: %s", msg);
    assert_int_equal(aha_model_config_load(&c, AHA_BUILD_DIR), -1);
    msg = aha_error_message();
    if (strcmp(msg, AHA_BUILD_DIR ": is a directory, expected a config.json file") != 0) fail_msg("got: %s", msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3_hub_config),
        cmocka_unit_test(test_transformers_v5_spelling),
        cmocka_unit_test(test_olmoe_and_mixtral),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_hostile_sizes_are_refused),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
