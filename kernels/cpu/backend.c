/* The backend registry, the failure record every backend shares, and the host-memory
 * operations of the two CPU backends (their memory is plain host memory, so upload,
 * download and copy are memcpy and sync has nothing to wait for). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/backend.h"
#include "aha/error.h"
#include "cpu_internal.h"

static const char *const backend_names[] = {
    "cpu",
    "cpu-ref",
#ifdef AHA_HAVE_CUDA
    "cuda",
#endif
};

int aha_backend_count(void) { return (int)(sizeof backend_names / sizeof backend_names[0]); }

const char *aha_backend_name(int i) {
    return i >= 0 && i < aha_backend_count() ? backend_names[i] : NULL;
}

AhaBackend *aha_backend_create(const char *name, const AhaBackendOptions *options) {
    AhaBackendOptions defaults = {0};
    if (options == NULL) options = &defaults;
    if (name == NULL) name = "cpu";
    if (strcmp(name, "cpu") == 0) return aha_cpu_backend_create(options, 0);
    if (strcmp(name, "cpu-ref") == 0) return aha_cpu_backend_create(options, 1);
    if (strcmp(name, "cuda") == 0) {
#ifdef AHA_HAVE_CUDA
        return aha_backend_cuda_create(options);
#else
        aha_errorf("backend \"cuda\": this libaha was built without CUDA (configure with "
                   "-DAHA_CUDA=ON where nvcc is installed)");
        return NULL;
#endif
    }
    aha_errorf("backend \"%s\": unknown (expected cpu, cpu-ref or cuda)", name);
    return NULL;
}

void aha_backend_free(AhaBackend *be) {
    if (be == NULL) return;
    be->destroy(be);
}

void aha_backend_fail(AhaBackend *be, const char *fmt, ...) {
    if (be->failed) return; /* the first failure is the one worth reading */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->failure, sizeof be->failure, fmt, ap);
    va_end(ap);
    be->failed = 1;
}

int aha_backend_take_failure(AhaBackend *be) {
    if (!be->failed) return 0;
    be->failed = 0;
    return aha_errorf("backend %s: %s", be->name, be->failure);
}

/* ---- host memory (both CPU backends) ------------------------------------------------- */

void *aha_host_alloc(AhaBackend *be, size_t bytes) {
    (void)be;
    /* aligned_alloc wants a multiple of the alignment; 0 bytes still gets a pointer */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes) {
        aha_errorf("backend memory: %zu bytes overflow", bytes);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p == NULL) aha_errorf("backend memory: cannot allocate %.1f MiB", (double)bytes / 1048576.0);
    return p;
}

void aha_host_free(AhaBackend *be, void *ptr) {
    (void)be;
    free(ptr);
}

int aha_host_upload(AhaBackend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
    return 0;
}

int aha_host_download(AhaBackend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
    return aha_backend_take_failure(be);
}

void aha_host_copy(AhaBackend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
}

void aha_host_zero(AhaBackend *be, void *dst, size_t bytes) {
    (void)be;
    if (bytes) memset(dst, 0, bytes);
}

int aha_host_sync(AhaBackend *be) { return aha_backend_take_failure(be); }
