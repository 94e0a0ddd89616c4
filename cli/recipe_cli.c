/* The recipe plumbing shared by `aha train` and `aha pretrain`: collecting --set overrides,
 * loading and checking the recipe for a purpose, and --dry-run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "aha/error.h"
#include "aha/recipe.h"
#include "aha/reward.h"
#include "aha/reward_recipe.h"
#include "cli.h"

int cli_recipe_add_set(CliRecipeArgs *args, const char *assignment) {
    const char **grown = realloc(args->sets, (size_t)(args->n_sets + 1) * sizeof *grown);
    if (!grown) {
        fprintf(stderr, "aha: out of memory\n");
        return -1;
    }
    args->sets = grown;
    args->sets[args->n_sets++] = assignment;
    return 0;
}

void cli_recipe_args_free(CliRecipeArgs *args) {
    free(args->sets);
    args->sets = NULL;
    args->n_sets = 0;
}

int cli_recipe_load(const char *command, const CliRecipeArgs *args, AhaRecipePurpose purpose, AhaRecipe *out) {
    if (aha_recipe_load(args->recipe_path, args->sets, args->n_sets, out) != 0) return cli_fail(command);
    if (aha_recipe_require(out, purpose) != 0) {
        aha_recipe_free(out);
        return cli_fail(command);
    }
    return 0;
}

int cli_recipe_load_positional(const char *command, CliRecipeArgs *args, int argc, char **argv,
                               AhaRecipePurpose purpose, AhaRecipe *out) {
    if (optind != argc - 1) {
        cli_recipe_args_free(args);
        return cli_usage_error(command, optind >= argc ? "expected a recipe file" : "expected one recipe file, got '%s' too",
                               optind < argc - 1 ? argv[optind + 1] : "");
    }
    args->recipe_path = argv[optind];
    int status = cli_recipe_load(command, args, purpose, out);
    cli_recipe_args_free(args);
    return status;
}

int cli_recipe_dry_run(const char *command, const AhaRecipe *recipe) {
    /* what training would compile and open first: format patterns, plug-ins */
    AhaRewardSet *rewards = aha_reward_set_from_recipe(recipe, 1);
    if (!rewards) return cli_fail(command);
    aha_reward_set_free(rewards);
    if (aha_recipe_dump_yaml(recipe, stdout) != 0 || fflush(stdout) != 0) {
        aha_errorf("writing the resolved recipe to stdout failed");
        return cli_fail(command);
    }
    return 0;
}
