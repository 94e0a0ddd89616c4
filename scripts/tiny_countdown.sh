#!/usr/bin/env bash
# R1-Zero in miniature on Countdown, the whole pipeline from nothing (docs/tiny-zero.md,
# Countdown):
#   1. data: Countdown with three numbers of up to two digits, train and a held-out eval split
#   2. a pre-training corpus from the train split, 16% worked out in <think> (aha data corpus)
#   3. a character tokenizer and the tiny MoE config (recipes/tiny/countdown_config.json)
#   4. pre-training of the base model (aha pretrain recipes/tiny_countdown_pretrain.yaml)
#   5. held-out accuracy of the base with the countdown reward (aha eval --reward countdown)
#   6. GRPO from that base (aha train recipes/tiny_countdown.yaml), then aha report
# Usage: scripts/tiny_countdown.sh [OUT_DIR] [SEED] [PRETRAIN_STEPS] [GRPO_STEPS]
#   (defaults: runs/tiny_countdown-<time>, 1, the recipes' 600 and 100)
# The data seed stays 1; SEED seeds pre-training and GRPO.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/tiny_countdown-$(date +%Y%m%d-%H%M%S)}
seed=${2:-1}
pretrain_steps=${3:-}
grpo_steps=${4:-}
aha=build/aha
scripts/build.sh
mkdir -p "$out/init"
start=$(date +%s)
$aha data gen countdown --operands 3 --digits 2 --n 30000 --eval-n 500 --seed 1 --out-dir "$out/data"
$aha data corpus --task "$out/data/train.jsonl" --think-share 0.16 --seed 1 --out "$out/data/corpus.jsonl"
$aha data tokenizer --charset "0123456789+-*/()= makefro" --out-dir "$out/init"
cp recipes/tiny/countdown_config.json "$out/init/config.json"
$aha pretrain recipes/tiny_countdown_pretrain.yaml --set "model.path=$out/init" \
  --set "pretrain.corpus=$out/data/corpus.jsonl" --set "run.output_dir=$out/base" --set "run.seed=$seed" \
  ${pretrain_steps:+--set "pretrain.steps=$pretrain_steps"}
pretrained=$(date +%s)
$aha eval --model "$out/base" --data "$out/data/eval.jsonl" --reward countdown --template plain \
  --limit 200 -k 4 --max-new-tokens 96 --max-prompt-tokens 32 --seed "$seed"
$aha train recipes/tiny_countdown.yaml --set "model.path=$out/base" --set "data.train=$out/data/train.jsonl" \
  --set "data.eval=$out/data/eval.jsonl" --set "run.output_dir=$out/grpo" --set "run.seed=$seed" \
  ${grpo_steps:+--set "run.steps=$grpo_steps"}
done_at=$(date +%s)
$aha report "$out/grpo"
echo "tiny_countdown: pre-training $((pretrained - start)) s, GRPO $((done_at - pretrained)) s, total $((done_at - start)) s"
