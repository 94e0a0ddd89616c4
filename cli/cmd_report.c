#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha report RUN_DIR [-o FILE.html]\n\n"
    "Writes the run's curves and sample completions as one self-contained HTML page.\n";

int cmd_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("report", "run reports", 6);
}
