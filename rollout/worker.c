/* The rollout worker: the sampler on its own thread, handing finished groups to the
 * consumer (the reward stage) through a queue as they complete. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/sampler.h"
#include "rollout/engine.h"

typedef struct QueueItem {
    AhaRolloutGroup *group;
    struct QueueItem *next;
} QueueItem;

struct AhaRolloutWorker {
    AhaModel *model;
    /* deep copies of the caller's request and options */
    AhaRolloutRequest request;
    AhaRolloutOptions options;
    AhaTokenText token_text;
    int32_t **prompts;       /* [B] -> [prompt_lens[b]] */
    int *prompt_lens;        /* [B] */
    uint32_t *prompt_ids;    /* [B] or NULL */
    int32_t *eos_ids;        /* [n_eos_ids] */
    char **stop_strings;     /* [n_stop_strings] */

    pthread_t thread;
    int thread_started;
    atomic_int cancel;
    pthread_mutex_t lock;
    pthread_cond_t ready;    /* a group arrived, or the sampler ended */
    QueueItem *head, *tail;  /* finished groups not yet taken */
    int done;                /* the sampler returned */
    int failed;              /* ... with an error: message below */
    char *error;
    AhaRolloutStats stats;
};

static int enqueue(void *ctx, AhaRolloutGroup *group) {
    AhaRolloutWorker *w = ctx;
    QueueItem *item = aha_malloc(sizeof *item);
    if (!item) {
        aha_rollout_group_free(group);
        return aha_error_prefix("rollout queue");
    }
    item->group = group;
    item->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->tail) w->tail->next = item;
    else w->head = item;
    w->tail = item;
    pthread_cond_signal(&w->ready);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

static void *sampler_thread(void *arg) {
    AhaRolloutWorker *w = arg;
    AhaRolloutStats stats;
    memset(&stats, 0, sizeof stats);
    int status = aha_rollout_run_until(w->model, &w->request, &w->options, enqueue, w, &stats,
                                       &w->cancel);
    char *error = status != 0 ? strdup(aha_error_message()) : NULL;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->failed = status != 0;
    w->error = error;
    w->stats = stats;
    pthread_cond_broadcast(&w->ready);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void worker_free(AhaRolloutWorker *w) {
    for (QueueItem *item = w->head; item;) {
        QueueItem *next = item->next;
        aha_rollout_group_free(item->group);
        free(item);
        item = next;
    }
    if (w->prompts)
        for (int b = 0; b < w->request.n_prompts; b++) free(w->prompts[b]);
    free(w->prompts);
    free(w->prompt_lens);
    free(w->prompt_ids);
    free(w->eos_ids);
    if (w->stop_strings)
        for (int i = 0; i < w->request.params.n_stop_strings; i++) free(w->stop_strings[i]);
    free(w->stop_strings);
    free(w->error);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->ready);
    free(w);
}

static int copy_request(AhaRolloutWorker *w, const AhaRolloutRequest *req,
                        const AhaRolloutOptions *opt) {
    const int B = req->n_prompts;
    const AhaSamplingParams *p = &req->params;
    w->request = *req;
    if (opt) w->options = *opt;
    else aha_rollout_options_default(&w->options);
    if (w->options.token_text) {
        w->token_text = *w->options.token_text;
        w->options.token_text = &w->token_text;
    }
    /* Shapes are checked again, fully, by the engine; here only what copying needs. */
    AHA_REQUIRE(B >= 1 && req->prompts && req->prompt_lens,
                "rollout request: expected at least 1 prompt with its token arrays");
    AHA_REQUIRE(p->n_eos_ids >= 0 && (p->n_eos_ids == 0 || p->eos_ids) && p->n_stop_strings >= 0 &&
                    (p->n_stop_strings == 0 || p->stop_strings),
                "rollout request: eos_ids / stop_strings counts without arrays");
    w->prompts = aha_calloc((size_t)B, sizeof *w->prompts);
    w->prompt_lens = aha_calloc((size_t)B, sizeof *w->prompt_lens);
    AHA_CHECK_ALLOC(w->prompts);
    AHA_CHECK_ALLOC(w->prompt_lens);
    for (int b = 0; b < B; b++) {
        int len = req->prompt_lens[b];
        w->prompt_lens[b] = len;
        if (len <= 0 || !req->prompts[b]) continue; /* the engine reports it */
        w->prompts[b] = aha_malloc((size_t)len * sizeof(int32_t));
        AHA_CHECK_ALLOC(w->prompts[b]);
        memcpy(w->prompts[b], req->prompts[b], (size_t)len * sizeof(int32_t));
    }
    if (req->prompt_ids) {
        w->prompt_ids = aha_malloc((size_t)B * sizeof *w->prompt_ids);
        AHA_CHECK_ALLOC(w->prompt_ids);
        memcpy(w->prompt_ids, req->prompt_ids, (size_t)B * sizeof *w->prompt_ids);
    }
    if (p->n_eos_ids > 0) {
        w->eos_ids = aha_malloc((size_t)p->n_eos_ids * sizeof *w->eos_ids);
        AHA_CHECK_ALLOC(w->eos_ids);
        memcpy(w->eos_ids, p->eos_ids, (size_t)p->n_eos_ids * sizeof *w->eos_ids);
    }
    if (p->n_stop_strings > 0) {
        w->stop_strings = aha_calloc((size_t)p->n_stop_strings, sizeof *w->stop_strings);
        AHA_CHECK_ALLOC(w->stop_strings);
        for (int i = 0; i < p->n_stop_strings; i++) {
            w->stop_strings[i] = aha_strdup(p->stop_strings[i] ? p->stop_strings[i] : "");
            AHA_CHECK_ALLOC(w->stop_strings[i]);
        }
    }
    w->request.prompts = (const int32_t *const *)w->prompts;
    w->request.prompt_lens = w->prompt_lens;
    w->request.prompt_ids = w->prompt_ids;
    w->request.params.eos_ids = w->eos_ids;
    w->request.params.stop_strings = (const char *const *)w->stop_strings;
    return 0;
}

AhaRolloutWorker *aha_rollout_start(AhaModel *model, const AhaRolloutRequest *request,
                                    const AhaRolloutOptions *options) {
    if (!model || !request) {
        aha_errorf("aha_rollout_start: model and request are required");
        return NULL;
    }
    if (aha_rollout_check(model, request, options) != 0) return NULL;
    AhaRolloutWorker *w = aha_calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);
    atomic_init(&w->cancel, 0);
    w->model = model;
    if (copy_request(w, request, options) != 0) {
        worker_free(w);
        return NULL;
    }
    int rc = pthread_create(&w->thread, NULL, sampler_thread, w);
    if (rc != 0) {
        aha_errorf("rollout worker: cannot start the sampler thread: %s", strerror(rc));
        worker_free(w);
        return NULL;
    }
    w->thread_started = 1;
    return w;
}

int aha_rollout_next(AhaRolloutWorker *w, AhaRolloutGroup **group) {
    *group = NULL;
    pthread_mutex_lock(&w->lock);
    while (!w->head && !w->done) pthread_cond_wait(&w->ready, &w->lock);
    QueueItem *item = w->head;
    if (item) {
        w->head = item->next;
        if (!w->head) w->tail = NULL;
    }
    int failed = w->failed;
    pthread_mutex_unlock(&w->lock);
    if (item) {
        *group = item->group;
        free(item);
        return 1;
    }
    if (failed) return aha_errorf("%s", w->error ? w->error : "the sampler failed");
    return 0;
}

int aha_rollout_join(AhaRolloutWorker *w, AhaRolloutStats *stats) {
    if (!w) return 0;
    atomic_store(&w->cancel, 1);
    if (w->thread_started) pthread_join(w->thread, NULL);
    int failed = w->failed;
    if (stats) *stats = w->stats;
    if (failed) aha_errorf("%s", w->error ? w->error : "the sampler failed");
    worker_free(w);
    return failed ? -1 : 0;
}
