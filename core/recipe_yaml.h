/* The recipe loader's view of a YAML document: a small tree with a line:column on every node.
 * Built from libyaml's events so that aliases, anchors, tags and extra documents can be
 * rejected by name (libyaml's document API would resolve aliases silently). Internal to
 * core/recipe*.c. */
#ifndef AHA_CORE_RECIPE_YAML_H
#define AHA_CORE_RECIPE_YAML_H

#include <stddef.h>

typedef enum { RNODE_SCALAR, RNODE_SEQ, RNODE_MAP } RNodeKind;

typedef struct RNode {
    RNodeKind kind;
    int line, col;        /* 1-based position of the node's first character */
    char *text;           /* scalar: the value, NUL-terminated */
    int quoted;           /* scalar: written quoted or as a block, so never null/bool/number */
    struct RNode **items; /* seq: [count] items; map: [2*count] key, value, key, value, ... */
    int count;
} RNode;

/* Where the text came from, for messages: "recipe.yaml:3:5: ..." when with_marks, else
 * "--set optim.lr=x: ...". */
typedef struct {
    const char *origin;
    int with_marks;
} RWhere;

/* Parses one YAML document. *out is NULL when the text holds no document (empty file or
 * only comments). Errors name origin, line and column. */
int rnode_parse(const char *text, size_t length, const RWhere *where, RNode **out);
void rnode_free(RNode *node);
/* Records "<origin>:<line>:<col>: <message>" (or "<origin>: <message>"); returns -1.
 * node may be NULL for a message without a position. */
int rnode_error(const RWhere *where, const RNode *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "a mapping", "a list", "nothing", or the scalar in quotes, for "got ..." messages. */
const char *rnode_describe(const RNode *node, char *buf, size_t size);
/* True for a plain scalar that YAML reads as null: "", "~", "null", "Null", "NULL". */
int rnode_is_null(const RNode *node);

#endif
