/* The GRPO loop: set up from a recipe (or a run directory to resume), then one step after
 * another: rollout -> update -> record -> eval -> checkpoint. docs/training.md. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aha/dist.h"
#include "aha/error.h"
#include "aha/fs.h"
#include "aha/reward_recipe.h"
#include "rl/trainer_internal.h"

#define EVAL_SEED_MIX 0x6576616c00000000ull /* "eval" */

static _Thread_local int last_interrupted;

int aha_train_was_interrupted(void) { return last_interrupted; }

typedef struct {
    AhaRecipe recipe;           /* owned copy (loaded from RUN_DIR/recipe.yaml) */
    const AhaRecipe *r;
    char run_dir[4096];
    AhaModel *policy, *ref;
    AhaModelSource source;
    AhaBackend *backend;        /* batch-invariant: training log-probs equal the sampler's; the
                                   policy, the reference and AdamW run on it */
    AhaTokenizer *tok;
    AhaDataset *train, *eval;
    PromptCache prompts;
    AhaDataOrder order;
    AhaRewardSet *rewards;
    double *weights;
    int n_comp, accuracy_comp;
    AhaAdamW opt;               /* ZeRO-1: the moments of shard's slice only */
    ParamShard shard;           /* ZeRO-1 (distributed.zero1), counts == NULL = off */
    AhaRunStore *store;         /* rank 0 only */
    AhaTrainerState state;
    FILE *log;
    int32_t eos[AHA_MAX_EOS + 1];
    int n_eos;
    char *recipe_yaml;
    int lock_fd;                /* RUN_DIR/aha.lock, held while training; -1 = not taken */
} Trainer;

static void trainer_free(Trainer *t) {
    if (t->store) aha_runstore_close(t->store);
    aha_run_unlock(t->lock_fd);
    aha_adamw_free(&t->opt);
    dist_shard_free(&t->shard);
    free(t->weights);
    if (t->rewards) aha_reward_set_free(t->rewards);
    aha_data_order_free(&t->order);
    prompt_cache_free(&t->prompts);
    if (t->eval) aha_dataset_free(t->eval);
    if (t->train) aha_dataset_free(t->train);
    if (t->tok) aha_tokenizer_free(t->tok);
    if (t->ref) aha_model_free(t->ref);
    if (t->policy) aha_model_free(t->policy);
    aha_backend_free(t->backend);
    if (t->log) fclose(t->log);
    free(t->recipe_yaml);
    aha_recipe_free(&t->recipe);
}

/* The keys a resume may change (aha train --resume RUN_DIR --set KEY=VALUE): they steer
 * the bookkeeping, not the trajectory (run.steps moves the end, and with it a cosine
 * schedule's decay). run.output_dir is ignored on resume (the run is where it is now). */
static const char *const resumable_keys[] = {"run.steps", "run.eval_every", "run.checkpoint_every",
                                             "run.keep_checkpoints", "run.max_nan_skips", "run.log_file"};
#define N_RESUMABLE (int)(sizeof resumable_keys / sizeof resumable_keys[0])

static int resumable_line(const char *section, const char *line, size_t len) {
    if (strcmp(section, "run") != 0 || len < 3 || line[0] != ' ' || line[1] != ' ') return 0;
    if (len > 13 && strncmp(line + 2, "output_dir:", 11) == 0) return 1;
    for (int i = 0; i < N_RESUMABLE; i++) {
        const char *key = resumable_keys[i] + 4; /* after "run." */
        size_t k = strlen(key);
        if (len > k + 2 && strncmp(line + 2, key, k) == 0 && line[2 + k] == ':') return 1;
    }
    return 0;
}

/* FNV-1a 64 of the resolved recipe: a resume refuses a recipe that changed. Comment lines
 * (the first names the file it came from) and the resumable run keys are left out. */
static void recipe_digest(const char *yaml, char out[65]) {
    uint64_t h = 0xcbf29ce484222325ull;
    char section[64] = "";
    for (const char *line = yaml; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (line[0] != ' ' && line[0] != '#') {
            size_t n = strcspn(line, ":\n");
            snprintf(section, sizeof section, "%.*s", (int)(n < 63 ? n : 63), line);
        }
        if (line[0] != '#' && !resumable_line(section, line, len))
            for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)line[i]) * 0x100000001b3ull;
        line += len;
    }
    snprintf(out, 65, "fnv1a64:%016llx", (unsigned long long)h);
}

static int check_resume_sets(const AhaTrainOptions *o) {
    for (int i = 0; o && i < o->n_resume_sets; i++) {
        const char *set = o->resume_sets[i];
        size_t k = strcspn(set, "=");
        int ok = 0;
        for (int j = 0; j < N_RESUMABLE && !ok; j++)
            ok = strlen(resumable_keys[j]) == k && strncmp(set, resumable_keys[j], k) == 0;
        AHA_REQUIRE(ok, "--set %s: a resumed run can change only run.steps, run.eval_every, run.checkpoint_every, "
                        "run.keep_checkpoints, run.max_nan_skips and run.log_file", set);
    }
    return 0;
}

static char *recipe_to_yaml(const AhaRecipe *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        aha_error_errno("recipe: open_memstream");
        return NULL;
    }
    int rc = aha_recipe_dump_yaml(r, f);
    if (fclose(f) != 0 || rc != 0) {
        free(buf);
        aha_errorf("recipe: writing it as YAML failed");
        return NULL;
    }
    return buf;
}

static AhaModel *load_policy(const AhaRecipe *r, AhaModelSource *source) {
    if (r->model.init == AHA_INIT_PRETRAINED) return aha_model_load_dir(r->model.path, source);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", r->model.path);
    AhaModelConfig cfg;
    if (aha_model_config_load(&cfg, path) != 0) return NULL;
    AhaModel *m = aha_model_create(&cfg, NULL);
    if (!m) return NULL;
    if (aha_model_init_random(m, (uint64_t)r->run.seed,
                              cfg.initializer_range > 0 ? cfg.initializer_range : 0.02f) != 0) {
        aha_model_free(m);
        return NULL;
    }
    memset(source, 0, sizeof *source);
    snprintf(source->dir, sizeof source->dir, "%s", r->model.path); /* tokenizer files */
    source->dtype = AHA_DTYPE_F32;
    source->layout = AHA_EXPERT_LAYOUT_PER_EXPERT;
    return m;
}

/* A math reward grades against the answer field: worked solutions need their final answer. */
static int needs_final_answer(const AhaRecipe *r) {
    for (int i = 0; i < r->n_rewards && !r->data.bare_answers; i++)
        if (r->rewards[i].type == AHA_REWARD_MATH) return 1;
    return 0;
}

static int needs_tests_field(const AhaRecipe *r) {
    for (int i = 0; i < r->n_rewards; i++)
        if (r->rewards[i].type == AHA_REWARD_CODE) return 1;
    return 0;
}

static int setup(Trainer *t) {
    const AhaRecipe *r = t->r;
    AHA_TRY(dist_check_recipe(r));
    if (!(t->policy = load_policy(r, &t->source))) return aha_error_prefix("model.path %s", r->model.path);
    if (!(t->backend = aha_backend_invariant_like(t->policy->backend))) return -1;
    AHA_TRY(aha_model_set_backend(t->policy, t->backend, 0));
    AHA_TRY(aha_model_alloc_grads(t->policy));
    AHA_TRY(dist_setup_experts(r, &t->policy->cfg));
    if (!(t->tok = aha_tokenizer_load(r->model.path))) return aha_error_prefix("model.path %s", r->model.path);
    AHA_REQUIRE(aha_tokenizer_vocab_size(t->tok) <= t->policy->cfg.vocab_size,
                "model.path %s: the tokenizer has %d tokens but config.json vocab_size is %d",
                r->model.path, aha_tokenizer_vocab_size(t->tok), t->policy->cfg.vocab_size);
    t->n_eos = trainer_eos_ids(t->policy, t->tok, t->eos, AHA_MAX_EOS + 1);
    AhaDatasetFields fields = {.question = r->data.question_field, .answer = r->data.answer_field,
                               .tests = needs_tests_field(r) ? r->data.tests_field : NULL,
                               .final_answer = needs_final_answer(r)};
    if (!(t->train = aha_dataset_load(r->data.train, &fields))) return aha_error_prefix("data.train");
    if (r->run.eval_every > 0 && r->data.eval[0] && !(t->eval = aha_dataset_load(r->data.eval, &fields)))
        return aha_error_prefix("data.eval");
    AHA_TRY(prompt_cache_init(&t->prompts, t->train, t->tok, r->data.template_name, r->data.open_think,
                              r->data.system_prompt, r->data.max_prompt_tokens));
    /* fail before anything is written when no prompt can ever be drawn */
    int fits = 0;
    for (size_t i = 0; i < t->prompts.n && !fits; i++) {
        int len = prompt_cache_get(&t->prompts, i);
        if (len == -2) return aha_error_prefix("data.train %s", r->data.train);
        fits = len > 0;
    }
    AHA_REQUIRE(fits, "data.train %s: no prompt fits in data.max_prompt_tokens = %d tokens", r->data.train,
                r->data.max_prompt_tokens);
    AHA_TRY(aha_data_order_init(&t->order, (int64_t)aha_dataset_size(t->train), (uint64_t)r->run.seed,
                                r->data.shuffle));
    if (!(t->rewards = aha_reward_set_from_recipe(r, 0))) return aha_error_prefix("rewards");
    t->n_comp = aha_reward_set_count(t->rewards);
    t->weights = aha_malloc((size_t)t->n_comp * sizeof *t->weights);
    AHA_CHECK_ALLOC(t->weights);
    t->accuracy_comp = -1;
    for (int k = 0; k < t->n_comp; k++) {
        t->weights[k] = aha_reward_set_weight(t->rewards, k);
        AhaRewardType type = aha_reward_set_type(t->rewards, k);
        if (t->accuracy_comp < 0 &&
            (type == AHA_REWARD_MATH || type == AHA_REWARD_CODE || type == AHA_REWARD_COUNTDOWN))
            t->accuracy_comp = k;
    }
    AhaAdamWConfig ocfg = {(float)r->optim.beta1, (float)r->optim.beta2, (float)r->optim.eps,
                           (float)r->optim.weight_decay};
    AHA_TRY(aha_adamw_init(&t->opt, t->backend, t->policy->params.count, &ocfg));
    if (r->distributed.zero1) AHA_TRY(dist_shard_init(&t->shard, t->policy->params.count));
    if (r->algorithm.beta > 0) {
        if (!(t->ref = aha_model_create(&t->policy->cfg, t->backend))) return -1;
        AHA_TRY(aha_model_copy_params(t->ref, t->policy));
    }
    if (!(t->recipe_yaml = recipe_to_yaml(r))) return -1;
    t->state = (AhaTrainerState){.seed = (uint64_t)r->run.seed};
    recipe_digest(t->recipe_yaml, t->state.recipe_sha);
    return 0;
}

/* After the run directory exists: the log file often lives in it. */
static int open_log(Trainer *t) {
    const char *path = t->r->run.log_file;
    if (aha_dist_rank() != 0) return 0;
    if (path[0] && !(t->log = fopen(path, "a"))) return aha_error_errno("run.log_file %s", path);
    return 0;
}

static int open_store(Trainer *t) {
    if (aha_dist_rank() != 0) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/run.db", t->run_dir);
    if (!(t->store = aha_runstore_open(path))) return -1;
    return aha_runstore_set_run(t->store, t->recipe_yaml, (uint64_t)t->r->run.seed, AHA_VERSION);
}

/* Atomically: a killed run never leaves a half-written recipe.yaml to resume from. */
static int write_text(const char *path, const char *text) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    AHA_CHECK_SYS(f, "%s", tmp);
    int ok = fputs(text, f) >= 0;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    AHA_CHECK_SYS(ok, "%s: writing", tmp);
    AHA_CHECK_SYS(rename(tmp, path) == 0, "%s: renaming to %s", tmp, path);
    return 0;
}

static void say(Trainer *t, FILE *out, const char *line) {
    if (out) {
        fprintf(out, "%s\n", line);
        fflush(out);
    }
    if (t->log) {
        fprintf(t->log, "%s\n", line);
        fflush(t->log);
    }
}

/* The log file keeps why a run stopped, next to its progress lines. */
static void log_failure(Trainer *t, int rc) {
    if (rc == 0 || !t->log) return;
    fprintf(t->log, "aha train: error: %s\n", aha_error_message());
    fflush(t->log);
}

static int checkpoint(Trainer *t) {
    AhaDtype dtype = t->r->model.save_dtype == AHA_SAVE_DTYPE_F32    ? AHA_DTYPE_F32
                     : t->r->model.save_dtype == AHA_SAVE_DTYPE_BF16 ? AHA_DTYPE_BF16
                                                                     : AHA_DTYPE_AS_SOURCE;
    t->state.data_epoch = t->order.epoch;
    t->state.data_position = t->order.position;
    t->state.optimizer_steps = t->opt.step;
    /* rank 0 writes it (with every rank's slice of the moments under ZeRO-1) */
    AhaAdamW whole = t->opt;
    if (t->shard.counts) AHA_TRY(dist_gather_adamw(&t->opt, &whole));
    int rc = aha_dist_rank() != 0 ? 0
             : trainer_checkpoint_save(t->run_dir, t->r->run.keep_checkpoints, t->policy, &t->source, dtype,
                                       &whole, t->ref, &t->state);
    if (t->shard.counts) {
        free(whole.m);
        free(whole.v);
    }
    return rc;
}

static int run_eval(Trainer *t, int step, AhaEvalRecord *rec) {
    AhaEvalConfig cfg;
    aha_eval_config_from_recipe(&cfg, t->r);
    cfg.seed = aha_trainer_step_seed((uint64_t)t->r->run.seed ^ EVAL_SEED_MIX, step);
    AhaEvalResult res;
    AHA_TRY(eval_dataset(t->policy, t->tok, t->eval, &cfg, &res));
    *rec = (AhaEvalRecord){.name = "eval", .n_prompts = res.n_prompts, .k = res.k,
                           .accuracy = res.accuracy, .mean_at_k = res.mean_at_k, .seconds = res.seconds};
    return 0;
}

static int train_loop(Trainer *t, const AhaTrainOptions *o) {
    const AhaRecipe *r = t->r;
    FILE *out = o && aha_dist_rank() == 0 ? o->out : NULL;
    if (t->shard.counts) AHA_TRY(dist_shard_adamw(&t->opt, &t->shard));
    RolloutContext rc = {.r = r, .policy = t->policy, .tok = t->tok, .prompts = &t->prompts,
                         .order = &t->order, .rewards = t->rewards, .n_comp = t->n_comp,
                         .weights = t->weights, .eos_ids = t->eos, .n_eos = t->n_eos};
    RecordContext rec = {.r = r, .store = t->store, .rewards = t->rewards, .n_comp = t->n_comp,
                         .accuracy_comp = t->accuracy_comp, .prompts = &t->prompts};
    int total_opt = r->run.steps * r->algorithm.mu * r->algorithm.minibatches;
    double t_start = trainer_now();
    int first = t->state.step;
    char line[16384];
    if (first >= r->run.steps) {
        snprintf(line, sizeof line, "aha train: %s already finished its %d steps", t->run_dir, r->run.steps);
        say(t, out, line);
        return 0;
    }
    snprintf(line, sizeof line,
             "aha train: %s, %s %.2fM parameters (%.2fM active), %zu training prompts%s, %s step %d of %d",
             t->run_dir, t->policy->cfg.model_type, aha_model_config_num_params(&t->policy->cfg) / 1e6,
             aha_model_config_active_params(&t->policy->cfg) / 1e6, aha_dataset_size(t->train),
             t->eval ? ", evaluating on data.eval" : "", first > 0 ? "resuming at" : "starting at", first + 1,
             r->run.steps);
    say(t, out, line);
    for (int step = first; step < r->run.steps; step++) {
        double t0 = trainer_now();
        if (t->ref && r->algorithm.ref_refresh_steps > 0 && step > 0 &&
            step % r->algorithm.ref_refresh_steps == 0 && t->state.ref_step != step) {
            AHA_TRY(aha_model_copy_params(t->ref, t->policy));
            t->state.ref_step = step;
        }
        StepBatch b;
        rc.policy = t->policy;
        if (step_rollout(&rc, aha_trainer_step_seed((uint64_t)r->run.seed, step), &b) != 0)
            return aha_error_prefix("step %d", step + 1);
        UpdateContext uc = {.r = r, .policy = t->policy, .ref = t->ref, .opt = &t->opt, .step = step,
                            .total_opt_steps = total_opt, .options = o,
                            .shard = t->shard.counts ? &t->shard : NULL};
        UpdateStats us;
        if (step_update(&uc, &t->prompts, &b, &us) != 0) {
            step_batch_free(&b);
            return aha_error_prefix("step %d", step + 1);
        }
        AhaStepMetrics m;
        step_metrics_fill(&rec, &b, &us, &m);
        AhaEvalRecord ev, *evp = NULL;
        /* rank 0 evaluates, with its expert group (whose members run the same layers) */
        if (t->eval && (step + 1) % r->run.eval_every == 0 && dist_dp_rank() == 0) {
            double te = trainer_now();
            if (run_eval(t, step, &ev) != 0) {
                step_batch_free(&b);
                return aha_error_prefix("step %d: eval", step + 1);
            }
            m.t_eval = trainer_now() - te;
            evp = &ev;
        }
        m.t_step = trainer_now() - t0;
        int rcd = t->store ? step_record(&rec, step, &b, &m, evp) : 0;
        step_batch_free(&b);
        AHA_TRY(rcd);
        t->state.nan_streak = us.n_skipped > 0 ? t->state.nan_streak + 1 : 0;
        t->state.step = step + 1;
        double per_step = (trainer_now() - t_start) / (step + 1 - first);
        step_progress_line(line, sizeof line, step, r->run.steps, per_step * (r->run.steps - step - 1), &m, evp);
        say(t, out, line);
        if (us.n_skipped > 0) {
            snprintf(line, sizeof line,
                     "step %d: %d update(s) skipped: NaN or Inf in the loss or gradients (%d consecutive step(s))",
                     step + 1, us.n_skipped, t->state.nan_streak);
            say(t, out, line);
        }
        if (t->state.nan_streak >= r->run.max_nan_skips)
            return aha_errorf("stopped after %d consecutive steps with NaN or Inf in the loss or gradients "
                              "(run.max_nan_skips = %d); the last checkpoint holds the last good weights",
                              t->state.nan_streak, r->run.max_nan_skips);
        int interrupted = o && o->stop ? (int)*o->stop : 0;
        /* a stop asked of any rank (the signal's number) stops them all after the same step,
         * and each reports that signal */
        AHA_TRY(aha_dist_allreduce(&interrupted, 1, AHA_DIST_INT, AHA_DIST_MAX));
        if (interrupted && o && o->stop && !*o->stop) *o->stop = interrupted;
        int due = r->run.checkpoint_every > 0 && (step + 1) % r->run.checkpoint_every == 0;
        if (due || interrupted || step + 1 == r->run.steps) AHA_TRY(checkpoint(t));
        /* no rank exits (which ends the job) while rank 0 still writes the last checkpoint */
        if (interrupted || step + 1 == r->run.steps) AHA_TRY(aha_dist_barrier());
        if (interrupted) {
            last_interrupted = 1;
            snprintf(line, sizeof line, "interrupted after step %d; continue with: aha train --resume %s",
                     step + 1, t->run_dir);
            say(t, out, line);
            return 0;
        }
    }
    snprintf(line, sizeof line,
             "aha train: done (%d steps, %.1f s); the trained policy: %s/checkpoints/step-%08d/policy; "
             "look with: aha inspect %s, aha report %s",
             r->run.steps, trainer_now() - t_start, t->run_dir, r->run.steps, t->run_dir, t->run_dir);
    say(t, out, line);
    if (aha_dist_size() > 1) {
        snprintf(line, sizeof line, "aha train: %d processes; rank 0 spent %.2f s of %.2f s in collectives (%.1f%%)",
                 aha_dist_size(), aha_dist_comm_seconds(), trainer_now() - t_start,
                 100.0 * aha_dist_comm_seconds() / (trainer_now() - t_start));
        say(t, out, line);
    }
    return 0;
}

int aha_train(const AhaRecipe *recipe, const AhaTrainOptions *options) {
    last_interrupted = 0;
    Trainer t = {0};
    t.r = recipe;
    snprintf(t.run_dir, sizeof t.run_dir, "%s", recipe->run.output_dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/run.db", t.run_dir);
    if (aha_dist_rank() == 0 && access(path, F_OK) == 0) /* other ranks could see rank 0's */
        return aha_errorf("run.output_dir %s already holds a run (run.db); continue it with "
                          "aha train --resume %s, or choose another output_dir", t.run_dir, t.run_dir);
    t.lock_fd = -1;
    int rc = setup(&t);
    /* rank 0 is the run's one writer (the lock, the store, the checkpoints) */
    int writer = aha_dist_rank() == 0;
    if (rc == 0 && writer) rc = aha_mkdir_p(t.run_dir);
    if (rc == 0 && writer && (t.lock_fd = aha_run_lock(t.run_dir)) < 0) rc = -1;
    if (rc == 0 && writer && access(path, F_OK) == 0) /* another aha train got here first and finished */
        rc = aha_errorf("run.output_dir %s already holds a run (run.db); continue it with aha train --resume %s",
                        t.run_dir, t.run_dir);
    if (rc == 0 && writer) rc = aha_checkpoint_remove_partial(t.run_dir);
    if (rc == 0) rc = open_log(&t);
    if (rc == 0 && aha_dist_rank() == 0) {
        snprintf(path, sizeof path, "%s/recipe.yaml", t.run_dir);
        rc = write_text(path, t.recipe_yaml);
    }
    if (rc == 0) rc = open_store(&t);
    if (rc == 0) rc = train_loop(&t, options);
    log_failure(&t, rc);
    t.r = NULL;
    trainer_free(&t);
    return rc;
}

/* With a checkpoint to resume from, run.db must be there unless the user asked for a new
 * store: otherwise the record of the steps before the checkpoint would be silently lost. */
static int check_store_file(const char *run_dir, const AhaTrainOptions *o) {
    char path[4200];
    snprintf(path, sizeof path, "%s/run.db", run_dir);
    struct stat st;
    const char *what = stat(path, &st) != 0 ? "is missing" : st.st_size == 0 ? "is empty" : NULL;
    if (!what || (o && o->new_store)) return 0;
    return aha_errorf("%s %s: resuming would start a new record at the checkpoint's step and lose the steps "
                      "before it; restore run.db, or resume into a new store with aha train --resume %s "
                      "--new-store", path, what, run_dir);
}

/* The newest checkpoint whose files match their checksums. A damaged newest one is refused,
 * naming the damaged file and the older complete checkpoint; with fall_back that older one
 * is used and the damaged one renamed damaged-step-NNNNNNNN. */
static int pick_checkpoint(Trainer *t, const AhaTrainOptions *o, int *ck_step, char **ck) {
    *ck_step = -1;
    *ck = NULL;
    int *steps, count;
    AHA_TRY(aha_checkpoint_steps(t->run_dir, &steps, &count));
    int rc = 0, chosen = -1;
    char damage[2048] = "", first_bad[4200] = "";
    for (int i = count - 1; i >= 0 && chosen < 0 && rc == 0; i--) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/checkpoints/step-%08d", t->run_dir, steps[i]);
        if (aha_checkpoint_verify(dir) == 0) {
            chosen = i;
        } else if (!damage[0]) {
            snprintf(damage, sizeof damage, "%s", aha_error_message());
            snprintf(first_bad, sizeof first_bad, "%s", dir);
            if (!(o && o->fall_back)) { /* only say which older one would do */
                for (int j = i - 1; j >= 0 && chosen < 0; j--) {
                    snprintf(dir, sizeof dir, "%s/checkpoints/step-%08d", t->run_dir, steps[j]);
                    if (aha_checkpoint_verify(dir) == 0) chosen = j;
                }
                if (chosen >= 0)
                    rc = aha_errorf("%s; the newest checkpoint %s cannot be resumed from; the older complete "
                                    "checkpoint %s passes its checks: resume from it with aha train --resume %s "
                                    "--fall-back", damage, first_bad, dir, t->run_dir);
                else
                    rc = aha_errorf("%s; the newest checkpoint %s cannot be resumed from, and no older complete "
                                    "checkpoint passes its checks", damage, first_bad);
            }
        }
    }
    if (rc == 0 && damage[0] && chosen < 0)
        rc = aha_errorf("%s; no older complete checkpoint passes its checks", damage);
    if (rc == 0 && damage[0]) { /* falling back: keep the damaged ones for a look, out of the way */
        for (int i = count - 1; i > chosen && rc == 0; i--) {
            char from[4200], to[4200];
            snprintf(from, sizeof from, "%s/checkpoints/step-%08d", t->run_dir, steps[i]);
            snprintf(to, sizeof to, "%s/checkpoints/damaged-step-%08d", t->run_dir, steps[i]);
            if (rename(from, to) != 0) rc = aha_error_errno("%s: renaming to %s", from, to);
        }
        char line[4600];
        snprintf(line, sizeof line, "aha train: %s; falling back to step %d", damage, steps[chosen]);
        say(t, o ? o->out : NULL, line);
    }
    if (rc == 0 && chosen >= 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/checkpoints/step-%08d", t->run_dir, steps[chosen]);
        *ck_step = steps[chosen];
        if (!(*ck = aha_strdup(dir))) rc = -1;
    }
    free(steps);
    return rc;
}

/* The store of a resumed run: undamaged, holding every step up to the checkpoint's; then
 * the steps after the checkpoint are dropped and the resume recorded, in one transaction. */
static int open_store_for_resume(Trainer *t) {
    char path[4200];
    snprintf(path, sizeof path, "%s/run.db", t->run_dir);
    if (!(t->store = aha_runstore_open(path))) return -1;
    AHA_TRY(aha_runstore_quick_check(t->store));
    int has_run, last;
    AHA_TRY(aha_runstore_has_run(t->store, &has_run));
    if (!has_run) /* --new-store: a new record that starts at the checkpoint */
        return aha_runstore_set_run(t->store, t->recipe_yaml, (uint64_t)t->r->run.seed, AHA_VERSION);
    AHA_TRY(aha_runstore_last_step(t->store, &last));
    AHA_REQUIRE(last + 1 >= t->state.step,
                "%s ends at step %d but the checkpoint is of step %d: steps %d..%d are missing from the store "
                "(an older copy of run.db?); restore the run's own run.db", path, last + 1, t->state.step, last + 2,
                t->state.step);
    return aha_runstore_resume(t->store, t->state.step - 1);
}

int aha_train_resume(const char *run_dir, const AhaTrainOptions *options) {
    last_interrupted = 0;
    Trainer t = {0};
    t.lock_fd = -1;
    snprintf(t.run_dir, sizeof t.run_dir, "%s", run_dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/recipe.yaml", run_dir);
    if (access(path, F_OK) != 0) return aha_error_errno("%s: not a run directory (no recipe.yaml)", run_dir);
    AHA_TRY(check_resume_sets(options));
    int writer = aha_dist_rank() == 0; /* the run's one writer: the lock, the store, the checkpoints */
    if (writer && (t.lock_fd = aha_run_lock(run_dir)) < 0) return -1;
    if (aha_recipe_load(path, options ? options->resume_sets : NULL, options ? options->n_resume_sets : 0,
                        &t.recipe) != 0) {
        aha_run_unlock(t.lock_fd);
        return aha_error_prefix("resuming %s", run_dir);
    }
    t.r = &t.recipe;
    int rc = setup(&t);
    if (rc == 0 && writer) rc = aha_checkpoint_remove_partial(run_dir);
    if (rc == 0) rc = open_log(&t);
    int ck_step = -1;
    char *ck = NULL;
    /* rank 0 checks the checkpoints first (--fall-back renames damaged ones); the others
     * look once it has */
    if (rc == 0 && writer) rc = pick_checkpoint(&t, options, &ck_step, &ck);
    if (rc == 0) rc = aha_dist_barrier();
    if (rc == 0 && !writer) rc = pick_checkpoint(&t, options, &ck_step, &ck);
    if (rc == 0 && ck_step > 0 && writer) rc = check_store_file(run_dir, options);
    if (rc == 0 && ck) {
        char digest[65];
        snprintf(digest, sizeof digest, "%s", t.state.recipe_sha);
        rc = trainer_checkpoint_load(ck, &t.policy, &t.opt, t.ref, &t.state);
        if (rc == 0) rc = aha_model_alloc_grads(t.policy);
        if (rc == 0 && strcmp(digest, t.state.recipe_sha) != 0)
            rc = aha_errorf("%s: the checkpoint was made with another recipe than %s/recipe.yaml", ck, run_dir);
        if (rc == 0 && t.state.step != ck_step)
            rc = aha_errorf("%s: state.json says step %d", ck, t.state.step);
        if (rc == 0) rc = aha_data_order_seek(&t.order, t.state.data_epoch, t.state.data_position);
    }
    free(ck);
    /* every rank has read recipe.yaml and the checkpoint before rank 0 rewrites the one */
    if (rc == 0) rc = aha_dist_barrier();
    if (rc == 0 && options && options->n_resume_sets > 0 && writer)
        rc = write_text(path, t.recipe_yaml); /* the new values */
    if (rc == 0 && writer) rc = open_store_for_resume(&t);
    if (rc == 0) rc = train_loop(&t, options);
    log_failure(&t, rc);
    trainer_free(&t);
    return rc;
}
