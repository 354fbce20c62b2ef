#!/usr/bin/env python3
"""Races N concurrent ``PUT If-None-Match: *`` on one fresh key per round and
counts the rounds in which more than one PUT got 200 (a double create: two
lock holders at once).

Starts its own servers: threaded ``moto_server`` (the stock one) and/or
``tests/moto_atomic.py``. On the stock server double 200s are possible
(moto checks the condition, then writes, on a threaded server); on the atomic
one they must never happen. The CI test
``atomic_moto_never_answers_two_creates`` (tests/tests/s3_faults.rs) asserts
the atomic side only, because the threaded race is too rare to assert.

Usage: race_conditional_put.py [--threads 16] [--rounds 300]
                               [--server threaded|atomic|both]
Prints one line per server: ``<server>: <doubles>/<rounds> rounds with >1
winner (max winners in a round: M)``. Exits 1 if the atomic server ever had a
double create.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/s3/"
    "aws4_request, SignedHeaders=host, Signature=" + "0" * 64
)
BUCKET = "race-bucket"


def request(port: int, method: str, path: str, headers: dict, body: bytes = b"") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Authorization": AUTH, **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def start(kind: str) -> tuple[subprocess.Popen, int]:
    python = REPO / ".venv" / "bin" / "python"
    if kind == "atomic":
        cmd = [str(python), str(REPO / "tests" / "moto_atomic.py"), "-p", "0"]
    else:
        cmd = [str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    for line in proc.stderr:
        if "Running on http://" in line:
            port = int(line.rsplit(":", 1)[1].split()[0])
            break
        if time.monotonic() > deadline:
            break
    else:
        proc.kill()
        sys.exit(f"{kind} moto did not start")
    # Keep draining stderr (request log) so the server never blocks on it.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    for _ in range(300):
        try:
            if request(port, "PUT", f"/{BUCKET}", {}) == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"{kind} moto: cannot create the bucket")


def race(port: int, threads: int, rounds: int, body_bytes: int) -> tuple[int, int]:
    doubles = 0
    max_winners = 0
    for r in range(rounds):
        barrier = threading.Barrier(threads)
        statuses: list[int] = []
        lock = threading.Lock()

        def put(i: int, r: int = r) -> None:
            # Everything but the last byte goes out before the barrier, so the
            # requests reach the server as close together as possible.
            body = f"writer {i}".encode().ljust(body_bytes, b".")
            raw = (
                f"PUT /{BUCKET}/round-{r}.tflock HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: {AUTH}\r\nIf-None-Match: *\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode() + body
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(raw[:-1])
                barrier.wait()
                sock.sendall(raw[-1:])
                answer = b""
                while b"\r\n" not in answer:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            status = int(answer.split(b" ", 2)[1]) if answer else 0
            with lock:
                statuses.append(status)

        ts = [threading.Thread(target=put, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        winners = statuses.count(200)
        others = [s for s in statuses if s not in (200, 412)]
        if others:
            sys.exit(f"unexpected statuses {others} in round {r}")
        if winners > 1:
            doubles += 1
        max_winners = max(max_winners, winners)
    return doubles, max_winners


def main() -> None:
    p = argparse.ArgumentParser(description="Race conditional PUTs on moto.")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--rounds", type=int, default=300)
    # A bigger body widens moto's check-then-write window (hashing it, which
    # releases the GIL, happens between the check and the write).
    p.add_argument("--body-bytes", type=int, default=0)
    p.add_argument("--server", choices=["threaded", "atomic", "both"], default="both")
    args = p.parse_args()
    kinds = ["threaded", "atomic"] if args.server == "both" else [args.server]
    failed = False
    for kind in kinds:
        proc, port = start(kind)
        try:
            doubles, max_winners = race(port, args.threads, args.rounds, args.body_bytes)
        finally:
            proc.kill()
            proc.wait()
        print(
            f"{kind}: {doubles}/{args.rounds} rounds with >1 winner "
            f"(max winners in a round: {max_winners}; {args.threads} threads)",
            flush=True,
        )
        failed |= kind == "atomic" and doubles > 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
