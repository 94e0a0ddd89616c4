/* The aha command: one function per subcommand, each in cli/cmd_<name>.c.
 * A subcommand returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef AHA_CLI_H
#define AHA_CLI_H

int cmd_train(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_reward(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* aha bench <name>: one file each, cli/bench_<name>.c */
int bench_train(int argc, char **argv);
int bench_rollout(int argc, char **argv);
int bench_reward(int argc, char **argv);

/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Prints "aha <command>: error: <libaha's recorded message>" to stderr; returns 1. */
int cli_fail(const char *command);
/* Prints a usage error and a pointer to --help; returns 2. */
int cli_usage_error(const char *command, const char *fmt, ...);

/* Recipe plumbing of train and pretrain (cli/recipe_cli.c). */
#include "aha/recipe.h"
typedef struct {
    const char *recipe_path;
    const char **sets; /* [n_sets] "key=value", pointing into argv */
    int n_sets;
    int dry_run;
} CliRecipeArgs;
/* Appends one --set; -1 (message printed) when out of memory. */
int cli_recipe_add_set(CliRecipeArgs *args, const char *assignment);
void cli_recipe_args_free(CliRecipeArgs *args);
/* Loads args->recipe_path with the overrides and checks the purpose's required keys;
 * returns 0, or 1 after printing the error. */
int cli_recipe_load(const char *command, const CliRecipeArgs *args, AhaRecipePurpose purpose, AhaRecipe *out);
/* Takes the one positional argument left after getopt (argv[optind]) as the recipe, loads it
 * for purpose, and frees args' --set list; a missing or extra argument is a usage error. */
int cli_recipe_load_positional(const char *command, CliRecipeArgs *args, int argc, char **argv,
                               AhaRecipePurpose purpose, AhaRecipe *out);
/* --dry-run: prints the resolved recipe as YAML on stdout; returns the exit status. */
int cli_recipe_dry_run(const char *command, const AhaRecipe *recipe);

#endif
