/* aha bench train: training throughput (forward + log-probs + backward + clip + AdamW) of
 * the MoE policy on issue 3's bench config, against OpenBLAS sgemm measured in the same run. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aha/error.h"
#include "aha/kernels.h"
#include "aha/model.h"
#include "aha/optim.h"
#include "cli.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* issue 3's bench config */
static void bench_config(AhaModelConfig *c) {
    aha_model_config_init(c, "qwen3_moe");
    c->hidden_size = 256;
    c->num_layers = 4;
    c->num_heads = 8;
    c->num_kv_heads = 4;
    c->head_dim = 32;
    c->num_experts = 8;
    c->num_experts_per_tok = 2;
    c->moe_intermediate_size = 256;
    c->intermediate_size = 1024;
    c->vocab_size = 512;
    c->norm_topk_prob = 1;
}

/* issue 7's tiny model (the R1-Zero demo's policy) */
static void tiny_config(AhaModelConfig *c) {
    aha_model_config_init(c, "qwen3_moe");
    c->hidden_size = 128;
    c->num_layers = 4;
    c->num_heads = 4;
    c->num_kv_heads = 2;
    c->head_dim = 32;
    c->num_experts = 8;
    c->num_experts_per_tok = 2;
    c->moe_intermediate_size = 128;
    c->intermediate_size = 512;
    c->vocab_size = 24;
    c->tie_word_embeddings = 1;
    c->norm_topk_prob = 1;
}

/* The tiny batch: sequences of 20-60 tokens (a fixed pseudo-random draw) until about 3,000
 * tokens, like a GRPO batch of prompts and completions. Returns the number of sequences. */
static int tiny_lengths(int *starts, int max_seqs, int target_tokens) {
    uint64_t s = 7;
    int n = 0;
    starts[0] = 0;
    while (n < max_seqs && starts[n] < target_tokens) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        starts[n + 1] = starts[n] + 20 + (int)((s >> 33) % 41);
        n++;
    }
    return n;
}

/* Model FLOPs per trained token: 6 per weight of every product a token passes through
 * (attention projections, router, its k experts, LM head; not the embedding lookup), plus
 * 12 * heads * head_dim * (mean causal context) per layer for the attention scores and
 * values, forward and backward. */
static double flops_per_token(const AhaModelConfig *c, double context) {
    double H = c->hidden_size, QD = (double)c->num_heads * c->head_dim,
           KD = (double)c->num_kv_heads * c->head_dim, params = c->vocab_size * H;
    for (int l = 0; l < c->num_layers; l++) {
        params += H * QD * 2 + H * KD * 2;
        if (aha_model_layer_is_moe(c, l))
            params += c->num_experts * H +
                      3.0 * c->num_experts_per_tok * c->moe_intermediate_size * H +
                      3.0 * c->shared_expert_intermediate_size * H;
        else
            params += 3.0 * c->intermediate_size * H;
    }
    return 6.0 * params + 12.0 * QD * context * c->num_layers;
}

static double sgemm_gflops(int n) {
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0.0;
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    int reps = 0;
    double t0 = now_s(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        reps++;
        t = now_s() - t0;
    } while (t < 1.0 || reps < 3);
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n * reps / t * 1e-9;
}

typedef struct {
    int threads;
    double tokens_per_s, gflops, sgemm, step_s, cpu_step_s;
} Result;

static int run_train(AhaModel *m, AhaAdamW *opt, const AhaBatch *b, const int *targets,
                     float *dlogprob, float *lp, int steps, double *seconds, double *cpu_seconds) {
    int T = b->seq_start[b->n_seqs];
    double best = 1e30, best_cpu = 0.0;
    for (int s = 0; s < steps + 1; s++) { /* the first step warms up and is not timed */
        double t0 = now_s(), c0 = cpu_s();
        aha_model_zero_grads(m);
        AHA_TRY(aha_model_forward(m, b));
        AHA_TRY(aha_model_logprobs(m, targets, 1.0f, lp, NULL));
        for (int t = 0; t < T; t++) dlogprob[t] = -1.0f / T;
        AHA_TRY(aha_model_backward(m, dlogprob, 0.001f));
        aha_clip_grad_norm(m->backend, m->grads.memory, m->grads.count, 1.0f);
        AHA_TRY(aha_adamw_step(opt, m->params.memory, m->grads.memory, 1e-3f));
        double dt = now_s() - t0, dc = cpu_s() - c0;
        if (s > 0 && dt < best) {
            best = dt;
            best_cpu = dc;
        }
    }
    *seconds = best;
    *cpu_seconds = best_cpu;
    return 0;
}

int bench_train(int argc, char **argv) {
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"steps", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"tiny", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, tiny = 0, steps = 3, thread_list[8] = {1, 2}, n_threads = 2;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'y': tiny = 1; break;
        case 's':
            steps = atoi(optarg);
            if (steps < 1) return cli_usage_error("bench train", "--steps: expected a positive integer, got '%s'", optarg);
            break;
        case 't': {
            n_threads = 0;
            char *copy = strdup(optarg), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok && n_threads < 8; tok = strtok_r(NULL, ",", &save)) {
                int n = atoi(tok);
                if (n < 1) {
                    free(copy);
                    return cli_usage_error("bench train", "--threads: expected a list like 1,2, got '%s'", optarg);
                }
                thread_list[n_threads++] = n;
            }
            free(copy);
            if (n_threads == 0) return cli_usage_error("bench train", "--threads: empty list");
            break;
        }
        case 'h':
            puts("usage: aha bench train [--tiny] [--json] [--steps N] [--threads LIST]\n"
                 "\n"
                 "Times one GRPO-style training step of the MoE policy (forward, log-probs,\n"
                 "backward with the load-balancing loss, gradient clipping, AdamW) on the bench\n"
                 "config: qwen3_moe, hidden 256, 4 layers, 8 heads, 4 kv heads, head_dim 32,\n"
                 "8 experts top-2 of width 256, vocab 512, 16 sequences x 256 tokens.\n"
                 "With --tiny, issue 7's demo policy instead: hidden 128, 4 layers, 4 heads,\n"
                 "2 kv heads, head_dim 32, 8 experts top-2 of width 128, vocab 24, tied\n"
                 "embeddings, 77 sequences of 20-60 tokens (3,019 tokens).\n"
                 "Prints tokens/s, the model FLOPs per token assumed, the achieved GFLOP/s, and\n"
                 "OpenBLAS sgemm GFLOP/s on a 1024x1024 product measured in the same run, and\n"
                 "the CPU seconds a step used (a busy machine stretches the wall time).\n"
                 "\n"
                 "  --tiny         the tiny demo model and batch\n"
                 "  --json         print one JSON object\n"
                 "  --steps N      timed steps per thread count, best kept (default 3)\n"
                 "  --threads L    comma-separated thread counts to run (default 1,2)");
            return 0;
        default: return cli_usage_error("bench train", "unknown option");
        }
    }
    AhaModelConfig cfg;
    enum { MAX_SEQS = 128 };
    int starts[MAX_SEQS + 1], n_seqs;
    if (tiny) {
        tiny_config(&cfg);
        n_seqs = tiny_lengths(starts, MAX_SEQS, 3000);
    } else {
        bench_config(&cfg);
        n_seqs = 16;
        for (int i = 0; i <= n_seqs; i++) starts[i] = i * 256;
    }
    const int T = starts[n_seqs];
    double context = 0.0; /* mean causal context of a token */
    for (int i = 0; i < n_seqs; i++) {
        double len = starts[i + 1] - starts[i];
        context += len * (len + 1) / 2.0;
    }
    context /= T;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (m == NULL || aha_model_init_random(m, 1, 0.02f) != 0) {
        aha_model_free(m);
        return cli_fail("bench train");
    }
    int *tokens = malloc(sizeof(int) * T), *targets = malloc(sizeof(int) * T);
    float *dlogprob = malloc(sizeof(float) * T), *lp = malloc(sizeof(float) * T);
    if (!tokens || !targets || !dlogprob || !lp) {
        free(tokens), free(targets), free(dlogprob), free(lp);
        aha_model_free(m);
        fprintf(stderr, "aha bench train: error: out of memory\n");
        return 1;
    }
    uint64_t s = 42;
    for (int t = 0; t < T; t++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tokens[t] = (int)((s >> 33) % (uint64_t)cfg.vocab_size);
    }
    for (int i = 0; i < n_seqs; i++)
        for (int t = starts[i]; t < starts[i + 1]; t++)
            targets[t] = t + 1 < starts[i + 1] ? tokens[t + 1] : -1;
    AhaBatch batch = {n_seqs, starts, tokens};
    AhaAdamW adam;
    AhaAdamWConfig acfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.01f};
    int rc = 0;
    Result results[8];
    double fpt = flops_per_token(&cfg, context);
    if (aha_adamw_init(&adam, m->backend, m->params.count, &acfg) != 0 ||
        aha_model_alloc_grads(m) != 0) {
        rc = cli_fail("bench train");
        goto done;
    }
    for (int i = 0; i < n_threads; i++) {
        aha_kernels_set_threads(thread_list[i]);
        Result *r = &results[i];
        r->threads = thread_list[i];
        openblas_set_num_threads(thread_list[i]); /* sgemm alone uses OpenBLAS's threads */
        r->sgemm = sgemm_gflops(1024);
        aha_kernels_set_threads(thread_list[i]);
        if (run_train(m, &adam, &batch, targets, dlogprob, lp, steps, &r->step_s, &r->cpu_step_s) != 0) {
            rc = cli_fail("bench train");
            goto done;
        }
        r->tokens_per_s = T / r->step_s;
        r->gflops = r->tokens_per_s * fpt * 1e-9;
    }
    if (json) {
        printf("{\"config\": {\"hidden\": %d, \"layers\": %d, \"heads\": %d, \"kv_heads\": %d, "
               "\"experts\": %d, \"top_k\": %d, \"expert_size\": %d, \"vocab\": %d, "
               "\"sequences\": %d, \"tokens\": %d, \"mean_context\": %.1f}, \"params\": %zu, \"active_params\": %zu, "
               "\"flops_per_token\": %.0f, \"runs\": [",
               cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.num_experts,
               cfg.num_experts_per_tok, cfg.moe_intermediate_size, cfg.vocab_size, n_seqs,
               T, context, aha_model_config_num_params(&cfg), aha_model_config_active_params(&cfg), fpt);
        for (int i = 0; i < n_threads; i++)
            printf("%s{\"threads\": %d, \"step_seconds\": %.4f, \"step_cpu_seconds\": %.4f, \"tokens_per_s\": %.1f, "
                   "\"gflops\": %.2f, \"sgemm_1024_gflops\": %.2f, \"fraction_of_sgemm\": %.3f}",
                   i ? ", " : "", results[i].threads, results[i].step_s, results[i].cpu_step_s, results[i].tokens_per_s,
                   results[i].gflops, results[i].sgemm, results[i].gflops / results[i].sgemm);
        printf("]}\n");
    } else {
        printf("bench train: qwen3_moe H%d L%d heads %d/%d, %d experts top-%d x %d, vocab %d, "
               "%d sequences, %d tokens\n",
               cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.num_experts,
               cfg.num_experts_per_tok, cfg.moe_intermediate_size, cfg.vocab_size, n_seqs, T);
        printf("model FLOPs per token (fwd+bwd): %.3f MFLOP\n", fpt * 1e-6);
        for (int i = 0; i < n_threads; i++)
            printf("threads %d: %.3f s/step (%.3f s CPU), %.0f tokens/s, %.1f GFLOP/s; sgemm 1024: "
                   "%.1f GFLOP/s (%.0f%% of it)\n",
                   results[i].threads, results[i].step_s, results[i].cpu_step_s, results[i].tokens_per_s,
                   results[i].gflops, results[i].sgemm, 100.0 * results[i].gflops / results[i].sgemm);
    }
done:
    aha_adamw_free(&adam);
    aha_model_free(m);
    free(tokens), free(targets), free(dlogprob), free(lp);
    return rc;
}
