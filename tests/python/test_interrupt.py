"""Ctrl-C (SIGINT) while holding or while waiting: no lock is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import HERE, PYTHON, UrllibTransport


def _start(mode: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, str(HERE / "helpers.py"), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expect_line(proc: subprocess.Popen, prefix: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"child never printed {prefix!r}: {proc.stderr.read()}")


def test_ctrl_c_while_holding_releases(make_lock, child_env):
    lock = make_lock()
    child = _start("hold", child_env)
    line = _expect_line(child, "HELD")
    lock_id = line.split()[1]
    assert lock.holder().id == lock_id
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
    assert lock.holder() is None


def test_ctrl_c_while_waiting_cancels_and_cleans_up(make_lock, child_env):
    lock = make_lock()
    lease = lock.acquire()
    child = _start("wait", child_env)
    _expect_line(child, "WAITING")
    time.sleep(1.0)  # let it find the lock held and start waiting
    start = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert time.monotonic() - start < 5, "the wait did not stop promptly"
    assert "KeyboardInterrupt" in err and "ACQUIRED" not in out
    assert lock.holder().id == lease.lock_id
    lease.release()
    time.sleep(0.5)
    assert lock.holder() is None  # the child left nothing behind


def test_ctrl_c_arriving_with_the_acquisition_gives_the_lock_back(make_lock):
    # SIGINT lands while our PUT's answer is on its way back: the lock and
    # the signal reach the waiting call together. The lock is given back,
    # then KeyboardInterrupt is raised, and the block never runs.
    store = UrllibTransport()
    fired = []

    def interrupt_after_our_put(method, url, headers, body):
        status, h, b = store(method, url, headers, body)
        if method == "PUT" and status == 200 and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        return status, h, b

    lock = make_lock(transport=interrupt_after_our_put, verify_conditional_writes="never")
    with pytest.raises(KeyboardInterrupt):
        with lock:
            pytest.fail("the block ran although Ctrl-C came with the acquisition")
    assert fired
    assert make_lock().holder() is None, "the lock was left behind"


def test_ctrl_c_interrupts_a_holder_read_that_keeps_retrying(make_lock):
    def unreachable(method, url, headers, body):
        # A reset may follow a request that arrived: retried for the whole
        # try-once budget (3 s). A refused connection would end the read
        # after one quick repeat, before the Ctrl-C.
        raise ConnectionResetError("the store keeps dropping us")

    lock = make_lock(transport=unreachable)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            lock.holder()  # its retries alone would last 3 s
    finally:
        timer.cancel()
    assert time.monotonic() - start < 10, "Ctrl-C did not stop the read promptly"
