#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_*.c: safetensors header, config.json,
# tokenizer.json, recipe YAML with --set, JSONL data rows, the math answer parser, plug-in
# replies) with libFuzzer under ASan+UBSan, SECONDS each (default 60), one after another.
# Starts from the committed seeds in fuzz/corpus/TARGET; inputs that reach new code are kept
# in build-fuzz/corpus/TARGET (reused by the next run), crashes go to build-fuzz/crashes/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (exit 1 when a target crashed)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $# -gt 0 ]] && shift
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Asan -DAHA_FUZZ=ON -DAHA_NATIVE=OFF -DAHA_CUDA=OFF >/dev/null
# clang's notes on OpenMP loops it did not vectorize are noise here: the build log is shown
# only when the build fails
if ! cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}" >build-fuzz/build.log 2>&1; then
  cat build-fuzz/build.log
  exit 1
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
  log="build-fuzz/$t.log"
  # allocator_may_return_null: a size read from the input that is too big to allocate must
  # be an error of the parser, not an abort of the allocator
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=1 \
     "build-fuzz/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="build-fuzz/crashes/$t/" "build-fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log and build-fuzz/crashes/$t/)"
    status=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  echo "$t: ${execs:-?} executions, coverage ${cov:-?} edges, $result"
done
exit $status
