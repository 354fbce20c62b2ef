"""Where synchronous calls run: on the calling thread, with its own runtime.

A synchronous call drives its requests on the thread that made it (GIL
released), so an uncontended cycle wakes no other thread; what must go on
while the caller does something else (lease renewal, asyncio) runs on a
background thread. These tests pin that down: no I/O thread for synchronous
calls, log records on the caller's thread, connections kept per thread, many
threads on one lock object, a user transport calling condlock, and a forked
child using a lock after its parent did.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, BUCKET, PYTHON, REPO, SECRET_KEY, UrllibTransport

# The benchmark's keep-alive S3 endpoint (standard library only).
sys.path.insert(0, str(REPO / "bindings-python" / "bench"))
import keepalive_s3  # noqa: E402


THREAD_NAMES = r"""
import os, sys
import condlock
lock = condlock.S3Lock(bucket=sys.argv[2], key="threads/names.tfstate", endpoint=sys.argv[1],
                       region="us-east-1", access_key_id=sys.argv[3], secret_access_key=sys.argv[4])
lock.acquire(blocking=False).release()
lock.holder()
names = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
print(" ".join(names))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_synchronous_calls_start_no_io_thread(endpoint):
    # A fresh interpreter, so no earlier test started the background runtime.
    out = subprocess.run([PYTHON, "-c", THREAD_NAMES, endpoint, BUCKET, ACCESS_KEY, SECRET_KEY],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    assert names, out
    assert "condlock-io" not in names, f"a synchronous cycle started the I/O runtime: {names}"
    # Nor the thread that delivers background log records: nothing was queued.
    assert "condlock-python" not in names, names


def test_log_records_of_a_synchronous_call_come_from_the_calling_thread(make_lock, caplog):
    caplog.set_level(logging.INFO, logger="condlock")
    lock = make_lock()
    errors = []

    def work():
        try:
            lock.acquire(blocking=False).release()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=work, name="caller-7")
    t.start()
    t.join(timeout=60)
    assert not t.is_alive() and not errors, errors
    ours = [r for r in caplog.records if r.getMessage().startswith(("acquired ", "released "))]
    assert len(ours) == 2, [r.getMessage() for r in caplog.records]
    assert {r.threadName for r in ours} == {"caller-7"}


def test_synchronous_cycles_reuse_one_connection_per_thread():
    server = keepalive_s3.start()
    try:
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/{BUCKET}", method="PUT", data=b"")).close()
        import condlock

        lock = condlock.S3Lock(bucket=BUCKET, key="threads/reuse.tfstate", endpoint=server.url,
                               region="us-east-1", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        before = server.connections
        for _ in range(10):
            lock.acquire(blocking=False).release()
        assert lock.holder() is None
        # Another lock object with the same settings, on the same thread,
        # shares the thread's connections.
        other = condlock.S3Lock(bucket=BUCKET, key="threads/other.tfstate", endpoint=server.url,
                                region="us-east-1", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        other.acquire(blocking=False).release()
        assert server.connections - before == 1
        # A second thread has its own connection.
        t = threading.Thread(target=lambda: lock.acquire(blocking=False).release())
        t.start()
        t.join(timeout=60)
        assert server.connections - before == 2
    finally:
        server.shutdown()
        server.server_close()


def test_threads_sharing_one_lock_object_never_hold_at_once(atomic_endpoint, key):
    import condlock

    lock = condlock.S3Lock(bucket=BUCKET, key=key, endpoint=atomic_endpoint, region="us-east-1",
                           access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, max_poll_interval=0.1)
    inside, most, entries = [0], [0], []
    guard = threading.Lock()
    errors = []

    def work(n: int) -> None:
        try:
            for _ in range(3):
                with lock:
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                        entries.append(n)
                    time.sleep(0.02)
                    with guard:
                        inside[0] -= 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert most[0] == 1 and len(entries) == 12 and set(entries) == {0, 1, 2, 3}
    assert lock.holder() is None


def test_a_user_transport_may_call_condlock_synchronously(make_lock, endpoint, key):
    # The transport runs inside the operation's runtime (a blocking-pool
    # thread): its own synchronous condlock call cannot drive a runtime
    # there, and must still work.
    import condlock

    other = make_lock(key=f"{key}.other")
    store = UrllibTransport()
    seen = []

    def transport(method, url, headers, body):
        seen.append(other.holder())
        return store(method, url, headers, body)

    lock = make_lock(transport=transport, verify_conditional_writes="never")
    held = lock.acquire(blocking=False)
    assert held.release() is True
    assert seen and all(h is None for h in seen)
    assert isinstance(other, condlock.S3Lock)


def test_a_forked_child_uses_a_lock_after_its_parent_did(make_lock, key):
    lock = make_lock()
    lock.acquire(blocking=False).release()  # the parent's runtime and client exist now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a cycle on the inherited lock object, and on a new one
        code = 1
        try:
            os.close(r)
            try:
                lock.acquire(blocking=False).release()
                fresh = make_lock(key=f"{key}.child")
                fresh.acquire(blocking=False).release()
                report = f"ok {lock.holder()} {fresh.holder()}"
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                report = f"{type(e).__name__}: {e}"
            os.write(w, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 30)
        if not ready:
            os.kill(pid, 9)
            pytest.fail("the forked child's cycle hung")
        report = os.read(r, 65536).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert report == "ok None None", report
    # The parent's own runtime and connections still work.
    lock.acquire(blocking=False).release()
    assert lock.holder() is None
