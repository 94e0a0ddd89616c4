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
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DAHA_NATIVE=OFF -DAHA_WERROR=ON >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== $type tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@"
  if [ "$type" = Release ]; then scripts/check_install.sh "$dir"; fi
done
