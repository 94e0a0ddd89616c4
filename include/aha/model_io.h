/* Hugging Face model directories: load config.json + safetensors into an AhaModel, and save
 * a model back as a directory that transformers loads.
 *
 * Accepted tensor layouts for the experts of a MoE layer:
 *   per expert  model.layers.{l}.mlp.experts.{e}.{gate,up,down}_proj.weight  (hub files;
 *               Mixtral: model.layers.{l}.block_sparse_moe.experts.{e}.{w1,w3,w2}.weight and
 *               block_sparse_moe.gate.weight for the router)
 *   fused       model.layers.{l}.mlp.experts.gate_up_proj [E, 2I, H] (gate rows first) and
 *               model.layers.{l}.mlp.experts.down_proj [E, H, I] (transformers v5 in memory)
 * Weights may be F32, BF16 or F16, in one file or sharded with model.safetensors.index.json.
 * Loading maps each file and converts every tensor once into the model's float32 arena,
 * dropping the mapped pages as it goes, so the peak memory is the arena plus one tensor. */
#ifndef AHA_MODEL_IO_H
#define AHA_MODEL_IO_H

#include <stddef.h>

#include "aha/model.h"
#include "aha/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AHA_EXPERT_LAYOUT_PER_EXPERT,
    AHA_EXPERT_LAYOUT_FUSED,
} AhaExpertLayout;

/* What a loaded model came from, so that saving can keep it. */
typedef struct {
    char dir[4096];           /* the directory it was loaded from; "" for none */
    AhaDtype dtype;           /* the dtype of most of its weight bytes: F32, BF16 or F16 */
    AhaExpertLayout layout;   /* of its MoE layers (per expert when it has none) */
    size_t n_files;           /* safetensors files read */
} AhaModelSource;

/* Loads dir/config.json and every weight. Every tensor the config implies must be present
 * with its shape, and every tensor in the files must be used (rotary inv_freq buffers, and
 * lm_head.weight of a tied model, are ignored); otherwise the error names the missing,
 * unexpected or misshapen tensors. source (may be NULL) receives what was read. */
AhaModel *aha_model_load_dir(const char *dir, AhaModelSource *source);

/* Use the source's dtype: BF16 when it was BF16, else F32 (F16 is widened, not narrowed). */
#define AHA_DTYPE_AS_SOURCE AHA_DTYPE_COUNT

/* Writes dir/config.json (with torch_dtype) and dir/model.safetensors in dtype (F32, BF16 or
 * AHA_DTYPE_AS_SOURCE), each atomically, creating dir if needed. Names and expert layout
 * follow source (NULL: per expert, the model type's hub names). A stale
 * model.safetensors.index.json and its shards in dir are removed so that the directory holds
 * one model. Tokenizer and generation files (tokenizer.json, tokenizer_config.json,
 * generation_config.json, special_tokens_map.json, vocab.json, merges.txt) present in
 * source->dir are copied. */
int aha_model_save_dir(const AhaModel *m, const char *dir, const AhaModelSource *source,
                       AhaDtype dtype);

/* The name a tensor of the model's table has in a per-expert hub file (differs only for
 * Mixtral's block_sparse_moe names). out holds at least 128 bytes. */
int aha_checkpoint_tensor_name(const AhaModelConfig *cfg, const char *model_name, char *out,
                               size_t cap);

#ifdef __cplusplus
}
#endif

#endif
