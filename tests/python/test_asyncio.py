"""The asyncio API: never blocks the loop, cancellation cleans up."""

from __future__ import annotations

import asyncio
import time

import pytest

from condlock import LockHeld, LockTimeout


def test_acquire_async_does_not_block_the_loop(make_lock):
    holder = make_lock().acquire()

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        start = time.monotonic()
        with pytest.raises(LockTimeout) as err:
            await make_lock().acquire_async(timeout=1.0)
        elapsed = time.monotonic() - start
        t.cancel()
        return ticks, elapsed, err.value

    try:
        ticks, elapsed, err = asyncio.run(main())
    finally:
        holder.release()
    assert elapsed >= 0.9
    # A blocked loop would tick once or twice; a free one about 100 times.
    assert ticks > 30, ticks
    assert isinstance(err, TimeoutError) and err.holder.id == holder.lock_id


def test_async_try_acquire_and_holder(make_lock):
    async def main():
        lock = make_lock(info="async holder")
        lease = await lock.acquire_async()
        try:
            h = await lock.holder_async()
            assert h.id == lease.lock_id and h.info == "async holder"
            with pytest.raises(LockHeld) as err:
                await make_lock().acquire_async(blocking=False)
            assert err.value.holder.id == lease.lock_id
        finally:
            assert await lease.release_async() is True
            assert await lease.release_async() is False
        assert await lock.holder_async() is None

    asyncio.run(main())


def test_cancelling_a_waiting_task_leaves_no_lock(make_lock):
    lock = make_lock()
    holder = lock.acquire()

    async def main():
        waiter = asyncio.create_task(make_lock().acquire_async())
        await asyncio.sleep(0.5)
        assert not waiter.done()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
    assert lock.holder().id == holder.lock_id  # the holder was not disturbed
    holder.release()
    # The cancelled waiter did not take the lock behind our back.
    time.sleep(1.0)
    assert lock.holder() is None


def test_async_with_releases_on_cancellation(make_lock):
    lock = make_lock()

    async def main():
        inside = asyncio.Event()

        async def body():
            async with lock:
                inside.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(body())
        await asyncio.wait_for(inside.wait(), 10)
        assert (await lock.holder_async()) is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert lock.holder() is None


def test_async_with_releases_on_exception(make_lock):
    lock = make_lock()

    async def main():
        with pytest.raises(ValueError):
            async with lock as lease:
                assert (await lock.holder_async()).id == lease.lock_id
                raise ValueError("boom")

    asyncio.run(main())
    assert lock.holder() is None


def test_async_force_unlock(make_lock):
    lock = make_lock()
    lease = lock.acquire()

    async def main():
        assert await lock.force_unlock_async(lease.lock_id) is True
        assert await lock.holder_async() is None

    asyncio.run(main())
