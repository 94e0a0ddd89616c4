#include "aha/pretrain.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aha/dataset.h"
#include "aha/error.h"
#include "aha/grpo.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/optim.h"
#include "aha/tokenizer.h"

/* The tokenized corpus: document d is tokens[start[d] .. start[d+1]). */
typedef struct {
    int32_t *tokens;  /* [start[n_docs]] */
    size_t *start;    /* [n_docs+1] */
    size_t n_docs;
    size_t capacity_docs;
    size_t truncated; /* documents cut to seq_len tokens */
} Corpus;

static void corpus_free(Corpus *c) {
    free(c->tokens);
    free(c->start);
    memset(c, 0, sizeof *c);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int corpus_add(Corpus *c, const AhaTokenIds *ids, int seq_len) {
    size_t n = ids->count < (size_t)seq_len ? ids->count : (size_t)seq_len;
    if (n < ids->count) c->truncated++;
    if (c->n_docs + 2 > c->capacity_docs) {
        size_t cap = c->capacity_docs ? 2 * c->capacity_docs : 1024;
        size_t *grown = aha_realloc(c->start, cap * sizeof *grown);
        AHA_CHECK_ALLOC(grown);
        c->start = grown;
        c->capacity_docs = cap;
        if (c->n_docs == 0) c->start[0] = 0;
    }
    size_t used = c->start[c->n_docs];
    int32_t *grown = aha_realloc(c->tokens, (used + n) * sizeof *grown);
    AHA_CHECK_ALLOC(grown);
    c->tokens = grown;
    memcpy(c->tokens + used, ids->ids, n * sizeof *grown);
    c->start[++c->n_docs] = used + n;
    return 0;
}

/* Byte-level BPE drops characters its vocabulary lacks; training on such silently changed
 * text would teach the wrong thing, so a document must decode back to itself. */
static int check_round_trip(const AhaTokenizer *tok, const AhaTokenIds *ids, const char *text,
                            size_t len) {
    size_t back_len = 0;
    char *back = aha_tokenizer_decode(tok, ids->ids, ids->count, 0, &back_len);
    AHA_CHECK_ALLOC(back);
    int same = back_len == len && memcmp(back, text, len) == 0;
    free(back);
    AHA_REQUIRE(same, "the tokenizer cannot represent this text (a character is missing from "
                      "its vocabulary)");
    return 0;
}

static int corpus_load(Corpus *c, const char *path, const AhaTokenizer *tok, int seq_len) {
    FILE *f = fopen(path, "r");
    AHA_CHECK_SYS(f != NULL, "%s", path);
    int32_t eos = aha_tokenizer_eos_id(tok);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    int line_no = 0, rc = 0;
    AhaTokenIds ids = {0};
    while ((len = getline(&line, &line_cap, f)) != -1) {
        line_no++;
        size_t blank = strspn(line, " \t\r\n");
        if ((ssize_t)blank == len) continue;
        json_error_t jerr;
        json_t *row = json_loadb(line, (size_t)len, 0, &jerr);
        if (!row) {
            rc = aha_errorf("%s:%d: not JSON: %s", path, line_no, jerr.text);
            break;
        }
        json_t *text = json_is_object(row) ? json_object_get(row, "text") : NULL;
        if (!json_is_string(text)) {
            json_decref(row);
            rc = aha_errorf("%s:%d: expected an object with a string \"text\"", path, line_no);
            break;
        }
        ids.count = 0;
        rc = aha_tokenizer_encode(tok, json_string_value(text), json_string_length(text),
                                  AHA_TOKENIZE_PARSE_SPECIAL, &ids);
        if (rc == 0) rc = check_round_trip(tok, &ids, json_string_value(text), json_string_length(text));
        json_decref(row);
        if (rc != 0) {
            aha_error_prefix("%s:%d", path, line_no);
            break;
        }
        if (eos >= 0 && (ids.count == 0 || ids.ids[ids.count - 1] != eos) &&
            aha_token_ids_push(&ids, eos) != 0) {
            rc = -1;
            break;
        }
        if (ids.count < 2) continue; /* nothing to predict */
        if ((rc = corpus_add(c, &ids, seq_len)) != 0) break;
    }
    if (rc == 0 && ferror(f)) rc = aha_error_errno("%s: read error", path);
    aha_token_ids_free(&ids);
    free(line);
    fclose(f);
    if (rc == 0 && c->n_docs == 0) rc = aha_errorf("%s: no documents with text", path);
    return rc;
}

static AhaModel *load_model(const AhaRecipe *r, AhaModelSource *source) {
    memset(source, 0, sizeof *source);
    if (r->model.init == AHA_INIT_PRETRAINED) return aha_model_load_dir(r->model.path, source);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", r->model.path);
    AhaModelConfig cfg;
    if (aha_model_config_load(&cfg, path) != 0) return NULL;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (!m) return NULL;
    float std = cfg.initializer_range > 0 ? cfg.initializer_range : 0.02f;
    if (aha_model_init_random(m, (uint64_t)r->run.seed, std) != 0) {
        aha_model_free(m);
        return NULL;
    }
    snprintf(source->dir, sizeof source->dir, "%s", r->model.path);
    source->dtype = AHA_DTYPE_F32;
    source->layout = AHA_EXPERT_LAYOUT_PER_EXPERT;
    return m;
}

typedef struct {
    AhaModel *model;
    AhaTokenizer *tok;
    Corpus corpus;
    AhaAdamW opt;
    size_t *order;   /* [n_docs] this epoch's document order */
    int *targets;    /* [budget] */
    float *logprob;  /* [budget] */
    float *dlogprob; /* [budget] */
    int *seq_start;  /* [budget+1] */
    int *tokens;     /* [budget] */
} Pretrain;

static void pretrain_free(Pretrain *p) {
    aha_adamw_free(&p->opt); /* first: its moments live on the model's backend */
    aha_model_free(p->model);
    aha_tokenizer_free(p->tok);
    corpus_free(&p->corpus);
    free(p->order);
    free(p->targets);
    free(p->logprob);
    free(p->dlogprob);
    free(p->seq_start);
    free(p->tokens);
}

static int save_model(const AhaRecipe *r, const AhaModel *m, const AhaModelSource *source) {
    AhaDtype dtype = r->model.save_dtype == AHA_SAVE_DTYPE_BF16  ? AHA_DTYPE_BF16
                     : r->model.save_dtype == AHA_SAVE_DTYPE_F32 ? AHA_DTYPE_F32
                                                                 : AHA_DTYPE_AS_SOURCE;
    if (aha_model_save_dir(m, r->run.output_dir, source, dtype) != 0)
        return aha_error_prefix("saving the model to %s", r->run.output_dir);
    return 0;
}

static int pretrain_steps(const AhaRecipe *r, Pretrain *p, FILE *progress) {
    const AhaPretrainSection *pt = &r->pretrain;
    size_t budget = (size_t)pt->batch_seqs * (size_t)pt->seq_len;
    size_t n_docs = p->corpus.n_docs;
    size_t cursor = 0;
    uint64_t epoch = 0;
    aha_data_epoch_order((uint64_t)r->run.seed, epoch, n_docs, p->order);
    AhaModel *m = p->model;
    AHA_TRY(aha_model_alloc_grads(m));
    double start_time = now_seconds(), window_time = start_time, window_loss = 0;
    size_t window_tokens = 0;
    int window_steps = 0;
    for (int step = 0; step < pt->steps; step++) {
        /* Whole documents until the next one would overflow the token budget. */
        int n_seqs = 0;
        size_t used = 0;
        p->seq_start[0] = 0;
        for (;;) {
            if (cursor == n_docs) {
                cursor = 0;
                aha_data_epoch_order((uint64_t)r->run.seed, ++epoch, n_docs, p->order);
            }
            size_t d = p->order[cursor];
            size_t len = p->corpus.start[d + 1] - p->corpus.start[d];
            if (used + len > budget && n_seqs > 0) break;
            for (size_t t = 0; t < len; t++) {
                p->tokens[used + t] = p->corpus.tokens[p->corpus.start[d] + t];
                p->targets[used + t] = t + 1 < len ? p->corpus.tokens[p->corpus.start[d] + t + 1] : -1;
            }
            used += len;
            p->seq_start[++n_seqs] = (int)used;
            cursor++;
        }
        AhaBatch batch = {.n_seqs = n_seqs, .seq_start = p->seq_start, .tokens = p->tokens};
        AHA_TRY(aha_model_forward(m, &batch));
        AHA_TRY(aha_model_logprobs(m, p->targets, 1.0f, p->logprob, NULL));
        size_t scored = used - (size_t)n_seqs;
        double loss = 0;
        for (size_t t = 0; t < used; t++) {
            if (p->targets[t] < 0) {
                p->dlogprob[t] = 0;
                continue;
            }
            loss -= p->logprob[t];
            p->dlogprob[t] = -1.0f / (float)scored;
        }
        loss /= (double)scored;
        if (!isfinite(loss)) return aha_errorf("step %d: the loss is %g", step + 1, loss);
        aha_model_zero_grads(m);
        AHA_TRY(aha_model_backward(m, p->dlogprob, (float)r->algorithm.router_aux_coef));
        float norm = aha_clip_grad_norm(m->backend, m->grads.memory, m->grads.count,
                                        (float)r->optim.grad_clip);
        if (!isfinite(norm)) return aha_errorf("step %d: the gradient norm is %g", step + 1, norm);
        double lr = aha_lr_schedule(r->optim.lr, r->optim.warmup_steps,
                                    r->optim.schedule == AHA_SCHEDULE_COSINE, r->optim.min_lr_ratio,
                                    step, pt->steps);
        AHA_TRY(aha_adamw_step(&p->opt, m->params.memory, m->grads.memory, (float)lr));
        window_loss += loss;
        window_tokens += used;
        window_steps++;
        if (progress && ((step + 1) % 50 == 0 || step + 1 == pt->steps || step == 0)) {
            double t = now_seconds();
            fprintf(progress,
                    "pretrain step %5d/%d  loss %.4f  lr %.2e  grad_norm %.3f  tokens/s %.0f  "
                    "elapsed %.1fs\n",
                    step + 1, pt->steps, window_loss / window_steps, lr, norm,
                    (double)window_tokens / (t - window_time + 1e-9), t - start_time);
            fflush(progress);
            window_time = t;
            window_loss = 0;
            window_tokens = 0;
            window_steps = 0;
        }
    }
    return 0;
}

int aha_pretrain_run(const AhaRecipe *r, FILE *progress) {
    const AhaPretrainSection *pt = &r->pretrain;
    AHA_REQUIRE(pt->corpus && pt->corpus[0], "pretrain.corpus: a corpus file is required");
    AHA_REQUIRE(pt->seq_len >= 2 && pt->batch_seqs >= 1 && pt->steps >= 1,
                "pretrain: seq_len >= 2, batch_seqs >= 1 and steps >= 1 are required");
    Pretrain p = {0};
    AhaModelSource source;
    int rc = -1;
    size_t budget = (size_t)pt->batch_seqs * (size_t)pt->seq_len;
    if (!(p.model = load_model(r, &source))) {
        aha_error_prefix("model.path %s", r->model.path);
        goto done;
    }
    if (!(p.tok = aha_tokenizer_load(r->model.path))) {
        aha_error_prefix("model.path %s", r->model.path);
        goto done;
    }
    if (aha_tokenizer_vocab_size(p.tok) > p.model->cfg.vocab_size) {
        aha_errorf("model.path %s: the tokenizer has %d tokens but config.json vocab_size is %d",
                   r->model.path, aha_tokenizer_vocab_size(p.tok), p.model->cfg.vocab_size);
        goto done;
    }
    if (corpus_load(&p.corpus, pt->corpus, p.tok, pt->seq_len) != 0) {
        aha_error_prefix("pretrain.corpus");
        goto done;
    }
    AhaAdamWConfig ocfg = {(float)r->optim.beta1, (float)r->optim.beta2, (float)r->optim.eps,
                           (float)r->optim.weight_decay};
    if (aha_adamw_init(&p.opt, p.model->backend, p.model->params.count, &ocfg) != 0) goto done;
    p.order = aha_calloc(p.corpus.n_docs, sizeof *p.order);
    p.targets = aha_calloc(budget, sizeof *p.targets);
    p.logprob = aha_calloc(budget, sizeof *p.logprob);
    p.dlogprob = aha_calloc(budget, sizeof *p.dlogprob);
    p.seq_start = aha_calloc(budget + 1, sizeof *p.seq_start);
    p.tokens = aha_calloc(budget, sizeof *p.tokens);
    if (!p.order || !p.targets || !p.logprob || !p.dlogprob || !p.seq_start || !p.tokens) goto done;
    if (progress) {
        fprintf(progress,
                "pretrain: %zu documents (%zu tokens, %zu cut to %d), %zu parameters, %d steps of "
                "<= %zu tokens\n",
                p.corpus.n_docs, p.corpus.start[p.corpus.n_docs], p.corpus.truncated, pt->seq_len,
                p.model->params.count, pt->steps, budget);
    }
    if (pretrain_steps(r, &p, progress) != 0) goto done;
    rc = save_model(r, p.model, &source);
    if (rc == 0 && progress) fprintf(progress, "pretrain: saved %s\n", r->run.output_dir);
done:
    pretrain_free(&p);
    return rc;
}
