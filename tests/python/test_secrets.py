"""Secrets never appear in repr/str, exception messages or log records."""

from __future__ import annotations

import logging

import pytest

import condlock

from conftest import SECRET_KEY

TOKEN = "TOKEN-condlock-5a4b3c2d1e-SESSION"
SSE_KEY = "c2VjcmV0LXNzZS1jLWtleS0zMi1ieXRlcy1sb25nISE="  # 32 bytes, base64


def _texts_of(exc: BaseException) -> str:
    parts = [str(exc), repr(exc)]
    for v in vars(exc).values():
        parts.append(repr(v))
    return " ".join(parts)


def test_secrets_stay_out_of_everything(make_lock, caplog):
    caplog.set_level(logging.DEBUG, logger="condlock")
    lock = make_lock(session_token=TOKEN)
    seen = [repr(lock), str(lock)]
    lease = lock.acquire(timeout=5)
    seen += [repr(lease), str(lease), repr(lease.info), str(lease.info)]
    other = make_lock(session_token=TOKEN)
    for call in (lambda: other.acquire(blocking=False), lambda: other.acquire(timeout=0.5),
                 lambda: other.force_unlock("0000")):
        with pytest.raises(condlock.LockError) as err:
            call()
        seen.append(_texts_of(err.value))
    lease.release()
    # Bad configurations that carry a secret must not echo it.
    for overrides in (
        dict(endpoint=f"http://AKID:{SECRET_KEY}@127.0.0.1:1"),
        dict(sse_customer_key=SECRET_KEY),
        dict(session_token=TOKEN, access_key_id=""),
    ):
        with pytest.raises(condlock.InvalidConfiguration) as err:
            make_lock(**overrides)
        seen.append(_texts_of(err.value))
    ssec = make_lock(sse_customer_key=SSE_KEY)
    seen.append(repr(ssec))
    records = [r for r in caplog.records if r.name.startswith("condlock")]
    assert records, "no condlock log records captured: the logging bridge is broken"
    assert any("held by" in r.getMessage() for r in records)
    seen += [r.getMessage() for r in records]
    blob = "\n".join(seen)
    for secret in (SECRET_KEY, TOKEN, SSE_KEY):
        assert secret not in blob


def test_log_records_go_to_the_condlock_logger(make_lock, caplog):
    caplog.set_level(logging.INFO, logger="condlock")
    lock = make_lock()
    lock.acquire().release()
    names = {r.name for r in caplog.records}
    assert any(n == "condlock" or n.startswith("condlock.") for n in names), names
    assert any("acquired" in r.getMessage() for r in caplog.records)
    caplog.clear()
    logging.getLogger("condlock").setLevel(logging.ERROR)
    try:
        lock.acquire().release()
        assert not [r for r in caplog.records if r.levelno < logging.ERROR]
    finally:
        logging.getLogger("condlock").setLevel(logging.NOTSET)


def test_apstra_password_stays_out_of_everything(make_mutex, caplog):
    """The Apstra password (argument or embedded in a URL) never shows."""
    from condlock import AccessDenied, InvalidConfiguration, LockError

    from conftest import APSTRA_PASS

    caplog.set_level(logging.DEBUG, logger="condlock")
    m = make_mutex()
    seen = [repr(m), str(m), repr(m.client), str(m.client)]
    lease = m.acquire(timeout=5)
    seen += [repr(lease), str(lease), repr(m.holder()), str(m.holder())]
    other = make_mutex()
    for call in (lambda: other.acquire(blocking=False), lambda: other.acquire(timeout=0.5)):
        with pytest.raises(LockError) as err:
            call()
        seen.append(_texts_of(err.value))
    lease.release()
    for overrides in (
        dict(password="x", url=f"http://u:{APSTRA_PASS}@127.0.0.1:1/?q=1"),
        dict(url=f"ftp://u:{APSTRA_PASS}@127.0.0.1/"),
        dict(username="\x01bad"),
    ):
        with pytest.raises(InvalidConfiguration) as err:
            make_mutex(**overrides)
        seen.append(_texts_of(err.value))
    with pytest.raises(AccessDenied) as err:
        make_mutex(username="nobody").acquire(blocking=False)
    seen.append(_texts_of(err.value))
    records = [r for r in caplog.records if r.name.startswith("condlock")]
    assert any("waiting for" in r.getMessage() for r in records), [r.getMessage() for r in records]
    seen += [r.getMessage() for r in records]
    blob = "\n".join(seen)
    assert APSTRA_PASS not in blob
