/* The task generator: distinct problems drawn from a seeded stream, eval first then train, so
 * the held-out set does not change with --n; JSONL through jansson. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aha/error.h"
#include "aha/fs.h"
#include "aha/rng.h"
#include "aha/taskgen.h"

void aha_taskgen_defaults(AhaTaskGenConfig *config, AhaTaskKind kind) {
    config->kind = kind;
    config->n_train = 10000;
    config->n_eval = 500;
    config->operands = kind == AHA_TASK_SUM ? 3 : 4;
    config->digits = kind == AHA_TASK_SUM ? 3 : 2;
    config->seed = 1;
}

int aha_taskgen_kind_parse(const char *name, AhaTaskKind *kind) {
    if (strcmp(name, "sum") == 0) {
        *kind = AHA_TASK_SUM;
        return 0;
    }
    if (strcmp(name, "countdown") == 0) {
        *kind = AHA_TASK_COUNTDOWN;
        return 0;
    }
    return aha_errorf("unknown task '%s'; expected sum or countdown", name);
}

static int check_config(const AhaTaskGenConfig *c) {
    AHA_REQUIRE(c->n_train >= 0 && c->n_eval >= 0 && c->n_train + c->n_eval >= 1 && c->n_train <= 10000000 &&
                    c->n_eval <= 10000000,
                "problem counts: expected 0 to 10000000 train and eval problems, at least one in all; got %d and %d",
                c->n_train, c->n_eval);
    if (c->kind == AHA_TASK_SUM) {
        AHA_REQUIRE(c->operands >= 2 && c->operands <= AHA_TASKGEN_MAX_OPERANDS,
                    "sum: expected 2 to %d operands, got %d", AHA_TASKGEN_MAX_OPERANDS, c->operands);
        AHA_REQUIRE(c->digits >= 1 && c->digits <= AHA_TASKGEN_MAX_DIGITS, "sum: expected 1 to %d digits, got %d",
                    AHA_TASKGEN_MAX_DIGITS, c->digits);
    } else {
        AHA_REQUIRE(c->operands >= 2 && c->operands <= 5, "countdown: expected 2 to 5 numbers, got %d", c->operands);
        AHA_REQUIRE(c->digits >= 1 && c->digits <= 3, "countdown: expected 1 to 3 digits, got %d", c->digits);
    }
    return 0;
}

static long long power10(int digits) {
    long long p = 1;
    for (int i = 0; i < digits; i++) p *= 10;
    return p;
}

static int by_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int aha_taskgen_problem_key(AhaTaskKind kind, const AhaTaskProblem *problem, char *key, size_t size) {
    int sorted[AHA_TASKGEN_MAX_OPERANDS];
    AHA_REQUIRE(problem->n_nums >= 1 && problem->n_nums <= AHA_TASKGEN_MAX_OPERANDS, "problem with %d numbers",
                problem->n_nums);
    memcpy(sorted, problem->nums, (size_t)problem->n_nums * sizeof sorted[0]);
    qsort(sorted, (size_t)problem->n_nums, sizeof sorted[0], by_int);
    size_t used = 0;
    for (int i = 0; i < problem->n_nums; i++) {
        int n = snprintf(key + used, size - used, "%s%d", i ? "," : "", sorted[i]);
        if (n < 0 || (size_t)n >= size - used) return aha_errorf("problem key longer than %zu bytes", size);
        used += (size_t)n;
    }
    if (kind == AHA_TASK_COUNTDOWN) {
        int n = snprintf(key + used, size - used, "=%lld", problem->target);
        if (n < 0 || (size_t)n >= size - used) return aha_errorf("problem key longer than %zu bytes", size);
    }
    return 0;
}

/* One random problem; returns 1 when drawn, 0 when this draw has no solution (countdown). */
static int draw_sum(const AhaTaskGenConfig *c, AhaRng *rng, AhaTaskProblem *p) {
    long long lo = c->digits == 1 ? 0 : power10(c->digits - 1), hi = power10(c->digits) - 1;
    size_t used = 0;
    p->n_nums = c->operands;
    p->target = 0;
    for (int i = 0; i < c->operands; i++) {
        p->nums[i] = (int)(lo + (long long)aha_rng_below(rng, (uint64_t)(hi - lo + 1)));
        p->target += p->nums[i];
        used += (size_t)snprintf(p->question + used, sizeof p->question - used, "%s%d", i ? "+" : "", p->nums[i]);
    }
    snprintf(p->answer, sizeof p->answer, "%lld", p->target);
    return 1;
}

static int draw_countdown(const AhaTaskGenConfig *c, AhaRng *rng, AhaTaskProblem *p) {
    long long hi = power10(c->digits) - 1, target_lo = c->digits == 1 ? 1 : power10(c->digits - 1);
    p->n_nums = c->operands;
    for (int i = 0; i < c->operands; i++) p->nums[i] = 1 + (int)aha_rng_below(rng, (uint64_t)hi);
    p->target = target_lo + (long long)aha_rng_below(rng, (uint64_t)(hi - target_lo + 1));
    int found = aha_countdown_solve(p->nums, p->n_nums, p->target, p->answer, sizeof p->answer);
    if (found <= 0) return found;
    size_t used = (size_t)snprintf(p->question, sizeof p->question, "make %lld from", p->target);
    for (int i = 0; i < p->n_nums; i++)
        used += (size_t)snprintf(p->question + used, sizeof p->question - used, " %d", p->nums[i]);
    return 1;
}

/* A set of 64-bit hashes of problem keys (open addressing; 0 marks an empty slot). A hash
 * collision can only make a new problem look seen, never let a problem repeat. */
typedef struct {
    uint64_t *slots;
    size_t capacity;
} KeySet;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

/* Returns 1 when added, 0 when already present. */
static int keyset_add(KeySet *set, uint64_t h) {
    size_t i = (size_t)(h % set->capacity);
    while (set->slots[i]) {
        if (set->slots[i] == h) return 0;
        i = (i + 1) % set->capacity;
    }
    set->slots[i] = h;
    return 1;
}

int aha_taskgen_generate(const AhaTaskGenConfig *c, AhaTaskProblem *train, AhaTaskProblem *eval) {
    AHA_TRY(check_config(c));
    long long total = (long long)c->n_train + c->n_eval;
    KeySet seen = {aha_calloc((size_t)(2 * total + 1), sizeof(uint64_t)), (size_t)(2 * total + 1)};
    if (!seen.slots) return -1;
    AhaRng rng;
    aha_rng_init(&rng, c->seed, AHA_TASKGEN_RNG_STREAM);
    /* Give up when draws keep repeating: the settings hold too few distinct problems. */
    long long made = 0, misses = 0, max_misses = 100000 + 50 * total;
    while (made < total) {
        AhaTaskProblem *p = made < c->n_eval ? &eval[made] : &train[made - c->n_eval];
        memset(p, 0, sizeof *p);
        int drawn = c->kind == AHA_TASK_SUM ? draw_sum(c, &rng, p) : draw_countdown(c, &rng, p);
        if (drawn < 0) {
            free(seen.slots);
            return -1;
        }
        char key[160];
        if (drawn == 1 && aha_taskgen_problem_key(c->kind, p, key, sizeof key) != 0) {
            free(seen.slots);
            return -1;
        }
        if (drawn == 1 && keyset_add(&seen, fnv1a(key))) {
            made++;
            continue;
        }
        if (++misses > max_misses) {
            free(seen.slots);
            return aha_errorf("%s with %d numbers of %d digits: found only %lld distinct problems of the %lld asked "
                              "for; ask for fewer or allow more digits",
                              c->kind == AHA_TASK_SUM ? "sum" : "countdown", c->operands, c->digits, made, total);
        }
    }
    free(seen.slots);
    return 0;
}

static json_t *problem_json(AhaTaskKind kind, const AhaTaskProblem *p) {
    json_t *row = json_object();
    if (!row) return NULL;
    int failed = json_object_set_new(row, "question", json_string(p->question)) ||
                 json_object_set_new(row, "answer", json_string(p->answer));
    if (!failed && kind == AHA_TASK_COUNTDOWN) {
        json_t *nums = json_array();
        failed = !nums || json_object_set_new(row, "nums", nums);
        for (int i = 0; !failed && i < p->n_nums; i++) failed = json_array_append_new(nums, json_integer(p->nums[i]));
        if (!failed) failed = json_object_set_new(row, "target", json_integer(p->target));
    }
    if (failed) {
        json_decref(row);
        aha_errorf("out of memory building a JSON row");
        return NULL;
    }
    return row;
}

static int write_jsonl(const char *dir, const char *name, AhaTaskKind kind, const AhaTaskProblem *problems, int n) {
    char path[4096], temp[4096];
    AHA_REQUIRE(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path, "output path too long");
    AHA_REQUIRE(snprintf(temp, sizeof temp, "%s.tmp", path) < (int)sizeof temp, "output path too long");
    FILE *f = fopen(temp, "w");
    AHA_CHECK_SYS(f, "cannot create %s", temp);
    for (int i = 0; i < n; i++) {
        json_t *row = problem_json(kind, &problems[i]);
        char *line = row ? json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(row);
        if (!line || fprintf(f, "%s\n", line) < 0) {
            free(line);
            fclose(f);
            remove(temp);
            return line ? aha_error_errno("writing %s", temp) : aha_errorf("out of memory writing %s", temp);
        }
        free(line);
    }
    if (fclose(f) != 0) {
        remove(temp);
        return aha_error_errno("writing %s", temp);
    }
    if (rename(temp, path) != 0) {
        int rc = aha_error_errno("renaming %s to %s", temp, path);
        remove(temp);
        return rc;
    }
    return 0;
}

int aha_taskgen_write(const AhaTaskGenConfig *c, const char *out_dir) {
    AHA_TRY(check_config(c));
    AHA_TRY(aha_mkdir_p(out_dir));
    struct stat st;
    AHA_CHECK_SYS(stat(out_dir, &st) == 0, "cannot access %s", out_dir);
    AHA_REQUIRE(S_ISDIR(st.st_mode), "%s exists and is not a directory", out_dir);
    AhaTaskProblem *train = aha_calloc((size_t)c->n_train, sizeof *train);
    AhaTaskProblem *eval = aha_calloc((size_t)c->n_eval, sizeof *eval);
    int rc = -1;
    if (train && eval && aha_taskgen_generate(c, train, eval) == 0 &&
        write_jsonl(out_dir, "train.jsonl", c->kind, train, c->n_train) == 0 &&
        write_jsonl(out_dir, "eval.jsonl", c->kind, eval, c->n_eval) == 0)
        rc = 0;
    free(train);
    free(eval);
    return rc;
}

int aha_sum_worked_solution(const char *question, char *think, size_t think_size, char *answer, size_t answer_size) {
    const char *operands[AHA_TASKGEN_MAX_OPERANDS * 4];
    size_t lengths[AHA_TASKGEN_MAX_OPERANDS * 4];
    int n = 0;
    size_t longest = 0;
    for (const char *p = question;;) {
        size_t len = strspn(p, "0123456789");
        if (len == 0 || n == (int)(sizeof operands / sizeof operands[0]))
            return aha_errorf("sum '%s': expected up to %d non-negative integers joined by '+'", question,
                              (int)(sizeof operands / sizeof operands[0]));
        operands[n] = p;
        lengths[n++] = len;
        if (len > longest) longest = len;
        p += len;
        if (*p == '\0') break;
        if (*p != '+') return aha_errorf("sum '%s': expected '+' at offset %d", question, (int)(p - question));
        p++;
    }
    AHA_REQUIRE(n >= 2, "sum '%s': expected at least two operands", question);
    char digits[128]; /* the answer's digits, units first */
    size_t n_digits = 0, used = 0;
    long long carry = 0;
    AHA_REQUIRE(think_size > 0, "no room for the worked solution");
    think[0] = '\0';
    for (size_t col = 0; col < longest; col++) {
        long long total = carry;
        for (int i = 0; i < n; i++) {
            int d = col < lengths[i] ? operands[i][lengths[i] - 1 - col] - '0' : 0;
            total += d;
            int w = snprintf(think + used, think_size - used, "%s%d+", i == 0 && col > 0 ? " " : "", d);
            if (w < 0 || (size_t)w >= think_size - used) return aha_errorf("worked solution longer than %zu bytes", think_size);
            used += (size_t)w;
        }
        int w = snprintf(think + used, think_size - used, "%lld=%lld", carry, total);
        if (w < 0 || (size_t)w >= think_size - used) return aha_errorf("worked solution longer than %zu bytes", think_size);
        used += (size_t)w;
        AHA_REQUIRE(n_digits < sizeof digits - 24, "sum '%s': operands too long", question);
        digits[n_digits++] = (char)('0' + total % 10);
        carry = total / 10;
    }
    for (; carry > 0; carry /= 10) digits[n_digits++] = (char)('0' + carry % 10);
    while (n_digits > 1 && digits[n_digits - 1] == '0') n_digits--; /* operands like 007 */
    AHA_REQUIRE(n_digits < answer_size, "answer longer than %zu bytes", answer_size);
    for (size_t i = 0; i < n_digits; i++) answer[i] = digits[n_digits - 1 - i];
    answer[n_digits] = '\0';
    return 0;
}
