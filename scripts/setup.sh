#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run aha.
# Idempotent: when everything is present it installs nothing and prints nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libyaml-dev libpcre2-dev libsqlite3-dev sqlite3 libjansson-dev
  libopenblas-dev libutf8proc-dev libseccomp-dev libcmocka-dev zlib1g-dev
  libopenmpi-dev openmpi-bin
  python3 gcc g++
  clang libclang-rt-14-dev libomp-14-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq >/dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
