#!/usr/bin/env bash
# Set up kgrec in ./.venv from the project's own pinned files (fresh Debian, Python 3.11), and the
# system packages the tests use: Chromium and its driver (the browser test; never a downloaded
# browser) and a compose client (validates docker-compose.yml; no daemon needed).
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
  echo "npm not found: the Cypher linter test will be skipped (install Node.js: apt-get install nodejs npm)" >&2
fi

# Debian packages of the browser and compose tests (skipped without them; a failure under CI=1)
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "not installed (the browser and compose tests will be skipped): ${need[*]}" >&2
    echo "install them with:  sudo apt-get install -y ${need[*]}" >&2
  fi
fi
echo "kgrec installed in .venv (run: .venv/bin/kgrec --help)"
