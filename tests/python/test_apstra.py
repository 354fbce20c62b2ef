"""The Apstra blueprint mutex against tests/apstra_emulator.py.

Covers: acquire/release/holder, LockHeld with the holder's message (our tags,
foreign tags, Apstra's own blueprint lock), timeouts, token expiry mid-wait,
a lost create response recognised as ours, force-unlock, stale listing, bad
URL / credentials / blueprint ID, environment configuration, contention across
processes and asyncio tasks, Ctrl-C while holding.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time

import pytest

import condlock
from condlock import (
    AccessDenied,
    ApstraClient,
    ApstraMutex,
    BlueprintLockStatus,
    InvalidConfiguration,
    LockError,
    LockHeld,
    LockTimeout,
    MutexTag,
    TransportError,
)

from conftest import (
    APSTRA_OTHER_USER,
    APSTRA_PASS,
    APSTRA_USER,
    PYTHON,
)


# -- basics --------------------------------------------------------------------


def test_acquire_release_and_holder(make_mutex, apstra_emulator, blueprint):
    m = make_mutex(message="nightly deploy")
    assert m.holder() is None
    assert m.label == f"blueprint {blueprint} locked"
    lease = m.acquire()
    try:
        assert not lease.released and not lease.recovered
        assert lease.blueprint_id == blueprint
        assert lease.description.startswith("nightly deploy")
        assert lease.token and lease.token in lease.description
        h = m.holder()
        assert isinstance(h, MutexTag)
        assert h.id == lease.tag_id
        assert h.blueprint_id == blueprint
        assert h.label == m.label
        assert h.description == lease.description
        assert h.message == "nightly deploy"
        assert h.token == lease.token and h.carries_condlock_token
        assert h.created_at and h.age is not None and 0 <= h.age < 60
        # The server really has our tag, with our description.
        (tag,) = apstra_emulator.tags(blueprint)
        assert tag["id"] == lease.tag_id and tag["description"] == lease.description
    finally:
        assert lease.release() is True
    assert m.holder() is None
    assert apstra_emulator.tags(blueprint) == []


def test_release_twice_is_harmless(make_mutex, apstra_emulator, blueprint):
    m = make_mutex()
    lease = m.acquire()
    assert lease.release() is True
    assert lease.released
    assert lease.release() is False
    # Only one DELETE reached the server.
    deletes = [r for r in apstra_emulator.state()["requests"]
               if r["method"] == "DELETE" and r["path"] == f"/api/design/tags/{lease.tag_id}"]
    assert len(deletes) == 1
    m.acquire(blocking=False).release()


def test_message_is_expanded_like_the_provider(make_mutex, monkeypatch):
    monkeypatch.setenv("CONDLOCK_TEST_JOB", "job-42")
    m = make_mutex(message="deploy $CONDLOCK_TEST_JOB/${CONDLOCK_TEST_JOB} at $DATE")
    with m as lease:
        msg = m.holder().message
    assert msg.startswith("deploy job-42/job-42 at 20"), msg
    assert msg.endswith("+0000 UTC"), msg
    assert lease.released


def test_lock_held_shows_the_holders_message(make_mutex):
    holder = make_mutex(message="held by the deploy script")
    other = make_mutex()
    lease = holder.acquire()
    try:
        with pytest.raises(LockHeld) as err:
            other.acquire(blocking=False)
        e = err.value
        assert isinstance(e, LockError)
        assert isinstance(e.holder, MutexTag)
        assert e.holder.id == lease.tag_id
        assert e.holder.message == "held by the deploy script"
        assert e.holder.carries_condlock_token
        assert "held by the deploy script" in str(e)
        assert lease.tag_id in str(e) and "force_unlock" in str(e)
    finally:
        lease.release()


def test_tag_of_another_tool_blocks_and_is_left_alone(make_mutex, apstra_emulator, blueprint):
    apstra_emulator.control("POST", "/tags", {
        "label": f"blueprint {blueprint} locked",
        "description": "locked by terraform at 2026-01-01 00:00:00 +0000 UTC",
    })
    m = make_mutex()
    with pytest.raises(LockHeld) as err:
        m.acquire(blocking=False)
    h = err.value.holder
    assert h.description == "locked by terraform at 2026-01-01 00:00:00 +0000 UTC"
    assert not h.carries_condlock_token and h.token is None
    assert len(apstra_emulator.tags(blueprint)) == 1


def test_apstra_blueprint_lock_of_another_user(make_mutex, apstra_emulator, blueprint):
    apstra_emulator.control("PUT", f"/blueprints/{blueprint}",
                            {"lock_status": "locked", "username": APSTRA_OTHER_USER,
                             "first_name": "Op", "last_name": "Erator"})
    with pytest.raises(LockHeld) as err:
        make_mutex().acquire(blocking=False)
    h = err.value.holder
    assert isinstance(h, BlueprintLockStatus)
    assert h.lock_status == "locked" and h.username == APSTRA_OTHER_USER
    assert APSTRA_OTHER_USER in str(err.value) and "wait_for_blueprint_unlock" in str(err.value)
    assert apstra_emulator.tags(blueprint) == []
    # Opting out of the SDK's wait takes the mutex anyway.
    make_mutex(wait_for_blueprint_unlock=False).acquire(blocking=False).release()


def test_apstra_blueprint_lock_of_our_own_user_is_free(make_mutex, apstra_emulator, blueprint):
    apstra_emulator.control("PUT", f"/blueprints/{blueprint}",
                            {"lock_status": "locked", "username": APSTRA_USER})
    make_mutex().acquire(blocking=False).release()


def test_timeout_is_a_timeout_error(make_mutex):
    lease = make_mutex(message="long job").acquire()
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError) as err:
            make_mutex().acquire(timeout=1.0)
        elapsed = time.monotonic() - start
        e = err.value
        assert isinstance(e, LockTimeout) and isinstance(e, LockError)
        assert 0.9 <= elapsed < 5.0, elapsed
        assert e.waited == pytest.approx(1.0, abs=0.5)
        assert e.holder is not None and e.holder.id == lease.tag_id
        assert "long job" in str(e)
    finally:
        lease.release()


def test_waiter_gets_the_mutex_once_released(make_mutex):
    lease = make_mutex().acquire()
    threading.Timer(0.5, lease.release).start()
    start = time.monotonic()
    second = make_mutex().acquire(timeout=10)
    assert time.monotonic() - start >= 0.4
    assert second.tag_id != lease.tag_id
    second.release()


def test_with_releases_on_exception_and_is_not_reentrant(make_mutex):
    m = make_mutex()
    with pytest.raises(RuntimeError):
        with m as lease:
            assert m.holder().id == lease.tag_id
            with pytest.raises(LockError, match="not re-entrant"):
                with m:
                    pass
            raise RuntimeError("boom")
    assert lease.released
    assert m.holder() is None


def test_lease_as_context_manager(make_mutex):
    m = make_mutex()
    with m.acquire(timeout=5) as lease:
        assert m.holder().id == lease.tag_id
    assert lease.released and m.holder() is None


# -- faults --------------------------------------------------------------------


def test_token_expiry_mid_wait(make_mutex, apstra_emulator):
    holder_m = make_mutex()
    lease = holder_m.acquire()
    waiter = make_mutex()
    result = {}

    def wait():
        try:
            result["lease"] = waiter.acquire(timeout=20)
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = e

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.7)  # the waiter is polling with its token
    logins_before = apstra_emulator.state()["logins"]
    apstra_emulator.control("POST", "/expire-tokens")
    time.sleep(0.7)  # it meets a 401 and logs in again
    assert lease.release() is True  # the holder's own token expired too
    t.join(30)
    assert "error" not in result, result.get("error")
    got = result["lease"]
    assert got.tag_id != lease.tag_id
    got.release()
    state = apstra_emulator.state()
    assert state["logins"] >= logins_before + 2  # both clients logged in again
    assert any(r["status"] == 401 for r in state["requests"])


def test_lost_create_response_is_recognised_as_ours(make_mutex, apstra_emulator, blueprint):
    apstra_emulator.control("POST", "/faults", [
        {"method": "POST", "path": "/api/design/tags", "count": 1, "action": {"drop": "after"}}
    ])
    m = make_mutex()
    lease = m.acquire(timeout=30)
    try:
        assert lease.recovered
        (tag,) = apstra_emulator.tags(blueprint)
        assert tag["id"] == lease.tag_id
        assert any(r.get("fault") == "drop_after" for r in apstra_emulator.state()["requests"])
    finally:
        assert lease.release() is True
    assert apstra_emulator.tags(blueprint) == []


def test_server_errors_are_retried(make_mutex, apstra_emulator):
    apstra_emulator.control("POST", "/faults", [
        {"method": "POST", "path": "/api/design/tags", "count": 2,
         "action": {"status": 503, "retry_after": 0}}
    ])
    make_mutex().acquire(timeout=30).release()
    assert sum(r.get("fault") == "status" for r in apstra_emulator.state()["requests"]) >= 2


# -- administration ------------------------------------------------------------


def test_force_unlock(make_mutex, apstra_emulator, blueprint):
    m = make_mutex()
    lease = m.acquire()
    admin = make_mutex()
    removed = admin.force_unlock()
    assert isinstance(removed, MutexTag) and removed.id == lease.tag_id
    assert admin.holder() is None and apstra_emulator.tags(blueprint) == []
    assert admin.force_unlock() is None
    # The original holder's release is now harmless, and says so.
    assert lease.release() is False


def test_client_force_unlock_by_tag_and_blueprint(make_mutex, apstra_emulator, blueprint):
    client = ApstraClient(url=apstra_emulator.url, username=APSTRA_USER, password=APSTRA_PASS)
    m = client.mutex(blueprint, max_poll_interval=0.2)
    assert m.client.url == client.url
    lease = m.acquire()
    removed = client.force_unlock_tag(lease.tag_id)
    assert removed is not None and removed.id == lease.tag_id
    assert client.force_unlock_tag(lease.tag_id) is None
    lease2 = m.acquire()
    assert client.force_unlock_blueprint(blueprint).id == lease2.tag_id
    assert client.force_unlock_blueprint(blueprint) is None
    # A tag that is not a blueprint mutex is refused, naming the field.
    other = apstra_emulator.control("POST", "/tags", {"label": f"not-a-mutex-{blueprint}"})
    with pytest.raises(InvalidConfiguration) as err:
        client.force_unlock_tag(other["id"])
    assert err.value.field == "tag_id"
    assert any(t["id"] == other["id"] for t in apstra_emulator.state()["tags"])


def test_list_and_stale_mutexes(make_mutex, apstra_emulator, blueprint):
    old_bp = f"{blueprint}-old"
    planted = apstra_emulator.control("POST", "/tags", {
        "label": f"blueprint {old_bp} locked",
        "description": "locked by terraform long ago",
        "created_at": "2020-01-01T00:00:00.000000Z",
    })
    lease = make_mutex(message="fresh").acquire()
    try:
        client = ApstraClient(url=apstra_emulator.url, username=APSTRA_USER,
                              password=APSTRA_PASS)
        by_bp = {t.blueprint_id: t for t in client.list_mutexes()}
        assert by_bp[blueprint].id == lease.tag_id and by_bp[blueprint].carries_condlock_token
        assert by_bp[old_bp].id == planted["id"]
        assert not by_bp[old_bp].carries_condlock_token
        assert by_bp[old_bp].age > 3600 * 24 * 365
        stale = {t.blueprint_id for t in client.stale_mutexes(older_than=3600)}
        assert old_bp in stale and blueprint not in stale
        # Listing deletes nothing.
        assert len(apstra_emulator.tags(old_bp)) == 1
        with pytest.raises(InvalidConfiguration) as err:
            client.stale_mutexes(older_than=-1)
        assert err.value.field == "older_than"
    finally:
        lease.release()
        client.force_unlock_tag(planted["id"])


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,overrides",
    [
        ("url", dict(url="not a url")),
        ("url", dict(url="ftp://127.0.0.1/")),
        ("url", dict(url="")),
        ("username", dict(username="")),
        ("password", dict(password="")),
        ("blueprint_id", dict(blueprint_id="")),
        ("blueprint_id", dict(blueprint_id="has space")),
        ("blueprint_id", dict(blueprint_id="x" * 60)),
        ("request_timeout", dict(request_timeout=0)),
        ("max_poll_interval", dict(max_poll_interval=-1)),
        ("ca_bundle", dict(ca_bundle=b"not a pem")),
        ("ca_bundle", dict(ca_bundle="/nonexistent/ca.pem")),
        ("transport", dict(transport="not callable")),
        ("client", dict(client=object())),
    ],
)
def test_bad_input_names_the_field(make_mutex, field, overrides):
    with pytest.raises(InvalidConfiguration) as err:
        make_mutex(**overrides)
    e = err.value
    assert isinstance(e, ValueError) and isinstance(e, LockError)
    assert e.field == field, (e.field, str(e))
    assert field in str(e)


def test_client_cannot_be_combined_with_server_settings(make_mutex, apstra_emulator, blueprint):
    client = ApstraClient(url=apstra_emulator.url, username=APSTRA_USER, password=APSTRA_PASS)
    with pytest.raises(InvalidConfiguration) as err:
        ApstraMutex(blueprint, client=client, url=apstra_emulator.url)
    assert err.value.field == "client" and "url" in str(err.value)


def test_unknown_blueprint_is_reported_as_configuration(make_mutex):
    with pytest.raises(InvalidConfiguration) as err:
        make_mutex(blueprint_id="no-such-blueprint").acquire(blocking=False)
    e = err.value
    assert e.field == "blueprint_id"
    assert "no-such-blueprint" in str(e) and "does not exist" in str(e)


@pytest.mark.parametrize("who", ["password", "username"])
def test_bad_credentials_are_access_denied(make_mutex, who):
    overrides = {"password": "wrong-password"} if who == "password" else {"username": "nobody"}
    with pytest.raises(AccessDenied) as err:
        make_mutex(**overrides).acquire(blocking=False)
    e = err.value
    assert isinstance(e, PermissionError) and isinstance(e, LockError)
    assert e.status == 401
    assert "password=" in str(e) and "username=" in str(e)
    assert "wrong-password" not in str(e)


def test_url_without_apstra_is_reported_as_configuration(make_mutex, apstra_emulator):
    with pytest.raises(InvalidConfiguration) as err:
        make_mutex(url=apstra_emulator.url + "/wrong/prefix").acquire(blocking=False)
    assert err.value.field == "url"


def test_unreachable_url_is_a_transport_error(make_mutex):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = make_mutex(url=f"http://127.0.0.1:{port}", request_timeout=1)
    start = time.monotonic()
    with pytest.raises(TransportError) as err:
        m.acquire(timeout=2)
    assert time.monotonic() - start < 10
    assert isinstance(err.value, OSError) and not isinstance(err.value, LockTimeout)
    assert f"127.0.0.1:{port}" in str(err.value)


# -- environment ------------------------------------------------------------------


def test_configuration_from_the_environment(apstra_emulator, blueprint, monkeypatch):
    monkeypatch.setenv("APSTRA_URL", apstra_emulator.url)
    monkeypatch.setenv("APSTRA_USER", APSTRA_USER)
    monkeypatch.setenv("APSTRA_PASS", APSTRA_PASS)
    monkeypatch.setenv("APSTRA_BLUEPRINT_MUTEX_MESSAGE", "from the environment")
    m = ApstraMutex(blueprint)
    assert m.url == apstra_emulator.url and m.username == APSTRA_USER
    with m:
        assert m.holder().message == "from the environment"
    # Explicit arguments win over the environment.
    monkeypatch.setenv("APSTRA_PASS", "wrong")
    ApstraMutex(blueprint, password=APSTRA_PASS).acquire(blocking=False).release()
    with pytest.raises(AccessDenied):
        ApstraMutex(blueprint).acquire(blocking=False)


def test_credentials_embedded_in_the_url(apstra_emulator, blueprint, monkeypatch):
    from urllib.parse import quote

    for name in ("APSTRA_URL", "APSTRA_USER", "APSTRA_PASS"):
        monkeypatch.delenv(name, raising=False)
    host = apstra_emulator.url.removeprefix("http://")
    url = f"http://{quote(APSTRA_USER, safe='')}:{quote(APSTRA_PASS, safe='')}@{host}"
    m = ApstraMutex(blueprint, url=url)
    assert m.url == apstra_emulator.url and APSTRA_PASS not in repr(m)
    m.acquire(blocking=False).release()


def test_missing_configuration_names_the_field(blueprint, monkeypatch):
    for name in ("APSTRA_URL", "APSTRA_USER", "APSTRA_PASS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidConfiguration) as err:
        ApstraMutex(blueprint)
    assert err.value.field == "url" and "APSTRA_URL" in str(err.value)
    monkeypatch.setenv("APSTRA_URL", "http://127.0.0.1:1")
    with pytest.raises(InvalidConfiguration) as err:
        ApstraMutex(blueprint)
    assert err.value.field == "username" and "APSTRA_USER" in str(err.value)
    monkeypatch.setenv("APSTRA_USER", "someone")
    with pytest.raises(InvalidConfiguration) as err:
        ApstraMutex(blueprint)
    assert err.value.field == "password" and "APSTRA_PASS" in str(err.value)
    monkeypatch.setenv("APSTRA_TLS_VALIDATION_DISABLED", "maybe")
    monkeypatch.setenv("APSTRA_PASS", "x")
    with pytest.raises(InvalidConfiguration) as err:
        ApstraMutex(blueprint)
    assert err.value.field == "verify_tls"


# -- concurrency -------------------------------------------------------------------

WORKER = r"""
import os, sys, time
import condlock
log_path, rounds, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
m = condlock.ApstraMutex(os.environ["CONDLOCK_TEST_BLUEPRINT"], max_poll_interval=0.2)
me = os.getpid()
for i in range(rounds):
    with m:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"enter {me} {i} {time.time():.6f}\n".encode())
            time.sleep(hold)
            os.write(fd, f"leave {me} {i} {time.time():.6f}\n".encode())
        finally:
            os.close(fd)
"""


def _apstra_env(apstra_emulator, blueprint) -> dict:
    env = dict(os.environ)
    env.update(APSTRA_URL=apstra_emulator.url, APSTRA_USER=APSTRA_USER, APSTRA_PASS=APSTRA_PASS,
               CONDLOCK_TEST_BLUEPRINT=blueprint, PYTHONUNBUFFERED="1")
    return env


def _check_no_overlap(lines: list, expected_rounds: int) -> None:
    inside = None
    entries = 0
    for line in lines:
        kind, pid, i, _ = line.split()
        if kind == "enter":
            assert inside is None, f"two holders at once: {inside} and {pid}/{i}"
            inside = (pid, i)
            entries += 1
        else:
            assert inside == (pid, i), f"leave without enter: {line}"
            inside = None
    assert inside is None
    assert entries == expected_rounds


def test_processes_never_hold_at_once(apstra_emulator, blueprint, tmp_path):
    log_path = tmp_path / "holders.log"
    workers, rounds = 4, 3
    env = _apstra_env(apstra_emulator, blueprint)
    procs = [
        subprocess.Popen([PYTHON, "-c", WORKER, str(log_path), str(rounds), "0.05"], env=env,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        if p.returncode != 0:
            errors.append(err)
    assert not errors, errors
    lines = log_path.read_text().splitlines()
    _check_no_overlap(lines, workers * rounds)
    assert len({line.split()[1] for line in lines}) == workers
    assert apstra_emulator.tags(blueprint) == []


def test_asyncio_tasks_never_hold_at_once(make_mutex):
    inside = 0
    max_inside = 0
    entered = []
    shared = make_mutex()

    async def worker(n: int, m) -> None:
        nonlocal inside, max_inside
        for _ in range(2):
            async with m:
                inside += 1
                max_inside = max(max_inside, inside)
                entered.append(n)
                await asyncio.sleep(0.03)
                inside -= 1

    async def main() -> None:
        tasks = [worker(n, shared if n % 2 else make_mutex()) for n in range(6)]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)

    asyncio.run(main())
    assert max_inside == 1
    assert sorted(entered) == sorted(list(range(6)) * 2)
    assert shared.holder() is None


def test_acquire_async_does_not_block_the_loop(make_mutex):
    holder = make_mutex().acquire()

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        with pytest.raises(LockTimeout) as err:
            await make_mutex().acquire_async(timeout=1.0)
        t.cancel()
        return ticks, err.value

    try:
        ticks, err = asyncio.run(main())
    finally:
        holder.release()
    assert ticks > 30, ticks
    assert isinstance(err, TimeoutError) and err.holder.id == holder.tag_id


def test_async_api(make_mutex, apstra_emulator, blueprint):
    async def main():
        m = make_mutex(message="async holder")
        lease = await m.acquire_async()
        try:
            h = await m.holder_async()
            assert h.id == lease.tag_id and h.message == "async holder"
            with pytest.raises(LockHeld) as err:
                await make_mutex().acquire_async(blocking=False)
            assert err.value.holder.id == lease.tag_id
            client = m.client
            assert [t.id for t in await client.list_mutexes_async()
                    if t.blueprint_id == blueprint] == [lease.tag_id]
            assert await client.stale_mutexes_async(older_than=3600) is not None
        finally:
            assert await lease.release_async() is True
            assert await lease.release_async() is False
        assert await m.holder_async() is None
        lease = await m.acquire_async()
        assert (await m.force_unlock_async()).id == lease.tag_id
        assert await m.force_unlock_async() is None
        with pytest.raises(InvalidConfiguration) as err:
            await make_mutex(blueprint_id="missing-bp").acquire_async()
        assert err.value.field == "blueprint_id"

    asyncio.run(main())
    assert apstra_emulator.tags(blueprint) == []


def test_cancelling_a_waiting_task_leaves_no_tag(make_mutex, apstra_emulator, blueprint):
    m = make_mutex()
    holder = m.acquire()

    async def main():
        waiter = asyncio.create_task(make_mutex().acquire_async())
        await asyncio.sleep(0.5)
        assert not waiter.done()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
    assert m.holder().id == holder.tag_id
    holder.release()
    time.sleep(1.0)
    assert apstra_emulator.tags(blueprint) == []


def test_async_with_releases_on_cancellation_and_exception(make_mutex):
    m = make_mutex()

    async def main():
        inside = asyncio.Event()

        async def body():
            async with m:
                inside.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(body())
        await asyncio.wait_for(inside.wait(), 10)
        assert (await m.holder_async()) is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await m.holder_async()) is None
        with pytest.raises(ValueError):
            async with m as lease:
                assert (await m.holder_async()).id == lease.tag_id
                raise ValueError("boom")

    asyncio.run(main())
    assert m.holder() is None


HOLDER = r"""
import os, time
import condlock
with condlock.ApstraMutex(os.environ["CONDLOCK_TEST_BLUEPRINT"]) as lease:
    print("HELD", lease.tag_id, flush=True)
    while True:
        time.sleep(0.1)
"""


def test_ctrl_c_while_holding_releases(apstra_emulator, blueprint):
    child = subprocess.Popen([PYTHON, "-c", HOLDER], env=_apstra_env(apstra_emulator, blueprint),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if not line.startswith("HELD"):
        child.kill()
        raise AssertionError(f"child never held: {line!r} {child.stderr.read()}")
    tag_id = line.split()[1]
    assert [t["id"] for t in apstra_emulator.tags(blueprint)] == [tag_id]
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode != 0 and "KeyboardInterrupt" in err
    assert apstra_emulator.tags(blueprint) == []


WAITER = r"""
import os
import condlock
m = condlock.ApstraMutex(os.environ["CONDLOCK_TEST_BLUEPRINT"], max_poll_interval=0.2)
print("WAITING", flush=True)
m.acquire()
print("ACQUIRED", flush=True)
"""


def test_ctrl_c_while_waiting_cancels_and_leaves_no_tag(make_mutex, apstra_emulator, blueprint):
    m = make_mutex()
    lease = m.acquire()
    child = subprocess.Popen([PYTHON, "-c", WAITER], env=_apstra_env(apstra_emulator, blueprint),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().startswith("WAITING")
    time.sleep(1.0)  # it finds the mutex held and waits
    start = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert time.monotonic() - start < 5, "the wait did not stop promptly"
    assert "KeyboardInterrupt" in err and "ACQUIRED" not in out
    assert [t["id"] for t in apstra_emulator.tags(blueprint)] == [lease.tag_id]
    lease.release()
    time.sleep(0.5)
    assert apstra_emulator.tags(blueprint) == []  # the child left nothing behind


def test_user_transport(make_mutex, apstra_emulator):
    import urllib.error
    import urllib.request

    calls = []

    def transport(method, url, headers, body):
        calls.append((method, url))
        req = urllib.request.Request(url, method=method, data=body or None,
                                     headers=dict(headers))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, list(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, list(e.headers.items()), e.read()

    m = make_mutex(transport=transport)
    m.acquire(blocking=False).release()
    assert ("POST", f"{apstra_emulator.url}/api/design/tags") in calls
    assert any(method == "DELETE" for method, _ in calls)


def test_public_names():
    for name in ("ApstraMutex", "ApstraLease", "ApstraClient", "MutexTag", "BlueprintLockStatus"):
        assert name in condlock.__all__ and getattr(condlock, name)


def test_readme_apstra_quick_start_runs_verbatim(apstra_emulator, tmp_path):
    import re

    from conftest import REPO

    text = (REPO / "bindings-python" / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "ApstraMutex" in b]
    bp = re.search(r'ApstraMutex\("([^"]+)"', code).group(1)
    apstra_emulator.control("PUT", f"/blueprints/{bp}", {"lock_status": "unlocked"})
    script = tmp_path / "apstra_quickstart.py"
    script.write_text(code)
    env = _apstra_env(apstra_emulator, bp)
    out = subprocess.run([PYTHON, str(script)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "holding" in out.stdout and "holding from asyncio" in out.stdout
    assert out.stdout.strip().endswith("free")
    assert apstra_emulator.tags(bp) == []


def test_a_forked_child_cannot_release_its_parents_mutex(make_mutex):
    from conftest import release_in_forked_child

    mutex = make_mutex()
    held = mutex.acquire(timeout=10)
    report = release_in_forked_child(held)
    assert report.startswith("LockError: ") and "is a fork of it" in report, report
    assert mutex.holder() is not None, "the child removed its parent's mutex"
    assert held.release() is True
