#!/usr/bin/env bash
# Builds the condlock wheel with maturin and runs tests/python against it,
# installed into a fresh venv (not `maturin develop`): what users get from pip.
#
#   scripts/test-python.sh [pytest args...]
#
# Needs scripts/setup.sh first. Env: see scripts/python-wheel-venv.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/python-wheel-venv.sh "${CARGO_TARGET_DIR:-$ROOT/target}/py-test-venv"

# The tests must import the installed wheel, never the source tree.
export CONDLOCK_PY_STUBS="$ROOT/bindings-python/python/condlock/_condlock.pyi"
cd "$ROOT/tests/python"
printf 'test-python: running pytest\n'
exec "$PYVENV/bin/python" -m pytest -p no:cacheprovider "$@"
