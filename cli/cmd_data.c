#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/char_tokenizer.h"
#include "aha/corpus.h"
#include "aha/error.h"
#include "aha/taskgen.h"
#include "cli.h"

static const char usage[] =
    "usage: aha data gen sum|countdown --out-dir DIR [--n N] [--eval-n M]\n"
    "                    [--operands K] [--digits D] [--seed S]\n"
    "       aha data corpus --task FILE.jsonl --out FILE.jsonl [--think-share P] [--seed S]\n"
    "       aha data tokenizer --out-dir DIR [--charset CHARS]\n\n"
    "gen: see below. corpus: a pre-training corpus from a task file, one {\"text\"} line per\n"
    "problem, answered directly (\"Q<answer>A</answer>\") or, for a share P of them (0.16),\n"
    "worked out first (\"Q<think>STEPS</think><answer>A</answer>\"; sums column by column\n"
    "with the carry, countdown the steps of the equation). tokenizer: a character-level\n"
    "tokenizer.json (+ tokenizer_config.json) with <think> </think> <answer> </answer> and\n"
    "<|endoftext|> as single tokens; CHARS defaults to digits, + - * / ( ) = , . space and\n"
    "a-z.\n\n"
    "usage: aha data gen sum|countdown --out-dir DIR [--n N] [--eval-n M]\n"
    "                    [--operands K] [--digits D] [--seed S]\n\n"
    "Writes synthetic reasoning problems as JSONL: DIR/train.jsonl (N problems) and\n"
    "DIR/eval.jsonl (M held-out problems, none shared with train), each row with\n"
    "\"question\" and \"answer\" (countdown also \"nums\" and \"target\"). The same seed\n"
    "gives the same files.\n\n"
    "  sum         K numbers of D digits added: question \"123+456+789\", answer \"1368\"\n"
    "              (defaults K=3, D=3)\n"
    "  countdown   reach a target with K numbers, each used once, with + - * /:\n"
    "              question \"make 65 from 19 36 55 7\", answer one equation that works;\n"
    "              numbers 1 to 10^D-1, targets of D digits, every target reachable\n"
    "              (defaults K=4, D=2)\n\n"
    "  --n N         training problems (10000)\n"
    "  --eval-n M    held-out problems (500)\n"
    "  --operands K  numbers per problem\n"
    "  --digits D    digits per number\n"
    "  --seed S      random seed (1)\n"
    "  --out-dir DIR output directory, created if missing\n"
    "  -h, --help    this help\n";

static int parse_count(const char *option, const char *text, long long max, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < 0 || v > max) {
        cli_usage_error("data", "%s: expected an integer from 0 to %lld, got '%s'", option, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int data_corpus(int argc, char **argv) {
    static const struct option options[] = {
        {"task", required_argument, NULL, 't'},        {"out", required_argument, NULL, 'o'},
        {"think-share", required_argument, NULL, 'p'}, {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *task = NULL, *out = NULL;
    double share = 0.16;
    long long seed = 1;
    int opt;
    optind = 2;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 't': task = optarg; break;
        case 'o': out = optarg; break;
        case 'p':
            share = strtod(optarg, &end);
            if (end == optarg || *end || share < 0 || share > 1)
                return cli_usage_error("data", "--think-share: expected a number in [0, 1], got '%s'", optarg);
            break;
        case 's':
            if (parse_count("--seed", optarg, LLONG_MAX, &seed) != 0) return 2;
            break;
        default: return cli_usage_error("data", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("data", "unexpected argument '%s'", argv[optind]);
    if (!task || !out) return cli_usage_error("data", "corpus needs --task FILE and --out FILE");
    size_t docs = 0, worked = 0;
    if (aha_corpus_write(task, share, (uint64_t)seed, out, &docs, &worked) != 0) return cli_fail("data");
    printf("wrote %s (%zu documents, %zu worked in <think>)\n", out, docs, worked);
    return 0;
}

static int data_tokenizer(int argc, char **argv) {
    static const struct option options[] = {
        {"out-dir", required_argument, NULL, 'o'}, {"charset", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *out_dir = NULL, *charset = AHA_CHAR_TOKENIZER_DEFAULT_CHARSET;
    int opt;
    optind = 2;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'o': out_dir = optarg; break;
        case 'c': charset = optarg; break;
        default: return cli_usage_error("data", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("data", "unexpected argument '%s'", argv[optind]);
    if (!out_dir) return cli_usage_error("data", "tokenizer needs --out-dir DIR");
    if (aha_char_tokenizer_write(out_dir, charset) != 0) return cli_fail("data");
    printf("wrote %s/tokenizer.json (%d tokens)\n", out_dir, aha_char_tokenizer_vocab_size(charset));
    return 0;
}

int cmd_data(int argc, char **argv) {
    static const struct option options[] = {
        {"n", required_argument, NULL, 'n'},        {"eval-n", required_argument, NULL, 'e'},
        {"operands", required_argument, NULL, 'k'}, {"digits", required_argument, NULL, 'd'},
        {"seed", required_argument, NULL, 's'},     {"out-dir", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "corpus") == 0) return data_corpus(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "tokenizer") == 0) return data_tokenizer(argc, argv);
    if (argc < 3 || strcmp(argv[1], "gen") != 0)
        return cli_usage_error("data", "expected 'aha data gen TASK', 'aha data corpus' or 'aha data tokenizer'");
    AhaTaskKind kind;
    if (aha_taskgen_kind_parse(argv[2], &kind) != 0) return cli_usage_error("data", "unknown task '%s'; expected sum or countdown", argv[2]);
    AhaTaskGenConfig config;
    aha_taskgen_defaults(&config, kind);
    const char *out_dir = NULL;
    long long v;
    int opt;
    optind = 3;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (opt) {
        case 'n':
            if (parse_count(name, optarg, INT_MAX, &v) != 0) return 2;
            config.n_train = (int)v;
            break;
        case 'e':
            if (parse_count(name, optarg, INT_MAX, &v) != 0) return 2;
            config.n_eval = (int)v;
            break;
        case 'k':
            if (parse_count(name, optarg, INT_MAX, &v) != 0) return 2;
            config.operands = (int)v;
            break;
        case 'd':
            if (parse_count(name, optarg, INT_MAX, &v) != 0) return 2;
            config.digits = (int)v;
            break;
        case 's':
            if (parse_count(name, optarg, LLONG_MAX, &v) != 0) return 2;
            config.seed = (uint64_t)v;
            break;
        case 'o': out_dir = optarg; break;
        default: return cli_usage_error("data", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("data", "unexpected argument '%s'", argv[optind]);
    if (!out_dir) return cli_usage_error("data", "--out-dir DIR is required");
    if (aha_taskgen_write(&config, out_dir) != 0) return cli_fail("data");
    printf("wrote %s/train.jsonl (%d problems) and %s/eval.jsonl (%d problems)\n", out_dir, config.n_train, out_dir,
           config.n_eval);
    return 0;
}
