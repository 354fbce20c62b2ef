"""User transports (sync and async) and boto3/botocore credentials."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, UrllibTransport


def test_sync_user_transport(make_lock):
    transport = UrllibTransport()
    lock = make_lock(transport=transport)
    lease = lock.acquire()
    assert lock.holder().id == lease.lock_id
    from condlock import LockHeld

    with pytest.raises(LockHeld):
        make_lock(transport=UrllibTransport()).acquire(blocking=False)
    assert lease.release() is True
    methods = [m for m, _, _ in transport.calls]
    assert methods[0] == "PUT" and "DELETE" in methods and "GET" in methods
    put_headers = {k.lower(): v for k, v in transport.calls[0][2].items()}
    assert put_headers["if-none-match"] == "*"
    assert put_headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=" + ACCESS_KEY)
    # The callable ran off the calling thread (the GIL was released meanwhile).
    assert threading.get_ident() not in transport.threads


def test_async_user_transport_runs_on_the_event_loop(make_lock):
    sync = UrllibTransport()
    loop_threads = set()

    async def transport(method, url, headers, body):
        loop_threads.add(threading.get_ident())
        return await asyncio.to_thread(sync, method, url, headers, body)

    lock = make_lock(transport=transport)

    async def main():
        me = threading.get_ident()
        lease = await lock.acquire_async()
        assert (await lock.holder_async()).id == lease.lock_id
        assert await lease.release_async() is True
        return me

    loop_thread = asyncio.run(main())
    assert loop_threads == {loop_thread}
    assert len(sync.calls) >= 3
    # The same async transport also serves the synchronous API.
    lock.acquire().release()


class CountingCredentials:
    """Duck-typed botocore credentials whose key changes on every read, like
    refreshable credentials that were refreshed."""

    def __init__(self):
        self.reads = 0

    def get_frozen_credentials(self):
        from botocore.credentials import ReadOnlyCredentials

        self.reads += 1
        return ReadOnlyCredentials(f"AKIDREFRESH{self.reads:04d}", SECRET_KEY, None)


def test_refreshable_credentials_are_read_when_needed(make_lock):
    creds = CountingCredentials()
    transport = UrllibTransport()
    lock = make_lock(access_key_id=None, secret_access_key=None, boto3_session=creds,
                     transport=transport)
    lock.acquire().release()
    assert creds.reads >= 2
    used = {
        {k.lower(): v for k, v in h.items()}["authorization"].split("Credential=")[1].split("/")[0]
        for _, _, h in transport.calls
    }
    assert len(used) >= 2 and all(u.startswith("AKIDREFRESH") for u in used)


def test_boto3_session_credentials(make_lock, endpoint, key):
    boto3 = pytest.importorskip("boto3")
    session = boto3.Session(
        aws_access_key_id="AKIDFROMBOTO3",
        aws_secret_access_key=SECRET_KEY,
        region_name="eu-west-1",
    )
    transport = UrllibTransport()
    lock = make_lock(access_key_id=None, secret_access_key=None, region=None,
                     boto3_session=session, transport=transport)
    assert lock.region == "eu-west-1"
    with lock as lease:
        # boto3 reads the same object condlock wrote.
        s3 = session.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        body = s3.get_object(Bucket="condlock-py", Key=f"{key}.tflock")["Body"].read()
        assert lease.lock_id.encode() in body
    auth = {k.lower(): v for k, v in transport.calls[0][2].items()}["authorization"]
    assert "Credential=AKIDFROMBOTO3/" in auth and "/eu-west-1/s3/" in auth


def test_boto3_session_without_credentials(make_lock, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from condlock import InvalidConfiguration

    with pytest.raises(InvalidConfiguration) as err:
        make_lock(access_key_id=None, secret_access_key=None,
                  boto3_session=boto3.Session(region_name="us-east-1"))
    assert err.value.field == "boto3_session"


def test_aws_chain_from_environment(make_lock, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    transport = UrllibTransport()
    lock = make_lock(access_key_id=None, secret_access_key=None, transport=transport)
    lock.acquire().release()
    auth = {k.lower(): v for k, v in transport.calls[0][2].items()}["authorization"]
    assert "Credential=AKIDFROMENV/" in auth


def test_a_refused_connection_fails_a_try_once_acquire_fast(make_lock):
    import time

    from condlock import TransportError

    calls = []

    def refused(method, url, headers, body):
        calls.append(method)
        raise ConnectionRefusedError("nothing listens there")

    lock = make_lock(transport=refused)
    start = time.monotonic()
    with pytest.raises(TransportError):
        lock.acquire(blocking=False)
    # Generous: the 30 s transient budget was waited out before.
    assert time.monotonic() - start < 10
    # One attempt, repeated once; the PUT never left, so nothing is read back.
    assert calls == ["PUT", "PUT"]


def test_a_transport_exception_can_say_retrying_cannot_help(make_lock):
    from condlock import TransportError

    calls = []

    class Pinned(OSError):
        # Refused during the handshake: nothing was sent, nor will be.
        maybe_sent = False
        permanent = True

    def rejecting(method, url, headers, body):
        calls.append(method)
        raise Pinned("the store's certificate is not the pinned one")

    with pytest.raises(TransportError):
        make_lock(transport=rejecting).acquire(timeout=30)
    assert calls == ["PUT"]
