/* Byte-level BPE: the string map, the merge table and the merge loop over one piece.
 *
 * A piece's bytes start as one symbol each (the id of the byte's GPT-2 character); then the
 * adjacent pair with the lowest merge rank is merged, leftmost first on ties, until no pair
 * has a merge. A binary heap of candidate pairs (rank, position) over a doubly linked list of
 * symbols makes this O(n log n); stale heap entries are skipped when popped, exactly as the
 * `tokenizers` library's Word::merge_all does. Results are cached per piece. */
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "policy/tokenizer_internal.h"

/* ---------------------------------------------------------------- string map */

uint64_t tok_hash_bytes(const char *key, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

int tok_strmap_init(TokStrMap *map, size_t expected) {
    memset(map, 0, sizeof *map);
    size_t cap = 64;
    while (cap < expected * 2) cap *= 2;
    map->capacity = cap;
    map->slots = aha_calloc(cap, sizeof *map->slots);
    AHA_CHECK_ALLOC(map->slots);
    return 0;
}

void tok_strmap_free(TokStrMap *map) {
    free(map->slots);
    free(map->key_offset);
    free(map->key_len);
    free(map->value);
    free(map->pool);
    memset(map, 0, sizeof *map);
}

static size_t strmap_find(const TokStrMap *map, const char *key, size_t len) {
    size_t mask = map->capacity - 1;
    size_t i = (size_t)tok_hash_bytes(key, len) & mask;
    for (;;) {
        uint32_t slot = map->slots[i];
        if (slot == 0) return i;
        size_t e = slot - 1;
        if (map->key_len[e] == len && memcmp(map->pool + map->key_offset[e], key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static int strmap_grow(TokStrMap *map) {
    size_t cap = map->capacity * 2;
    uint32_t *slots = aha_calloc(cap, sizeof *slots);
    AHA_CHECK_ALLOC(slots);
    free(map->slots);
    map->slots = slots;
    map->capacity = cap;
    for (size_t e = 0; e < map->count; e++) {
        size_t i = strmap_find(map, map->pool + map->key_offset[e], map->key_len[e]);
        map->slots[i] = (uint32_t)(e + 1);
    }
    return 0;
}

int tok_strmap_put(TokStrMap *map, const char *key, size_t len, int32_t value) {
    AHA_REQUIRE(len < UINT32_MAX, "token of %zu bytes is too long", len);
    size_t i = strmap_find(map, key, len);
    if (map->slots[i] != 0) {
        map->value[map->slots[i] - 1] = value;
        return 0;
    }
    if (map->count == map->entries_cap) {
        size_t cap = map->entries_cap ? map->entries_cap * 2 : 256;
        size_t *off = aha_realloc(map->key_offset, cap * sizeof *off);
        AHA_CHECK_ALLOC(off);
        map->key_offset = off;
        uint32_t *kl = aha_realloc(map->key_len, cap * sizeof *kl);
        AHA_CHECK_ALLOC(kl);
        map->key_len = kl;
        int32_t *val = aha_realloc(map->value, cap * sizeof *val);
        AHA_CHECK_ALLOC(val);
        map->value = val;
        map->entries_cap = cap;
    }
    if (map->pool_used + len > map->pool_cap) {
        size_t cap = map->pool_cap ? map->pool_cap : 4096;
        while (cap < map->pool_used + len) cap *= 2;
        char *pool = aha_realloc(map->pool, cap);
        AHA_CHECK_ALLOC(pool);
        map->pool = pool;
        map->pool_cap = cap;
    }
    if (len) memcpy(map->pool + map->pool_used, key, len);
    size_t e = map->count++;
    map->key_offset[e] = map->pool_used;
    map->key_len[e] = (uint32_t)len;
    map->value[e] = value;
    map->pool_used += len;
    map->slots[i] = (uint32_t)(e + 1);
    if (map->count * 2 > map->capacity) AHA_TRY(strmap_grow(map));
    return 0;
}

int32_t tok_strmap_get(const TokStrMap *map, const char *key, size_t len) {
    if (!map->slots) return -1;
    size_t i = strmap_find(map, key, len);
    return map->slots[i] ? map->value[map->slots[i] - 1] : -1;
}

/* ---------------------------------------------------------------- merges */

static uint64_t pair_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static size_t merge_slot(uint64_t key, size_t capacity) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (capacity - 1);
}

int tok_merges_init(AhaTokenizer *tok, size_t count) {
    size_t cap = 64;
    while (cap < count * 2 + 1) cap *= 2;
    tok->merges = aha_malloc(cap * sizeof *tok->merges);
    AHA_CHECK_ALLOC(tok->merges);
    for (size_t i = 0; i < cap; i++) tok->merges[i] = (MergeSlot){0, -1, -1};
    tok->merge_capacity = cap;
    tok->merge_count = 0;
    return 0;
}

/* A pair listed twice keeps its last rank, as the library's map build does. */
int tok_merges_put(AhaTokenizer *tok, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint64_t key = pair_key(left, right);
    size_t mask = tok->merge_capacity - 1;
    size_t i = merge_slot(key, tok->merge_capacity);
    while (tok->merges[i].rank >= 0 && tok->merges[i].key != key) i = (i + 1) & mask;
    if (tok->merges[i].rank < 0) tok->merge_count++;
    tok->merges[i] = (MergeSlot){key, rank, merged};
    AHA_REQUIRE(tok->merge_count * 2 <= tok->merge_capacity, "merge table overfull");
    return 0;
}

static const MergeSlot *merge_get(const AhaTokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = pair_key(left, right);
    size_t mask = tok->merge_capacity - 1;
    size_t i = merge_slot(key, tok->merge_capacity);
    while (tok->merges[i].rank >= 0) {
        if (tok->merges[i].key == key) return &tok->merges[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

/* ---------------------------------------------------------------- merge loop */

typedef struct {
    int32_t id;
    int32_t prev, next; /* symbol indices, -1 at the ends */
    int32_t alive;
} Symbol;

typedef struct {
    int32_t rank;
    int32_t pos;    /* left symbol */
    int32_t merged; /* expected result id, to recognise stale entries */
} Candidate;

static int candidate_before(const Candidate *a, const Candidate *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(Candidate *heap, size_t *n, Candidate c) {
    size_t i = (*n)++;
    heap[i] = c;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!candidate_before(&heap[i], &heap[parent])) break;
        Candidate t = heap[i];
        heap[i] = heap[parent];
        heap[parent] = t;
        i = parent;
    }
}

static Candidate heap_pop(Candidate *heap, size_t *n) {
    Candidate top = heap[0];
    heap[0] = heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < *n && candidate_before(&heap[l], &heap[best])) best = l;
        if (r < *n && candidate_before(&heap[r], &heap[best])) best = r;
        if (best == i) break;
        Candidate t = heap[i];
        heap[i] = heap[best];
        heap[best] = t;
        i = best;
    }
    return top;
}

static void consider_pair(const AhaTokenizer *tok, const Symbol *sym, int32_t pos,
                          Candidate *heap, size_t *heap_n) {
    int32_t next = sym[pos].next;
    if (next < 0) return;
    const MergeSlot *m = merge_get(tok, sym[pos].id, sym[next].id);
    if (m) heap_push(heap, heap_n, (Candidate){m->rank, pos, m->merged});
}

/* The merge loop proper; writes the resulting ids to out. */
static int bpe_merge(const AhaTokenizer *tok, const char *piece, size_t len, AhaTokenIds *out) {
    if (tok->ignore_merges) {
        /* Llama-3 style: a piece that is itself a token is taken whole. The vocabulary is
         * keyed by byte-level strings, so map the bytes first. */
        char *mapped = aha_malloc(len * 2 + 1);
        AHA_CHECK_ALLOC(mapped);
        size_t m = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t cp = tok_byte_to_codepoint((unsigned char)piece[i]);
            if (cp < 0x80) {
                mapped[m++] = (char)cp;
            } else {
                mapped[m++] = (char)(0xC0 | (cp >> 6));
                mapped[m++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        int32_t whole = tok_strmap_get(&tok->vocab, mapped, m);
        free(mapped);
        if (whole >= 0) return aha_token_ids_push(out, whole);
    }

    Symbol *sym = aha_malloc(len * sizeof *sym);              /* [len] */
    Candidate *heap = aha_malloc(len * 3 * sizeof *heap);      /* [3 len]: n-1 + 2 per merge */
    if (!sym || !heap) {
        free(sym);
        free(heap);
        return -1;
    }
    /* Initial symbols; bytes without a vocabulary entry become unk (fused when fuse_unk)
     * or are dropped when the model has no unk token, as in the library. */
    int32_t n = 0;
    int last_was_unk = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = tok->byte_id[(unsigned char)piece[i]];
        if (id < 0) {
            if (tok->unk_id < 0) continue;
            if (tok->fuse_unk && last_was_unk) continue;
            id = tok->unk_id;
            last_was_unk = 1;
        } else {
            last_was_unk = 0;
        }
        sym[n] = (Symbol){id, n - 1, n + 1, 1};
        n++;
    }
    if (n > 0) sym[n - 1].next = -1;

    size_t heap_n = 0;
    for (int32_t i = 0; i + 1 < n; i++) consider_pair(tok, sym, i, heap, &heap_n);
    while (heap_n > 0) {
        Candidate c = heap_pop(heap, &heap_n);
        Symbol *left = &sym[c.pos];
        if (!left->alive || left->next < 0) continue;
        Symbol *right = &sym[left->next];
        const MergeSlot *m = merge_get(tok, left->id, right->id);
        if (!m || m->merged != c.merged || m->rank != c.rank) continue; /* stale */
        left->id = c.merged;
        right->alive = 0;
        left->next = right->next;
        if (right->next >= 0) sym[right->next].prev = c.pos;
        if (left->prev >= 0) consider_pair(tok, sym, left->prev, heap, &heap_n);
        consider_pair(tok, sym, c.pos, heap, &heap_n);
    }
    int rc = 0;
    for (int32_t i = 0; i < n && rc == 0; i = sym[i].next) {
        rc = aha_token_ids_push(out, sym[i].id);
        if (sym[i].next < 0) break;
    }
    free(sym);
    free(heap);
    return rc;
}

#define CACHE_MAX_ENTRIES 100000
#define CACHE_MAX_PIECE 256

int tok_bpe_piece(const AhaTokenizer *tok, const char *piece, size_t len, AhaTokenIds *out) {
    if (len == 0) return 0;
    AhaTokenizer *mut = (AhaTokenizer *)tok; /* the cache is the one mutable part */
    int cacheable = len <= CACHE_MAX_PIECE;
    if (cacheable) {
        pthread_mutex_lock(&mut->cache_lock);
        int32_t at = tok_strmap_get(&mut->cache, piece, len);
        int rc = 0, hit = at >= 0;
        if (hit) {
            int32_t count = mut->cache_ids[at];
            for (int32_t i = 0; i < count && rc == 0; i++)
                rc = aha_token_ids_push(out, mut->cache_ids[at + 1 + i]);
        }
        pthread_mutex_unlock(&mut->cache_lock);
        if (hit) return rc;
    }
    size_t first = out->count;
    AHA_TRY(bpe_merge(tok, piece, len, out));
    if (!cacheable) return 0;

    size_t count = out->count - first;
    pthread_mutex_lock(&mut->cache_lock);
    int rc = 0;
    if (mut->cache.count >= CACHE_MAX_ENTRIES) { /* start over rather than grow forever */
        tok_strmap_free(&mut->cache);
        rc = tok_strmap_init(&mut->cache, 1024);
        mut->cache_ids_used = 0;
    }
    if (rc == 0 && mut->cache_ids_used + count + 1 > mut->cache_ids_cap) {
        size_t cap = mut->cache_ids_cap ? mut->cache_ids_cap * 2 : 65536;
        while (cap < mut->cache_ids_used + count + 1) cap *= 2;
        int32_t *ids = aha_realloc(mut->cache_ids, cap * sizeof *ids);
        if (ids) {
            mut->cache_ids = ids;
            mut->cache_ids_cap = cap;
        } else {
            rc = -1;
        }
    }
    if (rc == 0 && mut->cache_ids_used + count + 1 < INT32_MAX) {
        size_t at = mut->cache_ids_used;
        mut->cache_ids[at] = (int32_t)count;
        if (count) memcpy(mut->cache_ids + at + 1, out->ids + first, count * sizeof(int32_t));
        rc = tok_strmap_put(&mut->cache, piece, len, (int32_t)at);
        if (rc == 0) mut->cache_ids_used += count + 1;
    }
    pthread_mutex_unlock(&mut->cache_lock);
    return rc;
}

/* ---------------------------------------------------------------- id lists */

int aha_token_ids_push(AhaTokenIds *list, int32_t id) {
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 64;
        int32_t *ids = aha_realloc(list->ids, cap * sizeof *ids);
        AHA_CHECK_ALLOC(ids);
        list->ids = ids;
        list->capacity = cap;
    }
    list->ids[list->count++] = id;
    return 0;
}

void aha_token_ids_free(AhaTokenIds *list) {
    free(list->ids);
    list->ids = NULL;
    list->count = list->capacity = 0;
}
