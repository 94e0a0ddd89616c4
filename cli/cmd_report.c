#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/runstore.h"
#include "cli.h"

static const char usage[] =
    "usage: aha report RUN_DIR [-o FILE]\n\n"
    "Writes a self-contained HTML page (inline SVG plots, no network) of the run in\n"
    "RUN_DIR/run.db: reward and accuracy (train and eval), response length, KL, entropy,\n"
    "clip fractions, share stopped by length, gradient norm, and the best and worst\n"
    "completion of a few steps. Default output: RUN_DIR/report.html ('-' = stdout).\n";

int cmd_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct option options[] = {{"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    const char *output = NULL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
        if (opt == 'o') output = optarg;
        else return cli_usage_error("report", "unknown option or missing value in '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1) return cli_usage_error("report", optind >= argc ? "missing RUN_DIR" : "expected one RUN_DIR");
    const char *run_dir = argv[optind];
    char *path = aha_runstore_path(run_dir);
    if (!path) return cli_fail("report");
    AhaRunStore *store = aha_runstore_open_readonly(path);
    if (!store) {
        free(path);
        return cli_fail("report");
    }
    char *default_output = NULL;
    if (!output) {
        /* beside run.db */
        const char *slash = strrchr(path, '/');
        size_t dir_len = slash ? (size_t)(slash - path) : 0;
        default_output = malloc(dir_len + sizeof "/report.html");
        if (!default_output) {
            aha_runstore_close(store);
            free(path);
            aha_errorf("out of memory");
            return cli_fail("report");
        }
        if (slash) snprintf(default_output, dir_len + sizeof "/report.html", "%.*s/report.html", (int)dir_len, path);
        else snprintf(default_output, sizeof "report.html", "report.html");
        output = default_output;
    }
    free(path);
    int to_stdout = strcmp(output, "-") == 0;
    /* written to a temporary name and renamed, so a failed report never replaces a good one */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", output);
    FILE *out = to_stdout ? stdout : fopen(tmp, "w");
    int rc = -1;
    if (!out) {
        aha_error_errno("%s: cannot write the report", tmp);
    } else {
        rc = aha_report_html(store, out);
        if (!to_stdout) {
            if (fclose(out) != 0 && rc == 0) rc = aha_error_errno("%s: writing the report", tmp);
            if (rc == 0 && rename(tmp, output) != 0) rc = aha_error_errno("%s: renaming to %s", tmp, output);
            if (rc != 0) remove(tmp);
        }
    }
    aha_runstore_close(store);
    if (rc == 0 && !to_stdout) fprintf(stderr, "aha report: wrote %s\n", output);
    free(default_output);
    return rc == 0 ? 0 : cli_fail("report");
}
