/* Evaluation: greedy accuracy and mean@k with the math (or countdown) reward, in chunks of
 * prompts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "rl/trainer_internal.h"

#define EVAL_CHUNK 64 /* prompts per sampler request: bounds the KV cache */

void aha_eval_config_from_recipe(AhaEvalConfig *cfg, const AhaRecipe *r) {
    *cfg = (AhaEvalConfig){.template_name = r->data.template_name,
                           .open_think = r->data.open_think,
                           .system_prompt = r->data.system_prompt,
                           .max_prompt_tokens = r->data.max_prompt_tokens,
                           .max_new_tokens = r->rollout.max_new_tokens,
                           .temperature = r->rollout.temperature > 0 ? (float)r->rollout.temperature : 1.0f,
                           .top_p = (float)r->rollout.top_p,
                           .top_k = r->rollout.top_k,
                           .stop = (const char *const *)r->rollout.stop.items,
                           .n_stop = r->rollout.stop.count,
                           .k = r->run.eval_k,
                           .limit = r->data.eval_limit,
                           .seed = (uint64_t)r->run.seed,
                           .threads = r->rollout.threads,
                           .share_prefix = r->rollout.share_prefix,
                           .extract = AHA_REWARD_EXTRACT_AUTO};
    int has_math = 0, has_countdown = 0;
    for (int i = 0; i < r->n_rewards; i++) {
        if (r->rewards[i].type == AHA_REWARD_MATH && !has_math) {
            cfg->extract = (AhaRewardExtract)r->rewards[i].extract;
            has_math = 1;
        }
        if (r->rewards[i].type == AHA_REWARD_COUNTDOWN) has_countdown = 1;
    }
    cfg->reward = has_countdown && !has_math ? AHA_REWARD_COUNTDOWN : AHA_REWARD_MATH;
}

typedef struct {
    const AhaTokenizer *tok;
    PromptCache *prompts;
    AhaRewardSet *math;
    const size_t *rows;  /* [n] data set row of each prompt of the request */
    int n;
    double correct;      /* summed scores */
    double tokens;
    long samples;
} EvalSink;

static int score(void *arg, AhaRolloutGroup *group) {
    EvalSink *e = arg;
    int rc = 0;
    if (group->prompt_index < 0 || group->prompt_index >= e->n)
        rc = aha_errorf("eval: a group for prompt %d of %d", group->prompt_index, e->n);
    size_t row = rc == 0 ? e->rows[group->prompt_index] : 0;
    for (int s = 0; s < group->n_samples && rc == 0; s++) {
        const AhaCompletion *cp = &group->samples[s];
        size_t text_len = 0;
        char *text = aha_tokenizer_decode(e->tok, cp->tokens, (size_t)cp->n_tokens, 1, &text_len);
        if (!text) {
            rc = aha_error_prefix("eval: decoding");
            break;
        }
        AhaRewardSample sample = {.prompt = e->prompts->text[row], .completion = text, .completion_len = text_len,
                                  .row_json = aha_dataset_get(e->prompts->ds, row)->json,
                                  .completion_tokens = cp->n_tokens};
        AhaRewardValue v;
        rc = aha_reward_set_score_one(e->math, 0, &sample, &v);
        free(text);
        if (rc == 0 && v.status == AHA_REWARD_SCORED) e->correct += v.score;
        e->tokens += cp->n_tokens;
        e->samples++;
    }
    aha_rollout_group_free(group);
    return rc;
}

static int eval_pass(AhaModel *m, const AhaTokenizer *tok, PromptCache *pc, AhaRewardSet *math,
                     const size_t *rows, int n, const AhaEvalConfig *cfg, int greedy, EvalSink *total) {
    int32_t eos[AHA_MAX_EOS + 1];
    int n_eos = trainer_eos_ids(m, tok, eos, AHA_MAX_EOS + 1);
    AhaTokenText text = trainer_token_text(tok);
    AhaRolloutOptions opts;
    aha_rollout_options_default(&opts);
    opts.share_prefix = cfg->share_prefix;
    opts.threads = cfg->threads;
    opts.token_text = &text;
    for (int a = 0; a < n; a += EVAL_CHUNK) {
        int k = n - a < EVAL_CHUNK ? n - a : EVAL_CHUNK;
        const int32_t *prompts[EVAL_CHUNK];
        int lens[EVAL_CHUNK];
        uint32_t ids[EVAL_CHUNK];
        for (int i = 0; i < k; i++) {
            prompts[i] = pc->ids[rows[a + i]];
            lens[i] = pc->len[rows[a + i]];
            ids[i] = (uint32_t)(a + i);
        }
        AhaRolloutRequest req = {.n_prompts = k, .prompts = prompts, .prompt_lens = lens, .prompt_ids = ids,
                                 .group_size = greedy ? 1 : cfg->k};
        aha_sampling_params_default(&req.params);
        req.params.temperature = greedy ? 0.0f : cfg->temperature;
        req.params.top_p = greedy ? 1.0f : cfg->top_p;
        req.params.top_k = greedy ? 0 : cfg->top_k;
        req.params.max_new_tokens = cfg->max_new_tokens;
        req.params.eos_ids = eos;
        req.params.n_eos_ids = n_eos;
        req.params.stop_strings = cfg->stop;
        req.params.n_stop_strings = cfg->n_stop;
        req.params.seed = cfg->seed;
        EvalSink sink = {.tok = tok, .prompts = pc, .math = math, .rows = rows + a, .n = k};
        AHA_TRY(rollout_each_group(m, &req, &opts, score, &sink, NULL));
        total->correct += sink.correct;
        total->tokens += sink.tokens;
        total->samples += sink.samples;
    }
    return 0;
}

int eval_dataset(AhaModel *m, const AhaTokenizer *tok, const AhaDataset *ds, const AhaEvalConfig *cfg,
                 AhaEvalResult *out) {
    AHA_REQUIRE(cfg->k >= 0, "eval: k must be >= 0, got %d", cfg->k);
    AHA_REQUIRE(cfg->max_new_tokens >= 1, "eval: max_new_tokens must be >= 1, got %d", cfg->max_new_tokens);
    AHA_REQUIRE(cfg->reward == AHA_REWARD_MATH || cfg->reward == AHA_REWARD_COUNTDOWN,
                "eval: the judge must be the math or the countdown reward, got %s",
                aha_reward_type_name(cfg->reward));
    double t0 = trainer_now();
    memset(out, 0, sizeof *out);
    out->k = cfg->k;
    PromptCache pc;
    AHA_TRY(prompt_cache_init(&pc, ds, tok, cfg->template_name, cfg->open_think, cfg->system_prompt,
                              cfg->max_prompt_tokens > 0 ? cfg->max_prompt_tokens : 1 << 30));
    size_t n_rows = aha_dataset_size(ds);
    if (cfg->limit > 0 && (size_t)cfg->limit < n_rows) n_rows = (size_t)cfg->limit;
    size_t *rows = aha_malloc((n_rows > 0 ? n_rows : 1) * sizeof *rows);
    AhaRewardConfig mc;
    aha_reward_config_default(&mc, cfg->reward);
    mc.extract = cfg->extract;
    AhaRewardSet *math = rows ? aha_reward_set_create(&mc, 1, 1) : NULL;
    int rc = math ? 0 : -1, n = 0;
    for (size_t i = 0; i < n_rows && rc == 0; i++) {
        int len = prompt_cache_get(&pc, i);
        if (len == -2) rc = -1;
        else if (len < 0) out->n_skipped++;
        else rows[n++] = i;
    }
    if (rc == 0 && n == 0) rc = aha_errorf("eval: no prompt to evaluate (%d longer than %d tokens)",
                                           out->n_skipped, cfg->max_prompt_tokens);
    EvalSink greedy = {0}, sampled = {0};
    if (rc == 0) rc = eval_pass(m, tok, &pc, math, rows, n, cfg, 1, &greedy);
    if (rc == 0 && cfg->k > 0) rc = eval_pass(m, tok, &pc, math, rows, n, cfg, 0, &sampled);
    if (rc == 0) {
        out->n_prompts = n;
        out->accuracy = greedy.correct / n;
        out->greedy_len = greedy.tokens / n;
        out->mean_at_k = cfg->k > 0 ? sampled.correct / (double)sampled.samples : NAN;
    }
    if (math) aha_reward_set_free(math);
    free(rows);
    prompt_cache_free(&pc);
    out->seconds = trainer_now() - t0;
    return rc;
}

int aha_eval_file(AhaModel *m, const AhaTokenizer *tok, const char *path, const char *question_field,
                  const char *answer_field, const AhaEvalConfig *cfg, AhaEvalResult *out) {
    AhaDatasetFields fields = {.question = question_field, .answer = answer_field,
                               .final_answer = cfg->reward == AHA_REWARD_MATH && !cfg->bare_answers};
    AhaDataset *ds = aha_dataset_load(path, &fields);
    if (!ds) return -1;
    int rc = eval_dataset(m, tok, ds, cfg, out);
    aha_dataset_free(ds);
    return rc;
}
