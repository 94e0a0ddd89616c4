#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha train RECIPE.yaml [--set KEY=VALUE]... [--dry-run]\n"
    "       aha train --resume RUN_DIR\n\n"
    "Runs GRPO as the recipe says, recording every rollout in RUN_DIR/run.db.\n";

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("train", "the GRPO trainer", 6);
}
