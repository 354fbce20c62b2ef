#!/usr/bin/env bash
# The browser package's size against the AWS SDK v3 S3 client bundled for the
# browser (S3Client with Put/Get/DeleteObject, esbuild, minified,
# tree-shaken), gzip -9, in the same run; then what takes the space in the
# wasm. Not part of CI (it downloads the SDK).
#
#   bash scripts/wasm-size.sh     (builds the package first)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SDK=3.1175.0
ESBUILD=0.28.2

bash scripts/build-wasm.sh >/dev/null

gz() { gzip -9c "$1" | wc -c; }
total=0
echo "condlock browser package (what a page loads):"
for f in bindings-wasm/pkg/condlock_wasm_bg.wasm bindings-wasm/pkg/condlock_wasm.js \
         bindings-wasm/js/index.js bindings-wasm/js/errors.js; do
  n=$(gz "$f")
  total=$((total + n))
  printf '  %-40s %8d bytes %8d gzipped\n' "$f" "$(wc -c <"$f")" "$n"
done
printf '  %-40s %26d gzipped\n' total "$total"

DIR="$CARGO_TARGET_DIR/size-compare"
mkdir -p "$DIR"
cd "$DIR"
[[ -f package.json ]] || echo '{"private": true}' >package.json
npm install --no-audit --no-fund --loglevel=error "@aws-sdk/client-s3@$SDK" "esbuild@$ESBUILD" >/dev/null
cat >entry.js <<'JS'
import { S3Client, PutObjectCommand, GetObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
export async function cycle(bucket, key) {
  const s3 = new S3Client({ region: 'us-east-1' });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{}', IfNoneMatch: '*' }));
  await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}
JS
node_modules/.bin/esbuild entry.js --bundle --minify --format=esm --platform=browser \
  --tree-shaking=true --outfile=sdk.js --log-level=warning
sdk=$(gz sdk.js)
printf 'AWS SDK v3 S3 client %s (esbuild %s): %d bytes, %d gzipped\n' "$SDK" "$ESBUILD" "$(wc -c <sdk.js)" "$sdk"
awk -v a="$total" -v b="$sdk" 'BEGIN { printf "condlock / SDK: %.2f\n", a / b }'
cd "$ROOT"
echo
echo "what takes the space (module before wasm-bindgen and wasm-opt):"
python3 scripts/wasm-size.py "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/condlock_wasm.wasm" 15
