"""Region and endpoint come from the AWS profile as boto3 reads them (after
explicit values and the environment); a credential chain that finds nothing
says what it tried. Only the files written here are visible to the chain."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import condlock
from conftest import ACCESS_KEY, BUCKET, SECRET_KEY

_CLEARED = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str):
    """Profile `dev`: keys in the credentials file, region and (through its
    services section) the moto endpoint in the config file."""
    config = tmp_path / "config"
    config.write_text(
        "[profile dev]\nregion = eu-north-1\nservices = local\n\n"
        f"[services local]\ns3 =\n  endpoint_url = {endpoint}\n"
    )
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[dev]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config, credentials


def test_region_and_endpoint_come_from_the_profile(aws_files, monkeypatch, endpoint, key):
    monkeypatch.setenv("AWS_PROFILE", "dev")
    lock = condlock.S3Lock(bucket=BUCKET, key=key)
    assert lock.region == "eu-north-1"
    assert lock.endpoint == endpoint
    with lock as held:  # reaches moto only through the profile's endpoint
        holder = lock.holder()
        assert holder is not None and holder.id == held.lock_id

    # The environment comes before the profile, an explicit value before both.
    monkeypatch.setenv("AWS_REGION", "us-west-1")
    assert condlock.S3Lock(bucket=BUCKET, key=key).region == "us-west-1"
    explicit = condlock.S3Lock(bucket=BUCKET, key=key, region="ap-south-1",
                               endpoint="http://127.0.0.1:9")
    assert (explicit.region, explicit.endpoint) == ("ap-south-1", "http://127.0.0.1:9")


def test_with_no_region_anywhere_the_default_is_logged(aws_files, caplog, endpoint, key):
    with caplog.at_level(logging.INFO, logger="condlock"):
        lock = condlock.S3Lock(bucket=BUCKET, key=key, endpoint=endpoint,
                               access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        assert lock.region == "us-east-1"
        # Records reach `logging` through condlock's logging thread: wait for
        # it (a generous did-not-hang bound, not a timing assertion).
        deadline = time.monotonic() + 30
        while "using us-east-1" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "using us-east-1" in caplog.text
    assert 'AWS profile "default"' in caplog.text


def test_a_chain_that_finds_nothing_says_what_it_tried(aws_files, monkeypatch, endpoint, key):
    config, credentials = aws_files
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    lock = condlock.S3Lock(bucket=BUCKET, key=key, region="us-east-1", endpoint=endpoint)
    with pytest.raises(condlock.InvalidConfiguration) as info:
        lock.acquire(blocking=False)
    assert info.value.field == "credentials"
    text = str(info.value)
    for expected in ('"nosuch"', str(config), str(credentials), "AWS_ACCESS_KEY_ID",
                     "SSO", "web identity", "metadata"):
        assert expected in text, f"{expected!r} not in {text}"
