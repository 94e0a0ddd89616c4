/* Recipes: defaults, loading, --set overrides (and their errors), the dump round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/recipe.h"
/* recipe.h must coexist with the headers the trainer includes beside it */
#include "aha/grpo.h"
#include "aha/reward.h"
#include "aha/safetensors.h"

#define MINIMAL "tests/fixtures/recipes/good/minimal.yaml"
#define FULL "tests/fixtures/recipes/good/full.yaml"

static void test_defaults_are_documented_values(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_defaults(&r), 0);
    assert_string_equal(r.model.path, "");
    assert_int_equal(r.model.init, AHA_INIT_PRETRAINED);
    assert_string_equal(r.data.question_field, "question");
    assert_int_equal(r.data.template_name, AHA_TEMPLATE_R1_ZERO);
    assert_int_equal(r.data.shuffle, 1);
    assert_int_equal(r.rollout.prompts_per_step, 32);
    assert_int_equal(r.rollout.group_size, 8);
    assert_true(r.rollout.temperature == 1.0);
    assert_int_equal(r.rollout.stop.count, 0);
    assert_int_equal(r.n_rewards, 1);
    assert_int_equal(r.rewards[0].type, AHA_REWARD_MATH);
    assert_string_equal(r.rewards[0].name, "math");
    assert_true(r.rewards[0].weight == 1.0);
    assert_true(r.algorithm.advantage_eps == 1e-6);
    assert_int_equal(r.algorithm.kl_estimator, AHA_KL_K3);
    assert_true(r.algorithm.router_aux_coef == 0.001);
    assert_true(r.optim.lr == 1e-6);
    assert_true(r.optim.beta2 == 0.999);
    assert_string_equal(r.run.output_dir, "runs/default");
    assert_int_equal(r.run.seed, 1234);
    assert_int_equal(r.pretrain.batch_seqs, 24);
    assert_int_equal(r.distributed.backend, AHA_BACKEND_MPI);
    assert_int_equal(r.distributed.world_size, 0);
    assert_int_equal(r.distributed.zero1, 0);
    aha_recipe_free(&r);
}

static void test_minimal_recipe_loads_and_purposes_check(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_load(MINIMAL, NULL, 0, &r), 0);
    assert_string_equal(r.source, MINIMAL);
    assert_string_equal(r.model.path, "tests/fixtures/recipes/model");
    assert_string_equal(r.data.train, "tests/fixtures/recipes/data/train.jsonl");
    assert_int_equal(aha_recipe_require(&r, AHA_PURPOSE_TRAIN), 0);
    assert_int_equal(aha_recipe_require(&r, AHA_PURPOSE_PRETRAIN), -1);
    assert_string_equal(aha_error_message(),
                        MINIMAL ": missing required key pretrain.corpus for pretrain (pre-training "
                                "documents, a JSONL file with a \"text\" field)");
    aha_recipe_free(&r);
}

static void test_full_recipe_values(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_load(FULL, NULL, 0, &r), 0);
    assert_int_equal(r.model.save_dtype, AHA_SAVE_DTYPE_BF16);
    assert_string_equal(r.data.system_prompt,
                        "You are \"careful\".\nThink: then answer.\t# not a comment \xe2\x80\x94 \xc3\xbcn\xc3\xaf" "code");
    assert_int_equal(r.rollout.stop.count, 8);
    assert_string_equal(r.rollout.stop.items[1], "\n\nUser:");
    assert_string_equal(r.rollout.stop.items[2], "it's");
    assert_string_equal(r.rollout.stop.items[5], "null");
    assert_int_equal(r.n_rewards, 6);
    assert_string_equal(r.rewards[1].name, "shape");
    assert_string_equal(r.rewards[1].pattern, "^<think>[^<]*</think>\\s*<answer>.+</answer>$");
    assert_int_equal(r.rewards[1].match, AHA_MATCH_SEARCH);
    assert_true(r.rewards[2].timeout_s == 2.5);
    assert_true(r.rewards[3].weight == -0.5);
    assert_int_equal(r.rewards[4].cache_len, 256);
    assert_string_equal(r.rewards[5].command, "python3 judge.py --strict");
    assert_string_equal(r.rewards[5].path, "");
    assert_true(r.algorithm.advantage_eps == 1e-4);
    assert_true(r.algorithm.dual_clip == 3.0);
    assert_int_equal(r.algorithm.loss_agg, AHA_LOSS_SEQ_MEAN_TOKEN_SUM_NORM);
    assert_true(r.optim.lr == 3e-6);
    assert_int_equal(r.run.seed, 9007199254740991LL);
    assert_string_equal(r.run.output_dir, "runs/full test");
    assert_int_equal(r.distributed.world_size, 2);
    assert_string_equal(aha_recipe_enum_name("algorithm.advantage", r.algorithm.advantage), "dr_grpo");
    assert_string_equal(aha_recipe_enum_name("rewards.type", r.rewards[4].type), "overlong");
    assert_string_equal(aha_recipe_enum_name("optim.lr", 0), "?");
    assert_string_equal(aha_recipe_enum_name("optim.schedule", 7), "?");
    aha_recipe_free(&r);
}

/* Dumps r to a temporary file, loads it back and checks the two are equal; returns the
 * dumped text (caller frees) for further checks. */
static char *round_trip(const AhaRecipe *r) {
    char path[] = "/tmp/aha_recipe_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    assert_non_null(f);
    assert_int_equal(aha_recipe_dump_yaml(r, f), 0);
    assert_int_equal(fflush(f), 0);
    long size = ftell(f);
    char *text = calloc((size_t)size + 1, 1);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    AhaRecipe back;
    if (aha_recipe_load(path, NULL, 0, &back) != 0) fail_msg("dump did not load back: %s\n%s", aha_error_message(), text);
    assert_true(aha_recipe_equal(r, &back));
    /* dumping the reloaded recipe gives the same text but for the first (source) line */
    char *again = NULL;
    size_t again_size = 0;
    FILE *mem = open_memstream(&again, &again_size);
    assert_int_equal(aha_recipe_dump_yaml(&back, mem), 0);
    fclose(mem);
    assert_string_equal(strchr(again, '\n'), strchr(text, '\n'));
    free(again);
    aha_recipe_free(&back);
    remove(path);
    return text;
}

static void test_dump_round_trips(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_load(MINIMAL, NULL, 0, &r), 0);
    free(round_trip(&r));
    aha_recipe_free(&r);
    assert_int_equal(aha_recipe_load(FULL, NULL, 0, &r), 0);
    char *text = round_trip(&r);
    assert_non_null(strstr(text, "  stop: [\"</answer>\", \"\\n\\nUser:\", \"it's\", \"#\", \"- dash\", \"null\", \"true\", \"123\"]\n"));
    assert_non_null(strstr(text, "    timeout_s: 30\n"));
    free(text);
    aha_recipe_free(&r);
}

/* Strings that YAML would misread unless quoted, and bytes that need escapes. */
static void test_round_trip_of_awkward_strings(void **state) {
    (void)state;
    const char *const sets[] = {
        "data.system_prompt=  leading spaces, a # hash, key: value, trailing  ",
        "data.question_field=null",
        "data.answer_field=\"quoted \\\"inside\\\" with \\\\ backslash\\x01ctl\\x7f\"",
        "run.log_file=true",
        "run.output_dir=- dash",
        "rollout.stop=[\"\", \"{\", \"}\", \"[\", \"'\", \"\\t\", \"\\r\\n\", \"\\u00e9\\u4e2d\", \"&a\", \"*b\", \"!c\", \"%d\", \"@e\", \"`f\"]",
        "rewards=[{type: format, pattern: '^\\s*<a>.*\\n$'}, {type: math, name: '0123'}]",
    };
    AhaRecipe r;
    assert_int_equal(aha_recipe_load(MINIMAL, sets, (int)(sizeof sets / sizeof sets[0]), &r), 0);
    assert_string_equal(r.data.system_prompt, "  leading spaces, a # hash, key: value, trailing  ");
    assert_string_equal(r.data.question_field, "null");
    assert_string_equal(r.data.answer_field, "quoted \"inside\" with \\ backslash\x01" "ctl\x7f");
    assert_int_equal(r.rollout.stop.count, 14);
    assert_string_equal(r.rollout.stop.items[0], "");
    assert_string_equal(r.rollout.stop.items[7], "\xc3\xa9\xe4\xb8\xad");
    assert_string_equal(r.rewards[0].pattern, "^\\s*<a>.*\\n$");
    assert_string_equal(r.rewards[1].name, "0123");
    free(round_trip(&r));
    aha_recipe_free(&r);
}

static void test_overrides_apply_in_order(void **state) {
    (void)state;
    const char *const sets[] = {
        "optim.lr=3e-6",          "optim.lr=5e-6",         "rollout.group_size=16",
        "data.shuffle=false",     "algorithm.advantage=dr_grpo", "data.system_prompt=Be brief: answer.",
        "rollout.stop=[\"</answer>\"]", "rewards.0.weight=0.5", "run.seed=7",
    };
    AhaRecipe r;
    assert_int_equal(aha_recipe_load(MINIMAL, sets, (int)(sizeof sets / sizeof sets[0]), &r), 0);
    assert_true(r.optim.lr == 5e-6);
    assert_int_equal(r.rollout.group_size, 16);
    assert_int_equal(r.data.shuffle, 0);
    assert_int_equal(r.algorithm.advantage, AHA_ADV_DR_GRPO);
    assert_string_equal(r.data.system_prompt, "Be brief: answer.");
    assert_int_equal(r.rollout.stop.count, 1);
    assert_string_equal(r.rollout.stop.items[0], "</answer>");
    assert_true(r.rewards[0].weight == 0.5);
    assert_int_equal(r.run.seed, 7);
    assert_int_equal(aha_recipe_set(&r, "rewards=[{type: math}, {type: format, weight: 0.1}]"), 0);
    assert_int_equal(r.n_rewards, 2);
    assert_string_equal(r.rewards[1].name, "format");
    assert_int_equal(aha_recipe_set(&r, "rewards.1.pattern=^<answer>"), 0);
    assert_string_equal(r.rewards[1].pattern, "^<answer>");
    aha_recipe_free(&r);
}

/* Each bad --set gives its exact message and leaves the recipe as it was. */
static void test_bad_overrides_are_clear_and_harmless(void **state) {
    (void)state;
    static const struct {
        const char *set, *message;
    } cases[] = {
        {"optim.lr", "--set optim.lr: expected KEY=VALUE, e.g. --set optim.lr=3e-6"},
        {"=3", "--set =3: expected KEY=VALUE, e.g. --set optim.lr=3e-6"},
        {"optim.lr=abc", "--set optim.lr=abc: optim.lr: expected a number, got 'abc'"},
        {"optim.lr=", "--set optim.lr=: optim.lr: expected a number, got nothing"},
        {"optim.lr=-1", "--set optim.lr=-1: optim.lr: expected a value in (0, 10], got -1"},
        {"optim.lrr=1", "--set optim.lrr=1: unknown key 'optim.lrr' (did you mean optim.lr?)"},
        {"optim.seed=1", "--set optim.seed=1: unknown key 'optim.seed' (did you mean run.seed?)"},
        {"optm.lr=1", "--set optm.lr=1: unknown section 'optm' (did you mean optim?); sections are model, data, "
                      "rollout, rewards, algorithm, optim, run, pretrain, distributed"},
        {"lr=1", "--set lr=1: unknown section 'lr' (did you mean optim.lr?); sections are model, data, rollout, "
                 "rewards, algorithm, optim, run, pretrain, distributed"},
        {"data.shuffle=maybe", "--set data.shuffle=maybe: data.shuffle: expected true or false, got 'maybe'"},
        {"data.template=chat", "--set data.template=chat: data.template: expected one of r1_zero, plain, qwen_chat, "
                               "got 'chat'"},
        {"model.path=/no/such/dir", "--set model.path=/no/such/dir: model.path: '/no/such/dir' does not exist "
                                    "(relative paths are read from the current directory)"},
        {"rollout.stop=</answer>", "--set rollout.stop=</answer>: rollout.stop: expected a list of strings like "
                                   "[\"a\", \"b\"], got '</answer>'"},
        {"rollout.stop=[a", "--set rollout.stop=[a: YAML syntax error: did not find expected ',' or ']' while "
                            "parsing a flow sequence (line 1, column 1)"},
        {"data.question_field=\"unterminated", "--set data.question_field=\"unterminated: YAML syntax error: found "
                                               "unexpected end of stream while scanning a quoted scalar (line 1, "
                                               "column 1)"},
        {"data.question_field=\xff", "--set data.question_field=\xff: data.question_field: expected UTF-8 text"},
        {"rewards=[]", "--set rewards=[]: rewards: expected at least one reward"},
        {"rewards=[{type: math}, {type: math}]", "--set rewards=[{type: math}, {type: math}]: rewards[1].name: two "
                                                "rewards are named 'math' (rewards[0] too); give each a distinct "
                                                "name"},
        {"rewards.3.weight=1", "--set rewards.3.weight=1: rewards.3.weight: the recipe has 1 reward (indices 0 to 0)"},
        {"rewards.x.weight=1", "--set rewards.x.weight=1: rewards.x.weight: expected rewards.N.KEY with N the "
                               "entry's index from 0"},
        {"rewards.0.type=format", "--set rewards.0.type=format: rewards.0.type: the type of an entry cannot change; "
                                  "replace the list with --set rewards=[...]"},
        {"rewards.0.timeout_s=3", "--set rewards.0.timeout_s=3: rewards[0]: 'timeout_s' is not a key of math "
                                  "rewards (it belongs to code, plugin)"},
        {"rewards.0.wieght=3", "--set rewards.0.wieght=3: rewards[0]: unknown key 'wieght' for a math reward (did "
                               "you mean weight?)"},
        {"rewards.0.name=", "--set rewards.0.name=: rewards.0.name: expected a non-empty name"},
        {"rewards.0.weight=heavy", "--set rewards.0.weight=heavy: rewards.0.weight: expected a number, got 'heavy'"},
    };
    AhaRecipe r, pristine;
    assert_int_equal(aha_recipe_load(MINIMAL, NULL, 0, &r), 0);
    assert_int_equal(aha_recipe_load(MINIMAL, NULL, 0, &pristine), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aha_error_clear();
        if (aha_recipe_set(&r, cases[i].set) != -1) fail_msg("--set %s was accepted", cases[i].set);
        if (strcmp(aha_error_message(), cases[i].message) != 0)
            fail_msg("--set %s\n  expected: %s\n  got:      %s", cases[i].set, cases[i].message, aha_error_message());
        assert_true(aha_recipe_equal(&r, &pristine));
    }
    aha_recipe_free(&r);
    aha_recipe_free(&pristine);
}

static void test_load_names_the_failing_set(void **state) {
    (void)state;
    const char *const sets[] = {"optim.lr=3e-6", "rollout.top_p=0"};
    AhaRecipe r;
    assert_int_equal(aha_recipe_load(MINIMAL, sets, 2, &r), -1);
    assert_string_equal(aha_error_message(), "--set rollout.top_p=0: rollout.top_p: expected a value in (0, 1], got 0");
    /* checks across keys run after the overrides */
    const char *const cross[] = {"run.eval_every=5"};
    assert_int_equal(aha_recipe_load(MINIMAL, cross, 1, &r), -1);
    assert_string_equal(aha_error_message(), MINIMAL ": run.eval_every is 5 but data.eval is not given");
    const char *const fixed[] = {"run.eval_every=5", "data.eval=tests/fixtures/recipes/data/eval.jsonl"};
    assert_int_equal(aha_recipe_load(MINIMAL, fixed, 2, &r), 0);
    aha_recipe_free(&r);
}

/* A recipe shipped with placeholder paths runs once --set points them at real files; a
 * missing path that no --set replaces is still an error at its line. */
static void test_set_replaces_a_missing_path(void **state) {
    (void)state;
    AhaRecipe r;
    const char *const sets[] = {"model.path=tests/fixtures/recipes/model",
                                "data.train=tests/fixtures/recipes/data/train.jsonl",
                                "data.eval=tests/fixtures/recipes/data/eval.jsonl"};
    assert_int_equal(aha_recipe_load("recipes/r1_zero_qwen3_moe.yaml", sets, 3, &r), 0);
    assert_string_equal(r.model.path, "tests/fixtures/recipes/model");
    aha_recipe_free(&r);
    assert_int_equal(aha_recipe_load("recipes/r1_zero_qwen3_moe.yaml", sets, 2, &r), -1);
    assert_non_null(strstr(aha_error_message(), "recipes/r1_zero_qwen3_moe.yaml:"));
    assert_non_null(strstr(aha_error_message(), "data.eval: 'data/gsm8k_test.jsonl' does not exist"));
    const char *const missing[] = {"model.path=no/such/dir"};
    assert_int_equal(aha_recipe_load(MINIMAL, missing, 1, &r), -1);
    assert_non_null(strstr(aha_error_message(), "--set model.path=no/such/dir: model.path: 'no/such/dir' does not exist"));
}

static void test_missing_file(void **state) {
    (void)state;
    AhaRecipe r;
    assert_int_equal(aha_recipe_load("tests/fixtures/recipes/none.yaml", NULL, 0, &r), -1);
    assert_string_equal(aha_error_message(),
                        "tests/fixtures/recipes/none.yaml: cannot open the recipe: No such file or directory");
    assert_int_equal(aha_recipe_load("tests/fixtures/recipes", NULL, 0, &r), -1);
    assert_non_null(strstr(aha_error_message(), "tests/fixtures/recipes: "));
}

static void test_equal_sees_every_difference(void **state) {
    (void)state;
    const char *const sets[] = {"optim.eps=2e-8", "rollout.stop=[x]", "rewards.0.extract=boxed", "run.seed=1235",
                                "data.open_think=true", "rewards=[{type: math}, {type: format}]"};
    AhaRecipe a, b;
    assert_int_equal(aha_recipe_load(MINIMAL, NULL, 0, &a), 0);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        assert_int_equal(aha_recipe_load(MINIMAL, &sets[i], 1, &b), 0);
        if (aha_recipe_equal(&a, &b)) fail_msg("recipes differing by %s compare equal", sets[i]);
        aha_recipe_free(&b);
    }
    aha_recipe_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_documented_values),
        cmocka_unit_test(test_minimal_recipe_loads_and_purposes_check),
        cmocka_unit_test(test_full_recipe_values),
        cmocka_unit_test(test_dump_round_trips),
        cmocka_unit_test(test_round_trip_of_awkward_strings),
        cmocka_unit_test(test_overrides_apply_in_order),
        cmocka_unit_test(test_bad_overrides_are_clear_and_harmless),
        cmocka_unit_test(test_load_names_the_failing_set),
        cmocka_unit_test(test_set_replaces_a_missing_path),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_equal_sees_every_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
