/* JSONL data sets (jansson) and the epoch-aware shuffled iterator. */
#include "aha/dataset.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/rng.h"

struct AhaDataset {
    AhaExample *rows;  /* [count], strings owned */
    size_t count, capacity;
};

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* The text of a string, number or boolean (its JSON text); NULL for other kinds. */
static char *scalar_text(const json_t *v) {
    if (json_is_string(v)) return aha_strdup(json_string_value(v));
    if (json_is_number(v) || json_is_boolean(v)) return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return NULL;
}

static void free_row(AhaExample *row) {
    free((char *)row->question);
    free((char *)row->answer);
    free((char *)row->tests);
    free((char *)row->json);
}

void aha_dataset_free(AhaDataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->count; i++) free_row(&ds->rows[i]);
    free(ds->rows);
    free(ds);
}

/* Fills row from one parsed line; returns 1 when the filter leaves it out. */
static int read_row(const json_t *obj, const AhaDatasetFields *f, AhaExample *row) {
    const char *question = f && f->question ? f->question : "question";
    const char *answer = f && f->answer ? f->answer : "answer";
    const char *tests = f && f->tests && *f->tests ? f->tests : NULL;
    if (f && f->filter_field) {
        char *have = scalar_text(json_object_get(obj, f->filter_field));
        int keep = have && f->filter_value && strcmp(have, f->filter_value) == 0;
        free(have);
        if (!keep) return 1;
    }
    json_t *q = json_object_get(obj, question);
    AHA_REQUIRE(q, "missing field \"%s\" (the question field)", question);
    AHA_REQUIRE(json_is_string(q), "field \"%s\": expected a string, got %s", question, json_kind(q));
    row->question = aha_strdup(json_string_value(q));
    AHA_CHECK_ALLOC(row->question);
    if (*answer) {
        json_t *a = json_object_get(obj, answer);
        AHA_REQUIRE(a, "missing field \"%s\" (the answer field)", answer);
        row->answer = scalar_text(a);
        AHA_REQUIRE(row->answer, "field \"%s\": expected a string or a number, got %s", answer, json_kind(a));
        if (f && f->final_answer && strchr(row->answer, '\n') && !strstr(row->answer, "####") &&
            !strstr(row->answer, "\\boxed") && !strstr(row->answer, "\\fbox"))
            return aha_errorf("field \"%s\" is a worked solution with no final answer (\"#### N\" or \\boxed{}): the "
                              "math reward would take the whole text as the gold; fix the row, or accept such rows "
                              "with data.bare_answers: true (aha eval: --bare-answers)", answer);
    }
    if (tests) {
        json_t *t = json_object_get(obj, tests);
        AHA_REQUIRE(t, "missing field \"%s\" (the tests field)", tests);
        AHA_REQUIRE(json_is_string(t) || json_is_array(t) || json_is_object(t),
                    "field \"%s\": expected a string, an array or an object, got %s", tests, json_kind(t));
        row->tests = json_dumps(t, JSON_ENCODE_ANY | JSON_COMPACT);
        AHA_CHECK_ALLOC(row->tests);
    }
    row->json = json_dumps(obj, JSON_COMPACT);
    AHA_CHECK_ALLOC(row->json);
    return 0;
}

static int load_lines(AhaDataset *ds, FILE *file, const char *path, const AhaDatasetFields *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t number = 0, skipped = 0;
    int rc = 0;
    while (rc == 0 && (errno = 0, n = getline(&line, &cap, file)) >= 0) {
        number++;
        size_t start = 0; /* not strchr: it finds the terminating NUL, so NUL bytes would be "blank" */
        while (start < (size_t)n && (line[start] == ' ' || line[start] == '\t' || line[start] == '\r' || line[start] == '\n'))
            start++;
        if (start == (size_t)n) continue; /* blank line */
        json_error_t err;
        json_t *obj = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!obj) {
            rc = aha_errorf("%s:%lld: not JSON: %s (column %d)", path, (long long)number, err.text, err.column);
            break;
        }
        if (!json_is_object(obj)) {
            rc = aha_errorf("%s:%lld: expected a JSON object, got %s", path, (long long)number, json_kind(obj));
            json_decref(obj);
            break;
        }
        if (ds->count == ds->capacity) {
            size_t grown = ds->capacity ? ds->capacity * 2 : 256;
            AhaExample *rows = aha_realloc(ds->rows, grown * sizeof *rows);
            if (!rows) {
                json_decref(obj);
                rc = -1;
                break;
            }
            ds->rows = rows;
            ds->capacity = grown;
        }
        AhaExample *row = &ds->rows[ds->count];
        memset(row, 0, sizeof *row);
        row->line = number;
        int r = read_row(obj, f, row);
        json_decref(obj);
        if (r < 0) {
            free_row(row);
            rc = aha_error_prefix("%s:%lld", path, (long long)number);
        } else if (r == 1) {
            free_row(row);
            skipped++;
        } else {
            ds->count++;
        }
    }
    int read_errno = errno; /* getline returns -1 at the end and on failure (ENOMEM: a line too long) */
    free(line);
    if (rc == 0 && (ferror(file) || (n < 0 && !feof(file)))) {
        errno = read_errno ? read_errno : EIO;
        rc = aha_error_errno("%s:%lld: reading failed after %lld lines (the rest of the file is not loaded)", path,
                             (long long)number + 1, (long long)number);
    }
    if (rc == 0 && ds->count == 0)
        rc = aha_errorf("%s: no rows%s", path, skipped ? " pass the filter" : " (the file is empty)");
    return rc;
}

AhaDataset *aha_dataset_load(const char *path, const AhaDatasetFields *fields) {
    FILE *file = fopen(path, "r");
    if (!file) {
        aha_error_errno("data set %s", path);
        return NULL;
    }
    AhaDataset *ds = aha_calloc(1, sizeof *ds);
    if (!ds || load_lines(ds, file, path, fields) != 0) {
        fclose(file);
        aha_dataset_free(ds);
        return NULL;
    }
    fclose(file);
    return ds;
}

size_t aha_dataset_size(const AhaDataset *ds) { return ds->count; }

const AhaExample *aha_dataset_get(const AhaDataset *ds, size_t i) {
    return i < ds->count ? &ds->rows[i] : NULL;
}

/* ---------------------------------------------------------------- iteration */

#define DATA_STREAM 0x44415441u /* "DATA": Philox stream major for shuffling; minor = epoch */

void aha_data_epoch_order(uint64_t seed, uint64_t epoch, size_t n, size_t *order) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    AhaRng rng;
    aha_rng_init(&rng, seed, aha_rng_stream(DATA_STREAM, (uint32_t)epoch));
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates, from the end */
        size_t j = (size_t)aha_rng_below(&rng, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

struct AhaDataIter {
    const AhaDataset *ds;
    AhaDataCursor cursor;
    size_t *order;          /* [size] the current epoch's permutation */
    uint64_t order_epoch;   /* the epoch order holds, or UINT64_MAX */
};

AhaDataIter *aha_data_iter_new(const AhaDataset *ds, uint64_t seed, int shuffle) {
    AhaDataIter *it = aha_calloc(1, sizeof *it);
    if (!it) return NULL;
    it->order = aha_malloc(ds->count * sizeof *it->order);
    if (!it->order) {
        free(it);
        return NULL;
    }
    it->ds = ds;
    it->cursor = (AhaDataCursor){seed, 0, 0, ds->count, shuffle != 0};
    it->order_epoch = UINT64_MAX;
    return it;
}

const AhaExample *aha_data_iter_next(AhaDataIter *it, size_t *index) {
    AhaDataCursor *c = &it->cursor;
    if (c->position >= c->size) {
        c->epoch++;
        c->position = 0;
    }
    size_t row = (size_t)c->position;
    if (c->shuffle) {
        if (it->order_epoch != c->epoch) {
            aha_data_epoch_order(c->seed, c->epoch, it->ds->count, it->order);
            it->order_epoch = c->epoch;
        }
        row = it->order[c->position];
    }
    c->position++;
    if (index) *index = row;
    return &it->ds->rows[row];
}

AhaDataCursor aha_data_iter_cursor(const AhaDataIter *it) { return it->cursor; }

int aha_data_iter_restore(AhaDataIter *it, const AhaDataCursor *cursor) {
    AHA_REQUIRE(cursor->size == it->ds->count,
                "data cursor: saved for a data set of %llu rows, this one has %zu",
                (unsigned long long)cursor->size, it->ds->count);
    AHA_REQUIRE(cursor->position <= cursor->size,
                "data cursor: position %llu is past the %llu rows of an epoch",
                (unsigned long long)cursor->position, (unsigned long long)cursor->size);
    it->cursor = *cursor;
    it->cursor.shuffle = cursor->shuffle != 0;
    return 0;
}

void aha_data_iter_free(AhaDataIter *it) {
    if (!it) return;
    free(it->order);
    free(it);
}
