/* Recipes: a typed AhaRecipe filled from YAML (libyaml) by one table of key descriptors.
 *
 * The table (core/recipe_schema.c) drives parsing, validation, --set overrides, the YAML dump
 * and the docs check; docs/recipes.md lists every key. To add a key: add a field to the
 * section struct below and one row to the table. Nothing else needs to change. Loading is in
 * core/recipe.c; one file each holds fields, rewards, --set, suggestions, equality and the
 * dump (core/recipe_internal.h lists them).
 *
 * Relative paths in a recipe resolve against the current working directory (like most CLI
 * tools), and are kept and reported exactly as written. */
#ifndef AHA_RECIPE_H
#define AHA_RECIPE_H

#include <stddef.h>
#include <stdio.h>

#include "aha/reward_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char **items;  /* [count], owned */
    int count;
} AhaStringList;

typedef enum { AHA_INIT_PRETRAINED, AHA_INIT_RANDOM } AhaModelInit;
typedef enum { AHA_SAVE_DTYPE_AUTO, AHA_SAVE_DTYPE_F32, AHA_SAVE_DTYPE_BF16 } AhaSaveDtype;
typedef enum { AHA_TEMPLATE_R1_ZERO, AHA_TEMPLATE_PLAIN, AHA_TEMPLATE_QWEN_CHAT } AhaTemplate;
typedef enum { AHA_ADV_GRPO, AHA_ADV_DR_GRPO, AHA_ADV_BATCH_STD } AhaAdvantage;
typedef enum { AHA_COMBINE_SUM_THEN_NORMALIZE, AHA_COMBINE_NORMALIZE_THEN_SUM } AhaRewardCombine;
typedef enum { AHA_RATIO_TOKEN, AHA_RATIO_SEQUENCE } AhaRatioLevel;
typedef enum {
    AHA_LOSS_TOKEN_MEAN,
    AHA_LOSS_SEQ_MEAN_TOKEN_MEAN,
    AHA_LOSS_SEQ_MEAN_TOKEN_SUM_NORM
} AhaLossAgg;
typedef enum { AHA_KL_K1, AHA_KL_K2, AHA_KL_K3 } AhaKlEstimator;
typedef enum { AHA_SCHEDULE_CONSTANT, AHA_SCHEDULE_COSINE } AhaSchedule;
typedef enum { AHA_BACKEND_NONE, AHA_BACKEND_MPI, AHA_BACKEND_NCCL } AhaCommBackend; /* distributed.backend */

/* AhaRewardType, AhaRewardExtract and AhaCodeMode come from aha/reward_types.h; the YAML
 * names follow their order. */
typedef enum { AHA_MATCH_FULL, AHA_MATCH_SEARCH } AhaFormatMatch;

/* One entry of the rewards list; only the keys of its type are meaningful. */
typedef struct {
    AhaRewardType type;
    char *name;            /* unique in the list; defaults to the type's name */
    double weight;
    AhaRewardExtract extract;  /* math (aha/reward_types.h) */
    char *pattern;           /* format: PCRE2 pattern */
    AhaFormatMatch match;    /* format */
    AhaCodeMode mode;        /* code */
    double timeout_s;        /* code, plugin */
    int memory_mb;           /* code */
    int target;              /* length: tokens */
    double penalty;          /* length: per token */
    int max_len;             /* overlong: 0 = rollout.max_new_tokens */
    int cache_len;           /* overlong */
    char *path;              /* plugin: a shared object ("" = use command) */
    char *command;           /* plugin: a JSON-lines program ("" = use path) */
    int line, col;           /* where the entry starts in the recipe file; 0 = not from a file */
} AhaRewardSpec;

typedef struct {
    char *path;  /* HF model directory */
    AhaModelInit init;
    AhaSaveDtype save_dtype;
} AhaModelSection;

typedef struct {
    char *train;  /* JSONL ("" = not given) */
    char *eval;   /* JSONL ("" = none) */
    char *question_field;
    char *answer_field;
    int bare_answers;  /* accept worked solutions without a final answer as gold */
    char *tests_field;
    AhaTemplate template_name;
    int open_think;
    char *system_prompt;
    int shuffle;
    int max_prompt_tokens;
    int eval_limit;  /* 0 = all */
} AhaDataSection;

typedef struct {
    int prompts_per_step;  /* B */
    int group_size;        /* G */
    int max_new_tokens;
    double temperature;
    double top_p;
    int top_k;  /* 0 = off */
    AhaStringList stop;
    int share_prefix;
    int threads;  /* 0 = all cores */
} AhaRolloutSection;

typedef struct {
    AhaAdvantage advantage;
    double advantage_eps;
    AhaRewardCombine reward_combine;
    double eps_low;
    double eps_high;
    double dual_clip;  /* 0 = off, else > 1 */
    AhaRatioLevel ratio;
    AhaLossAgg loss_agg;
    int loss_norm_len;  /* 0 = rollout.max_new_tokens */
    double beta;
    AhaKlEstimator kl_estimator;
    int ref_refresh_steps;  /* 0 = never */
    int dynamic_sampling;
    int max_resample_rounds;
    int mask_truncated;
    int mu;
    int minibatches;
    double router_aux_coef;
} AhaAlgorithmSection;

typedef struct {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    double grad_clip;  /* 0 = off */
    int warmup_steps;
    AhaSchedule schedule;
    double min_lr_ratio;
    int grad_accum;
} AhaOptimSection;

typedef struct {
    char *output_dir;
    long long seed;
    int steps;
    int eval_every;  /* 0 = never */
    int eval_k;
    int checkpoint_every;  /* 0 = never */
    int keep_checkpoints;
    int max_nan_skips;
    char *log_file;  /* "" = none */
} AhaRunSection;

typedef struct {
    char *corpus;  /* JSONL with a "text" field ("" = not given) */
    int seq_len;
    int batch_seqs;
    int steps;
} AhaPretrainSection;

typedef struct {
    AhaCommBackend backend;
    int world_size;   /* 0 = the launcher's; else checked against it */
    int zero1;        /* AdamW moments sharded over the data-parallel ranks */
    int expert_parallel; /* ranks per expert group (1 = none) */
} AhaDistributedSection;

typedef struct {
    char *source;  /* the file it was loaded from, as given ("" for defaults) */
    AhaModelSection model;
    AhaDataSection data;
    AhaRolloutSection rollout;
    AhaRewardSpec *rewards;  /* [n_rewards], owned */
    int n_rewards;
    AhaAlgorithmSection algorithm;
    AhaOptimSection optim;
    AhaRunSection run;
    AhaPretrainSection pretrain;
    AhaDistributedSection distributed;
} AhaRecipe;

/* What a recipe is used for: each purpose has its own required keys. */
typedef enum { AHA_PURPOSE_ANY, AHA_PURPOSE_TRAIN, AHA_PURPOSE_PRETRAIN } AhaRecipePurpose;

/* Fills out with every default (rewards: one math reward of weight 1). */
int aha_recipe_defaults(AhaRecipe *out);
/* Defaults, then the YAML file, then each "key=value" override in order, then the checks
 * across keys. Required keys are checked for AHA_PURPOSE_ANY (model.path); call
 * aha_recipe_require() for a purpose. On failure out holds nothing to free. */
int aha_recipe_load(const char *path, const char *const *overrides, int n_overrides,
                    AhaRecipe *out);
/* Applies one "key=value" (the value is YAML: `[a, b]` for lists; strings may be unquoted).
 * Keys: any dotted key, "rewards" (a YAML list), or "rewards.N.key" (N from 0). On failure
 * the recipe is unchanged. */
int aha_recipe_set(AhaRecipe *recipe, const char *assignment);
/* Checks the keys a purpose requires (train: data.train; pretrain: pretrain.corpus). */
int aha_recipe_require(const AhaRecipe *recipe, AhaRecipePurpose purpose);
/* Writes the whole resolved recipe as YAML that aha_recipe_load reads back to an equal one. */
int aha_recipe_dump_yaml(const AhaRecipe *recipe, FILE *out);
/* 1 when every key (and every reward entry) is equal; source is not compared. */
int aha_recipe_equal(const AhaRecipe *a, const AhaRecipe *b);
void aha_recipe_free(AhaRecipe *recipe);

/* The name an enum key's value has in YAML, e.g. ("algorithm.advantage", 0) -> "grpo";
 * "?" for an unknown key or value. Reward keys: "rewards.type", "rewards.extract", ... */
const char *aha_recipe_enum_name(const char *key, int value);

/* ---- The schema, for tools and tests ---------------------------------------------------- */

typedef enum {
    AHA_KEY_BOOL,
    AHA_KEY_INT,
    AHA_KEY_INT64,
    AHA_KEY_FLOAT,
    AHA_KEY_STRING,
    AHA_KEY_PATH,
    AHA_KEY_ENUM,
    AHA_KEY_STRING_LIST
} AhaKeyType;

enum {
    AHA_KEY_MIN_EXCLUSIVE = 1u << 0, /* value > min instead of >= */
    AHA_KEY_ZERO_IS_OFF = 1u << 1,   /* 0 is allowed besides the range */
    AHA_KEY_DIR = 1u << 2,           /* path: must be a directory */
    AHA_KEY_FILE = 1u << 3,          /* path: must be a regular file */
    AHA_KEY_REQUIRED = 1u << 4,      /* must be given (non-empty) */
    AHA_KEY_REQUIRED_TRAIN = 1u << 5,
    AHA_KEY_REQUIRED_PRETRAIN = 1u << 6,
};

/* A numeric key whose max is this has no upper bound worth stating in messages. */
#define AHA_RECIPE_NO_MAX 1e9

typedef struct {
    const char *key;            /* "optim.lr"; reward rows: the entry key, "weight" */
    AhaKeyType type;
    size_t offset;              /* into AhaRecipe; reward rows: into AhaRewardSpec */
    const char *default_yaml;   /* the default as YAML text, parsed like user input */
    double min, max;            /* numbers: the allowed range */
    unsigned flags;
    const char *enum_values;    /* "grpo|dr_grpo|batch_std"; values index the C enum */
    unsigned reward_types;      /* reward rows: bit (1 << AhaRewardType) for each type using it */
    const char *doc;            /* one line for docs/recipes.md */
} AhaRecipeKey;

int aha_recipe_key_count(void);
const AhaRecipeKey *aha_recipe_key(int index);
int aha_recipe_reward_key_count(void);
const AhaRecipeKey *aha_recipe_reward_key(int index);
/* The type column of docs/recipes.md, e.g. "float", "one of grpo, dr_grpo, batch_std". */
int aha_recipe_key_type_text(const AhaRecipeKey *key, char *buf, size_t size);
/* The default column of docs/recipes.md: the default YAML, or "required", "required for train". */
const char *aha_recipe_key_default_text(const AhaRecipeKey *key);
/* The reward types column: "code, plugin" or "all". */
int aha_recipe_reward_types_text(const AhaRecipeKey *key, char *buf, size_t size);
/* Writes the two key tables of docs/recipes.md (markdown). */
int aha_recipe_write_key_tables(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
