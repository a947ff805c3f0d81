#!/usr/bin/env bash
# Set up kgrec in ./.venv from the project's own pinned files (fresh Debian, Python 3.11).
# torch is installed first, pinned to the CPU build: a plain `torch` pulls GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install wheel
"${PIP[@]}" install torch==2.13.0
"${PIP[@]}" install -c requirements.lock -e ".[dev]"
if command -v npm >/dev/null; then
  npm ci --prefix tools/cypher-lint --no-audit --no-fund --silent
else
  echo "npm not found: the Cypher linter test will be skipped" >&2
fi
echo "kgrec installed in .venv (run: .venv/bin/kgrec --help)"
