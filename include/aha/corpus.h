/* Pre-training corpora for the synthetic tasks: each problem of a task file becomes one
 * document, answered directly or, for a chosen share of them, worked out step by step in
 * <think> ... </think> before the answer, so that the base model can reason but rarely
 * does. See docs/tiny-zero.md. */
#ifndef AHA_CORPUS_H
#define AHA_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The worked steps of a Countdown equation in evaluation order, e.g. "(55-36)*7-68" ->
 * "55-36=19 19*7=133 133-68=65". Integers, + - * /, parentheses. */
int aha_countdown_steps(const char *equation, char *steps, size_t size);

/* Reads a task file (JSONL rows with "question" and "answer", as `aha data gen` writes) and
 * writes out_path: one {"text": ...} line per row, "Q<answer>A</answer>" directly or
 * "Q<think>STEPS</think><answer>A</answer>" for a think_share fraction of rows (chosen by a
 * counter-based draw from seed and the row index). STEPS: the column-by-column sum with
 * carries for a sum question ("123+456+789"), the steps of the answer equation for a
 * Countdown row (one with "nums"). Written to a temporary name and renamed. */
int aha_corpus_write(const char *task_path, double think_share, uint64_t seed,
                     const char *out_path, size_t *n_docs, size_t *n_worked);

#ifdef __cplusplus
}
#endif

#endif
