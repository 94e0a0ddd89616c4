/* safetensors: read (mmap, every check of the reference reader), convert to float32, write.
 *
 * File layout: u64 N (little-endian), N bytes of JSON header, then the data buffer.
 * The header maps tensor names to {"dtype","shape","data_offsets":[begin,end]} with offsets
 * relative to the buffer, plus an optional "__metadata__" object of strings.
 * A file is opened by mapping it read-only; tensors point into the mapping, so opening a
 * many-gigabyte checkpoint costs nothing until the data is converted. Little-endian hosts.
 *
 * A directory of shards (model.safetensors.index.json + its files) or a single
 * model.safetensors opens as one AhaSafetensorsSet with name lookup across all files. */
#ifndef AHA_SAFETENSORS_H
#define AHA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every dtype of the format; only F32, BF16 and F16 convert to float32. */
typedef enum {
    AHA_DTYPE_BOOL,
    AHA_DTYPE_F4,
    AHA_DTYPE_F6_E2M3,
    AHA_DTYPE_F6_E3M2,
    AHA_DTYPE_U8,
    AHA_DTYPE_I8,
    AHA_DTYPE_F8_E5M2,
    AHA_DTYPE_F8_E4M3,
    AHA_DTYPE_F8_E8M0,
    AHA_DTYPE_F8_E4M3FNUZ,
    AHA_DTYPE_F8_E5M2FNUZ,
    AHA_DTYPE_I16,
    AHA_DTYPE_U16,
    AHA_DTYPE_F16,
    AHA_DTYPE_BF16,
    AHA_DTYPE_I32,
    AHA_DTYPE_U32,
    AHA_DTYPE_F32,
    AHA_DTYPE_C64,
    AHA_DTYPE_F64,
    AHA_DTYPE_I64,
    AHA_DTYPE_U64,
    AHA_DTYPE_COUNT
} AhaDtype;

/* "BF16" etc., as the header spells it. */
const char *aha_dtype_name(AhaDtype dtype);
/* Parses a header dtype name; -1 with an error naming it when unknown. */
int aha_dtype_from_name(const char *name, AhaDtype *dtype);
/* Bits per element (4 for F4, 6 for F6_*, 1 byte = 8 for BOOL). */
int aha_dtype_bits(AhaDtype dtype);

#define AHA_SAFETENSORS_MAX_DIMS 8
/* The reference reader's limit on the JSON header. */
#define AHA_SAFETENSORS_MAX_HEADER 100000000ull

typedef struct {
    const char *name;
    AhaDtype dtype;
    int ndim;                                  /* 0 = scalar */
    int64_t shape[AHA_SAFETENSORS_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    const void *data;                          /* inside the mapping; may be unaligned */
    const char *path;                          /* the file holding it */
} AhaSafetensor;

typedef struct AhaSafetensorsFile AhaSafetensorsFile;

/* Maps and validates a file; NULL with an error naming the file and the problem. */
AhaSafetensorsFile *aha_safetensors_open(const char *path);
void aha_safetensors_close(AhaSafetensorsFile *file);
/* Tensors in header order. */
size_t aha_safetensors_count(const AhaSafetensorsFile *file);
const AhaSafetensor *aha_safetensors_tensor(const AhaSafetensorsFile *file, size_t index);
/* NULL when absent (records no error). */
const AhaSafetensor *aha_safetensors_find(const AhaSafetensorsFile *file, const char *name);
/* The __metadata__ value for key, or NULL. */
const char *aha_safetensors_metadata(const AhaSafetensorsFile *file, const char *key);

/* Converts a F32, BF16 or F16 tensor to out[numel]; any other dtype is an error naming the
 * tensor and its dtype. */
int aha_safetensor_to_f32(const AhaSafetensor *tensor, float *out);
/* The same for elements [first, first + count) of the flattened tensor (a slice of a fused
 * tensor); the range must lie inside it. */
int aha_safetensor_to_f32_range(const AhaSafetensor *tensor, uint64_t first, uint64_t count,
                                float *out);
/* Tells the kernel the tensor's mapped pages are no longer needed, so that converting a
 * large checkpoint does not keep the whole file resident. */
void aha_safetensor_release(const AhaSafetensor *tensor);

/* A model directory: model.safetensors.index.json and its shards, or model.safetensors. */
typedef struct AhaSafetensorsSet AhaSafetensorsSet;

AhaSafetensorsSet *aha_safetensors_open_dir(const char *dir);
void aha_safetensors_set_close(AhaSafetensorsSet *set);
size_t aha_safetensors_set_count(const AhaSafetensorsSet *set);
/* Tensors sorted by name. */
const AhaSafetensor *aha_safetensors_set_tensor(const AhaSafetensorsSet *set, size_t index);
const AhaSafetensor *aha_safetensors_set_find(const AhaSafetensorsSet *set, const char *name);
/* The number of files the set was read from (1 when unsharded). */
size_t aha_safetensors_set_files(const AhaSafetensorsSet *set);

/* Writing. A tensor's data is the concatenation of its parts, so that a fused
 * [E, 2I, H] tensor can be written straight from per-expert arrays. */
typedef struct {
    const float *data;
    uint64_t numel;
} AhaSafetensorsPart;

typedef struct {
    const char *name;
    AhaDtype dtype;                            /* F32 or BF16 (round to nearest even) */
    int ndim;
    int64_t shape[AHA_SAFETENSORS_MAX_DIMS];
    const float *data;                         /* used when n_parts == 0 */
    const AhaSafetensorsPart *parts;
    int n_parts;
} AhaSafetensorsEntry;

/* Writes the tensors in the given order, the header padded with spaces to a multiple of 8,
 * atomically: a temporary file in the same directory, fsync, rename, fsync of the directory.
 * metadata: NULL or key, value, key, value, ..., NULL. On failure nothing is left behind. */
int aha_safetensors_write(const char *path, const AhaSafetensorsEntry *entries, size_t count,
                          const char *const *metadata);

/* float32 -> bfloat16 with round to nearest even (NaN stays NaN). */
uint16_t aha_f32_to_bf16(float value);
float aha_bf16_to_f32(uint16_t value);
float aha_f16_to_f32(uint16_t value);

#ifdef __cplusplus
}
#endif

#endif
