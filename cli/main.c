#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Subcommand;

static const Subcommand subcommands[] = {
    {"train", cmd_train, "run GRPO from a YAML recipe (or --resume a run)"},
    {"pretrain", cmd_pretrain, "supervised next-token pre-training from a recipe"},
    {"sample", cmd_sample, "sample completions from a model directory"},
    {"eval", cmd_eval, "measure a model's accuracy on a data set"},
    {"reward", cmd_reward, "score completions offline with a reward"},
    {"inspect", cmd_inspect, "query a run's rollouts and metrics"},
    {"report", cmd_report, "write a run's curves as a self-contained HTML page"},
    {"bench", cmd_bench, "benchmarks: train, rollout, reward"},
    {"tokenize", cmd_tokenize, "encode or decode text with a model's tokenizer"},
    {"data", cmd_data, "generate synthetic reasoning data sets"},
    {"version", cmd_version, "print the version and the libraries in use"},
};

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: aha <command> [options]\n\n"
            "aha: GRPO post-training of Mixture-of-Experts language models.\n\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n'aha <command> --help' describes a command.\n");
}

/* libgomp reads OMP_WAIT_POLICY once, when it loads, before main. Its default (threads
 * spin at every barrier) made training 4x slower and evaluation up to 20x slower on the
 * 2-vCPU machines aha targets, where the spinning thread steals the core its partner
 * needs (docs/training.md). Unless the user chose a policy, aha runs itself again with
 * passive waiting; if that exec fails it carries on with the default. */
static void prefer_passive_waiting(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv) {
    prefer_passive_waiting(argv);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) return cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(name, subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "aha: unknown command '%s'\n\n", name);
    print_usage(stderr);
    return 2;
}
