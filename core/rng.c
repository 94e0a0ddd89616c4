/* Philox4x32-10 and a sequential generator over it (see aha/rng.h). */
#include "aha/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t product = (uint64_t)a * b;
    *hi = (uint32_t)(product >> 32);
    return (uint32_t)product;
}

void aha_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key schedule bumps before every round but the first */
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, x0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, x2, &hi1);
        x0 = hi1 ^ x1 ^ k0;
        x1 = lo1;
        x2 = hi0 ^ x3 ^ k1;
        x3 = lo0;
    }
    out[0] = x0;
    out[1] = x1;
    out[2] = x2;
    out[3] = x3;
}

void aha_rng_block(uint64_t seed, uint64_t stream, uint64_t position, uint32_t out[4]) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)position, (uint32_t)(position >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    aha_philox4x32_10(ctr, key, out);
}

void aha_rng_init(AhaRng *rng, uint64_t seed, uint64_t stream) {
    rng->seed = seed;
    rng->stream = stream;
    rng->position = 0;
    rng->word = 0;
}

uint32_t aha_rng_u32(AhaRng *rng) {
    /* Recomputing the block per word keeps the state four plain numbers; Philox is cheap
     * next to anything that consumes random numbers here. */
    uint32_t block[4];
    aha_rng_block(rng->seed, rng->stream, rng->position, block);
    uint32_t value = block[rng->word];
    if (++rng->word == 4) {
        rng->word = 0;
        rng->position++;
    }
    return value;
}

uint64_t aha_rng_u64(AhaRng *rng) {
    uint64_t hi = aha_rng_u32(rng);
    return (hi << 32) | aha_rng_u32(rng);
}

float aha_rng_float(AhaRng *rng) { return aha_rng_word_to_float(aha_rng_u32(rng)); }

double aha_rng_double(AhaRng *rng) {
    uint32_t hi = aha_rng_u32(rng);
    return aha_rng_words_to_double(hi, aha_rng_u32(rng));
}

uint64_t aha_rng_below(AhaRng *rng, uint64_t n) {
    if (n <= 1) return 0;
    /* Rejection: accept draws below the largest multiple of n that fits in 2^64. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    for (;;) {
        uint64_t x = aha_rng_u64(rng);
        if (x < limit) return x % n;
    }
}

double aha_rng_normal(AhaRng *rng) {
    double u1 = aha_rng_double(rng);
    double u2 = aha_rng_double(rng);
    /* 1 - u1 lies in (0, 1], so the log is finite. */
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}
