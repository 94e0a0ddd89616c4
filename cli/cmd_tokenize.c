#include <stdio.h>

#include "cli.h"

static const char usage[] =
"usage: aha tokenize --model DIR [--decode]\n\n"
    "Reads text on stdin and prints token ids (or ids -> text with --decode).\n";

int cmd_tokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return cli_not_landed("tokenize", "the tokenizer", 8);
}
