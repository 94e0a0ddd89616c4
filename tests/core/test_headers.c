/* Every public header compiles with every other (a clash of type or enum names between two
 * modules is a build error here), this list names every header in include/aha/, and every
 * header compiles on its own as C++ with C linkage for its declarations (the CUDA sources
 * include them from .cu files). */
#include "aha/backend.h"
#include "aha/char_tokenizer.h"
#include "aha/corpus.h"
#include "aha/cuda.h"
#include "aha/dataset.h"
#include "aha/dist.h"
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
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const char *const included[] = {
    "backend.h",
    "char_tokenizer.h",
    "corpus.h",
    "cuda.h",
    "dataset.h",
    "dist.h",
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

static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

/* AHA_CXX is the C++ compiler CMake found (build-essential has g++). */
static void test_every_header_compiles_as_cxx_with_c_linkage(void **state) {
    (void)state;
    const char *cxx = AHA_CXX;
    if (cxx[0] == '\0') fail_msg("no C++ compiler was found when CMake configured (install g++)");
    int failed = 0;
    for (size_t i = 0; i < sizeof included / sizeof included[0]; i++) {
        char path[256], cmd[1024];
        snprintf(path, sizeof path, "include/aha/%s", included[i]);
        if (!file_contains(path, "extern \"C\" {")) {
            print_error("%s: no extern \"C\" block around its declarations\n", path);
            failed++;
        }
        snprintf(cmd, sizeof cmd,
                 "echo '#include \"aha/%s\"' | '%s' -std=c++17 -fsyntax-only -Wall -Wextra -Werror "
                 "-Iinclude -x c++ - 2>&1",
                 included[i], cxx);
        if (system(cmd) != 0) {
            print_error("%s does not compile as C++ (command: %s)\n", path, cmd);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_header_is_included_here),
        cmocka_unit_test(test_every_header_compiles_as_cxx_with_c_linkage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
