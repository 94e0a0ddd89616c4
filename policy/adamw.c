/* AdamW over a whole arena, and global gradient-norm clipping. */
#include <math.h>
#include <stdlib.h>

#include "aha/error.h"
#include "aha/optim.h"

int aha_adamw_init(AhaAdamW *opt, size_t count, const AhaAdamWConfig *cfg) {
    AHA_REQUIRE(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f, "adamw: beta1 must be in [0, 1), got %g",
                (double)cfg->beta1);
    AHA_REQUIRE(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f, "adamw: beta2 must be in [0, 1), got %g",
                (double)cfg->beta2);
    AHA_REQUIRE(cfg->eps > 0.0f, "adamw: eps must be positive, got %g", (double)cfg->eps);
    AHA_REQUIRE(cfg->weight_decay >= 0.0f, "adamw: weight_decay must be >= 0, got %g",
                (double)cfg->weight_decay);
    opt->cfg = *cfg;
    opt->count = count;
    opt->step = 0;
    opt->m = aha_calloc(count, sizeof(float));
    opt->v = aha_calloc(count, sizeof(float));
    if (opt->m == NULL || opt->v == NULL) {
        aha_adamw_free(opt);
        return aha_error_prefix("adamw moments for %zu parameters", count);
    }
    return 0;
}

void aha_adamw_free(AhaAdamW *opt) {
    free(opt->m);
    free(opt->v);
    opt->m = opt->v = NULL;
}

void aha_adamw_step(AhaAdamW *opt, float *params, const float *grads, float lr) {
    const AhaAdamWConfig *c = &opt->cfg;
    opt->step++;
    float bc1 = 1.0f - powf(c->beta1, (float)opt->step);
    float bc2_sqrt = sqrtf(1.0f - powf(c->beta2, (float)opt->step));
    float step_size = lr / bc1, decay = 1.0f - lr * c->weight_decay;
    float *m = opt->m, *v = opt->v;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < opt->count; i++) {
        float g = grads[i];
        m[i] = c->beta1 * m[i] + (1.0f - c->beta1) * g;
        v[i] = c->beta2 * v[i] + (1.0f - c->beta2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + c->eps;
        params[i] = params[i] * decay - step_size * m[i] / denom;
    }
}

float aha_clip_grad_norm(float *grads, size_t count, float max_norm) {
    double sumsq = 0.0;
#pragma omp parallel for reduction(+ : sumsq) schedule(static)
    for (size_t i = 0; i < count; i++) sumsq += (double)grads[i] * grads[i];
    float norm = (float)sqrt(sumsq);
    if (max_norm > 0.0f && norm > max_norm) {
        float scale = max_norm / (norm + 1e-6f);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) grads[i] *= scale;
    }
    return norm;
}
