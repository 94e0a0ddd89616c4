/* The decoding ops of the CPU backends: KV-cache append and prefix copy, attention of new
 * rows against their slot's cache, and sampling from logits rows with the Philox streams.
 * The CPU backend spreads rows over OpenMP threads; the reference runs them in order. A row's
 * numbers never depend on the other rows, so both give the same bits for the same kernels. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "aha/rng.h"
#include "cpu_internal.h"
#include "rollout/sample.h"

static float *kv_keys(float *cache, const AhaKvLayout *kv, int layer, int slot) {
    return cache + (((size_t)layer * kv->n_slots + slot) * kv->max_len) * kv->kv_dim;
}

static size_t kv_values_offset(const AhaKvLayout *kv) {
    return (size_t)kv->n_layers * kv->n_slots * kv->max_len * kv->kv_dim;
}

void aha_kv_append_ref(AhaBackend *be, float *cache, const AhaKvLayout *kv, int layer,
                       const float *k, const float *v, const int *slots, const int *pos, int n) {
    (void)be;
    size_t row = (size_t)kv->kv_dim * sizeof(float), vals = kv_values_offset(kv);
    for (int i = 0; i < n; i++) {
        float *dst = kv_keys(cache, kv, layer, slots[i]) + (size_t)pos[i] * kv->kv_dim;
        memcpy(dst, k + (size_t)i * kv->kv_dim, row);
        memcpy(dst + vals, v + (size_t)i * kv->kv_dim, row);
    }
}

void aha_kv_copy_prefix_ref(AhaBackend *be, float *cache, const AhaKvLayout *kv, int dst,
                            int src, int len) {
    (void)be;
    size_t bytes = (size_t)len * kv->kv_dim * sizeof(float), vals = kv_values_offset(kv);
    for (int layer = 0; layer < kv->n_layers; layer++) {
        memcpy(kv_keys(cache, kv, layer, dst), kv_keys(cache, kv, layer, src), bytes);
        memcpy(kv_keys(cache, kv, layer, dst) + vals, kv_keys(cache, kv, layer, src) + vals, bytes);
    }
}

typedef void RowAttention(float *out, float *probs, const float *q, const float *k,
                          const float *v, int len, int kv_stride, int heads, int kv_heads,
                          int head_dim);

static void decode_rows(AhaBackend *be, RowAttention *row, int threads, float *out,
                        const float *q, const float *cache, const AhaKvLayout *kv, int layer,
                        const int *slots, const int *pos, int n, int heads, int kv_heads,
                        int head_dim) {
    size_t per = (size_t)heads * kv->max_len, qd = (size_t)heads * head_dim;
    float *bufs = malloc(sizeof(float) * per * (size_t)threads);
    if (bufs == NULL) {
        aha_backend_fail(be, "decode attention: no memory for %d softmax buffers", threads);
        return;
    }
    size_t vals = kv_values_offset(kv);
    float *base = (float *)cache;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
    for (int i = 0; i < n; i++) {
        float *probs = bufs + per * (size_t)omp_get_thread_num();
        const float *keys = kv_keys(base, kv, layer, slots[i]);
        row(out + (size_t)i * qd, probs, q + (size_t)i * qd, keys, keys + vals, pos[i] + 1,
            kv->kv_dim, heads, kv_heads, head_dim);
    }
    free(bufs);
}

void aha_cpu_attention_decode(AhaBackend *be, float *out, const float *q, const float *cache,
                              const AhaKvLayout *kv, int layer, const int *slots, const int *pos,
                              int n, int heads, int kv_heads, int head_dim) {
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    decode_rows(be, aha_cpu_attention_row_forward, threads, out, q, cache, kv, layer, slots, pos,
                n, heads, kv_heads, head_dim);
}

void aha_attention_decode_ref(AhaBackend *be, float *out, const float *q, const float *cache,
                              const AhaKvLayout *kv, int layer, const int *slots, const int *pos,
                              int n, int heads, int kv_heads, int head_dim) {
    decode_rows(be, aha_attention_row_forward_ref, 1, out, q, cache, kv, layer, slots, pos, n,
                heads, kv_heads, head_dim);
}

static void sample_rows(AhaBackend *be, int threads, int *tokens, float *logprobs,
                        const float *logits, const int *rows, const uint64_t *streams,
                        const uint64_t *positions, int n, int vocab, const AhaSampleSpec *spec) {
    AhaTokenWeight *bufs = malloc(sizeof *bufs * (size_t)vocab * (size_t)threads);
    if (bufs == NULL) {
        aha_backend_fail(be, "sampling: no memory for %d buffers of %d tokens", threads, vocab);
        return;
    }
    AhaSamplingParams params = {.temperature = spec->temperature, .top_p = spec->top_p,
                                .top_k = spec->top_k};
    float temperature = spec->temperature > 0.0f ? spec->temperature : 1.0f;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int i = 0; i < n; i++) {
        AhaTokenWeight *scratch = bufs + (size_t)vocab * (size_t)omp_get_thread_num();
        const float *row = logits + (size_t)rows[i] * vocab;
        uint32_t block[4];
        aha_rng_block(spec->seed, streams[i], positions[i], block);
        float unused;
        int token = aha_sample_logits(row, vocab, &params,
                                      aha_rng_words_to_double(block[0], block[1]), scratch, &unused);
        tokens[i] = token;
        /* the recorded log-prob comes from the trainer's own kernel, on the same logits */
        be->logprob_forward(be, &logprobs[i], NULL, row, &tokens[i], 1, vocab, temperature);
    }
    free(bufs);
}

void aha_cpu_sample(AhaBackend *be, int *tokens, float *logprobs, const float *logits,
                    const int *rows, const uint64_t *streams, const uint64_t *positions, int n,
                    int vocab, const AhaSampleSpec *spec) {
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    sample_rows(be, threads, tokens, logprobs, logits, rows, streams, positions, n, vocab, spec);
}

void aha_sample_ref(AhaBackend *be, int *tokens, float *logprobs, const float *logits,
                    const int *rows, const uint64_t *streams, const uint64_t *positions, int n,
                    int vocab, const AhaSampleSpec *spec) {
    sample_rows(be, 1, tokens, logprobs, logits, rows, streams, positions, n, vocab, spec);
}
