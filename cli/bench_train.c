#include <stdio.h>

#include "cli.h"

int bench_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        puts("usage: aha bench train [--json]");
        return 0;
    }
    return cli_not_landed("bench train", "this benchmark", 3);
}
