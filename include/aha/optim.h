/* AdamW (decoupled weight decay, bias correction; the update of torch.optim.AdamW) and
 * global gradient-norm clipping, over one whole float arena (the model's parameters), as
 * backend ops: params, grads and the moments are backend memory of one backend. */
#ifndef AHA_OPTIM_H
#define AHA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "aha/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float beta1, beta2, eps, weight_decay;
} AhaAdamWConfig;

typedef struct {
    AhaAdamWConfig cfg;
    size_t count;   /* floats in the arena */
    float *m;       /* [count] first moment (backend memory) */
    float *v;       /* [count] second moment (backend memory) */
    int64_t step;   /* steps taken */
    AhaBackend *backend; /* runs the step and owns m and v */
    int owns_backend;
} AhaAdamW;

/* Moments start at zero, on backend (NULL: a "cpu" context of its own). betas in [0,1),
 * eps > 0, weight_decay >= 0, else an error. */
int aha_adamw_init(AhaAdamW *opt, AhaBackend *backend, size_t count, const AhaAdamWConfig *cfg);
void aha_adamw_free(AhaAdamW *opt);
/* One step at learning rate lr:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
int aha_adamw_step(AhaAdamW *opt, float *params, const float *grads, float lr);

/* The global L2 norm of grads[count] (backend memory of backend; NULL: host memory on a
 * "cpu" context) before clipping; when max_norm > 0 and the norm exceeds it, scales grads by
 * max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). NaN with an error recorded when
 * the backend fails. */
float aha_clip_grad_norm(AhaBackend *backend, float *grads, size_t count, float max_norm);

#ifdef __cplusplus
}
#endif

#endif
