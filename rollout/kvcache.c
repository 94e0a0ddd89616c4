/* The KV cache arena (see rollout/kvcache.h). */
#include "rollout/kvcache.h"

#include <stdint.h>
#include <string.h>

#include "aha/error.h"

int aha_kv_cache_init(AhaKvCache *cache, AhaBackend *backend, int n_layers, int n_slots,
                      int max_len, int kv_dim) {
    memset(cache, 0, sizeof *cache);
    AHA_REQUIRE(n_layers > 0 && n_slots > 0 && max_len > 0 && kv_dim > 0,
                "KV cache: bad shape (layers %d, slots %d, length %d, kv dim %d)", n_layers,
                n_slots, max_len, kv_dim);
    size_t floats = 2;
    const size_t dims[4] = {(size_t)n_layers, (size_t)n_slots, (size_t)max_len, (size_t)kv_dim};
    for (int i = 0; i < 4; i++) {
        AHA_REQUIRE(floats <= SIZE_MAX / sizeof(float) / dims[i],
                    "KV cache: %d slots x %d positions x %d layers x %d overflows memory",
                    n_slots, max_len, n_layers, kv_dim);
        floats *= dims[i];
    }
    cache->memory = backend->alloc(backend, floats * sizeof(float));
    if (!cache->memory)
        return aha_errorf("KV cache: cannot allocate %.1f MiB (%d sequences x %d positions x "
                          "%d layers x %d kv values, K and V)",
                          (double)floats * sizeof(float) / 1048576.0, n_slots, max_len,
                          n_layers, kv_dim);
    cache->backend = backend;
    cache->layout = (AhaKvLayout){n_layers, n_slots, max_len, kv_dim};
    cache->bytes = floats * sizeof(float);
    return 0;
}

void aha_kv_cache_free(AhaKvCache *cache) {
    if (cache->backend) cache->backend->free(cache->backend, cache->memory);
    memset(cache, 0, sizeof *cache);
}

void aha_kv_cache_copy_prefix(AhaKvCache *cache, int dst, int src, int len) {
    cache->backend->kv_copy_prefix(cache->backend, cache->memory, &cache->layout, dst, src, len);
}
