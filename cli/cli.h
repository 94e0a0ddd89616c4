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
/* For a subcommand whose issue has not landed: says so and returns 1. */
int cli_not_landed(const char *command, const char *what, int issue);

#endif
