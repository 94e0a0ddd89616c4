#include "core/recipe_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "aha/error.h"

/* Deep nesting is never a recipe; the limit keeps the recursion's stack small. */
#define MAX_DEPTH 32

int rnode_error(const RWhere *where, const RNode *node, const char *fmt, ...) {
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (node && where->with_marks)
        return aha_errorf("%s:%d:%d: %s", where->origin, node->line, node->col, message);
    return aha_errorf("%s: %s", where->origin, message);
}

int rnode_is_null(const RNode *node) {
    if (!node || node->kind != RNODE_SCALAR || node->quoted) return 0;
    const char *t = node->text;
    return t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
           strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0;
}

const char *rnode_describe(const RNode *node, char *buf, size_t size) {
    if (!node) return "nothing";
    if (node->kind == RNODE_MAP) return "a mapping";
    if (node->kind == RNODE_SEQ) return "a list";
    if (rnode_is_null(node)) return "nothing";
    snprintf(buf, size, "'%.200s%s'", node->text, strlen(node->text) > 200 ? "..." : "");
    return buf;
}

void rnode_free(RNode *node) {
    if (!node) return;
    int n = node->kind == RNODE_MAP ? 2 * node->count : node->count;
    for (int i = 0; i < n; i++) rnode_free(node->items[i]);
    free(node->items);
    free(node->text);
    free(node);
}

typedef struct {
    yaml_parser_t parser;
    const RWhere *where;
    const char *text; /* the whole input, for positions libyaml gives only as an offset */
    size_t length;
} Reader;

/* libyaml's reader (bad UTF-8, NUL, control characters) reports a byte offset and no mark:
 * the line and the column (in characters, as libyaml counts them) are counted here. */
static int reader_error(Reader *r) {
    const yaml_parser_t *p = &r->parser;
    size_t end = p->problem_offset < r->length ? p->problem_offset : r->length;
    RNode at = {.line = 1, .col = 1};
    for (size_t i = 0; i < end; i++) {
        unsigned char c = (unsigned char)r->text[i];
        if (c == '\n') {
            at.line++;
            at.col = 1;
        } else if ((c & 0xC0) != 0x80) {
            at.col++;
        }
    }
    const char *problem = p->problem ? p->problem : "unreadable input";
    if (p->problem_value >= 0)
        return rnode_error(r->where, &at, "%s (byte 0x%02x); a recipe is UTF-8 text", problem, (unsigned)p->problem_value & 0xFF);
    return rnode_error(r->where, &at, "%s; a recipe is UTF-8 text", problem);
}

static int syntax_error(Reader *r) {
    const yaml_parser_t *p = &r->parser;
    RNode at = {.line = (int)p->problem_mark.line + 1, .col = (int)p->problem_mark.column + 1};
    if (p->error == YAML_MEMORY_ERROR) return aha_errorf("%s: out of memory reading YAML", r->where->origin);
    if (p->error == YAML_READER_ERROR) return reader_error(r);
    if (p->context)
        return rnode_error(r->where, &at, "YAML syntax error: %s %s (line %d, column %d)",
                           p->problem ? p->problem : "malformed YAML", p->context,
                           (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    return rnode_error(r->where, &at, "YAML syntax error: %s", p->problem ? p->problem : "malformed YAML");
}

static int next_event(Reader *r, yaml_event_t *event) {
    if (!yaml_parser_parse(&r->parser, event)) return syntax_error(r);
    return 0;
}

static RNode *new_node(RNodeKind kind, const yaml_event_t *event) {
    RNode *node = aha_calloc(1, sizeof *node);
    if (!node) return NULL;
    node->kind = kind;
    node->line = (int)event->start_mark.line + 1;
    node->col = (int)event->start_mark.column + 1;
    return node;
}

/* Appends child at slot `used` (a mapping stores key, value, key, value, ...). */
static int push_item(RNode *parent, RNode *child, int used, int *capacity) {
    if (used + 1 > *capacity) {
        int grown = *capacity ? 2 * *capacity : 8;
        RNode **items = aha_realloc(parent->items, (size_t)grown * sizeof *items);
        if (!items) return -1;
        parent->items = items;
        *capacity = grown;
    }
    parent->items[used] = child;
    return 0;
}

/* Rejects what recipes do not support, at the node that uses it. */
static int check_unsupported(Reader *r, const yaml_event_t *event, const unsigned char *anchor,
                             const unsigned char *tag, int implicit_tag) {
    RNode at = {.line = (int)event->start_mark.line + 1, .col = (int)event->start_mark.column + 1};
    if (anchor)
        return rnode_error(r->where, &at, "anchors (&%s) and aliases are not supported in recipes; "
                                          "write the value out", (const char *)anchor);
    if (tag && !implicit_tag) {
        const char *core = "tag:yaml.org,2002:", *t = (const char *)tag;
        int shorthand = strncmp(t, core, strlen(core)) == 0;
        return rnode_error(r->where, &at, "YAML tags (%s%s) are not supported in recipes; quote a value "
                                          "to make it a string", shorthand ? "!!" : "", shorthand ? t + strlen(core) : t);
    }
    return 0;
}

static int read_node(Reader *r, yaml_event_t *event, int depth, RNode **out);

/* Reads the children of a sequence or mapping whose start event was just consumed.
 * parent->count stays consistent with the filled slots so rnode_free works on failure. */
static int read_children(Reader *r, RNode *parent, yaml_event_type_t end, int depth) {
    int capacity = 0, slots = 0;
    for (;;) {
        yaml_event_t event;
        AHA_TRY(next_event(r, &event));
        if (event.type == end) {
            yaml_event_delete(&event);
            return 0;
        }
        RNode *child = NULL;
        int rc = read_node(r, &event, depth + 1, &child);
        yaml_event_delete(&event);
        if (rc != 0) return -1;
        if (push_item(parent, child, slots, &capacity) != 0) {
            rnode_free(child);
            return -1;
        }
        slots++;
        if (parent->kind == RNODE_SEQ) {
            parent->count = slots;
        } else if (slots % 2 == 0) {
            parent->count = slots / 2;
        } else {
            /* A key without its value yet: an empty value slot keeps the node freeable.
             * Capacity is even, so an odd slot count leaves room for the value. */
            parent->items[slots] = NULL;
            parent->count = (slots + 1) / 2;
        }
    }
}

static int read_node(Reader *r, yaml_event_t *event, int depth, RNode **out) {
    *out = NULL;
    RNode at = {.line = (int)event->start_mark.line + 1, .col = (int)event->start_mark.column + 1};
    if (depth > MAX_DEPTH) return rnode_error(r->where, &at, "nesting deeper than %d levels", MAX_DEPTH);
    switch (event->type) {
    case YAML_ALIAS_EVENT:
        return rnode_error(r->where, &at, "aliases (*%s) and anchors are not supported in recipes; "
                                          "write the value out", (const char *)event->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
        AHA_TRY(check_unsupported(r, event, event->data.scalar.anchor, event->data.scalar.tag,
                                  event->data.scalar.plain_implicit || event->data.scalar.quoted_implicit));
        if (strlen((const char *)event->data.scalar.value) != event->data.scalar.length)
            return rnode_error(r->where, &at, "a NUL character is not allowed in a recipe value");
        RNode *node = new_node(RNODE_SCALAR, event);
        if (!node) return -1;
        node->text = aha_strdup((const char *)event->data.scalar.value);
        if (!node->text) {
            rnode_free(node);
            return -1;
        }
        node->quoted = event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        *out = node;
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = event->type == YAML_MAPPING_START_EVENT;
        AHA_TRY(check_unsupported(r, event,
                                  is_map ? event->data.mapping_start.anchor : event->data.sequence_start.anchor,
                                  is_map ? event->data.mapping_start.tag : event->data.sequence_start.tag,
                                  is_map ? event->data.mapping_start.implicit : event->data.sequence_start.implicit));
        RNode *node = new_node(is_map ? RNODE_MAP : RNODE_SEQ, event);
        if (!node) return -1;
        if (read_children(r, node, is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT, depth) != 0) {
            rnode_free(node);
            return -1;
        }
        *out = node;
        return 0;
    }
    default:
        return rnode_error(r->where, &at, "unexpected YAML event %d", (int)event->type);
    }
}

int rnode_parse(const char *text, size_t length, const RWhere *where, RNode **out) {
    *out = NULL;
    Reader r = {.where = where, .text = text, .length = length};
    if (!yaml_parser_initialize(&r.parser)) return aha_errorf("%s: cannot initialize libyaml", where->origin);
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, length);
    RNode *root = NULL;
    int documents = 0, rc = 0;
    for (int done = 0; !done && rc == 0;) {
        yaml_event_t event;
        if (next_event(&r, &event) != 0) {
            rc = -1;
            break;
        }
        switch (event.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT: break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                RNode at = {.line = (int)event.start_mark.line + 1, .col = (int)event.start_mark.column + 1};
                rc = rnode_error(where, &at, "a recipe is one YAML document; found a second one");
            }
            break;
        default: rc = read_node(&r, &event, 0, &root); break;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&r.parser);
    if (rc != 0) {
        rnode_free(root);
        return -1;
    }
    *out = root;
    return 0;
}
