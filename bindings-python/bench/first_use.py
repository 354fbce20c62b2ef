"""What a first use costs: a lock object, and a thread's first cycle.

Each thread's synchronous calls run on that thread's own runtime with its own
HTTP client and connection, so a thread's first cycle builds them; a lock
object's constructor builds the constructing thread's client unless that thread
already has one with the same transport settings. This measures, against the
keep-alive server (keepalive_s3.py, in its own process):

- making the first and the second lock object in a fresh interpreter;
- the first and the second cycle of each of N fresh threads using one lock
  object (wall time, medians).

Usage (from a venv with the condlock wheel):
    python bindings-python/bench/first_use.py [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

CREDS = dict(region="us-east-1", access_key_id="AKIDBENCH", secret_access_key="bench-secret")

COLD = r"""
import time
t0 = time.perf_counter()
import condlock
t1 = time.perf_counter()
condlock.S3Lock(bucket="bench", key="a.tfstate", endpoint="http://127.0.0.1:9", region="us-east-1",
                access_key_id="AKIDBENCH", secret_access_key="bench-secret")
t2 = time.perf_counter()
condlock.S3Lock(bucket="bench", key="b.tfstate", endpoint="http://127.0.0.1:9", region="us-east-1",
                access_key_id="AKIDBENCH", secret_access_key="bench-secret")
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=30, help="fresh threads (and fresh interpreters)")
    args = ap.parse_args()

    cold = [tuple(map(float, subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                                            check=True).stdout.split()))
            for _ in range(args.threads)]
    med = statistics.median
    print(f"fresh interpreter, medians of {args.threads}: import condlock {med(c[0] for c in cold) * 1e3:.1f} ms, "
          f"first lock object {med(c[1] for c in cold) * 1e3:.2f} ms, "
          f"second lock object {med(c[2] for c in cold) * 1e3:.2f} ms")

    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("keepalive_s3.py"))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        urllib.request.urlopen(urllib.request.Request(f"{url}/bench", method="PUT", data=b""), timeout=10).close()
        import condlock

        lock = condlock.S3Lock(bucket="bench", key="first-use.tfstate", endpoint=url, **CREDS)
        for _ in range(50):  # warm-up, and the one-off conditional-write proof
            lock.acquire(blocking=False).release()
        firsts: list[float] = []
        seconds: list[float] = []

        def two_cycles() -> None:
            for out in (firsts, seconds):
                t = time.perf_counter()
                lock.acquire(blocking=False).release()
                out.append(time.perf_counter() - t)

        for _ in range(args.threads):
            t = threading.Thread(target=two_cycles)
            t.start()
            t.join()
        print(f"fresh threads, medians of {args.threads}: first cycle {med(firsts) * 1e3:.2f} ms, "
              f"second cycle {med(seconds) * 1e3:.2f} ms (wall)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
