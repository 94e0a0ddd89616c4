/* GRPO loss, KL and aggregation: hand-computed cases and every variant's gradient against
 * central finite differences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/grpo.h"
#include "rl/rl_test.h"

static AhaLossConfig base_config(void) {
    return (AhaLossConfig){.eps_low = 0.2, .eps_high = 0.28, .dual_clip = 0.0, .ratio = AHA_GRPO_RATIO_TOKEN,
                           .agg = AHA_GRPO_AGG_TOKEN_MEAN, .norm_len = 8.0, .beta = 0.0, .kl = AHA_GRPO_KL_K3};
}

static double loss_of(const AhaLossConfig *cfg, const AhaLossBatch *b, float *dlogp) {
    double loss = NAN;
    assert_int_equal(aha_grpo_loss(cfg, b, NULL, &loss, dlogp, NULL), 0);
    return loss;
}

/* Deterministic values on a 2^-8 grid, so that +-2^-10 steps are exact in float. */
static uint64_t rng_state = 88172645463325252ull;
static double uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float grid(double lo, double hi) { return (float)(round((lo + (hi - lo) * uniform()) * 256.0) / 256.0); }

static void test_on_policy_ratio_is_exactly_one(void **state) {
    (void)state;
    int seq_start[] = {0, 3, 5};
    float logp[] = {-0.7f, -2.3f, -0.01f, -1.1f, -4.5f};
    double adv[] = {1.3, -0.4};
    AhaLossBatch b = {.n_seqs = 2, .seq_start = seq_start, .logp = logp, .logp_old = logp, .advantages = adv};
    for (int ratio = 0; ratio < 2; ratio++) {
        AhaLossConfig cfg = base_config();
        cfg.ratio = (AhaGrpoRatio)ratio;
        cfg.eps_low = cfg.eps_high = 0.0; /* even a zero-width clip must not activate */
        AhaLossMetrics m;
        aha_grpo_metrics_init(&m);
        float dlogp[5];
        double loss;
        assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, dlogp, &m), 0);
        assert_true(m.ratio_min == 1.0 && m.ratio_max == 1.0 && m.ratio_sum == 5.0);
        assert_int_equal(m.n_clip_low + m.n_clip_high + m.n_dual_clip, 0);
        /* token_mean on-policy: L = -sum A_i |o_i| / T and dL/dlogp = -A_i / T, non-zero */
        assert_near(loss, -(1.3 * 3 - 0.4 * 2) / 5.0, 1e-12);
        for (int t = 0; t < 5; t++) assert_near(dlogp[t], -adv[t < 3 ? 0 : 1] / 5.0, 1e-7);
    }
}

static void test_hand_computed_clipping(void **state) {
    (void)state;
    int seq_start[] = {0, 1};
    float logp[1] = {0.0f}, old[1];
    double adv[1];
    AhaLossBatch b = {.n_seqs = 1, .seq_start = seq_start, .logp = logp, .logp_old = old, .advantages = adv};
    AhaLossConfig cfg = base_config();
    float g[1];
    struct { double ratio, adv, dual, loss, grad; long low, high, dual_hits; } cases[] = {
        {1.5, 1.0, 0, -1.28, 0.0, 0, 1, 0},  /* above 1 + eps_high with A > 0: flat at 1.28 */
        {1.1, 1.0, 0, -1.1, -1.1, 0, 0, 0},  /* inside: -r A, gradient -A r */
        {0.5, 1.0, 0, -0.5, -0.5, 0, 0, 0},  /* low ratio, A > 0: unclipped branch is the min */
        {0.5, -1.0, 0, 0.8, 0.0, 1, 0, 0},   /* below 1 - eps_low with A < 0: flat at 0.8 */
        {1.5, -1.0, 0, 1.5, 1.5, 0, 0, 0},   /* high ratio, A < 0: unbounded without dual clip */
        {4.0, -1.0, 3.0, 3.0, 0.0, 0, 0, 1}, /* dual clip bounds it at -c A = 3 */
        {2.0, -1.0, 3.0, 2.0, 2.0, 0, 0, 0}, /* below the dual bound: unchanged */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        old[0] = (float)-log(cases[k].ratio);
        adv[0] = cases[k].adv;
        cfg.dual_clip = cases[k].dual;
        AhaLossMetrics m;
        aha_grpo_metrics_init(&m);
        double loss;
        assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, &m), 0);
        double r = exp(-(double)old[0]);
        assert_near(loss, cases[k].loss, 1e-6);
        assert_near(g[0], cases[k].grad == 0 ? 0.0 : -cases[k].adv * r, 1e-6);
        assert_int_equal(m.n_clip_low, cases[k].low);
        assert_int_equal(m.n_clip_high, cases[k].high);
        assert_int_equal(m.n_dual_clip, cases[k].dual_hits);
    }
}

static void test_aggregations_hand_computed(void **state) {
    (void)state;
    int seq_start[] = {0, 1, 4};
    float logp[] = {-1.0f, -2.0f, -0.5f, -0.25f};
    double adv[] = {1.0, -1.0};
    AhaLossBatch b = {.n_seqs = 2, .seq_start = seq_start, .logp = logp, .logp_old = logp, .advantages = adv};
    AhaLossConfig cfg = base_config();
    float g[4];
    cfg.agg = AHA_GRPO_AGG_TOKEN_MEAN;
    assert_near(loss_of(&cfg, &b, g), -(1.0 - 3.0) / 4.0, 1e-12);
    assert_near(g[0], -0.25, 1e-7);
    assert_near(g[3], 0.25, 1e-7);
    cfg.agg = AHA_GRPO_AGG_SEQ_MEAN_TOKEN_MEAN;
    assert_near(loss_of(&cfg, &b, g), 0.0, 1e-12);
    assert_near(g[0], -0.5, 1e-7);
    assert_near(g[1], 1.0 / 6.0, 1e-7);
    cfg.agg = AHA_GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
    cfg.norm_len = 4.0;
    assert_near(loss_of(&cfg, &b, g), -(1.0 - 3.0) / 8.0, 1e-12);
    assert_near(g[0], -1.0 / 8.0, 1e-7);
    assert_near(g[2], 1.0 / 8.0, 1e-7);
}

static void test_kl_estimators(void **state) {
    (void)state;
    double lp = -1.0, ref = -1.5, x = ref - lp, d;
    assert_near(aha_grpo_kl(AHA_GRPO_KL_K1, lp, ref, &d), -x, 1e-15);
    assert_near(d, 1.0, 1e-15);
    assert_near(aha_grpo_kl(AHA_GRPO_KL_K2, lp, ref, &d), 0.5 * x * x, 1e-15);
    assert_near(d, -x, 1e-15);
    assert_near(aha_grpo_kl(AHA_GRPO_KL_K3, lp, ref, &d), exp(x) - x - 1.0, 1e-15);
    assert_near(d, 1.0 - exp(x), 1e-15);
    for (int k = 0; k < 3; k++) {
        assert_near(aha_grpo_kl((AhaGrpoKl)k, -0.3, -0.3, &d), 0.0, 0.0);
        for (double y = -4; y <= 4; y += 0.37) {
            double h = 1e-6, an;
            aha_grpo_kl((AhaGrpoKl)k, y, -0.9, &an);
            double fd = (aha_grpo_kl((AhaGrpoKl)k, y + h, -0.9, NULL) - aha_grpo_kl((AhaGrpoKl)k, y - h, -0.9, NULL)) / (2 * h);
            assert_near(fd, an, 1e-6 * fmax(1.0, fabs(an)));
            if (k == AHA_GRPO_KL_K3) assert_true(aha_grpo_kl(AHA_GRPO_KL_K3, y, -0.9, NULL) >= 0.0);
        }
    }
    /* beyond the clamp the estimator is flat and finite */
    assert_true(isfinite(aha_grpo_kl(AHA_GRPO_KL_K3, -200.0, 0.0, &d)) && d == 0.0);
}

#define FD_SEQS 5
#define FD_T 19

/* Every variant (ratio x aggregation x KL x dual clip), off-policy with masking, against
 * central differences of the double loss. */
static void test_gradients_match_finite_differences(void **state) {
    (void)state;
    int seq_start[FD_SEQS + 1] = {0, 4, 5, 11, 15, 19};
    unsigned char mask[FD_SEQS] = {1, 1, 0, 1, 1};
    double adv[FD_SEQS] = {0.9, -1.4, 0.5, -0.3, 1.7};
    float logp[FD_T], old[FD_T], ref[FD_T], g[FD_T];
    for (int t = 0; t < FD_T; t++) {
        logp[t] = grid(-3.0, -0.05);
        old[t] = logp[t] + grid(-0.45, 0.45);
        ref[t] = logp[t] + grid(-0.6, 0.6);
    }
    AhaLossBatch b = {.n_seqs = FD_SEQS, .seq_start = seq_start, .logp = logp, .logp_old = old,
                      .logp_ref = ref, .advantages = adv, .mask = mask};
    const float h = 1.0f / 1024.0f;
    int checked = 0, nonzero = 0;
    for (int ratio = 0; ratio < 2; ratio++)
        for (int agg = 0; agg < 3; agg++)
            for (int kl = -1; kl < 3; kl++)
                for (int dual = 0; dual < 2; dual++) {
                    AhaLossConfig cfg = base_config();
                    cfg.ratio = (AhaGrpoRatio)ratio;
                    cfg.agg = (AhaGrpoAgg)agg;
                    cfg.beta = kl < 0 ? 0.0 : 0.3;
                    cfg.kl = kl < 0 ? AHA_GRPO_KL_K3 : (AhaGrpoKl)kl;
                    cfg.dual_clip = dual ? 1.5 : 0.0;
                    if (ratio == AHA_GRPO_RATIO_SEQUENCE) cfg.eps_low = cfg.eps_high = 0.05;
                    loss_of(&cfg, &b, g);
                    for (int t = 0; t < FD_T; t++) {
                        float saved = logp[t];
                        float scratch[FD_T];
                        logp[t] = saved + h;
                        double up = loss_of(&cfg, &b, scratch);
                        logp[t] = saved - h;
                        double down = loss_of(&cfg, &b, scratch);
                        logp[t] = saved;
                        double fd = (up - down) / (2.0 * h);
                        if (fabs(fd - g[t]) > 1e-5 + 1e-3 * fabs(fd))
                            fail_msg("ratio %d agg %d kl %d dual %d token %d: analytic %.8f, numeric %.8f",
                                     ratio, agg, kl, dual, t, g[t], fd);
                        if (g[t] != 0.0f) nonzero++;
                        checked++;
                    }
                    for (int t = seq_start[2]; t < seq_start[3]; t++) assert_true(g[t] == 0.0f);
                }
    assert_int_equal(checked, 2 * 3 * 4 * 2 * FD_T);
    assert_true(nonzero > checked / 2);
}

/* Splitting a batch into minibatches with the whole batch's denominators sums to the same
 * loss and the same gradients. */
static void test_minibatches_sum_to_the_batch(void **state) {
    (void)state;
    int seq_start[] = {0, 2, 7, 8, 12};
    unsigned char mask[] = {1, 0, 1, 1};
    double adv[] = {0.4, -0.8, 1.1, -0.2};
    float logp[12], old[12], ref[12], whole[12], part[12];
    for (int t = 0; t < 12; t++) {
        logp[t] = grid(-2.0, -0.1);
        old[t] = logp[t] + grid(-0.1, 0.1);
        ref[t] = logp[t] + grid(-0.3, 0.3);
    }
    for (int agg = 0; agg < 3; agg++) {
        AhaLossConfig cfg = base_config();
        cfg.agg = (AhaGrpoAgg)agg;
        cfg.beta = 0.05;
        AhaLossBatch all = {.n_seqs = 4, .seq_start = seq_start, .logp = logp, .logp_old = old,
                            .logp_ref = ref, .advantages = adv, .mask = mask};
        double loss_all = loss_of(&cfg, &all, whole);
        AhaLossNorm norm;
        aha_grpo_count(&all, &norm.n_tokens_total, &norm.n_seqs_total);
        assert_int_equal(norm.n_tokens_total, 7);
        assert_int_equal(norm.n_seqs_total, 3);
        int first_start[] = {0, 2, 7};
        int second_start[] = {0, 1, 5};
        AhaLossBatch first = {.n_seqs = 2, .seq_start = first_start, .logp = logp, .logp_old = old,
                              .logp_ref = ref, .advantages = adv, .mask = mask};
        AhaLossBatch second = {.n_seqs = 2, .seq_start = second_start, .logp = logp + 7, .logp_old = old + 7,
                               .logp_ref = ref + 7, .advantages = adv + 2, .mask = mask + 2};
        double l1, l2;
        AhaLossMetrics m;
        aha_grpo_metrics_init(&m);
        assert_int_equal(aha_grpo_loss(&cfg, &first, &norm, &l1, part, &m), 0);
        assert_int_equal(aha_grpo_loss(&cfg, &second, &norm, &l2, part + 7, &m), 0);
        assert_near(l1 + l2, loss_all, 1e-12);
        assert_near(m.policy_loss + m.kl_loss, loss_all, 1e-12);
        assert_int_equal(m.n_tokens, 7);
        for (int t = 0; t < 12; t++) assert_near(part[t], whole[t], 1e-7);
    }
}

static void test_masked_sequences_contribute_nothing(void **state) {
    (void)state;
    int seq_start[] = {0, 2, 5};
    unsigned char mask[] = {1, 0};
    double adv[] = {1.0, 5.0};
    float logp[] = {-1.0f, -0.5f, -9.0f, -8.0f, -7.0f}, g[5];
    AhaLossBatch b = {.n_seqs = 2, .seq_start = seq_start, .logp = logp, .logp_old = logp, .advantages = adv, .mask = mask};
    AhaLossConfig cfg = base_config();
    double loss = loss_of(&cfg, &b, g);
    assert_near(loss, -1.0, 1e-12); /* token_mean over the 2 unmasked tokens only */
    for (int t = 2; t < 5; t++) assert_true(g[t] == 0.0f);
    logp[3] = -0.1f;
    assert_near(loss_of(&cfg, &b, g), loss, 0.0);
}

static void test_sequence_ratio_of_one_token_equals_token_ratio(void **state) {
    (void)state;
    int seq_start[] = {0, 1};
    float logp[] = {-0.9f}, old[] = {-1.05f}, g1[1], g2[1];
    double adv[] = {-0.7};
    AhaLossBatch b = {.n_seqs = 1, .seq_start = seq_start, .logp = logp, .logp_old = old, .advantages = adv};
    AhaLossConfig cfg = base_config();
    double a = loss_of(&cfg, &b, g1);
    cfg.ratio = AHA_GRPO_RATIO_SEQUENCE;
    assert_near(loss_of(&cfg, &b, g2), a, 1e-15);
    assert_near(g1[0], g2[0], 0.0);
}

static void test_bad_inputs_are_clear_errors(void **state) {
    (void)state;
    int seq_start[] = {0, 2, 1};
    int good_start[] = {0, 1, 2};
    float logp[] = {-1.0f, -2.0f}, g[2] = {0};
    double adv[] = {1.0, NAN};
    AhaLossBatch b = {.n_seqs = 2, .seq_start = good_start, .logp = logp, .logp_old = logp, .advantages = adv};
    double loss;
    AhaLossConfig cfg = base_config();
    cfg.beta = 0.1;
    assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "needs reference log-probs"));
    cfg = base_config();
    cfg.eps_low = 1.0;
    assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "eps_low"));
    cfg = base_config();
    cfg.dual_clip = 0.5;
    assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "dual_clip"));
    cfg = base_config();
    cfg.agg = AHA_GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
    cfg.norm_len = 0.0;
    assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "norm_len"));
    cfg = base_config();
    assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "advantage of sequence 1 is not finite"));
    adv[1] = 1.0;
    b.seq_start = seq_start;
    assert_int_equal(aha_grpo_loss(&cfg, &b, NULL, &loss, g, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "decreases at sequence 1"));
}

static void test_lr_schedule(void **state) {
    (void)state;
    assert_near(aha_lr_schedule(1e-3, 4, 0, 0.0, 0, 100), 2.5e-4, 1e-18);
    assert_near(aha_lr_schedule(1e-3, 4, 0, 0.0, 3, 100), 1e-3, 1e-18);
    assert_near(aha_lr_schedule(1e-3, 4, 0, 0.0, 77, 100), 1e-3, 1e-18);
    assert_near(aha_lr_schedule(1e-3, 0, 1, 0.1, 0, 100), 1e-3, 1e-15);
    assert_near(aha_lr_schedule(1e-3, 0, 1, 0.1, 50, 100), 1e-3 * (0.1 + 0.9 * 0.5), 1e-15);
    assert_near(aha_lr_schedule(1e-3, 0, 1, 0.1, 100, 100), 1e-4, 1e-15);
    assert_near(aha_lr_schedule(1e-3, 10, 1, 0.0, 10, 110), 1e-3, 1e-15);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_policy_ratio_is_exactly_one),
        cmocka_unit_test(test_hand_computed_clipping),
        cmocka_unit_test(test_aggregations_hand_computed),
        cmocka_unit_test(test_kl_estimators),
        cmocka_unit_test(test_gradients_match_finite_differences),
        cmocka_unit_test(test_minibatches_sum_to_the_batch),
        cmocka_unit_test(test_masked_sequences_contribute_nothing),
        cmocka_unit_test(test_sequence_ratio_of_one_token_equals_token_ratio),
        cmocka_unit_test(test_bad_inputs_are_clear_errors),
        cmocka_unit_test(test_lr_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
