/* With several threads the training batch is split into parts of whole sequences, each
 * trained by one thread (policy/model_forward.c). The result must be the one-part result:
 * the same log-probs, entropies, load statistics and aux loss, and the same gradients up to
 * float rounding, accumulated across calls like the single-part backward. */
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aha/model.h"
#include "policy/test_model_util.h"

enum { MAX_SEQS = 16, MAX_T = MAX_SEQS * 60 };

typedef struct {
    int n_seqs, T;
    int starts[MAX_SEQS + 1];
    int tokens[MAX_T], targets[MAX_T];
    float weights[MAX_T];
} Batch;

static void make_batch(Batch *b, int n_seqs, int vocab, uint64_t seed) {
    uint64_t s = seed;
    b->n_seqs = n_seqs;
    b->starts[0] = 0;
    for (int i = 0; i < n_seqs; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        b->starts[i + 1] = b->starts[i] + 1 + (int)((s >> 33) % 60); /* 1..60 tokens */
    }
    b->T = b->starts[n_seqs];
    for (int t = 0; t < b->T; t++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        b->tokens[t] = (int)((s >> 33) % (uint64_t)vocab);
        b->targets[t] = t % 5 == 4 ? -1 : (int)((s >> 20) % (uint64_t)vocab);
        b->weights[t] = (float)((s >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
}

typedef struct {
    float lp[MAX_T], ent[MAX_T], load[AHA_MAX_LAYERS * 8], aux;
    float *grads, *logits;
} Result;

/* forward, log-probs with entropy, then `backwards` backward calls, with `threads` threads */
static void run(AhaModel *m, const Batch *b, int threads, int backwards, Result *r) {
    omp_set_num_threads(threads);
    AhaBatch batch = {b->n_seqs, b->starts, b->tokens};
    assert_int_equal(aha_model_forward(m, &batch), 0);
    assert_int_equal(aha_model_logprobs(m, b->targets, 0.9f, r->lp, r->ent), 0);
    r->aux = aha_model_aux_loss(m);
    r->logits = malloc(sizeof(float) * (size_t)b->T * m->cfg.vocab_size);
    assert_non_null(r->logits);
    assert_int_equal(aha_model_logits(m, r->logits), 0);
    memset(r->load, 0, sizeof r->load);
    for (int l = 0; l < m->cfg.num_layers; l++)
        if (aha_model_layer_is_moe(&m->cfg, l))
            assert_int_equal(aha_model_expert_load(m, l, r->load + l * m->cfg.num_experts), 0);
    assert_int_equal(aha_model_alloc_grads(m), 0);
    aha_model_zero_grads(m);
    for (int i = 0; i < backwards; i++)
        assert_int_equal(aha_model_backward(m, b->weights, 0.05f), 0);
    r->grads = malloc(m->grads.count * sizeof(float));
    assert_non_null(r->grads);
    memcpy(r->grads, m->grads.memory, m->grads.count * sizeof(float));
}

static void compare(const AhaModel *m, const Batch *b, const Result *one, const Result *many,
                    double grad_scale) {
    for (int t = 0; t < b->T; t++) {
        /* the rows are computed by the same kernels on either side */
        assert_true(fabsf(one->lp[t] - many->lp[t]) <= 1e-5f);
        assert_true(fabsf(one->ent[t] - many->ent[t]) <= 1e-5f);
    }
    for (size_t i = 0; i < (size_t)b->T * m->cfg.vocab_size; i++)
        assert_true(fabsf(one->logits[i] - many->logits[i]) <= 1e-5f * fmaxf(1.0f, fabsf(one->logits[i])));
    assert_memory_equal(one->load, many->load, sizeof one->load);
    assert_true(fabsf(one->aux - many->aux) <= 1e-6f * fabsf(one->aux) + 1e-7f);
    double worst = 0.0, norm = 0.0;
    for (size_t i = 0; i < m->grads.count; i++) norm = fmax(norm, fabs(one->grads[i]));
    for (size_t i = 0; i < m->grads.count; i++)
        worst = fmax(worst, fabs(grad_scale * one->grads[i] - many->grads[i]));
    print_message("  max |grad difference| %.3g (max |grad| %.3g)\n", worst, norm);
    assert_true(worst <= 1e-5 * grad_scale * norm);
}

static void check_variant(int which, int threads) {
    AhaModelConfig c;
    tiny_config(&c, which);
    AhaModel *m = aha_model_create(&c, NULL);
    assert_non_null(m);
    tiny_init(m, 300 + which);
    static Batch b;
    make_batch(&b, MAX_SEQS, c.vocab_size, 17 + (uint64_t)which);
    assert_true(b.T >= 64 * threads); /* enough rows for every thread to get a part */
    static Result one, many, twice;
    run(m, &b, 1, 1, &one);
    run(m, &b, threads, 1, &many);
    compare(m, &b, &one, &many, 1.0);
    run(m, &b, threads, 2, &twice); /* backward accumulates */
    compare(m, &b, &one, &twice, 2.0);
    free(one.grads), free(one.logits);
    free(many.grads), free(many.logits);
    free(twice.grads), free(twice.logits);
    aha_model_free(m);
}

static void test_two_parts(void **state) {
    (void)state;
    for (int which = 0; which < TINY_COUNT; which++) check_variant(which, 2);
}

static void test_three_parts(void **state) {
    (void)state;
    check_variant(TINY_QWEN2, 3);
    check_variant(TINY_MIXTRAL_TIED, 3);
}

/* A batch smaller than one part per thread, and one sequence, still train as one part. */
static void test_small_batches(void **state) {
    (void)state;
    AhaModelConfig c;
    tiny_config(&c, TINY_QWEN3);
    AhaModel *m = aha_model_create(&c, NULL);
    assert_non_null(m);
    tiny_init(m, 9);
    static Batch b;
    make_batch(&b, 1, c.vocab_size, 5);
    static Result one, many;
    run(m, &b, 1, 1, &one);
    run(m, &b, 2, 1, &many);
    compare(m, &b, &one, &many, 1.0);
    free(one.grads), free(one.logits);
    free(many.grads), free(many.logits);
    aha_model_free(m);
}

/* Empty sequences at the ends and between: every part still gets rows. */
static void test_empty_sequences(void **state) {
    (void)state;
    AhaModelConfig c;
    tiny_config(&c, TINY_QWEN3);
    AhaModel *m = aha_model_create(&c, NULL);
    assert_non_null(m);
    tiny_init(m, 11);
    static Batch b;
    const int lens[7] = {0, 0, 150, 0, 140, 0, 0};
    b.n_seqs = 7;
    b.starts[0] = 0;
    for (int i = 0; i < 7; i++) b.starts[i + 1] = b.starts[i] + lens[i];
    b.T = b.starts[7];
    for (int t = 0; t < b.T; t++) {
        b.tokens[t] = (t * 7 + 3) % c.vocab_size;
        b.targets[t] = t % 6 == 5 ? -1 : (t * 11 + 1) % c.vocab_size;
        b.weights[t] = (float)((t * 37) % 17) / 17.0f - 0.5f;
    }
    static Result one, many;
    run(m, &b, 1, 1, &one);
    run(m, &b, 4, 1, &many);
    compare(m, &b, &one, &many, 1.0);
    free(one.grads), free(one.logits);
    free(many.grads), free(many.logits);
    aha_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_parts),
        cmocka_unit_test(test_three_parts),
        cmocka_unit_test(test_small_batches),
        cmocka_unit_test(test_empty_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
