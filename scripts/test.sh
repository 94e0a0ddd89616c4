#!/usr/bin/env bash
# Builds aha twice (Release, and Asan = AddressSanitizer + UndefinedBehaviorSanitizer) and
# runs the whole CTest suite in both, with compiler warnings as errors (they print on stderr).
# The Release tree is also installed and linked from an outside project (check_install.sh).
# Usage: scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
for type in Release Asan; do
  dir=build-test-$(echo "$type" | tr 'A-Z' 'a-z')
  # The CUDA backend (when nvcc is here) is compiled in the Release tree only, nvcc warnings as
  # errors: its device code cannot be sanitized or run here, and the Asan tree then checks
  # that aha builds and passes without it.
  cuda=OFF
  if [ "$type" = Release ] && { command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
    cuda=ON
    command -v nvcc >/dev/null || export CUDACXX=/usr/local/cuda/bin/nvcc
  fi
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DAHA_NATIVE=OFF -DAHA_WERROR=ON \
    -DAHA_CUDA="$cuda" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== $type tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@"
  if [ "$type" = Release ]; then scripts/check_install.sh "$dir"; fi
done
