#!/usr/bin/env bash
# Data-parallel throughput of aha train: one process vs two (mpirun -np 2) on the bench
# config of docs/model.md (qwen3_moe, hidden 256, 4 layers, 8 heads / 4 kv, head_dim 32,
# 8 experts top-2 of width 256), random init, with the 22-token tokenizer of the trainer
# tests; 4 prompts x 8 samples x 64 new tokens per step, grad_accum 2 (one micro-batch per
# process with two). Prints steps/s and the share of a step rank 0 spends in collectives.
# Usage: scripts/bench_distributed.sh [BUILD_DIR] [STEPS]   (docs/distributed.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/model"
cp tests/fixtures/rl/tiny/tokenizer.json tests/fixtures/rl/tiny/tokenizer_config.json "$tmp/model/"
sed -e 's/"hidden_size": 32/"hidden_size": 256/' -e 's/"num_hidden_layers": 2/"num_hidden_layers": 4/' \
    -e 's/"num_attention_heads": 4/"num_attention_heads": 8/' -e 's/"num_key_value_heads": 2/"num_key_value_heads": 4/' \
    -e 's/"head_dim": 8/"head_dim": 32/' -e 's/"intermediate_size": 48/"intermediate_size": 1024/' \
    -e 's/"num_experts": 4/"num_experts": 8/' -e 's/"moe_intermediate_size": 16/"moe_intermediate_size": 256/' \
    -e 's/"initializer_range": 0.2/"initializer_range": 0.02/' \
    tests/fixtures/rl/tiny/config.json > "$tmp/model/config.json"
sets=(--set model.path="$tmp/model" --set rollout.prompts_per_step=4 --set rollout.group_size=8
      --set rollout.max_new_tokens=64 --set run.steps="$steps" --set run.eval_every=0
      --set run.checkpoint_every=0 --set optim.grad_accum=2)
mpirun=(mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x OPENBLAS_NUM_THREADS)
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
report() { # label, output file
  local done comm
  done=$(grep 'aha train: done' "$2" | sed -E 's/.*done \(([0-9]+) steps, ([0-9.]+) s\).*/\1 \2/')
  comm=$(grep 'in collectives' "$2" | sed -E 's/.*spent ([0-9.]+) s of ([0-9.]+) s in collectives \(([0-9.]+)%\).*/, collectives \3% of rank 0'"'"'s time/' || true)
  awk -v label="$1" -v d="$done" -v c="$comm" 'BEGIN { split(d, a, " "); printf "%-42s %d steps in %6.2f s: %.3f steps/s%s\n", label, a[1], a[2], a[1] / a[2], c }'
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=2 "$build/aha" train tests/fixtures/rl/tiny.yaml --set run.output_dir="$tmp/one2" "${sets[@]}" > "$tmp/one2.out"
report "1 process x 2 threads" "$tmp/one2.out"
OMP_NUM_THREADS=1 "$build/aha" train tests/fixtures/rl/tiny.yaml --set run.output_dir="$tmp/one1" "${sets[@]}" > "$tmp/one1.out"
report "1 process x 1 thread" "$tmp/one1.out"
OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 "$build/aha" train tests/fixtures/rl/tiny.yaml --set run.output_dir="$tmp/two1" "${sets[@]}" > "$tmp/two1.out"
report "2 processes x 1 thread (mpirun -np 2)" "$tmp/two1.out"
OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 "$build/aha" train tests/fixtures/rl/tiny.yaml --set run.output_dir="$tmp/two1z" "${sets[@]}" --set distributed.zero1=true > "$tmp/two1z.out"
report "2 processes x 1 thread, ZeRO-1" "$tmp/two1z.out"
OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 "$build/aha" train tests/fixtures/rl/tiny.yaml --set run.output_dir="$tmp/two1e" "${sets[@]}" --set distributed.expert_parallel=2 > "$tmp/two1e.out"
report "2 processes x 1 thread, expert_parallel 2" "$tmp/two1e.out"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
