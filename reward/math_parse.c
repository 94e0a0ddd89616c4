/* Tokens to a value: the structure of an answer (lists, intervals, sets, matrices, relations,
 * choice letters) above a recursive-descent expression parser, and the expression evaluator.
 *
 * Expression grammar (implicit multiplication binds like '*'):
 *   sum     := product (('+' | '-' | '\pm' | '\mp') product)*
 *   product := unary (('*' | '/') unary | power)*       mixed numbers: 2\frac{1}{2}, 2 1/2
 *   unary   := ('-' | '+' | '\pm') unary | power
 *   power   := postfix ('^' exponent)?
 *   postfix := primary ('!' | '%')*
 *   primary := number | variable | \pi | \infty | (sum) | [sum] | {sum} | |sum|
 *            | \frac arg arg | \sqrt[sum]? arg | \binom arg arg | \func('^' exponent)? power */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "reward/math_internal.h"


static int new_node(MathCtx *c, MathExprOp op, int a, int b) {
    if (c->nnodes == c->nodes_cap) {
        int cap = c->nodes_cap ? c->nodes_cap * 2 : 32;
        MathExprNode *nodes = aha_realloc(c->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            c->oom = 1;
            return -1;
        }
        c->nodes = nodes;
        c->nodes_cap = cap;
    }
    MathExprNode *n = &c->nodes[c->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->a = a;
    n->b = b;
    return c->nnodes++;
}

static int number_node(MathCtx *c, double value) {
    int n = new_node(c, E_NUM, -1, -1);
    if (n >= 0) c->nodes[n].number = value;
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Expressions */

typedef struct {
    MathCtx *c;
    int pos, hi;
    int percent;
} Parser;

static int at(const Parser *p, MathTokenKind kind) { return p->pos < p->hi && p->c->tokens[p->pos].kind == kind; }
static const MathToken *tok(const Parser *p, int i) { return i < p->hi ? &p->c->tokens[i] : NULL; }

static int parse_sum(Parser *p);
static int parse_power(Parser *p);
static int parse_unary(Parser *p);

static int expect(Parser *p, MathTokenKind kind, int inner) {
    if (inner < 0 || !at(p, kind)) return -1;
    p->pos++;
    return inner;
}

static int parse_primary(Parser *p) {
    const MathToken *t = tok(p, p->pos);
    if (!t) return -1;
    MathCtx *c = p->c;
    p->pos++;
    switch (t->kind) {
    case TK_NUM: return number_node(c, t->number);
    case TK_PI: return number_node(c, M_PI);
    case TK_EULER: return number_node(c, M_E);
    case TK_LFLOOR:
    case TK_LCEIL: {
        int inner = expect(p, t->kind == TK_LFLOOR ? TK_RFLOOR : TK_RCEIL, parse_sum(p));
        return inner < 0 ? -1 : new_node(c, t->kind == TK_LFLOOR ? E_FLOOR : E_CEIL, inner, -1);
    }
    case TK_INFTY: return number_node(c, INFINITY);
    case TK_IDENT: {
        int n = new_node(c, E_VAR, -1, -1);
        if (n >= 0) c->nodes[n].var = t->name;
        return n;
    }
    case TK_LPAREN: return expect(p, TK_RPAREN, parse_sum(p));
    case TK_LBRACK: return expect(p, TK_RBRACK, parse_sum(p));
    case TK_LBRACE: return expect(p, TK_RBRACE, parse_sum(p));
    case TK_BAR: {
        int inner = expect(p, TK_BAR, parse_sum(p));
        return inner < 0 ? -1 : new_node(c, E_ABS, inner, -1);
    }
    case TK_FRAC: {
        int num = parse_primary(p);
        int den = num < 0 ? -1 : parse_primary(p);
        return den < 0 ? -1 : new_node(c, E_DIV, num, den);
    }
    case TK_BINOM: {
        int n = parse_primary(p);
        int k = n < 0 ? -1 : parse_primary(p);
        return k < 0 ? -1 : new_node(c, E_BINOM, n, k);
    }
    case TK_SQRT: {
        int index;
        if (at(p, TK_LBRACK)) {
            p->pos++;
            index = expect(p, TK_RBRACK, parse_sum(p));
        } else {
            index = number_node(c, 2);
        }
        int radicand = index < 0 ? -1 : parse_primary(p);
        return radicand < 0 ? -1 : new_node(c, E_ROOT, index, radicand);
    }
    case TK_FUNC: {
        int base = -1;
        if (t->sub == FN_LOG_BASE && (base = parse_primary(p)) < 0) return -1; /* \log_b x */
        int power = -2;
        if (at(p, TK_CARET)) { /* \sin^2 x */
            p->pos++;
            if ((power = parse_unary(p)) < 0) return -1;
        }
        int arg = at(p, TK_LPAREN) ? parse_primary(p) : parse_power(p);
        if (arg < 0) return -1;
        int f = new_node(c, E_FUNC, arg, -1);
        if (f < 0) return -1;
        c->nodes[f].sub = t->sub == FN_LOG_BASE ? FN_LN : t->sub;
        if (base >= 0) { /* \log_b x = \ln x / \ln b */
            int ln_base = new_node(c, E_FUNC, base, -1);
            if (ln_base < 0) return -1;
            c->nodes[ln_base].sub = FN_LN;
            if ((f = new_node(c, E_DIV, f, ln_base)) < 0) return -1;
        }
        return power == -2 ? f : new_node(c, E_POW, f, power);
    }
    default: return -1;
    }
}

static int parse_postfix(Parser *p) {
    int x = parse_primary(p);
    while (x >= 0) {
        if (at(p, TK_BANG)) {
            p->pos++;
            x = new_node(p->c, E_FACT, x, -1);
        } else if (at(p, TK_PERCENT)) {
            p->pos++;
            p->percent = 1;
            int hundred = number_node(p->c, 100);
            x = hundred < 0 ? -1 : new_node(p->c, E_DIV, x, hundred);
        } else {
            break;
        }
    }
    return x;
}

static int parse_exponent(Parser *p) {
    if (at(p, TK_MINUS)) {
        p->pos++;
        int e = parse_exponent(p);
        return e < 0 ? -1 : new_node(p->c, E_NEG, e, -1);
    }
    return parse_postfix(p);
}

static int parse_power(Parser *p) {
    int base = parse_postfix(p);
    if (base < 0 || !at(p, TK_CARET)) return base;
    p->pos++;
    int exponent = parse_exponent(p);
    if (exponent < 0) return -1;
    int x = new_node(p->c, E_POW, base, exponent);
    while (x >= 0 && at(p, TK_BANG)) {
        p->pos++;
        x = new_node(p->c, E_FACT, x, -1);
    }
    return x;
}

static int parse_unary(Parser *p) {
    const MathToken *t = tok(p, p->pos);
    if (!t) return -1;
    if (t->kind == TK_PLUS) {
        p->pos++;
        return parse_unary(p);
    }
    if (t->kind == TK_MINUS || t->kind == TK_PM || t->kind == TK_MP) {
        int negative = t->kind == TK_MINUS || (t->kind == TK_PM && p->c->pm_sign < 0) ||
                       (t->kind == TK_MP && p->c->pm_sign > 0);
        p->pos++;
        int x = parse_unary(p);
        return x < 0 || !negative ? x : new_node(p->c, E_NEG, x, -1);
    }
    return parse_power(p);
}

static int starts_primary(MathTokenKind k) {
    return k == TK_NUM || k == TK_IDENT || k == TK_PI || k == TK_EULER || k == TK_LFLOOR || k == TK_LCEIL ||
           k == TK_INFTY || k == TK_LPAREN || k == TK_LBRACK ||
           k == TK_LBRACE || k == TK_FRAC || k == TK_SQRT || k == TK_BINOM || k == TK_FUNC;
}

/* An integer literal argument at *i: "7" or "{7}". */
static int integer_arg(const Parser *p, int *i, double *value) {
    const MathToken *t = tok(p, *i);
    if (t && t->kind == TK_NUM && t->is_integer) {
        *value = t->number;
        (*i)++;
        return 1;
    }
    const MathToken *n = tok(p, *i + 1), *close = tok(p, *i + 2);
    if (t && n && close && t->kind == TK_LBRACE && n->kind == TK_NUM && n->is_integer && close->kind == TK_RBRACE) {
        *value = n->number;
        *i += 3;
        return 1;
    }
    return 0;
}

/* At p->pos, the fraction part of a mixed number: a proper \frac{a}{b} or a spaced "a/b",
 * both of integer literals. Returns its end token index, or -1. */
static int mixed_fraction_end(const Parser *p) {
    int i = p->pos;
    double num, den;
    const MathToken *t = tok(p, i);
    if (!t) return -1;
    if (t->kind == TK_FRAC) {
        i++;
        if (!integer_arg(p, &i, &num) || !integer_arg(p, &i, &den)) return -1;
    } else if (t->kind == TK_NUM && t->is_integer && t->spaced) {
        const MathToken *slash = tok(p, i + 1), *d = tok(p, i + 2);
        if (!slash || !d || slash->kind != TK_SLASH || d->kind != TK_NUM || !d->is_integer) return -1;
        num = t->number;
        den = d->number;
        i += 3;
    } else {
        return -1;
    }
    const MathToken *after = tok(p, i);
    if (after && (starts_primary(after->kind) || after->kind == TK_CARET)) return -1;
    return num > 0 && num < den ? i : -1;
}

static int parse_product(Parser *p) {
    int start = p->pos;
    int left = parse_unary(p);
    if (left < 0) return -1;
    const MathToken *t0 = tok(p, start), *t1 = tok(p, start + 1);
    int whole = (p->pos == start + 1 && t0->kind == TK_NUM && t0->is_integer) ||
                (p->pos == start + 2 && t0->kind == TK_MINUS && t1->kind == TK_NUM && t1->is_integer);
    int negative = whole && t0->kind == TK_MINUS;
    for (;;) {
        const MathToken *t = tok(p, p->pos);
        if (!t) break;
        int right, op;
        if (t->kind == TK_STAR || t->kind == TK_SLASH) {
            p->pos++;
            op = t->kind == TK_STAR ? E_MUL : E_DIV;
            right = parse_unary(p);
        } else if (whole && mixed_fraction_end(p) >= 0) {
            int end = mixed_fraction_end(p);
            Parser sub = *p;
            sub.hi = end;
            right = parse_sum(&sub);
            if (right >= 0 && sub.pos != end) return -1;
            p->pos = end;
            op = negative ? E_SUB : E_ADD;
        } else if (starts_primary(t->kind) && !(t->kind == TK_NUM && p->c->tokens[p->pos - 1].kind == TK_NUM)) {
            /* (two numbers side by side, "2 3", are no product) */
            op = E_MUL;
            right = parse_power(p);
        } else {
            break;
        }
        whole = 0;
        if (right < 0) return -1;
        if ((left = new_node(p->c, op, left, right)) < 0) return -1;
    }
    return left;
}

static int parse_sum(Parser *p) {
    int left = parse_product(p);
    while (left >= 0 && p->pos < p->hi) {
        MathTokenKind k = p->c->tokens[p->pos].kind;
        int op;
        if (k == TK_PLUS) op = E_ADD;
        else if (k == TK_MINUS) op = E_SUB;
        else if (k == TK_PM) op = p->c->pm_sign > 0 ? E_ADD : E_SUB;
        else if (k == TK_MP) op = p->c->pm_sign > 0 ? E_SUB : E_ADD;
        else break;
        p->pos++;
        int right = parse_product(p);
        if (right < 0) return -1;
        left = new_node(p->c, op, left, right);
    }
    return left;
}

/* ---------------------------------------------------------------------------------------- */
/* Values */

static int new_value(MathCtx *c, MathValueKind kind) {
    if (c->nvalues == c->values_cap) {
        int cap = c->values_cap ? c->values_cap * 2 : 16;
        MathValue *values = aha_realloc(c->values, (size_t)cap * sizeof *values);
        if (!values) {
            c->oom = 1;
            return -1;
        }
        c->values = values;
        c->values_cap = cap;
    }
    MathValue *v = &c->values[c->nvalues];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->int_token = -1;
    v->rel = REL_EQ;
    return c->nvalues++;
}

static int is_opener(MathTokenKind k) {
    return k == TK_LPAREN || k == TK_LBRACK || k == TK_LBRACE || k == TK_LSET || k == TK_LANGLE || k == TK_MAT_OPEN ||
           k == TK_LFLOOR || k == TK_LCEIL;
}
static int is_closer(MathTokenKind k) {
    return k == TK_RPAREN || k == TK_RBRACK || k == TK_RBRACE || k == TK_RSET || k == TK_RANGLE || k == TK_MAT_CLOSE ||
           k == TK_RFLOOR || k == TK_RCEIL;
}

static int parse_range(MathCtx *c, int lo, int hi);

static int parse_expr_value(MathCtx *c, int lo, int hi) {
    Parser p = {c, lo, hi, 0};
    int root = parse_sum(&p);
    if (root < 0 || p.pos != hi) return -1;
    int v = new_value(c, V_EXPR);
    if (v < 0) return -1;
    MathValue *value = &c->values[v];
    value->expr = root;
    value->percent = p.percent;
    for (int i = lo; i < hi; i++)
        if (c->tokens[i].kind == TK_IDENT) value->has_vars = 1;
    const MathToken *t = &c->tokens[lo];
    if (hi - lo >= 3 && t->kind == TK_IDENT && t[1].kind == TK_LPAREN && c->tokens[hi - 1].kind == TK_RPAREN) {
        int depth = 0, closes_at_end = 1;
        for (int i = lo + 1; i < hi; i++) {
            if (is_opener(c->tokens[i].kind)) depth++;
            else if (is_closer(c->tokens[i].kind) && --depth == 0 && i != hi - 1) closes_at_end = 0;
        }
        value->function_notation = closes_at_end;
    }
    if (hi - lo == 1 && t->kind == TK_NUM && t->is_integer) value->int_token = lo;
    if (hi - lo == 2 && t->kind == TK_MINUS && t[1].kind == TK_NUM && t[1].is_integer) {
        value->int_token = lo + 1;
        value->negated = 1;
    }
    return v;
}

/* A list value from items[n] (value indices; \pm pairs spliced in when flatten). */
static int make_list(MathCtx *c, const int *items, int n, int open, int close, int ordered, int flatten) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        const MathValue *item = &c->values[items[i]];
        count += flatten && item->kind == V_LIST && item->from_pm ? item->count : 1;
    }
    if (c->nchildren + count > c->children_cap) {
        int cap = c->children_cap ? c->children_cap : 16;
        while (cap < c->nchildren + count) cap *= 2;
        int *children = aha_realloc(c->children, (size_t)cap * sizeof *children);
        if (!children) {
            c->oom = 1;
            return -1;
        }
        c->children = children;
        c->children_cap = cap;
    }
    int first = c->nchildren;
    for (int i = 0; i < n; i++) {
        const MathValue *item = &c->values[items[i]];
        if (flatten && item->kind == V_LIST && item->from_pm)
            for (int k = 0; k < item->count; k++) c->children[c->nchildren++] = c->children[item->first + k];
        else
            c->children[c->nchildren++] = items[i];
    }
    int v = new_value(c, V_LIST);
    if (v < 0) return -1;
    MathValue *list = &c->values[v];
    list->open = open;
    list->close = close;
    list->ordered = ordered;
    list->first = first;
    list->count = count;
    return v;
}

/* Parses the pieces of [lo, hi) between separators of kind sep at nesting depth 0. */
static int parse_separated(MathCtx *c, int lo, int hi, MathTokenKind sep, int open, int close, int ordered,
                           int flatten, int allow_empty) {
    int n = 0, cap = 8;
    int *items = aha_malloc((size_t)cap * sizeof *items);
    if (!items) {
        c->oom = 1;
        return -1;
    }
    int depth = 0, start = lo, v = -1;
    for (int i = lo; i <= hi; i++) {
        MathTokenKind k = i < hi ? c->tokens[i].kind : sep;
        if (i < hi && is_opener(k)) depth++;
        else if (i < hi && is_closer(k)) depth--;
        else if (k == sep && depth == 0) {
            if (start == i && allow_empty) {
                start = i + 1;
                continue;
            }
            int item = parse_range(c, start, i);
            if (item < 0) goto done;
            if (n == cap) {
                cap *= 2;
                int *grown = aha_realloc(items, (size_t)cap * sizeof *items);
                if (!grown) {
                    c->oom = 1;
                    goto done;
                }
                items = grown;
            }
            items[n++] = item;
            start = i + 1;
        }
    }
    v = make_list(c, items, n, open, close, ordered, flatten);
done:
    free(items);
    return v;
}

static int parse_matrix(MathCtx *c, int lo, int hi) {
    /* rows split by \\, entries by & */
    int rows[64], n = 0, depth = 0, start = lo;
    for (int i = lo; i <= hi; i++) {
        MathTokenKind k = i < hi ? c->tokens[i].kind : TK_ROWSEP;
        if (i < hi && is_opener(k)) depth++;
        else if (i < hi && is_closer(k)) depth--;
        else if (k == TK_ROWSEP && depth == 0) {
            if (i > start) {
                if (n == 64) return -1;
                if ((rows[n++] = parse_separated(c, start, i, TK_AMP, LIST_ROW, LIST_ROW, 1, 0, 0)) < 0) return -1;
            }
            start = i + 1;
        }
    }
    return n == 0 ? -1 : make_list(c, rows, n, LIST_MATRIX, LIST_MATRIX, 1, 0);
}

static int parse_range(MathCtx *c, int lo, int hi) {
    if (lo >= hi || c->oom) return -1;
    int depth = 0, comma = -1, rel = -1, cup = -1, pm = -1, match = -1;
    for (int i = lo; i < hi; i++) {
        MathTokenKind k = c->tokens[i].kind;
        if (is_opener(k)) depth++;
        else if (is_closer(k)) {
            if (--depth < 0) return -1;
            if (depth == 0 && match < 0) match = i;
        } else if (depth == 0) {
            if (k == TK_COMMA && comma < 0) comma = i;
            else if (k == TK_REL || k == TK_IN) rel = i;
            else if (k == TK_CUP) cup = i;
            else if (k == TK_PM || k == TK_MP) pm = i;
        }
    }
    if (depth != 0) return -1;
    if (comma >= 0) return parse_separated(c, lo, hi, TK_COMMA, LIST_BARE, LIST_BARE, 0, 1, 0);
    if (rel >= 0) {
        int lhs = parse_range(c, lo, rel);
        int rhs = lhs < 0 ? -1 : parse_range(c, rel + 1, hi);
        int v = rhs < 0 ? -1 : new_value(c, V_REL);
        if (v < 0) return -1;
        c->values[v].lhs = lhs;
        c->values[v].rhs = rhs;
        c->values[v].rel = c->tokens[rel].kind == TK_IN ? -1 : c->tokens[rel].sub;
        return v;
    }
    if (cup >= 0) return parse_separated(c, lo, hi, TK_CUP, LIST_UNION, LIST_UNION, 0, 0, 0);
    MathTokenKind first = c->tokens[lo].kind;
    if (is_opener(first) && match == hi - 1) {
        MathTokenKind last = c->tokens[hi - 1].kind;
        if (first == TK_MAT_OPEN) return parse_matrix(c, lo + 1, hi - 1);
        /* \left( \begin{array}...\end{array} \right): the brackets of a matrix */
        if ((first == TK_LPAREN || first == TK_LBRACK) && hi - lo >= 4 && c->tokens[lo + 1].kind == TK_MAT_OPEN &&
            c->tokens[hi - 2].kind == TK_MAT_CLOSE) {
            int d = 0, closes_at = -1;
            for (int i = lo + 1; i < hi - 1 && closes_at < 0; i++) {
                if (is_opener(c->tokens[i].kind)) d++;
                else if (is_closer(c->tokens[i].kind) && --d == 0) closes_at = i;
            }
            if (closes_at == hi - 2) return parse_matrix(c, lo + 2, hi - 2);
        }
        if (first == TK_LSET) {
            if (hi - lo == 2) return make_list(c, NULL, 0, TK_LSET, TK_RSET, 0, 0);
            return parse_separated(c, lo + 1, hi - 1, TK_COMMA, TK_LSET, TK_RSET, 0, 1, 0);
        }
        int inner_comma = 0, d = 0;
        for (int i = lo + 1; i < hi - 1; i++) {
            MathTokenKind k = c->tokens[i].kind;
            if (is_opener(k)) d++;
            else if (is_closer(k)) d--;
            else if (k == TK_COMMA && d == 0) inner_comma = 1;
        }
        if (inner_comma || first == TK_LANGLE)
            return parse_separated(c, lo + 1, hi - 1, TK_COMMA, first, last, 1, 0, 0);
    }
    if (pm >= 0) {
        int items[2];
        for (int branch = 0; branch < 2; branch++) {
            c->pm_sign = branch == 0 ? 1 : -1;
            items[branch] = parse_expr_value(c, lo, hi);
            c->pm_sign = 1;
            if (items[branch] < 0) return -1;
        }
        int v = make_list(c, items, 2, LIST_BARE, LIST_BARE, 0, 0);
        if (v >= 0) c->values[v].from_pm = 1;
        return v;
    }
    return parse_expr_value(c, lo, hi);
}

/* "(B)", "B", "B)", "B." or "(B) 12": the letter, or 0. */
static char choice_letter(const char *s, int strict) {
    while (*s == ' ') s++;
    int paren = *s == '(';
    if (paren) s++;
    while (*s == ' ') s++;
    char letter = *s;
    if (letter < 'A' || letter > 'Z') return 0;
    s++;
    while (*s == ' ') s++;
    if (paren) {
        if (*s != ')') return 0;
        s++;
    } else if (*s == ')' || *s == '.' || *s == ':') {
        if (strict) return 0;
        s++;
    }
    while (*s == ' ') s++;
    if (*s && (strict || !paren)) {
        /* "B 12" or "B12" is no letter answer; "(B) 12" is, when lenient */
        return 0;
    }
    /* ...but "(B) or (C)" names two choices: no hedging. */
    for (const char *p = s; *p; p++) {
        int alone = (p == s || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[1]);
        if (*p >= 'A' && *p <= 'Z' && alone) return 0;
    }
    return letter;
}

static int text_value(MathCtx *c) {
    return new_value(c, V_TEXT);
}

int math_parse(MathCtx *ctx, int role) {
    ctx->pm_sign = 1;
    ctx->root = -1;
    if (role != 2) {
        char letter = choice_letter(ctx->text, role == 0);
        if (letter) {
            int v = new_value(ctx, V_CHOICE);
            if (v < 0) return -1;
            ctx->values[v].letter = letter;
            ctx->root = v;
            return 0;
        }
    }
    int ok;
    if (math_tokenize(ctx, &ok) != 0) return -1;
    if (ok && !ctx->looks_textual && ctx->ntokens > 0 && ctx->ntokens <= MATH_MAX_TOKENS)
        ctx->root = parse_range(ctx, 0, ctx->ntokens);
    if (ctx->oom) return -1;
    if (ctx->root < 0) ctx->root = text_value(ctx);
    return ctx->root < 0 ? -1 : 0;
}

void math_ctx_free(MathCtx *ctx) {
    free(ctx->text);
    free(ctx->tokens);
    free(ctx->nodes);
    free(ctx->values);
    free(ctx->children);
    memset(ctx, 0, sizeof *ctx);
}

/* ---------------------------------------------------------------------------------------- */
/* Evaluation */

/* A variable's value at a sample point: a fixed hash of its name and the point, so both
 * sides see the same value and the result is reproducible. Points 0, 1, 5, 6 lie in
 * [0.5, 2.5), 2 and 7 in [-2.5, -0.5), 3 and 8 in [2.5, 10.5), 4 and 9 in [-10.5, -2.5):
 * negative values tell |x| from x, large ones tell x^2 from 2x. */
static double variable_value(uint64_t name, int point) {
    uint64_t z = name + (uint64_t)(point + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = (double)(z >> 11) / 9007199254740992.0;
    switch (point % 5) {
    case 2: return -(0.5 + 2.0 * u);
    case 3: return 2.5 + 8.0 * u;
    case 4: return -(2.5 + 8.0 * u);
    default: return 0.5 + 2.0 * u;
    }
}

/* a^b, with real odd roots of negative bases: (-8)^{1/3} = -2, (-8)^{2/3} = 4. */
static double real_pow(double a, double b) {
    if (a >= 0 || b == floor(b)) return pow(a, b);
    for (int q = 3; q < 20; q += 2) {
        double p = round(b * q);
        if (fabs(b * q - p) < 1e-9) return fmod(fabs(p), 2) == 1 ? -pow(-a, b) : pow(-a, b);
    }
    return NAN;
}

static double eval_function(int f, double x) {
    switch (f) {
    case FN_SIN: return sin(x);
    case FN_COS: return cos(x);
    case FN_TAN: return tan(x);
    case FN_COT: return 1.0 / tan(x);
    case FN_SEC: return 1.0 / cos(x);
    case FN_CSC: return 1.0 / sin(x);
    case FN_ASIN: return asin(x);
    case FN_ACOS: return acos(x);
    case FN_ATAN: return atan(x);
    case FN_SINH: return sinh(x);
    case FN_COSH: return cosh(x);
    case FN_TANH: return tanh(x);
    case FN_LN: return log(x);
    case FN_LOG: return log10(x);
    case FN_EXP: return exp(x);
    default: return NAN;
    }
}

double math_eval(const MathCtx *ctx, int node, int point) {
    const MathExprNode *n = &ctx->nodes[node];
    double a = n->a >= 0 ? math_eval(ctx, n->a, point) : 0, b = n->b >= 0 ? math_eval(ctx, n->b, point) : 0;
    switch (n->op) {
    case E_NUM: return n->number;
    case E_VAR: return variable_value(n->var, point);
    case E_ADD: return a + b;
    case E_SUB: return a - b;
    case E_MUL: return a * b;
    case E_DIV: return a / b;
    case E_NEG: return -a;
    case E_POW: return real_pow(a, b);
    case E_ROOT:
        if (a == 2) return sqrt(b);
        if (b < 0 && a == floor(a) && fmod(a, 2) != 0) return -pow(-b, 1.0 / a);
        return pow(b, 1.0 / a);
    case E_FUNC: return eval_function(n->sub, a);
    case E_ABS: return fabs(a);
    case E_FLOOR: return floor(a + 1e-12 * fabs(a)); /* 2.9999999999999996 is 3 */
    case E_CEIL: return ceil(a - 1e-12 * fabs(a));
    case E_FACT: return a >= 0 && a <= 170 && a == floor(a) ? tgamma(a + 1) : NAN;
    case E_BINOM: {
        if (b < 0 || b != floor(b) || b > 1000) return NAN;
        double r = 1;
        for (int i = 0; i < (int)b; i++) r = r * (a - i) / (i + 1);
        return r;
    }
    }
    return NAN;
}
