/* The resolved recipe as YAML, every key in the table's order, that loads back to an equal
 * recipe (checked by tests/core/test_recipe.c). */
#include "core/recipe_internal.h"

#include <stdio.h>
#include <string.h>

#include "aha/error.h"

/* A YAML double-quoted scalar that reads back to exactly s. */
static void write_quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void write_double(FILE *out, double v) {
    char buf[64];
    fputs(aha_recipe_format_double(v, buf, sizeof buf), out);
}

static void write_value(FILE *out, const AhaRecipeKey *k, const void *base) {
    const void *x = cfield(base, k);
    switch (k->type) {
    case AHA_KEY_BOOL: fputs(*(const int *)x ? "true" : "false", out); break;
    case AHA_KEY_INT: fprintf(out, "%d", *(const int *)x); break;
    case AHA_KEY_INT64: fprintf(out, "%lld", *(const long long *)x); break;
    case AHA_KEY_FLOAT: write_double(out, *(const double *)x); break;
    case AHA_KEY_STRING:
    case AHA_KEY_PATH: write_quoted(out, *(char *const *)x); break;
    case AHA_KEY_ENUM: {
        const char *start;
        size_t length;
        if (aha_recipe_enum_value(k->enum_values, *(const int *)x, &start, &length)) fprintf(out, "%.*s", (int)length, start);
        break;
    }
    case AHA_KEY_STRING_LIST: {
        const AhaStringList *list = x;
        fputc('[', out);
        for (int i = 0; i < list->count; i++) {
            if (i) fputs(", ", out);
            write_quoted(out, list->items[i]);
        }
        fputc(']', out);
        break;
    }
    }
}

int aha_recipe_dump_yaml(const AhaRecipe *r, FILE *out) {
    fprintf(out, "# aha recipe, resolved%s%s\n", r->source && r->source[0] ? " from " : "",
            r->source ? r->source : "");
    const char *section = NULL;
    size_t section_len = 0;
    for (int i = 0; i < aha_recipe_key_count(); i++) {
        const AhaRecipeKey *k = aha_recipe_key(i);
        size_t n = section_length(k->key);
        if (!section || n != section_len || strncmp(section, k->key, n) != 0) {
            section = k->key;
            section_len = n;
            /* rewards sit between rollout and algorithm, as in the docs */
            if (strncmp(section, "algorithm.", 10) == 0) {
                fputs("rewards:\n", out);
                for (int e = 0; e < r->n_rewards; e++) {
                    const AhaRewardSpec *entry = &r->rewards[e];
                    int first = 1;
                    for (int j = 0; j < aha_recipe_reward_key_count(); j++) {
                        const AhaRecipeKey *rk = aha_recipe_reward_key(j);
                        if (!key_applies(rk, entry->type)) continue;
                        fprintf(out, "%s%s: ", first ? "  - " : "    ", rk->key);
                        write_value(out, rk, entry);
                        fputc('\n', out);
                        first = 0;
                    }
                }
            }
            fprintf(out, "%.*s:\n", (int)n, k->key);
        }
        fprintf(out, "  %s: ", k->key + n + 1);
        write_value(out, k, r);
        fputc('\n', out);
    }
    if (ferror(out)) return aha_errorf("writing the recipe as YAML failed");
    return 0;
}
