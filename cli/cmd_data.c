#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha data gen TASK [options]\n\n"
    "Writes synthetic reasoning problems as JSONL.\n";

int cmd_data(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("data", "the task generator", 7);
}
