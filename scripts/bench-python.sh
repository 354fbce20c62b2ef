#!/usr/bin/env bash
# The Python benchmark: condlock vs boto3 against the same local moto server,
# in the same run (client CPU per lock+unlock cycle; import + first client).
#
#   scripts/bench-python.sh [--cycles N] [--runs R]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/python-wheel-venv.sh "${CARGO_TARGET_DIR:-$ROOT/target}/py-bench-venv"
exec "$PYVENV/bin/python" bindings-python/bench/vs_boto3.py "$@"
