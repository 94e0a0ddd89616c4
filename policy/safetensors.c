/* safetensors reader: maps the file and applies every check of the reference reader
 * (huggingface/safetensors src/tensor.rs) before handing out a tensor. */
#include "aha/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aha/error.h"

static const struct {
    const char *name;
    int bits;
} dtype_table[AHA_DTYPE_COUNT] = {
    [AHA_DTYPE_BOOL] = {"BOOL", 8},         [AHA_DTYPE_F4] = {"F4", 4},
    [AHA_DTYPE_F6_E2M3] = {"F6_E2M3", 6},   [AHA_DTYPE_F6_E3M2] = {"F6_E3M2", 6},
    [AHA_DTYPE_U8] = {"U8", 8},             [AHA_DTYPE_I8] = {"I8", 8},
    [AHA_DTYPE_F8_E5M2] = {"F8_E5M2", 8},   [AHA_DTYPE_F8_E4M3] = {"F8_E4M3", 8},
    [AHA_DTYPE_F8_E8M0] = {"F8_E8M0", 8},   [AHA_DTYPE_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [AHA_DTYPE_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [AHA_DTYPE_I16] = {"I16", 16},          [AHA_DTYPE_U16] = {"U16", 16},
    [AHA_DTYPE_F16] = {"F16", 16},          [AHA_DTYPE_BF16] = {"BF16", 16},
    [AHA_DTYPE_I32] = {"I32", 32},          [AHA_DTYPE_U32] = {"U32", 32},
    [AHA_DTYPE_F32] = {"F32", 32},          [AHA_DTYPE_C64] = {"C64", 64},
    [AHA_DTYPE_F64] = {"F64", 64},          [AHA_DTYPE_I64] = {"I64", 64},
    [AHA_DTYPE_U64] = {"U64", 64},
};

const char *aha_dtype_name(AhaDtype dtype) {
    return (unsigned)dtype < AHA_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

int aha_dtype_bits(AhaDtype dtype) {
    return (unsigned)dtype < AHA_DTYPE_COUNT ? dtype_table[dtype].bits : 0;
}

int aha_dtype_from_name(const char *name, AhaDtype *dtype) {
    for (int i = 0; i < AHA_DTYPE_COUNT; i++) {
        if (strcmp(dtype_table[i].name, name) == 0) {
            *dtype = (AhaDtype)i;
            return 0;
        }
    }
    return aha_errorf("unknown dtype '%s'", name);
}

struct AhaSafetensorsFile {
    char *path;
    void *map;                 /* the whole file, read-only */
    size_t map_size;
    json_t *header;            /* owns the tensor names and metadata strings */
    json_t *metadata;          /* borrowed from header, or NULL */
    AhaSafetensor *tensors;    /* [count], header order */
    size_t count;
};

/* Fills t from one header entry; the caller prefixes the tensor name to any error. */
static int parse_entry(json_t *value, AhaSafetensor *t, uint64_t *begin, uint64_t *end) {
    AHA_REQUIRE(json_is_object(value), "expected an object with dtype, shape and data_offsets");
    json_t *dtype = json_object_get(value, "dtype");
    json_t *shape = json_object_get(value, "shape");
    json_t *offsets = json_object_get(value, "data_offsets");
    AHA_REQUIRE(json_is_string(dtype), "missing or non-string \"dtype\"");
    AHA_TRY(aha_dtype_from_name(json_string_value(dtype), &t->dtype));
    AHA_REQUIRE(json_is_array(shape), "missing or non-array \"shape\"");
    AHA_REQUIRE(json_array_size(shape) <= AHA_SAFETENSORS_MAX_DIMS,
                "shape has %zu dimensions, at most %d are supported", json_array_size(shape),
                AHA_SAFETENSORS_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *dim = json_array_get(shape, (size_t)d);
        AHA_REQUIRE(json_is_integer(dim) && json_integer_value(dim) >= 0,
                    "shape[%d] is not a non-negative integer", d);
        uint64_t n = (uint64_t)json_integer_value(dim);
        AHA_REQUIRE(n == 0 || numel <= UINT64_MAX / n, "the shape's element count overflows");
        numel *= n;
        t->shape[d] = (int64_t)n;
    }
    int bits = aha_dtype_bits(t->dtype);
    AHA_REQUIRE(numel <= UINT64_MAX / (uint64_t)bits, "the shape's byte size overflows");
    AHA_REQUIRE(numel * (uint64_t)bits % 8 == 0,
                "%llu elements of %s do not fill whole bytes", (unsigned long long)numel,
                aha_dtype_name(t->dtype));
    t->numel = numel;
    t->nbytes = numel * (uint64_t)bits / 8;
    AHA_REQUIRE(json_is_array(offsets) && json_array_size(offsets) == 2,
                "\"data_offsets\" is not an array of two integers");
    json_t *b = json_array_get(offsets, 0), *e = json_array_get(offsets, 1);
    AHA_REQUIRE(json_is_integer(b) && json_is_integer(e) && json_integer_value(b) >= 0 &&
                    json_integer_value(e) >= json_integer_value(b),
                "\"data_offsets\" must be two integers 0 <= begin <= end");
    *begin = (uint64_t)json_integer_value(b);
    *end = (uint64_t)json_integer_value(e);
    AHA_REQUIRE(*end - *begin == t->nbytes,
                "data_offsets [%llu, %llu) hold %llu bytes but shape x %s needs %llu",
                (unsigned long long)*begin, (unsigned long long)*end,
                (unsigned long long)(*end - *begin), aha_dtype_name(t->dtype),
                (unsigned long long)t->nbytes);
    return 0;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} Span;

static int compare_spans(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* jansson names only the repeated key ("near '"dtype"'"): say which tensor it is in. */
static int duplicate_key_error(const char *text, size_t len, const json_error_t *jerr) {
    char key[256] = "";
    const char *near = strstr(jerr->text, "near '\"");
    if (near) {
        near += 7;
        size_t n = strcspn(near, "\"");
        snprintf(key, sizeof key, "%.*s", (int)(n < 255 ? n : 255), near);
    }
    json_t *loose = json_loadb(text, len, 0, NULL); /* the last duplicate wins */
    const char *tensor = NULL, *name;
    json_t *value;
    size_t best = 0;
    if (loose && json_is_object(loose)) {
        if (json_is_object(json_object_get(loose, key))) tensor = key; /* the tensor itself repeated */
        else
            json_object_foreach(loose, name, value) { /* the tensor whose name comes last before it */
                char quoted[300];
                int qn = snprintf(quoted, sizeof quoted, "\"%s\"", name);
                const char *at = qn > 0 && (size_t)qn < sizeof quoted ? memmem(text, (size_t)jerr->position, quoted, (size_t)qn) : NULL;
                while (at) {
                    size_t pos = (size_t)(at - text);
                    if (pos >= best) {
                        best = pos;
                        tensor = name;
                    }
                    at = memmem(at + 1, (size_t)jerr->position - pos - 1, quoted, (size_t)qn);
                }
            }
    }
    int rc = tensor == key ? aha_errorf("header, column %d: tensor '%s' is listed twice", jerr->column, key)
             : tensor      ? aha_errorf("header, column %d: tensor '%s': the key '%s' appears twice", jerr->column, tensor, key)
                           : aha_errorf("header JSON, column %d: %s", jerr->column, jerr->text);
    json_decref(loose);
    return rc;
}

/* Parses the header and checks that the tensors tile the buffer exactly. */
static int parse_header(AhaSafetensorsFile *f, const char *text, uint64_t header_len,
                        uint64_t buffer_len) {
    AHA_REQUIRE(header_len > 0 && text[0] == '{', "the header does not start with '{'");
    json_error_t jerr;
    f->header = json_loadb(text, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!f->header && strncmp(jerr.text, "duplicate object key", 20) == 0)
        return duplicate_key_error(text, (size_t)header_len, &jerr);
    AHA_REQUIRE(f->header, "header JSON, column %d: %s", jerr.column, jerr.text);
    AHA_REQUIRE(json_is_object(f->header), "the header is not a JSON object");

    size_t n = json_object_size(f->header);
    f->tensors = aha_calloc(n, sizeof *f->tensors);
    Span *spans = aha_calloc(n, sizeof *spans);
    if (!f->tensors || !spans) {
        free(spans);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(f->header, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(value)) {
                free(spans);
                return aha_errorf("__metadata__ is not an object of strings");
            }
            const char *mkey;
            json_t *mvalue;
            json_object_foreach(value, mkey, mvalue) {
                if (!json_is_string(mvalue)) {
                    free(spans);
                    return aha_errorf("__metadata__[\"%s\"] is not a string", mkey);
                }
            }
            f->metadata = value;
            continue;
        }
        AhaSafetensor *t = &f->tensors[f->count];
        t->name = key;
        t->path = f->path;
        Span *s = &spans[f->count];
        if (parse_entry(value, t, &s->begin, &s->end) != 0) {
            free(spans);
            return aha_error_prefix("tensor '%s'", key);
        }
        s->index = f->count++;
    }
    qsort(spans, f->count, sizeof *spans, compare_spans);
    uint64_t expected = 0;
    for (size_t i = 0; i < f->count; i++) {
        if (spans[i].begin != expected) {
            aha_errorf("tensor '%s' starts at buffer offset %llu, expected %llu (%s)",
                       f->tensors[spans[i].index].name, (unsigned long long)spans[i].begin,
                       (unsigned long long)expected,
                       spans[i].begin < expected ? "tensors overlap" : "a hole in the data buffer");
            free(spans);
            return -1;
        }
        expected = spans[i].end;
    }
    for (size_t i = 0; i < f->count; i++) {
        f->tensors[spans[i].index].data =
            (const char *)f->map + 8 + header_len + spans[i].begin;
    }
    free(spans);
    AHA_REQUIRE(expected == buffer_len,
                "the tensors cover %llu bytes of data but the file holds %llu after the header",
                (unsigned long long)expected, (unsigned long long)buffer_len);
    return 0;
}

static int open_into(AhaSafetensorsFile *f, const char *path) {
    f->path = aha_strdup(path);
    AHA_CHECK_ALLOC(f->path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    AHA_CHECK_SYS(fd >= 0, "opening it");
    struct stat st;
    if (fstat(fd, &st) != 0) {
        aha_error_errno("stat");
        close(fd);
        return -1;
    }
    if (st.st_size < 8) {
        close(fd);
        return aha_errorf("the file is %lld bytes, too short for the 8-byte header length",
                          (long long)st.st_size);
    }
    f->map_size = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        errno = map_errno;
        return aha_error_errno("mapping %zu bytes", f->map_size);
    }
    uint64_t header_len;
    memcpy(&header_len, f->map, 8);
    AHA_REQUIRE(header_len <= AHA_SAFETENSORS_MAX_HEADER,
                "header length %llu exceeds the limit of %llu bytes",
                (unsigned long long)header_len, AHA_SAFETENSORS_MAX_HEADER);
    AHA_REQUIRE(header_len <= f->map_size - 8,
                "header length %llu runs past the end of the %zu-byte file (truncated?)",
                (unsigned long long)header_len, f->map_size);
    return parse_header(f, (const char *)f->map + 8, header_len,
                        f->map_size - 8 - header_len);
}

AhaSafetensorsFile *aha_safetensors_open(const char *path) {
    AhaSafetensorsFile *f = aha_calloc(1, sizeof *f);
    if (!f) return NULL;
    if (open_into(f, path) != 0) {
        aha_error_prefix("%s", path);
        aha_safetensors_close(f);
        return NULL;
    }
    return f;
}

void aha_safetensors_close(AhaSafetensorsFile *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    json_decref(f->header);
    free(f->tensors);
    free(f->path);
    free(f);
}

size_t aha_safetensors_count(const AhaSafetensorsFile *f) { return f->count; }

const AhaSafetensor *aha_safetensors_tensor(const AhaSafetensorsFile *f, size_t index) {
    return index < f->count ? &f->tensors[index] : NULL;
}

const AhaSafetensor *aha_safetensors_find(const AhaSafetensorsFile *f, const char *name) {
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *aha_safetensors_metadata(const AhaSafetensorsFile *f, const char *key) {
    if (!f->metadata) return NULL;
    return json_string_value(json_object_get(f->metadata, key));
}

void aha_safetensor_release(const AhaSafetensor *t) {
    if (t->nbytes == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)t->data & ~(page - 1);
    uintptr_t end = ((uintptr_t)t->data + t->nbytes + page - 1) & ~(page - 1);
    /* Advice only: a failure leaves the pages resident, which is still correct. */
    (void)madvise((void *)start, end - start, MADV_DONTNEED);
}
