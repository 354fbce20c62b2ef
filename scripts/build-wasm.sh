#!/usr/bin/env bash
# Build the browser package (bindings-wasm/pkg) from a fresh clone: the wasm
# core with a size-tuned profile, then the JS glue with wasm-bindgen-cli at
# exactly the wasm-bindgen version of Cargo.lock (installed once into
# target/tools), then `wasm-opt -Oz` when binaryen is installed (npm).
#
#   CONDLOCK_WASM_PROFILE=dev   faster, unoptimised build (default: wasm-release)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${CONDLOCK_WASM_PROFILE:-wasm-release}"

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

# The CLI must match the library's wasm-bindgen exactly (the glue format
# changes between versions).
VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
TOOLS="$CARGO_TARGET_DIR/tools"
BINDGEN="$TOOLS/bin/wasm-bindgen"
if [[ ! -x "$BINDGEN" ]] || [[ "$("$BINDGEN" --version)" != "wasm-bindgen $VERSION" ]]; then
  echo "installing wasm-bindgen-cli $VERSION into $TOOLS"
  # Only the `wasm-bindgen` binary, without the TLS stack its test runner
  # downloads with: 4.5 min to build on 2 busy cores, against about 10 for
  # the whole CLI on the same machine.
  # --locked first; a registry mirror may lack one of the CLI's exact locked
  # dependencies, then the newest compatible ones are used.
  lean=(wasm-bindgen-cli --version "$VERSION" --no-default-features --bin wasm-bindgen --root "$TOOLS")
  cargo install --locked --force "${lean[@]}" || cargo install --force "${lean[@]}"
fi

cargo build -p condlock-wasm --target wasm32-unknown-unknown --profile "$PROFILE"
DIR="$PROFILE"
[[ "$PROFILE" == dev ]] && DIR=debug
WASM="$CARGO_TARGET_DIR/wasm32-unknown-unknown/$DIR/condlock_wasm.wasm"

OUT=bindings-wasm/pkg
rm -rf "$OUT"
"$BINDGEN" --target web --out-dir "$OUT" --no-typescript "$WASM"

OPT=bindings-wasm/node_modules/.bin/wasm-opt
if [[ "$PROFILE" != dev && -x "$OPT" ]]; then
  # -Oz twice: the second pass still finds about 0.7 KB gzipped (as much as
  # --converge, in the time of one pass). The producers and target-features
  # sections are for tools, not for the browser.
  "$OPT" -Oz -Oz --strip-producers --strip-target-features --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$OUT/condlock_wasm_bg.wasm" -o "$OUT/condlock_wasm_bg.wasm"
fi

wasm_bytes=$(wc -c <"$OUT/condlock_wasm_bg.wasm")
gz_bytes=$( (gzip -9c "$OUT/condlock_wasm_bg.wasm"; gzip -9c "$OUT/condlock_wasm.js"; cat bindings-wasm/js/*.js | gzip -9c) | wc -c)
echo "built $OUT ($PROFILE): wasm $wasm_bytes bytes; wasm + JS gzipped $gz_bytes bytes"
