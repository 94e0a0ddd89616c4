#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/model_io.h"
#include "aha/reward.h"
#include "aha/trainer.h"
#include "aha/trainloop.h"
#include "cli.h"

static const char usage[] =
    "usage: aha eval --model DIR --data FILE.jsonl [options]\n\n"
    "Measures a model on a JSONL data set with the math reward: greedy accuracy, and\n"
    "mean@k, the mean accuracy of k samples per prompt at the given temperature.\n\n"
    "  --model DIR            a model directory (config.json, safetensors, tokenizer.json),\n"
    "                         a checkpoint (its policy/), or a run directory (the policy of\n"
    "                         its newest checkpoint, checked against the CRC-32s in its\n"
    "                         state.json)\n"
    "  --data FILE            JSONL rows with a question and an answer field\n"
    "  -k, --k K              samples per prompt for mean@k (default 4; 0 = greedy only)\n"
    "  --limit N              only the first N rows (default 0 = all)\n"
    "  --template NAME        r1_zero (default), plain or qwen_chat\n"
    "  --open-think           end the prompt with an opening <think>\n"
    "  --system TEXT          system prompt (qwen_chat)\n"
    "  --question-field NAME  default question\n"
    "  --answer-field NAME    default answer; an answer of several lines must end in a final\n"
    "                         answer (\"#### N\" or \\boxed{}) for the math reward\n"
    "  --bare-answers         accept worked solutions without one (the whole text is the gold)\n"
    "  --max-new-tokens N     default 256\n"
    "  --max-prompt-tokens N  longer prompts are skipped (default 256)\n"
    "  --temperature T        of the k samples (default 1.0)\n"
    "  --top-p P              default 1.0\n"
    "  --top-k K              default 0 (off)\n"
    "  --stop TEXT            a stop string (repeatable)\n"
    "  --extract WHERE        where the answer is: auto (default; \\boxed{} or the <answer>\n"
    "                         tag), boxed or answer_tag\n"
    "  --reward NAME          the judge: math (default; the row's answer) or countdown (the\n"
    "                         <answer> equation against the row's nums and target)\n"
    "  --seed N               sampling seed (default 1234)\n"
    "  --threads N            sampler threads (default 0 = all cores)\n"
    "  --json                 print the result as one JSON object\n"
    "  -h, --help             this help\n";

static int parse_int(const char *text, const char *name, int min, int *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < min || v > 1000000000L) {
        cli_usage_error("eval", "%s expects an integer >= %d, got '%s'", name, min, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *text, const char *name, double min, double max, float *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= min && v <= max)) {
        cli_usage_error("eval", "%s expects a number in [%g, %g], got '%s'", name, min, max, text);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int parse_template(const char *text, AhaTemplate *out) {
    static const char *const names[] = {"r1_zero", "plain", "qwen_chat"};
    for (int i = 0; i < 3; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (AhaTemplate)i;
            return 0;
        }
    cli_usage_error("eval", "--template expects r1_zero, plain or qwen_chat, got '%s'", text);
    return -1;
}

static int exists(const char *dir, const char *name) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* --model may name a model directory, a checkpoint (its policy/), or a run directory (the
 * policy of its newest checkpoint). */
static int resolve_model_dir(const char *dir, char *out, size_t cap) {
    snprintf(out, cap, "%s", dir);
    if (exists(dir, "config.json")) return 0;
    if (exists(dir, "policy/config.json")) {
        snprintf(out, cap, "%s/policy", dir);
        return 0;
    }
    if (exists(dir, "checkpoints")) {
        int step;
        char *ck = NULL;
        if (aha_checkpoint_latest(dir, &step, &ck) != 0) return -1;
        if (!ck) return aha_errorf("%s: the run has no complete checkpoint yet", dir);
        snprintf(out, cap, "%s/policy", ck);
        int damaged = aha_checkpoint_verify(ck); /* its state.json's CRC-32s, as a resume checks */
        free(ck);
        if (damaged) return -1;
        fprintf(stderr, "aha eval: %s: the newest checkpoint, step %d\n", dir, step);
    }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    enum { OPT_TEMPLATE = 256, OPT_OPEN_THINK, OPT_SYSTEM, OPT_QFIELD, OPT_AFIELD, OPT_MAXNEW,
           OPT_MAXPROMPT, OPT_TEMP, OPT_TOPP, OPT_TOPK, OPT_STOP, OPT_SEED, OPT_THREADS, OPT_JSON,
           OPT_LIMIT, OPT_EXTRACT, OPT_REWARD, OPT_BARE };
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},   {"data", required_argument, NULL, 'd'},
        {"k", required_argument, NULL, 'k'},       {"limit", required_argument, NULL, OPT_LIMIT},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"open-think", no_argument, NULL, OPT_OPEN_THINK},
        {"system", required_argument, NULL, OPT_SYSTEM},
        {"question-field", required_argument, NULL, OPT_QFIELD},
        {"answer-field", required_argument, NULL, OPT_AFIELD},
        {"max-new-tokens", required_argument, NULL, OPT_MAXNEW},
        {"max-prompt-tokens", required_argument, NULL, OPT_MAXPROMPT},
        {"temperature", required_argument, NULL, OPT_TEMP},
        {"top-p", required_argument, NULL, OPT_TOPP},
        {"top-k", required_argument, NULL, OPT_TOPK},
        {"stop", required_argument, NULL, OPT_STOP},
        {"seed", required_argument, NULL, OPT_SEED},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"json", no_argument, NULL, OPT_JSON},
        {"extract", required_argument, NULL, OPT_EXTRACT},
        {"reward", required_argument, NULL, OPT_REWARD},
        {"bare-answers", no_argument, NULL, OPT_BARE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    AhaEvalConfig cfg = {.template_name = AHA_TEMPLATE_R1_ZERO, .max_prompt_tokens = 256,
                         .max_new_tokens = 256, .temperature = 1.0f, .top_p = 1.0f, .k = 4,
                         .seed = 1234, .share_prefix = 1};
    const char *model_dir = NULL, *data = NULL, *qfield = NULL, *afield = NULL;
    const char *stops[16];
    int n_stop = 0, json = 0, seed = 1234;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "hk:", options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case 'm': model_dir = optarg; break;
        case 'd': data = optarg; break;
        case 'k': bad = parse_int(optarg, "--k", 0, &cfg.k); break;
        case OPT_LIMIT: bad = parse_int(optarg, "--limit", 0, &cfg.limit); break;
        case OPT_TEMPLATE: bad = parse_template(optarg, &cfg.template_name); break;
        case OPT_OPEN_THINK: cfg.open_think = 1; break;
        case OPT_SYSTEM: cfg.system_prompt = optarg; break;
        case OPT_QFIELD: qfield = optarg; break;
        case OPT_AFIELD: afield = optarg; break;
        case OPT_MAXNEW: bad = parse_int(optarg, "--max-new-tokens", 1, &cfg.max_new_tokens); break;
        case OPT_MAXPROMPT: bad = parse_int(optarg, "--max-prompt-tokens", 1, &cfg.max_prompt_tokens); break;
        case OPT_TEMP: bad = parse_float(optarg, "--temperature", 1e-6, 100, &cfg.temperature); break;
        case OPT_TOPP: bad = parse_float(optarg, "--top-p", 1e-6, 1, &cfg.top_p); break;
        case OPT_TOPK: bad = parse_int(optarg, "--top-k", 0, &cfg.top_k); break;
        case OPT_STOP:
            if (n_stop == 16) return cli_usage_error("eval", "at most 16 --stop strings");
            if (!optarg[0]) return cli_usage_error("eval", "--stop expects a non-empty string");
            stops[n_stop++] = optarg;
            break;
        case OPT_SEED: bad = parse_int(optarg, "--seed", 0, &seed); break;
        case OPT_THREADS: bad = parse_int(optarg, "--threads", 0, &cfg.threads); break;
        case OPT_JSON: json = 1; break;
        case OPT_BARE: cfg.bare_answers = 1; break;
        case OPT_EXTRACT:
            if (aha_reward_extract_parse(optarg, &cfg.extract) != 0) {
                cli_usage_error("eval", "--extract: %s", aha_error_message());
                return 2;
            }
            break;
        case OPT_REWARD:
            if (strcmp(optarg, "math") == 0) cfg.reward = AHA_REWARD_MATH;
            else if (strcmp(optarg, "countdown") == 0) cfg.reward = AHA_REWARD_COUNTDOWN;
            else return cli_usage_error("eval", "--reward: expected math or countdown, got '%s'", optarg);
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (bad) return 2;
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!model_dir || !data) return cli_usage_error("eval", "--model and --data are required");
    cfg.seed = (uint64_t)seed;
    cfg.stop = stops;
    cfg.n_stop = n_stop;
    char resolved[8400];
    if (resolve_model_dir(model_dir, resolved, sizeof resolved) != 0) return cli_fail("eval");
    model_dir = resolved;
    AhaModel *m = aha_model_load_dir(model_dir, NULL);
    if (!m) return cli_fail("eval");
    AhaTokenizer *tok = aha_tokenizer_load(model_dir);
    if (!tok) {
        aha_model_free(m);
        return cli_fail("eval");
    }
    AhaEvalResult res;
    int rc = aha_eval_file(m, tok, data, qfield, afield, &cfg, &res);
    aha_tokenizer_free(tok);
    aha_model_free(m);
    if (rc != 0) return cli_fail("eval");
    if (json) {
        printf("{\"n_prompts\": %d, \"skipped\": %d, \"accuracy\": %.6f, \"k\": %d, \"mean_at_k\": ",
               res.n_prompts, res.n_skipped, res.accuracy, res.k);
        if (isfinite(res.mean_at_k)) printf("%.6f", res.mean_at_k);
        else printf("null");
        printf(", \"greedy_len\": %.3f, \"seconds\": %.3f}\n", res.greedy_len, res.seconds);
    } else {
        printf("prompts      %d (%d skipped: longer than %d tokens)\n", res.n_prompts, res.n_skipped,
               cfg.max_prompt_tokens);
        printf("accuracy     %.4f (greedy)\n", res.accuracy);
        if (res.k > 0) printf("mean@%-7d %.4f (temperature %g)\n", res.k, res.mean_at_k, cfg.temperature);
        printf("greedy len   %.1f tokens\n", res.greedy_len);
        printf("seconds      %.2f\n", res.seconds);
    }
    return 0;
}
