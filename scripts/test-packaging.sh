#!/usr/bin/env bash
# The Python package as users get it, each into a FRESH venv, each then running
# tests/python/test_packaging.py (import from site-packages, a lock taken and
# released on moto, license and metadata):
#   1. the manylinux2014 wheel from scripts/build-wheels.sh;
#   2. the documented source install, `pip install ./bindings-python`;
#   3. the sdist from scripts/build-wheels.sh, built by pip (maturin as the
#      PEP 517 backend, fetched by pip in an isolated build env).
#
#   scripts/test-packaging.sh
#
# Needs scripts/setup.sh first. The sdist and source builds share
# CARGO_TARGET_DIR (default <repo>/target), so their dependencies are compiled
# once. Env: CARGO_TARGET_DIR, CONDLOCK_VENV (default <repo>/.venv), PYTHON
# (interpreter for the venvs, default the tools venv's).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${CONDLOCK_VENV:-$ROOT/.venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CONDLOCK_MOTO_SERVER="${CONDLOCK_MOTO_SERVER:-$VENV/bin/moto_server}"
export CONDLOCK_DIST_DIR="$CARGO_TARGET_DIR/wheels-dist"

# Already built by scripts/test-python.sh in the same run: cargo finds
# nothing to do, and the sdist is re-made from the tree as it is.
WHEEL="$(bash scripts/build-wheels.sh)"
SDIST="$(ls "$CONDLOCK_DIST_DIR"/condlock-*.tar.gz)"
pins() { grep -E "^($1)==" "$ROOT/tests/requirements.txt"; }

check() { # <name> <what pip installs>
  local name="$1" what="$2" venv="$CARGO_TARGET_DIR/packaging-venv-$1" start=$SECONDS
  printf 'test-packaging: %s: pip install %s into a fresh venv\n' "$name" "$what"
  rm -rf "$venv"
  "${PYTHON:-$VENV/bin/python}" -m venv "$venv"
  # --no-cache-dir: a wheel pip cached from an earlier build of the same sdist
  # would skip the build this checks.
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q --no-cache-dir \
    "$what" $(pins 'pytest') </dev/null
  (cd "$ROOT/tests/python" && "$venv/bin/python" -m pytest -p no:cacheprovider -q test_packaging.py)
  printf 'test-packaging: %s: passed in %ss\n' "$name" "$((SECONDS - start))"
  rm -rf "$venv"
}

check wheel "$WHEEL"
# As the README says, from the repository root. Before the sdist: the sdist's
# files carry fixed old mtimes, so cargo (which judges path packages by mtime)
# reuses whatever the shared target dir holds for them. Built from the tree
# just before, that is the same source, as the sdist is made from the tree.
check source ./bindings-python
check sdist "$SDIST"
