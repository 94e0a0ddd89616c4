#include "aha/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AHA_ERROR_CAP 4096

static _Thread_local char error_message[AHA_ERROR_CAP];

/* Appends as much of text as fits, keeping the message NUL-terminated. */
static void append(const char *text) {
    size_t used = strlen(error_message);
    size_t room = sizeof error_message - 1 - used;
    size_t n = strlen(text);
    if (n > room) n = room;
    memcpy(error_message + used, text, n);
    error_message[used + n] = '\0';
}

int aha_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int aha_error_prefix(const char *fmt, ...) {
    char inner[AHA_ERROR_CAP];
    memcpy(inner, error_message, sizeof inner);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    append(": ");
    append(inner);
    return -1;
}

int aha_error_errno(const char *fmt, ...) {
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    append(": ");
    append(strerror(saved));
    return -1;
}

const char *aha_error_message(void) { return error_message[0] ? error_message : "unknown error"; }

void aha_error_clear(void) { error_message[0] = '\0'; }

void *aha_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) aha_errorf("out of memory allocating %zu bytes", size);
    return p;
}

void *aha_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        aha_errorf("allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) aha_errorf("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *aha_realloc(void *ptr, size_t size) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) aha_errorf("out of memory growing a buffer to %zu bytes", size);
    return p;
}

char *aha_strdup(const char *s) {
    char *p = strdup(s ? s : "");
    if (!p) aha_errorf("out of memory copying a string");
    return p;
}
