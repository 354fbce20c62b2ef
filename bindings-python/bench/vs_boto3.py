"""condlock vs boto3: client CPU per lock+unlock cycle, and cold start.

Both clients talk to the same moto server on 127.0.0.1 in the same run, and do
the same work per cycle: a conditional PUT of the lock file (If-None-Match: *)
and a DELETE conditioned on its ETag. Each measurement runs in its own fresh
interpreter, so neither client warms the other's caches. CPU time is the whole
client process's (all threads: condlock's Rust I/O threads count too).

Usage (from a venv with the condlock wheel and boto3 installed):
    python bindings-python/bench/vs_boto3.py [--cycles N] [--runs R]
Prints a Markdown table with ratios; the targets from issue 5 are >= 20x less
CPU per cycle and >= 10x faster import + first lock object than boto3.
"""

from __future__ import annotations

import argparse
import json
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

CYCLE_CONDLOCK = r"""
import json, sys, time
import condlock
endpoint, cycles = sys.argv[1], int(sys.argv[2])
lock = condlock.S3Lock(bucket="bench", key="cycle/condlock.tfstate", endpoint=endpoint,
                       region="us-east-1", access_key_id="AKIDBENCH", secret_access_key="bench-secret")
for _ in range(20):  # warm-up (includes the one-off conditional-write proof)
    lock.acquire(blocking=False).release()
cpu0, wall0 = time.process_time(), time.perf_counter()
for _ in range(cycles):
    lock.acquire(blocking=False).release()
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
print(json.dumps({"cpu": cpu / cycles, "wall": wall / cycles}))
"""

CYCLE_BOTO3 = r"""
import json, sys, time
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
for _ in range(20):
    cycle()
cpu0, wall0 = time.process_time(), time.perf_counter()
for _ in range(cycles):
    cycle()
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
print(json.dumps({"cpu": cpu / cycles, "wall": wall / cycles}))
"""

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
    ap.add_argument("--cycles", type=int, default=300, help="measured lock+unlock cycles per run")
    ap.add_argument("--runs", type=int, default=5, help="fresh interpreters per measurement (median)")
    args = ap.parse_args()

    proc, endpoint = start_moto()
    try:
        cycles = {"condlock": [], "boto3": []}
        cold = {"condlock": [], "boto3": []}
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            cycles["condlock"].append(json.loads(run_py(CYCLE_CONDLOCK, endpoint, str(args.cycles))))
            cycles["boto3"].append(json.loads(run_py(CYCLE_BOTO3, endpoint, str(args.cycles))))
            cold["condlock"].append(float(run_py(COLD_CONDLOCK)))
            cold["boto3"].append(float(run_py(COLD_BOTO3)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    med = lambda xs: statistics.median(xs)  # noqa: E731
    cpu = {k: med([r["cpu"] for r in v]) for k, v in cycles.items()}
    wall = {k: med([r["wall"] for r in v]) for k, v in cycles.items()}
    start = {k: med(v) for k, v in cold.items()}
    import condlock  # noqa: E402  (for the version line only)
    import boto3  # noqa: E402

    print(f"condlock {condlock.__version__} vs boto3 {boto3.__version__}, Python {sys.version.split()[0]}, "
          f"{args.runs} runs x {args.cycles} cycles, medians\n")
    print("| measurement | condlock | boto3 | boto3 / condlock | target |")
    print("|---|---|---|---|---|")
    print(f"| client CPU per lock+unlock cycle | {cpu['condlock'] * 1e6:.0f} µs | {cpu['boto3'] * 1e6:.0f} µs "
          f"| **{cpu['boto3'] / cpu['condlock']:.1f}x** | >= 20x |")
    print(f"| wall time per cycle (loopback moto; server-bound) | {wall['condlock'] * 1e3:.2f} ms "
          f"| {wall['boto3'] * 1e3:.2f} ms | {wall['boto3'] / wall['condlock']:.1f}x | - |")
    print(f"| import + first lock object / client | {start['condlock'] * 1e3:.1f} ms | {start['boto3'] * 1e3:.1f} ms "
          f"| **{start['boto3'] / start['condlock']:.1f}x** | >= 10x |")


if __name__ == "__main__":
    main()
