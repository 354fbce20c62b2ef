"""Every bad input raises InvalidConfiguration (a ValueError) naming the field."""

from __future__ import annotations

import pytest

import condlock
from condlock import InvalidConfiguration

BAD = [
    ("bucket", dict(bucket="")),
    ("bucket", dict(bucket="Upper_Case")),
    ("bucket", dict(bucket="192.168.1.1")),
    ("key", dict(key="")),
    ("key", dict(key="/leading")),
    ("key", dict(key="a//b")),
    ("endpoint", dict(endpoint="not a url")),
    ("endpoint", dict(endpoint="ftp://127.0.0.1/")),
    ("endpoint", dict(endpoint="http://user:pw@127.0.0.1:5000")),
    ("endpoint", dict(endpoint="http://127.0.0.1:5000/?x=1")),
    ("region", dict(region="US East")),
    ("region", dict(region="")),
    ("sse_customer_key", dict(sse_customer_key="short")),
    ("sse_customer_key", dict(sse_customer_key="!!!not-base64!!!")),
    ("access_key_id", dict(access_key_id="")),
    ("secret_access_key", dict(secret_access_key="")),
    ("secret_access_key", dict(secret_access_key=None)),
    ("access_key_id", dict(access_key_id=None)),
    ("session_token", dict(session_token="")),
    ("workspace", dict(workspace="a/b")),
    ("workspace_key_prefix", dict(workspace="w", workspace_key_prefix="/env")),
    ("acl", dict(acl="world-writable")),
    ("tags", dict(tags={"": "v"})),
    ("tags", dict(tags={f"k{i}": "v" for i in range(11)})),
    ("kms_key_id", dict(kms_key_id="arn:aws:kms:us-east-1:1:key/x")),
    ("encryption", dict(encrypt=True, kms_key_id="k1",
                        sse_customer_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")),
    ("transport", dict(transport="not callable")),
    ("boto3_session", dict(boto3_session=object())),
    ("verify_conditional_writes", dict(verify_conditional_writes="sometimes")),
    ("request_timeout", dict(request_timeout=0)),
    ("max_poll_interval", dict(max_poll_interval=-1)),
    ("max_poll_interval", dict(max_poll_interval=1e-9)),  # would flood the store
    ("max_poll_interval", dict(max_poll_interval=1e300)),
    ("lease", dict(lease=1e300)),  # longer than any duration: an error, not a panic
    ("lease", dict(lease=10**40)),
    ("stale_after", dict(takeover=True, stale_after=1e300)),
    ("request_timeout", dict(request_timeout=1e300)),
    ("who", dict(who="  ")),
    ("ca_bundle", dict(ca_bundle="/nonexistent/ca.pem")),
    ("ca_bundle", dict(ca_bundle=b"not a pem")),
]


@pytest.mark.parametrize("field,overrides", BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_input_names_the_field(make_lock, field, overrides):
    with pytest.raises(InvalidConfiguration) as err:
        make_lock(**overrides)
    e = err.value
    assert isinstance(e, ValueError) and isinstance(e, condlock.LockError)
    assert e.field == field, (e.field, str(e))
    assert field in str(e)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(blocking=True, timeout=-5), "timeout"),
        (dict(blocking=True, timeout=float("nan")), "timeout"),
        (dict(blocking=False, timeout=3), "timeout"),
    ],
)
def test_bad_acquire_arguments(make_lock, kwargs, field):
    with pytest.raises(InvalidConfiguration) as err:
        make_lock().acquire(**kwargs)
    assert err.value.field == field and "timeout" in str(err.value)


def test_a_huge_timeout_waits_forever_and_a_huge_release_timeout_is_refused(make_lock):
    lease = make_lock().acquire(timeout=1e300)  # free: acquired at once
    with pytest.raises(InvalidConfiguration) as err:
        lease.release(timeout=10**40)
    assert err.value.field == "timeout"
    assert lease.release() is True


def test_force_unlock_needs_an_id(make_lock):
    with pytest.raises(InvalidConfiguration) as err:
        make_lock().force_unlock("  ")
    assert err.value.field == "lock_id"


def test_missing_bucket_is_reported_as_configuration(make_lock):
    with pytest.raises(InvalidConfiguration) as err:
        make_lock(bucket="no-such-bucket-here").acquire(blocking=False)
    assert err.value.field == "bucket"
    assert "no-such-bucket-here" in str(err.value) and "does not exist" in str(err.value)
