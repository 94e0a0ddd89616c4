/* aha pretrain: a short run on a tiny model learns its corpus, saves a model directory that
 * loads with its tokenizer, and bad corpora are clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "aha/char_tokenizer.h"
#include "aha/error.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/pretrain.h"
#include "aha/recipe.h"
#include "aha/tokenizer.h"

static const char tiny_config[] =
    "{\"architectures\":[\"Qwen3MoeForCausalLM\"],\"model_type\":\"qwen3_moe\",\"vocab_size\":18,"
    "\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"head_dim\":8,\"intermediate_size\":64,\"moe_intermediate_size\":32,\"num_experts\":4,"
    "\"num_experts_per_tok\":2,\"norm_topk_prob\":true,\"decoder_sparse_step\":1,\"mlp_only_layers\":[],"
    "\"tie_word_embeddings\":true,\"rms_norm_eps\":1e-6,\"rope_theta\":10000.0,"
    "\"max_position_embeddings\":64,\"hidden_act\":\"silu\",\"router_aux_loss_coef\":0.001,"
    "\"initializer_range\":0.1,\"eos_token_id\":17}";

typedef struct {
    char dir[64];
    char model[128], corpus[128], out[128];
} Fixture;

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    Fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/aha-pretrain-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->model, sizeof fx->model, "%s/base", fx->dir);
    snprintf(fx->corpus, sizeof fx->corpus, "%s/corpus.jsonl", fx->dir);
    snprintf(fx->out, sizeof fx->out, "%s/out", fx->dir);
    char path[256];
    if (mkdir(fx->model, 0755) != 0) return -1;
    snprintf(path, sizeof path, "%s/config.json", fx->model);
    write_file(path, tiny_config);
    if (aha_char_tokenizer_write(fx->model, "0123456789+= ") != 0) return -1;
    FILE *f = fopen(fx->corpus, "w");
    for (int i = 0; i < 64; i++)
        fprintf(f, "{\"text\":\"%d+%d<answer>%d</answer>\"}\n", i % 10, (i * 7) % 10, i % 10 + (i * 7) % 10);
    fclose(f);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    Fixture *fx = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void make_recipe(const Fixture *fx, AhaRecipe *r, int steps) {
    assert_int_equal(aha_recipe_defaults(r), 0);
    char set[512];
    const char *sets[] = {"model.init=random", "optim.lr=0.01", "optim.warmup_steps=2",
                          "pretrain.seq_len=32", "pretrain.batch_seqs=4"};
    snprintf(set, sizeof set, "model.path=%s", fx->model);
    assert_int_equal(aha_recipe_set(r, set), 0);
    snprintf(set, sizeof set, "pretrain.corpus=%s", fx->corpus);
    assert_int_equal(aha_recipe_set(r, set), 0);
    snprintf(set, sizeof set, "run.output_dir=%s", fx->out);
    assert_int_equal(aha_recipe_set(r, set), 0);
    snprintf(set, sizeof set, "pretrain.steps=%d", steps);
    assert_int_equal(aha_recipe_set(r, set), 0);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) assert_int_equal(aha_recipe_set(r, sets[i]), 0);
}

/* Mean next-token loss of one document under a model. */
static double document_loss(AhaModel *m, const AhaTokenizer *tok, const char *text) {
    AhaTokenIds ids = {0};
    assert_int_equal(aha_tokenizer_encode(tok, text, strlen(text), AHA_TOKENIZE_PARSE_SPECIAL, &ids), 0);
    assert_int_equal(aha_token_ids_push(&ids, aha_tokenizer_eos_id(tok)), 0);
    int n = (int)ids.count;
    int seq_start[2] = {0, n};
    int *tokens = calloc((size_t)n, sizeof *tokens), *targets = calloc((size_t)n, sizeof *targets);
    float *logprob = calloc((size_t)n, sizeof *logprob);
    for (int t = 0; t < n; t++) {
        tokens[t] = ids.ids[t];
        targets[t] = t + 1 < n ? ids.ids[t + 1] : -1;
    }
    AhaBatch batch = {1, seq_start, tokens};
    assert_int_equal(aha_model_forward(m, &batch), 0);
    assert_int_equal(aha_model_logprobs(m, targets, 1.0f, logprob, NULL), 0);
    double loss = 0;
    for (int t = 0; t + 1 < n; t++) loss -= logprob[t];
    free(tokens);
    free(targets);
    free(logprob);
    aha_token_ids_free(&ids);
    return loss / (n - 1);
}

static void test_short_run_learns_and_saves(void **state) {
    Fixture *fx = *state;
    AhaRecipe r;
    make_recipe(fx, &r, 60);
    FILE *log = tmpfile();
    assert_int_equal(aha_pretrain_run(&r, log), 0);
    fclose(log);
    AhaModelSource source;
    AhaModel *trained = aha_model_load_dir(fx->out, &source);
    assert_non_null(trained);
    AhaTokenizer *tok = aha_tokenizer_load(fx->out); /* the tokenizer was copied beside it */
    assert_non_null(tok);
    AhaModel *fresh = aha_model_create(&trained->cfg, NULL);
    aha_model_init_random(fresh, 1234, 0.1f);
    const char *doc = "3+1<answer>4</answer>";
    double before = document_loss(fresh, tok, doc), after = document_loss(trained, tok, doc);
    print_message("document loss: random %.3f, pretrained %.3f\n", before, after);
    assert_true(after < 0.6 * before);
    aha_model_free(fresh);
    aha_model_free(trained);
    aha_tokenizer_free(tok);
    aha_recipe_free(&r);
}

static void test_bad_corpus_is_a_clear_error(void **state) {
    Fixture *fx = *state;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", fx->dir);
    write_file(bad, "{\"text\":\"1+2<answer>3</answer>\"}\n[1, 2]\n");
    AhaRecipe r;
    make_recipe(fx, &r, 2);
    char set[256];
    snprintf(set, sizeof set, "pretrain.corpus=%s", bad);
    assert_int_equal(aha_recipe_set(&r, set), 0);
    assert_int_equal(aha_pretrain_run(&r, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "bad.jsonl:2: expected an object with a string \"text\""));
    write_file(bad, "{\"text\":\"1+2<answer>3</answer>\"}\n{\"text\": \"12\n");
    assert_int_equal(aha_pretrain_run(&r, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "bad.jsonl:2: not JSON"));
    write_file(bad, "{\"text\":\"1+x\"}\n");
    assert_int_equal(aha_pretrain_run(&r, NULL), -1); /* 'x' is not in the vocabulary */
    assert_non_null(strstr(aha_error_message(), "bad.jsonl:1: the tokenizer cannot represent this text"));
    snprintf(set, sizeof set, "pretrain.corpus=%s/missing.jsonl", fx->dir);
    assert_int_equal(aha_recipe_set(&r, set), -1); /* a path key must exist */
    aha_recipe_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_run_learns_and_saves),
        cmocka_unit_test(test_bad_corpus_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
