/* config.json -> AhaModelConfig: every accepted config is within the bounds of
 * include/aha/model.h and counts its parameters without overflow. */
#include "aha/model.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("config.json", data, size);
    AhaModelConfig cfg;
    if (aha_model_config_load(&cfg, path) != 0) return 0;
    if (cfg.num_experts > AHA_MAX_EXPERTS || cfg.max_position_embeddings <= 0) abort();
    (void)aha_model_config_num_params(&cfg);
    (void)aha_model_config_active_params(&cfg);
    return 0;
}
