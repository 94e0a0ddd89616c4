#!/usr/bin/env bash
# Makes .venv (in the repository, ignored by git) with the pinned packages that generate the
# committed fixtures, so they can be regenerated from a fresh clone:
#   scripts/fixtures_venv.sh && .venv/bin/python scripts/make_policy_fixtures.py
# The toolkit and its tests never need it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r scripts/requirements-fixtures.txt
.venv/bin/python -c 'import torch, transformers, tokenizers; print("fixtures venv: torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
