/* JSONL data sets: the line reader and each row's fields (question, answer, tests, a
 * filter, the final-answer check), GSM8K answers included. */
#include "aha/dataset.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("data.jsonl", data, size);
    static const AhaDatasetFields variants[] = {
        {.question = NULL, .answer = NULL},
        {.question = "problem", .answer = "solution", .tests = "tests"},
        {.question = "question", .answer = "", .filter_field = "level", .filter_value = "5"},
        {.question = NULL, .answer = NULL, .final_answer = 1},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        AhaDataset *ds = aha_dataset_load(path, &variants[v]);
        if (!ds) continue;
        for (size_t i = 0; i < aha_dataset_size(ds); i++) {
            const AhaExample *e = aha_dataset_get(ds, i);
            if (!e->question || !e->json) abort();
        }
        aha_dataset_free(ds);
    }
    return 0;
}
