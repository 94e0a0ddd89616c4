/* Group-relative advantages (GRPO, Dr. GRPO, batch-std scaling) over weighted reward
 * components. Formulas and the rules for unscored samples: docs/training.md. */
#include "aha/grpo.h"

#include <math.h>

#include "aha/error.h"

/* Mean and unbiased std of n values read with a stride; constant inputs give std exactly 0. */
static void mean_std(const double *x, int n, int stride, double *mean, double *std, int *constant) {
    double sum = 0.0, lo = x[0], hi = x[0];
    for (int i = 0; i < n; i++) {
        double v = x[(size_t)i * stride];
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    *mean = sum / n;
    *constant = lo == hi;
    double ss = 0.0;
    for (int i = 0; i < n; i++) {
        double d = x[(size_t)i * stride] - *mean;
        ss += d * d;
    }
    *std = (*constant || n < 2) ? 0.0 : sqrt(ss / (n - 1));
}

/* Std over the samples of scored groups of one strided series (batch_std scaling). */
static double batch_std(const double *x, int stride, int n_groups, int group_size,
                        const AhaGroupStatus *status) {
    double sum = 0.0, ss = 0.0;
    long n = 0;
    for (int g = 0; g < n_groups; g++) {
        if (status[g] == AHA_GROUP_UNSCORED) continue;
        for (int j = 0; j < group_size; j++) sum += x[((size_t)g * group_size + j) * stride];
        n += group_size;
    }
    if (n < 2) return 0.0;
    double mean = sum / (double)n;
    for (int g = 0; g < n_groups; g++) {
        if (status[g] == AHA_GROUP_UNSCORED) continue;
        for (int j = 0; j < group_size; j++) {
            double d = x[((size_t)g * group_size + j) * stride] - mean;
            ss += d * d;
        }
    }
    return sqrt(ss / (double)(n - 1));
}

/* Writes the normalized deviation of one strided series into out (accumulating w * value). */
static void normalize_groups(const AhaAdvantageConfig *cfg, const double *x, int stride,
                             int n_groups, int group_size, const AhaGroupStatus *status,
                             double weight, double *out) {
    double scale_all = cfg->kind == AHA_GRPO_ADV_BATCH_STD
                           ? batch_std(x, stride, n_groups, group_size, status) + cfg->eps
                           : 1.0;
    for (int g = 0; g < n_groups; g++) {
        if (status[g] == AHA_GROUP_UNSCORED) continue;
        const double *gx = x + (size_t)g * group_size * stride;
        double mean, std;
        int constant;
        mean_std(gx, group_size, stride, &mean, &std, &constant);
        if (constant) continue; /* exactly 0, not rounding noise divided by eps */
        double scale = cfg->kind == AHA_GRPO_ADV_GRPO ? std + cfg->eps
                       : cfg->kind == AHA_GRPO_ADV_BATCH_STD ? scale_all
                                                        : 1.0;
        for (int j = 0; j < group_size; j++)
            out[(size_t)g * group_size + j] += weight * (gx[(size_t)j * stride] - mean) / scale;
    }
}

int aha_grpo_advantages(const AhaAdvantageConfig *cfg, int n_groups, int group_size,
                        int n_components, const double *rewards, const double *weights,
                        double *total, double *advantages, AhaGroupStatus *status_out,
                        AhaAdvantageStats *stats) {
    AHA_REQUIRE(n_groups >= 0 && group_size >= 1 && n_components >= 1,
                "advantages: need n_groups >= 0, group_size >= 1, n_components >= 1 (got %d, %d, %d)",
                n_groups, group_size, n_components);
    AHA_REQUIRE(cfg->eps >= 0.0 && isfinite(cfg->eps), "advantages: eps must be finite and >= 0, got %g",
                cfg->eps);
    AHA_REQUIRE(cfg->kind == AHA_GRPO_ADV_GRPO || cfg->kind == AHA_GRPO_ADV_DR_GRPO || cfg->kind == AHA_GRPO_ADV_BATCH_STD,
                "advantages: unknown kind %d", (int)cfg->kind);
    for (int c = 0; c < n_components; c++)
        AHA_REQUIRE(isfinite(weights[c]), "advantages: weight %d is not finite", c);
    size_t n = (size_t)n_groups * group_size;
    AhaGroupStatus *status = status_out;
    AhaGroupStatus local_status[64];
    if (!status) {
        AHA_REQUIRE(n_groups <= 64, "advantages: pass a status array for more than 64 groups");
        status = local_status;
    }
    for (int g = 0; g < n_groups; g++) {
        status[g] = AHA_GROUP_OK;
        for (int j = 0; j < group_size; j++) {
            size_t s = (size_t)g * group_size + j;
            double t = 0.0;
            for (int c = 0; c < n_components; c++) {
                if (weights[c] == 0.0) continue;
                double r = rewards[s * n_components + c];
                if (isnan(r)) status[g] = AHA_GROUP_UNSCORED;
                AHA_REQUIRE(!isinf(r), "advantages: reward %d of sample %zu is infinite", c, s);
                t += weights[c] * r;
            }
            total[s] = t;
        }
    }
    for (size_t s = 0; s < n; s++) advantages[s] = 0.0;
    if (cfg->combine == AHA_GRPO_NORMALIZE_THEN_SUM) {
        for (int c = 0; c < n_components; c++)
            if (weights[c] != 0.0)
                normalize_groups(cfg, rewards + c, n_components, n_groups, group_size, status,
                                 weights[c], advantages);
    } else {
        AHA_REQUIRE(cfg->combine == AHA_GRPO_SUM_THEN_NORMALIZE, "advantages: unknown combine %d",
                    (int)cfg->combine);
        normalize_groups(cfg, total, 1, n_groups, group_size, status, 1.0, advantages);
    }
    AhaAdvantageStats st = {0};
    double sum = 0.0, ss = 0.0;
    long counted = 0;
    for (int g = 0; g < n_groups; g++) {
        if (status[g] == AHA_GROUP_UNSCORED) {
            for (int j = 0; j < group_size; j++) total[(size_t)g * group_size + j] = NAN;
            st.n_groups_unscored++;
            continue;
        }
        int all_equal = 1; /* no signal: every advantage exactly 0 (constant rewards) */
        for (int j = 0; j < group_size; j++) {
            size_t s = (size_t)g * group_size + j;
            double a = advantages[s];
            if (a != 0.0) all_equal = 0;
            if (counted == 0 || a < st.min) st.min = a;
            if (counted == 0 || a > st.max) st.max = a;
            sum += a;
            counted++;
        }
        if (all_equal) {
            status[g] = AHA_GROUP_ALL_EQUAL;
            st.n_groups_all_equal++;
        } else {
            st.n_groups_ok++;
        }
    }
    if (counted > 0) {
        st.mean = sum / (double)counted;
        for (int g = 0; g < n_groups; g++) {
            if (status[g] == AHA_GROUP_UNSCORED) continue;
            for (int j = 0; j < group_size; j++) {
                double d = advantages[(size_t)g * group_size + j] - st.mean;
                ss += d * d;
            }
        }
        st.std = counted > 1 ? sqrt(ss / (double)(counted - 1)) : 0.0;
    }
    if (stats) *stats = st;
    return 0;
}
