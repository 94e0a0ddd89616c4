/* AdamW and the global gradient norm of the CPU backends (contracts in aha/backend.h). The
 * update is elementwise, so the threaded and the plain loop give the same bits; the norm
 * sums in double (threaded: per-thread partial sums, so the last bits depend on threads). */
#include <math.h>

#include "cpu_internal.h"

static void adamw(float *params, const float *grads, float *m, float *v, size_t count,
                  const AhaAdamWStep *s, int threaded) {
    float bc1 = 1.0f - powf(s->beta1, (float)s->step);
    float bc2_sqrt = sqrtf(1.0f - powf(s->beta2, (float)s->step));
    float step_size = s->lr / bc1, decay = 1.0f - s->lr * s->weight_decay;
    float b1 = s->beta1, b2 = s->beta2, eps = s->eps;
#pragma omp parallel for schedule(static) if (threaded)
    for (size_t i = 0; i < count; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        params[i] = params[i] * decay - step_size * m[i] / denom;
    }
}

void aha_cpu_adamw_step(AhaBackend *be, float *params, const float *grads, float *m, float *v,
                        size_t count, const AhaAdamWStep *s) {
    (void)be;
    adamw(params, grads, m, v, count, s, 1);
}

void aha_adamw_step_ref(AhaBackend *be, float *params, const float *grads, float *m, float *v,
                        size_t count, const AhaAdamWStep *s) {
    (void)be;
    adamw(params, grads, m, v, count, s, 0);
}

int aha_cpu_grad_norm(AhaBackend *be, float *norm, const float *grads, size_t count) {
    double sumsq = 0.0;
#pragma omp parallel for reduction(+ : sumsq) schedule(static)
    for (size_t i = 0; i < count; i++) sumsq += (double)grads[i] * grads[i];
    *norm = (float)sqrt(sumsq);
    return aha_backend_take_failure(be);
}

int aha_grad_norm_ref(AhaBackend *be, float *norm, const float *grads, size_t count) {
    double sumsq = 0.0;
    for (size_t i = 0; i < count; i++) sumsq += (double)grads[i] * grads[i];
    *norm = (float)sqrt(sumsq);
    return aha_backend_take_failure(be);
}
