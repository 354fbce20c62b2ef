"""Acquire, release, holder info, timeouts, force-unlock, context managers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import condlock
from condlock import LockHeld, LockTimeout, NotOwned

from conftest import BUCKET, release_in_forked_child


def test_imports_the_installed_wheel_not_the_source_tree():
    path = Path(condlock.__file__).resolve()
    assert "site-packages" in path.parts, path
    assert (path.parent / "py.typed").exists()
    assert (path.parent / "_condlock.pyi").exists()


def test_acquire_release_and_holder(make_lock):
    lock = make_lock(operation="OperationTypeApply", info="running tests", who="ci@box")
    assert lock.holder() is None
    lease = lock.acquire()
    try:
        holder = lock.holder()
        assert holder is not None
        assert holder.id == lease.lock_id
        assert holder.who == "ci@box"
        assert holder.operation == "OperationTypeApply"
        assert holder.info == "running tests"
        assert holder.path == f"{BUCKET}/{lock.key}"
        assert holder.etag == lease.etag
        assert holder.created and holder.created.endswith("Z")
        assert lease.info.id == lease.lock_id
    finally:
        assert lease.release() is True
    assert lock.holder() is None


def test_release_twice_is_harmless(make_lock):
    lock = make_lock()
    lease = lock.acquire()
    assert lease.release() is True
    assert lease.released
    assert lease.release() is False
    # And the lock is really free: another acquire succeeds at once.
    lock.acquire(blocking=False).release()


def test_try_acquire_raises_lock_held_with_holder(make_lock):
    holder_lock = make_lock(who="alice@laptop", info="held by script")
    other = make_lock()
    lease = holder_lock.acquire()
    try:
        with pytest.raises(LockHeld) as err:
            other.acquire(blocking=False)
        e = err.value
        assert isinstance(e, condlock.LockError)
        assert e.holder is not None
        assert e.holder.id == lease.lock_id
        assert e.holder.who == "alice@laptop"
        assert e.holder.info == "held by script"
        assert e.holder.operation == "condlock"
        assert e.holder.etag == lease.etag
        assert e.holder.created
        assert lease.lock_id in str(e) and "force_unlock" in str(e)
    finally:
        lease.release()


def test_timeout_is_a_timeout_error_measured_in_wall_time(make_lock):
    lease = make_lock().acquire()
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError) as err:
            make_lock().acquire(timeout=1.0)
        elapsed = time.monotonic() - start
        assert isinstance(err.value, LockTimeout)
        assert err.value.holder is not None and err.value.holder.id == lease.lock_id
        assert 0.9 <= elapsed < 5.0, elapsed
        assert err.value.waited == pytest.approx(1.0, abs=0.5)
    finally:
        lease.release()


def test_waiter_gets_the_lock_once_released(make_lock):
    import threading

    lease = make_lock().acquire()
    threading.Timer(0.5, lease.release).start()
    start = time.monotonic()
    second = make_lock().acquire(timeout=10)
    assert time.monotonic() - start >= 0.4
    assert second.lock_id != lease.lock_id
    second.release()


def test_force_unlock(make_lock):
    lease = make_lock().acquire()
    admin = make_lock()
    with pytest.raises(NotOwned) as err:
        admin.force_unlock("00000000-0000-0000-0000-000000000000")
    assert err.value.holder is not None and err.value.holder.id == lease.lock_id
    assert admin.holder().id == lease.lock_id  # untouched
    assert admin.force_unlock(lease.lock_id) is True
    assert admin.holder() is None
    assert admin.force_unlock(lease.lock_id) is False
    # The original holder's release is now harmless.
    assert lease.release() is False


def test_with_releases_on_exception(make_lock):
    lock = make_lock()
    with pytest.raises(RuntimeError):
        with lock as lease:
            assert lock.holder().id == lease.lock_id
            raise RuntimeError("boom")
    assert lock.holder() is None


def test_with_is_not_reentrant(make_lock):
    lock = make_lock()
    with lock:
        with pytest.raises(condlock.LockError, match="not re-entrant"):
            with lock:
                pass
    assert lock.holder() is None


def test_lease_as_context_manager(make_lock):
    lock = make_lock()
    with lock.acquire(timeout=5) as lease:
        assert lock.holder().id == lease.lock_id
    assert lease.released and lock.holder() is None


def test_workspace_lock_key_follows_terraform(make_lock, key):
    lock = make_lock(workspace="dev")
    assert lock.lock_key == f"env:/dev/{key}.tflock"
    lock2 = make_lock(workspace="dev", workspace_key_prefix="")
    assert lock2.lock_key == f"dev/{key}.tflock"
    with lock as lease:
        assert lease.info.path == f"{BUCKET}/env:/dev/{key}"
        # Different workspace, different lock.
        lock2.acquire(blocking=False).release()


def test_unreadable_lock_body_is_reported(make_lock, endpoint, key):
    import urllib.request

    lock = make_lock()
    req = urllib.request.Request(
        f"{endpoint}/{BUCKET}/{key}.tflock", method="PUT", data=b"not json at all"
    )
    urllib.request.urlopen(req, timeout=10).close()
    holder = lock.holder()
    assert holder is not None and holder.id is None and holder.error
    with pytest.raises(LockHeld) as err:
        lock.acquire(blocking=False)
    assert err.value.holder.error


@pytest.mark.parametrize("lease", [None, 30], ids=["plain", "leased"])
def test_a_forked_child_cannot_release_its_parents_lock(make_lock, lease):
    # The child inherits the lease object, not the lock: its release() must
    # neither delete the parent's lock nor hang on the parent's renewal.
    lock = make_lock(lease=lease)
    held = lock.acquire()
    report = release_in_forked_child(held)
    assert report.startswith("LockError: ") and "is a fork of it" in report, report
    assert lock.holder().id == held.lock_id, "the child removed its parent's lock"
    assert held.release() is True
