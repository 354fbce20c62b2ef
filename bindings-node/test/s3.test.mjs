// The S3 lock against moto on 127.0.0.1 (real HTTP, real conditional writes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import * as condlock from '../index.mjs';
import { startMoto, createBucket, lockOptions, SECRET } from './helpers.mjs';

const {
  S3Lock, HeldLock, LockError, LockHeld, LockTimeout, LockLost, InvalidConfiguration,
  LockCancelled, TransportError,
} = condlock;
const BUCKET = 'condlock-node-tests';
let moto;
const opts = (extra) => lockOptions(moto.endpoint, BUCKET, extra);

before(async () => {
  moto = await startMoto();
  await createBucket(moto.endpoint, BUCKET);
});
after(() => moto?.stop());

test('acquire, holder, release; a second release resolves false', async () => {
  const lock = new S3Lock(opts({ who: 'alice@ci', operation: 'apply', info: 'node test' }));
  assert.equal(await lock.holder(), null);
  const held = await lock.acquire();
  assert.ok(held instanceof HeldLock);
  assert.match(held.lockId, /^[0-9a-f-]{36}$/);
  assert.equal(held.info.who, 'alice@ci');
  assert.equal(held.info.operation, 'apply');
  assert.equal(held.leaseMs, null);
  assert.deepEqual(held.fencingToken, { generation: 0, etag: held.etag });
  const holder = await lock.holder();
  assert.equal(holder.id, held.lockId);
  assert.equal(holder.who, 'alice@ci');
  assert.equal(held.released, false);
  assert.equal(await held.release(), true);
  assert.equal(held.released, true);
  assert.equal(await held.release(), false);
  assert.equal(await lock.holder(), null);
});

test('tryAcquire resolves null when held, with the holder in lastHolder', async () => {
  const o = opts({ who: 'first@ci' });
  const first = await new S3Lock(o).acquire();
  const other = new S3Lock({ ...o, who: 'second@ci' });
  assert.equal(await other.tryAcquire(), null);
  assert.equal(other.lastHolder.id, first.lockId);
  assert.equal(other.lastHolder.who, 'first@ci');
  await first.release();
  const mine = await other.tryAcquire();
  assert.ok(mine);
  assert.equal(other.lastHolder, null);
  await mine.release();
});

test('a timeout rejects with LockTimeout carrying the holder and the wait', async () => {
  const o = opts();
  const held = await new S3Lock(o).acquire();
  const err = await new S3Lock(o).acquire({ timeoutMs: 300 }).catch((e) => e);
  assert.ok(err instanceof LockTimeout, String(err));
  assert.ok(err instanceof LockError);
  assert.equal(err.code, 'timeout');
  assert.equal(err.holder.id, held.lockId);
  assert.ok(err.waitedMs >= 300, `waited ${err.waitedMs}`);
  assert.match(err.message, /forceUnlock\(/);
  await held.release();
});

test('forceUnlock removes the lock only by its ID', async () => {
  const o = opts();
  const held = await new S3Lock(o).acquire();
  const admin = new S3Lock(o);
  await assert.rejects(admin.forceUnlock('not-the-id'), (e) => e.code === 'not_owned');
  assert.equal(await admin.forceUnlock(held.lockId), true);
  assert.equal(await admin.holder(), null);
  assert.equal(await admin.forceUnlock(held.lockId), false);
});

test('waiting reports onWait events, and the event loop stays responsive', async () => {
  const o = opts();
  const held = await new S3Lock(o).acquire();
  const events = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const waiting = new S3Lock(o).acquire({ onWait: (e) => events.push(e) });
  await sleep(1000);
  await held.release();
  const mine = await waiting;
  clearInterval(timer);
  // The wait runs on the addon's threads: timers keep firing meanwhile.
  assert.ok(ticks > 20, `only ${ticks} timer ticks during a one-second wait`);
  assert.ok(events.length >= 1);
  assert.equal(events[0].holder.id, held.lockId);
  assert.equal(events[0].newHolder, true);
  assert.equal(typeof events[0].elapsedMs, 'number');
  assert.equal(typeof events[0].nextTryMs, 'number');
  await mine.release();
});

test('an AbortSignal cancels a wait; nothing is left behind', async () => {
  const o = opts();
  const held = await new S3Lock(o).acquire();
  const controller = new AbortController();
  const waiting = new S3Lock(o).acquire({ signal: controller.signal });
  setTimeout(() => controller.abort(), 300);
  const err = await waiting.catch((e) => e);
  assert.ok(err instanceof LockCancelled, String(err));
  assert.equal(err.name, 'AbortError');
  assert.equal(err.code, 'cancelled');
  assert.equal((await new S3Lock(o).holder()).id, held.lockId);
  await held.release();
  // An already-aborted signal never starts.
  await assert.rejects(new S3Lock(o).acquire({ signal: AbortSignal.abort() }), LockCancelled);
  assert.equal(await new S3Lock(o).holder(), null);
});

test('an abort while the PUT is in flight leaves no lock', async () => {
  for (let i = 0; i < 5; i++) {
    const o = opts();
    const controller = new AbortController();
    const p = new S3Lock(o).acquire({ signal: controller.signal });
    // Abort at once: the request is already on its way.
    queueMicrotask(() => controller.abort());
    const r = await p.then((h) => h, (e) => e);
    if (r instanceof HeldLock) await r.release();
    else assert.ok(r instanceof LockCancelled, String(r));
    assert.equal(await new S3Lock(o).holder(), null);
  }
});

test('asyncDispose releases; using() releases on a throw', async () => {
  const o = opts();
  const lock = new S3Lock(o);
  const held = await lock.acquire();
  await held[Symbol.asyncDispose]();
  assert.equal(held.released, true);
  assert.equal(await lock.holder(), null);

  await assert.rejects(
    lock.using(async (signal, h) => {
      assert.ok(signal instanceof AbortSignal);
      assert.equal((await lock.holder()).id, h.lockId);
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await lock.holder(), null);
  assert.equal(await lock.using(async () => 42), 42);
  assert.equal(await lock.holder(), null);
});

test('a lease is renewed, and its signal aborts with LockLost after a force-unlock', async () => {
  const o = opts({ leaseMs: 1500 });
  const lock = new S3Lock(o);
  const held = await lock.acquire();
  assert.equal(held.leaseMs, 1500);
  const first = held.fencingToken;
  assert.ok(first.generation >= 1);
  await sleep(1200);
  assert.notEqual(held.etag, first.etag, 'renewed: the ETag changed');
  assert.equal(held.signal.aborted, false);
  await new S3Lock(o).forceUnlock(held.lockId);
  const reason = await new Promise((resolve) => {
    if (held.signal.aborted) resolve(held.signal.reason);
    held.signal.addEventListener('abort', () => resolve(held.signal.reason));
  });
  assert.ok(reason instanceof LockLost, String(reason));
  assert.equal(reason.reason, 'gone');
  await assert.rejects(held.release(), LockLost);
});

test('bad input throws InvalidConfiguration naming the option', () => {
  const cases = [
    [{ ...opts(), bucket: 'x' }, 'bucket'],
    [{ ...opts(), key: '' }, 'key'],
    [{ ...opts(), bucket: 5 }, 'bucket'],
    [{ ...opts(), leaseMs: -1 }, 'leaseMs'],
    [{ ...opts(), verifyConditionalWrites: 'sometimes' }, 'verifyConditionalWrites'],
    [{ ...opts(), bukket: 'typo' }, 'bukket'],
    [{ ...opts(), credentials: { accessKeyId: 'A' } }, 'credentials.secretAccessKey'],
    [{ ...opts(), endpoint: 'not a url' }, 'endpoint'],
  ];
  for (const [o, field] of cases) {
    assert.throws(
      () => new S3Lock(o),
      (e) => {
        assert.ok(e instanceof InvalidConfiguration, `${field}: ${e}`);
        assert.equal(e.code, 'invalid_config');
        assert.equal(e.field, field, e.message);
        assert.ok(e.message.length > 10);
        assert.ok(!e.message.includes(SECRET));
        return true;
      },
    );
  }
  assert.throws(() => new S3Lock(), InvalidConfiguration);
});

test('bad acquire arguments reject with InvalidConfiguration', async () => {
  const lock = new S3Lock(opts());
  await assert.rejects(lock.acquire({ timeoutMs: -5 }), (e) => e instanceof InvalidConfiguration && e.field === 'timeoutMs');
  await assert.rejects(lock.acquire({ timeoutMs: '5' }), (e) => e instanceof InvalidConfiguration && e.field === 'timeoutMs');
  await assert.rejects(lock.forceUnlock(''), (e) => e instanceof InvalidConfiguration && e.field === 'lockId');
});

test('an unreachable store rejects with TransportError; no secret in errors or logs', async () => {
  const events = [];
  const lock = new S3Lock({
    ...opts(),
    endpoint: 'http://127.0.0.1:9',
    requestTimeoutMs: 500,
    credentials: { accessKeyId: 'AKIDNODETEST', secretAccessKey: SECRET, sessionToken: 'TOKEN-SECRET-xyz' },
    logger: (e) => events.push(e),
  });
  const err = await lock.acquire({ timeoutMs: 1500 }).catch((e) => e);
  assert.ok(err instanceof TransportError || err instanceof LockTimeout, String(err));
  const text = JSON.stringify({ message: err.message, stack: err.stack, err, events });
  assert.ok(!text.includes(SECRET));
  assert.ok(!text.includes('TOKEN-SECRET-xyz'));
});

test('a credential provider is called, and again when its credentials near expiry', async () => {
  let calls = 0;
  const provider = async () => {
    calls++;
    // Expiring within the core's refresh margin: asked again next time.
    return { accessKeyId: 'AKIDPROVIDED', secretAccessKey: SECRET, expiration: new Date(Date.now() + 60_000) };
  };
  const lock = new S3Lock({ ...opts(), credentials: provider });
  const held = await lock.acquire();
  await held.release();
  assert.ok(calls >= 2, `provider called ${calls} times`);

  let longCalls = 0;
  const long = new S3Lock({
    ...opts(),
    credentials: async () => {
      longCalls++;
      return { accessKeyId: 'AKIDPROVIDED', secretAccessKey: SECRET, expiration: new Date(Date.now() + 3_600_000) };
    },
  });
  await (await long.acquire()).release();
  assert.equal(longCalls, 1, 'credentials valid for an hour are kept');

  const broken = new S3Lock({ ...opts(), credentials: async () => { throw new Error('no creds here'); } });
  const err = await broken.acquire({ timeoutMs: 1000 }).catch((e) => e);
  assert.ok(err instanceof InvalidConfiguration, String(err));
  assert.equal(err.field, 'credentials');
  assert.match(err.message, /no creds here/);
});

test('ESM and CommonJS entry points export the same classes', () => {
  const require = createRequire(import.meta.url);
  const cjs = require('../index.cjs');
  assert.equal(cjs.S3Lock, S3Lock);
  assert.equal(cjs.LockError, LockError);
  assert.equal(typeof HeldLock.prototype[Symbol.asyncDispose], 'function');
});

test('contention with another Node process', async () => {
  const o = opts({ who: 'other-process@ci' });
  const child = spawn(process.execPath, [fileURLToPath(new URL('./holder-process.mjs', import.meta.url)), JSON.stringify(o)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const childId = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /HELD (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`holder exited with ${c}`)));
  });
  const lock = new S3Lock({ ...o, who: 'me@ci' });
  assert.equal(await lock.tryAcquire(), null);
  assert.equal(lock.lastHolder.id, childId);
  assert.equal(lock.lastHolder.who, 'other-process@ci');
  const waiting = lock.acquire({ timeoutMs: 20000 });
  await sleep(300);
  child.stdin.end();
  const held = await waiting;
  assert.notEqual(held.lockId, childId);
  await held.release();
});

test('several processes never hold the lock at once', async () => {
  const o = opts();
  const script = `
    import { S3Lock } from ${JSON.stringify(new URL('../index.mjs', import.meta.url).href)};
    const lock = new S3Lock(${JSON.stringify(o)});
    for (let i = 0; i < 5; i++) {
      const held = await lock.acquire({ timeoutMs: 60000 });
      process.stdout.write('IN ' + Date.now() + '\\n');
      await new Promise((r) => setTimeout(r, 20));
      process.stdout.write('OUT ' + Date.now() + '\\n');
      await held.release();
    }`;
  const runs = [0, 1, 2].map(
    () =>
      new Promise((resolve, reject) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exited ${code}`))));
      }),
  );
  const outs = await Promise.all(runs);
  // Each worker's IN/OUT interval; no two may overlap.
  const spans = outs.flatMap((out) => {
    const lines = out.trim().split('\n').map((l) => l.split(' '));
    const s = [];
    for (let i = 0; i < lines.length; i += 2) s.push([Number(lines[i][1]), Number(lines[i + 1][1])]);
    return s;
  });
  assert.equal(spans.length, 15);
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    assert.ok(spans[i][0] >= spans[i - 1][1], `overlap: ${spans[i - 1]} and ${spans[i]}`);
  }
});

test('the fetch option carries every request (signed) to a real server', async () => {
  let calls = 0;
  const o = opts({
    verifyConditionalWrites: 'always',
    fetch: (url, init) => {
      calls++;
      return fetch(url, init);
    },
  });
  const lock = new S3Lock(o);
  const held = await lock.acquire();
  assert.equal((await new S3Lock(opts({ key: o.key })).holder()).id, held.lockId);
  assert.equal(await lock.tryAcquire(), null);
  assert.equal(await held.release(), true);
  assert.ok(calls >= 5, `${calls} requests through fetch`);
});

test('a fetch option that is broken fails at once with TransportError', async () => {
  const lock = new S3Lock(opts({ fetch: async () => ({ not: 'a response' }) }));
  const err = await lock.acquire({ timeoutMs: 30_000 }).catch((e) => e);
  assert.ok(err instanceof TransportError, String(err));
  assert.equal(err.permanent, true);
  assert.match(err.message, /not a Response/);
});

test('an abort while the PUT is in flight removes the lock it wrote', async () => {
  const controller = new AbortController();
  let puts = 0;
  const o = opts({
    fetch: async (url, init) => {
      if (init.method === 'PUT') {
        puts++;
        // The caller aborts while the PUT is on its way; it still lands.
        controller.abort();
      }
      return fetch(url, init);
    },
  });
  const err = await new S3Lock(o).acquire({ signal: controller.signal }).catch((e) => e);
  assert.ok(err instanceof LockCancelled, String(err));
  assert.equal(puts, 1);
  assert.equal(await new S3Lock(opts({ key: o.key })).holder(), null, 'the lock written was removed');
});

test('region and endpoint come from the AWS profile when not given', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'condlock-node-profile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config');
  writeFileSync(config, `[profile node-test]\nregion = eu-west-3\nendpoint_url = ${moto.endpoint}\n`);
  const { region, endpoint, ...o } = opts({ who: 'profile@ci' });
  // A child process: the addon reads the environment the process started with.
  const script = `
    import { S3Lock } from ${JSON.stringify(new URL('../index.mjs', import.meta.url).href)};
    const seen = [];
    const lock = new S3Lock({
      ...${JSON.stringify(o)},
      fetch: (url, init) => {
        const h = new Headers(init.headers);
        seen.push({ url, scope: /Credential=[^/]+\\/[^/]+\\/([^/]+)\\//.exec(h.get('authorization'))?.[1] });
        return fetch(url, init);
      },
    });
    const held = await lock.acquire({ timeoutMs: 30000 });
    const released = await held.release();
    process.stdout.write(JSON.stringify({ seen, released }));`;
  const env = { ...process.env, AWS_CONFIG_FILE: config, AWS_PROFILE: 'node-test' };
  for (const name of Object.keys(env)) {
    if (/^AWS_(REGION|DEFAULT_REGION|ENDPOINT_URL.*|IGNORE_CONFIGURED_ENDPOINT_URLS)$/.test(name)) delete env[name];
  }
  const out = await new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    c.stdout.on('data', (d) => (text += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text)) : reject(new Error(`child exited ${code}`))));
  });
  assert.equal(out.released, true);
  assert.ok(out.seen.length >= 2, JSON.stringify(out.seen));
  for (const { url, scope } of out.seen) {
    assert.ok(url.startsWith(`${moto.endpoint}/`), `${url} is not the profile's endpoint`);
    assert.equal(scope, 'eu-west-3', `${url} signed for ${scope}`);
  }
});

test('an AWS config file that cannot be parsed is InvalidConfiguration naming AWS_CONFIG_FILE', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'condlock-node-profile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config');
  writeFileSync(config, '[profile node-test\nregion = \n');
  const { region, endpoint, ...o } = opts();
  const script = `
    import { S3Lock } from ${JSON.stringify(new URL('../index.mjs', import.meta.url).href)};
    try {
      new S3Lock(${JSON.stringify(o)});
      process.stdout.write('null');
    } catch (e) {
      process.stdout.write(JSON.stringify({ name: e.name, field: e.field, message: e.message }));
    }`;
  const env = { ...process.env, AWS_CONFIG_FILE: config, AWS_PROFILE: 'node-test' };
  const out = await new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    c.stdout.on('data', (d) => (text += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text)) : reject(new Error(`child exited ${code}`))));
  });
  assert.equal(out?.name, 'InvalidConfiguration');
  assert.equal(out.field, 'AWS_CONFIG_FILE');
  assert.match(out.message, /AWS_CONFIG_FILE/);
});
