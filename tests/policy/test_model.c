/* The policy's forward: tensor table, packing, reference kernels, decoding building blocks,
 * log-probs and entropy, expert statistics, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/model.h"
#include "policy/test_model_util.h"

static AhaModel *tiny_model(int which, uint64_t seed) {
    AhaModelConfig c;
    tiny_config(&c, which);
    AhaModel *m = aha_model_create(&c, NULL);
    assert_non_null(m);
    tiny_init(m, seed);
    return m;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float d = 0.0f;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void test_tensor_table(void **state) {
    (void)state;
    AhaModel *m = tiny_model(TINY_QWEN2, 1);
    const AhaModelConfig *c = &m->cfg;
    assert_int_equal(m->params.count, aha_model_config_num_params(c));
    size_t offset = 0;
    for (int i = 0; i < aha_model_num_tensors(m); i++) {
        const AhaTensor *t = aha_model_tensor(m, i);
        assert_int_equal(t->offset, offset); /* arena order, no gaps */
        offset += t->numel;
    }
    assert_int_equal(offset, m->params.count);
    const AhaTensor *t = aha_model_find_tensor(m, "model.layers.2.mlp.experts.3.down_proj.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], c->hidden_size);
    assert_int_equal(t->shape[1], c->moe_intermediate_size);
    assert_ptr_equal(t->data, m->params.layers[2].expert_down +
                                  3 * (size_t)c->hidden_size * c->moe_intermediate_size);
    t = aha_model_find_tensor(m, "model.layers.0.self_attn.q_proj.bias");
    assert_non_null(t);
    assert_ptr_equal(t->data, m->params.layers[0].q_bias);
    assert_non_null(aha_model_find_tensor(m, "model.layers.1.mlp.shared_expert_gate.weight"));
    assert_null(aha_model_find_tensor(m, "model.layers.1.mlp.experts.4.up_proj.weight"));
    assert_null(aha_model_tensor(m, aha_model_num_tensors(m)));
    aha_model_free(m);

    m = tiny_model(TINY_QWEN3, 1); /* layer 1 is dense: mlp_only_layers */
    assert_non_null(aha_model_find_tensor(m, "model.layers.1.mlp.gate_proj.weight"));
    assert_null(aha_model_find_tensor(m, "model.layers.1.mlp.gate.weight"));
    t = aha_model_find_tensor(m, "model.layers.0.self_attn.q_norm.weight");
    assert_int_equal(t->shape[0], m->cfg.head_dim);
    aha_model_free(m);

    m = tiny_model(TINY_OLMOE, 1);
    t = aha_model_find_tensor(m, "model.layers.0.self_attn.k_norm.weight");
    assert_int_equal(t->shape[0], m->cfg.num_kv_heads * m->cfg.head_dim);
    aha_model_free(m);

    m = tiny_model(TINY_MIXTRAL_TIED, 1);
    assert_null(aha_model_find_tensor(m, "lm_head.weight"));
    assert_ptr_equal(m->params.lm_head, m->params.embed_tokens);
    aha_model_free(m);
}

/* Two sequences packed together give each sequence's rows exactly what it gets alone. */
static void test_packing_matches_separate_runs(void **state) {
    (void)state;
    for (int which = 0; which < TINY_COUNT; which++) {
        AhaModel *m = tiny_model(which, 2);
        int V = m->cfg.vocab_size;
        int tokens[11] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
        int starts[3] = {0, 6, 11};
        AhaBatch both = {2, starts, tokens};
        float packed[11 * 37], alone[11 * 37];
        assert_int_equal(aha_model_forward(m, &both), 0);
        assert_int_equal(aha_model_logits(m, packed), 0);
        int s0[2] = {0, 6}, s1[2] = {0, 5};
        AhaBatch first = {1, s0, tokens}, second = {1, s1, tokens + 6};
        assert_int_equal(aha_model_forward(m, &first), 0);
        assert_int_equal(aha_model_logits(m, alone), 0);
        assert_int_equal(aha_model_forward(m, &second), 0);
        assert_int_equal(aha_model_logits(m, alone + 6 * V), 0);
        float d = max_abs_diff(packed, alone, 11 * (size_t)V);
        if (d > 1e-5f) fail_msg("%s: packed vs separate differ by %g", tiny_name(which), (double)d);
        aha_model_free(m);
    }
}

/* The fast CPU kernels agree with the plain C references on the whole model. */
static void test_fast_kernels_match_reference(void **state) {
    (void)state;
    for (int which = 0; which < TINY_COUNT; which++) {
        AhaModel *m = tiny_model(which, 3);
        int T = 13, V = m->cfg.vocab_size;
        int tokens[13], starts[4] = {0, 4, 4, 13}, targets[13];
        for (int t = 0; t < T; t++) {
            tokens[t] = (t * 7 + 3) % V;
            targets[t] = t % 5 == 0 ? -1 : (t * 11 + 1) % V;
        }
        AhaBatch b = {3, starts, tokens}; /* includes an empty sequence */
        float lp_fast[13], ent_fast[13], lp_ref[13], ent_ref[13];
        assert_int_equal(aha_model_forward(m, &b), 0);
        assert_int_equal(aha_model_logprobs(m, targets, 0.7f, lp_fast, ent_fast), 0);
        AhaBackend *ref = aha_backend_create("cpu-ref", NULL);
        assert_non_null(ref);
        assert_int_equal(aha_model_set_backend(m, ref, 1), 0);
        assert_int_equal(aha_model_forward(m, &b), 0);
        assert_int_equal(aha_model_logprobs(m, targets, 0.7f, lp_ref, ent_ref), 0);
        float d = fmaxf(max_abs_diff(lp_fast, lp_ref, T), max_abs_diff(ent_fast, ent_ref, T));
        if (d > 2e-5f) fail_msg("%s: fast vs reference differ by %g", tiny_name(which), (double)d);
        aha_model_free(m);
    }
}

/* log-probs and entropy against a direct computation from the logits, in double */
static void test_logprobs_and_entropy(void **state) {
    (void)state;
    AhaModel *m = tiny_model(TINY_QWEN3, 4);
    int V = m->cfg.vocab_size, T = 9;
    int tokens[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, starts[2] = {0, 9};
    int targets[9] = {2, 3, 4, -1, 6, 7, 8, 9, 36};
    AhaBatch b = {1, starts, tokens};
    assert_int_equal(aha_model_forward(m, &b), 0);
    float logits[9 * 37], lp[9], ent[9];
    assert_int_equal(aha_model_logits(m, logits), 0);
    const float temp = 1.3f;
    assert_int_equal(aha_model_logprobs(m, targets, temp, lp, ent), 0);
    for (int t = 0; t < T; t++) {
        double max = -1e30, sum = 0.0, h = 0.0;
        for (int v = 0; v < V; v++) max = fmax(max, logits[t * V + v] / temp);
        for (int v = 0; v < V; v++) sum += exp(logits[t * V + v] / temp - max);
        for (int v = 0; v < V; v++) {
            double p = exp(logits[t * V + v] / temp - max) / sum;
            h -= p * log(p);
        }
        double want = targets[t] < 0 ? 0.0 : logits[t * V + targets[t]] / temp - max - log(sum);
        assert_float_equal(lp[t], want, 1e-5);
        assert_float_equal(ent[t], h, 1e-5);
    }
    assert_int_equal(aha_model_logprobs(m, targets, 1.0f, lp, NULL), 0);
    aha_model_free(m);
}

/* A decoder built from the building blocks (one row at a time, KV cache, the attention row
 * kernel) reproduces the training forward's logits. */
static void test_building_blocks_match_training(void **state) {
    (void)state;
    for (int which = 0; which < TINY_COUNT; which++) {
        AhaModel *m = tiny_model(which, 5);
        const AhaModelConfig *c = &m->cfg;
        int T = 7, H = c->hidden_size, V = c->vocab_size, L = c->num_layers;
        int QD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
        int tokens[7] = {5, 10, 15, 20, 25, 30, 35}, starts[2] = {0, 7};
        AhaBatch b = {1, starts, tokens};
        float train[7 * 37], decode[7 * 37];
        assert_int_equal(aha_model_forward(m, &b), 0);
        assert_int_equal(aha_model_logits(m, train), 0);
        /* one slot of T positions: keys of every layer, then values (AhaKvLayout) */
        float *cache = calloc(2 * (size_t)L * T * KD, sizeof(float));
        AhaKvLayout kv = {.n_layers = L, .n_slots = 1, .max_len = T, .kv_dim = KD};
        int slot = 0;
        float x[16], q[32], attn[32];
        for (int pos = 0; pos < T; pos++) {
            assert_int_equal(aha_model_embed(m, x, &tokens[pos], 1), 0);
            for (int l = 0; l < L; l++) {
                float *kc = cache + (size_t)l * T * KD, *vc = cache + (size_t)(L + l) * T * KD;
                assert_int_equal(aha_layer_qkv(m, l, q, kc + pos * KD, vc + pos * KD, x, &pos, 1), 0);
                m->backend->attention_decode(m->backend, attn, q, cache, &kv, l, &slot, &pos, 1,
                                             c->num_heads, c->num_kv_heads, c->head_dim);
                assert_int_equal(aha_layer_attn_out(m, l, x, attn, 1), 0);
                assert_int_equal(aha_layer_ffn(m, l, x, 1), 0);
            }
            assert_int_equal(aha_model_head(m, decode + pos * V, x, 1), 0);
        }
        (void)H;
        (void)QD;
        float d = max_abs_diff(train, decode, (size_t)T * V);
        if (d > 1e-5f) fail_msg("%s: decode vs training differ by %g", tiny_name(which), (double)d);
        free(cache);
        aha_model_free(m);
    }
}

static void test_expert_load_and_aux_loss(void **state) {
    (void)state;
    AhaModel *m = tiny_model(TINY_QWEN3, 6);
    const AhaModelConfig *c = &m->cfg;
    int tokens[20], starts[2] = {0, 20};
    for (int t = 0; t < 20; t++) tokens[t] = (t * 13) % c->vocab_size;
    AhaBatch b = {1, starts, tokens};
    assert_int_equal(aha_model_forward(m, &b), 0);
    float load[4], total = 0.0f;
    assert_int_equal(aha_model_expert_load(m, 0, load), 0);
    for (int e = 0; e < 4; e++) total += load[e];
    assert_float_equal(total, 1.0f, 1e-6);
    assert_int_equal(aha_model_expert_load(m, 1, load), -1); /* dense layer */
    assert_non_null(strstr(aha_error_message(), "dense"));
    float aux = aha_model_aux_loss(m);
    /* E * sum f_e P_e with f summing to k and P to 1: between k/E... and k; balanced = k */
    assert_true(aux >= 0.5f && aux <= (float)c->num_experts_per_tok * c->num_experts);
    aha_model_free(m);
}

static void test_bad_batches_are_errors(void **state) {
    (void)state;
    AhaModel *m = tiny_model(TINY_QWEN3, 7);
    int tokens[4] = {1, 2, 40, 3}, starts[3] = {0, 2, 4};
    AhaBatch b = {2, starts, tokens};
    assert_int_equal(aha_model_forward(m, &b), -1);
    assert_non_null(strstr(aha_error_message(), "token 40 at position 2"));
    tokens[2] = 4;
    int bad_starts[3] = {0, 3, 2};
    AhaBatch b2 = {2, bad_starts, tokens};
    assert_int_equal(aha_model_forward(m, &b2), -1);
    assert_non_null(strstr(aha_error_message(), "nondecreasing"));
    float lp[4];
    int targets[4] = {1, 2, 3, 4};
    assert_int_equal(aha_model_logprobs(m, targets, 1.0f, lp, NULL), -1); /* no forward yet */
    assert_int_equal(aha_model_backward(m, lp, 0.0f), -1);
    assert_non_null(strstr(aha_error_message(), "forward"));
    assert_int_equal(aha_model_forward(m, &b), 0);
    targets[1] = 37;
    assert_int_equal(aha_model_logprobs(m, targets, 1.0f, lp, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "target 37 at position 1"));
    targets[1] = 2;
    assert_int_equal(aha_model_logprobs(m, targets, 0.0f, lp, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "temperature"));
    aha_model_free(m);

    AhaModelConfig c;
    tiny_config(&c, TINY_QWEN3);
    c.num_kv_heads = 3;
    assert_null(aha_model_create(&c, NULL));
    assert_non_null(strstr(aha_error_message(), "num_key_value_heads"));
}

static void test_copy_params(void **state) {
    (void)state;
    AhaModel *a = tiny_model(TINY_QWEN2, 8), *b = tiny_model(TINY_QWEN2, 9);
    assert_int_equal(aha_model_copy_params(b, a), 0);
    assert_memory_equal(a->params.memory, b->params.memory, a->params.count * sizeof(float));
    AhaModel *other = tiny_model(TINY_QWEN3, 8);
    assert_int_equal(aha_model_copy_params(other, a), -1);
    aha_model_free(a);
    aha_model_free(b);
    aha_model_free(other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_table),
        cmocka_unit_test(test_packing_matches_separate_runs),
        cmocka_unit_test(test_fast_kernels_match_reference),
        cmocka_unit_test(test_logprobs_and_entropy),
        cmocka_unit_test(test_building_blocks_match_training),
        cmocka_unit_test(test_expert_load_and_aux_loss),
        cmocka_unit_test(test_bad_batches_are_errors),
        cmocka_unit_test(test_copy_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
