/* aha sample: completions of one prompt from a Hugging Face model directory. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/model.h"
#include "aha/model_io.h"
#include "aha/sampler.h"
#include "aha/tokenizer.h"
#include "cli.h"

static const char usage[] =
    "usage: aha sample --model DIR (--prompt TEXT | --prompt-ids ID,ID,...) [-n N]\n"
    "                  [--temperature T] [--top-p P] [--top-k K] [--max-new-tokens N]\n"
    "                  [--seed S] [--stop STRING]... [--threads N] [--json]\n\n"
    "Samples N completions (default 1) of one prompt from the model in DIR (config.json and\n"
    "safetensors; tokenizer.json for --prompt and for printing text).\n"
    "  --prompt TEXT        encoded with DIR's tokenizer (special tokens in the text are\n"
    "                       recognized; no BOS is added)\n"
    "  --prompt-ids IDS     the prompt as token ids, e.g. 1,2,3 (no tokenizer needed)\n"
    "  --temperature T      default 1; 0 = greedy (log-probs then at T = 1)\n"
    "  --top-p P            nucleus sampling, default 1 (off); needs T > 0\n"
    "  --top-k K            default 0 (off); needs T > 0\n"
    "  --max-new-tokens N   default 256 (fewer where the model's context ends)\n"
    "  --seed S             default 0; sample i always uses the stream (0, i)\n"
    "  --stop STRING        stop when the completion's text contains STRING (repeatable;\n"
    "                       needs the tokenizer); EOS ids come from config.json and\n"
    "                       tokenizer_config.json\n"
    "  --threads N          OpenMP threads (default: OpenMP's)\n"
    "  --json               one JSON object: prompt_ids, samples[{text, tokens, logprobs,\n"
    "                       stop, n_tokens}] (text only with a tokenizer)\n";

static int parse_number(const char *name, const char *text, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= lo && v <= hi))
        return aha_errorf("%s: expected a number in [%g, %g], got '%s'", name, lo, hi, text);
    *out = v;
    return 0;
}

static int parse_int(const char *name, const char *text, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return aha_errorf("%s: expected an integer in [%lld, %lld], got '%s'", name, lo, hi, text);
    *out = v;
    return 0;
}

static int parse_ids(const char *text, AhaTokenIds *ids) {
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ','))
            return aha_errorf("--prompt-ids: expected comma-separated token ids, got '%s'", text);
        AHA_TRY(aha_token_ids_push(ids, (int32_t)v));
        p = *end == ',' ? end + 1 : end;
    }
    AHA_REQUIRE(ids->count > 0, "--prompt-ids: expected at least one id");
    return 0;
}

static int token_bytes(void *ctx, int32_t token, const char **bytes, size_t *len) {
    *bytes = aha_tokenizer_token_bytes(ctx, token, len);
    return 0;
}

static int take_group(void *ctx, AhaRolloutGroup *group) {
    *(AhaRolloutGroup **)ctx = group;
    return 0;
}

/* Every jansson call is checked: `bad` collects failures (out of memory), so the JSON is
 * never printed with pieces missing. */
static int print_json(const AhaTokenIds *prompt, const AhaRolloutGroup *g, const AhaTokenizer *tok) {
    json_t *root = json_object(), *ids = json_array(), *samples = json_array();
    int bad = !root || !ids || !samples;
    for (size_t i = 0; !bad && i < prompt->count; i++) bad |= json_array_append_new(ids, json_integer(prompt->ids[i]));
    bad |= json_object_set_new(root, "prompt_ids", ids);
    for (int s = 0; !bad && s < g->n_samples; s++) {
        const AhaCompletion *c = &g->samples[s];
        json_t *o = json_object(), *toks = json_array(), *lps = json_array();
        bad |= !o || !toks || !lps;
        for (int t = 0; !bad && t < c->n_tokens; t++) {
            bad |= json_array_append_new(toks, json_integer(c->tokens[t]));
            bad |= json_array_append_new(lps, json_real(c->logprobs[t]));
        }
        if (tok && !bad) {
            char *text = aha_tokenizer_decode(tok, c->tokens, (size_t)c->n_tokens, 0, NULL);
            if (!text) {
                json_decref(o);
                json_decref(toks);
                json_decref(lps);
                json_decref(root);
                json_decref(samples);
                return aha_error_prefix("decoding sample %d", s);
            }
            bad |= json_object_set_new(o, "text", json_string(text));
            free(text);
        }
        bad |= json_object_set_new(o, "tokens", toks);
        bad |= json_object_set_new(o, "logprobs", lps);
        bad |= json_object_set_new(o, "stop", json_string(aha_stop_reason_name(c->stop)));
        bad |= json_object_set_new(o, "n_tokens", json_integer(c->n_tokens));
        bad |= json_array_append_new(samples, o);
    }
    bad |= json_object_set_new(root, "samples", samples);
    char *out = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    AHA_REQUIRE(out, "building the JSON output failed (out of memory)");
    puts(out);
    free(out);
    return 0;
}

static int print_text(const AhaRolloutGroup *g, const AhaTokenizer *tok) {
    for (int s = 0; s < g->n_samples; s++) {
        const AhaCompletion *c = &g->samples[s];
        double sum = 0;
        for (int t = 0; t < c->n_tokens; t++) sum += c->logprobs[t];
        printf("--- sample %d: %d tokens, stop %s, mean log-prob %.4f\n", s, c->n_tokens,
               aha_stop_reason_name(c->stop), c->n_tokens ? sum / c->n_tokens : 0.0);
        if (tok) {
            char *text = aha_tokenizer_decode(tok, c->tokens, (size_t)c->n_tokens, 0, NULL);
            if (!text) return aha_error_prefix("decoding sample %d", s);
            printf("%s\n", text);
            free(text);
        } else {
            for (int t = 0; t < c->n_tokens; t++) printf("%s%d", t ? "," : "", (int)c->tokens[t]);
            printf("\n");
        }
    }
    return 0;
}

typedef struct Args {
    const char *model_dir, *prompt, *prompt_ids;
    long long n, top_k, max_new, threads;
    unsigned long long seed;
    double temperature, top_p;
    const char **stops;
    int n_stops, json;
} Args;

static int run(const Args *a) {
    int status = -1;
    AhaModel *m = NULL;
    AhaTokenizer *tok = NULL;
    AhaRolloutGroup *group = NULL;
    AhaTokenIds prompt = {0};
    int32_t eos[AHA_MAX_EOS + 1];
    int n_eos = 0;

    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", a->model_dir);
    int have_tokenizer = access(path, R_OK) == 0;
    if (!have_tokenizer && (a->prompt || a->n_stops > 0)) {
        aha_errorf("%s: no tokenizer.json, which %s needs (use --prompt-ids for token ids)",
                   a->model_dir, a->prompt ? "--prompt" : "--stop");
        goto done;
    }
    if (have_tokenizer && !(tok = aha_tokenizer_load(a->model_dir))) goto done;
    if (!(m = aha_model_load_dir(a->model_dir, NULL))) goto done;
    if (a->prompt) {
        if (aha_tokenizer_encode(tok, a->prompt, strlen(a->prompt), AHA_TOKENIZE_PARSE_SPECIAL, &prompt) != 0) {
            aha_error_prefix("--prompt");
            goto done;
        }
    } else if (parse_ids(a->prompt_ids, &prompt) != 0) {
        goto done;
    }
    for (int i = 0; i < m->cfg.num_eos && i < AHA_MAX_EOS; i++) eos[n_eos++] = m->cfg.eos_token_ids[i];
    if (tok && aha_tokenizer_eos_id(tok) >= 0) {
        int32_t id = aha_tokenizer_eos_id(tok);
        int seen = 0;
        for (int i = 0; i < n_eos; i++) seen |= eos[i] == id;
        if (!seen) eos[n_eos++] = id;
    }

    const int32_t *prompts[1] = {prompt.ids};
    int lens[1] = {(int)prompt.count};
    AhaRolloutRequest req;
    memset(&req, 0, sizeof req);
    req.n_prompts = 1;
    req.prompts = prompts;
    req.prompt_lens = lens;
    req.group_size = (int)a->n;
    aha_sampling_params_default(&req.params);
    req.params.temperature = (float)a->temperature;
    req.params.top_p = (float)a->top_p;
    req.params.top_k = (int)a->top_k;
    req.params.max_new_tokens = (int)a->max_new;
    req.params.seed = a->seed;
    req.params.eos_ids = eos;
    req.params.n_eos_ids = n_eos;
    req.params.stop_strings = a->stops;
    req.params.n_stop_strings = a->n_stops;
    AhaTokenText text = {token_bytes, tok};
    AhaRolloutOptions opt;
    aha_rollout_options_default(&opt);
    opt.threads = (int)a->threads;
    opt.token_text = tok ? &text : NULL;
    if (aha_rollout_run(m, &req, &opt, take_group, &group, NULL) != 0) goto done;
    status = a->json ? print_json(&prompt, group, tok) : print_text(group, tok);
done:
    aha_rollout_group_free(group);
    aha_token_ids_free(&prompt);
    aha_tokenizer_free(tok);
    aha_model_free(m);
    return status;
}

int cmd_sample(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},       {"prompt", required_argument, 0, 'p'},
        {"prompt-ids", required_argument, 0, 'i'},  {"temperature", required_argument, 0, 't'},
        {"top-p", required_argument, 0, 'P'},       {"top-k", required_argument, 0, 'k'},
        {"max-new-tokens", required_argument, 0, 'x'}, {"seed", required_argument, 0, 's'},
        {"stop", required_argument, 0, 'S'},        {"threads", required_argument, 0, 'T'},
        {"json", no_argument, 0, 'j'},              {0, 0, 0, 0}};
    Args a = {.n = 1, .max_new = 256, .temperature = 1.0, .top_p = 1.0};
    const char *stops[64];
    a.stops = stops;
    long long value = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "n:", options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case 'm': a.model_dir = optarg; break;
        case 'p': a.prompt = optarg; break;
        case 'i': a.prompt_ids = optarg; break;
        case 'n': bad = parse_int("-n", optarg, 1, 1 << 20, &a.n); break;
        case 't': bad = parse_number("--temperature", optarg, 0, 1e6, &a.temperature); break;
        case 'P': bad = parse_number("--top-p", optarg, 0, 1, &a.top_p); break;
        case 'k': bad = parse_int("--top-k", optarg, 0, INT32_MAX, &a.top_k); break;
        case 'x': bad = parse_int("--max-new-tokens", optarg, 0, INT32_MAX, &a.max_new); break;
        case 's':
            bad = parse_int("--seed", optarg, 0, INT64_MAX, &value);
            a.seed = (unsigned long long)value;
            break;
        case 'S':
            if (a.n_stops == 64) return cli_usage_error("sample", "at most 64 --stop strings");
            stops[a.n_stops++] = optarg;
            break;
        case 'T': bad = parse_int("--threads", optarg, 0, 1024, &a.threads); break;
        case 'j': a.json = 1; break;
        default:
            return cli_usage_error("sample", "unknown option or missing value: '%s'", argv[optind - 1]);
        }
        if (bad) return cli_usage_error("sample", "%s", aha_error_message());
    }
    if (optind < argc) return cli_usage_error("sample", "unexpected argument '%s'", argv[optind]);
    if (!a.model_dir) return cli_usage_error("sample", "--model DIR is required");
    if (!a.prompt == !a.prompt_ids)
        return cli_usage_error("sample", "give exactly one of --prompt and --prompt-ids");
    return run(&a) == 0 ? 0 : cli_fail("sample");
}
