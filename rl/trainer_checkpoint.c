/* A training checkpoint: RUN_DIR/checkpoints/step-NNNNNNNN/ holding
 *   policy/                 the policy as a Hugging Face model directory (model.save_dtype)
 *   optimizer.safetensors   AdamW moments "adamw.m", "adamw.v" [count] (F32), and the F32
 *                           master weights "master" when the policy was saved narrower
 *   reference.safetensors   the reference weights "reference" [count] (beta > 0 only)
 *   state.json              step, seed, data position, NaN streak, refresh step, ...,
 *                           and the size and CRC-32 of every other file (verified on resume)
 * written to a temporary directory and renamed into place (aha_checkpoint_*). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/safetensors.h"
#include "rl/trainer_internal.h"

static AhaSafetensorsEntry flat(const char *name, const float *data, size_t count) {
    return (AhaSafetensorsEntry){.name = name, .dtype = AHA_DTYPE_F32, .ndim = 1,
                                 .shape = {(int64_t)count}, .data = data};
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int trainer_checkpoint_save(const char *run_dir, int keep, const AhaModel *policy,
                            const AhaModelSource *source, AhaDtype dtype, const AhaAdamW *opt,
                            const AhaModel *ref, const AhaTrainerState *state) {
    /* never write poisoned weights: a resume would start from them */
    AHA_REQUIRE(all_finite(policy->params.memory, policy->params.count),
                "checkpoint of step %d: the policy weights hold NaN or Inf; not written", state->step);
    char *tmp = aha_checkpoint_prepare(run_dir, state->step);
    if (!tmp) return -1;
    char path[4300];
    int rc = 0;
    snprintf(path, sizeof path, "%s/policy", tmp);
    AhaDtype saved = dtype == AHA_DTYPE_AS_SOURCE ? (source->dtype == AHA_DTYPE_BF16 ? AHA_DTYPE_BF16 : AHA_DTYPE_F32) : dtype;
    rc = aha_model_save_dir(policy, path, source, saved);
    if (rc == 0) {
        AhaSafetensorsEntry e[3] = {flat("adamw.m", opt->m, opt->count), flat("adamw.v", opt->v, opt->count),
                                    flat("master", policy->params.memory, policy->params.count)};
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        rc = aha_safetensors_write(path, e, saved == AHA_DTYPE_F32 ? 2 : 3, NULL);
    }
    if (rc == 0 && ref) {
        AhaSafetensorsEntry e = flat("reference", ref->params.memory, ref->params.count);
        snprintf(path, sizeof path, "%s/reference.safetensors", tmp);
        rc = aha_safetensors_write(path, &e, 1, NULL);
    }
    if (rc == 0) rc = aha_checkpoint_seal(tmp, state); /* state.json, with every file's CRC-32 */
    if (rc == 0) rc = aha_checkpoint_finish(run_dir, tmp, state->step, keep);
    free(tmp);
    if (rc != 0) return aha_error_prefix("checkpoint of step %d", state->step);
    return 0;
}

static int read_flat(const AhaSafetensorsFile *f, const char *file, const char *name, float *out,
                     size_t count) {
    const AhaSafetensor *t = aha_safetensors_find(f, name);
    AHA_REQUIRE(t, "%s: no tensor '%s'", file, name);
    AHA_REQUIRE(t->numel == count, "%s: '%s' has %llu values, the model %zu", file, name,
                (unsigned long long)t->numel, count);
    return aha_safetensor_to_f32(t, out);
}

int trainer_checkpoint_load(const char *dir, AhaModel **policy, AhaAdamW *opt, AhaModel *ref,
                            AhaTrainerState *state) {
    char path[4300];
    snprintf(path, sizeof path, "%s/state.json", dir);
    AHA_TRY(aha_trainer_state_load(path, state));
    snprintf(path, sizeof path, "%s/policy", dir);
    AhaModel *loaded = aha_model_load_dir(path, NULL);
    if (!loaded) return aha_error_prefix("%s", dir);
    if (loaded->params.count != (*policy)->params.count) {
        aha_model_free(loaded);
        return aha_errorf("%s: the checkpoint's model differs from model.path's config", path);
    }
    if (aha_model_set_backend(loaded, (*policy)->backend, 0) != 0) {
        aha_model_free(loaded);
        return aha_error_prefix("%s", dir);
    }
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    int rc = f ? 0 : -1;
    if (rc == 0) rc = read_flat(f, path, "adamw.m", opt->m, opt->count);
    if (rc == 0) rc = read_flat(f, path, "adamw.v", opt->v, opt->count);
    if (rc == 0 && aha_safetensors_find(f, "master"))
        rc = read_flat(f, path, "master", loaded->params.memory, loaded->params.count);
    if (f) aha_safetensors_close(f);
    if (rc == 0 && ref) {
        snprintf(path, sizeof path, "%s/reference.safetensors", dir);
        f = aha_safetensors_open(path);
        rc = f ? read_flat(f, path, "reference", ref->params.memory, ref->params.count) : -1;
        if (f) aha_safetensors_close(f);
    }
    if (rc != 0) {
        aha_model_free(loaded);
        return aha_error_prefix("resuming from %s", dir);
    }
    opt->step = state->optimizer_steps; /* only once everything loaded */
    aha_model_free(*policy);
    *policy = loaded;
    return 0;
}
