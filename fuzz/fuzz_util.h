/* Shared by the libFuzzer targets: the parsers under test read files, so each input is
 * written to a private scratch file (in /dev/shm when there is one) before the call. */
#ifndef AHA_FUZZ_UTIL_H
#define AHA_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A per-process scratch directory, made once. */
static inline const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/aha-fuzz-%ld", base, (long)getpid());
        if (mkdir(dir, 0700) != 0) { /* an old directory of a recycled pid is reused */ }
    }
    return dir;
}

/* Writes data to fuzz_dir()/name and returns the path (static storage). */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort(); /* the harness, not the code under test, failed */
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

/* A NUL-terminated copy (the caller frees). */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
