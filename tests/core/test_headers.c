/* Every public header compiles with every other (a clash of type or enum names between two
 * modules is a build error here), and this list names every header in include/aha/. */
#include "aha/char_tokenizer.h"
#include "aha/corpus.h"
#include "aha/dataset.h"
#include "aha/error.h"
#include "aha/fs.h"
#include "aha/grpo.h"
#include "aha/kernels.h"
#include "aha/math_answer.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/optim.h"
#include "aha/pretrain.h"
#include "aha/recipe.h"
#include "aha/reward.h"
#include "aha/reward_plugin.h"
#include "aha/reward_recipe.h"
#include "aha/reward_types.h"
#include "aha/rng.h"
#include "aha/runstore.h"
#include "aha/safetensors.h"
#include "aha/sampler.h"
#include "aha/taskgen.h"
#include "aha/tokenizer.h"
#include "aha/trainer.h"
#include "aha/trainloop.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const char *const included[] = {
    "char_tokenizer.h",
    "corpus.h",
    "dataset.h",
    "error.h",
    "fs.h",
    "grpo.h",
    "kernels.h",
    "math_answer.h",
    "model.h",
    "model_io.h",
    "optim.h",
    "pretrain.h",
    "recipe.h",
    "reward.h",
    "reward_plugin.h",
    "reward_recipe.h",
    "reward_types.h",
    "rng.h",
    "runstore.h",
    "safetensors.h",
    "sampler.h",
    "taskgen.h",
    "tokenizer.h",
    "trainer.h",
    "trainloop.h",
};

static void test_every_header_is_included_here(void **state) {
    (void)state;
    DIR *dir = opendir("include/aha");
    assert_non_null(dir);
    struct dirent *e;
    int missing = 0;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0) continue;
        int found = 0;
        for (size_t i = 0; i < sizeof included / sizeof included[0]; i++) found |= strcmp(included[i], e->d_name) == 0;
        if (!found) {
            print_error("include/aha/%s is not included by tests/core/test_headers.c\n", e->d_name);
            missing++;
        }
    }
    closedir(dir);
    assert_int_equal(missing, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_header_is_included_here)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
