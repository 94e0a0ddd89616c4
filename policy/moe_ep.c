/* Expert parallel for the MoE block (docs/distributed.md): the ranks of an expert group
 * hold the same tokens and each runs only its own experts' slots; the slots of an expert
 * are contiguous (routing sorts them by expert), so one all-gather of each member's block
 * of rows gives every member every expert's rows, combined then in the usual fixed order.
 * With an expert group of one (the default) every expert is owned and nothing moves. */
#include <stddef.h>

#include "aha/dist.h"
#include "model_internal.h"

int moe_ep_first_expert(int E) { return (int)aha_dist_share_lo((size_t)E, aha_dist_expert_rank(), aha_dist_expert_size()); }

int moe_ep_end_expert(int E) {
    return (int)aha_dist_share_lo((size_t)E, aha_dist_expert_rank() + 1, aha_dist_expert_size());
}

void moe_ep_share_rows(float *rows, const int *expert_off, int E, int width) {
    int n = aha_dist_expert_size();
    if (n == 1) return;
    size_t counts[1024];
    for (int r = 0; r < n && r < 1024; r++) {
        int lo = expert_off[aha_dist_share_lo((size_t)E, r, n)];
        int hi = expert_off[aha_dist_share_lo((size_t)E, r + 1, n)];
        counts[r] = (size_t)(hi - lo) * (size_t)width;
    }
    aha_dist_expert_allgather_float(rows, counts);
}
