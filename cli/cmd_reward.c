/* aha reward score: scores a JSONL file offline with one reward (or a recipe's rewards). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/recipe.h"
#include "aha/reward.h"
#include "aha/reward_recipe.h"
#include "cli.h"

static const char usage[] =
    "usage: aha reward score --reward math|countdown|code|format|length|overlong|NAME\n"
    "                        --in FILE.jsonl [--out FILE.jsonl] [--jobs N] [options]\n"
    "       aha reward score --recipe RECIPE.yaml --in FILE.jsonl [--out FILE.jsonl] [--jobs N]\n\n"
    "Scores completions offline, one JSON object per line. Each input line holds\n"
    "\"completion\" and the fields the reward reads (\"answer\" for math, \"nums\" and \"target\"\n"
    "for countdown, \"tests\" for code, or a HumanEval row's \"prompt\", \"test\" and\n"
    "\"entry_point\", or an MBPP row's \"test_list\", with \"language\" python, c or cpp when the\n"
    "fence tag should not decide; \"completion_tokens\" for length/overlong; \"prompt\" is\n"
    "passed on to plug-ins). Each output line, in the same order, is the input object plus\n"
    "\"reward\" (a number, or null for no score) and \"reason\". With --recipe the reward is\n"
    "the weighted total of the recipe's rewards and \"components\" holds each one. Strings may\n"
    "hold NUL (\\u0000). A reward that fails on a line gives that line null and prints an error\n"
    "line; a line that is not a JSON object with a \"completion\" string is named (FILE:LINE and\n"
    "why) and left out of the output, and the other lines are scored. The exit status is 1 when\n"
    "a line was bad or a reward failed, 0 when every line was scored or had no score.\n\n"
    "NAME: a plug-in: a path ending in .so (a C plug-in, include/aha/reward_plugin.h), or a\n"
    "command that answers JSON lines (run with /bin/sh -c), e.g.\n"
    "  --reward ./repetition.so   --reward 'python3 examples/reward_plugins/keyword_reward.py'\n\n"
    "options:\n"
    "  --in FILE            input JSONL (- = stdin)\n"
    "  --out FILE           output JSONL (default stdout; written whole or not at all)\n"
    "  --jobs N             parallel workers (default: the number of CPUs)\n"
    "  --extract MODE       math: auto | boxed | answer_tag (auto)\n"
    "  --pattern REGEX      format: PCRE2 pattern (default: the R1-Zero think/answer shape)\n"
    "  --match MODE         format: full | search (full)\n"
    "  --mode MODE          code: fraction | all (fraction)\n"
    "  --timeout S          code, plug-in programs: seconds per call (5)\n"
    "  --memory-mb N        code: address-space limit of the program (256)\n"
    "  --target N --penalty X     length: -X per token beyond N\n"
    "  --max-len N --cache-len N  overlong: DAPO soft overlong penalty\n";

typedef struct {
    json_t **rows; /* [n] */
    int *line_numbers; /* [n] */
    int n, cap;
} Rows;

static void rows_free(Rows *r) {
    for (int i = 0; i < r->n; i++) json_decref(r->rows[i]);
    free(r->rows);
    free(r->line_numbers);
}

/* Reads the input lines; a line that is not a JSON object with a "completion" string is
 * named on stderr (FILE:LINE and why), counted in *bad and left out. Strings may hold NUL
 * (\u0000). -1 only when the file cannot be read. */
static int read_rows(const char *path, Rows *out, int *bad) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    AHA_CHECK_SYS(f, "--in %s", path);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    int line_no = 0, rc = 0;
    *bad = 0;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        line_no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        size_t start = 0;
        while (start < (size_t)len && (line[start] == ' ' || line[start] == '\t')) start++;
        if (start == (size_t)len) continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)len, JSON_ALLOW_NUL, &jerr);
        if (!obj) {
            fprintf(stderr, "aha reward score: %s:%d:%d: bad JSON: %s; line skipped\n", path, line_no,
                    jerr.column, jerr.text);
            (*bad)++;
            continue;
        }
        if (!json_is_object(obj) || !json_is_string(json_object_get(obj, "completion"))) {
            json_decref(obj);
            fprintf(stderr, "aha reward score: %s:%d: expected a JSON object with a \"completion\" string; "
                    "line skipped\n", path, line_no);
            (*bad)++;
            continue;
        }
        if (out->n == out->cap) {
            int cap = out->cap ? 2 * out->cap : 256;
            json_t **rows = realloc(out->rows, (size_t)cap * sizeof *rows);
            if (rows) out->rows = rows;
            int *nums = rows ? realloc(out->line_numbers, (size_t)cap * sizeof *nums) : NULL;
            if (nums) out->line_numbers = nums;
            if (!rows || !nums) {
                json_decref(obj);
                rc = aha_errorf("%s:%d: out of memory", path, line_no);
                break;
            }
            out->cap = cap;
        }
        out->rows[out->n] = obj;
        out->line_numbers[out->n++] = line_no;
    }
    if (rc == 0 && ferror(f)) rc = aha_error_errno("--in %s: reading", path);
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

static int parse_long(const char *text, const char *option, long lo, long hi, long *value) {
    char *end;
    errno = 0;
    *value = strtol(text, &end, 10);
    AHA_REQUIRE(end != text && *end == '\0' && errno == 0 && *value >= lo && *value <= hi,
                "%s: expected an integer in [%ld, %ld], got '%s'", option, lo, hi, text);
    return 0;
}

static int parse_double(const char *text, const char *option, double *value) {
    char *end;
    *value = strtod(text, &end);
    AHA_REQUIRE(end != text && *end == '\0' && isfinite(*value), "%s: expected a number, got '%s'",
                option, text);
    return 0;
}

static size_t str_ends(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int on_path(const char *program) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char candidate[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (snprintf(candidate, sizeof candidate, "%.*s/%s", (int)n, path, program) < (int)sizeof candidate &&
            access(candidate, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* Applies a --reward value to the config: a built-in name, a .so path, or a command. */
static int reward_from_name(const char *name, AhaRewardConfig *c) {
    AhaRewardType type;
    if (aha_reward_type_parse(name, &type) == 0 && type != AHA_REWARD_PLUGIN) {
        c->type = type;
        return 0;
    }
    c->type = AHA_REWARD_PLUGIN;
    c->name = "plugin";
    if (str_ends(name, ".so")) {
        AHA_REQUIRE(access(name, R_OK) == 0, "--reward %s: no such plug-in file (a NAME ending "
                    "in .so is a C plug-in; built-ins are math, countdown, code, format, length, "
                    "overlong)", name);
        c->path = name;
    } else {
        /* One word that is no program on PATH is more likely a misspelt built-in. */
        if (!strpbrk(name, " \t/") && !on_path(name))
            return aha_errorf("--reward %s: not a built-in (math, countdown, code, format, length, "
                              "overlong), not a .so file and not a program on PATH", name);
        c->command = name;
    }
    return 0;
}

/* A reason as a JSON string; bytes that are not valid UTF-8 become '?'. */
static json_t *text_json(const char *text) {
    json_t *j = json_string(text);
    if (j) return j;
    char clean[AHA_REWARD_REASON_MAX];
    size_t n = 0;
    for (; text[n] && n + 1 < sizeof clean; n++) clean[n] = (unsigned char)text[n] < 0x80 ? text[n] : '?';
    clean[n] = '\0';
    return json_string(clean);
}

static int write_output(const char *path, const Rows *rows, const AhaRewardSet *set,
                        const AhaRewardValue *values, const double *total) {
    int count = aha_reward_set_count(set);
    char tmp[4096];
    FILE *f = stdout;
    if (path && strcmp(path, "-") != 0) {
        AHA_REQUIRE(snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid()) < (int)sizeof tmp,
                    "--out: path too long");
        f = fopen(tmp, "w");
        AHA_CHECK_SYS(f, "--out %s", tmp);
    }
    int rc = 0;
    for (int i = 0; i < rows->n && rc == 0; i++) {
        json_t *obj = rows->rows[i];
        const AhaRewardValue *v = &values[(size_t)i * count];
        json_t *reward = isnan(total[i]) ? json_null() : json_real(total[i]);
        if (count == 1) {
            json_object_set_new(obj, "reward", reward);
            json_object_set_new(obj, "reason", text_json(v[0].reason));
        } else {
            json_t *components = json_object();
            for (int k = 0; k < count; k++) {
                json_t *c = json_object();
                json_object_set_new(c, "score", v[k].status == AHA_REWARD_SCORED ? json_real(v[k].score) : json_null());
                json_object_set_new(c, "reason", text_json(v[k].reason));
                json_object_set_new(components, aha_reward_set_name(set, k), c);
            }
            json_object_set_new(obj, "reward", reward);
            json_object_set_new(obj, "reason", json_string(isnan(total[i]) ? "a component has no score" : "weighted sum"));
            json_object_set_new(obj, "components", components);
        }
        if (json_dumpf(obj, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF)
            rc = aha_error_errno("--out %s: writing", path ? path : "stdout");
    }
    if (f != stdout) {
        if (fclose(f) != 0 && rc == 0) rc = aha_error_errno("--out %s: writing", tmp);
        if (rc == 0 && rename(tmp, path) != 0) rc = aha_error_errno("--out %s: renaming %s", path, tmp);
        if (rc != 0) unlink(tmp);
    } else if (fflush(stdout) != 0) {
        rc = aha_error_errno("writing stdout");
    }
    return rc;
}

static int reward_score(int argc, char **argv) {
    static const struct option options[] = {
        {"reward", required_argument, NULL, 'r'},   {"recipe", required_argument, NULL, 'R'},
        {"in", required_argument, NULL, 'i'},       {"out", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'},     {"extract", required_argument, NULL, 'e'},
        {"pattern", required_argument, NULL, 'p'},  {"match", required_argument, NULL, 'm'},
        {"mode", required_argument, NULL, 'M'},     {"timeout", required_argument, NULL, 't'},
        {"memory-mb", required_argument, NULL, 'y'}, {"target", required_argument, NULL, 'T'},
        {"penalty", required_argument, NULL, 'P'},  {"max-len", required_argument, NULL, 'L'},
        {"cache-len", required_argument, NULL, 'C'}, {NULL, 0, NULL, 0},
    };
    const char *reward = NULL, *recipe_path = NULL, *in = NULL, *out = NULL;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN), v;
    if (jobs < 1) jobs = 1;
    AhaRewardConfig c;
    aha_reward_config_default(&c, AHA_REWARD_MATH);
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case 'r': reward = optarg; break;
        case 'R': recipe_path = optarg; break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'j': rc = parse_long(optarg, "--jobs", 1, 1024, &jobs); break;
        case 'e': rc = aha_reward_extract_parse(optarg, &c.extract); break;
        case 'p': c.pattern = optarg; break;
        case 'm': rc = aha_reward_match_parse(optarg, &c.match_search); break;
        case 'M': rc = aha_reward_code_mode_parse(optarg, &c.code_mode); break;
        case 't': rc = parse_double(optarg, "--timeout", &c.timeout_s); break;
        case 'y': rc = parse_long(optarg, "--memory-mb", 1, 1 << 20, &v); c.memory_mb = (int)v; break;
        case 'T': rc = parse_long(optarg, "--target", 0, 1 << 30, &v); c.target_len = (int)v; break;
        case 'P': rc = parse_double(optarg, "--penalty", &c.penalty); break;
        case 'L': rc = parse_long(optarg, "--max-len", 1, 1 << 30, &v); c.max_len = (int)v; break;
        case 'C': rc = parse_long(optarg, "--cache-len", 1, 1 << 30, &v); c.cache_len = (int)v; break;
        default:
            return cli_usage_error("reward score", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (rc != 0) return cli_usage_error("reward score", "%s", aha_error_message());
    }
    if (optind < argc) return cli_usage_error("reward score", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("reward score", "--in FILE.jsonl is required");
    if (!reward == !recipe_path)
        return cli_usage_error("reward score", "give one of --reward NAME and --recipe FILE");

    AhaRewardSet *set = NULL;
    if (recipe_path) {
        AhaRecipe recipe;
        if (aha_recipe_load(recipe_path, NULL, 0, &recipe) != 0) return cli_fail("reward score");
        set = aha_reward_set_from_recipe(&recipe, (int)jobs);
        aha_recipe_free(&recipe);
    } else {
        if (reward_from_name(reward, &c) != 0) return cli_usage_error("reward score", "%s", aha_error_message());
        set = aha_reward_set_create(&c, 1, (int)jobs);
    }
    if (!set) return cli_fail("reward score");

    Rows rows = {0};
    int bad_lines = 0, failed = 0;
    int rc = read_rows(in, &rows, &bad_lines);
    AhaRewardSample *samples = NULL;
    AhaRewardValue *values = NULL;
    double *total = NULL;
    int count = aha_reward_set_count(set);
    if (rc == 0) {
        samples = calloc((size_t)rows.n + 1, sizeof *samples);
        values = calloc((size_t)rows.n * count + 1, sizeof *values);
        total = calloc((size_t)rows.n + 1, sizeof *total);
        if (!samples || !values || !total) rc = aha_errorf("out of memory for %d lines", rows.n);
    }
    if (rc == 0) {
        for (int i = 0; i < rows.n; i++) {
            json_t *row = rows.rows[i];
            json_t *tokens = json_object_get(row, "completion_tokens");
            samples[i] = (AhaRewardSample){
                .prompt = json_string_value(json_object_get(row, "prompt")),
                .prompt_len = json_string_length(json_object_get(row, "prompt")),
                .completion = json_string_value(json_object_get(row, "completion")),
                .completion_len = json_string_length(json_object_get(row, "completion")),
                .row = row,
                .completion_tokens = json_is_integer(tokens) ? (int)json_integer_value(tokens) : -1};
        }
        rc = aha_reward_set_score(set, samples, rows.n, values, total);
    }
    if (rc == 0) rc = write_output(out, &rows, set, values, total);
    if (rc == 0) {
        int scored = 0;
        double sum = 0;
        for (int i = 0; i < rows.n; i++) {
            if (!isnan(total[i])) scored++, sum += total[i];
            for (int k = 0; k < count; k++) failed += values[(size_t)i * count + k].status == AHA_REWARD_FAILED;
        }
        fprintf(stderr, "aha reward: %d lines, %d scored (mean %.4g), %d without a score, %d failed",
                rows.n, scored, scored ? sum / scored : 0.0, rows.n - scored, failed);
        if (bad_lines) fprintf(stderr, "; %d bad line%s skipped (named above)", bad_lines, bad_lines == 1 ? "" : "s");
        fputc('\n', stderr);
    }
    free(samples);
    free(values);
    free(total);
    rows_free(&rows);
    aha_reward_set_free(set);
    if (rc != 0) return cli_fail("reward score");
    return bad_lines || failed ? 1 : 0;
}

int cmd_reward(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "score") != 0)
        return cli_usage_error("reward", "unknown subcommand '%s' (expected score)", argv[1]);
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    return reward_score(argc - 1, argv + 1);
}
