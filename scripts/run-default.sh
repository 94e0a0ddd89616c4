#!/usr/bin/env bash
# Builds aha and runs the default recipe. Usage: scripts/run-default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build/aha version
