#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha reward score --reward math|code|format|NAME --in FILE.jsonl\n"
    "                        [--out FILE.jsonl] [--jobs N]\n\n"
    "Scores completions offline, one JSON object per line.\n";

int cmd_reward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("reward", "the reward functions", 5);
}
