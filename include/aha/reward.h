/* Rule-based rewards: one reward call sees the prompt, the completion and the data-set row and
 * gives a score with a short reason, or "no score". A reward set, built from the recipe's list
 * of configured rewards, scores a batch of samples in parallel workers, keeps every component
 * and combines them with weights. A reward that errs, crashes (a plug-in program) or runs past
 * its time limit costs that sample its score and one error line, never the run.
 *
 * Built-ins: math (include/aha/math_answer.h), countdown (aha_countdown_check), format
 * (PCRE2), code (Python, C or C++ in a sandbox, below), length and overlong (length shaping), and
 * plug-ins: a C shared object (include/aha/reward_plugin.h) or any program speaking JSON
 * lines. docs/rewards.md. */
#ifndef AHA_REWARD_H
#define AHA_REWARD_H

#include <stddef.h>
#include <stdio.h>

#include "aha/reward_types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t; /* jansson */

/* One configured reward, filled from a recipe's `rewards:` entry. Strings are borrowed: they
 * need to live only during aha_reward_set_create(), which copies what it keeps. Start from
 * aha_reward_config_default() and change what the recipe sets. */
typedef struct {
    AhaRewardType type;
    const char *name;   /* unique within a set; NULL = the type's name ("math", ...) */
    double weight;      /* weight in the total (1.0) */
    double timeout_s;   /* wall-clock limit of one call for code and plug-in rewards (5.0) */
    /* math */
    AhaRewardExtract extract;
    /* format */
    const char *pattern; /* PCRE2 with UTF, UCP and DOTALL; NULL = AHA_REWARD_R1_FORMAT */
    int match_search;    /* 0: the whole completion must match; 1: a match anywhere */
    /* code */
    AhaCodeMode code_mode;
    int memory_mb;       /* address-space limit of the program (256) */
    const char *python;  /* interpreter; NULL = "/usr/bin/python3" */
    double compile_timeout_s; /* C/C++: wall-clock and CPU limit of the compiler; 0 = 30 */
    int compile_memory_mb;    /* C/C++: address-space limit of the compiler; 0 = 1024 */
    /* length: score = -penalty * max(0, completion_tokens - target_len) */
    int target_len;
    double penalty;
    /* overlong: 0 up to max_len - cache_len, then linear down to -1 at max_len, -1 beyond */
    int max_len;
    int cache_len;
    /* plugin: exactly one of path and command */
    const char *path;    /* a shared object exporting the include/aha/reward_plugin.h ABI */
    const char *command; /* a program (run with /bin/sh -c) answering one JSON line per line */
} AhaRewardConfig;

/* The R1-Zero shape: <think>...</think> then <answer>...</answer> and nothing else. */
#define AHA_REWARD_R1_FORMAT "^<think>.*?</think>\\s*<answer>.*?</answer>$"

void aha_reward_config_default(AhaRewardConfig *config, AhaRewardType type);
/* "math" -> AHA_REWARD_MATH etc.; -1 with a message listing the types on an unknown name. */
int aha_reward_type_parse(const char *text, AhaRewardType *type);
const char *aha_reward_type_name(AhaRewardType type);
/* "auto" | "boxed" | "answer_tag"; "fraction" | "all"; "full" | "search" (-> match_search). */
int aha_reward_extract_parse(const char *text, AhaRewardExtract *extract);
int aha_reward_code_mode_parse(const char *text, AhaCodeMode *mode);
int aha_reward_match_parse(const char *text, int *match_search);

/* One sample to score. The row is the data-set row with all its fields: give either `row`
 * (read, never modified, so it may be shared between threads) or `row_json` (its text).
 * Texts may hold NUL bytes (JSON's \u0000): give their lengths; a length of 0 means "up to
 * the first NUL" (strlen), so zero-initialized samples of C strings need nothing more. */
typedef struct {
    const char *prompt;            /* may be NULL */
    const char *completion;
    size_t prompt_len;             /* bytes of prompt; 0 = strlen(prompt) */
    size_t completion_len;         /* bytes of completion; 0 = strlen(completion) */
    const struct json_t *row;      /* a JSON object, or NULL */
    const char *row_json;          /* used when row is NULL; NULL = an empty row */
    int completion_tokens;         /* for length/overlong; < 0 = unknown (then no score) */
} AhaRewardSample;

typedef enum {
    AHA_REWARD_SCORED,   /* score holds the value */
    AHA_REWARD_NO_SCORE, /* the reward cannot judge this sample (e.g. no gold answer) */
    AHA_REWARD_FAILED,   /* the reward erred, crashed or timed out; reason says how */
} AhaRewardStatus;

#define AHA_REWARD_REASON_MAX 256

typedef struct {
    AhaRewardStatus status;
    double score;                       /* 0 unless SCORED */
    char reason[AHA_REWARD_REASON_MAX]; /* short and human-readable, always NUL-terminated */
} AhaRewardValue;

typedef struct AhaRewardSet AhaRewardSet;

/* Builds the set: compiles patterns, loads plug-ins (checking their ABI), starts nothing
 * else. jobs = parallel workers for aha_reward_set_score (>= 1). NULL on a bad config, with
 * a message naming the reward ("rewards[2] (name 'fmt'): pattern: ..."). */
AhaRewardSet *aha_reward_set_create(const AhaRewardConfig *configs, int count, int jobs);
void aha_reward_set_free(AhaRewardSet *set);
int aha_reward_set_count(const AhaRewardSet *set);
const char *aha_reward_set_name(const AhaRewardSet *set, int index);
double aha_reward_set_weight(const AhaRewardSet *set, int index);
AhaRewardType aha_reward_set_type(const AhaRewardSet *set, int index);
/* Where error lines go ("aha reward: <name>: sample <i>: <reason>"); stderr by default,
 * NULL for none. The components keep the reason either way. */
void aha_reward_set_error_log(AhaRewardSet *set, FILE *log);

/* Scores n samples with every reward of the set, in parallel.
 *   values: [n][count] components, row-major (values[i * count + k] is reward k of sample i)
 *   total:  [n] sum of weight * score over rewards with weight != 0; NAN when any of those is
 *           not SCORED (the sample is then excluded from training). May be NULL.
 * Returns 0; -1 only when the machinery itself fails (out of memory, no threads). Per-sample
 * failures are FAILED components, never an error return. */
int aha_reward_set_score(AhaRewardSet *set, const AhaRewardSample *samples, int n,
                         AhaRewardValue *values, double *total);

/* Scores one sample with reward `index` (worker slot 0), for tools and tests. */
int aha_reward_set_score_one(AhaRewardSet *set, int index, const AhaRewardSample *sample,
                             AhaRewardValue *value);

/* ---- length shaping (pure functions) ---- */
/* DAPO soft overlong penalty: 0 if n <= max_len - cache_len; ((max_len - cache_len) - n) /
 * cache_len up to max_len; -1 beyond. */
double aha_reward_overlong(int n_tokens, int max_len, int cache_len);
double aha_reward_length_penalty(int n_tokens, int target_len, double penalty);

/* ---- code ---- */
typedef enum { AHA_CODE_ANY, AHA_CODE_PYTHON, AHA_CODE_C, AHA_CODE_CPP } AhaCodeLanguage;

/* "python" | "py" | "python3" | "c" | "cpp" | "c++" | "cxx" | "cc" (any case); -1 with a
 * message otherwise. */
int aha_code_language_parse(const char *text, AhaCodeLanguage *language);
const char *aha_code_language_name(AhaCodeLanguage language);

/* The program of a completion [len bytes]: the last fenced block tagged with the language
 * `want` (python/py/python3, c, cpp/c++/cxx/cc: the info string's first word); only when no
 * block is so tagged, the last untagged block. AHA_CODE_ANY: the last block tagged with any
 * of them, else the last untagged block as Python. Blocks in other languages never count; a
 * block cut off before its closing fence runs to the end. Returns the code (malloc'ed,
 * NUL-terminated, *code_len bytes, may hold NULs) and its language in *got (both may be
 * NULL); NULL with no error recorded when there is none (check *found). */
char *aha_code_extract_program(const char *completion, size_t len, AhaCodeLanguage want,
                               AhaCodeLanguage *got, size_t *code_len, int *found);
/* The same for Python, of a NUL-terminated completion. */
char *aha_code_extract(const char *completion, int *found);

/* ---- the sandbox (reward/sandbox.c) ----
 * Runs argv in a child: its own process group; user/PID/network/mount/IPC namespaces where
 * the kernel allows (network is denied in any case by a seccomp filter); the scratch
 * directory as cwd and only writable place; rlimits on CPU, address space, processes, file
 * size, open files, no core; a clean environment; output captured up to a cap; the whole
 * process tree killed at the wall-clock limit. */
typedef struct {
    double wall_s;        /* wall-clock limit (kill of the whole tree) */
    double cpu_s;         /* RLIMIT_CPU, rounded up to whole seconds */
    int memory_mb;        /* RLIMIT_AS */
    int max_procs;        /* RLIMIT_NPROC (enforced for a non-root user id) */
    long max_file_bytes;  /* RLIMIT_FSIZE */
    int max_open_files;   /* RLIMIT_NOFILE */
    size_t max_output;    /* bytes kept per stream; more kills the program */
} AhaSandboxLimits;

void aha_sandbox_limits_default(AhaSandboxLimits *limits);

typedef enum {
    AHA_SANDBOX_EXITED,     /* exit_code holds the status */
    AHA_SANDBOX_SIGNALED,   /* killed by signal (e.g. CPU limit, memory) */
    AHA_SANDBOX_TIMEOUT,    /* killed at the wall-clock limit */
    AHA_SANDBOX_OUTPUT_LIMIT, /* killed for writing more than max_output */
} AhaSandboxOutcome;

typedef struct {
    AhaSandboxOutcome outcome;
    int exit_code;          /* EXITED: the status; SIGNALED: the signal */
    char *out;              /* [out_len + 1] stdout, NUL-terminated, malloc'ed */
    size_t out_len;
    char *err;              /* [err_len + 1] stderr */
    size_t err_len;
    double wall_s;          /* measured */
    unsigned isolation;     /* AHA_SANDBOX_NS_* that were in force */
    long group_id;          /* the process group it ran in (all gone when run returns) */
} AhaSandboxResult;

#define AHA_SANDBOX_NS_USER 1u
#define AHA_SANDBOX_NS_PID 2u
#define AHA_SANDBOX_NS_NET 4u
#define AHA_SANDBOX_NS_MOUNT 8u
#define AHA_SANDBOX_SECCOMP 16u
#define AHA_SANDBOX_DROPPED_ROOT 32u

typedef struct AhaSandbox AhaSandbox;

/* A fresh scratch directory (mkdtemp under $TMPDIR or /tmp). */
AhaSandbox *aha_sandbox_create(void);
const char *aha_sandbox_dir(const AhaSandbox *box);
/* Writes a file into the scratch directory (name: no '/'). */
int aha_sandbox_write(AhaSandbox *box, const char *name, const char *data, size_t len);
/* Runs argv[0] (an absolute path) with the scratch directory as cwd; stdin from the scratch
 * file stdin_name (NULL = /dev/null). Returns -1 only when the sandbox cannot be set up. */
int aha_sandbox_run(AhaSandbox *box, const char *const *argv, const char *stdin_name,
                    const AhaSandboxLimits *limits, AhaSandboxResult *result);
void aha_sandbox_result_free(AhaSandboxResult *result);
/* Kills anything left and removes the scratch directory with everything in it. */
void aha_sandbox_free(AhaSandbox *box);

/* The countdown reward's judge (reward/countdown_check.c): 1 when equation uses each of
 * nums[n] exactly once and equals target (exact rational arithmetic), else 0 with the reason
 * in the error message. */
int aha_countdown_check(const char *equation, const int *nums, int n, long long target);

#ifdef __cplusplus
}
#endif

#endif
