/* The KV cache: one arena of backend memory holding keys and values of every layer for a
 * fixed set of sequence slots, each max_len positions long (internal to libaha). The layout
 * is aha/backend.h's AhaKvLayout: a slot's keys for one layer are contiguous rows of kv_dim
 * floats, the rows the decode attention reads. */
#ifndef AHA_ROLLOUT_KVCACHE_H
#define AHA_ROLLOUT_KVCACHE_H

#include <stddef.h>

#include "aha/backend.h"

typedef struct AhaKvCache {
    AhaBackend *backend; /* owns memory */
    float *memory;       /* keys [L, slots, max_len, kv_dim] then values, same shape */
    AhaKvLayout layout;
    size_t bytes;
} AhaKvCache;

/* Fails (with the size in the message) when the arena cannot be allocated or its size
 * overflows. */
int aha_kv_cache_init(AhaKvCache *cache, AhaBackend *backend, int n_layers, int n_slots,
                      int max_len, int kv_dim);
void aha_kv_cache_free(AhaKvCache *cache);

/* Copies positions [0, len) of every layer from slot src to slot dst (prefix sharing). */
void aha_kv_cache_copy_prefix(AhaKvCache *cache, int dst, int src, int len);

#endif
