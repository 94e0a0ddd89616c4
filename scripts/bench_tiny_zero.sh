#!/usr/bin/env bash
# The learning goals of the default recipe, measured (docs/tiny-zero.md): for each seed,
# GRPO from models/tiny-sum with recipes/tiny_zero.yaml, then, from its run.db, held-out
# accuracy (greedy and mean@4 at T=1) at each evaluation with the wall time spent so far,
# when the goals (T=1 >= 0.90, greedy >= 0.95) were first reached, and how the share of
# completions that reason in <think> and their length changed.
# Usage: scripts/bench_tiny_zero.sh [SEED...]   (default: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
seeds=("$@")
[[ ${#seeds[@]} -gt 0 ]] || seeds=(1 2 3)
out=runs/bench_tiny_zero-$(date +%Y%m%d-%H%M%S)-$$
build/aha data gen sum --n 30000 --eval-n 500 --seed 1 --out-dir "$out/data" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "base model (models/tiny-sum) on the same 200 held-out prompts:"
build/aha eval --model models/tiny-sum --data "$out/data/eval.jsonl" --template plain --limit 200 \
  --k 4 --max-new-tokens 64 | sed 's/^/  /'
for seed in "${seeds[@]}"; do
  run=$out/seed$seed
  start=$(date +%s)
  build/aha train recipes/tiny_zero.yaml --set "data.train=$out/data/train.jsonl" \
    --set "data.eval=$out/data/eval.jsonl" --set "run.output_dir=$run" --set "run.seed=$seed" > "$run.log"
  wall=$(( $(date +%s) - start ))
  db=$run/run.db
  echo "seed $seed: $(wc -l < "$run.log") progress lines, ${wall} s wall in all"
  echo "  step  greedy  mean@4(T=1)  wall_s  think  len"
  sqlite3 -separator ' ' "$db" "
    SELECT printf('  %4d  %6.3f  %11.3f  %6.1f  %5.2f  %4.1f', e.step + 1, e.accuracy, e.mean_at_k,
           (SELECT sum(t_step) FROM steps s WHERE s.step <= e.step),
           (SELECT avg(think_frac) FROM steps s WHERE s.step BETWEEN e.step - 4 AND e.step),
           (SELECT avg(len_mean) FROM steps s WHERE s.step BETWEEN e.step - 4 AND e.step))
    FROM evals e ORDER BY e.step;"
  sqlite3 -separator ' ' "$db" "
    SELECT '  goals (T=1 >= 0.90 and greedy >= 0.95) first met: ' || coalesce(
      (SELECT 'step ' || (e.step + 1) || ' after ' || printf('%.0f', (SELECT sum(t_step) FROM steps s WHERE s.step <= e.step)) || ' s'
       FROM evals e WHERE e.mean_at_k >= 0.90 AND e.accuracy >= 0.95 ORDER BY e.step LIMIT 1), 'not within the run');
    SELECT printf('  think share %.2f -> %.2f, mean length %.1f -> %.1f tokens (first 5 steps -> last 10)',
      (SELECT avg(think_frac) FROM steps WHERE step < 5), (SELECT avg(think_frac) FROM steps WHERE step >= (SELECT max(step) - 9 FROM steps)),
      (SELECT avg(len_mean) FROM steps WHERE step < 5), (SELECT avg(len_mean) FROM steps WHERE step >= (SELECT max(step) - 9 FROM steps)));"
done
