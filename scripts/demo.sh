#!/usr/bin/env bash
# The README demo: starts a local S3 server (moto) and runs several workers that
# contend for one Terraform-compatible lock. Installs what it needs first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
cargo run --quiet -p condlock-integration --example demo
