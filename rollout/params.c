/* Sampling parameters: defaults, checks, names of stop reasons. */
#include <math.h>
#include <string.h>

#include "aha/error.h"
#include "aha/sampler.h"

const char *aha_stop_reason_name(AhaStopReason reason) {
    switch (reason) {
    case AHA_STOP_EOS: return "eos";
    case AHA_STOP_STRING: return "stop";
    case AHA_STOP_LENGTH: return "length";
    case AHA_STOP_NONE: break;
    }
    return "none";
}

void aha_sampling_params_default(AhaSamplingParams *params) {
    memset(params, 0, sizeof *params);
    params->temperature = 1.0f;
    params->top_p = 1.0f;
    params->top_k = 0;
    params->max_new_tokens = 256;
}

int aha_sampling_params_check(const AhaSamplingParams *params) {
    AHA_REQUIRE(isfinite(params->temperature) && params->temperature >= 0.0f,
                "temperature: expected a number >= 0 (0 = greedy), got %g",
                (double)params->temperature);
    AHA_REQUIRE(isfinite(params->top_p) && params->top_p > 0.0f && params->top_p <= 1.0f,
                "top_p: expected a number in (0, 1], got %g", (double)params->top_p);
    AHA_REQUIRE(params->top_k >= 0, "top_k: expected an integer >= 0 (0 = off), got %d",
                params->top_k);
    AHA_REQUIRE(params->temperature > 0.0f || (params->top_p == 1.0f && params->top_k == 0),
                "temperature 0 means greedy decoding, which top_p %g / top_k %d would not "
                "affect: set top_p 1 and top_k 0, or a temperature > 0",
                (double)params->top_p, params->top_k);
    AHA_REQUIRE(params->max_new_tokens >= 1, "max_new_tokens: expected an integer >= 1, got %d",
                params->max_new_tokens);
    AHA_REQUIRE(params->n_eos_ids >= 0 && (params->n_eos_ids == 0 || params->eos_ids != NULL),
                "eos_ids: %d ids given without an array", params->n_eos_ids);
    for (int i = 0; i < params->n_eos_ids; i++)
        AHA_REQUIRE(params->eos_ids[i] >= 0, "eos_ids[%d]: expected a token id >= 0, got %d", i,
                    (int)params->eos_ids[i]);
    AHA_REQUIRE(params->n_stop_strings >= 0 &&
                    (params->n_stop_strings == 0 || params->stop_strings != NULL),
                "stop_strings: %d strings given without an array", params->n_stop_strings);
    for (int i = 0; i < params->n_stop_strings; i++)
        AHA_REQUIRE(params->stop_strings[i] != NULL && params->stop_strings[i][0] != '\0',
                    "stop_strings[%d]: expected a non-empty string", i);
    return 0;
}
