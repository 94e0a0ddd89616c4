#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha sample --model DIR --prompt TEXT [-n N] [--temperature T] [--top-p P]\n"
    "                  [--top-k K] [--max-new-tokens N] [--seed S] [--json]\n\n"
    "Samples completions of a prompt from a model directory.\n";

int cmd_sample(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("sample", "the rollout sampler", 4);
}
