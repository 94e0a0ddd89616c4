#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha pretrain RECIPE.yaml [--set KEY=VALUE]...\n\n"
    "Trains a model with the next-token loss on packed documents.\n";

int cmd_pretrain(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("pretrain", "supervised pre-training", 7);
}
