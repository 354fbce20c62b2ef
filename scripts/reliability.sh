#!/usr/bin/env bash
# The fault-injection stress of tests/tests/s3_faults.rs, longer, with figures.
#
#   scripts/reliability.sh
#
# 1. Contention: WORKERS processes (tests/src/bin/stress_worker.rs) x CYCLES
#    acquire/hold/release cycles of one plain (Terraform-style) lock, through
#    tests/fault_proxy.py (seeded faults: drops, resets, delays, 500, SlowDown,
#    409) in front of tests/moto_atomic.py (moto, one request at a time).
#    Prints double holds (from the shared O_APPEND log), whether the lock
#    object leaked (GET straight from moto), acquire/release errors, and the
#    p50/p99 of acquire latency and of hand-off time (one holder's exit to the
#    next holder's entry).
# 2. Takeover: TAKEOVERS times, a holder with a LEASE_MS lease is SIGKILLed
#    while 3 waiters (expired-lease takeover on) wait through the same proxy;
#    prints the time from the kill to the first waiter's entry.
#
# Env (defaults): WORKERS=8 CYCLES=200 HOLD_MS=5 SEED=20261202
#   FAULTS="--drop-response 0.03 --reset 0.03 --delay 0.03:0.2 --status500 0.02
#           --slowdown 0.02 --conflict 0.02"
#   LEASE_MS=3000 TAKEOVERS=5 CARGO_TARGET_DIR (default <repo>/target)
#   STORE=atomic (tests/moto_atomic.py) or threaded (stock moto_server, whose
#   check-then-write conditional PUT may let two creates win: for comparison)
# Needs scripts/setup.sh (.venv with moto). Exit status 1 on a double hold or leak.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORKERS="${WORKERS:-8}"
CYCLES="${CYCLES:-200}"
HOLD_MS="${HOLD_MS:-5}"
SEED="${SEED:-20261202}"
FAULTS="${FAULTS:---drop-response 0.03 --reset 0.03 --delay 0.03:0.2 --status500 0.02 --slowdown 0.02 --conflict 0.02}"
LEASE_MS="${LEASE_MS:-3000}"
TAKEOVERS="${TAKEOVERS:-5}"
STORE="${STORE:-atomic}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || { echo "reliability: $PY missing; run scripts/setup.sh" >&2; exit 1; }

cargo build -q -p condlock-integration --bin stress_worker
WORKER="$CARGO_TARGET_DIR/debug/stress_worker"

WORK="$(mktemp -d -t condlock-reliability.XXXXXX)"
PIDS=()
cleanup() {
  # Every background job of this script: servers, proxy, workers still running.
  for p in "${PIDS[@]}" $(jobs -p); do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Echoes the first port that sed expression $2 finds in file $1 (waits up to 30 s).
port_in() {
  local port=""
  for _ in $(seq 300); do
    port="$(sed -n "$2" "$1" 2>/dev/null | head -n1)"
    [[ -n "$port" ]] && { echo "$port"; return; }
    sleep 0.1
  done
  echo "reliability: no port in $1" >&2
  cat "$1" >&2
  exit 1
}
LISTENING='s/^LISTENING \([0-9]*\)$/\1/p'

if [[ "$STORE" == threaded ]]; then
  # Stock moto_server (check-then-write on a threaded server): for comparison.
  "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p 0 >/dev/null 2>"$WORK/moto.err" &
  PIDS+=("$!")
  MOTO_PORT="$(port_in "$WORK/moto.err" 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p')"
else
  "$PY" tests/moto_atomic.py -p 0 >"$WORK/moto.out" 2>/dev/null &
  PIDS+=("$!")
  MOTO_PORT="$(port_in "$WORK/moto.out" "$LISTENING")"
fi
MOTO="http://127.0.0.1:$MOTO_PORT"
# shellcheck disable=SC2086 # FAULTS is a list of flags
python3 tests/fault_proxy.py --upstream "$MOTO" --seed "$SEED" $FAULTS >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
PIDS+=("$!")
PROXY_PORT="$(port_in "$WORK/proxy.out" "$LISTENING")"
PROXY="http://127.0.0.1:$PROXY_PORT"
AUTH='AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000'
curl -sf -X PUT -H "Authorization: $AUTH" "$MOTO/tfstate" -o /dev/null

echo "reliability: $(date -u +%FT%TZ) store=$STORE workers=$WORKERS cycles=$CYCLES hold=${HOLD_MS}ms seed=$SEED"
echo "reliability: faults: $FAULTS"

# --- 1. contention ----------------------------------------------------------
KEY="envs/reliability.tfstate"
START=$(date +%s%N)
WPIDS=()
for i in $(seq "$WORKERS"); do
  "$WORKER" "$PROXY" "$KEY" "$CYCLES" "$WORK/holders.log" "$HOLD_MS" 120000 0 \
    >"$WORK/worker-$i.out" 2>/dev/null &
  WPIDS+=("$!")
done
for p in "${WPIDS[@]}"; do wait "$p" || echo "reliability: worker $p exited with $?"; done
ELAPSED=$(( ($(date +%s%N) - START) / 1000000 ))  # ms
LEAK_STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $AUTH" "$MOTO/tfstate/$KEY.tflock")
STATS=$(curl -s "$PROXY/_proxy/stats")

# --- 2. takeover after SIGKILL ---------------------------------------------------
TAKEOVER_NS=()
: >"$WORK/takeover-waiters.log"
for t in $(seq "$TAKEOVERS"); do
  TKEY="envs/takeover-$t.tfstate"
  TLOG="$WORK/takeover-$t.log"
  "$WORKER" "$PROXY" "$TKEY" 1 "$TLOG" 0 60000 "$LEASE_MS" 600000 >"$WORK/holder-$t.out" 2>/dev/null &
  HOLDER=$!
  for _ in $(seq 300); do grep -qs '^HELD ' "$WORK/holder-$t.out" && break; sleep 0.05; done
  grep -q '^HELD ' "$WORK/holder-$t.out" || { echo "reliability: holder $t never held" >&2; cat "$WORK/holder-$t.out" >&2; exit 1; }
  WAITERS=()
  for w in 1 2 3; do
    "$WORKER" "$PROXY" "$TKEY" 1 "$TLOG.waiters" "$HOLD_MS" 60000 "$LEASE_MS" >"$WORK/waiter-$t-$w.out" 2>/dev/null &
    WAITERS+=("$!")
  done
  sleep 1 # the waiters see the lease renewed at least once
  KILLED_AT=$(date +%s%N)
  kill -9 "$HOLDER"
  wait "$HOLDER" 2>/dev/null || true
  for p in "${WAITERS[@]}"; do wait "$p" || true; done
  FIRST=$(awk '$1=="enter"{print $4; exit}' "$TLOG.waiters" 2>/dev/null || true)
  if [[ -n "$FIRST" ]]; then
    TAKEOVER_NS+=("$((FIRST - KILLED_AT))")
  else
    echo "reliability: takeover $t: no waiter got the lock" >&2
    cat "$WORK"/waiter-"$t"-*.out >&2
  fi
  # The waiters' log must show them one at a time too.
  cat "$TLOG.waiters" >>"$WORK/takeover-waiters.log" 2>/dev/null || true
done

cat "$WORK"/worker-*.out "$WORK"/waiter-*.out >"$WORK/all.out" 2>/dev/null || true
"$PY" - "$WORK/holders.log" "$WORK/takeover-waiters.log" "$WORK/all.out" "$LEAK_STATUS" \
  "$STATS" "$ELAPSED" "$((WORKERS * CYCLES))" "${TAKEOVER_NS[*]}" <<'EOF'
import json, re, sys
log, tlog, outs, leak_status, stats, elapsed, planned, takeovers = sys.argv[1:9]

def check(path):
    """Overlaps (an enter while someone is inside), bad lines, and figures."""
    overlaps, entries, acq, handoff = [], 0, [], []
    inside, last_exit = set(), None
    for line in open(path):
        f = line.split()
        if f[0] == "enter":
            entries += 1
            if inside:
                overlaps.append(f"{line.strip()} while {sorted(inside)} inside")
            inside.add((f[1], f[2]))
            acq.append(int(f[4]) / 1e6)
            if last_exit is not None and len(inside) == 1:
                handoff.append((int(f[3]) - last_exit) / 1e6)
        elif f[0] == "exit":
            if (f[1], f[2]) not in inside:
                overlaps.append(f"exit without enter: {line.strip()}")
            inside.discard((f[1], f[2]))
            last_exit = int(f[3])
        elif f[0] == "double":
            pass  # the O_EXCL marker saw the overlap counted at its enter
        else:
            overlaps.append(f"unreadable: {line.strip()}")
    return overlaps, entries, acq, handoff

def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

doubles, entries, acq, handoff = check(log)
tdoubles, _, _, _ = check(tlog)
lines = open(outs).read().splitlines()
acq_err = [l for l in lines if l.startswith("ERROR acquire")]
rel_err = [l for l in lines if l.startswith("ERROR release")]
s = json.loads(stats)
faults = {k: v for k, v in s.items() if k not in ("requests", "forwarded")}
tk = [int(x) / 1e9 for x in takeovers.split()]
print(f"contention: {entries}/{planned} critical sections in {int(elapsed) / 1000:.1f} s")
print(f"double holds: {len(doubles)} (contention) + {len(tdoubles)} (takeover waiters)")
for d in (doubles + tdoubles)[:10]:
    print(f"  {d}")
print(f"leaked lock: {'no' if leak_status == '404' else 'YES (GET answered ' + leak_status + ')'}")
print(f"proxy: {s['requests']} requests, {sum(faults.values())} faults "
      f"({100 * sum(faults.values()) / max(1, s['requests']):.1f}%): {faults}")
print(f"errors: acquire {len(acq_err)}, release {len(rel_err)}")
kinds = {}
for l in acq_err + rel_err:
    words = l.split(None, 3)
    msg = words[3] if len(words) > 3 else ""
    # Group by message with the varying parts (who, IDs, numbers) blanked.
    msg = re.sub(r"pid-\d+@\S+|\(ID [^)]*\)|\d+(\.\d+)?", "#", msg)
    kind = f"{words[1]}: {msg[:160]}"
    kinds[kind] = kinds.get(kind, 0) + 1
for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
    print(f"  {n} x {k}")
print(f"acquire latency ms: p50 {pct(acq, 50):.1f}, p99 {pct(acq, 99):.1f}, max {max(acq or [0]):.1f}")
print(f"hand-off ms: p50 {pct(handoff, 50):.1f}, p99 {pct(handoff, 99):.1f}, max {max(handoff or [0]):.1f}")
print("takeover after SIGKILL s: " + ", ".join(f"{x:.2f}" for x in tk)
      + (f" (min {min(tk):.2f}, max {max(tk):.2f})" if tk else ""))
sys.exit(1 if doubles or tdoubles or leak_status != "404" else 0)
EOF
