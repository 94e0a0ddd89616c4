/* The malformed-recipe corpus (tests/fixtures/recipes/bad/NAME.yaml, each failing with the
 * exact message in NAME.expected), the good fixtures, every YAML recipe in recipes/,
 * and the aha command's handling of recipes. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/recipe.h"

#define BAD_DIR "tests/fixtures/recipes/bad"

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted names in dir ending in suffix; returns the count. */
static int list_files(const char *dir, const char *suffix, char ***out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name), slen = strlen(suffix);
        if (len <= slen || strcmp(e->d_name + len - slen, suffix) != 0) continue;
        *out = realloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(*out, (size_t)n, sizeof **out, by_name);
    return n;
}

static void free_files(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    while (n > 0 && text[n - 1] == '\n') text[--n] = '\0';
    return text;
}

static void test_every_bad_recipe_fails_with_its_exact_message(void **state) {
    (void)state;
    char **names;
    int n = list_files(BAD_DIR, ".yaml", &names);
    assert_true(n >= 30);
    int failures = 0;
    for (int i = 0; i < n; i++) {
        char path[512], expected_path[512];
        snprintf(path, sizeof path, "%s/%s", BAD_DIR, names[i]);
        snprintf(expected_path, sizeof expected_path, "%s/%.*s.expected", BAD_DIR, (int)(strlen(names[i]) - 5),
                 names[i]);
        char *expected = slurp(expected_path);
        if (!expected) {
            print_error("%s: no %s\n", path, expected_path);
            failures++;
            continue;
        }
        AhaRecipe r;
        aha_error_clear();
        int rc = aha_recipe_load(path, NULL, 0, &r);
        if (rc == 0) {
            rc = aha_recipe_require(&r, AHA_PURPOSE_TRAIN);
            aha_recipe_free(&r);
        }
        if (rc == 0) {
            print_error("%s: loaded, expected: %s\n", path, expected);
            failures++;
        } else if (strcmp(aha_error_message(), expected) != 0) {
            print_error("%s\n  expected: %s\n  got:      %s\n", path, expected, aha_error_message());
            failures++;
        }
        free(expected);
    }
    /* and no .expected without its recipe */
    char **expectations;
    int m = list_files(BAD_DIR, ".expected", &expectations);
    if (m != n) {
        print_error("%d .yaml files but %d .expected files in %s\n", n, m, BAD_DIR);
        failures++;
    }
    free_files(expectations, m);
    free_files(names, n);
    assert_int_equal(failures, 0);
}

static void load_all_in(const char *dir, int *loaded, int *failures) {
    char **names;
    int n = list_files(dir, ".yaml", &names);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        AhaRecipe r;
        /* Shipped recipes name paths the user downloads or a script generates (their
         * header says so); everything else in them must still be right, so they load with those paths
         * pointed at fixtures. */
        static const char *const stand_ins[] = {"model.path=tests/fixtures/recipes/model",
                                                "data.train=tests/fixtures/recipes/data/train.jsonl",
                                                "data.eval=tests/fixtures/recipes/data/eval.jsonl",
                                                "pretrain.corpus=tests/fixtures/recipes/data/train.jsonl"};
        if (aha_recipe_load(path, NULL, 0, &r) != 0 &&
            (!strstr(aha_error_message(), "does not exist") ||
             aha_recipe_load(path, stand_ins, 4, &r) != 0)) {
            print_error("%s does not load: %s\n", path, aha_error_message());
            (*failures)++;
            continue;
        }
        /* a recipe is for train when it names training data, for pretrain when it names a corpus */
        if (r.data.train[0] == '\0' && r.pretrain.corpus[0] == '\0') {
            print_error("%s names neither data.train nor pretrain.corpus\n", path);
            (*failures)++;
        }
        aha_recipe_free(&r);
        (*loaded)++;
    }
    free_files(names, n);
}

static void test_every_good_and_shipped_recipe_loads(void **state) {
    (void)state;
    int loaded = 0, failures = 0;
    load_all_in("tests/fixtures/recipes/good", &loaded, &failures);
    assert_true(loaded >= 2);
    load_all_in("recipes", &loaded, &failures);
    assert_int_equal(failures, 0);
}

/* Runs the aha binary through the shell; returns its exit status, stdout in out. */
static int run_aha(const char *args, char *out, size_t size) {
    const char *bin = getenv("AHA_BIN");
    if (!bin) bin = AHA_BUILD_DIR "/aha";
    char command[2048];
    snprintf(command, sizeof command, "%s %s", bin, args);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli_dry_run_and_errors(void **state) {
    (void)state;
    static char out[1 << 16];
    char dump[] = "/tmp/aha_dry_run_XXXXXX";
    int fd = mkstemp(dump);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(run_aha("train tests/fixtures/recipes/good/full.yaml --set optim.lr=7e-7 --dry-run", out,
                             sizeof out),
                     0);
    fputs(out, f);
    fclose(f);
    AhaRecipe printed, direct;
    const char *const sets[] = {"optim.lr=7e-7"};
    assert_int_equal(aha_recipe_load(dump, NULL, 0, &printed), 0);
    assert_int_equal(aha_recipe_load("tests/fixtures/recipes/good/full.yaml", sets, 1, &direct), 0);
    assert_true(aha_recipe_equal(&printed, &direct));
    aha_recipe_free(&printed);
    aha_recipe_free(&direct);
    remove(dump);

    assert_int_equal(run_aha("train " BAD_DIR "/unknown_key.yaml --dry-run 2>&1", out, sizeof out), 1);
    assert_string_equal(out, "aha train: error: " BAD_DIR "/unknown_key.yaml:7:3: unknown key 'optim.lrr' (did you "
                             "mean optim.lr?)\n");
    assert_int_equal(run_aha("pretrain tests/fixtures/recipes/good/minimal.yaml --dry-run 2>&1", out, sizeof out), 1);
    assert_non_null(strstr(out, "missing required key pretrain.corpus for pretrain"));
    assert_int_equal(run_aha("pretrain tests/fixtures/recipes/good/minimal.yaml --dry-run "
                             "--set pretrain.corpus=tests/fixtures/recipes/data/train.jsonl",
                             out, sizeof out),
                     0);
    assert_non_null(strstr(out, "  corpus: \"tests/fixtures/recipes/data/train.jsonl\"\n"));
    /* --dry-run compiles the format patterns and opens the plug-ins, as training would first */
    assert_int_equal(run_aha("train tests/fixtures/recipes/dry_run_bad/format_pattern.yaml --dry-run 2>&1 > /dev/null",
                             out, sizeof out), 1);
    assert_string_equal(out, "aha train: error: tests/fixtures/recipes/dry_run_bad/format_pattern.yaml:7:5: rewards[1] "
                             "(format): pattern: missing closing parenthesis at offset 10 in '<think>(.*'\n");
    assert_int_equal(run_aha("train tests/fixtures/recipes/dry_run_bad/plugin_not_a_shared_object.yaml --dry-run 2>&1 "
                             "> /dev/null", out, sizeof out), 1);
    assert_string_equal(out, "aha train: error: tests/fixtures/recipes/dry_run_bad/plugin_not_a_shared_object.yaml:7:5: "
                             "rewards[1] (junk): plugin 'junk' (tests/fixtures/recipes/data/train.jsonl): cannot load: "
                             "tests/fixtures/recipes/data/train.jsonl: invalid ELF header\n");
    assert_int_equal(run_aha("train --dry-run 2>&1", out, sizeof out), 2);
    assert_int_equal(run_aha("train a.yaml b.yaml 2>&1", out, sizeof out), 2);
    assert_int_equal(run_aha("train --bogus x.yaml 2>&1", out, sizeof out), 2);
    assert_int_equal(run_aha("train --help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--dry-run"));
    assert_int_equal(run_aha("pretrain --help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--set KEY=VALUE"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_bad_recipe_fails_with_its_exact_message),
        cmocka_unit_test(test_every_good_and_shipped_recipe_loads),
        cmocka_unit_test(test_cli_dry_run_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
