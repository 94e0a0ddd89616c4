/* The sampler against the trainer's forward: greedy with the KV cache equals greedy by full
 * recompute, recorded log-probs equal aha_model_logprobs on the packed completions, and the
 * same seed gives the same completions whatever the threads, batch or prefix sharing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aha/error.h"
#include "rollout_fixtures.h"

static int run_collect(AhaModel *m, const AhaRolloutRequest *req, int share, int threads,
                       Collected *out) {
    AhaRolloutOptions opt;
    aha_rollout_options_default(&opt);
    opt.share_prefix = share;
    opt.threads = threads;
    memset(out, 0, sizeof *out);
    out->n_prompts = req->n_prompts;
    return aha_rollout_run(m, req, &opt, collect, out, NULL);
}

static int argmax_row(const float *row, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

static void test_greedy_cache_equals_full_recompute(void **state) {
    (void)state;
    for (int arch = 0; arch < ARCH_COUNT; arch++) {
        AhaModel *m = tiny_model(arch, 100 + arch);
        assert_non_null(m);
        const int V = m->cfg.vocab_size;
        TestPrompts p;
        make_prompts(&p, 4, V, (uint32_t)arch);
        AhaRolloutRequest req = make_request(&p, 2, 0.0f, 1.0f, 0, 12);
        Collected got;
        assert_int_equal(run_collect(m, &req, 1, 0, &got), 0);
        assert_int_equal(got.n_groups, 4);
        int *seq = malloc(sizeof(int) * 64);
        float *logits = malloc(sizeof(float) * 64 * (size_t)V);
        double max_logit_diff = 0;
        for (int b = 0; b < p.n; b++) {
            const AhaCompletion *c = &got.by_prompt[b]->samples[0];
            assert_int_equal(c->n_tokens, 12);
            assert_int_equal(c->stop, AHA_STOP_LENGTH);
            /* greedy samples of one group are identical */
            assert_true(same_completion(c, &got.by_prompt[b]->samples[1]));
            memcpy(seq, p.tokens[b], sizeof(int) * (size_t)p.lens[b]);
            for (int t = 0; t < c->n_tokens; t++) {
                int len = p.lens[b] + t;
                int starts[2] = {0, len};
                AhaBatch batch = {1, starts, seq};
                assert_int_equal(aha_model_forward(m, &batch), 0);
                assert_int_equal(aha_model_logits(m, logits), 0);
                const float *last = logits + (size_t)(len - 1) * V;
                if (argmax_row(last, V) != c->tokens[t])
                    fail_msg("arch %d prompt %d step %d: cache chose %d, full recompute %d", arch, b,
                             t, c->tokens[t], argmax_row(last, V));
                float lp;
                int target = c->tokens[t];
                m->backend->logprob_forward(m->backend, &lp, NULL, last, &target, 1, V, 1.0f);
                max_logit_diff = fmax(max_logit_diff, fabs(lp - c->logprobs[t]));
                seq[len] = c->tokens[t];
            }
        }
        print_message("arch %d: greedy tokens equal; max |logprob diff| vs recompute %.3g\n", arch,
                      max_logit_diff);
        assert_true(max_logit_diff <= 1e-5);
        free(seq);
        free(logits);
        collected_free(&got);
        free_prompts(&p);
        aha_model_free(m);
    }
}

/* Packs every completion after its prompt and scores the completion tokens with the
 * trainer's forward. Returns the largest difference from the recorded log-probs. */
static double trainer_logprob_diff(AhaModel *m, const TestPrompts *p, const Collected *got,
                                   float temperature, int *n_exact, int *n_scored) {
    int total = 0, n_seqs = 0;
    for (int b = 0; b < p->n; b++)
        for (int s = 0; s < got->by_prompt[b]->n_samples; s++, n_seqs++)
            total += p->lens[b] + got->by_prompt[b]->samples[s].n_tokens;
    int *tokens = malloc(sizeof(int) * (size_t)total), *targets = malloc(sizeof(int) * (size_t)total);
    int *starts = malloc(sizeof(int) * (size_t)(n_seqs + 1));
    float *recorded = malloc(sizeof(float) * (size_t)total), *lp = malloc(sizeof(float) * (size_t)total);
    int at = 0, k = 0;
    for (int b = 0; b < p->n; b++) {
        for (int s = 0; s < got->by_prompt[b]->n_samples; s++) {
            const AhaCompletion *c = &got->by_prompt[b]->samples[s];
            starts[k++] = at;
            for (int t = 0; t < p->lens[b]; t++) tokens[at + t] = p->tokens[b][t];
            for (int t = 0; t < c->n_tokens; t++) tokens[at + p->lens[b] + t] = c->tokens[t];
            int len = p->lens[b] + c->n_tokens;
            for (int t = 0; t < len; t++) {
                /* row t predicts token t + 1; only completion tokens are scored */
                int scored = t + 1 >= p->lens[b] && t + 1 < len;
                targets[at + t] = scored ? tokens[at + t + 1] : -1;
                recorded[at + t] = scored ? c->logprobs[t + 1 - p->lens[b]] : 0.0f;
            }
            at += len;
        }
    }
    starts[k] = at;
    AhaBatch batch = {n_seqs, starts, tokens};
    assert_int_equal(aha_model_forward(m, &batch), 0);
    assert_int_equal(aha_model_logprobs(m, targets, temperature, lp, NULL), 0);
    double max_diff = 0;
    *n_exact = *n_scored = 0;
    for (int t = 0; t < total; t++) {
        if (targets[t] < 0) continue;
        (*n_scored)++;
        *n_exact += lp[t] == recorded[t];
        max_diff = fmax(max_diff, fabs((double)lp[t] - recorded[t]));
    }
    free(tokens);
    free(targets);
    free(starts);
    free(recorded);
    free(lp);
    return max_diff;
}

/* With the model's own kernels (OpenBLAS sgemm) the trainer's log-probs are within 1e-5 of
 * the sampler's; on a batch-invariant context (aha_backend_invariant_like) they are bit-equal. */
static void test_sampled_logprobs_match_trainer(void **state) {
    (void)state;
    static const struct { float t, top_p; int top_k; } settings[] = {
        {1.0f, 1.0f, 0}, {0.7f, 0.9f, 0}, {1.3f, 1.0f, 10}, {0.0f, 1.0f, 0}};
    for (int arch = 0; arch < ARCH_COUNT; arch++) {
        AhaModel *m = tiny_model(arch, 200 + arch);
        TestPrompts p;
        make_prompts(&p, 5, m->cfg.vocab_size, 11u + (uint32_t)arch);
        for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
            AhaRolloutRequest req = make_request(&p, 3, settings[i].t, settings[i].top_p,
                                                 settings[i].top_k, 10);
            Collected got;
            assert_int_equal(run_collect(m, &req, 1, 0, &got), 0);
            int exact, scored;
            float t_train = settings[i].t > 0 ? settings[i].t : 1.0f; /* greedy records T = 1 */
            double diff = trainer_logprob_diff(m, &p, &got, t_train, &exact, &scored);
            print_message("arch %d T %.1f top_p %.1f top_k %d: max |sampler - trainer| logprob "
                          "%.3g, bit-equal %d of %d\n",
                          arch, (double)settings[i].t, (double)settings[i].top_p,
                          settings[i].top_k, diff, exact, scored);
            assert_true(diff <= 1e-5);
            /* A trainer forward on the batch-invariant kernels agrees bit for bit. */
            AhaBackend *own = m->backend, *invariant = aha_backend_invariant_like(own);
            assert_non_null(invariant);
            m->backend = invariant;
            diff = trainer_logprob_diff(m, &p, &got, t_train, &exact, &scored);
            m->backend = own;
            aha_backend_free(invariant);
            if (diff != 0.0 || exact != scored)
                fail_msg("invariant kernels: max diff %.3g, bit-equal %d of %d", diff, exact, scored);
            collected_free(&got);
        }
        free_prompts(&p);
        aha_model_free(m);
    }
}

static void expect_same_groups(const Collected *a, const Collected *b, int n_prompts) {
    for (int i = 0; i < n_prompts; i++) {
        assert_non_null(a->by_prompt[i]);
        assert_non_null(b->by_prompt[i]);
        assert_int_equal(a->by_prompt[i]->n_samples, b->by_prompt[i]->n_samples);
        for (int s = 0; s < a->by_prompt[i]->n_samples; s++)
            if (!same_completion(&a->by_prompt[i]->samples[s], &b->by_prompt[i]->samples[s]))
                fail_msg("prompt %d sample %d differs", i, s);
    }
}

static void test_same_seed_same_completions_any_threads_batch_or_sharing(void **state) {
    (void)state;
    AhaModel *m = tiny_model(ARCH_QWEN3, 300);
    TestPrompts p;
    make_prompts(&p, 6, m->cfg.vocab_size, 5);
    AhaRolloutRequest req = make_request(&p, 3, 1.0f, 0.95f, 0, 14);
    Collected base, other;
    assert_int_equal(run_collect(m, &req, 1, 1, &base), 0);
    assert_int_equal(run_collect(m, &req, 1, 2, &other), 0);
    expect_same_groups(&base, &other, p.n);
    collected_free(&other);
    assert_int_equal(run_collect(m, &req, 0, 2, &other), 0);
    expect_same_groups(&base, &other, p.n);
    collected_free(&other);
    /* samples differ from each other (the streams are distinct) */
    int differ = 0;
    for (int b = 0; b < p.n; b++)
        differ += !same_completion(&base.by_prompt[b]->samples[0], &base.by_prompt[b]->samples[1]);
    assert_true(differ > 0);

    /* a different batch: prompts 4 and 1 alone, in that order, with their ids */
    TestPrompts sub = {.n = 2};
    sub.tokens[0] = p.tokens[4];
    sub.lens[0] = p.lens[4];
    sub.tokens[1] = p.tokens[1];
    sub.lens[1] = p.lens[1];
    const uint32_t ids[2] = {4, 1};
    AhaRolloutRequest sub_req = make_request(&sub, 3, 1.0f, 0.95f, 0, 14);
    sub_req.prompt_ids = ids;
    assert_int_equal(run_collect(m, &sub_req, 0, 1, &other), 0);
    for (int s = 0; s < 3; s++) {
        assert_true(same_completion(&other.by_prompt[0]->samples[s], &base.by_prompt[4]->samples[s]));
        assert_true(same_completion(&other.by_prompt[1]->samples[s], &base.by_prompt[1]->samples[s]));
    }
    collected_free(&other);
    /* a different seed changes the completions */
    req.params.seed = 99;
    assert_int_equal(run_collect(m, &req, 1, 0, &other), 0);
    differ = 0;
    for (int b = 0; b < p.n; b++)
        differ += !same_completion(&base.by_prompt[b]->samples[0], &other.by_prompt[b]->samples[0]);
    assert_true(differ > 0);
    collected_free(&other);
    collected_free(&base);
    free_prompts(&p);
    aha_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_cache_equals_full_recompute),
        cmocka_unit_test(test_sampled_logprobs_match_trainer),
        cmocka_unit_test(test_same_seed_same_completions_any_threads_batch_or_sharing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
