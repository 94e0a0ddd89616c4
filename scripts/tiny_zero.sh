#!/usr/bin/env bash
# R1-Zero in miniature, the whole pipeline from nothing (docs/tiny-zero.md):
#   1. data: sums of three 3-digit numbers, train and a held-out eval split (aha data gen)
#   2. a pre-training corpus from the train split, 25% worked out in <think> (aha data corpus)
#   3. a character tokenizer and the tiny MoE config (aha data tokenizer, recipes/tiny/)
#   4. pre-training of the base model (aha pretrain recipes/tiny_sum_pretrain.yaml)
#   5. GRPO from that base (aha train recipes/tiny_zero.yaml), then aha report
# Usage: scripts/tiny_zero.sh [OUT_DIR] [SEED]   (defaults: runs/tiny_zero-<time>, 1)
# The data seed stays 1 (the committed base model was pre-trained on that split); SEED
# seeds pre-training and GRPO.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/tiny_zero-$(date +%Y%m%d-%H%M%S)}
seed=${2:-1}
aha=build/aha
scripts/build.sh
mkdir -p "$out/init"
start=$(date +%s)
$aha data gen sum --n 30000 --eval-n 500 --seed 1 --out-dir "$out/data"
$aha data corpus --task "$out/data/train.jsonl" --think-share 0.25 --seed 1 --out "$out/data/corpus.jsonl"
$aha data tokenizer --charset "0123456789+= " --out-dir "$out/init"
cp recipes/tiny/config.json "$out/init/config.json"
$aha pretrain recipes/tiny_sum_pretrain.yaml --set "model.path=$out/init" \
  --set "pretrain.corpus=$out/data/corpus.jsonl" --set "run.output_dir=$out/base" --set "run.seed=$seed"
pretrained=$(date +%s)
$aha train recipes/tiny_zero.yaml --set "model.path=$out/base" --set "data.train=$out/data/train.jsonl" \
  --set "data.eval=$out/data/eval.jsonl" --set "run.output_dir=$out/grpo" --set "run.seed=$seed"
done_at=$(date +%s)
$aha report "$out/grpo"
echo "tiny_zero: pre-training $((pretrained - start)) s, GRPO $((done_at - pretrained)) s, total $((done_at - start)) s"
