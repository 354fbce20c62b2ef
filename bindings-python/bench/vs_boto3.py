"""condlock vs boto3: client CPU per lock+unlock cycle, and cold start.

Both clients talk to the same servers on 127.0.0.1 in the same run, and do the
same work per cycle: a conditional PUT of the lock file (If-None-Match: *) and
a DELETE conditioned on its ETag. Two servers:

- keepalive_s3.py (next to this file): HTTP/1.1 keep-alive, so each client
  reuses its connection and the figure is the client's own cost;
- moto, which closes every connection (``Connection: close``): each request
  pays a fresh TCP connection, the same for both clients.

Each measurement runs in its own fresh interpreter, interleaved, after a
warm-up of 50 cycles, so neither client warms the other's caches and drift
hits both alike. CPU time is the whole client process's (user + system, all
threads); context switches are the process's (getrusage: voluntary +
involuntary, all threads).

Usage (from a venv with the condlock wheel and boto3 installed):
    python bindings-python/bench/vs_boto3.py [--cycles N] [--moto-cycles N] [--runs R]
Prints Markdown tables with medians, the spread (min-max) of each run's ratio,
and the targets of issue 11: >= 15x less CPU per cycle than boto3 on the
keep-alive server, and >= 15x faster import + first lock object.
"""

from __future__ import annotations

import argparse
import json
import resource
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUCKET = "bench"
ACCESS_KEY = "AKIDBENCH"
SECRET_KEY = "bench-secret"

# Both children measure the same way; MEASURE is appended to each.
MEASURE = r"""
for _ in range(50):  # warm-up (condlock: includes the one-off conditional-write proof)
    cycle()
def switches():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_nvcsw + r.ru_nivcsw
cs0, cpu0, wall0 = switches(), time.process_time(), time.perf_counter()
for _ in range(cycles):
    cycle()
cpu, wall, cs = time.process_time() - cpu0, time.perf_counter() - wall0, switches() - cs0
print(json.dumps({"cpu": cpu / cycles, "wall": wall / cycles, "switches": cs / cycles}))
"""

CYCLE_CONDLOCK = r"""
import json, resource, sys, time
import condlock
endpoint, cycles = sys.argv[1], int(sys.argv[2])
lock = condlock.S3Lock(bucket="bench", key="cycle/condlock.tfstate", endpoint=endpoint,
                       region="us-east-1", access_key_id="AKIDBENCH", secret_access_key="bench-secret")
def cycle():
    lock.acquire(blocking=False).release()
""" + MEASURE

CYCLE_BOTO3 = r"""
import json, resource, sys, time
import boto3
endpoint, cycles = sys.argv[1], int(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")
key = "cycle/boto3.tfstate.tflock"
body = b'{"ID":"6e2f9a53-fdfb-3451-f77a-25cd696a5968","Operation":"OperationTypeApply","Info":"","Who":"bench@host","Version":"1.11.4","Created":"2026-11-22T03:26:23.961866795Z","Path":"bench/cycle/boto3.tfstate"}'
def cycle():
    put = s3.put_object(Bucket="bench", Key=key, Body=body, IfNoneMatch="*",
                        ContentType="application/json", ChecksumAlgorithm="SHA256")
    s3.delete_object(Bucket="bench", Key=key, IfMatch=put["ETag"])
""" + MEASURE

COLD_CONDLOCK = r"""
import time
t0 = time.perf_counter()
import condlock
condlock.S3Lock(bucket="bench", key="cold.tfstate", endpoint="http://127.0.0.1:9",
                region="us-east-1", access_key_id="AKIDBENCH", secret_access_key="bench-secret")
print(time.perf_counter() - t0)
"""

COLD_BOTO3 = r"""
import time
t0 = time.perf_counter()
import boto3
boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
             aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")
print(time.perf_counter() - t0)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_binary() -> str:
    explicit = os.environ.get("CONDLOCK_MOTO_SERVER")
    if explicit:
        return explicit
    candidate = REPO / ".venv" / "bin" / "moto_server"
    return str(candidate) if candidate.exists() else (shutil.which("moto_server") or "moto_server")


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit("moto_server did not start (run scripts/setup.sh)")
            time.sleep(0.05)
    urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT", data=b""), timeout=10).close()
    return proc, url


def start_keepalive() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("keepalive_s3.py"))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        sys.exit("keepalive_s3.py did not start")
    urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT", data=b""), timeout=10).close()
    return proc, url


def connections(url: str) -> int:
    with urllib.request.urlopen(f"{url}/", timeout=10) as resp:
        return int(resp.read())


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def installed_size() -> tuple[int, int]:
    """Bytes of the installed package, and of its extension module."""
    import condlock

    root = Path(condlock.__file__).parent
    files = [p for p in root.rglob("*") if p.is_file()]
    ext = sum(p.stat().st_size for p in files if p.name.startswith("_condlock") and p.suffix == ".so")
    return sum(p.stat().st_size for p in files), ext


def run_py(code: str, *args: str) -> str:
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/nonexistent",
               AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                         timeout=600)
    if out.returncode != 0:
        sys.exit(f"benchmark child failed:\n{out.stderr}")
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=1000, help="measured cycles per run on the keep-alive server")
    ap.add_argument("--moto-cycles", type=int, default=300, help="measured cycles per run on moto")
    ap.add_argument("--runs", type=int, default=5, help="fresh interpreters per measurement (median)")
    args = ap.parse_args()

    load_before = load()
    moto, moto_url = start_moto()
    keepalive, ka_url = start_keepalive()
    clients = {"condlock": CYCLE_CONDLOCK, "boto3": CYCLE_BOTO3}
    servers = {"keep-alive": (ka_url, args.cycles), "moto": (moto_url, args.moto_cycles)}
    cycles: dict[tuple[str, str], list[dict]] = {(s, c): [] for s in servers for c in clients}
    conns: dict[str, list[float]] = {c: [] for c in clients}
    cold: dict[str, list[float]] = {"condlock": [], "boto3": []}
    try:
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            for server, (url, n) in servers.items():
                for client, code in clients.items():
                    before = connections(url) if server == "keep-alive" else 0
                    cycles[(server, client)].append(json.loads(run_py(code, url, str(n))))
                    if server == "keep-alive":
                        conns[client].append((connections(url) - before - 1) / (n + 50))
            cold["condlock"].append(float(run_py(COLD_CONDLOCK)))
            cold["boto3"].append(float(run_py(COLD_BOTO3)))
    finally:
        for proc in (moto, keepalive):
            proc.terminate()
            proc.wait(timeout=10)
    load_after = load()

    med = statistics.median

    def ratio_spread(server: str, field: str) -> str:
        ratios = [b[field] / c[field] for b, c in zip(cycles[(server, "boto3")], cycles[(server, "condlock")])]
        return f"{min(ratios):.1f}–{max(ratios):.1f}x"

    import condlock  # noqa: E402  (for the version line only)
    import boto3  # noqa: E402

    print(f"condlock {condlock.__version__} vs boto3 {boto3.__version__}, Python {sys.version.split()[0]}, "
          f"{args.runs} runs (keep-alive: {args.cycles} cycles, moto: {args.moto_cycles} cycles, "
          f"after 50 warm-up cycles), medians; load average {load_before} before, {load_after} after\n")
    print("| server | measurement | condlock | boto3 | boto3 / condlock (median) | per-run ratios | target |")
    print("|---|---|---|---|---|---|---|")
    for server in servers:
        c, b = cycles[(server, "condlock")], cycles[(server, "boto3")]
        target = ">= 15x" if server == "keep-alive" else "-"
        rows = [("client CPU per lock+unlock cycle", "cpu", 1e6, "µs", target),
                ("wall time per cycle", "wall", 1e3, "ms", "-"),
                ("context switches per cycle (process, all threads)", "switches", 1, "", "-")]
        for label, field, scale, unit, goal in rows:
            cm, bm = med(r[field] for r in c), med(r[field] for r in b)
            fmt = (lambda v: f"{v * scale:.0f} {unit}") if unit == "µs" else (
                (lambda v: f"{v * scale:.2f} {unit}") if unit else (lambda v: f"{v:.2f}"))
            print(f"| {server} | {label} | {fmt(cm)} | {fmt(bm)} | **{bm / cm:.1f}x** "
                  f"| {ratio_spread(server, field)} | {goal} |")
    print(f"| keep-alive | new connections per cycle | {med(conns['condlock']):.3f} | {med(conns['boto3']):.3f} "
          f"| - | - | - |")
    cm, bm = med(cold["condlock"]), med(cold["boto3"])
    ratios = [b / c for b, c in zip(cold["boto3"], cold["condlock"])]
    print(f"| - | import + first lock object / client | {cm * 1e3:.1f} ms | {bm * 1e3:.1f} ms | **{bm / cm:.1f}x** "
          f"| {min(ratios):.1f}–{max(ratios):.1f}x | >= 15x |")
    total, ext = installed_size()
    print(f"\ninstalled package: {total / 1e6:.1f} MB, of which the extension module {ext / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
