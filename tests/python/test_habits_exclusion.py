"""The threading.Lock habit excludes: threads sharing one lock object with
acquire()/release(), and threads calling a decorated function, never hold
at once. Counts holders, so it runs on the atomic moto (see conftest)."""

from __future__ import annotations

import threading
import time

import pytest


@pytest.fixture
def endpoint(atomic_endpoint):
    return atomic_endpoint


def _run_threads(target, n: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a thread hung"


def test_threads_sharing_one_lock_object_take_turns(make_lock):
    lock = make_lock(max_poll_interval=0.05)
    inside = []
    overlaps = []
    entries = []

    def worker():
        for _ in range(3):
            lock.acquire(timeout=120)
            try:
                if inside:
                    overlaps.append(list(inside))
                inside.append(threading.get_ident())
                entries.append(1)
                time.sleep(0.02)
                inside.pop()
            finally:
                assert lock.release() is True

    _run_threads(worker, 4)
    assert not overlaps, overlaps
    assert len(entries) == 12
    assert lock.holder() is None and not lock.locked()


def test_threads_calling_a_decorated_function_take_turns(make_lock):
    lock = make_lock(max_poll_interval=0.05)
    inside = []
    overlaps = []
    calls = []

    @lock(timeout=120)
    def critical():
        if inside:
            overlaps.append(list(inside))
        inside.append(1)
        calls.append(1)
        time.sleep(0.02)
        inside.pop()

    def worker():
        for _ in range(3):
            critical()

    _run_threads(worker, 4)
    assert not overlaps, overlaps
    assert len(calls) == 12
    assert lock.holder() is None
