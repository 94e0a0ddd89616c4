/* The KV cache arena (see rollout/kvcache.h). */
#include "rollout/kvcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"

int aha_kv_cache_init(AhaKvCache *cache, int n_layers, int n_slots, int max_len, int kv_dim) {
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
    cache->memory = malloc(floats * sizeof(float));
    if (!cache->memory)
        return aha_errorf("KV cache: cannot allocate %.1f MiB (%d sequences x %d positions x "
                          "%d layers x %d kv values, K and V)",
                          (double)floats * sizeof(float) / 1048576.0, n_slots, max_len,
                          n_layers, kv_dim);
    cache->n_layers = n_layers;
    cache->n_slots = n_slots;
    cache->max_len = max_len;
    cache->kv_dim = kv_dim;
    cache->bytes = floats * sizeof(float);
    return 0;
}

void aha_kv_cache_free(AhaKvCache *cache) {
    free(cache->memory);
    memset(cache, 0, sizeof *cache);
}

void aha_kv_cache_copy_prefix(AhaKvCache *cache, int dst, int src, int len) {
    size_t bytes = (size_t)len * cache->kv_dim * sizeof(float);
    for (int layer = 0; layer < cache->n_layers; layer++) {
        memcpy(aha_kv_keys(cache, layer, dst), aha_kv_keys(cache, layer, src), bytes);
        memcpy(aha_kv_values(cache, layer, dst), aha_kv_values(cache, layer, src), bytes);
    }
}
