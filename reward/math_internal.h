/* Internals of the math answer checker, shared by reward/math_*.c (not a public header).
 *
 * The pipeline per answer: math_normalize (string: unicode, $, \text{} and units, degrees,
 * spacing) -> math_tokenize (LaTeX tokens) -> math_parse (a value: an expression tree, a
 * list, a relation, a choice letter or plain text) -> math_value_equal against the gold's. */
#ifndef AHA_MATH_INTERNAL_H
#define AHA_MATH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aha/math_answer.h"

/* Longer answers are compared as text: it bounds the parser's and evaluator's recursion
 * and the tokenizer's work. */
#define MATH_MAX_TOKENS 1024

typedef enum {
    TK_NUM, TK_IDENT, TK_FUNC, TK_FRAC, TK_SQRT, TK_BINOM, TK_PI, TK_INFTY,
    TK_PLUS, TK_MINUS, TK_PM, TK_MP, TK_STAR, TK_SLASH, TK_CARET, TK_BANG, TK_PERCENT, TK_BAR,
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_LBRACE, TK_RBRACE, TK_LSET, TK_RSET,
    TK_LANGLE, TK_RANGLE, TK_MAT_OPEN, TK_MAT_CLOSE, TK_AMP, TK_ROWSEP,
    TK_COMMA, TK_REL, TK_IN, TK_CUP, TK_EULER, TK_LFLOOR, TK_RFLOOR, TK_LCEIL, TK_RCEIL,
} MathTokenKind;

typedef enum { REL_EQ, REL_NE, REL_LT, REL_LE, REL_GT, REL_GE } MathRel;
typedef enum { FN_SIN, FN_COS, FN_TAN, FN_COT, FN_SEC, FN_CSC, FN_ASIN, FN_ACOS, FN_ATAN,
               FN_SINH, FN_COSH, FN_TANH, FN_LN, FN_LOG, FN_EXP,
               FN_LOG_BASE /* \\log_b x: the base is the first argument */ } MathFunc;

typedef struct {
    MathTokenKind kind;
    int sub;          /* MathRel for TK_REL, MathFunc for TK_FUNC */
    int spaced;       /* whitespace came before it (tells "2 1/2" from "21/2") */
    int is_integer;   /* TK_NUM: a plain integer literal (digits and thousands commas only) */
    int base;         /* TK_NUM: the base subscript of 204_5 (5), or 0 for none */
    double number;    /* TK_NUM */
    uint64_t name;    /* TK_IDENT: hash of the canonical name, e.g. "x_1" for x_{1} */
    int text_begin;   /* offset of the token in the normalized string */
    int text_end;
} MathToken;

typedef enum { E_NUM, E_VAR, E_ADD, E_SUB, E_MUL, E_DIV, E_POW, E_NEG, E_ROOT, E_FUNC, E_FACT,
               E_ABS, E_BINOM, E_FLOOR, E_CEIL } MathExprOp;

typedef struct {
    MathExprOp op;
    int sub;          /* MathFunc for E_FUNC */
    int a, b;         /* children (node indices); E_ROOT: a = index, b = radicand */
    double number;    /* E_NUM */
    uint64_t var;     /* E_VAR */
} MathExprNode;

typedef enum { V_EXPR, V_LIST, V_REL, V_CHOICE, V_TEXT } MathValueKind;

/* List brackets: a token kind (TK_LPAREN ... ) or one of these. */
enum { LIST_BARE = 1000, LIST_UNION, LIST_MATRIX, LIST_ROW };

typedef struct {
    MathValueKind kind;
    /* V_EXPR */
    int expr;                  /* root node */
    int has_vars;
    int percent;               /* a % sign appears in it */
    int int_token;             /* token index of the whole value when it is [-]integer literal, else -1 */
    int negated;               /* with int_token: a leading minus */
    int function_notation;     /* written f(x), p(2), g(x, y): names a quantity like a variable */
    /* V_LIST */
    int open, close;           /* bracket kinds (see above) */
    int ordered;
    int from_pm;               /* made by expanding \pm: splice into an enclosing set */
    int first, count;          /* children: ctx->children[first .. first+count) */
    /* V_REL */
    int rel;                   /* MathRel, or -1 for \in */
    int lhs, rhs;              /* value indices */
    /* V_CHOICE */
    char letter;
} MathValue;

typedef struct {
    char *text;                /* normalized answer (owned) */
    MathToken *tokens;         /* [ntokens] */
    int ntokens, tokens_cap;
    int looks_textual;         /* a word of 3+ letters that is no function name */
    MathExprNode *nodes;       /* [nnodes] */
    int nnodes, nodes_cap;
    MathValue *values;         /* [nvalues] */
    int nvalues, values_cap;
    int *children;             /* [nchildren] value indices of list items */
    int nchildren, children_cap;
    int root;                  /* value index of the whole answer */
    int pm_sign;               /* +1 / -1 while parsing one branch of a \pm */
    int euler;                 /* read a plain `e` as Euler's number (set before tokenizing) */
    int idents, e_idents;      /* variables seen by the tokenizer, and how many are a plain `e` */
    int degrees;               /* a degree mark or the unit "degrees" was dropped */
    double angle_scale;        /* 1, or pi/180 when its degrees are compared with radians */
    int oom;                   /* an allocation failed (message recorded) */
} MathCtx;

/* math_extract.c */
char *math_strndup_trimmed(const char *begin, const char *end);
int math_extract_range(const char *text, size_t len, AhaMathExtract mode, const char **begin, const char **end);
/* The answer inside a gold field, trimmed (never fails; may be empty). */
void math_gold_range(const char *gold, size_t len, const char **begin, const char **end);

/* math_lex.c: returns a malloc'd normalized string, or NULL (message recorded); *degrees
 * (may be NULL) says whether a degree mark or unit was dropped. */
char *math_normalize(const char *answer, int *degrees);
/* Fills ctx->tokens from ctx->text: 0, or -1 on out of memory (message recorded).
 * A character that is no part of the grammar leaves *ok = 0. */
int math_tokenize(MathCtx *ctx, int *ok);
uint64_t math_hash(const char *s, size_t n);
/* The math after the last standalone word of 2+ letters, without trailing words: "The answer is 5" and
 * "18 apples" give "5" and "18" (malloc'd; NULL on out of memory). */
char *math_trailing_math(const char *text);

/* math_parse.c */
/* Builds ctx->root from ctx->text: 0 (the answer may have become V_TEXT), -1 out of memory. */
int math_parse(MathCtx *ctx, int gold_is_choice);
double math_eval(const MathCtx *ctx, int node, int point);
void math_ctx_free(MathCtx *ctx);

/* math_equal.c */
/* 1 equal, 0 not, -1 gold unparseable (no message), -2 out of memory (message recorded).
 * why (why_cap > 0) gets "equal: A = G" / "not equal: A vs G". */
int math_compare(const char *answer, size_t answer_len, const char *gold, size_t gold_len, char *why,
                 size_t why_cap);
/* For tests: with structural set, the verdict of the math rules alone (no shortcut for equal
 * texts); 3 when either side is plain text. */
int math_compare_ex(const char *answer, size_t answer_len, const char *gold, size_t gold_len, char *why,
                    size_t why_cap, int structural);

#endif
