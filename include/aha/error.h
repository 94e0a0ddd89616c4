/* The one error convention of libaha.
 *
 * Every fallible function returns int: 0 on success, -1 on failure, after recording a
 * message with aha_errorf(). A caller that adds context (the file being read, the recipe key
 * being parsed) calls aha_error_prefix() and returns -1 in turn, so the message the user
 * finally sees reads outermost-first: "recipe.yaml:3:5: optim.lr: expected a number".
 * Functions that return pointers return NULL on failure with the same message recorded.
 * The message lives in thread-local storage: workers on other threads keep their own.
 * Library code never exits or aborts on bad input; only the CLI decides to exit. */
#ifndef AHA_ERROR_H
#define AHA_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define AHA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AHA_PRINTF(a, b)
#endif

/* Records the message (replacing any earlier one) and returns -1. */
int aha_errorf(const char *fmt, ...) AHA_PRINTF(1, 2);
/* Prepends "<context>: " to the recorded message and returns -1. */
int aha_error_prefix(const char *fmt, ...) AHA_PRINTF(1, 2);
/* Records "<message>: <strerror(errno)>" and returns -1; errno is read on entry. */
int aha_error_errno(const char *fmt, ...) AHA_PRINTF(1, 2);
const char *aha_error_message(void);
void aha_error_clear(void);

/* Propagate a failure from a call that already recorded its message. */
#define AHA_TRY(expr)                                                                         \
    do {                                                                                      \
        if ((expr) != 0) return -1;                                                           \
    } while (0)

/* Fail with a message when an allocation returned NULL. */
#define AHA_CHECK_ALLOC(ptr)                                                                  \
    do {                                                                                      \
        if ((ptr) == NULL)                                                                    \
            return aha_errorf("%s:%d: out of memory allocating %s", __FILE__, __LINE__, #ptr); \
    } while (0)

/* Fail with the message and strerror(errno) when a libc/POSIX call reports failure. */
#define AHA_CHECK_SYS(cond, ...)                                                              \
    do {                                                                                      \
        if (!(cond)) return aha_error_errno(__VA_ARGS__);                                     \
    } while (0)

/* Fail with a formatted message when a condition on input does not hold. */
#define AHA_REQUIRE(cond, ...)                                                                \
    do {                                                                                      \
        if (!(cond)) return aha_errorf(__VA_ARGS__);                                          \
    } while (0)

/* Allocation helpers that record an error (and return NULL) instead of aborting. */
void *aha_malloc(size_t size);
void *aha_calloc(size_t count, size_t size);
void *aha_realloc(void *ptr, size_t size);
char *aha_strdup(const char *s);

#ifdef __cplusplus
}
#endif

#endif
