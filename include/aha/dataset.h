/* JSONL data sets, the epoch-aware shuffled iterator, and prompt templates. See docs/data.md.
 *
 * A data set is one JSON object per line. The recipe maps which field is the question, which
 * the gold answer and which the tests; every row also keeps its whole object as JSON so a
 * reward can read any field. GSM8K (question, answer) and MATH-500 (problem, answer) load as
 * they are. */
#ifndef AHA_DATASET_H
#define AHA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "aha/recipe.h" /* AhaTemplate */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *question;     /* field name; NULL = "question" */
    const char *answer;       /* NULL = "answer"; "" = the rows have no answer */
    const char *tests;        /* NULL or "" = no tests field */
    /* Optional filter: keep only rows whose filter_field equals filter_value (a string field
     * compared as text, a number or boolean by its JSON text: "5", "true"). Rows without the
     * field are left out. NULL = keep every row. */
    const char *filter_field;
    const char *filter_value;
    /* 1: an answer of several lines must hold a final answer ("#### N" as in GSM8K, or a
     * \boxed{}); a worked solution without one is an error naming file:line, since the math
     * reward would take the whole text as the gold. */
    int final_answer;
} AhaDatasetFields;

typedef struct {
    int64_t line;             /* 1-based line in the file */
    const char *question;     /* the question text */
    const char *answer;       /* the answer as text (a number field gives its JSON text); NULL
                                 when no answer field is mapped */
    const char *tests;        /* the tests field as JSON text (string, array or object); NULL
                                 when not mapped */
    const char *json;         /* the whole row as compact JSON */
} AhaExample;

typedef struct AhaDataset AhaDataset;

/* Reads the whole file. Errors name file:line and what was wrong (not JSON, not an object,
 * a missing field, a field of the wrong type); blank lines are skipped. An empty result
 * (no rows, or none passes the filter) is an error too. */
AhaDataset *aha_dataset_load(const char *path, const AhaDatasetFields *fields);
void aha_dataset_free(AhaDataset *ds);
size_t aha_dataset_size(const AhaDataset *ds);
/* Row i in file order (after filtering), i < size. */
const AhaExample *aha_dataset_get(const AhaDataset *ds, size_t i);

/* The iterator's whole state: save it in a checkpoint, restore it to continue exactly. */
typedef struct {
    uint64_t seed;
    uint64_t epoch;           /* 0-based */
    uint64_t position;        /* rows already taken in this epoch */
    uint64_t size;            /* rows in the data set it walked (checked on restore) */
    int shuffle;
} AhaDataCursor;

/* Walks the rows epoch after epoch. With shuffle, each epoch is a fresh permutation:
 * Fisher-Yates driven by Philox (seed, stream "DATA" + epoch), so the order depends only on
 * (seed, epoch). Without shuffle, file order every epoch. */
typedef struct AhaDataIter AhaDataIter;

AhaDataIter *aha_data_iter_new(const AhaDataset *ds, uint64_t seed, int shuffle);
/* The next row; at the end of an epoch the next epoch starts. Sets *index to the row's index
 * in the data set when index is not NULL. */
const AhaExample *aha_data_iter_next(AhaDataIter *it, size_t *index);
AhaDataCursor aha_data_iter_cursor(const AhaDataIter *it);
/* Continues from a saved cursor. Errors when the cursor is from a data set of another size
 * or points past the end of an epoch. */
int aha_data_iter_restore(AhaDataIter *it, const AhaDataCursor *cursor);
void aha_data_iter_free(AhaDataIter *it);

/* The permutation of epoch `epoch`: order[k] = row taken k-th (order has n entries). */
void aha_data_epoch_order(uint64_t seed, uint64_t epoch, size_t n, size_t *order);

/* Prompt templates.
 *   AHA_TEMPLATE_R1_ZERO: the DeepSeek-R1-Zero text (R1 paper, Table 1), the question in
 *     place of "prompt", ending "Assistant:"; open_think appends " <think>".
 *   AHA_TEMPLATE_PLAIN: the question itself; open_think appends "\n<think>".
 *   AHA_TEMPLATE_QWEN_CHAT: "<|im_start|>system\n{system}<|im_end|>\n" when system_prompt is
 *     not NULL/empty, "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n";
 *     open_think appends "<think>\n".
 * system_prompt is only used by qwen_chat; for the others a non-empty one is an error.
 * Returns a malloc'd string. */
char *aha_template_render(AhaTemplate kind, const char *question, const char *system_prompt,
                          int open_think);
/* "r1_zero", "plain", "qwen_chat" */
const char *aha_template_name(AhaTemplate kind);

#ifdef __cplusplus
}
#endif

#endif
