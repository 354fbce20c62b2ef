#!/usr/bin/env bash
# Installs everything the test suites need that cargo does not:
#   - <repo>/.venv            Python venv with tests/requirements.txt (moto_server, pytest, boto3, maturin)
#   - <repo>/tests/node_modules  npm ci from tests/package-lock.json (s3rver)
# Idempotent: each step is skipped when a stamp file records the sha256 of its inputs.
# Safe for CI (CI=true, no stdin). Override the interpreter with PYTHON=/path/to/python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
REQ="$ROOT/tests/requirements.txt"

log() { printf 'setup: %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---- Python venv -----------------------------------------------------------
py_hash="$(hash_of "$REQ")"
py_stamp="$VENV/.condlock-requirements.sha256"
if [[ -x "$VENV/bin/python" && -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_hash" ]]; then
  log "python venv up to date (.venv)"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating python venv at .venv"
    "$PYTHON" -m venv "$VENV"
  fi
  log "installing tests/requirements.txt into .venv"
  rm -f "$py_stamp"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ" </dev/null
  printf '%s\n' "$py_hash" > "$py_stamp"
  log "python deps installed"
fi

# ---- Node packages -----------------------------------------------------------
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found; install Node.js (apt-get install nodejs npm)" >&2
  exit 1
fi
node_hash="$(hash_of tests/package.json tests/package-lock.json)"
node_stamp="$ROOT/tests/node_modules/.condlock-packages.sha256"
if [[ -f "$node_stamp" && "$(cat "$node_stamp")" == "$node_hash" && -e tests/node_modules/.bin/s3rver ]]; then
  log "node packages up to date (tests/node_modules)"
else
  log "npm ci in tests/"
  (cd tests && npm ci --no-audit --no-fund --loglevel=error </dev/null)
  printf '%s\n' "$node_hash" > "$node_stamp"
  log "node packages installed"
fi

log "done"
