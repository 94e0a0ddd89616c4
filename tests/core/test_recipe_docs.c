/* docs/recipes.md and the key table agree exactly: every key of the table has one row in the
 * document with the same type, default and meaning, and every row of the document is a key.
 * On a mismatch the expected row is printed, ready to paste. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/recipe.h"

#define MAX_ROWS 256

typedef struct {
    char key[128];
    char line[1024];
} Row;

/* Rows of the key tables: lines starting "| `". The key is the first cell's code span. */
static int parse_rows(const char *text, Row *rows, int max) {
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 3 && strncmp(line, "| `", 3) == 0 && n < max) {
            const char *key_end = memchr(line + 3, '`', len - 3);
            if (key_end) {
                snprintf(rows[n].key, sizeof rows[n].key, "%.*s", (int)(key_end - line - 3), line + 3);
                snprintf(rows[n].line, sizeof rows[n].line, "%.*s", (int)len, line);
                n++;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return n;
}

static const Row *find(const Row *rows, int n, const char *key, int *count) {
    const Row *found = NULL;
    *count = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].key, key) == 0) {
            if (!found) found = &rows[i];
            (*count)++;
        }
    return found;
}

static void test_docs_list_every_key_exactly(void **state) {
    (void)state;
    char *generated = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&generated, &size);
    assert_int_equal(aha_recipe_write_key_tables(mem), 0);
    fclose(mem);

    FILE *f = fopen("docs/recipes.md", "rb");
    assert_non_null(f);
    static char docs[1 << 18];
    size_t len = fread(docs, 1, sizeof docs - 1, f);
    docs[len] = '\0';
    fclose(f);

    static Row expected[MAX_ROWS], actual[MAX_ROWS];
    int ne = parse_rows(generated, expected, MAX_ROWS);
    int na = parse_rows(docs, actual, MAX_ROWS);
    assert_int_equal(ne, aha_recipe_key_count() + aha_recipe_reward_key_count());
    int failures = 0;
    for (int i = 0; i < ne; i++) {
        int count;
        const Row *row = find(actual, na, expected[i].key, &count);
        if (!row) {
            print_error("docs/recipes.md lacks the key %s; add:\n%s\n", expected[i].key, expected[i].line);
            failures++;
        } else if (count > 1) {
            print_error("docs/recipes.md lists %s %d times\n", expected[i].key, count);
            failures++;
        } else if (strcmp(row->line, expected[i].line) != 0) {
            print_error("docs/recipes.md row of %s disagrees with the schema:\n  docs:   %s\n  schema: %s\n",
                        expected[i].key, row->line, expected[i].line);
            failures++;
        }
    }
    for (int i = 0; i < na; i++) {
        int count;
        if (!find(expected, ne, actual[i].key, &count)) {
            print_error("docs/recipes.md lists %s, which is not a recipe key\n", actual[i].key);
            failures++;
        }
    }
    free(generated);
    assert_int_equal(failures, 0);
}

/* The dump writes a section header when the prefix changes, so a section's rows must be
 * contiguous in the table; and keys are unique. */
static void test_schema_sections_are_contiguous_and_keys_unique(void **state) {
    (void)state;
    int n = aha_recipe_key_count();
    for (int i = 0; i < n; i++) {
        const char *key = aha_recipe_key(i)->key;
        const char *dot = strchr(key, '.');
        assert_non_null(dot);
        size_t section = (size_t)(dot - key);
        for (int j = i + 1; j < n; j++) {
            const char *other = aha_recipe_key(j)->key;
            if (strcmp(key, other) == 0) fail_msg("key %s appears twice", key);
            int same = strncmp(key, other, section + 1) == 0;
            const char *between = aha_recipe_key(j - 1)->key;
            int prev_same = strncmp(key, between, section + 1) == 0;
            if (same && !prev_same) fail_msg("section of %s is split by %s", other, between);
        }
    }
    for (int i = 0; i < aha_recipe_reward_key_count(); i++)
        for (int j = i + 1; j < aha_recipe_reward_key_count(); j++)
            assert_string_not_equal(aha_recipe_reward_key(i)->key, aha_recipe_reward_key(j)->key);
    assert_string_equal(aha_recipe_reward_key(0)->key, "type");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_list_every_key_exactly),
        cmocka_unit_test(test_schema_sections_are_contiguous_and_keys_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
