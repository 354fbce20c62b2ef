"""Leases on the S3 lock: background renewal, lost-lock signal, takeover,
fencing, exit-path release deadline, and user-transport programming errors."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import threading
import time

import pytest

import condlock
from conftest import ACCESS_KEY, BUCKET, HERE, PYTHON, SECRET_KEY, UrllibTransport

LEASE = 1.5  # seconds: renew every 0.5 s, give up 0.3 s before the end


def _s3(endpoint):
    boto3 = pytest.importorskip("boto3")
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def _read_lock(endpoint, key):
    obj = _s3(endpoint).get_object(Bucket=BUCKET, Key=f"{key}.tflock")
    return obj["ETag"], json.loads(obj["Body"].read())


def _busy_with_the_gil(seconds: float) -> None:
    """Hold the GIL without a break: one C call (sum over a range) at a time,
    each lasting about a whole lease, so that a renewal which had to wait for
    the GIL (to log, say) would certainly miss its deadline."""
    n = 2_000_000
    t = time.perf_counter()
    sum(range(n))
    per = max(time.perf_counter() - t, 1e-6) / n
    chunk = int(min(seconds, LEASE) / per)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(chunk))


def test_lease_renews_while_python_is_busy(make_lock, endpoint, key, caplog):
    # Renewals log at DEBUG: those records must reach `logging` without the
    # renewal ever waiting for the GIL.
    caplog.set_level(logging.DEBUG, logger="condlock")
    lock = make_lock(lease=LEASE)
    assert lock.lease == LEASE and lock.takeover is False and lock.stale_after is None
    lease = lock.acquire()
    try:
        assert lease.lease == LEASE
        first = lease.etag
        assert lease.generation == 1 and lease.fencing_token == (1, first)
        _, body = _read_lock(endpoint, key)
        assert body["Lease"]["Renewals"] == 0 and body["Lease"]["Generation"] == 1
        _busy_with_the_gil(3.0)
        etag, body = _read_lock(endpoint, key)
        # Every 0.5 s: at least 4 renewals in 3 s, although the GIL was held.
        assert body["Lease"]["Renewals"] >= 4, body
        assert lease.lost is None and not lease.lost_event.is_set()
        assert lease.etag == etag != first
        assert lease.generation == 1 and lease.fencing_token == (1, etag)
        # Terraform's seven fields are still there, unchanged.
        assert body["ID"] == lease.lock_id and body["Who"] == lock.who
    finally:
        assert lease.release() is True
    renewed = [r for r in caplog.records if r.getMessage().startswith("renewed ")]
    assert len(renewed) >= 4 and {r.name for r in renewed} == {"condlock.s3.lease"}
    assert lock.holder() is None
    assert lease.release() is False  # twice is harmless
    # No renewal brings it back after release.
    time.sleep(LEASE)
    assert lock.holder() is None


def test_force_unlocked_lease_is_lost_as_gone(make_lock):
    seen = []
    lock = make_lock(lease=LEASE, on_lost=seen.append)
    lease = lock.acquire()
    assert lease.wait_lost(timeout=0.1) is None
    assert make_lock().force_unlock(lease.lock_id) is True
    start = time.monotonic()
    reason = lease.wait_lost(timeout=2 * LEASE)
    assert reason is not None, "the loss was not noticed within two lease periods"
    assert time.monotonic() - start < 2 * LEASE
    assert reason == "gone" and reason.kind == "gone" and "deleted" in reason.message
    assert lease.lost == "gone" and lease.lost_event.is_set()
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.kind for r in seen] == ["gone"]
    with pytest.raises(condlock.LockLost) as err:
        lease.release()
    assert err.value.reason == "gone" and err.value.reason.kind == "gone"
    assert "no longer ours" in str(err.value)
    # Released (nothing of ours is left): a second call is harmless.
    assert lease.release() is False


def test_overwritten_lease_is_lost_as_stolen(make_lock, endpoint, key):
    lease = make_lock(lease=LEASE).acquire()
    intruder = {
        "ID": "11111111-2222-3333-4444-555555555555", "Operation": "OperationTypeApply",
        "Info": "", "Who": "intruder@elsewhere", "Version": "1.9.0",
        "Created": "2024-01-01T00:00:00Z", "Path": f"{BUCKET}/{key}",
    }
    # A raw, unconditional PUT (what a careless tool would do).
    _s3(endpoint).put_object(Bucket=BUCKET, Key=f"{key}.tflock",
                             Body=json.dumps(intruder).encode())
    reason = lease.wait_lost(timeout=2 * LEASE)
    assert reason is not None and reason.kind == "stolen", reason
    assert reason.holder is not None and reason.holder.id == intruder["ID"]
    assert reason.holder.who == "intruder@elsewhere"
    with pytest.raises(condlock.LockLost) as err:
        lease.release()
    assert err.value.reason.kind == "stolen"
    # The intruder's lock was left alone.
    assert _read_lock(endpoint, key)[1]["ID"] == intruder["ID"]


def test_with_block_raises_lock_lost_unless_it_raised(make_lock):
    lock = make_lock(lease=LEASE)
    with pytest.raises(condlock.LockLost) as err:
        with lock as lease:
            make_lock().force_unlock(lease.lock_id)
            assert lease.wait_lost(timeout=2 * LEASE) == "gone"
    assert err.value.reason == "gone"
    # The block's own exception wins over the loss.
    with pytest.raises(ZeroDivisionError):
        with lock as lease:
            make_lock().force_unlock(lease.lock_id)
            assert lease.wait_lost(timeout=2 * LEASE) == "gone"
            1 / 0
    # A healthy lease leaves quietly.
    with lock:
        time.sleep(LEASE)
    assert lock.holder() is None


def test_asyncio_awaits_the_lost_signal(make_lock):
    lock = make_lock(lease=LEASE)

    async def main():
        lease = await lock.acquire_async()
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        t = asyncio.create_task(ticker())
        await lock.force_unlock_async(lease.lock_id)
        reason = await asyncio.wait_for(lease.wait_lost_async(), 2 * LEASE)
        t.cancel()
        assert reason.kind == "gone" and ticks > 3  # the loop kept running
        assert (await lease.wait_lost_async()) == "gone"  # already lost: at once
        with pytest.raises(condlock.LockLost):
            await lease.release_async()
        assert await lease.release_async() is False
        # async with: leaving after a loss raises LockLost.
        with pytest.raises(condlock.LockLost):
            async with lock as lease2:
                await lock.force_unlock_async(lease2.lock_id)
                await asyncio.wait_for(lease2.wait_lost_async(), 2 * LEASE)
        # A healthy one: the waiter is still pending when we release.
        async with lock as lease3:
            waiter = asyncio.ensure_future(lease3.wait_lost_async())
            await asyncio.sleep(LEASE)
            assert not waiter.done()
            waiter.cancel()

    asyncio.run(main())
    assert lock.holder() is None


def _wait_line(proc, prefix, timeout):
    """The first stdout line of `proc` starting with `prefix` (a thread reads)."""
    out = []

    def read():
        for line in proc.stdout:
            if line.startswith(prefix):
                out.append(line.strip())
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else None


def test_killed_holder_is_taken_over_by_exactly_one_waiter(child_env, make_lock):
    script = str(HERE / "lease_holder.py")
    holder = subprocess.Popen([PYTHON, script, "hold", "2"], env=child_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiters = []
    try:
        assert _wait_line(holder, "HELD", 30), holder.stderr.read()
        waiters = [
            subprocess.Popen([PYTHON, script, "takeover", "3"], env=child_env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for _ in range(4)
        ]
        for w in waiters:
            assert _wait_line(w, "WAITING", 30)
        time.sleep(1.0)  # the waiters have seen the holder's ETag
        # While the holder renews, nobody takes over (3 lease periods).
        lines = {}

        def collect(w):
            line = _wait_line(w, "ACQUIRED", 60)
            if line:
                lines[w.pid] = line

        threads = [threading.Thread(target=collect, args=(w,), daemon=True) for w in waiters]
        for t in threads:
            t.start()
        time.sleep(6.0)
        assert lines == {}, "a live, renewing holder was taken over"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        deadline = killed + 20
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lines, "nobody took over the dead holder's lock"
        took = time.monotonic() - killed
        assert took >= 1.0, f"taken over {took:.1f}s after the kill, before the lease ran out"
        # Give the others several lease periods of the winner: still one.
        time.sleep(7.0)
        assert len(lines) == 1, lines
        (line,) = lines.values()
        _, gen, etag = line.split()
        assert gen == "2"
        assert make_lock().holder().etag != ""
    finally:
        for p in [holder, *waiters]:
            if p.poll() is None:
                p.kill()
            p.wait(10)


def test_lock_without_lease_is_never_taken_over(make_lock):
    terraform_like = make_lock().acquire()  # no lease: never expires
    try:
        taker = make_lock(lease=LEASE, takeover=True)
        with pytest.raises(condlock.LockTimeout):
            taker.acquire(timeout=4)
        assert make_lock().holder().id == terraform_like.lock_id
        # Only an explicit staleness age takes it over.
        stale = make_lock(lease=LEASE, takeover=True, stale_after=1.0, max_poll_interval=0.2)
        start = time.monotonic()
        lease = stale.acquire(timeout=10)
        assert time.monotonic() - start >= 0.9
        assert make_lock().holder().id == lease.lock_id
        assert lease.generation == 1
        with pytest.raises(condlock.NotOwned):
            terraform_like.release()  # taken over: not ours any more
        assert lease.release() is True
    finally:
        if make_lock().holder() is not None:
            make_lock().force_unlock(make_lock().holder().id)


def test_lease_configuration_errors(make_lock):
    with pytest.raises(condlock.InvalidConfiguration) as err:
        make_lock(lease=0.5)
    assert err.value.field == "lease"
    with pytest.raises(condlock.InvalidConfiguration) as err:
        make_lock(lease=-3)
    assert err.value.field == "lease"
    with pytest.raises(condlock.InvalidConfiguration) as err:
        make_lock(stale_after=0)
    assert err.value.field == "stale_after"
    with pytest.raises(condlock.InvalidConfiguration) as err:
        make_lock(on_lost="not callable")
    assert err.value.field == "on_lost"
    plain = make_lock().acquire()
    assert plain.lease is None and plain.generation == 0 and plain.lost is None
    assert plain.wait_lost(timeout=0.05) is None
    assert plain.release() is True and plain.release() is False


def test_exit_path_release_uses_the_short_deadline(make_lock):
    transport = UrllibTransport()
    lock = make_lock(transport=transport)
    start = None
    with pytest.raises(RuntimeError, match="the block failed"):
        with lock:
            transport.dark = True
            start = time.monotonic()
            raise RuntimeError("the block failed")
    took = time.monotonic() - start
    assert condlock._s3.EXIT_RELEASE_TIMEOUT == 10.0
    # Retried until the short deadline (not the 30 s default), then given up.
    assert 8.0 <= took <= 13.0, took
    transport.dark = False
    assert lock.holder() is not None  # the release could not happen
    make_lock().force_unlock(lock.holder().id)


def test_transport_returning_garbage_fails_fast_with_type_error(make_lock):
    calls = []

    def broken(method, url, headers, body):
        calls.append(method)
        return "not a response"

    lock = make_lock(transport=broken)
    start = time.monotonic()
    with pytest.raises(TypeError, match=r"must return \(status"):
        lock.acquire(timeout=60)
    assert time.monotonic() - start < 5
    with pytest.raises(TypeError):
        lock.holder()
    with pytest.raises(TypeError):
        lock.force_unlock("some-id")

    async def main():
        with pytest.raises(TypeError):
            await lock.acquire_async(timeout=60)

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 5


def test_transport_raising_a_bug_fails_fast_with_that_exception(make_lock):
    good = UrllibTransport()
    mode = {"bug": False}

    def transport(method, url, headers, body):
        if mode["bug"]:
            raise KeyError("a bug in the transport")
        return good(method, url, headers, body)

    lock = make_lock(transport=transport)
    lease = lock.acquire()
    mode["bug"] = True
    start = time.monotonic()
    with pytest.raises(KeyError, match="a bug in the transport"):
        lease.release()
    assert time.monotonic() - start < 5
    assert not lease.released  # a later release can still do it
    mode["bug"] = False
    assert lease.release() is True

    async def async_bug(method, url, headers, body):
        raise ValueError("async bug")

    async def main():
        with pytest.raises(ValueError, match="async bug"):
            await make_lock(transport=async_bug).acquire_async(timeout=60)

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 5


def test_transport_oserror_is_still_retried(make_lock):
    good = UrllibTransport()
    failures = {"left": 3}

    def flaky(method, url, headers, body):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionResetError("flaky network")
        return good(method, url, headers, body)

    lease = make_lock(transport=flaky).acquire(timeout=30)
    assert failures["left"] == 0
    assert lease.release() is True
