#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aha/error.h"

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    }
    return 0;
}

int cli_fail(const char *command) {
    fprintf(stderr, "aha %s: error: %s\n", command, aha_error_message());
    return 1;
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    fprintf(stderr, "aha %s: ", command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'aha %s --help'.\n", command);
    return 2;
}

