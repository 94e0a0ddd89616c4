/* The resumable order of training prompts: a fresh Philox-driven permutation per epoch. */
#include <stdlib.h>

#include "aha/error.h"
#include "aha/rng.h"
#include "aha/trainer.h"

int aha_data_order_init(AhaDataOrder *o, int64_t n_rows, uint64_t seed, int shuffle) {
    *o = (AhaDataOrder){.n_rows = n_rows, .seed = seed, .shuffle = shuffle, .perm_epoch = -1};
    AHA_REQUIRE(n_rows >= 1, "data order: the data set has no rows");
    return 0;
}

static int make_perm(AhaDataOrder *o) {
    if (!o->perm) {
        o->perm = aha_malloc((size_t)o->n_rows * sizeof *o->perm);
        AHA_CHECK_ALLOC(o->perm);
    }
    for (int64_t i = 0; i < o->n_rows; i++) o->perm[i] = i;
    if (o->shuffle) {
        AhaRng rng;
        aha_rng_init(&rng, o->seed, aha_rng_stream(AHA_DATA_ORDER_STREAM, (uint32_t)o->epoch));
        for (int64_t i = o->n_rows - 1; i > 0; i--) {
            int64_t j = (int64_t)aha_rng_below(&rng, (uint64_t)i + 1);
            int64_t t = o->perm[i];
            o->perm[i] = o->perm[j];
            o->perm[j] = t;
        }
    }
    o->perm_epoch = o->epoch;
    return 0;
}

int64_t aha_data_order_next(AhaDataOrder *o) {
    if (o->position >= o->n_rows) {
        o->epoch++;
        o->position = 0;
    }
    if (o->perm_epoch != o->epoch && make_perm(o) != 0) return -1;
    return o->perm[o->position++];
}

int aha_data_order_seek(AhaDataOrder *o, int64_t epoch, int64_t position) {
    AHA_REQUIRE(epoch >= 0 && position >= 0 && position <= o->n_rows,
                "data order: position %lld of epoch %lld is outside a data set of %lld rows "
                "(did data.train change since the checkpoint?)",
                (long long)position, (long long)epoch, (long long)o->n_rows);
    o->epoch = epoch;
    o->position = position;
    return 0;
}

void aha_data_order_free(AhaDataOrder *o) {
    free(o->perm);
    o->perm = NULL;
    o->perm_epoch = -1;
}
