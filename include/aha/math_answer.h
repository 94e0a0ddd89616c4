/* The math answer checker behind the built-in "math" reward.
 *
 * A completion's final answer is extracted (the last \boxed{} / \fbox{}, or the last
 * <answer>...</answer> block) and compared with a gold answer for mathematical equality:
 * numbers with a tolerance, fractions, radicals, algebraic expressions by value at random
 * points, equations, intervals, tuples, sets, matrices, multiple-choice letters, text.
 * The full rules, and how they differ from Math-Verify, the Qwen2.5-Math grader and the
 * MATH is_equiv, are in docs/math-verifier.md.
 *
 * Every function is thread-safe and deterministic (the random points are a fixed hash of
 * the variable names), so the same pair always gets the same score. */
#ifndef AHA_MATH_ANSWER_H
#define AHA_MATH_ANSWER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    /* Whichever comes last: the last \boxed{...} / \fbox{...}, or the last <answer>...</answer>
     * block (a \boxed{} inside the block wins); the model's final statement is its answer. */
    AHA_MATH_EXTRACT_AUTO,
    /* Only the last \boxed{...} or \fbox{...}. */
    AHA_MATH_EXTRACT_BOXED,
    /* Only the last <answer>...</answer> block; a \boxed{} inside it still wins. */
    AHA_MATH_EXTRACT_ANSWER_TAG,
} AhaMathExtract;

/* Scores a completion against a gold answer. Returns 0 with *score 1.0 (equal) or 0.0 (not
 * equal or no answer found), 1 for "no score" (the gold answer cannot be parsed: *score is
 * then 0.0), -1 on an internal error (message recorded). reason (when reason_cap > 0) gets
 * a short human-readable why, e.g. "equal: 3/4 = 0.75", "no \\boxed{} or <answer> found",
 * "not equal: 12 vs 13"; it is always NUL-terminated and cut to reason_cap. */
int aha_math_score(const char *completion, const char *gold, AhaMathExtract mode,
                   double *score, char *reason, size_t reason_cap);

/* The same for texts given with their lengths, which may hold NUL bytes: NUL and the other
 * control bytes (below 0x20, DEL) read as white space inside an answer, so they never hide
 * one (`\boxed{5}` after a NUL is found; `5\0` is 5). */
int aha_math_score_n(const char *completion, size_t completion_len, const char *gold, size_t gold_len,
                     AhaMathExtract mode, double *score, char *reason, size_t reason_cap);

/* The final answer of a completion (malloc'd, the caller frees), or NULL when there is
 * none; NULL with a recorded message only when memory runs out (aha_error_message() is
 * then non-empty; clear it with aha_error_clear() before calling to tell the two apart). */
char *aha_math_extract(const char *completion, AhaMathExtract mode);

/* The answer inside a gold field (malloc'd, the caller frees): a GSM8K solution ending in
 * "#### N" gives N, a LaTeX solution gives its last \boxed{}, anything else is taken bare
 * (trimmed). NULL when the result would be empty (or memory runs out). */
char *aha_math_gold(const char *gold);

/* 1 when answer equals gold_answer (both already extracted), 0 when not (or when answer is
 * empty), -1 when gold_answer cannot be parsed (empty, unbalanced braces; a verdict, no
 * message recorded), -2 when memory runs out (message recorded). */
int aha_math_equal(const char *answer, const char *gold_answer);

#ifdef __cplusplus
}
#endif

#endif
