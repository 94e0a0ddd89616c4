/* The KV-cache forward: N new tokens, each of its own sequence slot at its own position,
 * through the policy's building blocks (aha/model.h) and the same backend ops as the
 * training forward. Prefill and decode are the same call: prefill passes many rows per slot
 * (consecutive positions), decode one row per slot. Internal to libaha. */
#ifndef AHA_ROLLOUT_FORWARD_H
#define AHA_ROLLOUT_FORWARD_H

#include "aha/model.h"
#include "rollout/kvcache.h"

/* Workspace in backend memory (the model's backend), sized for max_rows rows. */
typedef struct AhaCacheForward {
    AhaBackend *backend;
    int max_rows;
    float *x;           /* [max_rows, H] the residual stream */
    float *q;           /* [max_rows, nh*hd] */
    float *k;           /* [max_rows, kv_dim] */
    float *v;           /* [max_rows, kv_dim] */
    float *attn;        /* [max_rows, nh*hd] */
    float *selected;    /* [max_rows, H] rows whose logits are wanted */
    int *rows;          /* [4, max_rows] tokens, slots, positions, logit rows (uploaded) */
} AhaCacheForward;

int aha_cache_forward_init(AhaCacheForward *fw, AhaBackend *backend, const AhaModelConfig *cfg,
                           int max_rows);
void aha_cache_forward_free(AhaCacheForward *fw);

/* Runs rows [n] (n <= max_rows; the arrays are host memory): token tokens[i] at position
 * pos[i] of slot slots[i]. Every row's K and V are written into the cache before attention,
 * so a row attends to its own slot's positions [0, pos[i]] whether they came from earlier
 * calls or from this one. Writes logits[n_logits, V] (backend memory) for the rows
 * logit_rows[n_logits]. */
int aha_cache_forward(AhaModel *m, AhaKvCache *cache, AhaCacheForward *fw, int n,
                      const int *tokens, const int *slots, const int *pos,
                      const int *logit_rows, int n_logits, float *logits);

#endif
