#!/usr/bin/env bash
# Every test suite of condlock, from a fresh machine: installs what it needs
# (scripts/setup.sh), then formatting and lint gates, the Rust unit and
# integration tests (real servers on 127.0.0.1), the Apstra emulator's
# self-check, the Python package's tests against its built wheel, the Python
# packaging (manylinux2014 wheel, sdist, source install), the browser package
# in headless Chromium, and the Node package.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "the JavaScript shared by the Node and browser packages is in sync (scripts/sync-js.mjs)"
node scripts/sync-js.mjs --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "the sans-IO core builds for wasm32 without the native driver"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build -p condlock --no-default-features --target wasm32-unknown-unknown

step "cargo test (unit, doc, integration)"
cargo test --workspace --all-features

step "Apstra emulator self-check"
python3 tests/apstra_emulator_selfcheck.py

if [[ -f scripts/test-python.sh ]]; then
  step "Python package tests (built wheel, clean venv)"
  bash scripts/test-python.sh
fi

if [[ -f scripts/test-packaging.sh ]]; then
  step "Python packaging: manylinux2014 wheel, sdist and source install, each in a fresh venv"
  bash scripts/test-packaging.sh
fi

if [[ -f scripts/test-browser.sh ]]; then
  step "browser package tests (headless Chromium against moto)"
  bash scripts/test-browser.sh
fi

if [[ -f scripts/test-node.sh ]]; then
  step "Node package tests (node --test, npm pack + install)"
  bash scripts/test-node.sh
fi

step "all suites passed"
