/* AdamW (decoupled weight decay, bias correction; the update of torch.optim.AdamW) and
 * global gradient-norm clipping, over one whole float arena (the model's parameters). */
#ifndef AHA_OPTIM_H
#define AHA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float beta1, beta2, eps, weight_decay;
} AhaAdamWConfig;

typedef struct {
    AhaAdamWConfig cfg;
    size_t count;   /* floats in the arena */
    float *m;       /* [count] first moment */
    float *v;       /* [count] second moment */
    int64_t step;   /* steps taken */
} AhaAdamW;

/* Moments start at zero. betas in [0,1), eps > 0, weight_decay >= 0, else an error. */
int aha_adamw_init(AhaAdamW *opt, size_t count, const AhaAdamWConfig *cfg);
void aha_adamw_free(AhaAdamW *opt);
/* One step at learning rate lr:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
void aha_adamw_step(AhaAdamW *opt, float *params, const float *grads, float lr);

/* The global L2 norm of grads[count] before clipping; when max_norm > 0 and the norm exceeds
 * it, scales grads by max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). */
float aha_clip_grad_norm(float *grads, size_t count, float max_norm);

#ifdef __cplusplus
}
#endif

#endif
