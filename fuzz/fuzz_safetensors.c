/* The safetensors reader: header length, JSON header, dtypes, shapes, offsets; every
 * tensor it accepts is converted to F32 (small ones) to check the offsets it trusted. */
#include "aha/safetensors.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.safetensors", data, size);
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    if (!f) return 0;
    for (size_t i = 0; i < aha_safetensors_count(f); i++) {
        const AhaSafetensor *t = aha_safetensors_tensor(f, i);
        if (t->numel > (1u << 16)) continue;
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (!out) abort();
        (void)aha_safetensor_to_f32(t, out);
        free(out);
        (void)aha_safetensors_find(f, t->name);
    }
    (void)aha_safetensors_metadata(f, "format");
    aha_safetensors_close(f);
    return 0;
}
