/* Sampling from a row of logits (see rollout/sample.h). Weights are exp(logit / T - max) in
 * double so that the inverse CDF sees the same mass whatever the vocabulary order. */
#include "rollout/sample.h"

#include <math.h>
#include <stdlib.h>

static int32_t argmax(const float *logits, int vocab) {
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

float aha_token_logprob(const float *logits, int vocab, float temperature, int32_t token) {
    float inv_t = temperature > 0.0f ? 1.0f / temperature : 1.0f;
    float max = logits[0] * inv_t;
    for (int i = 1; i < vocab; i++) max = fmaxf(max, logits[i] * inv_t);
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(logits[i] * inv_t - max));
    return (float)((double)(logits[token] * inv_t - max) - log(sum));
}

/* Descending weight, then ascending id: a total order, so the result is deterministic. */
static int by_weight_desc(const void *a, const void *b) {
    const AhaTokenWeight *x = a, *y = b;
    if (x->weight > y->weight) return -1;
    if (x->weight < y->weight) return 1;
    return (x->token > y->token) - (x->token < y->token);
}

/* Min-heap (by the order above, reversed) keeping the k heaviest tokens. */
static int heavier(const AhaTokenWeight *x, const AhaTokenWeight *y) { return by_weight_desc(x, y) < 0; }

static void sift_down(AhaTokenWeight *heap, int n, int i) {
    for (;;) {
        int lightest = i, l = 2 * i + 1, r = l + 1;
        if (l < n && heavier(&heap[lightest], &heap[l])) lightest = l;
        if (r < n && heavier(&heap[lightest], &heap[r])) lightest = r;
        if (lightest == i) return;
        AhaTokenWeight t = heap[i];
        heap[i] = heap[lightest];
        heap[lightest] = t;
        i = lightest;
    }
}

static int select_top_k(AhaTokenWeight *all, int vocab, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(all, k, i);
    for (int i = k; i < vocab; i++) {
        if (heavier(&all[i], &all[0])) {
            all[0] = all[i];
            sift_down(all, k, 0);
        }
    }
    return k;
}

int32_t aha_sample_logits(const float *logits, int vocab, const AhaSamplingParams *params,
                          double u, AhaTokenWeight *scratch, float *logprob) {
    float temperature = params->temperature;
    if (temperature <= 0.0f) {
        int32_t token = argmax(logits, vocab);
        *logprob = aha_token_logprob(logits, vocab, 1.0f, token);
        return token;
    }
    float inv_t = 1.0f / temperature;
    float max = logits[0] * inv_t;
    for (int i = 1; i < vocab; i++) max = fmaxf(max, logits[i] * inv_t);
    double total = 0.0;
    for (int i = 0; i < vocab; i++) {
        scratch[i].weight = exp((double)(logits[i] * inv_t - max));
        scratch[i].token = i;
        total += scratch[i].weight;
    }
    int32_t token = -1;
    int truncate_k = params->top_k > 0 && params->top_k < vocab;
    if (!truncate_k && params->top_p >= 1.0f) {
        double target = u * total, cumulative = 0.0;
        for (int i = 0; i < vocab && token < 0; i++) {
            cumulative += scratch[i].weight;
            if (cumulative > target) token = i;
        }
        if (token < 0) token = vocab - 1; /* rounding left target at the very end */
    } else {
        int kept = truncate_k ? select_top_k(scratch, vocab, params->top_k) : vocab;
        qsort(scratch, (size_t)kept, sizeof *scratch, by_weight_desc);
        double kept_mass = 0.0;
        for (int i = 0; i < kept; i++) kept_mass += scratch[i].weight;
        if (params->top_p < 1.0f) {
            /* The smallest prefix whose mass reaches top_p of the (top-k renormalized)
             * distribution; always at least one token. */
            double need = (double)params->top_p * kept_mass, cumulative = 0.0;
            int nucleus = 0;
            while (nucleus < kept && cumulative < need) cumulative += scratch[nucleus++].weight;
            kept = nucleus > 0 ? nucleus : 1;
            kept_mass = cumulative > 0.0 ? cumulative : scratch[0].weight;
        }
        double target = u * kept_mass, cumulative = 0.0;
        for (int i = 0; i < kept && token < 0; i++) {
            cumulative += scratch[i].weight;
            if (cumulative > target) token = scratch[i].token;
        }
        if (token < 0) token = scratch[kept - 1].token;
    }
    *logprob = (float)((double)(logits[token] * inv_t - max) - log(total));
    return token;
}
