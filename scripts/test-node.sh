#!/usr/bin/env bash
# The Node package's tests: builds the addon once (debug profile, the shared
# CARGO_TARGET_DIR, so `cargo test --workspace` already built most of it),
# type-checks the declarations and runs `node --test` (moto on 127.0.0.1,
# other Node processes, npm pack + offline install + the README quick start).
#
#   bash scripts/test-node.sh [extra node --test arguments, e.g. --test-name-pattern lease]
#
# `npm run build` in bindings-node (the napi-rs CLI) regenerates native.d.ts;
# this script copies cargo's library itself, so it never builds for a second
# target directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf 'test-node: %s\n' "$*"; }

log "cargo build -p condlock-node -p condlock-cli"
cargo build -p condlock-node -p condlock-cli
cp "$CARGO_TARGET_DIR/debug/libcondlock_node.so" bindings-node/condlock.linux-x64-gnu.node

cd bindings-node
# Dev tools (typescript, @napi-rs/cli; exact versions in package.json), once
# per change of it. No lock file: the platform package named in
# optionalDependencies is made by the release, not fetched.
stamp=node_modules/.condlock-package.sha256
hash="$(sha256sum package.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$hash" ]]; then
  log "npm install (dev tools)"
  npm install --omit=optional --no-package-lock --no-audit --no-fund --loglevel=error </dev/null
  printf '%s\n' "$hash" > "$stamp"
fi
# The type test imports the package by its name.
ln -sfn .. node_modules/condlock

log "tsc: the declarations describe the API"
./node_modules/.bin/tsc -p test/tsconfig.json

log "node --test"
node --test "$@" test/*.test.mjs
