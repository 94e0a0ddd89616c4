/* The recipe schema: one row per key. Parsing, validation, --set, the YAML dump and the
 * docs check all read these rows. To add a key, add a field to its section in
 * include/aha/recipe.h, a row here, and the row the docs test prints into docs/recipes.md.
 * Rows of one section stay together: the dump writes a section header when the prefix
 * changes. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "aha/error.h"
#include "aha/recipe.h"

#define F(field) offsetof(AhaRecipe, field)
#define R(field) offsetof(AhaRewardSpec, field)
#define BIG AHA_RECIPE_NO_MAX
#define RT(t) (1u << AHA_REWARD_##t)

/* Every enum field is stored through an int pointer. */
_Static_assert(sizeof(AhaModelInit) == sizeof(int) && sizeof(AhaSaveDtype) == sizeof(int) &&
                   sizeof(AhaTemplate) == sizeof(int) && sizeof(AhaAdvantage) == sizeof(int) &&
                   sizeof(AhaRewardCombine) == sizeof(int) && sizeof(AhaRatioLevel) == sizeof(int) &&
                   sizeof(AhaLossAgg) == sizeof(int) && sizeof(AhaKlEstimator) == sizeof(int) &&
                   sizeof(AhaSchedule) == sizeof(int) && sizeof(AhaCommBackend) == sizeof(int) &&
                   sizeof(AhaRewardType) == sizeof(int) && sizeof(AhaRewardExtract) == sizeof(int) &&
                   sizeof(AhaFormatMatch) == sizeof(int) && sizeof(AhaCodeMode) == sizeof(int),
               "recipe enums are stored as int");
/* The YAML names of these index aha/reward_types.h's enums. */
_Static_assert(AHA_REWARD_PLUGIN == 5 && AHA_REWARD_COUNTDOWN == 6 && AHA_CODE_ALL == 1,
               "reward enums changed order: update reward_keys");

static const AhaRecipeKey recipe_keys[] = {
    /* model */
    {"model.path", AHA_KEY_PATH, F(model.path), NULL, 0, 0, AHA_KEY_DIR | AHA_KEY_REQUIRED, NULL, 0,
     "Hugging Face model directory holding config.json, safetensors weights and tokenizer.json"},
    {"model.init", AHA_KEY_ENUM, F(model.init), "pretrained", 0, 0, 0, "pretrained|random", 0,
     "pretrained loads the weights; random makes fresh weights from model.path/config.json"},
    {"model.save_dtype", AHA_KEY_ENUM, F(model.save_dtype), "auto", 0, 0, 0, "auto|f32|bf16", 0,
     "dtype of saved checkpoints; auto keeps the dtype the model was loaded with"},
    /* data */
    {"data.train", AHA_KEY_PATH, F(data.train), NULL, 0, 0, AHA_KEY_FILE | AHA_KEY_REQUIRED_TRAIN,
     NULL, 0, "training prompts, a JSONL file"},
    {"data.eval", AHA_KEY_PATH, F(data.eval), "\"\"", 0, 0, AHA_KEY_FILE, NULL, 0,
     "held-out prompts, a JSONL file (\"\" = no evaluation set)"},
    {"data.question_field", AHA_KEY_STRING, F(data.question_field), "question", 0, 0, 0, NULL, 0,
     "JSONL field holding the question"},
    {"data.answer_field", AHA_KEY_STRING, F(data.answer_field), "answer", 0, 0, 0, NULL, 0,
     "JSONL field holding the reference answer"},
    {"data.bare_answers", AHA_KEY_BOOL, F(data.bare_answers), "false", 0, 0, 0, NULL, 0,
     "accept answers of several lines with no final `#### N` or `\\boxed{}` (the math reward's gold is then the whole text)"},
    {"data.tests_field", AHA_KEY_STRING, F(data.tests_field), "tests", 0, 0, 0, NULL, 0,
     "JSONL field holding the tests of the code reward"},
    {"data.template", AHA_KEY_ENUM, F(data.template_name), "r1_zero", 0, 0, 0,
     "r1_zero|plain|qwen_chat", 0, "prompt template applied to each question"},
    {"data.open_think", AHA_KEY_BOOL, F(data.open_think), "false", 0, 0, 0, NULL, 0,
     "end the prompt with an opening `<think>` tag"},
    {"data.system_prompt", AHA_KEY_STRING, F(data.system_prompt), "\"\"", 0, 0, 0, NULL, 0,
     "system prompt of chat templates (\"\" = the template's own)"},
    {"data.shuffle", AHA_KEY_BOOL, F(data.shuffle), "true", 0, 0, 0, NULL, 0,
     "shuffle the training prompts each epoch (seeded by run.seed)"},
    {"data.max_prompt_tokens", AHA_KEY_INT, F(data.max_prompt_tokens), "256", 1, BIG, 0, NULL, 0,
     "longest prompt in tokens; longer prompts are skipped"},
    {"data.eval_limit", AHA_KEY_INT, F(data.eval_limit), "0", 0, BIG, 0, NULL, 0,
     "evaluate on the first N held-out prompts (0 = all)"},
    /* rollout */
    {"rollout.prompts_per_step", AHA_KEY_INT, F(rollout.prompts_per_step), "32", 1, BIG, 0, NULL, 0,
     "prompts per step (B)"},
    {"rollout.group_size", AHA_KEY_INT, F(rollout.group_size), "8", 1, BIG, 0, NULL, 0,
     "completions per prompt (G)"},
    {"rollout.max_new_tokens", AHA_KEY_INT, F(rollout.max_new_tokens), "256", 1, BIG, 0, NULL, 0,
     "longest completion in tokens"},
    {"rollout.temperature", AHA_KEY_FLOAT, F(rollout.temperature), "1.0", 0, 100,
     AHA_KEY_MIN_EXCLUSIVE, NULL, 0, "sampling temperature"},
    {"rollout.top_p", AHA_KEY_FLOAT, F(rollout.top_p), "1.0", 0, 1, AHA_KEY_MIN_EXCLUSIVE, NULL, 0,
     "nucleus sampling mass (1 = off)"},
    {"rollout.top_k", AHA_KEY_INT, F(rollout.top_k), "0", 0, BIG, 0, NULL, 0,
     "sample among the k most likely tokens (0 = off)"},
    {"rollout.stop", AHA_KEY_STRING_LIST, F(rollout.stop), "[]", 0, 0, 0, NULL, 0,
     "strings that end a completion (besides EOS)"},
    {"rollout.share_prefix", AHA_KEY_BOOL, F(rollout.share_prefix), "true", 0, 0, 0, NULL, 0,
     "prefill each prompt once and share its KV cache across the group"},
    {"rollout.threads", AHA_KEY_INT, F(rollout.threads), "0", 0, 4096, 0, NULL, 0,
     "rollout threads (0 = all cores)"},
    /* algorithm */
    {"algorithm.advantage", AHA_KEY_ENUM, F(algorithm.advantage), "grpo", 0, 0, 0,
     "grpo|dr_grpo|batch_std", 0,
     "grpo: (r - group mean) / (group std + eps); dr_grpo: no std; batch_std: batch std"},
    {"algorithm.advantage_eps", AHA_KEY_FLOAT, F(algorithm.advantage_eps), "1e-6", 0, 1, 0, NULL, 0,
     "eps added to the std in the advantage"},
    {"algorithm.reward_combine", AHA_KEY_ENUM, F(algorithm.reward_combine), "sum_then_normalize", 0,
     0, 0, "sum_then_normalize|normalize_then_sum", 0,
     "normalize the weighted sum of rewards, or each reward before summing"},
    {"algorithm.eps_low", AHA_KEY_FLOAT, F(algorithm.eps_low), "0.2", 0, 1, 0, NULL, 0,
     "lower clip range: the ratio is clipped below at 1 - eps_low"},
    {"algorithm.eps_high", AHA_KEY_FLOAT, F(algorithm.eps_high), "0.2", 0, 10, 0, NULL, 0,
     "upper clip range: the ratio is clipped above at 1 + eps_high"},
    {"algorithm.dual_clip", AHA_KEY_FLOAT, F(algorithm.dual_clip), "0", 1, 1000,
     AHA_KEY_MIN_EXCLUSIVE | AHA_KEY_ZERO_IS_OFF, NULL, 0,
     "dual-clip bound c for negative advantages (0 = off, else > 1)"},
    {"algorithm.ratio", AHA_KEY_ENUM, F(algorithm.ratio), "token", 0, 0, 0, "token|sequence", 0,
     "importance ratio per token (GRPO) or per sequence (GSPO)"},
    {"algorithm.loss_agg", AHA_KEY_ENUM, F(algorithm.loss_agg), "token_mean", 0, 0, 0,
     "token_mean|seq_mean_token_mean|seq_mean_token_sum_norm", 0,
     "how token losses become the batch loss"},
    {"algorithm.loss_norm_len", AHA_KEY_INT, F(algorithm.loss_norm_len), "0", 0, BIG, 0, NULL, 0,
     "constant length of seq_mean_token_sum_norm (0 = rollout.max_new_tokens)"},
    {"algorithm.beta", AHA_KEY_FLOAT, F(algorithm.beta), "0.0", 0, 100, 0, NULL, 0,
     "KL penalty coefficient to the reference policy (0 = no reference)"},
    {"algorithm.kl_estimator", AHA_KEY_ENUM, F(algorithm.kl_estimator), "k3", 0, 0, 0, "k1|k2|k3", 0,
     "KL estimator"},
    {"algorithm.ref_refresh_steps", AHA_KEY_INT, F(algorithm.ref_refresh_steps), "0", 0, BIG, 0,
     NULL, 0, "copy the policy into the reference every N steps (0 = never)"},
    {"algorithm.dynamic_sampling", AHA_KEY_BOOL, F(algorithm.dynamic_sampling), "false", 0, 0, 0,
     NULL, 0, "drop groups whose rewards are all equal and sample replacements (DAPO)"},
    {"algorithm.max_resample_rounds", AHA_KEY_INT, F(algorithm.max_resample_rounds), "3", 0, 1000,
     0, NULL, 0, "most extra sampling rounds per step under dynamic sampling"},
    {"algorithm.mask_truncated", AHA_KEY_BOOL, F(algorithm.mask_truncated), "false", 0, 0, 0, NULL,
     0, "mask the loss of completions cut at max_new_tokens"},
    {"algorithm.mu", AHA_KEY_INT, F(algorithm.mu), "1", 1, 1000, 0, NULL, 0,
     "optimization passes over each batch of rollouts"},
    {"algorithm.minibatches", AHA_KEY_INT, F(algorithm.minibatches), "1", 1, BIG, 0, NULL, 0,
     "optimizer steps per pass (the batch is split into this many minibatches)"},
    {"algorithm.router_aux_coef", AHA_KEY_FLOAT, F(algorithm.router_aux_coef), "0.001", 0, 100, 0,
     NULL, 0, "coefficient of the MoE router load-balancing loss"},
    /* optim */
    {"optim.lr", AHA_KEY_FLOAT, F(optim.lr), "1e-6", 0, 10, AHA_KEY_MIN_EXCLUSIVE, NULL, 0,
     "peak learning rate of AdamW"},
    {"optim.beta1", AHA_KEY_FLOAT, F(optim.beta1), "0.9", 0, 1, 0, NULL, 0, "AdamW beta1"},
    {"optim.beta2", AHA_KEY_FLOAT, F(optim.beta2), "0.999", 0, 1, 0, NULL, 0, "AdamW beta2"},
    {"optim.eps", AHA_KEY_FLOAT, F(optim.eps), "1e-8", 0, 1, AHA_KEY_MIN_EXCLUSIVE, NULL, 0,
     "AdamW eps"},
    {"optim.weight_decay", AHA_KEY_FLOAT, F(optim.weight_decay), "0.0", 0, 10, 0, NULL, 0,
     "AdamW decoupled weight decay"},
    {"optim.grad_clip", AHA_KEY_FLOAT, F(optim.grad_clip), "1.0", 0, 1e6, 0, NULL, 0,
     "clip the global gradient norm to this (0 = off)"},
    {"optim.warmup_steps", AHA_KEY_INT, F(optim.warmup_steps), "0", 0, BIG, 0, NULL, 0,
     "linear warm-up steps"},
    {"optim.schedule", AHA_KEY_ENUM, F(optim.schedule), "constant", 0, 0, 0, "constant|cosine", 0,
     "learning-rate schedule after warm-up"},
    {"optim.min_lr_ratio", AHA_KEY_FLOAT, F(optim.min_lr_ratio), "0.0", 0, 1, 0, NULL, 0,
     "cosine: the final learning rate as a fraction of optim.lr"},
    {"optim.grad_accum", AHA_KEY_INT, F(optim.grad_accum), "1", 1, 4096, 0, NULL, 0,
     "minibatches whose gradients are summed per optimizer step"},
    /* run */
    {"run.output_dir", AHA_KEY_STRING, F(run.output_dir), "runs/default", 0, 0, 0, NULL, 0,
     "directory of the run (run.db, checkpoints)"},
    {"run.seed", AHA_KEY_INT64, F(run.seed), "1234", 0, 9007199254740991.0, 0, NULL, 0,
     "seed of every random stream (data order, sampling, init)"},
    {"run.steps", AHA_KEY_INT, F(run.steps), "100", 1, BIG, 0, NULL, 0, "GRPO steps"},
    {"run.eval_every", AHA_KEY_INT, F(run.eval_every), "0", 0, BIG, 0, NULL, 0,
     "evaluate on data.eval every N steps (0 = never)"},
    {"run.eval_k", AHA_KEY_INT, F(run.eval_k), "4", 1, 1024, 0, NULL, 0,
     "samples per eval prompt for mean@k"},
    {"run.checkpoint_every", AHA_KEY_INT, F(run.checkpoint_every), "50", 0, BIG, 0, NULL, 0,
     "write a checkpoint every N steps (0 = never)"},
    {"run.keep_checkpoints", AHA_KEY_INT, F(run.keep_checkpoints), "2", 1, 1000, 0, NULL, 0,
     "checkpoints kept (older ones are deleted)"},
    {"run.max_nan_skips", AHA_KEY_INT, F(run.max_nan_skips), "3", 0, 1000, 0, NULL, 0,
     "steps with a NaN/Inf loss skipped before the run stops"},
    {"run.log_file", AHA_KEY_STRING, F(run.log_file), "\"\"", 0, 0, 0, NULL, 0,
     "also write the progress lines to this file (\"\" = none)"},
    /* pretrain */
    {"pretrain.corpus", AHA_KEY_PATH, F(pretrain.corpus), NULL, 0, 0,
     AHA_KEY_FILE | AHA_KEY_REQUIRED_PRETRAIN, NULL, 0,
     "pre-training documents, a JSONL file with a \"text\" field"},
    {"pretrain.seq_len", AHA_KEY_INT, F(pretrain.seq_len), "128", 2, BIG, 0, NULL, 0,
     "tokens per packed training sequence"},
    {"pretrain.batch_seqs", AHA_KEY_INT, F(pretrain.batch_seqs), "24", 1, BIG, 0, NULL, 0,
     "sequences per optimizer step"},
    {"pretrain.steps", AHA_KEY_INT, F(pretrain.steps), "1000", 1, BIG, 0, NULL, 0,
     "pre-training steps"},
    /* distributed */
    {"distributed.backend", AHA_KEY_ENUM, F(distributed.backend), "mpi", 0, 0, 0, "none|mpi|nccl",
     0, "collectives when launched as several processes (mpirun, srun): mpi; none = one process only"},
    {"distributed.world_size", AHA_KEY_INT, F(distributed.world_size), "0", 0, 65536, 0, NULL, 0,
     "processes expected from the launcher, checked (0 = whatever mpirun -np gives)"},
    {"distributed.zero1", AHA_KEY_BOOL, F(distributed.zero1), "false", 0, 0, 0, NULL, 0,
     "shard the AdamW moments over the processes (ZeRO-1)"},
    {"distributed.expert_parallel", AHA_KEY_INT, F(distributed.expert_parallel), "1", 1, 1024, 0, NULL, 0,
     "processes that split each MoE layer's experts (a divisor of the process count)"},
};

#define ALL_REWARDS \
    (RT(MATH) | RT(FORMAT) | RT(CODE) | RT(LENGTH) | RT(OVERLONG) | RT(PLUGIN) | RT(COUNTDOWN))

/* The rows of one rewards entry. "type" is first: it selects which other rows apply.
 * AHA_KEY_REQUIRED here means required for the types in reward_types. */
static const AhaRecipeKey reward_keys[] = {
    {"type", AHA_KEY_ENUM, R(type), NULL, 0, 0, AHA_KEY_REQUIRED,
     "math|format|code|length|overlong|plugin|countdown", ALL_REWARDS, "which reward"},
    {"name", AHA_KEY_STRING, R(name), "\"\"", 0, 0, 0, NULL, ALL_REWARDS,
     "name in logs and the run store, unique in the list (\"\" = the type)"},
    {"weight", AHA_KEY_FLOAT, R(weight), "1.0", -1e6, 1e6, 0, NULL, ALL_REWARDS,
     "weight of this reward in the sum"},
    {"extract", AHA_KEY_ENUM, R(extract), "auto", 0, 0, 0, "auto|boxed|answer_tag", RT(MATH),
     "where the answer is: `\\boxed{}`, the `<answer>` tag, or auto (the tag, then boxed)"},
    {"pattern", AHA_KEY_STRING, R(pattern), "'^<think>.*?</think>\\s*<answer>.*?</answer>$'", 0, 0, 0,
     NULL, RT(FORMAT), "PCRE2 pattern the completion must match (dot matches newlines)"},
    {"match", AHA_KEY_ENUM, R(match), "full", 0, 0, 0, "full|search", RT(FORMAT),
     "full: the whole completion matches; search: a match anywhere"},
    {"mode", AHA_KEY_ENUM, R(mode), "fraction", 0, 0, 0, "fraction|all", RT(CODE),
     "score the fraction of tests passed, or 1 only when all pass"},
    {"timeout_s", AHA_KEY_FLOAT, R(timeout_s), "5", 0, 3600, AHA_KEY_MIN_EXCLUSIVE, NULL,
     RT(CODE) | RT(PLUGIN), "wall-clock limit per call in seconds"},
    {"memory_mb", AHA_KEY_INT, R(memory_mb), "256", 16, 1048576, 0, NULL, RT(CODE),
     "memory limit of the sandboxed program in MiB"},
    {"target", AHA_KEY_INT, R(target), NULL, 1, BIG, AHA_KEY_REQUIRED, NULL, RT(LENGTH),
     "completion length in tokens beyond which the penalty applies"},
    {"penalty", AHA_KEY_FLOAT, R(penalty), "0.001", 0, 1e6, 0, NULL, RT(LENGTH),
     "reward of -penalty per completion token beyond target"},
    {"max_len", AHA_KEY_INT, R(max_len), "0", 0, BIG, 0, NULL, RT(OVERLONG),
     "DAPO L_max in tokens (0 = rollout.max_new_tokens)"},
    {"cache_len", AHA_KEY_INT, R(cache_len), NULL, 1, BIG, AHA_KEY_REQUIRED, NULL, RT(OVERLONG),
     "DAPO L_cache: the penalty ramps over the last cache_len tokens before max_len"},
    {"path", AHA_KEY_PATH, R(path), "\"\"", 0, 0, AHA_KEY_FILE, NULL, RT(PLUGIN),
     "a shared object implementing include/aha/reward_plugin.h (give path or command)"},
    {"command", AHA_KEY_STRING, R(command), "\"\"", 0, 0, 0, NULL, RT(PLUGIN),
     "a program speaking JSON lines on stdin/stdout, run by /bin/sh (give path or command)"},
};

int aha_recipe_key_count(void) { return (int)(sizeof recipe_keys / sizeof recipe_keys[0]); }

const AhaRecipeKey *aha_recipe_key(int index) {
    if (index < 0 || index >= aha_recipe_key_count()) return NULL;
    return &recipe_keys[index];
}

int aha_recipe_reward_key_count(void) { return (int)(sizeof reward_keys / sizeof reward_keys[0]); }

const AhaRecipeKey *aha_recipe_reward_key(int index) {
    if (index < 0 || index >= aha_recipe_reward_key_count()) return NULL;
    return &reward_keys[index];
}

/* snprintf that reports truncation as an error. */
static int put(char *buf, size_t size, size_t *used, const char *text) {
    size_t n = strlen(text);
    if (*used + n + 1 > size) return aha_errorf("recipe schema text longer than %zu bytes", size);
    memcpy(buf + *used, text, n + 1);
    *used += n;
    return 0;
}

int aha_recipe_key_type_text(const AhaRecipeKey *key, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    switch (key->type) {
    case AHA_KEY_BOOL: return put(buf, size, &used, "bool");
    case AHA_KEY_INT:
    case AHA_KEY_INT64: return put(buf, size, &used, "integer");
    case AHA_KEY_FLOAT: return put(buf, size, &used, "float");
    case AHA_KEY_STRING: return put(buf, size, &used, "string");
    case AHA_KEY_STRING_LIST: return put(buf, size, &used, "list of strings");
    case AHA_KEY_PATH:
        return put(buf, size, &used,
                   key->flags & AHA_KEY_DIR    ? "path (directory)"
                   : key->flags & AHA_KEY_FILE ? "path (file)"
                                               : "path");
    case AHA_KEY_ENUM: {
        AHA_TRY(put(buf, size, &used, "one of "));
        for (const char *v = key->enum_values; *v; v++) {
            char one[2] = {*v == '|' ? ',' : *v, '\0'};
            AHA_TRY(put(buf, size, &used, one));
            if (*v == '|') AHA_TRY(put(buf, size, &used, " "));
        }
        return 0;
    }
    }
    return aha_errorf("recipe key %s has an unknown type %d", key->key, (int)key->type);
}

const char *aha_recipe_key_default_text(const AhaRecipeKey *key) {
    if (key->default_yaml) return key->default_yaml;
    if (key->flags & AHA_KEY_REQUIRED_TRAIN) return "required for train";
    if (key->flags & AHA_KEY_REQUIRED_PRETRAIN) return "required for pretrain";
    return "required";
}

static const char *const reward_type_names[] = {"math",     "format", "code",     "length",
                                                "overlong", "plugin", "countdown"};

int aha_recipe_reward_types_text(const AhaRecipeKey *key, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    if (key->reward_types == ALL_REWARDS) return put(buf, size, &used, "all");
    for (int t = 0; t < (int)(sizeof reward_type_names / sizeof reward_type_names[0]); t++) {
        if (!(key->reward_types & (1u << t))) continue;
        if (used) AHA_TRY(put(buf, size, &used, ", "));
        AHA_TRY(put(buf, size, &used, reward_type_names[t]));
    }
    return 0;
}

/* Defaults are YAML, shown as code; "required" is prose. */
static const char *default_cell(const AhaRecipeKey *key, char *buf, size_t size) {
    if (!key->default_yaml) return aha_recipe_key_default_text(key);
    snprintf(buf, size, "`%s`", key->default_yaml);
    return buf;
}

int aha_recipe_write_key_tables(FILE *out) {
    char type[256], types[128], cell[256];
    fprintf(out, "| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = &recipe_keys[i];
        AHA_TRY(aha_recipe_key_type_text(k, type, sizeof type));
        fprintf(out, "| `%s` | %s | %s | %s |\n", k->key, type, default_cell(k, cell, sizeof cell),
                k->doc);
    }
    fprintf(out, "\nEach entry of `rewards`:\n\n"
                 "| key | rewards | type | default | meaning |\n"
                 "| --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < aha_recipe_reward_key_count(); i++) {
        const AhaRecipeKey *k = &reward_keys[i];
        AHA_TRY(aha_recipe_key_type_text(k, type, sizeof type));
        AHA_TRY(aha_recipe_reward_types_text(k, types, sizeof types));
        fprintf(out, "| `rewards[].%s` | %s | %s | %s | %s |\n", k->key, types, type,
                default_cell(k, cell, sizeof cell), k->doc);
    }
    if (ferror(out)) return aha_errorf("writing the recipe key tables failed");
    return 0;
}
