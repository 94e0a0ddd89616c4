/* AdamW over a whole arena, and global gradient-norm clipping, as backend ops (the moments
 * are backend memory of the same backend as the parameters). */
#include <math.h>
#include <stdlib.h>

#include "aha/error.h"
#include "aha/optim.h"

int aha_adamw_init(AhaAdamW *opt, AhaBackend *backend, size_t count, const AhaAdamWConfig *cfg) {
    opt->m = opt->v = NULL;
    opt->backend = NULL;
    opt->owns_backend = 0;
    AHA_REQUIRE(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f, "adamw: beta1 must be in [0, 1), got %g",
                (double)cfg->beta1);
    AHA_REQUIRE(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f, "adamw: beta2 must be in [0, 1), got %g",
                (double)cfg->beta2);
    AHA_REQUIRE(cfg->eps > 0.0f, "adamw: eps must be positive, got %g", (double)cfg->eps);
    AHA_REQUIRE(cfg->weight_decay >= 0.0f, "adamw: weight_decay must be >= 0, got %g",
                (double)cfg->weight_decay);
    if (backend == NULL) {
        if (!(backend = aha_backend_create("cpu", NULL))) return aha_error_prefix("adamw");
        opt->owns_backend = 1;
    }
    opt->backend = backend;
    opt->cfg = *cfg;
    opt->count = count;
    opt->step = 0;
    opt->m = backend->alloc(backend, count * sizeof(float));
    opt->v = backend->alloc(backend, count * sizeof(float));
    if (opt->m == NULL || opt->v == NULL) {
        aha_adamw_free(opt);
        return aha_error_prefix("adamw moments for %zu parameters", count);
    }
    backend->zero(backend, opt->m, count * sizeof(float));
    backend->zero(backend, opt->v, count * sizeof(float));
    return 0;
}

void aha_adamw_free(AhaAdamW *opt) {
    AhaBackend *be = opt->backend;
    if (be) {
        be->free(be, opt->m);
        be->free(be, opt->v);
        if (opt->owns_backend) aha_backend_free(be);
    }
    opt->m = opt->v = NULL;
    opt->backend = NULL;
    opt->owns_backend = 0;
}

int aha_adamw_step(AhaAdamW *opt, float *params, const float *grads, float lr) {
    const AhaAdamWConfig *c = &opt->cfg;
    AhaBackend *be = opt->backend;
    opt->step++;
    AhaAdamWStep step = {.lr = lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
                         .weight_decay = c->weight_decay, .step = opt->step};
    be->adamw_step(be, params, grads, opt->m, opt->v, opt->count, &step);
    return be->sync(be);
}

float aha_clip_grad_norm(AhaBackend *backend, float *grads, size_t count, float max_norm) {
    AhaBackend *own = NULL;
    if (backend == NULL && !(backend = own = aha_backend_create("cpu", NULL))) return NAN;
    float norm;
    if (backend->grad_norm(backend, &norm, grads, count) != 0) norm = NAN;
    if (max_norm > 0.0f && norm > max_norm) {
        float scale = max_norm / (norm + 1e-6f);
        backend->scale(backend, grads, count, scale);
        if (backend->sync(backend) != 0) norm = NAN;
    }
    aha_backend_free(own);
    return norm;
}
