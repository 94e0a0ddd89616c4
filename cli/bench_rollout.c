#include <stdio.h>

#include "cli.h"

int bench_rollout(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        puts("usage: aha bench rollout [--json]");
        return 0;
    }
    return cli_not_landed("bench rollout", "this benchmark", 4);
}
