#!/usr/bin/env bash
# Prepares .device/ (ignored by git) for the GPU machine, which has nvcc, CMake, ninja and
# PyTorch but none of aha's Debian libraries and no network: the .deb files (runtime and
# -dev) of every library aha links (the list of CMakeLists.txt's pkg_check_modules, with
# OpenBLAS's libgfortran), plus pkgconf, fetched here with `apt-get download`.
# scripts/device_unpack.sh extracts them into a prefix there (never into /), and
# scripts/device_check.sh builds against that prefix. Run on this machine, then carry
# .device with the call (docs/gpu.md). Usage: scripts/device_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libyaml-0-2 libyaml-dev
  libpcre2-8-0 libpcre2-dev
  libsqlite3-0 libsqlite3-dev
  libjansson4 libjansson-dev
  libutf8proc2 libutf8proc-dev
  libseccomp2 libseccomp-dev
  libcmocka0 libcmocka-dev
  zlib1g zlib1g-dev
  libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0
  pkgconf pkgconf-bin libpkgconf3
)

rm -rf .device/debs
mkdir -p .device/debs
# apt's sandbox user cannot write into a folder it does not own; the download itself is fine
(cd .device/debs && apt-get download "${packages[@]}" 2>&1 | grep -v '^Get:' \
  | grep -v 'unsandboxed as root' || true)
for p in "${packages[@]}"; do
  compgen -G ".device/debs/${p}_*.deb" >/dev/null || { echo "device_prepare: $p was not downloaded" >&2; exit 1; }
done
bytes=$(du -sb .device | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$(( bytes + tree ))
echo "device_prepare: .device holds ${#packages[@]} packages, $(( bytes / 1048576 )) MiB; with the source tree $(( total / 1048576 )) MiB of the 64 MiB that may travel"
if [ "$total" -gt $(( 60 * 1048576 )) ]; then
  echo "device_prepare: too large to travel with the checkout" >&2
  exit 1
fi
