#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha bench train|rollout|reward [--json]\n\n"
    "Prints throughput figures; never part of the tests.\n";

int cmd_bench(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("bench", "the benchmarks", 3);
}
