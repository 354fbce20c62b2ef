#!/usr/bin/env bash
# The browser package's tests, from a fresh clone: builds the package
# (scripts/build-wasm.sh) and the `condlock` CLI (the other process that
# holds locks), installs Chromium (Debian) and the test's node packages when
# missing, then runs bindings-wasm/tests/run.mjs in headless Chromium against
# moto on 127.0.0.1. Screenshots: target/browser-artifacts/.
#
#   bash scripts/test-browser.sh [test name filter]
#   CONDLOCK_WASM_PROFILE=dev   test an unoptimised build (faster to build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if [[ ! -x /usr/bin/chromium ]]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -x .venv/bin/moto_server ]]; then
  echo "no .venv/bin/moto_server: run scripts/setup.sh first" >&2
  exit 1
fi
(cd bindings-wasm && npm ci --no-audit --no-fund --loglevel=error)

bash scripts/build-wasm.sh
cargo build -p condlock-cli

# The TypeScript declarations describe the API as it is used.
bindings-wasm/node_modules/.bin/tsc -p bindings-wasm/tests

node bindings-wasm/tests/run.mjs "${1:-}"
