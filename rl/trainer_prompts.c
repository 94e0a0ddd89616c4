/* Prompts for the loop and eval: template, tokenize once per row, keep. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aha/error.h"
#include "rl/trainer_internal.h"

double trainer_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int prompt_cache_init(PromptCache *c, const AhaDataset *ds, const AhaTokenizer *tok,
                      AhaTemplate template_name, int open_think, const char *system_prompt,
                      int max_tokens) {
    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->tok = tok;
    c->template_name = template_name;
    c->open_think = open_think;
    c->system_prompt = system_prompt && system_prompt[0] ? system_prompt : NULL;
    c->max_tokens = max_tokens;
    c->n = aha_dataset_size(ds);
    c->text = aha_calloc(c->n, sizeof *c->text);
    c->ids = aha_calloc(c->n, sizeof *c->ids);
    c->len = aha_calloc(c->n, sizeof *c->len);
    if (!c->text || !c->ids || !c->len) {
        prompt_cache_free(c);
        return -1;
    }
    return 0;
}

int prompt_cache_get(PromptCache *c, size_t i) {
    if (c->len[i] != 0) return c->len[i];
    const AhaExample *ex = aha_dataset_get(c->ds, i);
    char *text = aha_template_render(c->template_name, ex->question, c->system_prompt, c->open_think);
    if (!text) {
        aha_error_prefix("data row at line %lld", (long long)ex->line);
        return -2;
    }
    AhaTokenIds ids = {0};
    int32_t bos = aha_tokenizer_bos_id(c->tok);
    if ((bos >= 0 && aha_token_ids_push(&ids, bos) != 0) ||
        aha_tokenizer_encode(c->tok, text, strlen(text), AHA_TOKENIZE_PARSE_SPECIAL, &ids) != 0) {
        aha_error_prefix("data row at line %lld: tokenizing the prompt", (long long)ex->line);
        aha_token_ids_free(&ids);
        free(text);
        return -2;
    }
    if (ids.count == 0 || ids.count > (size_t)c->max_tokens) {
        aha_token_ids_free(&ids);
        free(text);
        c->len[i] = -1;
        return -1;
    }
    c->text[i] = text;
    c->ids[i] = ids.ids;
    c->len[i] = (int)ids.count;
    return c->len[i];
}

void prompt_cache_free(PromptCache *c) {
    for (size_t i = 0; i < c->n; i++) {
        if (c->text) free(c->text[i]);
        if (c->ids) free(c->ids[i]);
    }
    free(c->text);
    free(c->ids);
    free(c->len);
    memset(c, 0, sizeof *c);
}

int trainer_eos_ids(const AhaModel *m, const AhaTokenizer *tok, int32_t *ids, int cap) {
    int n = 0;
    for (int i = 0; i < m->cfg.num_eos && n < cap; i++) ids[n++] = m->cfg.eos_token_ids[i];
    int32_t eos = aha_tokenizer_eos_id(tok);
    int seen = 0;
    for (int i = 0; i < n; i++) seen |= ids[i] == eos;
    if (eos >= 0 && !seen && n < cap) ids[n++] = eos;
    return n;
}

static int token_bytes(void *ctx, int32_t token, const char **bytes, size_t *len) {
    *bytes = aha_tokenizer_token_bytes(ctx, token, len);
    return 0;
}

AhaTokenText trainer_token_text(const AhaTokenizer *tok) {
    return (AhaTokenText){.token_bytes = token_bytes, .ctx = (void *)tok};
}
