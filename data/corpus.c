#include "aha/corpus.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/rng.h"
#include "aha/taskgen.h"

#define CORPUS_RNG_STREAM 0x636f7270u /* "corp" */

/* ---- Countdown steps: a recursive-descent evaluator that prints each operation ------- */

typedef struct {
    const char *p;
    char *out;
    size_t size, used;
    int failed;
} StepParser;

static long long parse_sum(StepParser *s);

static void skip_spaces(StepParser *s) {
    while (*s->p == ' ') s->p++;
}

static long long parse_atom(StepParser *s) {
    skip_spaces(s);
    if (*s->p == '(') {
        s->p++;
        long long v = parse_sum(s);
        skip_spaces(s);
        if (*s->p != ')') s->failed = 1;
        else s->p++;
        return v;
    }
    if (!isdigit((unsigned char)*s->p)) {
        s->failed = 1;
        return 0;
    }
    long long v = 0;
    while (isdigit((unsigned char)*s->p) && v < 1000000000LL) v = 10 * v + (*s->p++ - '0');
    return v;
}

static long long apply(StepParser *s, long long a, char op, long long b) {
    long long r = 0;
    switch (op) {
    case '+': r = a + b; break;
    case '-': r = a - b; break;
    case '*': r = a * b; break;
    case '/':
        if (b == 0 || a % b != 0) s->failed = 1;
        else r = a / b;
        break;
    }
    int n = snprintf(s->out + s->used, s->size - s->used, "%s%lld%c%lld=%lld",
                     s->used ? " " : "", a, op, b, r);
    if (n < 0 || (size_t)n >= s->size - s->used) s->failed = 1;
    else s->used += (size_t)n;
    return r;
}

static long long parse_product(StepParser *s) {
    long long v = parse_atom(s);
    for (skip_spaces(s); !s->failed && (*s->p == '*' || *s->p == '/'); skip_spaces(s)) {
        char op = *s->p++;
        v = apply(s, v, op, parse_atom(s));
    }
    return v;
}

static long long parse_sum(StepParser *s) {
    long long v = parse_product(s);
    for (skip_spaces(s); !s->failed && (*s->p == '+' || *s->p == '-'); skip_spaces(s)) {
        char op = *s->p++;
        v = apply(s, v, op, parse_product(s));
    }
    return v;
}

int aha_countdown_steps(const char *equation, char *steps, size_t size) {
    AHA_REQUIRE(size > 0, "countdown steps: no room for the output");
    StepParser s = {.p = equation, .out = steps, .size = size};
    steps[0] = '\0';
    parse_sum(&s);
    skip_spaces(&s);
    if (s.failed || *s.p != '\0')
        return aha_errorf("countdown steps: cannot evaluate '%s' as an integer equation", equation);
    return 0;
}

/* ---- The corpus -------------------------------------------------------------------- */

static int worked_steps(json_t *row, const char *question, const char *answer, char *think,
                        size_t size) {
    if (json_object_get(row, "nums")) return aha_countdown_steps(answer, think, size);
    char sum[96];
    AHA_TRY(aha_sum_worked_solution(question, think, size, sum, sizeof sum));
    AHA_REQUIRE(strcmp(sum, answer) == 0, "the worked sum gives %s, the row's answer is %s", sum, answer);
    return 0;
}

static int write_rows(FILE *in, const char *task_path, FILE *out, double think_share,
                      uint64_t seed, size_t *n_docs, size_t *n_worked) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int line_no = 0, rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, in)) != -1) {
        line_no++;
        if ((ssize_t)strspn(line, " \t\r\n") == len) continue;
        json_error_t jerr;
        json_t *row = json_loadb(line, (size_t)len, 0, &jerr);
        json_t *q = row ? json_object_get(row, "question") : NULL;
        json_t *a = row ? json_object_get(row, "answer") : NULL;
        if (!json_is_string(q) || !json_is_string(a)) {
            rc = aha_errorf("%s:%d: expected an object with string \"question\" and \"answer\"",
                            task_path, line_no);
            json_decref(row);
            break;
        }
        uint32_t draw[4];
        aha_rng_block(seed, CORPUS_RNG_STREAM, (uint64_t)line_no, draw);
        int worked = aha_rng_word_to_float(draw[0]) < think_share;
        char think[1024] = "";
        if (worked && worked_steps(row, json_string_value(q), json_string_value(a), think,
                                   sizeof think) != 0) {
            rc = aha_error_prefix("%s:%d", task_path, line_no);
            json_decref(row);
            break;
        }
        char text[2048];
        int n = worked ? snprintf(text, sizeof text, "%s<think>%s</think><answer>%s</answer>",
                                  json_string_value(q), think, json_string_value(a))
                       : snprintf(text, sizeof text, "%s<answer>%s</answer>",
                                  json_string_value(q), json_string_value(a));
        json_decref(row);
        if (n < 0 || (size_t)n >= sizeof text) {
            rc = aha_errorf("%s:%d: the document is too long", task_path, line_no);
            break;
        }
        json_t *doc = json_pack("{s:s}", "text", text);
        char *encoded = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!encoded) {
            rc = aha_errorf("out of memory encoding a corpus line");
            break;
        }
        if (fprintf(out, "%s\n", encoded) < 0) rc = aha_error_errno("writing the corpus");
        free(encoded);
        (*n_docs)++;
        *n_worked += (size_t)worked;
    }
    if (rc == 0 && ferror(in)) rc = aha_error_errno("%s: read error", task_path);
    free(line);
    return rc;
}

int aha_corpus_write(const char *task_path, double think_share, uint64_t seed,
                     const char *out_path, size_t *n_docs, size_t *n_worked) {
    AHA_REQUIRE(think_share >= 0 && think_share <= 1, "think share %g is outside [0, 1]", think_share);
    size_t docs = 0, worked = 0;
    FILE *in = fopen(task_path, "r");
    AHA_CHECK_SYS(in != NULL, "%s", task_path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out_path) >= (int)sizeof tmp) {
        fclose(in);
        return aha_errorf("%s: path too long", out_path);
    }
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return aha_error_errno("%s", tmp);
    }
    int rc = write_rows(in, task_path, out, think_share, seed, &docs, &worked);
    fclose(in);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) rc = rc ? rc : aha_error_errno("%s", tmp);
    if (fclose(out) != 0) rc = rc ? rc : aha_error_errno("%s", tmp);
    if (rc == 0 && rename(tmp, out_path) != 0) rc = aha_error_errno("renaming %s to %s", tmp, out_path);
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    if (n_docs) *n_docs = docs;
    if (n_worked) *n_worked = worked;
    return 0;
}
