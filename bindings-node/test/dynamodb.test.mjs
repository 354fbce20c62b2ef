// Terraform's DynamoDB lock item (`dynamodbTable`), alone or with the lock
// file, against moto's DynamoDB on 127.0.0.1 (behind one lock:
// tests/moto_atomic.py, so the exclusion count is honest).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { S3Lock, InvalidConfiguration, LockTimeout } from '../index.mjs';
import {
  startMoto, createBucket, createLockTable, dynamodb, lockOptions, S3_AUTHORIZATION,
} from './helpers.mjs';

const BUCKET = 'condlock-node-dynamodb';
let moto;
let table;

before(async () => {
  moto = await startMoto();
  await createBucket(moto.endpoint, BUCKET);
  table = `tf-locks-${randomUUID().slice(0, 8)}`;
  await createLockTable(moto.endpoint, table);
});
after(() => moto?.stop());

const opts = (extra) => lockOptions(moto.endpoint, BUCKET, {
  dynamodbTable: table,
  dynamodbEndpoint: moto.endpoint,
  ...extra,
});

async function item(lockId) {
  const out = await dynamodb(moto.endpoint, 'GetItem', {
    TableName: table,
    Key: { LockID: { S: lockId } },
    ConsistentRead: true,
  });
  return out.Item ?? null;
}

async function lockFileExists(key) {
  const r = await fetch(`${moto.endpoint}/${BUCKET}/${key}.tflock`, {
    headers: { authorization: S3_AUTHORIZATION },
  });
  await r.arrayBuffer();
  if (r.status !== 200 && r.status !== 404) throw new Error(`HEAD lock file: ${r.status}`);
  return r.status === 200;
}

test('with a table, the lock file and the item are both taken and both released', async () => {
  const o = opts({ who: 'node@dynamodb' });
  const held = await new S3Lock(o).acquire();
  const it = await item(`${BUCKET}/${o.key}`);
  assert.ok(it, 'the item was written');
  assert.equal(JSON.parse(it.Info.S).ID, held.lockId);
  assert.equal(await lockFileExists(o.key), true);
  assert.equal(await held.release(), true);
  assert.equal(await item(`${BUCKET}/${o.key}`), null);
  assert.equal(await lockFileExists(o.key), false);
});

test('useLockfile: false takes the item only', async () => {
  const o = opts({ useLockfile: false });
  const held = await new S3Lock(o).acquire();
  assert.equal(JSON.parse((await item(`${BUCKET}/${o.key}`)).Info.S).ID, held.lockId);
  assert.equal(await lockFileExists(o.key), false);
  // Another item-taker sees our lock as the holder.
  const other = new S3Lock({ ...o, who: 'other@ci' });
  assert.equal(await other.tryAcquire(), null);
  assert.equal(other.lastHolder.id, held.lockId);
  assert.equal(await held.release(), true);
  assert.equal(await item(`${BUCKET}/${o.key}`), null);
});

test('an item written as Terraform writes it is the holder', async () => {
  const o = opts();
  const lockId = `${BUCKET}/${o.key}`;
  const info = JSON.stringify({
    ID: '6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d', Operation: 'OperationTypeApply', Info: '',
    Who: 'alice@build-7', Version: '1.9.8', Created: '2026-03-04T05:06:07.891011121Z', Path: lockId,
  });
  await dynamodb(moto.endpoint, 'PutItem', {
    TableName: table,
    Item: { LockID: { S: lockId }, Info: { S: info } },
  });
  const lock = new S3Lock(o);
  assert.equal(await lock.tryAcquire(), null);
  assert.equal(lock.lastHolder.who, 'alice@build-7');
  assert.equal(lock.lastHolder.id, '6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d');
  const err = await lock.acquire({ timeoutMs: 300 }).catch((e) => e);
  assert.ok(err instanceof LockTimeout, String(err));
  assert.equal(err.holder.who, 'alice@build-7');
  // The lock file we took while trying was given back.
  assert.equal(await lockFileExists(o.key), false);

  await dynamodb(moto.endpoint, 'DeleteItem', { TableName: table, Key: { LockID: { S: lockId } } });
  const held = await lock.acquire();
  assert.equal(await held.release(), true);
});

test('a missing table is InvalidConfiguration naming it, and no lock file is left', async () => {
  const o = opts({ dynamodbTable: 'no-such-table' });
  const err = await new S3Lock(o).acquire().catch((e) => e);
  assert.ok(err instanceof InvalidConfiguration, String(err));
  assert.equal(err.code, 'invalid_config');
  assert.equal(err.field, 'dynamodbTable');
  assert.match(err.message, /no-such-table/);
  assert.equal(await lockFileExists(o.key), false);
});

test('the options are checked: a lease with a table, useLockfile false without one, wrong types', () => {
  const field = (o) => {
    try {
      new S3Lock(o);
    } catch (e) {
      assert.ok(e instanceof InvalidConfiguration, String(e));
      return e.field;
    }
    return assert.fail('no error');
  };
  assert.equal(field(opts({ leaseMs: 30_000 })), 'leaseMs');
  assert.equal(field(lockOptions(moto.endpoint, BUCKET, { useLockfile: false })), 'useLockfile');
  assert.equal(field(opts({ dynamodbTable: 42 })), 'dynamodbTable');
  assert.equal(field(opts({ useLockfile: 'no' })), 'useLockfile');
});

test('pair takers and item-only takers never hold at once', async () => {
  const o = opts();
  let inside = 0;
  let most = 0;
  let rounds = 0;
  const worker = async (i) => {
    const lock = new S3Lock({ ...o, who: `worker-${i}@ci`, useLockfile: i % 2 === 0 });
    for (let r = 0; r < 3; r++) {
      const held = await lock.acquire({ timeoutMs: 60_000 });
      inside += 1;
      most = Math.max(most, inside);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inside -= 1;
      rounds += 1;
      assert.equal(await held.release(), true);
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  assert.equal(rounds, 12);
  assert.equal(most, 1);
});
