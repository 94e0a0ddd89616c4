/* A synthetic run store for the rl tests: steps of 4 prompts x 3 samples with two reward
 * components, deterministic text that inspect and report can be checked against. */
#ifndef AHA_RL_STORE_FIXTURE_H
#define AHA_RL_STORE_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/runstore.h"

#define FIXTURE_PROMPTS 4
#define FIXTURE_GROUP 3

static inline char *fixture_tmpdir(void) {
    char *dir = strdup("/tmp/aha-rl-test-XXXXXX");
    if (!dir || !mkdtemp(dir)) return NULL;
    return dir;
}

static inline void fixture_rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Rollouts of one step: prompt p (data row 10 + p, or 10 + (p + step) % 7 to make prompts
 * recur across steps), sample j; completion "step S prompt P sample J answer A". */
static inline int fixture_write_step(AhaRunStore *s, int step, int crash_after) {
    static const char *const names[] = {"math", "format"};
    if (aha_runstore_begin_step(s, step) != 0) return -1;
    int written = 0;
    double sum = 0, n = 0, min_len = 1e9, max_len = 0;
    for (int p = 0; p < FIXTURE_PROMPTS; p++) {
        long long id = 10 + (p + step) % 7;
        char prompt[64], gold[16];
        snprintf(prompt, sizeof prompt, "What is %lld + %lld? Assistant:", id, id);
        snprintf(gold, sizeof gold, "%lld", 2 * id);
        for (int j = 0; j < FIXTURE_GROUP; j++) {
            int correct = (j + step + p) % 3 == 0;
            long long answer = correct ? 2 * id : 2 * id + 1 + j;
            char completion[160];
            snprintf(completion, sizeof completion, "<think>step %d prompt %d sample %d</think> <answer>%lld</answer>",
                     step, p, j, answer);
            double scores[2] = {correct ? 1.0 : 0.0, j == 2 ? NAN : 1.0};
            const char *reasons[2] = {correct ? "equal" : "not equal", j == 2 ? "timeout" : "matched"};
            AhaRolloutRecord r = {
                .prompt_index = p, .sample_index = j, .prompt_id = id, .prompt = prompt, .gold = gold,
                .completion = completion, .n_tokens = 10 + j + step, .reward = scores[0] + 0.1 * (j != 2),
                .advantage = correct ? 1.0 : -0.5, .stop_reason = j == 1 ? "length" : "eos",
                .mean_logprob = -0.5 - 0.1 * j, .n_components = 2, .component_names = names, .scores = scores,
                .reasons = reasons};
            if (aha_runstore_add_rollout(s, &r) != 0) return -1;
            sum += r.reward;
            n += 1;
            if (r.n_tokens < min_len) min_len = r.n_tokens;
            if (r.n_tokens > max_len) max_len = r.n_tokens;
            if (++written == crash_after) return 1;
        }
    }
    if (aha_runstore_add_step_reward(s, "math", 1.0 / 3.0, 0.5) != 0) return -1;
    if (aha_runstore_add_step_reward(s, "format", 1.0, 0.0) != 0) return -1;
    if (step % 2 == 1) {
        AhaEvalRecord e = {.name = "eval", .n_prompts = 8, .k = 4, .accuracy = 0.25 + 0.05 * step,
                           .mean_at_k = 0.2 + 0.05 * step, .seconds = 0.5};
        if (aha_runstore_add_eval(s, &e) != 0) return -1;
    }
    AhaStepMetrics m;
    aha_step_metrics_init(&m);
    m.reward_mean = sum / n + 0.01 * step;
    m.reward_std = 0.4;
    m.accuracy = 1.0 / 3.0 + 0.02 * step;
    m.len_mean = 11.0 + step;
    m.len_min = min_len;
    m.len_max = max_len;
    m.kl = 0.001 * step;
    m.entropy = 2.0 - 0.1 * step;
    m.clip_low = 0.01;
    m.clip_high = 0.02;
    m.lr = 1e-3;
    m.grad_norm = 0.5;
    m.frac_truncated = 1.0 / 3.0;
    m.rollout_tok_s = 1000;
    m.t_step = 1.5;
    return aha_runstore_commit_step(s, &m);
}

#endif
