#!/usr/bin/env bash
# The default recipe: R1-Zero in miniature (docs/tiny-zero.md). Builds aha, generates the
# sum data set (the same seed-1 split the committed base model was pre-trained on), runs
# GRPO from models/tiny-sum with recipes/tiny_zero.yaml into a fresh run directory, and
# writes its report. Usage: scripts/run-default.sh [extra aha train options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
run=runs/tiny_zero/grpo-$(date +%Y%m%d-%H%M%S)
build/aha data gen sum --n 30000 --eval-n 500 --seed 1 --out-dir runs/tiny_zero/data
build/aha train recipes/tiny_zero.yaml --set "run.output_dir=$run" "$@"
build/aha report "$run"
echo "run: $run (aha inspect $run; sqlite3 $run/run.db)"
