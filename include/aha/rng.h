/* Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as
 * easy as 1, 2, 3", SC'11; the Random123 reference and its known-answer vectors).
 *
 * A counter-based generator is a keyed bijection: block = philox(counter, key). Any number
 * is addressed by (seed, stream, position) and computed directly, so a value never depends
 * on how many other numbers were drawn before it, on the batch a sequence happened to be in,
 * or on the number of threads. Mapping used throughout aha:
 *     key     = { seed low 32 bits, seed high 32 bits }
 *     counter = { position low 32, position high 32, stream low 32, stream high 32 }
 * Each block gives 4 uint32 words. Streams in use (document new ones here):
 *     sampler: stream = aha_rng_stream(prompt id, sample index), position = decode step
 *              (see aha/sampler.h), seed = the request's seed.
 * The whole state of a sequential generator is its (seed, stream, position) triple plus a
 * word index; saving those four numbers is enough to resume it exactly. */
#ifndef AHA_RNG_H
#define AHA_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One Philox4x32-10 block: out = philox(ctr, key). Pure function. */
void aha_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The block at (seed, stream, position), in the mapping above. */
void aha_rng_block(uint64_t seed, uint64_t stream, uint64_t position, uint32_t out[4]);

/* A stream id from two 32-bit coordinates: (major << 32) | minor. */
static inline uint64_t aha_rng_stream(uint32_t major, uint32_t minor) {
    return ((uint64_t)major << 32) | minor;
}

/* Uniform floats from raw words. uniform24: 24 random bits -> [0, 1), exactly representable
 * in float. uniform53: 53 bits from two words -> [0, 1) as a double. */
static inline float aha_rng_word_to_float(uint32_t word) {
    return (float)(word >> 8) * (1.0f / 16777216.0f);
}
static inline double aha_rng_words_to_double(uint32_t hi, uint32_t lo) {
    uint64_t bits = ((uint64_t)(hi >> 5) << 26) | (lo >> 6); /* 27 + 26 = 53 bits */
    return (double)bits * (1.0 / 9007199254740992.0);
}

/* A sequential generator over one stream: position advances by one block every 4 words. */
typedef struct AhaRng {
    uint64_t seed;
    uint64_t stream;
    uint64_t position; /* the block the next word comes from */
    uint32_t word;     /* 0..3: next word within that block */
} AhaRng;

void aha_rng_init(AhaRng *rng, uint64_t seed, uint64_t stream);
uint32_t aha_rng_u32(AhaRng *rng);
uint64_t aha_rng_u64(AhaRng *rng);
/* [0, 1), 24 random bits */
float aha_rng_float(AhaRng *rng);
/* [0, 1), 53 random bits */
double aha_rng_double(AhaRng *rng);
/* Uniform integer in [0, n) without modulo bias (n >= 1). */
uint64_t aha_rng_below(AhaRng *rng, uint64_t n);
/* Standard normal (Box-Muller on two doubles; consumes 4 words). */
double aha_rng_normal(AhaRng *rng);

#ifdef __cplusplus
}
#endif

#endif
