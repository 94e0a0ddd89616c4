/* Countdown: reach a target from given numbers, each used once, with + - * /.
 * The solver searches every way of combining two remaining numbers. The equations it writes
 * are judged by the reward's checker (aha_countdown_check, reward/countdown_check.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/taskgen.h"

#define MAX_NUMBERS 5
#define EXPR_CAP 96

/* A value with the expression that made it and the precedence of its outermost operator
 * (3: a number, 2: * or /, 1: + or -), which decides where parentheses are needed. */
typedef struct {
    long long value;
    int precedence;
    char text[EXPR_CAP];
} Term;

static int combine(const Term *a, const Term *b, char op, Term *out) {
    int precedence = (op == '+' || op == '-') ? 1 : 2;
    int left_parens = a->precedence < precedence;
    /* a - (b + c) and a / (b * c) need them on the right even at equal precedence */
    int right_parens = b->precedence < precedence || (b->precedence == precedence && (op == '-' || op == '/'));
    int n = snprintf(out->text, sizeof out->text, "%s%s%s%c%s%s%s", left_parens ? "(" : "", a->text,
                     left_parens ? ")" : "", op, right_parens ? "(" : "", b->text, right_parens ? ")" : "");
    if (n < 0 || (size_t)n >= sizeof out->text) return -1;
    out->precedence = precedence;
    return 0;
}

/* One combination: the terms at i and j (indices into the list at that depth) joined by op.
 * The new term goes last; the others keep their order. */
typedef struct {
    int i, j;
    char op;
} Step;

static void apply_step(long long *values, int n, Step step, long long result) {
    int m = 0;
    for (int t = 0; t < n; t++)
        if (t != step.i && t != step.j) values[m++] = values[t];
    values[m] = result;
}

/* Depth-first over values only; the equation is rebuilt from the steps of a success. */
static int search(const long long *values, int n, long long target, Step *steps, int depth) {
    if (n == 1) return values[0] == target;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (i == j) continue;
            long long a = values[i], b = values[j];
            long long results[4];
            char ops[4];
            int k = 0;
            if (i < j) { /* + and * are commutative: once per pair */
                results[k] = a + b, ops[k++] = '+';
                results[k] = a * b, ops[k++] = '*';
            }
            if (a > b) results[k] = a - b, ops[k++] = '-';
            if (b > 1 && a % b == 0) results[k] = a / b, ops[k++] = '/';
            for (int c = 0; c < k; c++) {
                long long next[MAX_NUMBERS];
                memcpy(next, values, (size_t)n * sizeof next[0]);
                steps[depth] = (Step){i, j, ops[c]};
                apply_step(next, n, steps[depth], results[c]);
                if (search(next, n - 1, target, steps, depth + 1)) return 1;
            }
        }
    return 0;
}

int aha_countdown_solve(const int *nums, int n, long long target, char *equation, size_t size) {
    if (n < 1 || n > MAX_NUMBERS) return aha_errorf("countdown takes 1 to %d numbers, got %d", MAX_NUMBERS, n);
    long long values[MAX_NUMBERS];
    for (int i = 0; i < n; i++) {
        if (nums[i] < 1) return aha_errorf("countdown numbers are positive, got %d", nums[i]);
        values[i] = nums[i];
    }
    Step steps[MAX_NUMBERS];
    if (!search(values, n, target, steps, 0)) return 0;
    Term terms[MAX_NUMBERS];
    for (int i = 0; i < n; i++) {
        terms[i].value = nums[i];
        terms[i].precedence = 3;
        snprintf(terms[i].text, sizeof terms[i].text, "%d", nums[i]);
    }
    for (int depth = 0, m = n; m > 1; depth++, m--) {
        Step step = steps[depth];
        Term joined;
        if (combine(&terms[step.i], &terms[step.j], step.op, &joined) != 0)
            return aha_errorf("countdown equation longer than %d bytes", EXPR_CAP);
        int k = 0;
        for (int t = 0; t < m; t++)
            if (t != step.i && t != step.j) terms[k++] = terms[t];
        terms[k] = joined;
    }
    if (strlen(terms[0].text) >= size) return aha_errorf("countdown equation longer than %zu bytes", size);
    strcpy(equation, terms[0].text);
    return 1;
}
