/* Deciding equality of two parsed answers, and the public entry points.
 *
 * Numbers: exact when both are integer literals; otherwise relative tolerance 1e-14 (and
 * under 0.5) when the gold is a whole number, room for floating error only, and 1e-8 when
 * it is not: a decimal approximation of an exact gold needs about nine significant digits. Expressions
 * with variables: equal values at MATH_POINTS fixed pseudo-random points (at least
 * MATH_MIN_POINTS where both sides are finite). Structure must match: ordered tuples and
 * intervals element by element with the same brackets, sets and bare lists as multisets. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/math_answer.h"
#include "reward/math_internal.h"

#define MATH_POINTS 10
#define MATH_MIN_POINTS 3
#define MATH_REL_TOL 1e-8
#define MATH_REL_TOL_WHOLE 1e-14
#define MATH_ABS_TOL 1e-12

static const MathValue *val(const MathCtx *c, int v) { return &c->values[v]; }

static int close_to(double a, double g) {
    if (isnan(a) || isnan(g)) return 0;
    if (isinf(a) || isinf(g)) return a == g;
    double scale = fmax(fabs(a), fabs(g));
    /* A whole-number gold leaves room for floating error only, never for the next integer. */
    double tol = g == floor(g) ? fmin(MATH_REL_TOL_WHOLE * scale, 0.5) : MATH_REL_TOL * scale;
    return fabs(a - g) <= fmax(MATH_ABS_TOL, tol);
}

/* Two integer literals compare digit by digit, so no size is too big to be exact. */
static int integer_literals_equal(const MathCtx *a, const MathValue *va, const MathCtx *g, const MathValue *vg) {
    char da[128], dg[128];
    const MathCtx *ctx[2] = {a, g};
    const MathValue *v[2] = {va, vg};
    char *out[2] = {da, dg};
    for (int s = 0; s < 2; s++) {
        const MathToken *t = &ctx[s]->tokens[v[s]->int_token];
        size_t n = 0;
        int leading = 1;
        for (int i = t->text_begin; i < t->text_end && ctx[s]->text[i] != '_'; i++) {
            char c = ctx[s]->text[i];
            if (c == ',' || c == ' ' || (leading && c == '0')) continue;
            leading = 0;
            if (n + 1 >= sizeof da) return -1; /* too long: let the caller compare values */
            out[s][n++] = c;
        }
        out[s][n] = '\0';
    }
    int zero = da[0] == '\0';
    /* 204_5 is 204_5 or plain 204 (the question named the base), never 204_6 */
    int base_a = a->tokens[va->int_token].base, base_g = g->tokens[vg->int_token].base;
    if (base_a && base_g && base_a != base_g) return 0;
    return strcmp(da, dg) == 0 && (zero || va->negated == vg->negated);
}

static int expr_equal(const MathCtx *a, const MathValue *va, const MathCtx *g, const MathValue *vg) {
    /* degrees against radians: the side written in degrees is scaled by pi/180 */
    double sa = a->angle_scale, sg = g->angle_scale;
    if (!va->has_vars && !vg->has_vars) {
        if (va->int_token >= 0 && vg->int_token >= 0 && !va->percent && !vg->percent && sa == sg) {
            int exact = integer_literals_equal(a, va, g, vg);
            if (exact >= 0) return exact;
        }
        double x = sa * math_eval(a, va->expr, 0), y = sg * math_eval(g, vg->expr, 0);
        if (close_to(x, y)) return 1;
        /* 50% against 50 or 0.5: a percentage may be given with or without its sign. */
        if (va->percent && !vg->percent && close_to(x * 100, y)) return 1;
        if (vg->percent && !va->percent && close_to(x, y * 100)) return 1;
        return 0;
    }
    int valid = 0;
    for (int k = 0; k < MATH_POINTS; k++) {
        double x = sa * math_eval(a, va->expr, k), y = sg * math_eval(g, vg->expr, k);
        int fx = isfinite(x), fy = isfinite(y);
        if (fx != fy) return 0;
        if (!fx) continue;
        if (fabs(x - y) > fmax(MATH_ABS_TOL, MATH_REL_TOL * fmax(fabs(x), fabs(y)))) return 0;
        valid++;
    }
    return valid >= MATH_MIN_POINTS;
}

static int value_equal(const MathCtx *a, int ia, const MathCtx *g, int ig);
static int is_single_variable(const MathCtx *c, int v);
static int is_infinite(const MathCtx *c, int v, double sign);

/* x, x_1, \theta, or a function's value f(x), p(2): what an answer may name before "=". */
static int is_single_variable(const MathCtx *c, int v) {
    const MathValue *x = val(c, v);
    return x->kind == V_EXPR && (c->nodes[x->expr].op == E_VAR || x->function_notation);
}

/* What may stand before "=" to state a value: a single variable or a function's value, or a
 * tuple of them: (x, y) = (2, 3) states (2, 3). */
static int names_quantity(const MathCtx *c, int v) {
    const MathValue *x = val(c, v);
    if (is_single_variable(c, v)) return 1;
    if (x->kind != V_LIST || !x->ordered || x->open != TK_LPAREN || x->close != TK_RPAREN) return 0;
    for (int i = 0; i < x->count; i++)
        if (!is_single_variable(c, c->children[x->first + i])) return 0;
    return x->count > 0;
}

/* "x = 2, y = 3" against the tuple "(2, 3)": equations of distinct single variables, in the
 * order written, against the tuple's items. */
static int equations_match_tuple(const MathCtx *ec, const MathValue *eqs, const MathCtx *tc, const MathValue *tuple,
                                 int eqs_is_answer) {
    if (eqs->ordered || eqs->open != LIST_BARE || !tuple->ordered || tuple->open != TK_LPAREN ||
        tuple->close != TK_RPAREN || eqs->count != tuple->count || eqs->count < 2 || eqs->count > 64)
        return 0;
    uint64_t names[64];
    for (int i = 0; i < eqs->count; i++) {
        const MathValue *r = val(ec, ec->children[eqs->first + i]);
        if (r->kind != V_REL || r->rel != REL_EQ) return 0;
        const MathValue *lhs = val(ec, r->lhs);
        if (lhs->kind != V_EXPR || ec->nodes[lhs->expr].op != E_VAR) return 0;
        names[i] = ec->nodes[lhs->expr].var;
        for (int j = 0; j < i; j++)
            if (names[j] == names[i]) return 0;
        int item = tc->children[tuple->first + i];
        int same = eqs_is_answer ? value_equal(ec, r->rhs, tc, item) : value_equal(tc, item, ec, r->rhs);
        if (!same) return 0;
    }
    return 1;
}

/* lhs = rhs against lhs' = rhs' as equations: the same up to a non-zero factor
 * (2x + 4y = 8 against x = 4 - 2y), checked by value at the sample points. */
static int equations_proportional(const MathCtx *a, const MathValue *ra, const MathCtx *g, const MathValue *rg) {
    const MathValue *al = val(a, ra->lhs), *ar = val(a, ra->rhs), *gl = val(g, rg->lhs), *gr = val(g, rg->rhs);
    if (al->kind != V_EXPR || ar->kind != V_EXPR || gl->kind != V_EXPR || gr->kind != V_EXPR) return 0;
    double ratio = NAN;
    int valid = 0;
    for (int k = 0; k < MATH_POINTS; k++) {
        double fa = math_eval(a, al->expr, k) - math_eval(a, ar->expr, k);
        double fg = math_eval(g, gl->expr, k) - math_eval(g, gr->expr, k);
        if (!isfinite(fa) || !isfinite(fg)) {
            if (isfinite(fa) != isfinite(fg)) return 0;
            continue;
        }
        if (fabs(fg) < 1e-9 || fabs(fa) < 1e-9) {
            if (fabs(fg) < 1e-9 && fabs(fa) < 1e-9) continue;
            return 0;
        }
        double r = fa / fg;
        if (isnan(ratio)) ratio = r;
        else if (fabs(r - ratio) > MATH_REL_TOL * fabs(ratio)) return 0;
        valid++;
    }
    return valid >= MATH_MIN_POINTS;
}

static int mirrored(int rel) {
    switch (rel) {
    case REL_LT: return REL_GT;
    case REL_GT: return REL_LT;
    case REL_LE: return REL_GE;
    case REL_GE: return REL_LE;
    default: return rel;
    }
}

static int relation_equal(const MathCtx *a, const MathValue *ra, const MathCtx *g, const MathValue *rg) {
    int same = ra->rel == rg->rel && value_equal(a, ra->lhs, g, rg->lhs) && value_equal(a, ra->rhs, g, rg->rhs);
    if (same) return 1;
    if (ra->rel == -1 || rg->rel == -1) return 0;
    if (ra->rel == mirrored(rg->rel) && value_equal(a, ra->lhs, g, rg->rhs) && value_equal(a, ra->rhs, g, rg->lhs))
        return 1;
    if (ra->rel == REL_EQ && rg->rel == REL_EQ) {
        /* y = 2x against y = 2x written another way; x = 3 against y = 3 stays wrong. */
        if (is_single_variable(a, ra->lhs) && is_single_variable(g, rg->lhs)) return 0;
        return equations_proportional(a, ra, g, rg);
    }
    return 0;
}

/* Element indices of a vector: a tuple, or a matrix with one row or one column. */
static int vector_items(const MathCtx *c, const MathValue *v, int *items, int cap) {
    if (v->open == TK_LPAREN || v->open == TK_LANGLE) {
        if ((v->close != TK_RPAREN && v->close != TK_RANGLE) || v->count > cap) return -1;
        for (int i = 0; i < v->count; i++) items[i] = c->children[v->first + i];
        return v->count;
    }
    if (v->open != LIST_MATRIX) return -1;
    int n = 0;
    for (int r = 0; r < v->count; r++) {
        const MathValue *row = val(c, c->children[v->first + r]);
        if (row->count != 1 && v->count != 1) return -1;
        for (int i = 0; i < row->count; i++) {
            if (n == cap) return -1;
            items[n++] = c->children[row->first + i];
        }
    }
    return n;
}

static int is_interval(const MathValue *l) {
    return l->ordered && l->count == 2 && (l->open == TK_LPAREN || l->open == TK_LBRACK) &&
           (l->close == TK_RPAREN || l->close == TK_RBRACK);
}

/* Two intervals whose brackets differ only at infinite ends: [-\infty, 0] is (-\infty, 0]. */
static int interval_ends_match(const MathCtx *a, const MathValue *la, const MathCtx *g, const MathValue *lg) {
    if (!is_interval(la) || !is_interval(lg)) return 0;
    if (la->open != lg->open && !(is_infinite(a, a->children[la->first], -1.0) &&
                                  is_infinite(g, g->children[lg->first], -1.0)))
        return 0;
    if (la->close != lg->close && !(is_infinite(a, a->children[la->first + 1], 1.0) &&
                                    is_infinite(g, g->children[lg->first + 1], 1.0)))
        return 0;
    return 1;
}

static int list_equal(const MathCtx *a, const MathValue *la, const MathCtx *g, const MathValue *lg) {
    int unordered_g = !lg->ordered, unordered_a = !la->ordered;
    if (unordered_g != unordered_a) return 0;
    if (unordered_g) {
        if ((lg->open == LIST_UNION) != (la->open == LIST_UNION) || la->count != lg->count) return 0;
        char small[64], *used = la->count <= 64 ? small : calloc((size_t)la->count, 1);
        if (!used) return 0;
        memset(used, 0, la->count <= 64 ? sizeof small : 0);
        int all = 1;
        for (int i = 0; i < lg->count && all; i++) {
            int found = 0;
            for (int j = 0; j < la->count && !found; j++)
                if (!used[j] && value_equal(a, a->children[la->first + j], g, g->children[lg->first + i]))
                    used[j] = 1, found = 1;
            all = found;
        }
        if (used != small) free(used);
        return all;
    }
    int same_shape = la->open == lg->open && la->close == lg->close && la->count == lg->count;
    if (!same_shape && interval_ends_match(a, la, g, lg)) same_shape = 1;
    if (!same_shape) {
        /* A vector written as a tuple, \langle\rangle or a one-column matrix. */
        int ia[64], ig[64];
        int na = vector_items(a, la, ia, 64), ng = vector_items(g, lg, ig, 64);
        if (na < 0 || ng < 0 || na != ng) return 0;
        if (la->open != LIST_MATRIX && lg->open != LIST_MATRIX && na != ng) return 0;
        for (int i = 0; i < na; i++)
            if (!value_equal(a, ia[i], g, ig[i])) return 0;
        return 1;
    }
    for (int i = 0; i < lg->count; i++)
        if (!value_equal(a, a->children[la->first + i], g, g->children[lg->first + i])) return 0;
    return 1;
}

/* An inequality in one variable as interval bounds: value indices, or -1 for an infinite
 * end. "x > 3" is (3, oo), "1 < x \le 3" is (1, 3]. Returns 0 when it is no such thing. */
static int relation_bounds(const MathCtx *c, const MathValue *r, int *lo, int *lo_open, int *hi, int *hi_open) {
    *lo = *hi = -1;
    *lo_open = *hi_open = 1;
    if (r->rel != REL_LT && r->rel != REL_LE && r->rel != REL_GT && r->rel != REL_GE) return 0;
    int strict = r->rel == REL_LT || r->rel == REL_GT, less = r->rel == REL_LT || r->rel == REL_LE;
    const MathValue *inner = val(c, r->lhs);
    if (inner->kind == V_REL) { /* a < x < b: the inner relation holds a and x */
        int inner_less = inner->rel == REL_LT || inner->rel == REL_LE;
        if (inner->rel == REL_EQ || inner->rel == REL_NE || inner->rel == -1 || inner_less != less) return 0;
        if (!is_single_variable(c, inner->rhs) || val(c, r->rhs)->kind != V_EXPR) return 0;
        int inner_strict = inner->rel == REL_LT || inner->rel == REL_GT;
        *lo = less ? inner->lhs : r->rhs;
        *lo_open = less ? inner_strict : strict;
        *hi = less ? r->rhs : inner->lhs;
        *hi_open = less ? strict : inner_strict;
        return 1;
    }
    if (is_single_variable(c, r->lhs) && val(c, r->rhs)->kind == V_EXPR) {
        if (less) *hi = r->rhs, *hi_open = strict;
        else *lo = r->rhs, *lo_open = strict;
        return 1;
    }
    if (is_single_variable(c, r->rhs) && inner->kind == V_EXPR) {
        if (less) *lo = r->lhs, *lo_open = strict;
        else *hi = r->lhs, *hi_open = strict;
        return 1;
    }
    return 0;
}

static int is_infinite(const MathCtx *c, int v, double sign) {
    const MathValue *x = val(c, v);
    return x->kind == V_EXPR && !x->has_vars && math_eval(c, x->expr, 0) == sign * INFINITY;
}

/* An inequality (rel side) against an interval (list side). */
static int relation_matches_interval(const MathCtx *rc, const MathValue *r, const MathCtx *lc, const MathValue *l,
                                     int rel_is_answer) {
    if (!l->ordered || l->count != 2 || (l->open != TK_LPAREN && l->open != TK_LBRACK) ||
        (l->close != TK_RPAREN && l->close != TK_RBRACK))
        return 0;
    int lo, lo_open, hi, hi_open;
    if (!relation_bounds(rc, r, &lo, &lo_open, &hi, &hi_open)) return 0;
    int list_lo = lc->children[l->first], list_hi = lc->children[l->first + 1];
    int ends[2][4] = {{lo, lo_open, list_lo, l->open == TK_LPAREN}, {hi, hi_open, list_hi, l->close == TK_RPAREN}};
    for (int e = 0; e < 2; e++) {
        int bound = ends[e][0], open = ends[e][1], item = ends[e][2], item_open = ends[e][3];
        if (bound < 0) {
            if (!is_infinite(lc, item, e == 0 ? -1.0 : 1.0)) return 0;
            continue;
        }
        if (open != item_open) return 0;
        int same = rel_is_answer ? value_equal(rc, bound, lc, item) : value_equal(lc, item, rc, bound);
        if (!same) return 0;
    }
    return 1;
}

/* An answer equation against a gold that is none: its last side must equal the gold, and
 * every other side must be a single variable or equal the gold too, so that "6 = 5" and
 * "x + y = 5" cannot pass for 5 ("x = 5", "2 + 3 = 5" and "x = 2 + 3 = 5" do). */
static int answer_equation_states(const MathCtx *a, const MathValue *r, const MathCtx *g, int ig) {
    if (r->rel != REL_EQ && r->rel != -1) return 0;
    if (!value_equal(a, r->rhs, g, ig)) return 0;
    const MathValue *lhs = val(a, r->lhs);
    if (lhs->kind == V_REL) return answer_equation_states(a, lhs, g, ig);
    if (names_quantity(a, r->lhs)) return 1;
    return lhs->kind == V_EXPR && !lhs->has_vars && value_equal(a, r->lhs, g, ig);
}

static int value_equal(const MathCtx *a, int ia, const MathCtx *g, int ig) {
    const MathValue *va = val(a, ia), *vg = val(g, ig);
    if (va->kind == V_REL && vg->kind == V_LIST && relation_matches_interval(a, va, g, vg, 1)) return 1;
    if (vg->kind == V_REL && va->kind == V_LIST && relation_matches_interval(g, vg, a, va, 0)) return 1;
    if (vg->kind == V_CHOICE || va->kind == V_CHOICE)
        return vg->kind == V_CHOICE && va->kind == V_CHOICE && va->letter == vg->letter;
    if (vg->kind == V_TEXT || va->kind == V_TEXT) return 0; /* the caller compared the texts */
    if (va->kind == V_REL && vg->kind == V_REL) {
        if (relation_equal(a, va, g, vg)) return 1;
        /* x \in [a, b] against a \le x \le b */
        if (vg->rel == -1) return value_equal(a, ia, g, vg->rhs);
        if (va->rel == -1) return value_equal(a, va->rhs, g, ig);
        return 0;
    }
    /* "x = 5" against "5", either way round; "x \in [1,2]" against "[1,2]". */
    if (vg->kind == V_REL) /* a gold "y = 2x + 3" states 2x + 3; "5x - 7y = 0" does not state 0 */
        return (vg->rel == REL_EQ || vg->rel == -1) && names_quantity(g, vg->lhs) &&
               value_equal(a, ia, g, vg->rhs);
    if (va->kind == V_REL) return answer_equation_states(a, va, g, ig);
    if (va->kind == V_LIST && vg->kind == V_LIST)
        return list_equal(a, va, g, vg) || equations_match_tuple(a, va, g, vg, 1) || equations_match_tuple(g, vg, a, va, 0);
    /* A one-element set or list against its element. */
    if (vg->kind == V_LIST) return !vg->ordered && vg->count == 1 && value_equal(a, ia, g, g->children[vg->first]);
    if (va->kind == V_LIST) return !va->ordered && va->count == 1 && value_equal(a, a->children[va->first], g, ig);
    return expr_equal(a, va, g, vg);
}

/* ---------------------------------------------------------------------------------------- */
/* Public entry points */

/* The next character that counts in a text comparison: spaces and braces do not, except
 * that a space between two letters or digits stays one space ("2 3" is not "23"). */
static int next_significant(const char **p, int *prev_alnum) {
    const char *s = *p;
    int spaced = 0;
    while (*s && (isspace((unsigned char)*s) || *s == '{' || *s == '}')) spaced |= isspace((unsigned char)*s), s++;
    if (!*s) {
        *p = s;
        return 0;
    }
    if (spaced && *prev_alnum && isalnum((unsigned char)*s)) {
        *p = s;
        *prev_alnum = 0;
        return ' ';
    }
    *p = s + 1;
    *prev_alnum = isalnum((unsigned char)*s) != 0;
    return (unsigned char)*s;
}

static int texts_equal(const char *x, const char *y, int fold_case) {
    int ax = 0, ay = 0;
    for (;;) {
        int cx = next_significant(&x, &ax), cy = next_significant(&y, &ay);
        if (fold_case) cx = tolower(cx), cy = tolower(cy);
        if (cx != cy) return 0;
        if (cx == 0) return 1;
    }
}

static int braces_balanced(const char *s, size_t n) {
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) i++;
        else if (s[i] == '{') depth++;
        else if (s[i] == '}' && --depth < 0) return 0;
    }
    return depth == 0;
}

/* Parses one side: 0, or -1 on out of memory. */
static int load(MathCtx *ctx, const char *s, size_t n, int role, int euler) {
    /* NUL and other control bytes read as spaces: they neither end nor hide an answer */
    char *spaced = aha_malloc(n + 1);
    if (!spaced) return -1;
    for (size_t i = 0; i < n; i++) spaced[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    char *raw = math_strndup_trimmed(spaced, spaced + n);
    free(spaced);
    if (!raw) return -1;
    ctx->text = math_normalize(raw, &ctx->degrees);
    free(raw);
    if (!ctx->text) return -1;
    ctx->euler = euler;
    ctx->angle_scale = 1.0;
    if (ctx->text[0] == '\0') return 0;
    return math_parse(ctx, role);
}

static int has_token(const MathCtx *c, MathTokenKind kind) {
    for (int i = 0; i < c->ntokens; i++)
        if (c->tokens[i].kind == kind) return 1;
    return 0;
}

static void describe(char *why, size_t cap, const char *verdict, const char *a, const char *sep, const char *g) {
    if (!why || cap == 0) return;
    /* Long answers are cut: the reason is for a person reading a log line. */
    snprintf(why, cap, "%s: %.60s%s%s %.60s", verdict, a, strlen(a) > 60 ? "..." : "", sep, g);
}

int math_compare(const char *answer, size_t answer_len, const char *gold, size_t gold_len, char *why,
                 size_t why_cap) {
    return math_compare_ex(answer, answer_len, gold, gold_len, why, why_cap, 0);
}

int math_compare_ex(const char *answer, size_t answer_len, const char *gold, size_t gold_len, char *why,
                    size_t why_cap, int structural) {
    if (why && why_cap) why[0] = '\0';
    if (!braces_balanced(answer, answer_len)) { /* \frac{1}{2 is cut off, not one half */
        if (why && why_cap) snprintf(why, why_cap, "not equal: the answer has unbalanced braces");
        return braces_balanced(gold, gold_len) ? 0 : -1;
    }
    if (!braces_balanced(gold, gold_len)) {
        if (why && why_cap) snprintf(why, why_cap, "gold answer has unbalanced braces");
        return -1;
    }
    MathCtx g = {0}, a = {0};
    int result = -2;
    if (load(&g, gold, gold_len, 0, 0) != 0) goto done;
    if (g.text[0] == '\0') {
        if (why && why_cap) snprintf(why, why_cap, "gold answer is empty");
        result = -1;
        goto done;
    }
    int gold_choice = g.values[g.root].kind == V_CHOICE;
    if (load(&a, answer, answer_len, gold_choice ? 1 : 2, 0) != 0) goto done;
    if (a.looks_textual && !gold_choice && g.values[g.root].kind != V_TEXT) {
        /* "18 apples", "The answer is 5": the math at the end of a sentence is the answer. */
        char *math = math_trailing_math(a.text);
        if (!math) goto done;
        math_ctx_free(&a);
        int r = load(&a, math, strlen(math), 2, 0);
        free(math);
        if (r != 0) goto done;
    }
    if (a.text[0] == '\0') {
        if (why && why_cap) snprintf(why, why_cap, "empty answer");
        result = 0;
        goto done;
    }
    if (a.idents == a.e_idents && g.idents == g.e_idents && a.e_idents + g.e_idents > 0 &&
        a.values[a.root].kind != V_TEXT && g.values[g.root].kind != V_TEXT) {
        /* no variable but e on either side: a constant, e is Euler's number (\ln e^2 = 2) */
        char *answer_text = aha_strdup(a.text), *gold_text = aha_strdup(g.text);
        int gold_role = gold_choice ? 1 : 2, a_degrees = a.degrees, g_degrees = g.degrees;
        math_ctx_free(&a);
        math_ctx_free(&g);
        int r = answer_text && gold_text ? load(&g, gold_text, strlen(gold_text), 0, 1) : -1;
        if (r == 0) r = load(&a, answer_text, strlen(answer_text), gold_role, 1);
        free(answer_text);
        free(gold_text);
        if (r != 0) goto done;
        a.degrees |= a_degrees;
        g.degrees |= g_degrees;
    }
    if (a.degrees != g.degrees) { /* 90^\circ against \frac{\pi}{2} */
        MathCtx *deg = a.degrees ? &a : &g, *other = a.degrees ? &g : &a;
        if (has_token(other, TK_PI)) deg->angle_scale = M_PI / 180.0;
    }
    int textual = a.values[a.root].kind == V_TEXT || g.values[g.root].kind == V_TEXT;
    if (structural) {
        result = textual ? 3 : value_equal(&a, a.root, &g, g.root);
        goto done;
    }
    result = texts_equal(a.text, g.text, textual) || (!textual && value_equal(&a, a.root, &g, g.root));
    describe(why, why_cap, result ? "equal" : "not equal", a.text, result ? " =" : " vs", g.text);
done:
    if (result == -2) aha_error_prefix("math answer check");
    math_ctx_free(&a);
    math_ctx_free(&g);
    return result;
}

int aha_math_equal(const char *answer, const char *gold_answer) {
    if (!gold_answer) return -1;
    if (!answer) return 0;
    return math_compare(answer, strlen(answer), gold_answer, strlen(gold_answer), NULL, 0);
}

int aha_math_score(const char *completion, const char *gold, AhaMathExtract mode, double *score, char *reason,
                   size_t reason_cap) {
    return aha_math_score_n(completion, completion ? strlen(completion) : 0, gold, gold ? strlen(gold) : 0, mode,
                            score, reason, reason_cap);
}

int aha_math_score_n(const char *completion, size_t completion_len, const char *gold, size_t gold_len,
                     AhaMathExtract mode, double *score, char *reason, size_t reason_cap) {
    if (score) *score = 0.0;
    if (reason && reason_cap) reason[0] = '\0';
    if (!completion || !gold || !score)
        return aha_errorf("aha_math_score: completion, gold and score must not be NULL");
    if (mode != AHA_MATH_EXTRACT_AUTO && mode != AHA_MATH_EXTRACT_BOXED && mode != AHA_MATH_EXTRACT_ANSWER_TAG)
        return aha_errorf("aha_math_score: unknown extraction mode %d", (int)mode);
    const char *gold_begin, *gold_end;
    math_gold_range(gold, gold_len, &gold_begin, &gold_end);
    if (gold_begin == gold_end) {
        if (reason && reason_cap) snprintf(reason, reason_cap, "gold answer is empty");
        return 1;
    }
    const char *begin, *end;
    if (!math_extract_range(completion, completion_len, mode, &begin, &end)) {
        if (reason && reason_cap)
            snprintf(reason, reason_cap, "%s",
                     mode == AHA_MATH_EXTRACT_BOXED       ? "no \\boxed{} found"
                     : mode == AHA_MATH_EXTRACT_ANSWER_TAG ? "no <answer> found"
                                                           : "no \\boxed{} or <answer> found");
        return 0;
    }
    int r = math_compare(begin, (size_t)(end - begin), gold_begin, (size_t)(gold_end - gold_begin), reason,
                         reason_cap);
    if (r == -2) return -1;
    if (r == -1) {
        if (reason && reason_cap) {
            char inner[96];
            snprintf(inner, sizeof inner, "%s", reason);
            snprintf(reason, reason_cap, "no score: %s", inner);
        }
        return 1;
    }
    *score = r == 1 ? 1.0 : 0.0;
    return 0;
}
