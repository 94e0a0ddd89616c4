/* The sampler loop behind aha_rollout_run, with a cancel flag for the rollout worker.
 * Internal to libaha. */
#ifndef AHA_ROLLOUT_ENGINE_H
#define AHA_ROLLOUT_ENGINE_H

#include <stdatomic.h>

#include "aha/sampler.h"

/* As aha_rollout_run; when *cancel becomes non-zero the run stops before its next decode
 * step and returns 0 with the remaining groups undelivered. cancel may be NULL. */
int aha_rollout_run_until(AhaModel *model, const AhaRolloutRequest *request,
                          const AhaRolloutOptions *options, AhaGroupSink sink, void *sink_ctx,
                          AhaRolloutStats *stats, atomic_int *cancel);

#endif
