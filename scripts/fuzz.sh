#!/usr/bin/env bash
# Fuzz every parser of server data in the core (core/fuzz/, cargo-fuzz and
# libFuzzer), each target for a fixed budget, one target at a time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default 60 s, all targets)
#
# Works on the stable toolchain: libFuzzer needs `-Z` flags, which
# RUSTC_BOOTSTRAP=1 unlocks. Installs cargo-fuzz when missing. Runs from the
# checked-in seed corpus core/fuzz/corpus/<target>/ without writing to it:
# inputs found during the run go to a temporary directory (printed). Crashing
# inputs are saved in core/fuzz/artifacts/<target>/. Prints executions,
# coverage and findings per target; exits 1 if any target found something.
# Not part of CI (see RELIABILITY.md, "Fuzzing").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
shift || true
case "$SECS" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac

export RUSTC_BOOTSTRAP=1
# The fuzz build uses its own flags (sanitizer, coverage): keep it out of the
# workspace's target directory.
export CARGO_TARGET_DIR="$ROOT/core/fuzz/target"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$ROOT/core/fuzz"
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi

echo "==> building ${#TARGETS[@]} fuzz targets"
cargo fuzz build

WORK="$(mktemp -d "${TMPDIR:-/tmp}/condlock-fuzz.XXXXXX")"
echo "==> ${SECS} s per target; logs and new inputs in $WORK"
SUMMARY=()
FAILED=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t" "artifacts/$t"
    seeds=()
    [ -d "corpus/$t" ] && seeds=("corpus/$t")
    marker="$WORK/$t.start"
    touch "$marker"
    echo "--> $t"
    # The first corpus directory receives new inputs: the temporary one.
    set +e
    cargo fuzz run "$t" "$WORK/$t" "${seeds[@]}" -- \
        -max_total_time="$SECS" -timeout=10 -print_final_stats=1 \
        >"$WORK/$t.log" 2>&1
    rc=$?
    set -e
    stat() { sed -n "s/^stat::$1: *//p" "$WORK/$t.log" | tail -1; }
    runs="$(stat number_of_executed_units)"
    speed="$(stat average_exec_per_sec)"
    last="$(grep -E '^#[0-9]+' "$WORK/$t.log" | tail -1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")"
    found="$(find "artifacts/$t" -type f -newer "$marker" | wc -l)"
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        FAILED=1
        echo "    FINDING (exit $rc): $(find "artifacts/$t" -type f -newer "$marker" | tr '\n' ' ')"
        grep -m3 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$WORK/$t.log" | sed 's/^/    /' || true
    fi
    line="$(printf '%-16s runs %-9s exec/s %-7s cov %-5s ft %-6s corpus %-12s findings %s' \
        "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$found")"
    echo "    $line"
    SUMMARY+=("$line")
done

echo
echo "==> summary (${SECS} s per target, $(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
