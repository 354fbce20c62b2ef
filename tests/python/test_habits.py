"""The habits Python users bring from threading.Lock, filelock and redis-py:
acquire()/release()/locked() on the lock object, no re-entrancy, decorators,
feedback while waiting, argument types, what release says about a lock that
was removed, and LockInfo times."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import logging
import threading
import time

import pytest

import condlock
from condlock import (
    InvalidConfiguration,
    LockError,
    LockHeld,
    LockInfo,
    LockTimeout,
    NotOwned,
)

# A generous "did not hang" bound for things that must happen at once.
PROMPT = 20.0


def _reentrant(err: pytest.ExceptionInfo) -> None:
    e = err.value
    assert type(e) is LockError, type(e)
    assert "not re-entrant" in str(e) and "already held by this thread or task" in str(e)
    # Not the advice given for someone else's lock.
    assert "force_unlock" not in str(e)


# -- 1. acquire() / release() / locked() on the lock object ----------------------


def test_acquire_then_release_on_the_lock_object(make_lock):
    lock = make_lock()
    assert not lock.locked()
    assert lock.release() is False  # nothing held: harmless
    held = lock.acquire(timeout=5)
    assert lock.locked()
    assert lock.holder().id == held.lock_id
    assert lock.release() is True
    assert not lock.locked() and held.released
    assert lock.holder() is None
    assert lock.release() is False


def test_the_held_lock_returned_by_acquire_still_works(make_lock):
    lock = make_lock()
    held = lock.acquire()
    assert held.release() is True
    assert not lock.locked()
    assert lock.release() is False  # already released through the held lock
    with lock.acquire(timeout=5) as held:
        assert lock.locked()
    assert held.released and not lock.locked()


def test_with_block_makes_the_object_locked(make_lock):
    lock = make_lock()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_another_thread_waits_and_gets_the_lock_after_release(make_lock):
    lock = make_lock()
    lock.acquire()
    got = []

    def other_thread():
        held = lock.acquire(timeout=60)  # the same object, another thread: waits
        got.append(held.lock_id)
        lock.release()

    t = threading.Thread(target=other_thread)
    t.start()
    time.sleep(0.5)
    assert not got  # still waiting for us
    assert lock.release() is True
    t.join(timeout=60)
    assert not t.is_alive() and len(got) == 1
    assert lock.holder() is None


def test_mutex_acquire_release_locked(make_mutex):
    mutex = make_mutex()
    held = mutex.acquire(timeout=5)
    assert mutex.locked()
    assert mutex.holder().id == held.tag_id
    assert mutex.release() is True
    assert not mutex.locked() and mutex.holder() is None
    assert mutex.release() is False


def test_async_acquire_release_on_the_lock_object(make_lock):
    async def main():
        lock = make_lock()
        await lock.acquire_async(timeout=5)
        assert lock.locked()
        assert await lock.release_async() is True
        assert not lock.locked()
        assert await lock.holder_async() is None

    asyncio.run(main())


# -- 2. not re-entrant ---------------------------------------------------------------


def _rescue(held) -> threading.Timer:
    """Release `held` after a generous bound: without the refusal, an
    acquisition would wait for ourselves forever, and the test must fail
    instead of hanging."""
    t = threading.Timer(60, held.release)
    t.daemon = True
    t.start()
    return t


def test_a_second_acquire_on_the_same_object_is_refused_at_once(make_lock):
    lock = make_lock()
    held = lock.acquire()
    rescue = _rescue(held)
    try:
        for kwargs in (dict(blocking=False), dict(timeout=60), dict()):
            start = time.monotonic()
            with pytest.raises(LockError) as err:
                lock.acquire(**kwargs)
            _reentrant(err)
            assert time.monotonic() - start < PROMPT
        assert lock.locked()
    finally:
        rescue.cancel()
        held.release()
    # Once released, acquiring again is fine.
    lock.acquire(blocking=False)
    assert lock.release() is True


def test_waiting_forever_through_another_object_for_the_same_lock_is_refused(make_lock):
    lock, other = make_lock(), make_lock()
    held = lock.acquire()
    rescue = _rescue(held)
    try:
        with pytest.raises(LockError) as err:
            with other:
                pass
        _reentrant(err)
        with pytest.raises(LockError) as err:
            other.acquire()
        _reentrant(err)
        # A bounded try through another object is still made (that is how one
        # process plays two holders): it reports the holder as usual.
        with pytest.raises(LockHeld):
            other.acquire(blocking=False)
    finally:
        rescue.cancel()
        held.release()


def test_the_same_lock_on_another_server_is_another_lock(make_lock, endpoint):
    lock = make_lock()
    # The same bucket and key, spelled with another host name: another
    # identity for the register (it cannot know both reach the same store).
    other = make_lock(endpoint=endpoint.replace("127.0.0.1", "localhost"))
    with lock:
        with pytest.raises(LockHeld):
            other.acquire(blocking=False)


def test_asyncio_tasks_take_turns_but_a_task_cannot_reenter(make_lock):
    async def main():
        lock = make_lock()
        order = []

        async def worker(name):
            async with lock:
                order.append(("in", name))
                with pytest.raises(LockError) as err:
                    await lock.acquire_async()
                _reentrant(err)
                await asyncio.sleep(0.2)
                order.append(("out", name))

        await asyncio.wait_for(asyncio.gather(worker("a"), worker("b")), timeout=120)
        assert [k for k, _ in order] == ["in", "out", "in", "out"]
        assert await lock.holder_async() is None

    asyncio.run(main())


def test_mutex_is_not_reentrant_either(make_mutex):
    mutex, other = make_mutex(), make_mutex()
    with mutex as held:
        rescue = _rescue(held)
        try:
            with pytest.raises(LockError) as err:
                mutex.acquire(blocking=False)
            _reentrant(err)
            with pytest.raises(LockError) as err:
                other.acquire()
            _reentrant(err)
        finally:
            rescue.cancel()


# -- 4. decorators -------------------------------------------------------------------


def test_decorating_a_function(make_lock):
    lock = make_lock()
    seen = []

    @lock
    def work(x, *, y=0):
        """Doc of work."""
        seen.append((lock.locked(), lock.holder() is not None))
        return x + y

    assert work.__name__ == "work" and work.__doc__ == "Doc of work."
    assert work(1, y=2) == 3
    assert seen == [(True, True)]
    assert lock.holder() is None and not lock.locked()
    assert work(2) == 2  # again: it was released


def test_decorator_with_options_raises_instead_of_calling(make_lock):
    lock, holder = make_lock(), make_lock()
    calls = []

    @lock(timeout=0.5)
    def waits_a_little():
        calls.append(1)

    @lock(blocking=False)
    def tries_once():
        calls.append(2)

    with holder:
        with pytest.raises(LockTimeout):
            waits_a_little()
        with pytest.raises(LockHeld):
            tries_once()
    assert calls == []
    waits_a_little()
    tries_once()
    assert calls == [1, 2]


def test_decorated_function_that_raises_releases(make_lock):
    lock = make_lock()

    @lock
    def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    assert lock.holder() is None


def test_decorating_a_coroutine_function(make_lock):
    async def main():
        lock = make_lock()

        @lock(timeout=10)
        async def work(x):
            await asyncio.sleep(0)
            assert lock.locked()
            return (await lock.holder_async()) is not None, x

        assert inspect.iscoroutinefunction(work) and work.__name__ == "work"
        assert await work(5) == (True, 5)
        assert await lock.holder_async() is None

    asyncio.run(main())


def test_decorator_refuses_a_non_function(make_lock):
    with pytest.raises(TypeError, match="decorates a function"):
        make_lock()(42)


def test_decorating_with_the_mutex(make_mutex):
    mutex = make_mutex()

    @mutex
    def work():
        return mutex.holder() is not None

    assert work() is True
    assert mutex.holder() is None


# -- 5. feedback while waiting ---------------------------------------------------------


def _release_after_waits(events: list, held, waits: int) -> threading.Thread:
    """Release `held` once `waits` wait events were seen (at most 60 s)."""

    def run():
        deadline = time.monotonic() + 60
        while len(events) < waits and time.monotonic() < deadline:
            time.sleep(0.05)
        held.release()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_on_wait_gets_each_wait_and_the_first_is_logged_at_info(make_lock, caplog):
    caplog.set_level(logging.DEBUG, logger="condlock")
    holder = make_lock(who="alice@host", info="deploying")
    held = holder.acquire()
    events: list = []
    waiter = make_lock(max_poll_interval=0.1)
    t = _release_after_waits(events, held, 3)
    mine = waiter.acquire(timeout=60, on_wait=events.append)
    t.join(timeout=60)
    try:
        assert len(events) >= 3
        first = events[0]
        assert isinstance(first, condlock.WaitEvent)
        assert isinstance(first.holder, LockInfo)
        assert first.holder.id == held.lock_id and first.holder.who == "alice@host"
        assert first.new_holder is True
        assert all(e.new_holder is False for e in events[1:])
        assert first.waited >= 0 and first.next_try_in > 0
        assert events[-1].waited >= first.waited
        assert "alice@host" in first.message and str(first) == first.message
        # The first wait at INFO, naming the lock and its holder; later ones
        # at DEBUG.
        url = f"s3://{waiter.bucket}/{waiter.lock_key}"
        infos = [r.getMessage() for r in caplog.records
                 if r.name.startswith("condlock") and r.levelno == logging.INFO
                 and r.getMessage().startswith("acquiring ")]
        assert len(infos) == 1, infos
        assert infos[0].startswith(f"acquiring {url}: held by alice@host (ID {held.lock_id}")
        assert "; waiting (next try in" in infos[0]
        debugs = [r for r in caplog.records if r.levelno == logging.DEBUG
                  and r.getMessage().startswith("waiting for the lock, held by alice@host")]
        assert debugs
    finally:
        mine.release()


def test_a_lock_level_on_wait_is_the_default(make_lock):
    holder = make_lock()
    held = holder.acquire()
    events: list = []
    waiter = make_lock(on_wait=events.append)
    t = _release_after_waits(events, held, 1)
    waiter.acquire(timeout=60)
    t.join(timeout=60)
    assert events and events[0].holder.id == held.lock_id
    waiter.release()
    with pytest.raises(InvalidConfiguration) as err:
        make_lock(on_wait="print")
    assert err.value.field == "on_wait"


def test_a_raising_on_wait_does_not_break_the_acquisition(make_lock, caplog):
    caplog.set_level(logging.ERROR, logger="condlock")
    holder = make_lock()
    held = holder.acquire()
    calls: list = []

    def bad(event):
        calls.append(event)
        raise RuntimeError("callback bug")

    t = _release_after_waits(calls, held, 1)
    mine = make_lock().acquire(timeout=60, on_wait=bad)
    t.join(timeout=60)
    mine.release()
    assert calls


def test_async_on_wait_runs_on_the_event_loop(make_lock):
    async def main():
        holder = make_lock()
        held = holder.acquire()
        loop_thread = threading.get_ident()
        threads: list = []
        t = _release_after_waits(threads, held, 2)
        mine = await make_lock().acquire_async(
            timeout=60, on_wait=lambda e: threads.append(threading.get_ident())
        )
        t.join(timeout=60)
        await mine.release_async()
        assert threads and set(threads) == {loop_thread}

    asyncio.run(main())


def test_mutex_on_wait_names_the_tag(make_mutex):
    holder = make_mutex(message="deploying")
    held = holder.acquire()
    events: list = []
    t = _release_after_waits(events, held, 1)
    mine = make_mutex().acquire(timeout=60, on_wait=events.append)
    t.join(timeout=60)
    mine.release()
    assert events and events[0].holder.id == held.tag_id
    assert "deploying" in events[0].holder.description


# -- 6. configuration -------------------------------------------------------------------


def test_takeover_without_a_lease_is_refused(make_lock):
    with pytest.raises(InvalidConfiguration) as err:
        make_lock(takeover=True)
    assert err.value.field == "takeover"
    assert "lease" in str(err.value) and "takeover" in str(err.value)
    assert make_lock(takeover=True, lease=30).takeover is True


DURATIONS = ["request_timeout", "connect_timeout", "max_poll_interval", "lease", "stale_after"]


@pytest.mark.parametrize("name", DURATIONS)
def test_a_duration_given_as_a_string_names_the_argument(make_lock, name):
    with pytest.raises(TypeError) as err:
        make_lock(**{name: "10"})
    assert str(err.value) == f"{name} must be a number of seconds (int or float), got str"


def test_call_durations_given_as_strings_name_the_argument(make_lock):
    lock = make_lock()
    message = "timeout must be a number of seconds (int or float), got str"
    with pytest.raises(TypeError) as err:
        lock.acquire(timeout="10")
    assert str(err.value) == message
    with pytest.raises(TypeError) as err:
        lock(timeout="10")
    assert str(err.value) == message
    held = lock.acquire()
    with pytest.raises(TypeError) as err:
        held.release(timeout="10")
    assert str(err.value) == message
    with pytest.raises(TypeError) as err:
        lock.release(timeout="10")
    assert str(err.value) == message
    with pytest.raises(TypeError) as err:
        held.wait_lost(timeout="1")
    assert str(err.value) == message
    with pytest.raises(TypeError, match="got bool"):
        lock.acquire(timeout=True)
    assert held.release() is True


def test_mutex_durations_given_as_strings_name_the_argument(make_mutex):
    for name in ("request_timeout", "max_poll_interval"):
        with pytest.raises(TypeError) as err:
            make_mutex(**{name: "10"})
        assert str(err.value) == f"{name} must be a number of seconds (int or float), got str"
    with pytest.raises(TypeError, match="^timeout must be a number of seconds"):
        make_mutex().acquire(timeout="5")
    with pytest.raises(TypeError, match="^older_than must be a number of seconds"):
        make_mutex().client.stale_mutexes(older_than="60")


# -- 7. release after someone removed or replaced our lock -------------------------------


def test_release_of_a_force_unlocked_lock_says_gone_once(make_lock, caplog):
    caplog.set_level(logging.WARNING, logger="condlock")
    lock, admin = make_lock(), make_lock()
    held = lock.acquire()
    assert admin.force_unlock(held.lock_id) is True
    assert held.lost is None  # nothing has looked yet
    assert lock.release() is False
    assert held.lost == "gone" and held.lost.kind == "gone"
    assert held.released and not lock.locked()
    warnings = [r.getMessage() for r in caplog.records if "already gone" in r.getMessage()]
    assert len(warnings) == 1 and held.lock_id in warnings[0], warnings
    # A second release is a quiet no-op.
    caplog.clear()
    assert held.release() is False
    assert not [r for r in caplog.records if "already gone" in r.getMessage()]


def test_release_of_a_lock_replaced_by_another_holder_says_stolen(make_lock):
    lock, admin, thief = make_lock(), make_lock(), make_lock(who="thief@host")
    held = lock.acquire()
    admin.force_unlock(held.lock_id)
    theirs = thief.acquire(blocking=False)
    with pytest.raises(NotOwned) as err:
        held.release()
    assert err.value.holder.who == "thief@host"
    assert held.lost == "stolen" and held.lost.holder.who == "thief@host"
    # Final: the held lock no longer claims the lock (its collection will not
    # warn about a lock it does not hold), and a second release is a no-op.
    assert held.released and not lock.locked()
    assert held.release() is False
    assert thief.holder().id == theirs.lock_id
    theirs.release()


def test_a_normal_release_is_not_lost(make_lock):
    held = make_lock().acquire()
    assert held.release() is True
    assert held.lost is None


def test_lock_info_has_a_utc_datetime_and_an_age(make_lock):
    lock = make_lock()
    held = lock.acquire()
    try:
        info = lock.holder()
        created_at = info.created_at
        assert isinstance(created_at, datetime.datetime)
        assert created_at.tzinfo is not None
        assert created_at.utcoffset() == datetime.timedelta(0)
        assert created_at.strftime("%Y-%m-%dT%H:%M:%S") == info.created[:19]
        assert isinstance(info.age, float)
        # Written by this machine just now (a sanity bound, not a timing).
        assert -5 < info.age < 3600
        assert held.info.created_at == created_at
    finally:
        held.release()


def test_everything_new_is_exported_and_documented():
    assert condlock.EXIT_RELEASE_TIMEOUT > 0
    assert callable(condlock.release_on_sigterm) and condlock.release_on_sigterm.__doc__
    for name in ("WaitEvent", "EXIT_RELEASE_TIMEOUT", "release_on_sigterm"):
        assert name in condlock.__all__
    for cls in (condlock.S3Lock, condlock.ApstraMutex):
        for method in ("acquire", "release", "locked", "acquire_async", "release_async"):
            assert getattr(cls, method).__doc__, (cls, method)
