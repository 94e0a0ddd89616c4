#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "aha/pretrain.h"
#include "cli.h"

static const char usage[] =
    "usage: aha pretrain RECIPE.yaml [--set KEY=VALUE]... [--dry-run]\n\n"
    "Trains a model with the next-token loss on packed documents from pretrain.corpus\n"
    "(model.init: random starts from fresh weights).\n\n"
    "  --set KEY=VALUE  override a recipe key, e.g. --set optim.lr=3e-6 (repeatable;\n"
    "                   lists in YAML: --set 'rollout.stop=[\"</answer>\"]')\n"
    "  --dry-run        check the recipe and print it resolved (defaults filled in) as YAML\n"
    "  -h, --help       this help\n\n"
    "Every recipe key is listed in docs/recipes.md.\n";

int cmd_pretrain(int argc, char **argv) {
    static const struct option options[] = {
        {"set", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    CliRecipeArgs args = {0};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (cli_recipe_add_set(&args, optarg) != 0) return 1;
            break;
        case 'n': args.dry_run = 1; break;
        case 'h':
            cli_recipe_args_free(&args);
            fputs(usage, stdout);
            return 0;
        default:
            cli_recipe_args_free(&args);
            return cli_usage_error("pretrain", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    AhaRecipe recipe;
    int status = cli_recipe_load_positional("pretrain", &args, argc, argv, AHA_PURPOSE_PRETRAIN, &recipe);
    if (status != 0) return status;
    if (args.dry_run)
        status = cli_recipe_dry_run("pretrain", &recipe);
    else
        status = aha_pretrain_run(&recipe, stdout) == 0 ? 0 : cli_fail("pretrain");
    aha_recipe_free(&recipe);
    return status;
}
