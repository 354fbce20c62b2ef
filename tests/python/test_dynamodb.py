"""Terraform's DynamoDB lock (``dynamodb_table=``) from Python, against moto."""

from __future__ import annotations

import json
import uuid

import pytest

import condlock
from condlock import InvalidConfiguration, LockHeld

from conftest import ACCESS_KEY, BUCKET, SECRET_KEY


@pytest.fixture
def table(endpoint) -> str:
    """A fresh lock table shaped as Terraform's (string hash key LockID)."""
    boto3 = pytest.importorskip("boto3")
    name = f"tf-locks-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _client(endpoint):
    import boto3

    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def test_terraforms_item_is_the_holder_and_ours_is_released(make_lock, endpoint, table, key):
    lock = make_lock(dynamodb_table=table, dynamodb_endpoint=endpoint)
    lock_id = f"{BUCKET}/{key}"
    info = json.dumps({"ID": "6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d",
                       "Operation": "OperationTypeApply", "Info": "", "Who": "alice@build-7",
                       "Version": "1.9.8", "Created": "2026-03-04T05:06:07.891011121Z",
                       "Path": lock_id}, separators=(",", ":"))
    db = _client(endpoint)
    db.put_item(TableName=table, Item={"LockID": {"S": lock_id}, "Info": {"S": info}})
    with pytest.raises(LockHeld) as caught:
        lock.acquire(blocking=False)
    assert caught.value.holder is not None
    assert caught.value.holder.who == "alice@build-7"
    assert caught.value.holder.id == "6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d"

    db.delete_item(TableName=table, Key={"LockID": {"S": lock_id}})
    held = lock.acquire(blocking=False)
    item = db.get_item(TableName=table, Key={"LockID": {"S": lock_id}}, ConsistentRead=True)
    assert json.loads(item["Item"]["Info"]["S"])["ID"] == held.lock_id
    assert held.release() is True
    assert "Item" not in db.get_item(TableName=table, Key={"LockID": {"S": lock_id}},
                                     ConsistentRead=True)


def test_a_lease_with_a_table_is_refused(make_lock, endpoint, table):
    with pytest.raises(InvalidConfiguration) as caught:
        make_lock(dynamodb_table=table, dynamodb_endpoint=endpoint, lease=30.0)
    assert caught.value.field == "lease"


def test_a_bad_table_name_is_refused(make_lock, endpoint):
    with pytest.raises(InvalidConfiguration) as caught:
        make_lock(dynamodb_table="x", dynamodb_endpoint=endpoint)
    assert caught.value.field == "dynamodb_table"


def _lock_file_exists(endpoint, key) -> bool:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    try:
        s3.head_object(Bucket=BUCKET, Key=f"{key}.tflock")
        return True
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return False
        raise


def test_use_lockfile_false_takes_the_item_only(make_lock, endpoint, table, key):
    lock_id = f"{BUCKET}/{key}"
    db = _client(endpoint)
    item_only = make_lock(dynamodb_table=table, dynamodb_endpoint=endpoint, use_lockfile=False)
    held = item_only.acquire(blocking=False)
    item = db.get_item(TableName=table, Key={"LockID": {"S": lock_id}}, ConsistentRead=True)
    assert json.loads(item["Item"]["Info"]["S"])["ID"] == held.lock_id
    assert not _lock_file_exists(endpoint, key)
    # The item excludes another item-taker, and a pair-taker (which gives
    # back the file it took when the item is held)...
    with pytest.raises(LockHeld) as caught:
        make_lock(dynamodb_table=table, dynamodb_endpoint=endpoint,
                  use_lockfile=False).acquire(blocking=False)
    assert caught.value.holder is not None and caught.value.holder.id == held.lock_id
    with pytest.raises(LockHeld):
        make_lock(dynamodb_table=table, dynamodb_endpoint=endpoint).acquire(blocking=False)
    assert not _lock_file_exists(endpoint, key)
    # ...but not a lock-file-only lock: the file is free.
    file_only = make_lock().acquire(blocking=False)
    assert file_only.release() is True
    assert held.release() is True
    assert "Item" not in db.get_item(TableName=table, Key={"LockID": {"S": lock_id}},
                                     ConsistentRead=True)


def test_use_lockfile_defaults_to_both_locks(make_lock, endpoint, table, key):
    held = make_lock(dynamodb_table=table, dynamodb_endpoint=endpoint).acquire(blocking=False)
    assert _lock_file_exists(endpoint, key)
    assert "Item" in _client(endpoint).get_item(
        TableName=table, Key={"LockID": {"S": f"{BUCKET}/{key}"}}, ConsistentRead=True)
    assert held.release() is True
    assert not _lock_file_exists(endpoint, key)


def test_use_lockfile_false_needs_a_table(make_lock):
    with pytest.raises(InvalidConfiguration) as caught:
        make_lock(use_lockfile=False)
    assert caught.value.field == "use_lockfile"
