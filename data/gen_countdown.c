/* Countdown: reach a target from given numbers, each used once, with + - * /.
 * The solver searches every way of combining two remaining numbers; the checker evaluates an
 * equation exactly (rational arithmetic) so that rewards and tests can trust it. */
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

/* ---- Checking an equation ----------------------------------------------------------- */

typedef struct {
    long long num, den; /* den > 0 */
} Rational;

typedef struct {
    const char *p;
    long long used[16];
    int n_used;
    const char *error;
} Parser;

static long long gcd(long long a, long long b) {
    if (a < 0) a = -a;
    while (b) {
        long long t = a % b;
        a = b;
        b = t;
    }
    return a ? a : 1;
}

static Rational make(long long num, long long den) {
    if (den < 0) num = -num, den = -den;
    long long g = gcd(num, den);
    return (Rational){num / g, den / g};
}

static void skip_spaces(Parser *p) {
    while (*p->p == ' ') p->p++;
}

/* Products stay far below overflow for Countdown-sized numbers; larger ones are refused. */
#define LIMIT 1000000000LL

static int checked(Parser *p, Rational r, Rational *out) {
    if (r.num > LIMIT || r.num < -LIMIT || r.den > LIMIT) {
        p->error = "intermediate value too large";
        return -1;
    }
    *out = r;
    return 0;
}

static int parse_sum(Parser *p, Rational *out);

static int parse_atom(Parser *p, Rational *out) {
    skip_spaces(p);
    if (*p->p == '(') {
        p->p++;
        if (parse_sum(p, out) != 0) return -1;
        skip_spaces(p);
        if (*p->p != ')') {
            p->error = "expected ')'";
            return -1;
        }
        p->p++;
        return 0;
    }
    if (*p->p < '0' || *p->p > '9') {
        p->error = "expected a number or '('";
        return -1;
    }
    long long v = 0;
    while (*p->p >= '0' && *p->p <= '9') {
        v = v * 10 + (*p->p++ - '0');
        if (v > LIMIT) {
            p->error = "number too large";
            return -1;
        }
    }
    if (p->n_used == (int)(sizeof p->used / sizeof p->used[0])) {
        p->error = "too many numbers";
        return -1;
    }
    p->used[p->n_used++] = v;
    *out = make(v, 1);
    return 0;
}

static int parse_product(Parser *p, Rational *out) {
    if (parse_atom(p, out) != 0) return -1;
    for (;;) {
        skip_spaces(p);
        char op = *p->p;
        if (op != '*' && op != '/') return 0;
        p->p++;
        Rational rhs;
        if (parse_atom(p, &rhs) != 0) return -1;
        if (op == '/' && rhs.num == 0) {
            p->error = "division by zero";
            return -1;
        }
        Rational r = op == '*' ? make(out->num * rhs.num, out->den * rhs.den) : make(out->num * rhs.den, out->den * rhs.num);
        if (checked(p, r, out) != 0) return -1;
    }
}

static int parse_sum(Parser *p, Rational *out) {
    if (parse_product(p, out) != 0) return -1;
    for (;;) {
        skip_spaces(p);
        char op = *p->p;
        if (op != '+' && op != '-') return 0;
        p->p++;
        Rational rhs;
        if (parse_product(p, &rhs) != 0) return -1;
        long long num = op == '+' ? out->num * rhs.den + rhs.num * out->den : out->num * rhs.den - rhs.num * out->den;
        if (checked(p, make(num, out->den * rhs.den), out) != 0) return -1;
    }
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int aha_countdown_check(const char *equation, const int *nums, int n, long long target) {
    Parser p = {.p = equation};
    Rational value;
    if (parse_sum(&p, &value) != 0) {
        aha_errorf("equation '%s': %s at offset %d", equation, p.error, (int)(p.p - equation));
        return 0;
    }
    skip_spaces(&p);
    if (*p.p != '\0') {
        aha_errorf("equation '%s': unexpected '%c' at offset %d", equation, *p.p, (int)(p.p - equation));
        return 0;
    }
    long long given[16];
    if (n < 0 || n > 16) return aha_errorf("countdown takes at most 16 numbers"), 0;
    for (int i = 0; i < n; i++) given[i] = nums[i];
    qsort(given, (size_t)n, sizeof given[0], by_value);
    qsort(p.used, (size_t)p.n_used, sizeof p.used[0], by_value);
    if (p.n_used != n || memcmp(given, p.used, (size_t)n * sizeof given[0]) != 0) {
        aha_errorf("equation '%s' does not use each given number exactly once", equation);
        return 0;
    }
    if (value.den != 1 || value.num != target) {
        aha_errorf("equation '%s' equals %lld/%lld, not %lld", equation, value.num, value.den, target);
        return 0;
    }
    return 1;
}
