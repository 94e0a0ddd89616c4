#include <stdio.h>

#include "cli.h"

int bench_reward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        puts("usage: aha bench reward [--json]");
        return 0;
    }
    return cli_not_landed("bench reward", "this benchmark", 5);
}
