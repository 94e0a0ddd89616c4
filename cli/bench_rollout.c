/* aha bench rollout: the sampler on the bench config, with and without prefix sharing, and
 * the OpenBLAS sgemm rate measured in the same run. A benchmark: nothing is asserted. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aha/error.h"
#include "aha/kernels.h"
#include "aha/model.h"
#include "aha/sampler.h"
#include "cli.h"

static const char usage[] =
    "usage: aha bench rollout [--prompts B] [--samples G] [--prompt-tokens P]\n"
    "                         [--new-tokens N] [--threads T] [--json]\n\n"
    "Samples B prompts x G samples (defaults 64 x 8, 32 prompt tokens, 128 new tokens, no\n"
    "EOS so every completion runs to the limit) from a random model of the bench config\n"
    "(qwen3_moe: hidden 256, 4 layers, 8 heads, 4 kv heads, head dim 32, 8 experts top-2 of\n"
    "width 256, vocab 512), once with prefix sharing and once without. Prints decoded\n"
    "tokens/s, the prefill/decode time split, decode GFLOP/s and the OpenBLAS sgemm rate on\n"
    "a 1024x1024x1024 product measured in the same run.\n";

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_gflops(void) {
    const int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)(i % 13) * 0.01f;
        b[i] = (float)(i % 7) * 0.01f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * n / best / 1e9;
}

/* Forward FLOPs of one token at context length ctx (matmuls and attention; norms and
 * activations are noise). */
static double token_flops(const AhaModelConfig *c, double ctx) {
    double H = c->hidden_size, qd = (double)c->num_heads * c->head_dim,
           kvd = (double)c->num_kv_heads * c->head_dim;
    double per_layer = 2 * H * (qd + 2 * kvd) + 2 * qd * H + 4 * ctx * qd;
    double total = 0;
    for (int l = 0; l < c->num_layers; l++) {
        double ffn = aha_model_layer_is_moe(c, l)
                         ? 2 * H * c->num_experts + 6.0 * H * c->moe_intermediate_size * c->num_experts_per_tok
                         : 6.0 * H * c->intermediate_size;
        total += per_layer + ffn;
    }
    return total + 2 * H * c->vocab_size;
}

static int discard(void *ctx, AhaRolloutGroup *group) {
    (void)ctx;
    aha_rollout_group_free(group);
    return 0;
}

typedef struct Run {
    AhaRolloutStats stats;
    double seconds, decode_gflops;
} Run;

static int run_once(AhaModel *m, const AhaRolloutRequest *req, int share, int threads, Run *out) {
    AhaRolloutOptions opt;
    aha_rollout_options_default(&opt);
    opt.share_prefix = share;
    opt.threads = threads;
    double t0 = now_seconds();
    AHA_TRY(aha_rollout_run(m, req, &opt, discard, NULL, &out->stats));
    out->seconds = now_seconds() - t0;
    /* decode FLOPs: every token forwarded after the prompt, at its own context length */
    double flops = 0;
    int P = req->prompt_lens[0], N = req->params.max_new_tokens;
    for (int t = 1; t < N; t++) flops += token_flops(&m->cfg, P + t);
    flops *= (double)req->n_prompts * req->group_size;
    out->decode_gflops = flops / out->stats.decode_seconds / 1e9;
    return 0;
}

int bench_rollout(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    int prompts = 64, samples = 8, prompt_tokens = 32, new_tokens = 128, threads = 0, json = 0;
    static const struct option options[] = {
        {"prompts", required_argument, 0, 'b'},      {"samples", required_argument, 0, 'g'},
        {"prompt-tokens", required_argument, 0, 'p'}, {"new-tokens", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'},      {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'b': prompts = atoi(optarg); break;
        case 'g': samples = atoi(optarg); break;
        case 'p': prompt_tokens = atoi(optarg); break;
        case 'n': new_tokens = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'j': json = 1; break;
        default: return cli_usage_error("bench rollout", "unknown option");
        }
    }
    if (prompts < 1 || samples < 1 || prompt_tokens < 1 || new_tokens < 1 || threads < 0)
        return cli_usage_error("bench rollout", "sizes must be positive integers");
    if (threads > 0) aha_kernels_set_threads(threads);

    AhaModelConfig cfg;
    if (aha_model_config_init(&cfg, "qwen3_moe") != 0) return cli_fail("bench rollout");
    cfg.vocab_size = 512;
    cfg.hidden_size = 256;
    cfg.num_layers = 4;
    cfg.num_heads = 8;
    cfg.num_kv_heads = 4;
    cfg.head_dim = 32;
    cfg.num_experts = 8;
    cfg.num_experts_per_tok = 2;
    cfg.moe_intermediate_size = 256;
    cfg.intermediate_size = 1024;
    cfg.norm_topk_prob = 1;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (!m || aha_model_init_random(m, 1, 0.02f) != 0) {
        aha_model_free(m);
        return cli_fail("bench rollout");
    }

    int32_t **tokens = calloc((size_t)prompts, sizeof *tokens);
    int *lens = calloc((size_t)prompts, sizeof *lens);
    for (int b = 0; tokens && lens && b < prompts; b++) {
        tokens[b] = malloc(sizeof(int32_t) * (size_t)prompt_tokens);
        lens[b] = prompt_tokens;
        for (int t = 0; tokens[b] && t < prompt_tokens; t++)
            tokens[b][t] = (int32_t)((b * 7919 + t * 104729) % cfg.vocab_size);
    }
    AhaRolloutRequest req;
    memset(&req, 0, sizeof req);
    req.n_prompts = prompts;
    req.prompts = (const int32_t *const *)tokens;
    req.prompt_lens = lens;
    req.group_size = samples;
    aha_sampling_params_default(&req.params);
    req.params.max_new_tokens = new_tokens;
    req.params.seed = 7;

    double sgemm = sgemm_gflops();
    Run shared, unshared;
    int status = run_once(m, &req, 1, threads, &shared);
    if (status == 0) status = run_once(m, &req, 0, threads, &unshared);
    for (int b = 0; tokens && b < prompts; b++) free(tokens[b]);
    free(tokens);
    free(lens);
    aha_model_free(m);
    if (status != 0) return cli_fail("bench rollout");

    int n_threads = aha_kernels_threads();
    double tokens_out = (double)shared.stats.generated_tokens;
    if (json) {
        printf("{\"threads\": %d, \"prompts\": %d, \"samples\": %d, \"prompt_tokens\": %d, "
               "\"new_tokens\": %d, \"sgemm_gflops\": %.2f",
               n_threads, prompts, samples, prompt_tokens, new_tokens, sgemm);
        const Run *runs[2] = {&shared, &unshared};
        const char *names[2] = {"shared", "unshared"};
        for (int i = 0; i < 2; i++)
            printf(", \"%s\": {\"seconds\": %.4f, \"prefill_seconds\": %.4f, \"decode_seconds\": "
                   "%.4f, \"generated_tokens\": %lld, \"tokens_per_second\": %.1f, "
                   "\"decode_gflops\": %.2f}",
                   names[i], runs[i]->seconds, runs[i]->stats.prefill_seconds,
                   runs[i]->stats.decode_seconds, (long long)runs[i]->stats.generated_tokens,
                   (double)runs[i]->stats.generated_tokens / runs[i]->seconds,
                   runs[i]->decode_gflops);
        printf(", \"sharing_speedup\": %.3f, \"decode_fraction_of_sgemm\": %.3f}\n",
               unshared.seconds / shared.seconds, shared.decode_gflops / sgemm);
        return 0;
    }
    printf("rollout bench: %d prompts x %d samples, %d prompt tokens, %d new tokens, %d threads\n",
           prompts, samples, prompt_tokens, new_tokens, n_threads);
    printf("OpenBLAS sgemm 1024^3: %.1f GFLOP/s\n", sgemm);
    const Run *runs[2] = {&shared, &unshared};
    const char *names[2] = {"prefix sharing   ", "no prefix sharing"};
    for (int i = 0; i < 2; i++)
        printf("%s: %.2f s (prefill %.2f s, decode %.2f s), %.0f tokens/s, decode %.1f GFLOP/s "
               "(%.0f%% of sgemm)\n",
               names[i], runs[i]->seconds, runs[i]->stats.prefill_seconds,
               runs[i]->stats.decode_seconds, tokens_out / runs[i]->seconds,
               runs[i]->decode_gflops, 100.0 * runs[i]->decode_gflops / sgemm);
    printf("sharing speedup: %.2fx\n", unshared.seconds / shared.seconds);
    return 0;
}
