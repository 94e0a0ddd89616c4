#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha eval --model DIR --data FILE.jsonl [-k K] [--limit N]\n\n"
    "Reports greedy accuracy and mean@k with the math reward.\n";

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("eval", "evaluation of a model on a data set", 8);
}
