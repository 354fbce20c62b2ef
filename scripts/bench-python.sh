#!/usr/bin/env bash
# The Python benchmark: condlock vs boto3 against the same local servers, in
# the same run: a keep-alive S3 endpoint (bindings-python/bench/keepalive_s3.py)
# and moto (which closes every connection). Client CPU and context switches per
# lock+unlock cycle; import + first client; installed size.
#
#   scripts/bench-python.sh [--cycles N] [--moto-cycles N] [--runs R]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/python-wheel-venv.sh "${CARGO_TARGET_DIR:-$ROOT/target}/py-bench-venv"
exec "$PYVENV/bin/python" bindings-python/bench/vs_boto3.py "$@"
