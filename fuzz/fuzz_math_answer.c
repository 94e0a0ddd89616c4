/* The math answer parser: extraction (each mode), the gold answer, equality and scoring.
 * The input is "completion\0gold" (no NUL: the input is both). */
#include "aha/error.h"
#include "aha/math_answer.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0; /* long inputs only slow the search down */
    char *text = fuzz_string(data, size);
    const char *completion = text, *gold = text;
    size_t first = strlen(text);
    if (first < size) gold = text + first + 1;
    static const AhaMathExtract modes[] = {AHA_MATH_EXTRACT_AUTO, AHA_MATH_EXTRACT_BOXED,
                                           AHA_MATH_EXTRACT_ANSWER_TAG};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *answer = aha_math_extract(completion, modes[i]);
        free(answer);
    }
    char *g = aha_math_gold(gold);
    if (g) {
        (void)aha_math_equal(g, g);
        char *answer = aha_math_extract(completion, AHA_MATH_EXTRACT_AUTO);
        if (answer) (void)aha_math_equal(answer, g);
        free(answer);
    }
    free(g);
    double score;
    char reason[128];
    int rc = aha_math_score(completion, gold, AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason);
    if (rc == 0 && score != 0.0 && score != 1.0) abort();
    aha_error_clear();
    free(text);
    return 0;
}
