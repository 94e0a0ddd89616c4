/* The KV cache: one arena holding keys and values of every layer for a fixed set of
 * sequence slots, each max_len positions long (internal to libaha). A slot's keys for one
 * layer are contiguous rows of kv_dim floats, the layout the attention kernel reads. */
#ifndef AHA_ROLLOUT_KVCACHE_H
#define AHA_ROLLOUT_KVCACHE_H

#include <stddef.h>

typedef struct AhaKvCache {
    float *memory;  /* keys [L, slots, max_len, kv_dim] then values, same shape */
    int n_layers;   /* L */
    int n_slots;
    int max_len;
    int kv_dim;     /* kv heads * head dim */
    size_t bytes;
} AhaKvCache;

/* Fails (with the size in the message) when the arena cannot be allocated or its size
 * overflows. */
int aha_kv_cache_init(AhaKvCache *cache, int n_layers, int n_slots, int max_len, int kv_dim);
void aha_kv_cache_free(AhaKvCache *cache);

/* [max_len, kv_dim] rows of one slot in one layer */
static inline float *aha_kv_keys(const AhaKvCache *c, int layer, int slot) {
    return c->memory + (((size_t)layer * c->n_slots + slot) * c->max_len) * c->kv_dim;
}
static inline float *aha_kv_values(const AhaKvCache *c, int layer, int slot) {
    return aha_kv_keys(c, layer, slot) + (size_t)c->n_layers * c->n_slots * c->max_len * c->kv_dim;
}

/* Copies positions [0, len) of every layer from slot src to slot dst (prefix sharing). */
void aha_kv_cache_copy_prefix(AhaKvCache *cache, int dst, int src, int len);

#endif
