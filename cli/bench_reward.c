/* aha bench reward: math checks per second and sandboxed code cases per second. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/reward.h"
#include "cli.h"

static const char usage[] =
    "usage: aha bench reward [--seconds S] [--jobs N] [--json]\n\n"
    "Measures the rule-based rewards through the reward set, as the trainer calls them:\n"
    "  math     checks/s: completions with ~2 KB of reasoning before the answer, a mix of\n"
    "           numbers, fractions, radicals, expressions, tuples; half equal, half not\n"
    "  format   checks/s of the default R1-Zero pattern on the same completions\n"
    "  code     test cases/s: a Python program per case, each in a fresh sandbox\n"
    "           (fork, namespaces, seccomp, python3 start-up), 1 worker and N workers\n"
    "options:\n"
    "  --seconds S   time per measurement (default 2)\n"
    "  --jobs N      workers for the parallel figures (default: the number of CPUs)\n"
    "  --json        one JSON object instead of text\n";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const math_pairs[][2] = {
    {"\\boxed{72}", "Natalia sold 48/2 = 24 clips in May.\n#### 72"},
    {"\\boxed{\\frac{3}{4}}", "0.75"},
    {"x = 5", "5"},
    {"\\boxed{2\\sqrt{2}}", "\\sqrt{8}"},
    {"\\boxed{(1, -2)}", "(1,-2)"},
    {"\\boxed{x^2 + 2x + 1}", "(x+1)^2"},
    {"\\boxed{1{,}234}", "1234"},
    {"\\boxed{50\\%}", "0.5"},
    {"\\boxed{13}", "12"},
    {"\\boxed{\\frac{2}{3}}", "0.75"},
    {"x = 6", "5"},
    {"\\boxed{3\\sqrt{2}}", "\\sqrt{8}"},
    {"\\boxed{(2, -1)}", "(1,-2)"},
    {"\\boxed{x^2 + 1}", "(x+1)^2"},
    {"\\boxed{1235}", "1234"},
    {"\\boxed{\\pi}", "3"},
};
#define N_MATH (int)(sizeof math_pairs / sizeof math_pairs[0])

/* Scores batches of `n` samples with `set` until `seconds` pass; returns samples/s. */
static double measure(AhaRewardSet *set, const AhaRewardSample *samples, int n, double seconds,
                      AhaRewardValue *values, double *total, int *failed) {
    int count = aha_reward_set_count(set);
    long done = 0;
    double start = now(), elapsed;
    *failed = 0;
    do {
        if (aha_reward_set_score(set, samples, n, values, total) != 0) return -1;
        for (int i = 0; i < n * count; i++) *failed += values[i].status == AHA_REWARD_FAILED;
        done += n;
        elapsed = now() - start;
    } while (elapsed < seconds);
    return (double)done / elapsed;
}

int bench_reward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct option options[] = {
        {"seconds", required_argument, NULL, 's'}, {"jobs", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
    double seconds = 2.0;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    int json = 0, opt;
    if (jobs < 1) jobs = 1;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 's':
            seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(seconds > 0 && seconds < 3600))
                return cli_usage_error("bench reward", "--seconds: expected a number in (0, 3600), got '%s'", optarg);
            break;
        case 'j':
            jobs = strtol(optarg, &end, 10);
            if (end == optarg || *end || jobs < 1 || jobs > 1024)
                return cli_usage_error("bench reward", "--jobs: expected 1..1024, got '%s'", optarg);
            break;
        case 'J': json = 1; break;
        default: return cli_usage_error("bench reward", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("bench reward", "unexpected argument '%s'", argv[optind]);

    /* ~2 KB of reasoning before each answer, as completions have. */
    char reasoning[2200];
    size_t used = 0;
    while (used + 60 < sizeof reasoning - 100)
        used += (size_t)snprintf(reasoning + used, sizeof reasoning - used,
                                 "Step: 24 + 48 = 72, then 72 / 3 = 24, check 3 * 24 = 72. ");
    enum { BATCH = 64 };
    char *completions[N_MATH];
    char *rows[N_MATH];
    AhaRewardSample samples[BATCH];
    AhaRewardValue values[BATCH];
    double total[BATCH];
    for (int i = 0; i < N_MATH; i++) {
        size_t n = strlen(reasoning) + strlen(math_pairs[i][0]) + 64;
        completions[i] = malloc(n);
        snprintf(completions[i], n, "<think>%s</think> <answer>%s</answer>", reasoning, math_pairs[i][0]);
        rows[i] = NULL;
    }
    int rc = 1;
    AhaRewardSet *math = NULL, *format = NULL, *code1 = NULL, *coden = NULL;
    /* rows as JSON text: {"answer": "..."} with the gold escaped */
    for (int i = 0; i < N_MATH; i++) {
        const char *g = math_pairs[i][1];
        size_t n = 2 * strlen(g) + 32, o = 0;
        rows[i] = malloc(n);
        if (!rows[i] || !completions[i]) goto done;
        o += (size_t)snprintf(rows[i], n, "{\"answer\": \"");
        for (const char *p = g; *p; p++) {
            if (*p == '"' || *p == '\\') rows[i][o++] = '\\';
            if (*p == '\n') {
                rows[i][o++] = '\\';
                rows[i][o++] = 'n';
                continue;
            }
            rows[i][o++] = *p;
        }
        snprintf(rows[i] + o, n - o, "\"}");
    }
    for (int i = 0; i < BATCH; i++)
        samples[i] = (AhaRewardSample){.completion = completions[i % N_MATH], .row_json = rows[i % N_MATH],
                                       .completion_tokens = -1};

    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_MATH);
    math = aha_reward_set_create(&c, 1, 1);
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    format = aha_reward_set_create(&c, 1, 1);
    if (!math || !format) goto fail;
    int failed_math, failed_format, failed_code1, failed_coden;
    double math_rate = measure(math, samples, BATCH, seconds, values, total, &failed_math);
    int equal = 0;
    for (int i = 0; i < BATCH; i++) equal += values[i].status == AHA_REWARD_SCORED && values[i].score == 1.0;
    double format_rate = measure(format, samples, BATCH, seconds, values, total, &failed_format);

    aha_reward_config_default(&c, AHA_REWARD_CODE);
    c.timeout_s = 5;
    code1 = aha_reward_set_create(&c, 1, 1);
    coden = aha_reward_set_create(&c, 1, (int)jobs);
    if (!code1 || !coden) goto fail;
    static const char code_completion[] =
        "Read two numbers and print their sum.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```";
    static const char code_row[] =
        "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": \"2 3\\n\", \"output\": \"5\"}]}}";
    AhaRewardSample code_samples[BATCH];
    for (int i = 0; i < BATCH; i++)
        code_samples[i] = (AhaRewardSample){.completion = code_completion, .row_json = code_row, .completion_tokens = -1};
    double code1_rate = measure(code1, code_samples, 4, seconds, values, total, &failed_code1);
    int passed = values[0].status == AHA_REWARD_SCORED && values[0].score == 1.0;
    int nbatch = (int)(jobs * 4 < BATCH ? jobs * 4 : BATCH);
    double coden_rate = measure(coden, code_samples, nbatch, seconds, values, total, &failed_coden);
    if (math_rate < 0 || format_rate < 0 || code1_rate < 0 || coden_rate < 0) goto fail;

    if (json) {
        printf("{\"math_checks_per_s\": %.1f, \"math_equal_fraction\": %.3f, \"format_checks_per_s\": %.1f, "
               "\"code_cases_per_s_1_worker\": %.2f, \"code_cases_per_s\": %.2f, \"code_jobs\": %ld, "
               "\"failed\": %d, \"seconds\": %g}\n",
               math_rate, (double)equal / BATCH, format_rate, code1_rate, coden_rate, jobs,
               failed_math + failed_format + failed_code1 + failed_coden, seconds);
    } else {
        printf("math    %10.0f checks/s  (1 worker; %d of %d pairs equal, as intended: %d)\n", math_rate,
               equal, BATCH, BATCH / 2);
        printf("format  %10.0f checks/s  (1 worker)\n", format_rate);
        printf("code    %10.1f cases/s   (1 worker; %s)\n", code1_rate, passed ? "cases pass" : "CASES FAIL");
        printf("code    %10.1f cases/s   (%ld workers)\n", coden_rate, jobs);
        if (failed_math + failed_format + failed_code1 + failed_coden)
            printf("failed components: %d\n", failed_math + failed_format + failed_code1 + failed_coden);
    }
    rc = 0;
    goto done;
fail:
    rc = cli_fail("bench reward");
done:
    aha_reward_set_free(math);
    aha_reward_set_free(format);
    aha_reward_set_free(code1);
    aha_reward_set_free(coden);
    for (int i = 0; i < N_MATH; i++) {
        free(completions[i]);
        free(rows[i]);
    }
    return rc;
}
