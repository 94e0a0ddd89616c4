/* The countdown checker of the countdown reward: evaluates an equation exactly (rational
 * arithmetic, overflow checked) and says whether it uses each given number once and equals
 * the target. The task generator's solver (data/gen_countdown.c) produces such equations;
 * this file is the judge, so it lives with the rewards. */
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/reward.h"

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
