/* Synthetic reasoning tasks with known answers (`aha data gen`): multi-operand sums and the
 * Countdown game. Problems are written as JSONL with the fields of real data sets
 * (question, answer; Countdown adds nums and target), split into train and a held-out eval
 * set that share no problem (operand order does not make a new problem). Generation is
 * deterministic per seed: random numbers come from aha/rng.h, seed = the given seed,
 * stream = AHA_TASKGEN_RNG_STREAM. docs/taskgen.md. */
#ifndef AHA_TASKGEN_H
#define AHA_TASKGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHA_TASKGEN_RNG_STREAM 0x7461736bu /* "task" */
#define AHA_TASKGEN_MAX_OPERANDS 8
#define AHA_TASKGEN_MAX_DIGITS 9

typedef enum { AHA_TASK_SUM, AHA_TASK_COUNTDOWN } AhaTaskKind;

typedef struct {
    AhaTaskKind kind;
    int n_train;   /* problems in train.jsonl */
    int n_eval;    /* problems in eval.jsonl */
    int operands;  /* sum: numbers added (2..8); countdown: numbers given (2..5) */
    int digits;    /* sum: digits of each operand (1..9); countdown: largest number and target
                      have this many digits (1..3) */
    uint64_t seed;
} AhaTaskGenConfig;

typedef struct {
    char question[160];
    char answer[96];     /* sum: the total; countdown: one equation that reaches the target */
    int nums[AHA_TASKGEN_MAX_OPERANDS]; /* the operands / the given numbers */
    int n_nums;
    long long target;    /* sum: the total; countdown: the number to reach */
} AhaTaskProblem;

/* Defaults of a kind: sum 3 operands of 3 digits; countdown 4 numbers of up to 2 digits;
 * 10000 train and 500 eval problems; seed 1. */
void aha_taskgen_defaults(AhaTaskGenConfig *config, AhaTaskKind kind);
/* "sum" | "countdown" */
int aha_taskgen_kind_parse(const char *name, AhaTaskKind *kind);

/* Generates n_train + n_eval distinct problems into caller arrays of those sizes. Fails with a
 * message when the settings allow fewer distinct problems than asked for. */
int aha_taskgen_generate(const AhaTaskGenConfig *config, AhaTaskProblem *train, AhaTaskProblem *eval);
/* Generates and writes DIR/train.jsonl and DIR/eval.jsonl (DIR is created if missing; each
 * file is written to a temporary name and renamed into place). */
int aha_taskgen_write(const AhaTaskGenConfig *config, const char *out_dir);

/* The canonical identity of a problem (sorted operands, and the target for Countdown), the
 * key under which train and eval never share a problem. */
int aha_taskgen_problem_key(AhaTaskKind kind, const AhaTaskProblem *problem, char *key, size_t size);

/* The worked solution of a sum, column by column from the units with the carry:
 * "123+456+789" -> think "3+6+9+0=18 2+5+8+1=16 1+4+7+1=13", answer "1368". Operands are
 * non-negative decimal integers joined by '+'; a shorter operand contributes 0 to its missing
 * columns. */
int aha_sum_worked_solution(const char *question, char *think, size_t think_size, char *answer,
                            size_t answer_size);

/* Searches for an equation that uses each of nums exactly once with + - * / and reaches
 * target, every intermediate result a positive integer. Returns 1 and writes the equation
 * (e.g. "(55-36)*7-68") when one exists, 0 when none does, -1 on error. */
int aha_countdown_solve(const int *nums, int n, long long target, char *equation, size_t size);

#ifdef __cplusplus
}
#endif

#endif
