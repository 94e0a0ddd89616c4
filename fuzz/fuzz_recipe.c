/* Recipe YAML with --set overrides: the input is the YAML, then, after a line "#--set",
 * one KEY=VALUE override per line. An accepted recipe is dumped and must read back equal. */
#include "aha/recipe.h"
#include "fuzz/fuzz_util.h"

#define MAX_SETS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 16384) return 0;
    char *text = fuzz_string(data, size);
    const char *sets[MAX_SETS];
    int n_sets = 0;
    size_t yaml_len = size;
    char *marker = strstr(text, "\n#--set\n");
    if (marker) {
        yaml_len = (size_t)(marker - text) + 1;
        char *line = marker + 8;
        while (*line && n_sets < MAX_SETS) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            sets[n_sets++] = line;
            if (!nl) break;
            line = nl + 1;
        }
    }
    const char *path = fuzz_write("recipe.yaml", data, yaml_len);
    AhaRecipe r;
    if (aha_recipe_load(path, sets, n_sets, &r) == 0) {
        (void)aha_recipe_require(&r, AHA_PURPOSE_TRAIN);
        char *dump = NULL;
        size_t dump_len = 0;
        FILE *f = open_memstream(&dump, &dump_len);
        if (!f) abort();
        int rc = aha_recipe_dump_yaml(&r, f);
        if (fclose(f) != 0) abort();
        if (rc == 0) {
            const char *back_path = fuzz_write("dumped.yaml", (const uint8_t *)dump, dump_len);
            AhaRecipe back;
            if (aha_recipe_load(back_path, NULL, 0, &back) != 0) abort(); /* a dump always reads back */
            if (!aha_recipe_equal(&r, &back)) abort();
            aha_recipe_free(&back);
        }
        free(dump);
        aha_recipe_free(&r);
    }
    free(text);
    return 0;
}
