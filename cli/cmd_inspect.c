#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/runstore.h"
#include "cli.h"

static const char usage[] =
    "usage: aha inspect RUN_DIR [QUESTION] [options]\n\n"
    "Answers questions about a run from RUN_DIR/run.db (RUN_DIR may also be the .db file).\n\n"
    "questions:\n"
    "  summary            the run, its last steps and evals (the default)\n"
    "  steps              metrics per step as a table (--from, --to, --columns)\n"
    "  best | worst       the best / worst completions of a step (--step, -n)\n"
    "  prompt             every sample of one prompt of a step side by side (--step, --prompt)\n"
    "  grep               rollouts whose completion contains --text and/or that pass\n"
    "                     --reward 'NAME OP VALUE' (NAME: reward, advantage, n_tokens or a\n"
    "                     reward component such as math; OP: >= <= > < = !=)\n"
    "  history            how one data-set prompt's answers changed across steps (--prompt-id)\n"
    "  evals              evaluation results per step\n\n"
    "options:\n"
    "  --step N           step to look at (default: the last)\n"
    "  --prompt I         prompt position in the step's batch (prompt; default 0)\n"
    "  --prompt-id N      row of the training data set (history)\n"
    "  --text STRING      substring of the completion (grep)\n"
    "  --reward FILTER    e.g. math>=1, reward<0 (grep)\n"
    "  -n, --limit N      rows to show\n"
    "  --from N --to M    step range (steps)\n"
    "  --columns A,B,...  step columns (steps; docs/run-store.md lists them)\n"
    "  --width N          characters of completion text per table cell (default 60)\n\n"
    "The file is plain SQLite: sqlite3 RUN_DIR/run.db works too (docs/run-store.md).\n";

static int parse_int(const char *text, const char *option, long long *value) {
    char *end;
    *value = strtoll(text, &end, 10);
    if (end == text || *end != '\0') return aha_errorf("%s: expected an integer, got '%s'", option, text);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct option options[] = {
        {"step", required_argument, NULL, 's'},     {"prompt", required_argument, NULL, 'p'},
        {"prompt-id", required_argument, NULL, 'i'}, {"text", required_argument, NULL, 't'},
        {"reward", required_argument, NULL, 'r'},    {"limit", required_argument, NULL, 'n'},
        {"from", required_argument, NULL, 'f'},      {"to", required_argument, NULL, 'T'},
        {"columns", required_argument, NULL, 'c'},   {"width", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    AhaInspectOptions o;
    aha_inspect_options_init(&o);
    int opt;
    long long v;
    opterr = 0;
    /* GNU getopt permutes: RUN_DIR and the question may come before or after the options */
    while ((opt = getopt_long(argc, argv, "n:", options, NULL)) != -1) {
        switch (opt) {
        case 's': if (parse_int(optarg, "--step", &v)) return cli_fail("inspect"); o.step = (int)v; break;
        case 'p': if (parse_int(optarg, "--prompt", &v)) return cli_fail("inspect"); o.prompt_index = (int)v; break;
        case 'i': if (parse_int(optarg, "--prompt-id", &v)) return cli_fail("inspect"); o.prompt_id = v; break;
        case 'n': if (parse_int(optarg, "--limit", &v)) return cli_fail("inspect"); o.limit = (int)v; break;
        case 'f': if (parse_int(optarg, "--from", &v)) return cli_fail("inspect"); o.from = (int)v; break;
        case 'T': if (parse_int(optarg, "--to", &v)) return cli_fail("inspect"); o.to = (int)v; break;
        case 'w': if (parse_int(optarg, "--width", &v)) return cli_fail("inspect"); o.width = (int)v; break;
        case 't': o.text = optarg; break;
        case 'r': o.reward_filter = optarg; break;
        case 'c': o.columns = optarg; break;
        default: return cli_usage_error("inspect", "unknown option or missing value in '%s'", argv[optind - 1]);
        }
    }
    const char *positional[2] = {NULL, NULL};
    int npos = 0;
    for (; optind < argc; optind++) {
        if (npos == 2) return cli_usage_error("inspect", "unexpected argument '%s'", argv[optind]);
        positional[npos++] = argv[optind];
    }
    if (!positional[0]) return cli_usage_error("inspect", "missing RUN_DIR");
    char *path = aha_runstore_path(positional[0]);
    if (!path) return cli_fail("inspect");
    AhaRunStore *store = aha_runstore_open_readonly(path);
    free(path);
    if (!store) return cli_fail("inspect");
    int rc = aha_inspect(store, positional[1] ? positional[1] : "summary", &o, stdout);
    aha_runstore_close(store);
    return rc == 0 ? 0 : cli_fail("inspect");
}
