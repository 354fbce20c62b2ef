#!/usr/bin/env bash
# Builds the condlock wheel with maturin and installs it, with pytest and boto3,
# into a FRESH venv: what users get from pip, never the source tree.
#
#   source scripts/python-wheel-venv.sh <venv dir>
#
# Sets WHEEL and PYVENV for the caller. Needs scripts/setup.sh first (.venv with
# maturin, moto_server, pytest, boto3). Env: CARGO_TARGET_DIR (default
# <repo>/target), PYTHON (interpreter for the venv, default .venv's),
# CONDLOCK_WHEEL_PROFILE (release|dev, default release), CONDLOCK_VENV (the
# tools venv, default <repo>/.venv).
#
# A release wheel is the one scripts/build-wheels.sh builds for publishing
# (manylinux2014, zig): the suite tests what users would install, and CI
# builds it once. A dev wheel is a plain maturin build (quick, shares
# target/debug with cargo test).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONDLOCK_VENV:-$ROOT/.venv}"
if [[ ! -x "$VENV/bin/maturin" || ! -x "$VENV/bin/moto_server" ]]; then
  echo "python-wheel-venv: .venv lacks maturin or moto_server; run scripts/setup.sh" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${CONDLOCK_WHEEL_PROFILE:-release}"
WHEELS="$CARGO_TARGET_DIR/wheels/condlock-python"
PYVENV="$1"

if [[ "$PROFILE" == release ]]; then
  WHEEL="$(bash "$ROOT/scripts/build-wheels.sh")"
  # tests/python/test_packaging.py checks the artefacts too.
  export CONDLOCK_DIST_DIR="$CARGO_TARGET_DIR/wheels-dist"
else
  printf 'python-wheel-venv: building the wheel (%s)\n' "$PROFILE"
  rm -rf "$WHEELS"
  "$VENV/bin/maturin" build --profile "$PROFILE" -m "$ROOT/bindings-python/Cargo.toml" -o "$WHEELS" --quiet
  WHEEL="$(ls "$WHEELS"/condlock-*.whl | head -n1)"
fi
printf 'python-wheel-venv: built %s; fresh venv at %s\n' "$(basename "$WHEEL")" "$PYVENV"
rm -rf "$PYVENV"
"${PYTHON:-$VENV/bin/python}" -m venv "$PYVENV"
# Same pins as the repo's test requirements.
pins() { grep -E "^($1)==" "$ROOT/tests/requirements.txt"; }
"$PYVENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
  "$WHEEL" $(pins 'pytest|boto3|botocore|mypy') </dev/null
export CONDLOCK_MOTO_SERVER="${CONDLOCK_MOTO_SERVER:-$VENV/bin/moto_server}"
