#!/usr/bin/env bash
# Builds what would be published of the Python package into
# $CARGO_TARGET_DIR/wheels-dist/ (default target/wheels-dist/):
#   - the wheel, linked with zig against glibc 2.17 and tagged manylinux2014
#     (manylinux_2_17: Amazon Linux 2, Ubuntu 18.04+, RHEL/CentOS 7+), checked
#     with `auditwheel show`;
#   - the sdist (builds anywhere with a Rust toolchain, through maturin).
#
#   scripts/build-wheels.sh
#
# Needs scripts/setup.sh first (.venv with maturin, ziglang, auditwheel) and gcc
# (for the path of the system's libgcc_s.so.1, see below).
# Env: CARGO_TARGET_DIR, CONDLOCK_WHEEL_PROFILE (release|dev, default
# release), CONDLOCK_VENV (default <repo>/.venv). Prints the wheel's path last.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONDLOCK_VENV:-$ROOT/.venv}"
for tool in maturin auditwheel; do
  if [[ ! -x "$VENV/bin/$tool" ]]; then
    echo "build-wheels: $VENV lacks $tool; run scripts/setup.sh" >&2
    exit 1
  fi
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${CONDLOCK_WHEEL_PROFILE:-release}"
DIST="$CARGO_TARGET_DIR/wheels-dist"
# maturin finds zig as `python3 -m ziglang`: the venv's python3 must come first.
export PATH="$VENV/bin:$PATH"

# The system's unwinder, libgcc_s.so.1, not the static copy of LLVM's
# libunwind that zig links in its place: at interpreter exit, CPython ends a
# foreign thread that asks for the GIL with pthread_exit, whose forced unwind
# runs libgcc_s's _Unwind_ForcedUnwind through our frames; with another
# unwinder's personality routines in them that crashed the process (SIGSEGV in
# about 1 run in 20 of examples/cron_lease.py). libgcc_s.so.1 is part of every
# manylinux policy; the symbols used are GCC_3.0 to GCC_4.2.0. Passed to the
# final rustc only (after `--`), so no dependency is rebuilt for it.
LIBGCC_S="$(readlink -f "$(gcc -print-file-name=libgcc_s.so.1)")"
if [[ ! -f "$LIBGCC_S" ]]; then
  echo "build-wheels: libgcc_s.so.1 not found (gcc -print-file-name); install gcc" >&2
  exit 1
fi

rm -rf "$DIST"
printf 'build-wheels: manylinux2014 wheel (%s, zig)\n' "$PROFILE" >&2
maturin build --profile "$PROFILE" --zig --compatibility manylinux2014 \
  -m "$ROOT/bindings-python/Cargo.toml" -o "$DIST" --quiet -- -C "link-arg=$LIBGCC_S" >&2
printf 'build-wheels: sdist\n' >&2
# (cargo warns that the manifests have no documentation, homepage or
# repository: expected, the project has no public URL yet and none is invented.)
maturin sdist -m "$ROOT/bindings-python/Cargo.toml" -o "$DIST" >&2

WHEEL="$(ls "$DIST"/condlock-*manylinux*.whl)"
SDIST="$(ls "$DIST"/condlock-*.tar.gz)"
# The tag is what pip checks; auditwheel reads the symbols the library really
# needs and must agree that nothing newer than glibc 2.17 is used.
report="$(auditwheel show "$WHEEL")"
TAG="manylinux_2_17_$(uname -m)"
if ! grep -q "\"$TAG\"" <<<"$report"; then
  printf '%s\n' "$report" >&2
  echo "build-wheels: auditwheel does not find $WHEEL consistent with $TAG" >&2
  exit 1
fi
if ! grep -q 'libgcc_s.so.1 with versions' <<<"$report"; then
  printf '%s\n' "$report" >&2
  echo "build-wheels: $WHEEL does not use the system unwinder (libgcc_s.so.1)" >&2
  exit 1
fi
printf 'build-wheels: %s (auditwheel: %s), %s\n' \
  "$(basename "$WHEEL")" "$TAG" "$(basename "$SDIST")" >&2
printf '%s\n' "$WHEEL"
