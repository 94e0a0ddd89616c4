#!/usr/bin/env bash
# Extracts the .deb files of .device/debs (scripts/device_prepare.sh) into PREFIX with
# `dpkg -x` (no maintainer scripts, nothing outside PREFIX), recreates the links Debian's
# alternatives system would have made for OpenBLAS, and prints the environment that points
# pkg-config at PREFIX and at nothing else; AHA_DEVICE_LIBS is the loader path for aha's own
# programs (given to them alone, never exported to the toolchain or python):
#   eval "$(scripts/device_unpack.sh /tmp/aha-prefix)"
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: scripts/device_unpack.sh PREFIX}
compgen -G ".device/debs/*.deb" >/dev/null || {
  echo "device_unpack: no .deb files in .device/debs (run scripts/device_prepare.sh here first)" >&2
  exit 1
}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
for deb in .device/debs/*.deb; do
  if command -v dpkg >/dev/null; then
    dpkg -x "$deb" "$prefix"
  else # a .deb is an ar archive holding data.tar.*
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$OLDPWD/$deb" && tar -xf data.tar.* -C "$prefix")
    rm -rf "$tmp"
  fi
done
lib=$prefix/usr/lib/x86_64-linux-gnu
inc=$prefix/usr/include/x86_64-linux-gnu
for h in cblas.h f77blas.h openblas_config.h; do
  ln -sf openblas-pthread/$h "$inc/$h"
done
mkdir -p "$lib/pkgconfig"
ln -sf ../openblas-pthread/pkgconfig/openblas.pc "$lib/pkgconfig/openblas.pc"
# the runtime names the alternatives would provide
ln -sf openblas-pthread/libblas.so.3 "$lib/libblas.so.3"
# pkgconf needs its own libpkgconf: a wrapper gives it the prefix's libraries, so nothing
# else (cmake, the compiler, the linker, python) ever loads them
mkdir -p "$prefix/bin"
cat >"$prefix/bin/pkg-config" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH='$lib' exec '$prefix/usr/bin/pkgconf' "\$@"
WRAP
chmod +x "$prefix/bin/pkg-config"
pc=$lib/pkgconfig:$prefix/usr/share/pkgconfig
cat <<ENV
export AHA_DEVICE_PREFIX='$prefix'
export AHA_DEVICE_LIBS='$lib:$lib/openblas-pthread'
export PKG_CONFIG_LIBDIR='$pc'
export PKG_CONFIG_PATH=''
export PKG_CONFIG_SYSROOT_DIR='$prefix'
export PKG_CONFIG='$prefix/bin/pkg-config'
ENV
