/* Peak memory and time of loading a model directory (for docs/checkpoints.md; not a test).
 * Build and run (after building libaha in build/):
 *   cc -O2 -Iinclude scripts/measure_load_memory.c build/libaha.a \
 *      $(pkg-config --libs jansson yaml-0.1 libpcre2-8 sqlite3 libutf8proc openblas libseccomp) \
 *      -fopenmp -lm -o build/measure_load_memory
 *   build/measure_load_memory DIR */
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "aha/error.h"
#include "aha/model_io.h"

static long peak_rss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    long before = peak_rss_kb();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    AhaModelSource source;
    AhaModel *m = aha_model_load_dir(argv[1], &source);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!m) {
        fprintf(stderr, "error: %s\n", aha_error_message());
        return 1;
    }
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%s: %zu parameters (%.1f MB float32 arena), source %s in %zu file(s)\n", argv[1],
           m->params.count, m->params.count * 4 / 1e6, aha_dtype_name(source.dtype),
           source.n_files);
    printf("load %.2f s, peak RSS %.1f MB (%.1f MB before loading)\n", seconds,
           peak_rss_kb() / 1024.0, before / 1024.0);
    aha_model_free(m);
    return 0;
}
