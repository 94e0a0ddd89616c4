/* Supervised pre-training (`aha pretrain`): the next-token loss over the documents of a
 * JSONL corpus, packed as whole documents into each batch (no padding, no attention across
 * documents), AdamW with the recipe's schedule, and the result saved as a Hugging Face model
 * directory with the tokenizer beside it. This is how the toolkit makes its own tiny base
 * models (docs/tiny-zero.md). */
#ifndef AHA_PRETRAIN_H
#define AHA_PRETRAIN_H

#include <stdio.h>

#include "aha/recipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs recipe.pretrain: model from model.path (model.init random: fresh weights of
 * model.path/config.json; pretrained: its weights), tokenizer from model.path, documents
 * from pretrain.corpus (each line an object with a string "text"; the tokenizer's eos is
 * appended), pretrain.steps steps of about pretrain.batch_seqs x pretrain.seq_len tokens,
 * and saves the model into run.output_dir. Progress lines go to progress (may be NULL). */
int aha_pretrain_run(const AhaRecipe *recipe, FILE *progress);

#ifdef __cplusplus
}
#endif

#endif
