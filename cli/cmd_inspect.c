#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha inspect RUN_DIR [steps|best|worst|prompt|grep|history] [options]\n\n"
    "Answers questions about a run from its run.db.\n";

int cmd_inspect(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("inspect", "the run store", 6);
}
