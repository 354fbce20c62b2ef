#!/usr/bin/env bash
# Builds the condlock wheel with maturin and runs tests/python against it,
# installed into a fresh venv (not `maturin develop`): what users get from pip.
#
#   scripts/test-python.sh [pytest args...]
#
# Needs scripts/setup.sh first (.venv with maturin, moto_server, pytest, boto3).
# Env: CARGO_TARGET_DIR (default <repo>/target), PYTHON (interpreter for the
# test venv, default .venv's python), CONDLOCK_WHEEL_PROFILE (release|dev,
# default release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
if [[ ! -x "$VENV/bin/maturin" || ! -x "$VENV/bin/moto_server" ]]; then
  echo "test-python: .venv lacks maturin or moto_server; run scripts/setup.sh" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${CONDLOCK_WHEEL_PROFILE:-release}"
WHEELS="$CARGO_TARGET_DIR/wheels/condlock-python"
TEST_VENV="$CARGO_TARGET_DIR/py-test-venv"
PYTHON="${PYTHON:-$VENV/bin/python}"

log() { printf 'test-python: %s\n' "$*"; }

log "building the wheel ($PROFILE)"
rm -rf "$WHEELS"
"$VENV/bin/maturin" build --profile "$PROFILE" -m bindings-python/Cargo.toml -o "$WHEELS" --quiet
WHEEL="$(ls "$WHEELS"/condlock-*.whl | head -n1)"
log "built $(basename "$WHEEL")"

log "fresh venv at $TEST_VENV"
rm -rf "$TEST_VENV"
"$PYTHON" -m venv "$TEST_VENV"
# Same pins as the repo's test requirements (offline-friendly: pip's cache).
pins() { grep -E "^($1)==" tests/requirements.txt; }
"$TEST_VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
  "$WHEEL" $(pins 'pytest|boto3|botocore') </dev/null

# The tests must import the installed wheel, never the source tree.
export CONDLOCK_MOTO_SERVER="${CONDLOCK_MOTO_SERVER:-$VENV/bin/moto_server}"
export PYTHONDONTWRITEBYTECODE=1
export CONDLOCK_PY_STUBS="$ROOT/bindings-python/python/condlock/_condlock.pyi"
cd "$ROOT/tests/python"
log "running pytest"
exec "$TEST_VENV/bin/python" -m pytest -p no:cacheprovider "$@"
