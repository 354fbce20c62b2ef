// The Apstra blueprint mutex against the emulator (tests/apstra_emulator.py).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  ApstraClient, ApstraMutex, HeldMutex, LockTimeout, AccessDenied, InvalidConfiguration, LockCancelled,
} from '../index.mjs';
import { startApstra } from './helpers.mjs';

const PASSWORD = 'emulator-password';
let apstra;
const server = () => ({ url: apstra.url, username: 'admin', password: PASSWORD });

before(async () => {
  apstra = await startApstra(['bp-1', 'bp-2', 'bp-3', 'bp-4']);
});
after(() => apstra?.stop());

test('acquire, holder, tryAcquire, release; listed while held', async () => {
  const client = new ApstraClient(server());
  const mutex = new ApstraMutex({ blueprintId: 'bp-1', message: 'node test', client });
  assert.equal(await mutex.holder(), null);
  const held = await mutex.acquire();
  assert.ok(held instanceof HeldMutex);
  assert.equal(held.blueprintId, 'bp-1');
  assert.equal(held.label, 'blueprint bp-1 locked');
  assert.match(held.description, /^node test \[condlock:[0-9a-f]+\]$/);
  const tag = await mutex.holder();
  assert.equal(tag.id, held.tagId);
  assert.equal(tag.message, 'node test');
  assert.equal(tag.carriesCondlockToken, true);

  const other = new ApstraMutex({ blueprintId: 'bp-1', ...server() });
  assert.equal(await other.tryAcquire(), null);
  assert.equal(other.lastHolder.id, held.tagId);
  const err = await other.acquire({ timeoutMs: 300 }).catch((e) => e);
  assert.ok(err instanceof LockTimeout, String(err));
  assert.equal(err.holder.id, held.tagId);
  assert.match(err.message, /forceUnlock|ApstraClient\.forceUnlockTag/);

  const listed = await client.listMutexes();
  assert.deepEqual(listed.map((t) => t.id), [held.tagId]);
  assert.equal((await client.staleMutexes(3_600_000)).length, 0);

  assert.equal(await held.release(), true);
  assert.equal(await held.release(), false);
  assert.equal(await mutex.holder(), null);
});

test('forceUnlockTag and forceUnlock remove a holder', async () => {
  const client = new ApstraClient(server());
  const mutex = new ApstraMutex({ blueprintId: 'bp-2', client });
  const held = await mutex.acquire();
  const removed = await client.forceUnlockTag(held.tagId);
  assert.equal(removed.id, held.tagId);
  assert.equal(await client.forceUnlockTag(held.tagId), null);
  await mutex.acquire();
  assert.equal((await mutex.forceUnlock()).blueprintId, 'bp-2');
  assert.equal(await mutex.holder(), null);
});

test('using() releases; an AbortSignal cancels a wait', async () => {
  const mutex = new ApstraMutex({ blueprintId: 'bp-3', ...server() });
  assert.equal(await mutex.using(async (signal, held) => held.tagId.length > 0), true);
  assert.equal(await mutex.holder(), null);
  const held = await mutex.acquire();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(new ApstraMutex({ blueprintId: 'bp-3', ...server() }).acquire({ signal: controller.signal }), LockCancelled);
  assert.equal((await mutex.holder()).id, held.tagId);
  await held[Symbol.asyncDispose]();
  assert.equal(await mutex.holder(), null);
});

test('a refused login is AccessDenied and never shows the password', async () => {
  const mutex = new ApstraMutex({ blueprintId: 'bp-4', url: apstra.url, username: 'admin', password: 'wrong-secret-pw' });
  const err = await mutex.acquire({ timeoutMs: 2000 }).catch((e) => e);
  assert.ok(err instanceof AccessDenied, String(err));
  assert.equal(err.code, 'login_refused');
  assert.ok(!JSON.stringify({ m: err.message, s: err.stack, err }).includes('wrong-secret-pw'));
});

test('bad input names the option', async () => {
  assert.throws(() => new ApstraMutex({ blueprintId: '', ...server() }), (e) => e instanceof InvalidConfiguration && e.field === 'blueprintId');
  assert.throws(() => new ApstraMutex({ blueprintId: 'bp-1', url: 'not a url', username: 'a', password: 'b' }), InvalidConfiguration);
  assert.throws(() => new ApstraMutex({ blueprintId: 'bp-1', colour: 'red' }), (e) => e.field === 'colour');
  const client = new ApstraClient(server());
  assert.throws(() => new ApstraMutex({ blueprintId: 'bp-1', client, url: apstra.url }), (e) => e.field === 'url');
  await assert.rejects(client.staleMutexes(-1), InvalidConfiguration);
  const missing = new ApstraMutex({ blueprintId: 'no-such-bp', client });
  const err = await missing.acquire({ timeoutMs: 1000 }).catch((e) => e);
  assert.ok(err instanceof InvalidConfiguration, String(err));
  assert.equal(err.code, 'no_such_blueprint');
  assert.equal(err.field, 'blueprintId');
});
