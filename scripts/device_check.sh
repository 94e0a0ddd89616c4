#!/usr/bin/env bash
# The GPU check in one command, for the H200 machine (docs/gpu.md has the exact call):
# unpacks .device/ (scripts/device_prepare.sh, made on the CPU machine) into a prefix,
# builds aha with CUDA (Release) against that prefix alone, runs the op tests on CUDA
# against the CPU references, compares the whole model with the CPU on the parity fixtures
# (tests/fixtures/policy), times the bf16 GEMM (ours and PyTorch's), the grouped expert GEMM
# and attention, and prints one table last. Full logs go to $OUT (at most 5 files).
# Budget: 450 s in all (AHA_DEVICE_BUDGET), every step cut to what is left. Warnings are not
# errors here (another compiler version may warn where CI's does not; CI keeps them errors).
#
#   scripts/device_check.sh             on the GPU machine: -DAHA_CUDA=ON, GPU checks
#   scripts/device_check.sh --cpu-only  anywhere: the same build (CUDA compiled when nvcc is
#                                       there), the CPU half of the table, GPU rows "skipped"
set -uo pipefail
cd "$(dirname "$0")/.."
mode=gpu
case "${1:-}" in
  --cpu-only) mode=cpu ;;
  "") ;;
  *) echo "usage: scripts/device_check.sh [--cpu-only]" >&2; exit 2 ;;
esac
start=$(date +%s)
deadline=$(( start + ${AHA_DEVICE_BUDGET:-450} ))
build=${AHA_DEVICE_BUILD:-build-device}
out=${OUT:-$PWD/$build/out}
mkdir -p "$out"
: >"$out/build.log"; : >"$out/checks.log"; : >"$out/bench.log"
status=0

# step LOG NAME SECONDS CMD...: runs CMD with a time limit (never past the deadline),
# appending its output to $out/LOG; prints one line; returns CMD's exit code.
step() {
  local log=$1 name=$2 limit=$3 t0 rc left
  shift 3
  t0=$(date +%s)
  left=$(( deadline - t0 ))
  (( left < limit )) && limit=$left
  if (( limit < 5 )); then
    echo "-- $name: skipped (time budget spent)" | tee -a "$out/$log"
    return 124
  fi
  echo "==== $name (limit ${limit}s): $*" >>"$out/$log"
  timeout "$limit" "$@" >>"$out/$log" 2>&1
  rc=$?
  echo "-- $name: exit $rc, $(( $(date +%s) - t0 )) s" | tee -a "$out/$log"
  return $rc
}

# ---- environment: the unpacked prefix and nothing else for pkg-config -------------------
prefix=${AHA_DEVICE_PREFIX:-/tmp/aha-prefix}
if ! env_lines=$(scripts/device_unpack.sh "$prefix" 2>>"$out/build.log"); then
  echo "device_check: unpacking .device failed (carry .device, made by scripts/device_prepare.sh)" >&2
  exit 1
fi
eval "$env_lines"
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
# aha's programs load the prefix's libraries; the toolchain and python keep the system's
run=(env "LD_LIBRARY_PATH=$AHA_DEVICE_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
{
  echo "host $(uname -n) $(uname -r), $(nproc) cores, mode $mode"
  command -v nvidia-smi >/dev/null && nvidia-smi
  command -v nvcc >/dev/null && nvcc --version | tail -2
  cmake --version | head -1
  echo "$env_lines"
  echo "libraries for aha's programs: $AHA_DEVICE_LIBS"
} >"$out/gpu.txt" 2>&1

# ---- build ----------------------------------------------------------------------------------
cuda=ON
[ "$mode" = cpu ] && cuda=AUTO
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
built=1
step build.log configure 120 cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DAHA_CUDA=$cuda -DAHA_MPI=OFF -DAHA_WERROR=OFF -DCMAKE_PREFIX_PATH="$prefix/usr" \
  -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG" -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$AHA_DEVICE_LIBS" \
  || built=0
if (( built )); then
  step build.log build 300 cmake --build "$build" -j "$(nproc)" || built=0
fi
(( built )) || status=1

t=$build/tests
if (( built )); then
  step checks.log version 30 "${run[@]}" "$build/aha" version
  # every library must come from the prefix (or be a system library the image has)
  step checks.log libraries 30 "${run[@]}" sh -c "ldd '$build/aha' | grep -E 'yaml|pcre2|sqlite|jansson|openblas|blas|gfortran|utf8proc|seccomp|cuda|cublas'"
  step checks.log cuda_math 60 "${run[@]}" "$t/kernels/test_cuda_math" || status=1
  step checks.log cuda_ops 120 "${run[@]}" "$t/kernels/test_cuda_ops" || status=1
  if [ -x "$t/kernels/test_backend_ops" ]; then
    step checks.log backend_ops 120 "${run[@]}" "$t/kernels/test_backend_ops" || status=1
  fi
  step checks.log parity_cpu 60 "${run[@]}" "$t/policy/test_parity" || status=1
  if grep -q 'getenv("AHA_BACKEND")' tests/policy/test_parity.c 2>/dev/null; then
    step checks.log parity_cuda 90 "${run[@]}" AHA_BACKEND=cuda "$t/policy/test_parity" || status=1
  else
    echo "-- parity_cuda: not run (tests/policy/test_parity.c does not pick its backend from AHA_BACKEND yet)" \
      | tee -a "$out/checks.log"
  fi
  if [ -x "$build/aha_cuda_bench" ]; then
    step bench.log cuda_bench 120 "${run[@]}" "$build/aha_cuda_bench" || status=1
  else
    echo "bench skipped: aha_cuda_bench not built (no CUDA)" >>"$out/bench.log"
  fi
fi
if command -v python3 >/dev/null; then
  step bench.log torch_bench 90 env PYTHONUNBUFFERED=1 python3 scripts/torch_bench.py
fi

# ---- the table ---------------------------------------------------------------------------------
{
  echo
  echo "== aha device check ($mode) on $(grep -m1 -o 'NVIDIA [A-Z0-9 ]*' "$out/gpu.txt" || echo 'no GPU'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(( $(date +%s) - start )) s"
  printf '%-44s %-5s %-11s %-7s %s\n' op dtype "max relerr" tol result
  if grep -q '^opcheck' "$out/checks.log"; then
    awk '$1 == "opcheck" { dtype = $(NF-5); err = $(NF-3); tol = $(NF-1); res = $NF;
           name = $2; for (i = 3; i < NF-5; i++) name = name " " $i;
           printf "%-44s %-5s %-11s %-7s %s\n", name, dtype, err, tol, res }' "$out/checks.log"
  else
    echo "(no CUDA op ran: $(grep -m1 -E 'no CUDA device|without the CUDA backend' "$out/checks.log" || echo 'see checks.log'))"
  fi
  grep -E '^-- (cuda_math|cuda_ops|backend_ops|parity_cpu|parity_cuda)' "$out/checks.log" | sed 's/^-- /step /'
  echo
  echo "timings (median of CUDA-event-timed runs, random data)"
  awk -v mode="$mode" '
    $1 == "bench" && $2 != "device" && $2 !~ /^skipped/ { ours[$2] = $5 }
    $1 == "torch" && $2 !~ /^skipped/ { torch[$2] = $5 }
    ($1 == "bench" || $1 == "torch") && $2 ~ /^skipped/ { print "  " $0 }
    END {
      g = ours["gemm_bf16_8192"]; t = torch["gemm_bf16_8192"]
      if (g != "") printf "  bf16 GEMM 8192^3, our cuBLASLt path      %7.1f TFLOP/s\n", g
      if (t != "") printf "  bf16 GEMM 8192^3, PyTorch                %7.1f TFLOP/s   ours/torch %.2f\n", t, (g != "" ? g / t : 0)
      d = ours["moe_dense_bf16_131072x2048x768"]; e = ours["moe_grouped_bf16_e128_k8_h2048_i768_t16k"]
      if (d != "") printf "  dense bf16 131072x2048x768 (ours)        %7.1f TFLOP/s   torch %s\n", d, torch["moe_dense_bf16_131072x2048x768"]
      if (e != "") printf "  grouped expert GEMM bf16 128e top-8      %7.1f TFLOP/s = %.2f of dense (goal >= 0.6)\n", e, e / d
      a = ours["attention_fwdbwd_fp32_hd128_t4096"]
      if (a != "") printf "  attention fwd+bwd fp32 hd128 4k tokens   %7.1f TFLOP/s = %.3f of the bf16 GEMM rate (goal >= 0.35)\n", a, a / g
      s = torch["sdpa_fwdbwd_bf16_hd128_t4096"]
      if (s != "") printf "  PyTorch SDPA bf16 fwd+bwd, same shape    %7.1f TFLOP/s = %.2f of its GEMM rate\n", s, s / t
      if (g == "" && t == "") print "  no GPU timings (" mode " mode)"
    }' "$out/bench.log"
  echo "logs: $out/{gpu.txt,build.log,checks.log,bench.log}"
  [ $status -eq 0 ] && echo "RESULT: every step passed" || echo "RESULT: FAILED (see the logs)"
} | tee "$out/table.txt"
exit $status
