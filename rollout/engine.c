/* The sampler loop: check the request, size the KV cache from it, prefill every prompt
 * (once per group with prefix sharing, then copy its KV to the other samples' slots), then
 * decode all unfinished sequences together, one token each per step, dropping finished
 * ones from the batch and handing each group over as soon as its last sample stops. */
#include "rollout/engine.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aha/error.h"
#include "aha/kernels.h"
#include "aha/model.h"
#include "aha/rng.h"
#include "rollout/forward.h"
#include "rollout/kvcache.h"
#include "rollout/sample.h"

typedef struct Sequence {
    int prompt;        /* b */
    int sample;        /* s */
    int slot;          /* KV cache slot (b * G + s) */
    int prompt_len;
    int max_new;       /* max_new_tokens, or less where the model's context ends first */
    uint64_t stream;   /* aha_rng_stream(prompt id, s) */
    int n_tokens;
    int32_t *tokens;   /* [max_new] */
    float *logprobs;   /* [max_new] */
    char *stop_tail;   /* [stops.tail_capacity] the last bytes produced */
    size_t stop_tail_len;
    AhaStopReason stop;
} Sequence;

typedef struct Engine {
    AhaModel *m;
    const AhaRolloutRequest *req;
    const AhaRolloutOptions *opt;
    AhaGroupSink sink;
    void *sink_ctx;
    int n_seqs;             /* B * G */
    int vocab;
    Sequence *seqs;         /* [n_seqs], sequence b * G + s */
    int *remaining;         /* [B] samples of group b still running */
    AhaStopStrings stops;
    AhaKvCache cache;
    AhaCacheForward fw;
    int max_rows;           /* rows per forward call */
    float *logits;          /* [max_rows, V] backend memory */
    /* one sampling call: per sequence its logits row, Philox stream and position in, its
     * token and log-prob out; host staging [n_seqs] and the backend copies */
    int *draw_rows;
    uint64_t *draw_streams, *draw_positions;
    int *draw_tokens;
    float *draw_logprobs;
    void *d_draw;           /* backend: rows, tokens [n_seqs] ints; logprobs [n_seqs] floats;
                               streams, positions [n_seqs] uint64 */
    int *row_tokens;        /* [max_rows] */
    int *row_slots;         /* [max_rows] */
    int *row_pos;           /* [max_rows] */
    int *logit_rows;        /* [max_rows] */
    int *logit_seq;         /* [max_rows] the sequence (prefill: first sequence) of a logits row */
    int *active;            /* [n_seqs] running sequences, in sequence order */
    int n_active;
    AhaRolloutStats stats;
} Engine;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check_request(const AhaModel *m, const AhaRolloutRequest *req,
                         const AhaRolloutOptions *opt) {
    const AhaModelConfig *cfg = &m->cfg;
    AhaRolloutOptions defaults;
    aha_rollout_options_default(&defaults);
    if (!opt) opt = &defaults;
    AHA_REQUIRE(req->n_prompts >= 1, "n_prompts: expected at least 1 prompt, got %d",
                req->n_prompts);
    AHA_REQUIRE(req->group_size >= 1, "group_size: expected at least 1 sample per prompt, got %d",
                req->group_size);
    AHA_REQUIRE((long long)req->n_prompts * req->group_size <= INT_MAX / 2,
                "%d prompts x %d samples: too many sequences", req->n_prompts, req->group_size);
    AHA_REQUIRE(req->prompts && req->prompt_lens, "the request has no prompt arrays");
    if (aha_sampling_params_check(&req->params) != 0)
        return aha_error_prefix("sampling parameters");
    for (int i = 0; i < req->params.n_eos_ids; i++)
        AHA_REQUIRE(req->params.eos_ids[i] < cfg->vocab_size,
                    "eos_ids[%d]: token %d is outside the vocabulary of %d", i,
                    (int)req->params.eos_ids[i], cfg->vocab_size);
    AHA_REQUIRE(req->params.n_stop_strings == 0 || (opt->token_text && opt->token_text->token_bytes),
                "stop strings need the tokens' text: set options.token_text (the tokenizer)");
    int context = cfg->max_position_embeddings;
    for (int b = 0; b < req->n_prompts; b++) {
        int len = req->prompt_lens[b];
        AHA_REQUIRE(len >= 1 && req->prompts[b],
                    "prompt %d is empty: sampling needs at least one prompt token (a BOS token "
                    "if nothing else)", b);
        AHA_REQUIRE(context <= 0 || len < context,
                    "prompt %d has %d tokens, but the model's context (max_position_embeddings) "
                    "is %d: no room for a single new token", b, len, context);
        for (int t = 0; t < len; t++)
            AHA_REQUIRE(req->prompts[b][t] >= 0 && req->prompts[b][t] < cfg->vocab_size,
                        "prompt %d, token %d: id %d is outside the vocabulary of %d", b, t,
                        (int)req->prompts[b][t], cfg->vocab_size);
    }
    return 0;
}

static void engine_free(Engine *e) {
    if (e->seqs) {
        for (int i = 0; i < e->n_seqs; i++) {
            free(e->seqs[i].tokens);
            free(e->seqs[i].logprobs);
            free(e->seqs[i].stop_tail);
        }
    }
    free(e->seqs);
    free(e->remaining);
    aha_stop_strings_free(&e->stops);
    aha_kv_cache_free(&e->cache);
    aha_cache_forward_free(&e->fw);
    AhaBackend *B = e->m->backend;
    B->free(B, e->logits);
    B->free(B, e->d_draw);
    free(e->draw_rows);
    free(e->draw_streams);
    free(e->draw_positions);
    free(e->draw_tokens);
    free(e->draw_logprobs);
    free(e->row_tokens);
    free(e->row_slots);
    free(e->row_pos);
    free(e->logit_rows);
    free(e->logit_seq);
    free(e->active);
}

static int engine_init(Engine *e) {
    const AhaRolloutRequest *req = e->req;
    const AhaModelConfig *cfg = &e->m->cfg;
    const int G = req->group_size, context = cfg->max_position_embeddings;
    e->n_seqs = req->n_prompts * G;
    e->vocab = cfg->vocab_size;
    AHA_TRY(aha_stop_strings_init(&e->stops, req->params.stop_strings, req->params.n_stop_strings));
    e->seqs = aha_calloc((size_t)e->n_seqs, sizeof *e->seqs);
    e->remaining = aha_calloc((size_t)req->n_prompts, sizeof *e->remaining);
    e->active = aha_calloc((size_t)e->n_seqs, sizeof *e->active);
    AHA_CHECK_ALLOC(e->seqs);
    AHA_CHECK_ALLOC(e->remaining);
    AHA_CHECK_ALLOC(e->active);
    int max_len = 0;
    for (int b = 0; b < req->n_prompts; b++) {
        e->remaining[b] = G;
        uint32_t prompt_id = req->prompt_ids ? req->prompt_ids[b] : (uint32_t)b;
        for (int s = 0; s < G; s++) {
            Sequence *q = &e->seqs[b * G + s];
            q->prompt = b;
            q->sample = s;
            q->slot = b * G + s;
            q->prompt_len = req->prompt_lens[b];
            q->max_new = req->params.max_new_tokens;
            if (context > 0 && q->prompt_len + q->max_new > context)
                q->max_new = context - q->prompt_len;
            q->stream = aha_rng_stream(prompt_id, (uint32_t)s);
            q->tokens = aha_malloc((size_t)q->max_new * sizeof *q->tokens);
            q->logprobs = aha_malloc((size_t)q->max_new * sizeof *q->logprobs);
            AHA_CHECK_ALLOC(q->tokens);
            AHA_CHECK_ALLOC(q->logprobs);
            if (e->stops.tail_capacity > 0) {
                q->stop_tail = aha_malloc(e->stops.tail_capacity);
                AHA_CHECK_ALLOC(q->stop_tail);
            }
            if (q->prompt_len + q->max_new > max_len) max_len = q->prompt_len + q->max_new;
        }
    }
    AhaBackend *B = e->m->backend;
    AHA_TRY(aha_kv_cache_init(&e->cache, B, cfg->num_layers, e->n_seqs, max_len,
                              cfg->num_kv_heads * cfg->head_dim));
    /* Rows per forward: the whole batch, unless the logits of that many rows would pass
     * 64 MiB (large vocabularies); then decode runs in chunks of rows. */
    int cap = (int)((64u << 20) / sizeof(float) / (size_t)e->vocab);
    if (cap < 16) cap = 16;
    if (cap > 1024) cap = 1024;
    e->max_rows = e->n_seqs < cap ? e->n_seqs : cap;
    int prefill_rows = 0;
    for (int b = 0; b < req->n_prompts; b++) prefill_rows += req->prompt_lens[b];
    if (e->max_rows < prefill_rows) e->max_rows = prefill_rows < cap ? prefill_rows : cap;
    AHA_TRY(aha_cache_forward_init(&e->fw, B, cfg, e->max_rows));
    size_t n = (size_t)e->n_seqs;
    e->logits = B->alloc(B, (size_t)e->max_rows * e->vocab * sizeof(float));
    e->d_draw = B->alloc(B, n * (2 * sizeof(int) + sizeof(float) + 2 * sizeof(uint64_t)));
    e->draw_rows = aha_malloc(n * sizeof(int));
    e->draw_streams = aha_malloc(n * sizeof(uint64_t));
    e->draw_positions = aha_malloc(n * sizeof(uint64_t));
    e->draw_tokens = aha_malloc(n * sizeof(int));
    e->draw_logprobs = aha_malloc(n * sizeof(float));
    if (!e->d_draw || !e->draw_rows || !e->draw_streams || !e->draw_positions ||
        !e->draw_tokens || !e->draw_logprobs)
        return aha_error_prefix("sampler buffers");
    e->row_tokens = aha_malloc((size_t)e->max_rows * sizeof(int));
    e->row_slots = aha_malloc((size_t)e->max_rows * sizeof(int));
    e->row_pos = aha_malloc((size_t)e->max_rows * sizeof(int));
    e->logit_rows = aha_malloc((size_t)e->max_rows * sizeof(int));
    e->logit_seq = aha_malloc((size_t)e->max_rows * sizeof(int));
    if (!e->logits || !e->row_tokens || !e->row_slots || !e->row_pos ||
        !e->logit_rows || !e->logit_seq)
        return aha_error_prefix("sampler buffers");
    return 0;
}


/* Stop rules after a token was appended; emits the group when its last sample stops. */
static int after_token(Engine *e, Sequence *q) {
    const AhaSamplingParams *p = &e->req->params;
    int32_t token = q->tokens[q->n_tokens - 1];
    for (int i = 0; i < p->n_eos_ids && q->stop == AHA_STOP_NONE; i++)
        if (token == p->eos_ids[i]) q->stop = AHA_STOP_EOS;
    if (q->stop == AHA_STOP_NONE && e->stops.n > 0) {
        const AhaTokenText *text = e->opt->token_text;
        const char *bytes;
        size_t len;
        if (text->token_bytes(text->ctx, token, &bytes, &len) != 0)
            return aha_error_prefix("text of sampled token %d", (int)token);
        if (aha_stop_strings_feed(&e->stops, q->stop_tail, &q->stop_tail_len, bytes, len))
            q->stop = AHA_STOP_STRING;
    }
    if (q->stop == AHA_STOP_NONE && q->n_tokens == q->max_new) q->stop = AHA_STOP_LENGTH;
    if (q->stop == AHA_STOP_NONE) return 0;
    if (--e->remaining[q->prompt] > 0) return 0;

    const int G = e->req->group_size;
    AhaRolloutGroup *group = aha_calloc(1, sizeof *group);
    AHA_CHECK_ALLOC(group);
    group->samples = aha_calloc((size_t)G, sizeof *group->samples);
    if (!group->samples) {
        free(group);
        return aha_error_prefix("a finished group");
    }
    group->prompt_index = q->prompt;
    group->n_samples = G;
    for (int s = 0; s < G; s++) {
        Sequence *member = &e->seqs[q->prompt * G + s];
        group->samples[s] = (AhaCompletion){member->tokens, member->logprobs, member->n_tokens,
                                            member->stop};
        member->tokens = NULL;
        member->logprobs = NULL;
    }
    if (e->sink(e->sink_ctx, group) != 0) return aha_error_prefix("the consumer of finished groups");
    return 0;
}

/* Samples one token for every sequence in seq_of_row [n] from logits rows [n] on the
 * backend (the token of sequence q at its step t from the Philox block (seed, q->stream, t);
 * its log-prob from the trainer's own kernel, on the same logits), then applies the stop
 * rules in sequence order. */
static int sample_rows(Engine *e, const int *seq_of_row, const int *logits_row, int n) {
    const AhaSamplingParams *p = &e->req->params;
    AhaBackend *B = e->m->backend;
    for (int i = 0; i < n; i++) {
        const Sequence *q = &e->seqs[seq_of_row[i]];
        e->draw_rows[i] = logits_row[i];
        e->draw_streams[i] = q->stream;
        e->draw_positions[i] = (uint64_t)q->n_tokens;
    }
    size_t N = (size_t)e->n_seqs;
    uint64_t *d_streams = e->d_draw, *d_positions = d_streams + N;
    int *d_rows = (int *)(d_positions + N), *d_tokens = d_rows + N;
    float *d_logprobs = (float *)(d_tokens + N);
    AHA_TRY(B->upload(B, d_rows, e->draw_rows, sizeof(int) * (size_t)n));
    AHA_TRY(B->upload(B, d_streams, e->draw_streams, sizeof(uint64_t) * (size_t)n));
    AHA_TRY(B->upload(B, d_positions, e->draw_positions, sizeof(uint64_t) * (size_t)n));
    AhaSampleSpec spec = {.temperature = p->temperature, .top_p = p->top_p, .top_k = p->top_k,
                          .seed = p->seed};
    B->sample(B, d_tokens, d_logprobs, e->logits, d_rows, d_streams, d_positions, n, e->vocab,
              &spec);
    AHA_TRY(B->download(B, e->draw_tokens, d_tokens, sizeof(int) * (size_t)n));
    AHA_TRY(B->download(B, e->draw_logprobs, d_logprobs, sizeof(float) * (size_t)n));
    for (int i = 0; i < n; i++) {
        Sequence *q = &e->seqs[seq_of_row[i]];
        q->tokens[q->n_tokens] = e->draw_tokens[i];
        q->logprobs[q->n_tokens] = e->draw_logprobs[i];
        q->n_tokens++;
    }
    e->stats.generated_tokens += n;
    for (int i = 0; i < n; i++) AHA_TRY(after_token(e, &e->seqs[seq_of_row[i]]));
    return 0;
}

/* Prefills the prompt of every prefill unit: with sharing one per group (in sample 0's
 * slot), without one per sequence. Rows of several prompts share each forward call; a long
 * prompt may span calls. The first token of each sequence is sampled from its unit's last
 * row as soon as that row's logits exist. */
static int prefill(Engine *e, int share) {
    const AhaRolloutRequest *req = e->req;
    const int G = req->group_size;
    const int n_units = share ? req->n_prompts : e->n_seqs;
    int *seq_buf = aha_malloc((size_t)e->max_rows * G * sizeof(int));
    int *row_buf = aha_malloc((size_t)e->max_rows * G * sizeof(int));
    if (!seq_buf || !row_buf) {
        free(seq_buf);
        free(row_buf);
        return aha_error_prefix("prefill");
    }
    int unit = 0, next_pos = 0, status = 0;
    while (unit < n_units && status == 0) {
        int n = 0, n_logits = 0;
        while (n < e->max_rows && unit < n_units) {
            int first_seq = share ? unit * G : unit;
            const Sequence *q = &e->seqs[first_seq];
            const int32_t *prompt = req->prompts[q->prompt];
            e->row_tokens[n] = prompt[next_pos];
            e->row_slots[n] = q->slot;
            e->row_pos[n] = next_pos;
            if (next_pos == q->prompt_len - 1) {
                e->logit_rows[n_logits] = n;
                e->logit_seq[n_logits++] = first_seq;
                unit++;
                next_pos = 0;
            } else {
                next_pos++;
            }
            n++;
        }
        status = aha_cache_forward(e->m, &e->cache, &e->fw, n, e->row_tokens, e->row_slots,
                                   e->row_pos, e->logit_rows, n_logits, e->logits);
        e->stats.prompt_tokens += n;
        if (status != 0) break;
        int n_rows = 0;
        for (int j = 0; j < n_logits; j++) {
            int members = share ? G : 1;
            for (int s = 0; s < members; s++) {
                seq_buf[n_rows] = e->logit_seq[j] + s;
                row_buf[n_rows++] = j;
            }
        }
        status = sample_rows(e, seq_buf, row_buf, n_rows);
    }
    free(seq_buf);
    free(row_buf);
    AHA_TRY(status);
    if (share)
        for (int i = 0; i < e->n_seqs; i++)
            if (e->seqs[i].sample > 0)
                aha_kv_cache_copy_prefix(&e->cache, e->seqs[i].slot, e->seqs[i].slot - e->seqs[i].sample,
                                         e->seqs[i].prompt_len);
    return 0;
}

static int decode(Engine *e, atomic_int *cancel) {
    for (;;) {
        e->n_active = 0;
        for (int i = 0; i < e->n_seqs; i++)
            if (e->seqs[i].stop == AHA_STOP_NONE) e->active[e->n_active++] = i;
        if (e->n_active == 0) return 0;
        if (cancel && atomic_load(cancel)) return 0;
        for (int from = 0; from < e->n_active; from += e->max_rows) {
            int n = e->n_active - from < e->max_rows ? e->n_active - from : e->max_rows;
            for (int i = 0; i < n; i++) {
                const Sequence *q = &e->seqs[e->active[from + i]];
                e->row_tokens[i] = q->tokens[q->n_tokens - 1];
                e->row_slots[i] = q->slot;
                e->row_pos[i] = q->prompt_len + q->n_tokens - 1;
                e->logit_rows[i] = i;
            }
            AHA_TRY(aha_cache_forward(e->m, &e->cache, &e->fw, n, e->row_tokens, e->row_slots,
                                      e->row_pos, e->logit_rows, n, e->logits));
            AHA_TRY(sample_rows(e, e->active + from, e->logit_rows, n));
        }
        e->stats.decode_steps++;
    }
}

AhaBackend *aha_backend_invariant_like(const AhaBackend *like) {
    AhaBackendOptions options = {.device = like->device, .batch_invariant = 1};
    AhaBackend *be = aha_backend_create(like->name, &options);
    if (be == NULL) aha_error_prefix("a batch-invariant context for the sampler");
    return be;
}

int aha_rollout_check(const AhaModel *model, const AhaRolloutRequest *request,
                      const AhaRolloutOptions *options) {
    AHA_REQUIRE(model && request, "rollout request: a model and a request are required");
    if (check_request(model, request, options) != 0) return aha_error_prefix("rollout request");
    return 0;
}

int aha_rollout_run_until(AhaModel *model, const AhaRolloutRequest *request,
                          const AhaRolloutOptions *options, AhaGroupSink sink, void *sink_ctx,
                          AhaRolloutStats *stats, atomic_int *cancel) {
    AhaRolloutOptions defaults;
    aha_rollout_options_default(&defaults);
    if (!options) options = &defaults;
    AHA_REQUIRE(model && request && sink, "aha_rollout_run: model, request and sink are required");
    AHA_TRY(aha_rollout_check(model, request, options));
    int saved_threads = aha_kernels_threads();
    if (options->threads > 0) aha_kernels_set_threads(options->threads);
    /* Decode on a batch-invariant context, so that no completion depends on its batch: the
     * model's own when it is one (the trainer's), else a new one of the same backend. */
    AhaBackend *model_backend = model->backend, *decode_backend = NULL;
    if (!model_backend->batch_invariant) {
        if (!(decode_backend = aha_backend_invariant_like(model_backend))) {
            if (options->threads > 0) aha_kernels_set_threads(saved_threads);
            return -1;
        }
        model->backend = decode_backend;
    }
    Engine e = {.m = model, .req = request, .opt = options, .sink = sink, .sink_ctx = sink_ctx};
    int status = engine_init(&e);
    if (status == 0) {
        double t0 = now_seconds();
        status = prefill(&e, options->share_prefix);
        double t1 = now_seconds();
        e.stats.prefill_seconds = t1 - t0;
        if (status == 0) status = decode(&e, cancel);
        e.stats.decode_seconds = now_seconds() - t1;
    }
    if (stats) *stats = e.stats;
    engine_free(&e);
    if (decode_backend) {
        model->backend = model_backend;
        aha_backend_free(decode_backend);
    }
    if (options->threads > 0) aha_kernels_set_threads(saved_threads);
    return status;
}

int aha_rollout_run(AhaModel *model, const AhaRolloutRequest *request,
                    const AhaRolloutOptions *options, AhaGroupSink sink, void *sink_ctx,
                    AhaRolloutStats *stats) {
    return aha_rollout_run_until(model, request, options, sink, sink_ctx, stats, NULL);
}
