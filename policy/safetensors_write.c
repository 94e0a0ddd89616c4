/* safetensors writer: F32 or BF16 from float32 arrays, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/safetensors.h"

static uint64_t entry_numel(const AhaSafetensorsEntry *e) {
    uint64_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
    return n;
}

static int check_entry(const AhaSafetensorsEntry *e) {
    AHA_REQUIRE(e->name && e->name[0], "a tensor has no name");
    AHA_REQUIRE(strcmp(e->name, "__metadata__") != 0, "'__metadata__' is not a tensor name");
    AHA_REQUIRE(e->dtype == AHA_DTYPE_F32 || e->dtype == AHA_DTYPE_BF16,
                "tensor '%s': can only write F32 or BF16, not %s", e->name,
                aha_dtype_name(e->dtype));
    AHA_REQUIRE(e->ndim >= 0 && e->ndim <= AHA_SAFETENSORS_MAX_DIMS,
                "tensor '%s': %d dimensions", e->name, e->ndim);
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        AHA_REQUIRE(e->shape[d] >= 0, "tensor '%s': negative dimension", e->name);
        uint64_t n = (uint64_t)e->shape[d];
        AHA_REQUIRE(n == 0 || numel <= UINT64_MAX / 8 / n, "tensor '%s': size overflows", e->name);
        numel *= n;
    }
    if (e->n_parts > 0) {
        uint64_t parts = 0;
        for (int p = 0; p < e->n_parts; p++) parts += e->parts[p].numel;
        AHA_REQUIRE(parts == numel, "tensor '%s': parts hold %llu elements, the shape %llu",
                    e->name, (unsigned long long)parts, (unsigned long long)numel);
    } else {
        AHA_REQUIRE(numel == 0 || e->data, "tensor '%s' has no data", e->name);
    }
    return 0;
}

/* The JSON header, padded with spaces so that the data starts 8-byte aligned. */
static char *build_header(const AhaSafetensorsEntry *entries, size_t count,
                          const char *const *metadata, uint64_t *header_len) {
    json_t *root = json_object();
    char *text = NULL;
    if (!root) goto oom;
    if (metadata && metadata[0]) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta) != 0) goto oom;
        for (size_t i = 0; metadata[i] && metadata[i + 1]; i += 2)
            if (json_object_set_new(meta, metadata[i], json_string(metadata[i + 1])) != 0) goto oom;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const AhaSafetensorsEntry *e = &entries[i];
        if (json_object_get(root, e->name)) {
            aha_errorf("tensor '%s' is given twice", e->name);
            json_decref(root);
            return NULL;
        }
        uint64_t nbytes = entry_numel(e) * (uint64_t)(aha_dtype_bits(e->dtype) / 8);
        json_t *shape = json_array();
        json_t *info = json_pack("{s:s, s:o, s:[I,I]}", "dtype", aha_dtype_name(e->dtype),
                                 "shape", shape, "data_offsets", (json_int_t)offset,
                                 (json_int_t)(offset + nbytes));
        if (!shape || !info || json_object_set_new(root, e->name, info) != 0) goto oom;
        for (int d = 0; d < e->ndim; d++)
            if (json_array_append_new(shape, json_integer(e->shape[d])) != 0) goto oom;
        offset += nbytes;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!text) goto oom;
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char *grown = aha_realloc(text, padded + 1);
    if (!grown) {
        free(text);
        return NULL;
    }
    memset(grown + len, ' ', padded - len);
    grown[padded] = '\0';
    *header_len = padded;
    return grown;
oom:
    json_decref(root);
    aha_errorf("out of memory building the safetensors header");
    return NULL;
}

static int write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        AHA_CHECK_SYS(w > 0, "writing");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

enum { CHUNK = 1 << 16 };

static int write_floats(int fd, const float *data, uint64_t numel, AhaDtype dtype,
                        uint16_t *scratch) {
    if (dtype == AHA_DTYPE_F32) return write_all(fd, data, numel * sizeof(float));
    for (uint64_t start = 0; start < numel; start += CHUNK) {
        size_t n = numel - start < CHUNK ? (size_t)(numel - start) : CHUNK;
        for (size_t i = 0; i < n; i++) scratch[i] = aha_f32_to_bf16(data[start + i]);
        AHA_TRY(write_all(fd, scratch, n * sizeof *scratch));
    }
    return 0;
}

static int write_contents(int fd, const AhaSafetensorsEntry *entries, size_t count,
                          const char *header, uint64_t header_len) {
    AHA_TRY(write_all(fd, &header_len, 8));
    AHA_TRY(write_all(fd, header, header_len));
    uint16_t *scratch = aha_malloc(CHUNK * sizeof *scratch);
    AHA_CHECK_ALLOC(scratch);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const AhaSafetensorsEntry *e = &entries[i];
        if (e->n_parts == 0) {
            rc = write_floats(fd, e->data, entry_numel(e), e->dtype, scratch);
        } else {
            for (int p = 0; p < e->n_parts && rc == 0; p++)
                rc = write_floats(fd, e->parts[p].data, e->parts[p].numel, e->dtype, scratch);
        }
        if (rc != 0) aha_error_prefix("tensor '%s'", e->name);
    }
    free(scratch);
    AHA_TRY(rc);
    AHA_CHECK_SYS(fchmod(fd, 0644) == 0, "chmod");
    AHA_CHECK_SYS(fsync(fd) == 0, "fsync");
    return 0;
}

/* Makes the rename durable: fsync the directory that holds path. */
static int sync_parent(const char *path) {
    char *copy = aha_strdup(path);
    AHA_CHECK_ALLOC(copy);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    AHA_CHECK_SYS(fd >= 0, "opening the directory");
    int rc = fsync(fd);
    close(fd);
    AHA_CHECK_SYS(rc == 0, "fsync of the directory");
    return 0;
}

static int write_file(const char *path, const AhaSafetensorsEntry *entries, size_t count,
                      const char *const *metadata) {
    for (size_t i = 0; i < count; i++) AHA_TRY(check_entry(&entries[i]));
    uint64_t header_len = 0;
    char *header = build_header(entries, count, metadata, &header_len);
    if (!header) return -1;
    size_t tmp_len = strlen(path) + 16;
    char *tmp = aha_malloc(tmp_len);
    if (!tmp) {
        free(header);
        return -1;
    }
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        aha_error_errno("creating %s", tmp);
        free(tmp);
        free(header);
        return -1;
    }
    int rc = write_contents(fd, entries, count, header, header_len);
    free(header);
    if (close(fd) != 0 && rc == 0) rc = aha_error_errno("closing %s", tmp);
    if (rc == 0 && rename(tmp, path) != 0) rc = aha_error_errno("renaming %s", tmp);
    if (rc != 0) unlink(tmp);
    free(tmp);
    if (rc == 0) rc = sync_parent(path);
    return rc;
}

int aha_safetensors_write(const char *path, const AhaSafetensorsEntry *entries, size_t count,
                          const char *const *metadata) {
    if (write_file(path, entries, count, metadata) != 0) return aha_error_prefix("writing %s", path);
    return 0;
}
