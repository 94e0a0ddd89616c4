/* The GRPO trainer's resumable pieces: the data order, the trainer state file and the
 * checkpoint directories (written atomically, last K kept). docs/training.md. */
#ifndef AHA_TRAINER_H
#define AHA_TRAINER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The order training prompts are drawn in: epoch after epoch, each a permutation of the
 * rows (Fisher-Yates driven by the Philox stream (seed, AHA_DATA_ORDER_STREAM, epoch)), or
 * the file order when shuffle is off. Its whole state is (epoch, position). */
typedef struct {
    int64_t n_rows;
    uint64_t seed;
    int shuffle;
    int64_t epoch, position; /* the next row is perm(epoch)[position] */
    int64_t *perm;           /* [n_rows] the permutation of `epoch` */
    int64_t perm_epoch;      /* the epoch perm holds, -1 = none */
} AhaDataOrder;

#define AHA_DATA_ORDER_STREAM 0x64617461u /* "data" */

int aha_data_order_init(AhaDataOrder *o, int64_t n_rows, uint64_t seed, int shuffle);
/* The next row index (0-based), advancing the position. Returns -1 on allocation failure. */
int64_t aha_data_order_next(AhaDataOrder *o);
/* Moves to a saved (epoch, position); checked against n_rows. */
int aha_data_order_seek(AhaDataOrder *o, int64_t epoch, int64_t position);
void aha_data_order_free(AhaDataOrder *o);

/* Everything besides weights, optimizer moments and the run store that resuming needs.
 * Every random stream is a pure function of (seed, step, ...), so the step is the RNG
 * state (aha_trainer_step_seed). */
typedef struct {
    int step;                 /* steps completed */
    uint64_t seed;            /* run.seed */
    int64_t data_epoch, data_position;
    int nan_streak;           /* consecutive skipped updates */
    int ref_step;             /* step the reference policy was last copied from the policy */
    int64_t optimizer_steps;  /* AdamW steps taken (bias correction) */
    char recipe_sha[65];      /* hex digest of the resolved recipe, to refuse a changed one */
} AhaTrainerState;

/* Writes state.json atomically (temporary file, fsync, rename). */
int aha_trainer_state_save(const char *path, const AhaTrainerState *s);
/* Reads it back; every key is required and checked, errors name the file and key. */
int aha_trainer_state_load(const char *path, AhaTrainerState *s);

/* The sampler seed of a step: a mix of the run seed and the step, so that the same prompt
 * drawn at two steps gets different samples while a resumed run repeats them exactly. */
uint64_t aha_trainer_step_seed(uint64_t run_seed, int step);

/* Checkpoints live in RUN_DIR/checkpoints/step-NNNNNNNN. prepare makes (emptying a stale
 * one) the temporary directory RUN_DIR/checkpoints/.tmp-step-NNNNNNNN and returns its path
 * (caller frees); the caller writes its files there; finish fsyncs them and the directory,
 * renames it into place, fsyncs the parent, and deletes all but the newest `keep`
 * checkpoints (keep <= 0: keep all). A crash before the rename leaves only a .tmp
 * directory, which latest ignores and the next prepare removes. */
char *aha_checkpoint_prepare(const char *run_dir, int step);
int aha_checkpoint_finish(const char *run_dir, const char *tmp_dir, int step, int keep);
/* The newest complete checkpoint: *step = -1 and *path = NULL when there is none. */
int aha_checkpoint_latest(const char *run_dir, int *step, char **path);
/* The steps of the complete checkpoints, ascending (*steps malloc'd, NULL when none). */
int aha_checkpoint_steps(const char *run_dir, int **steps, int *count);
/* Writes tmp_dir/state.json with s and a table of every other file of the checkpoint:
 * "files": {"policy/model.safetensors": {"crc32": "1a2b3c4d", "bytes": N}, ...}. */
int aha_checkpoint_seal(const char *tmp_dir, const AhaTrainerState *s);
/* Checks every file state.json lists against its size and CRC-32; an error names the first
 * damaged or missing file. A state.json without "files" (older aha) has nothing to check. */
int aha_checkpoint_verify(const char *ck_dir);
/* Removes the .tmp-step-* directories a failed or killed checkpoint left. */
int aha_checkpoint_remove_partial(const char *run_dir);

/* The one writer of a run: an exclusive flock on RUN_DIR/aha.lock (the file holds the
 * holder's PID; the kernel releases the lock when the process ends). Returns the lock's
 * descriptor, or -1 with an error naming the PID of the process that holds it, or saying
 * the directory is read-only. Readers never need it. */
int aha_run_lock(const char *run_dir);
void aha_run_unlock(int fd);

#ifdef __cplusplus
}
#endif

#endif
