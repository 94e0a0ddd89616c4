#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: aha bench train|rollout|reward [options] [--json]\n\n"
    "Prints throughput figures (never asserted by tests).\n"
    "  train     forward+backward+AdamW tokens/s and GFLOP/s against OpenBLAS sgemm\n"
    "  rollout   decoded tokens/s, prefill/decode split, with and without prefix sharing\n"
    "  reward    math checks/s and sandboxed code cases/s\n"
    "'aha bench <name> --help' lists a benchmark's options.\n";

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0) return bench_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "rollout") == 0) return bench_rollout(argc - 1, argv + 1);
    if (strcmp(argv[1], "reward") == 0) return bench_reward(argc - 1, argv + 1);
    return cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
}
