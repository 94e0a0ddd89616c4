/* Sampling one token from one row of logits, and the stop rules: the pure, per-sequence
 * parts of the sampler (internal to libaha; tested directly). */
#ifndef AHA_ROLLOUT_SAMPLE_H
#define AHA_ROLLOUT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "aha/sampler.h"

/* A candidate token during top-k / top-p selection. */
typedef struct AhaTokenWeight {
    double weight;  /* exp(logit / T - max), unnormalized */
    int32_t token;
} AhaTokenWeight;

/* log softmax(logits / T)[token] over the full vocabulary (T = 1 when temperature is 0). */
float aha_token_logprob(const float *logits, int vocab, float temperature, int32_t token);

/* Picks one token from logits [vocab] under params (temperature, top_k, top_p) with the
 * uniform number u in [0, 1) (inverse CDF over the kept tokens, sorted by probability,
 * ties by lower id; over the whole vocabulary in id order when nothing is truncated).
 * scratch: [vocab]. Writes the full-vocabulary log-prob of the token to *logprob. */
int32_t aha_sample_logits(const float *logits, int vocab, const AhaSamplingParams *params,
                          double u, AhaTokenWeight *scratch, float *logprob);

/* Stop strings matched on decoded bytes across token boundaries. Each sequence keeps the
 * last (longest stop string - 1) bytes it produced in its own tail buffer. */
typedef struct AhaStopStrings {
    const char *const *strings; /* [n] */
    size_t *lens;               /* [n] */
    int n;
    size_t tail_capacity;       /* longest - 1: bytes a sequence must remember */
} AhaStopStrings;

int aha_stop_strings_init(AhaStopStrings *stops, const char *const *strings, int n);
void aha_stop_strings_free(AhaStopStrings *stops);
/* Appends bytes [n] to a sequence whose tail is tail [tail_capacity] holding *tail_len
 * bytes; returns 1 if a stop string now ends within the new bytes, else 0. Updates the
 * tail. */
int aha_stop_strings_feed(const AhaStopStrings *stops, char *tail, size_t *tail_len,
                          const char *bytes, size_t n);

#endif
