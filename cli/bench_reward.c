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

typedef struct {
    double seconds;
    long jobs;
    int json;
} BenchOptions;

/* 0, or the exit status of the usage error it printed. */
static int parse_options(int argc, char **argv, BenchOptions *o) {
    static const struct option options[] = {
        {"seconds", required_argument, NULL, 's'}, {"jobs", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
    int opt;
    o->seconds = 2.0;
    o->jobs = sysconf(_SC_NPROCESSORS_ONLN);
    o->json = 0;
    if (o->jobs < 1) o->jobs = 1;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 's':
            o->seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(o->seconds > 0 && o->seconds < 3600))
                return cli_usage_error("bench reward", "--seconds: expected a number in (0, 3600), got '%s'", optarg);
            break;
        case 'j':
            o->jobs = strtol(optarg, &end, 10);
            if (end == optarg || *end || o->jobs < 1 || o->jobs > 1024)
                return cli_usage_error("bench reward", "--jobs: expected 1..1024, got '%s'", optarg);
            break;
        case 'J': o->json = 1; break;
        default: return cli_usage_error("bench reward", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("bench reward", "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* A data set row as JSON text: {"answer": "..."} with the gold escaped. */
static char *answer_row(const char *gold) {
    size_t n = 2 * strlen(gold) + 32, o = 0;
    char *row = malloc(n);
    if (!row) return NULL;
    o += (size_t)snprintf(row, n, "{\"answer\": \"");
    for (const char *p = gold; *p; p++) {
        if (*p == '"' || *p == '\\') row[o++] = '\\';
        if (*p == '\n') {
            row[o++] = '\\';
            row[o++] = 'n';
            continue;
        }
        row[o++] = *p;
    }
    snprintf(row + o, n - o, "\"}");
    return row;
}

/* The completion and the row of each math pair; -1 when memory ran out (the caller frees both
 * arrays either way). */
static int math_texts(char *completions[N_MATH], char *rows[N_MATH]) {
    /* ~2 KB of reasoning before each answer, as completions have. */
    char reasoning[2200];
    size_t used = 0;
    while (used + 60 < sizeof reasoning - 100)
        used += (size_t)snprintf(reasoning + used, sizeof reasoning - used,
                                 "Step: 24 + 48 = 72, then 72 / 3 = 24, check 3 * 24 = 72. ");
    for (int i = 0; i < N_MATH; i++) {
        size_t n = strlen(reasoning) + strlen(math_pairs[i][0]) + 64;
        completions[i] = malloc(n);
        if (completions[i])
            snprintf(completions[i], n, "<think>%s</think> <answer>%s</answer>", reasoning, math_pairs[i][0]);
        rows[i] = NULL;
    }
    for (int i = 0; i < N_MATH; i++) {
        rows[i] = answer_row(math_pairs[i][1]);
        if (!rows[i] || !completions[i]) return -1;
    }
    return 0;
}

enum { BATCH = 64 };

typedef struct {
    AhaRewardSet *math, *format, *code1, *coden; /* code1: 1 worker; coden: --jobs workers */
} BenchSets;

typedef struct {
    double math_rate, format_rate, code1_rate, coden_rate; /* samples/s, -1 when scoring failed */
    int equal;  /* math pairs scored 1.0 in the last batch */
    int passed; /* the code case passed */
    int failed; /* components that failed, all measurements together */
} BenchFigures;

/* Math and format checks on the same completions; -1 when a set could not be made. */
static int bench_math(BenchSets *sets, const AhaRewardSample *samples, double seconds, AhaRewardValue *values,
                      double *total, BenchFigures *f) {
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_MATH);
    sets->math = aha_reward_set_create(&c, 1, 1);
    aha_reward_config_default(&c, AHA_REWARD_FORMAT);
    sets->format = aha_reward_set_create(&c, 1, 1);
    if (!sets->math || !sets->format) return -1;
    int failed_math, failed_format;
    f->math_rate = measure(sets->math, samples, BATCH, seconds, values, total, &failed_math);
    f->equal = 0;
    for (int i = 0; i < BATCH; i++) f->equal += values[i].status == AHA_REWARD_SCORED && values[i].score == 1.0;
    f->format_rate = measure(sets->format, samples, BATCH, seconds, values, total, &failed_format);
    f->failed += failed_math + failed_format;
    return 0;
}

/* One Python test case per sample, in a fresh sandbox each: 1 worker, then `jobs`. */
static int bench_code(BenchSets *sets, long jobs, double seconds, AhaRewardValue *values, double *total,
                      BenchFigures *f) {
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_CODE);
    c.timeout_s = 5;
    sets->code1 = aha_reward_set_create(&c, 1, 1);
    sets->coden = aha_reward_set_create(&c, 1, (int)jobs);
    if (!sets->code1 || !sets->coden) return -1;
    static const char code_completion[] =
        "Read two numbers and print their sum.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```";
    static const char code_row[] =
        "{\"tests\": {\"format\": \"stdin_stdout\", \"cases\": [{\"input\": \"2 3\\n\", \"output\": \"5\"}]}}";
    AhaRewardSample code_samples[BATCH];
    for (int i = 0; i < BATCH; i++)
        code_samples[i] = (AhaRewardSample){.completion = code_completion, .row_json = code_row, .completion_tokens = -1};
    int failed_code1, failed_coden;
    f->code1_rate = measure(sets->code1, code_samples, 4, seconds, values, total, &failed_code1);
    f->passed = values[0].status == AHA_REWARD_SCORED && values[0].score == 1.0;
    int nbatch = (int)(jobs * 4 < BATCH ? jobs * 4 : BATCH);
    f->coden_rate = measure(sets->coden, code_samples, nbatch, seconds, values, total, &failed_coden);
    f->failed += failed_code1 + failed_coden;
    return 0;
}

static void print_figures(const BenchFigures *f, const BenchOptions *o) {
    if (o->json) {
        printf("{\"math_checks_per_s\": %.1f, \"math_equal_fraction\": %.3f, \"format_checks_per_s\": %.1f, "
               "\"code_cases_per_s_1_worker\": %.2f, \"code_cases_per_s\": %.2f, \"code_jobs\": %ld, "
               "\"failed\": %d, \"seconds\": %g}\n",
               f->math_rate, (double)f->equal / BATCH, f->format_rate, f->code1_rate, f->coden_rate, o->jobs,
               f->failed, o->seconds);
        return;
    }
    printf("math    %10.0f checks/s  (1 worker; %d of %d pairs equal, as intended: %d)\n", f->math_rate, f->equal,
           BATCH, BATCH / 2);
    printf("format  %10.0f checks/s  (1 worker)\n", f->format_rate);
    printf("code    %10.1f cases/s   (1 worker; %s)\n", f->code1_rate, f->passed ? "cases pass" : "CASES FAIL");
    printf("code    %10.1f cases/s   (%ld workers)\n", f->coden_rate, o->jobs);
    if (f->failed) printf("failed components: %d\n", f->failed);
}

int bench_reward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    BenchOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0) return rc;
    char *completions[N_MATH], *rows[N_MATH];
    AhaRewardSample samples[BATCH];
    AhaRewardValue values[BATCH];
    double total[BATCH];
    BenchSets sets = {0};
    BenchFigures f = {0};
    rc = 1;
    if (math_texts(completions, rows) != 0) goto done;
    for (int i = 0; i < BATCH; i++)
        samples[i] = (AhaRewardSample){.completion = completions[i % N_MATH], .row_json = rows[i % N_MATH],
                                       .completion_tokens = -1};
    if (bench_math(&sets, samples, o.seconds, values, total, &f) != 0) goto fail;
    if (bench_code(&sets, o.jobs, o.seconds, values, total, &f) != 0) goto fail;
    if (f.math_rate < 0 || f.format_rate < 0 || f.code1_rate < 0 || f.coden_rate < 0) goto fail;
    print_figures(&f, &o);
    rc = 0;
    goto done;
fail:
    rc = cli_fail("bench reward");
done:
    aha_reward_set_free(sets.math);
    aha_reward_set_free(sets.format);
    aha_reward_set_free(sets.code1);
    aha_reward_set_free(sets.coden);
    for (int i = 0; i < N_MATH; i++) {
        free(completions[i]);
        free(rows[i]);
    }
    return rc;
}
