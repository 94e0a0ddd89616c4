/* The rollout sampler: G completions for each of B prompts from the current policy, with a
 * KV cache, batched decoding of all B*G sequences, group prefix sharing, temperature /
 * top-k / top-p sampling from per-sequence counter-based streams, and stop rules. Finished
 * groups are handed over as they complete, either to a callback (aha_rollout_run) or
 * through a queue from a sampler thread (aha_rollout_start / _next / _join), so that the
 * reward stage overlaps decoding. docs/rollout.md has the details.
 *
 * Randomness: sample s of the prompt with id p draws its token at decode step t (0-based,
 * t = index of the token in the completion) from the Philox block at
 *     (seed = params.seed, stream = aha_rng_stream(p, s), position = t)      (aha/rng.h)
 * so a completion depends only on (weights, prompt tokens, params, p, s): never on the
 * batch it was decoded in, the other prompts, prefix sharing, or the number of threads.
 *
 * Log-probabilities: logprobs[t] = log softmax(logits / T)[token] over the FULL vocabulary,
 * never the top-k/top-p truncated distribution, so that the trainer's recomputation with
 * aha_model_logprobs(..., temperature T, ...) means the same thing. Greedy decoding
 * (temperature 0) records the T = 1 log-probability.
 *
 * Stopping, checked after every token, in this order: an EOS id (reason "eos"), a stop
 * string completed in the decoded bytes, across token boundaries ("stop"), the length
 * limit ("length"). The token that triggered the stop stays in the completion, with its
 * log-prob: the trainer trains on every token the policy produced, EOS and stop strings
 * included (the reward stage may strip the stop string from the text). */
#ifndef AHA_SAMPLER_H
#define AHA_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "aha/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum AhaStopReason {
    AHA_STOP_NONE = 0, /* still running (never in a finished group) */
    AHA_STOP_EOS,      /* "eos": sampled one of params.eos_ids */
    AHA_STOP_STRING,   /* "stop": the decoded bytes now contain one of params.stop_strings */
    AHA_STOP_LENGTH,   /* "length": max_new_tokens, or the model's context, reached */
} AhaStopReason;

/* "none", "eos", "stop", "length" */
const char *aha_stop_reason_name(AhaStopReason reason);

/* The raw bytes of one token, as the tokenizer's byte-level decoder would produce them for
 * that token alone (a partial UTF-8 sequence is fine: stop strings are matched on bytes).
 * The bytes must stay valid while the sampler runs. Returns 0, or -1 with an error
 * recorded (an id the tokenizer does not know). Required only when stop strings are set. */
typedef struct AhaTokenText {
    int (*token_bytes)(void *ctx, int32_t token, const char **bytes, size_t *len);
    void *ctx;
} AhaTokenText;

typedef struct AhaSamplingParams {
    float temperature;                /* > 0 samples; 0 = greedy (argmax, ties -> lowest id) */
    float top_p;                      /* (0, 1]; 1 = off. Needs temperature > 0 */
    int top_k;                        /* >= 0; 0 = off. Needs temperature > 0 */
    int max_new_tokens;               /* >= 1 */
    const int32_t *eos_ids;           /* [n_eos_ids] token ids that end a completion */
    int n_eos_ids;
    const char *const *stop_strings;  /* [n_stop_strings] non-empty byte strings */
    int n_stop_strings;
    uint64_t seed;
} AhaSamplingParams;

/* temperature 1, top_p 1, top_k 0, max_new_tokens 256, no EOS ids, no stop strings,
 * seed 0. */
void aha_sampling_params_default(AhaSamplingParams *params);
/* Checks ranges and combinations; the message names the offending field. */
int aha_sampling_params_check(const AhaSamplingParams *params);

typedef struct AhaRolloutRequest {
    int n_prompts;                  /* B >= 1 */
    const int32_t *const *prompts;  /* [B] -> [prompt_lens[b]] token ids, each non-empty */
    const int *prompt_lens;         /* [B] */
    const uint32_t *prompt_ids;     /* [B] the stream coordinate of each prompt (e.g. its row
                                       in the data set); NULL means 0..B-1 */
    int group_size;                 /* G >= 1 */
    AhaSamplingParams params;
} AhaRolloutRequest;

typedef struct AhaRolloutOptions {
    int share_prefix;               /* 1: prefill each prompt once, copy its KV to its G
                                       samples; 0: prefill every sample's prompt itself */
    int threads;                    /* OpenMP threads in the sampler; 0 = OpenMP's default */
    const AhaTokenText *token_text; /* needed for stop strings; NULL otherwise */
} AhaRolloutOptions;

/* share_prefix 1, threads 0, token_text NULL */
void aha_rollout_options_default(AhaRolloutOptions *options);

typedef struct AhaCompletion {
    int32_t *tokens;   /* [n_tokens] sampled ids, the stopping token included */
    float *logprobs;   /* [n_tokens] log softmax(logits / T) at each token (T = 1 if greedy) */
    int n_tokens;      /* 1 ..max_new_tokens */
    AhaStopReason stop;
} AhaCompletion;

typedef struct AhaRolloutGroup {
    int prompt_index;        /* index into the request's prompts */
    int n_samples;           /* G */
    AhaCompletion *samples;  /* [G]; sample s used stream (prompt id, s) */
} AhaRolloutGroup;

void aha_rollout_group_free(AhaRolloutGroup *group);

/* Figures of one run (for the trainer's tokens/s and the benchmark). */
typedef struct AhaRolloutStats {
    double prefill_seconds;
    double decode_seconds;       /* forward passes of the decode steps, sampling included */
    int64_t prompt_tokens;       /* tokens pushed through prefill */
    int64_t generated_tokens;    /* tokens sampled, all completions */
    int decode_steps;
} AhaRolloutStats;

/* Called with each finished group, in completion order, on the sampler's thread; takes
 * ownership of the group (free it with aha_rollout_group_free). Returns 0, or -1 (with an
 * error recorded) to abort the run. */
typedef int (*AhaGroupSink)(void *ctx, AhaRolloutGroup *group);

/* Batch invariance. OpenBLAS sgemm rounds a row differently depending on how many rows
 * share the call and how threads split it, so the sampler decodes on a batch-invariant
 * backend context (AhaBackendOptions.batch_invariant: on the CPU, the product of
 * kernels/cpu/matmul_invariant.c): then a completion never depends on its batch, prefix
 * sharing or the thread count. aha_rollout_run uses the model's context when it is
 * batch-invariant (the trainer's is) and otherwise this: a new batch-invariant context of
 * the same backend and device (NULL with an error when there is none). A trainer whose
 * model runs on such a context gets log-probs bit-equal to the sampler's; with plain sgemm
 * they differ by ~1e-6. */
AhaBackend *aha_backend_invariant_like(const AhaBackend *like);

/* Checks a request against a model without sampling: the same checks aha_rollout_run and
 * aha_rollout_start make first. The message names the field or the prompt. */
int aha_rollout_check(const AhaModel *model, const AhaRolloutRequest *request,
                      const AhaRolloutOptions *options);

/* Samples the whole request on the calling thread. The sampler runs the model's decoding
 * building blocks, which use the model's scratch memory: nothing else may use the model
 * meanwhile, and its weights must not change. Returns 0, or -1 on a bad request, on
 * allocation failure, or when the sink failed. options and stats may be NULL. */
int aha_rollout_run(AhaModel *model, const AhaRolloutRequest *request,
                    const AhaRolloutOptions *options, AhaGroupSink sink, void *sink_ctx,
                    AhaRolloutStats *stats);

/* The same on a sampler thread, handing groups over through a queue. The request and the
 * options are copied (the caller's arrays may go away); the model and the token_text
 * callback must stay valid, and the model unused by anything else, until aha_rollout_join. A bad request is reported
 * here, before the thread starts. */
typedef struct AhaRolloutWorker AhaRolloutWorker;
AhaRolloutWorker *aha_rollout_start(AhaModel *model, const AhaRolloutRequest *request,
                                    const AhaRolloutOptions *options);
/* Blocks until the next finished group: returns 1 and sets *group (the caller owns it), 0
 * when every group has been delivered, or -1 when the sampler failed (its message is
 * recorded on the calling thread). */
int aha_rollout_next(AhaRolloutWorker *worker, AhaRolloutGroup **group);
/* Stops the sampler early if groups remain (it stops at the next decode step), waits for
 * its thread, frees undelivered groups and the worker. Returns 0, or -1 if the sampler
 * had failed. stats may be NULL. */
int aha_rollout_join(AhaRolloutWorker *worker, AhaRolloutStats *stats);

#ifdef __cplusplus
}
#endif

#endif
