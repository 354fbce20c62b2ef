// The browser package's tests, in headless Chromium (Debian's `chromium`,
// driven by playwright-core) against moto on 127.0.0.1 behind a proxy that
// applies bucket CORS rules as S3 does (see servers.mjs).
//
//   node bindings-wasm/tests/run.mjs [name filter]
//
// Screenshots of the dashboard go to target/browser-artifacts/.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { createBucket, startCorsProxy, startMoto, startStatic } from './servers.mjs';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(PKG, '..');
const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target');
const ARTIFACTS = path.join(TARGET, 'browser-artifacts');
const CLI = process.env.CONDLOCK_CLI ?? path.join(TARGET, 'debug', 'condlock');
const filter = process.argv[2] ?? '';

// Fixed test credentials: moto accepts any.
const KEYS = { accessKeyId: 'AKIDBROWSERTEST', secretAccessKey: 'browser-test-secret' };
const CLI_ENV = {
  ...process.env,
  AWS_ACCESS_KEY_ID: 'AKIDCLITEST', AWS_SECRET_ACCESS_KEY: 'cli-test-secret', AWS_REGION: 'us-east-1',
};

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}
function equal(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** The `condlock` command against moto (another process holding the lock). */
/** Its JSON result; `status` exits non-zero when the lock is held, which is not a failure here. */
async function cli(motoUrl, ...args) {
  let stdout;
  try {
    ({ stdout } = await promisify(execFile)(CLI, [...args, '--endpoint', motoUrl, '--json'], {
      env: CLI_ENV, timeout: 60_000,
    }));
  } catch (e) {
    if (!e.stdout?.trim()) throw new Error(`${e.message}\n${e.stderr}`);
    stdout = e.stdout;
  }
  return stdout.trim() ? JSON.parse(stdout) : null;
}

async function newPage(ctx, url) {
  const page = await ctx.browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') ctx.consoleErrors.push(m.text()); });
  page.errors = errors;
  await page.goto(url);
  return page;
}

async function packagePage(ctx) {
  const page = await newPage(ctx, `${ctx.static.url}/tests/page.html`);
  await page.waitForFunction(() => window.condlockReady === true, null, { timeout: 30_000 });
  return page;
}

// ---------------------------------------------------------------- package

test('acquire, meet the CLI as holder, release', async (ctx) => {
  const page = await packagePage(ctx);
  const opts = { bucket: 'locks', key: 'pkg/terraform.tfstate', endpoint: ctx.proxy.url, credentials: KEYS, who: 'tab@browser-test', info: 'from the test' };
  const first = await page.evaluate(async (opts) => {
    const lock = new condlock.S3Lock(opts);
    const held = await lock.acquire({ timeoutMs: 20_000 });
    const seen = await lock.holder();
    const out = { lockId: held.lockId, etag: held.etag, seen, leaseMs: held.leaseMs };
    out.released = await held.release();
    out.again = await held.release();
    out.after = await lock.holder();
    return out;
  }, opts);
  assert(/^[0-9a-f-]{36}$/.test(first.lockId), `lock ID is UUID-shaped: ${first.lockId}`);
  equal(first.seen.id, first.lockId, 'holder() sees our lock');
  equal(first.seen.who, 'tab@browser-test', 'holder who');
  equal(first.seen.info, 'from the test', 'holder info');
  equal(first.leaseMs, null, 'no lease');
  equal([first.released, first.again, first.after], [true, false, null], 'release, release again, free');

  // Another process (the condlock CLI) takes it: the page meets it.
  const taken = await cli(ctx.moto.url, 'acquire', 's3://locks/pkg/terraform.tfstate', '--info', 'cli holder');
  const status = await cli(ctx.moto.url, 'status', 's3://locks/pkg/terraform.tfstate');
  const cliId = taken.id ?? taken.lock_id ?? taken.ID;
  assert(cliId, `the CLI printed a lock ID: ${JSON.stringify(taken)}`);
  const contention = await page.evaluate(async (opts) => {
    const lock = new condlock.S3Lock(opts);
    const none = await lock.tryAcquire();
    const last = lock.lastHolder;
    let timeout;
    const waits = [];
    try {
      await lock.acquire({ timeoutMs: 1500, onWait: (e) => waits.push(e) });
    } catch (e) {
      timeout = { name: e.name, code: e.code, isLockError: e instanceof condlock.LockError, isTimeout: e instanceof condlock.LockTimeout, holder: e.holder, waitedMs: e.waitedMs, message: e.message };
    }
    return { none, last, timeout, waits };
  }, opts);
  equal(contention.none, null, 'tryAcquire while the CLI holds it');
  equal(contention.last.id, cliId, 'lastHolder is the CLI lock');
  equal(contention.last.info, 'cli holder', 'lastHolder info');
  const cliWho = JSON.stringify(status).match(/"(?:who|Who)":"([^"]+)"/)?.[1];
  equal(contention.last.who, cliWho, 'lastHolder who is the CLI process');
  equal([contention.timeout.name, contention.timeout.code, contention.timeout.isLockError, contention.timeout.isTimeout], ['LockTimeout', 'timeout', true, true], 'timeout error');
  equal(contention.timeout.holder.id, cliId, 'timeout names the holder');
  assert(contention.timeout.waitedMs >= 1000, `waitedMs ${contention.timeout.waitedMs}`);
  assert(contention.timeout.message.includes(`forceUnlock("${cliId}")`), `message in JS spelling: ${contention.timeout.message}`);
  assert(contention.waits.length >= 1 && contention.waits[0].holder.id === cliId && contention.waits[0].newHolder === true, `onWait saw the holder: ${JSON.stringify(contention.waits[0])}`);

  // The CLI releases: the page gets it, with `await using` releasing it.
  await cli(ctx.moto.url, 'release', cliId, 's3://locks/pkg/terraform.tfstate');
  // As source text: Node (which runs this file) does not parse `await using` yet.
  const after = await page.evaluate(`(async (opts) => {
    const lock = new condlock.S3Lock(opts);
    let id;
    {
      await using held = await lock.acquire({ timeoutMs: 20_000 });
      id = held.lockId;
    }
    return { id, free: await lock.holder() };
  })(${JSON.stringify(opts)})`);
  assert(after.id, 'acquired after the CLI released');
  equal(after.free, null, 'asyncDispose released it');
  equal(page.errors, [], 'no page errors');
});

test('bad input throws InvalidConfiguration naming the option', async (ctx) => {
  const page = await packagePage(ctx);
  const got = await page.evaluate(async (url) => {
    const attempt = (o) => {
      try { new condlock.S3Lock(o); return null; } catch (e) {
        return { name: e.name, code: e.code, field: e.field, isConfig: e instanceof condlock.InvalidConfiguration, message: e.message };
      }
    };
    const keys = { accessKeyId: 'a', secretAccessKey: 'b' };
    return {
      noBucket: attempt({ key: 'k', credentials: keys }),
      badLease: attempt({ bucket: 'bkt', key: 'k', credentials: keys, leaseMs: -5 }),
      noCredentials: attempt({ bucket: 'bkt', key: 'k', endpoint: url }),
      halfKeys: attempt({ bucket: 'bkt', key: 'k', credentials: { accessKeyId: 'a' } }),
      verify: attempt({ bucket: 'bkt', key: 'k', credentials: keys, verifyConditionalWrites: 'sometimes' }),
      badFetch: attempt({ bucket: 'bkt', key: 'k', credentials: keys, fetch: 'https://proxy' }),
      badUseLockfile: attempt({ bucket: 'bkt', key: 'k', credentials: keys, dynamodbTable: 't', useLockfile: 'no' }),
      nothingLocked: attempt({ bucket: 'bkt', key: 'k', credentials: keys, useLockfile: false }),
      tableLease: attempt({ bucket: 'bkt', key: 'k', credentials: keys, dynamodbTable: 'tf-locks', leaseMs: 30_000 }),
      badTable: attempt({ bucket: 'bkt', key: 'k', credentials: keys, dynamodbTable: 'x' }),
      timeout: await new condlock.S3Lock({ bucket: 'bkt', key: 'k', credentials: keys, endpoint: url })
        .acquire({ timeoutMs: 'soon' }).then(() => null, (e) => ({ name: e.name, field: e.field, message: e.message })),
      emptyId: await new condlock.S3Lock({ bucket: 'bkt', key: 'k', credentials: keys, endpoint: url })
        .forceUnlock('').then(() => null, (e) => ({ name: e.name, field: e.field, message: e.message })),
    };
  }, ctx.proxy.url);
  equal([got.noBucket.name, got.noBucket.code, got.noBucket.field, got.noBucket.isConfig], ['InvalidConfiguration', 'invalid_config', 'bucket', true], 'missing bucket');
  equal(got.badLease.field, 'leaseMs', 'bad lease');
  equal(got.noCredentials.field, 'credentials', 'no credentials');
  equal(got.halfKeys.field, 'credentials.secretAccessKey', 'half the keys');
  equal(got.verify.field, 'verifyConditionalWrites', 'bad verify policy');
  equal(got.badFetch.field, 'fetch', 'fetch that is not a function');
  equal(got.badUseLockfile.field, 'useLockfile', 'useLockfile that is not a boolean');
  equal(got.nothingLocked.field, 'useLockfile', 'no lock file and no table');
  equal(got.tableLease.field, 'leaseMs', 'a lease with a DynamoDB table');
  equal(got.badTable.field, 'dynamodbTable', 'a table name DynamoDB refuses');
  equal([got.timeout.name, got.timeout.field], ['InvalidConfiguration', 'timeoutMs'], 'a timeout that is not a number');
  equal([got.emptyId.name, got.emptyId.field], ['InvalidConfiguration', 'lockId'], 'force-unlock without an ID');
  for (const e of Object.values(got)) assert(!e.message.includes('browser-test-secret'), 'no secret in messages');
});

/** A DynamoDB call to moto from the test (moto checks no signature; the
 * credential scope in `authorization` is what routes it to DynamoDB). */
async function dynamo(motoUrl, op, body) {
  const r = await fetch(`${motoUrl}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${op}`,
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIDBROWSERTEST/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${op}: ${r.status} ${text}`);
  return JSON.parse(text || '{}');
}

test('DynamoDB: both locks, the item alone, the CLI as holder, a missing table', async (ctx) => {
  const table = 'tf-locks-browser';
  await dynamo(ctx.moto.url, 'CreateTable', {
    TableName: table,
    KeySchema: [{ AttributeName: 'LockID', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'LockID', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  });
  const key = 'ddb/terraform.tfstate';
  const itemHolder = async () => {
    const got = await dynamo(ctx.moto.url, 'GetItem', { TableName: table, Key: { LockID: { S: `locks/${key}` } }, ConsistentRead: true });
    return got.Item ? JSON.parse(got.Item.Info.S).ID : null;
  };
  const fileHolder = async () => {
    // Signed-looking, or moto answers an anonymous read with 403.
    const r = await fetch(`${ctx.moto.url}/locks/${key}.tflock`, {
      headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIDBROWSERTEST/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0' },
    });
    const text = await r.text();
    if (r.status === 404) return null;
    assert(r.ok, `GET the lock file: ${r.status} ${text}`);
    return JSON.parse(text).ID;
  };
  const page = await packagePage(ctx);
  // The lock file through the CORS proxy, the item from moto directly (it
  // answers CORS for every origin, as DynamoDB does).
  const opts = { bucket: 'locks', key, endpoint: ctx.proxy.url, credentials: KEYS, dynamodbTable: table, dynamodbEndpoint: ctx.moto.url };

  // Both locks by default, one lock ID for both; released both.
  const pairId = await page.evaluate(async (opts) => {
    window.pairHeld = await new condlock.S3Lock(opts).acquire({ timeoutMs: 20_000 });
    return window.pairHeld.lockId;
  }, opts);
  equal([await fileHolder(), await itemHolder()], [pairId, pairId], 'the lock file and the item are ours');
  equal(await page.evaluate(() => window.pairHeld.release()), true, 'released');
  equal([await fileHolder(), await itemHolder()], [null, null], 'both removed');

  // The CLI (another process) takes both: an item-only lock meets it.
  const taken = await cli(ctx.moto.url, 'acquire', `s3://locks/${key}`, '--dynamodb-table', table, '--dynamodb-endpoint', ctx.moto.url);
  const cliId = taken.id ?? taken.lock_id ?? taken.ID;
  equal(await itemHolder(), cliId, 'the CLI holds the item');
  const met = await page.evaluate(async (opts) => {
    const lock = new condlock.S3Lock({ ...opts, useLockfile: false });
    return { none: await lock.tryAcquire(), last: lock.lastHolder?.id, seen: (await lock.holder())?.id };
  }, opts);
  equal(met, { none: null, last: cliId, seen: cliId }, 'the item-only lock sees the CLI as holder');
  await cli(ctx.moto.url, 'release', cliId, `s3://locks/${key}`, '--dynamodb-table', table, '--dynamodb-endpoint', ctx.moto.url);

  // The item alone leaves the file free; a pair-taker meets the item's
  // holder and gives back the file it took.
  const alone = await page.evaluate(async (opts) => {
    window.aloneHeld = await new condlock.S3Lock({ ...opts, useLockfile: false }).acquire({ timeoutMs: 20_000 });
    const pair = new condlock.S3Lock(opts);
    return { id: window.aloneHeld.lockId, pair: await pair.tryAcquire(), last: pair.lastHolder?.id };
  }, opts);
  equal([alone.pair, alone.last], [null, alone.id], 'a pair-taker meets the item holder');
  equal([await fileHolder(), await itemHolder()], [null, alone.id], 'the item only');
  equal(await page.evaluate(() => window.aloneHeld.release()), true, 'item released');
  equal(await itemHolder(), null, 'item removed');

  // A table that does not exist: InvalidConfiguration naming the option, the file given back.
  const missing = await page.evaluate(async (opts) => {
    try { await new condlock.S3Lock({ ...opts, dynamodbTable: 'no-such-table' }).tryAcquire(); return null; } catch (e) {
      return { name: e.name, code: e.code, field: e.field, isConfig: e instanceof condlock.InvalidConfiguration, message: e.message };
    }
  }, opts);
  equal([missing.name, missing.code, missing.field, missing.isConfig], ['InvalidConfiguration', 'invalid_config', 'dynamodbTable', true], 'missing table');
  assert(missing.message.includes('no-such-table'), `the message names the table: ${missing.message}`);
  assert(!missing.message.includes('browser-test-secret'), 'no secret in the message');
  equal(await fileHolder(), null, 'the file was given back');
  equal(page.errors, [], 'no page errors');
});

test('a cancelled acquire rejects with AbortError and leaves no lock', async (ctx) => {
  const page = await packagePage(ctx);
  const taken = await cli(ctx.moto.url, 'acquire', 's3://locks/cancel/terraform.tfstate');
  const got = await page.evaluate(async (opts) => {
    const lock = new condlock.S3Lock(opts);
    const ac = new AbortController();
    const waiting = lock.acquire({ signal: ac.signal, onWait: () => ac.abort() });
    try { await waiting; return null; } catch (e) {
      return { name: e.name, code: e.code, isCancelled: e instanceof condlock.LockCancelled };
    }
  }, { bucket: 'locks', key: 'cancel/terraform.tfstate', endpoint: ctx.proxy.url, credentials: KEYS });
  equal(got, { name: 'AbortError', code: 'cancelled', isCancelled: true }, 'cancelled');
  const status = await cli(ctx.moto.url, 'status', 's3://locks/cancel/terraform.tfstate');
  assert(JSON.stringify(status).includes(taken.id ?? taken.lock_id), 'the CLI still holds it');
});

test('a lease renews while the tab runs, and a lost lease aborts the signal', async (ctx) => {
  const page = await packagePage(ctx);
  const opts = { bucket: 'locks', key: 'lease/terraform.tfstate', endpoint: ctx.proxy.url, credentials: KEYS, leaseMs: 3000 };
  const got = await page.evaluate(async (opts) => {
    const lock = new condlock.S3Lock(opts);
    const held = await lock.acquire({ timeoutMs: 20_000 });
    const etags = [held.etag];
    const token = held.fencingToken;
    // Three lease lengths: without renewals it would have expired.
    for (let i = 0; i < 9; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      if (etags.at(-1) !== held.etag) etags.push(held.etag);
    }
    const other = new condlock.S3Lock({ ...opts, takeover: true });
    const stolen = await other.tryAcquire();
    const out = { leaseMs: held.leaseMs, etags, generation: token.generation, aborted: held.signal.aborted, stolen: stolen !== null, holderId: (await lock.holder()).id, lockId: held.lockId };
    // Someone deletes it (force-unlock by ID): the lease notices, the signal aborts.
    await other.forceUnlock(held.lockId);
    const reason = await new Promise((resolve) => {
      if (held.signal.aborted) resolve(held.signal.reason);
      held.signal.addEventListener('abort', () => resolve(held.signal.reason), { once: true });
    });
    out.lost = { name: reason.name, code: reason.code, reason: reason.reason, isLost: reason instanceof condlock.LockLost };
    try { await held.release(); out.release = 'resolved'; } catch (e) { out.release = e.name; }
    return out;
  }, opts);
  equal(got.leaseMs, 3000, 'leaseMs');
  assert(got.etags.length >= 3, `renewed at least twice in 9 s of a 3 s lease: ${got.etags.length - 1} renewals`);
  equal(got.generation, 1, 'fresh lease generation');
  equal([got.aborted, got.stolen, got.holderId], [false, false, got.lockId], 'still ours after three lease lengths');
  equal(got.lost, { name: 'LockLost', code: 'lost', reason: 'gone', isLost: true }, 'loss aborts the signal');
  equal(got.release, 'LockLost', 'release after a loss reports it');
});

test('a bucket without the CORS rule fails with TransportError naming fetch', async (ctx) => {
  const page = await packagePage(ctx);
  const got = await page.evaluate(async (opts) => {
    const lock = new condlock.S3Lock(opts);
    try { await lock.holder(); return null; } catch (e) {
      return { name: e.name, code: e.code, message: e.message, isTransport: e instanceof condlock.TransportError };
    }
  }, { bucket: 'nocors', key: 'x/terraform.tfstate', endpoint: ctx.proxy.url, credentials: KEYS });
  equal([got.name, got.code, got.isTransport], ['TransportError', 'transport', true], 'error class');
  assert(got.message.includes('fetch failed'), `message names fetch: ${got.message}`);
});

test('a credentials provider is asked again only near expiry; hooks carry no secret', async (ctx) => {
  const page = await packagePage(ctx);
  const got = await page.evaluate(async (endpoint) => {
    const calls = { far: 0, soon: 0, other: 0 };
    const provider = (which, expiresInMs) => async () => {
      calls[which]++;
      return { accessKeyId: 'AKIDPROVIDED', secretAccessKey: 'provided-secret-xyz', sessionToken: 'provided-token-xyz', expiration: new Date(Date.now() + expiresInMs) };
    };
    const events = [];
    const base = { bucket: 'locks', endpoint, logger: (e) => events.push(e) };
    const far = new condlock.S3Lock({ ...base, key: 'prov/a.tfstate', credentials: provider('far', 3_600_000) });
    const soon = new condlock.S3Lock({ ...base, key: 'prov/b.tfstate', credentials: provider('soon', 60_000) });
    for (const lock of [far, soon]) {
      const held = await lock.acquire({ timeoutMs: 20_000 });
      await lock.holder();
      await held.release();
    }
    // Waiting for a holder: `onWait` and the logger see it; neither carries a secret.
    const holder = await far.acquire();
    const waits = [];
    let timedOut;
    try {
      await soon.acquire({ timeoutMs: 10 }); // another lock object, other key: free
      await new condlock.S3Lock({ ...base, key: 'prov/a.tfstate', credentials: provider('other', 3_600_000) })
        .acquire({ timeoutMs: 800, onWait: (e) => waits.push(e) });
    } catch (e) {
      timedOut = { name: e.name, message: e.message };
    }
    await holder.release();
    let failing;
    try {
      await new condlock.S3Lock({ ...base, key: 'prov/c.tfstate', credentials: async () => { throw new Error('no session'); } }).holder();
    } catch (e) {
      failing = { name: e.name, field: e.field, message: e.message };
    }
    let thrown;
    try {
      await far.using(async (signal, held) => { throw new Error(`work failed under ${held.lockId}`); });
    } catch (e) {
      thrown = e.message;
    }
    return { calls, events, waits: waits.length, timedOut, failing, thrown, freeAfterUsing: await far.holder() };
  }, ctx.proxy.url);
  // One acquire, one status, one release: 3 operations; kept credentials are
  // asked for once, those expiring within the core's margin on every request.
  equal(got.calls.far, 1, 'a provider whose credentials expire in an hour is asked once');
  assert(got.calls.soon >= 3, `a provider whose credentials expire within the margin is asked each time: ${got.calls.soon}`);
  equal(got.timedOut?.name, 'LockTimeout', 'contention between two lock objects');
  assert(got.waits >= 1, 'onWait called');
  assert(got.events.some((e) => e.kind === 'waiting' && e.message.includes('waiting for the lock')), `logger saw the wait: ${JSON.stringify(got.events)}`);
  equal([got.failing.name, got.failing.field], ['InvalidConfiguration', 'credentials'], 'a failing provider');
  assert(got.failing.message.includes('no session'), `the provider's failure is named: ${got.failing.message}`);
  assert(got.thrown.startsWith('work failed under'), 'using() passes the work\'s error through');
  equal(got.freeAfterUsing, null, 'using() released after the work threw');
  const everything = JSON.stringify(got);
  for (const secret of ['provided-secret-xyz', 'provided-token-xyz']) assert(!everything.includes(secret), `${secret} leaked`);
});

// ---------------------------------------------------------------- dashboard

const SECRET = 'dashboard-secret-never-shown';

async function dashboard(ctx, fields, viewport) {
  const page = await newPage(ctx, `${ctx.static.url}/dashboard/index.html`);
  if (viewport) await page.setViewportSize(viewport);
  const values = { endpoint: ctx.proxy.url, accessKeyId: 'AKIDDASHBOARD', secretAccessKey: SECRET, ...fields };
  for (const [id, v] of Object.entries(values)) await page.fill(`#${id}`, v);
  await page.click('#watch');
  return page;
}

const badge = (page) => page.textContent('#badge');
async function waitBadge(page, word, timeout = 30_000) {
  await page.waitForFunction((w) => document.getElementById('badge').textContent === w, word, { timeout });
}
async function shot(ctx, page, name) {
  await page.screenshot({ path: path.join(ctx.artifacts, `${name}.png`), fullPage: true });
}

/** Nothing of the secret in the URL, storage, cookies or the page's text. */
async function noSecretKept(page) {
  const kept = await page.evaluate(() => ({
    url: location.href, local: JSON.stringify(localStorage), session: JSON.stringify(sessionStorage),
    cookie: document.cookie, text: document.body.innerText,
  }));
  for (const [where, v] of Object.entries(kept)) assert(!v.includes('dashboard-secret'), `secret in ${where}`);
}

test('dashboard: another process holds the lock, the page shows it, force-unlock clears it after the ID is typed', async (ctx) => {
  const target = 's3://locks/dash/terraform.tfstate';
  const page = await dashboard(ctx, { bucket: 'locks', key: 'dash/terraform.tfstate' });
  await waitBadge(page, 'Free');
  await shot(ctx, page, 'dashboard-free');

  const taken = await cli(ctx.moto.url, 'acquire', target, '--info', 'nightly apply from CI');
  const status = await cli(ctx.moto.url, 'status', target);
  const cliWho = JSON.stringify(status).match(/"(?:who|Who)":"([^"]+)"/)[1];
  // No click: the page refreshes itself.
  await waitBadge(page, 'Held', 20_000);
  equal(await page.textContent('#d-who'), cliWho, 'who');
  equal(await page.textContent('#d-id'), taken.id, 'lock ID');
  equal(await page.textContent('#d-info'), 'nightly apply from CI', 'info');
  const age1 = await page.textContent('#d-age');
  assert(/^\d+s ago$/.test(age1), `age shown: ${age1}`);
  await page.waitForFunction((a) => document.getElementById('d-age').textContent !== a, age1, { timeout: 5000 });
  await shot(ctx, page, 'dashboard-held-by-another-process');

  await page.click('#force');
  assert(await page.isDisabled('#c-ok'), 'confirm disabled before the ID is typed');
  await page.fill('#c-input', taken.id.slice(0, 8));
  assert(await page.isDisabled('#c-ok'), 'confirm disabled with part of the ID');
  await page.fill('#c-input', taken.id);
  assert(!(await page.isDisabled('#c-ok')), 'confirm enabled with the exact ID');
  await shot(ctx, page, 'dashboard-force-unlock-confirmation');
  await page.click('#c-ok');
  await waitBadge(page, 'Free');
  const after = await cli(ctx.moto.url, 'status', target);
  assert(!JSON.stringify(after).includes(taken.id), `the CLI's lock is gone: ${JSON.stringify(after)}`);

  await page.click('#acquire');
  await waitBadge(page, 'Held by this page');
  const ours = await cli(ctx.moto.url, 'status', target);
  assert(JSON.stringify(ours).includes('condlock dashboard'), `the CLI sees the page's lock: ${JSON.stringify(ours)}`);
  await shot(ctx, page, 'dashboard-held-by-this-page');
  await page.click('#release');
  await waitBadge(page, 'Free');
  await noSecretKept(page);
  equal(page.errors, [], 'no page errors');
});

test('dashboard: narrow screen', async (ctx) => {
  const target = 's3://locks/narrow/terraform.tfstate';
  await cli(ctx.moto.url, 'acquire', target, '--info', 'terraform apply -target=module.network');
  const page2 = await dashboard(ctx, { bucket: 'locks', key: 'narrow/terraform.tfstate' }, { width: 390, height: 844 });
  await waitBadge(page2, 'Held');
  const overflow = await page2.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert(!overflow, 'no horizontal scrolling at 390 px');
  await shot(ctx, page2, 'dashboard-narrow');
});

test('dashboard: problems in plain words with the fix', async (ctx) => {
  const cors = await dashboard(ctx, { bucket: 'nocors', key: 'x/terraform.tfstate' });
  await page_wait_problem(cors);
  const title = await cors.textContent('#p-title');
  assert(title.includes('could not reach the bucket'), `title: ${title}`);
  const fix = await cors.textContent('#p-fix');
  for (const part of ['"ExposeHeaders"', '"ETag"', `"${ctx.static.url}"`, '"AllowedMethods"', 'aws s3api put-bucket-cors --bucket nocors']) {
    assert(fix.includes(part), `the fix shows ${part}: ${fix}`);
  }
  await shot(ctx, cors, 'dashboard-problem-no-cors-rule');
  await noSecretKept(cors);

  // A rule that allows the page but hides ETag: reading a held lock shows it.
  await cli(ctx.moto.url, 'acquire', 's3://noexpose/y/terraform.tfstate');
  const etag = await dashboard(ctx, { bucket: 'noexpose', key: 'y/terraform.tfstate' });
  await page_wait_problem(etag);
  const t2 = await etag.textContent('#p-title');
  assert(t2.includes('does not expose the ETag header'), `title: ${t2}`);
  await shot(ctx, etag, 'dashboard-problem-etag-not-exposed');

  const denied = await dashboard(ctx, { bucket: 'denied', key: 'd/terraform.tfstate' });
  await page_wait_problem(denied);
  equal(await denied.textContent('#p-title'), 'Access denied', 'access denied title');
  assert((await denied.textContent('#p-fix')).includes('s3:PutObject'), 'names the permissions');
  await shot(ctx, denied, 'dashboard-problem-access-denied');

  const region = await dashboard(ctx, { bucket: 'elsewhere', key: 'r/terraform.tfstate' });
  await page_wait_problem(region);
  equal(await region.textContent('#p-title'), 'Wrong region', 'wrong region title');
  assert((await region.textContent('#p-text')).includes('eu-west-1'), 'names the right region');
  assert(await region.evaluate(() => document.getElementById('region').classList.contains('invalid')), 'the region field is marked');
  await shot(ctx, region, 'dashboard-problem-wrong-region');

  const ignoring = await dashboard(ctx, { bucket: 'ignoring', key: 'i/terraform.tfstate' });
  await waitBadge(ignoring, 'Free');
  await ignoring.click('#acquire');
  await page_wait_problem(ignoring);
  equal(await ignoring.textContent('#p-title'), 'This store cannot hold a lock', 'conditional writes ignored');
  await waitBadge(ignoring, 'Problem');
  await shot(ctx, ignoring, 'dashboard-problem-conditional-writes-ignored');
  const left = await cli(ctx.moto.url, 'status', 's3://ignoring/i/terraform.tfstate');
  assert(!JSON.stringify(left).includes('condlock dashboard'), `the lock written to test the store was removed: ${JSON.stringify(left)}`);

  const bad = await dashboard(ctx, { bucket: 'Not_A_Bucket!', key: 'z/terraform.tfstate' });
  await page_wait_problem(bad);
  const t3 = await bad.textContent('#p-title');
  assert(t3.includes('Bucket'), `bad input names the field: ${t3}`);
  assert(await bad.evaluate(() => document.getElementById('bucket').classList.contains('invalid')), 'the field is marked');
  await shot(ctx, bad, 'dashboard-problem-bad-input');
});

async function page_wait_problem(page) {
  await page.waitForSelector('#problem:not([hidden])', { timeout: 60_000 });
}

// ---------------------------------------------------------------- scenarios

/** The S3 scenarios the browser replays: every one not limited to other bindings. */
function browserScenarios() {
  const dir = path.join(ROOT, 'tests', 'scenarios');
  const out = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const data = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    for (const s of Array.isArray(data) ? data : [data]) {
      if ((s.lock?.kind ?? 's3') !== 's3') continue; // Apstra is not in the browser package
      if (s.bindings && !s.bindings.includes('browser') && !s.bindings.includes('python')) continue;
      let pending = s.pending;
      if (pending && typeof pending === 'object') pending = pending.browser;
      out.push({ id: `${file}: ${s.name}`, scenario: s, pending });
    }
  }
  return out;
}

test('the behaviour scenarios, replayed through the fetch option', async (ctx) => {
  const page = await packagePage(ctx);
  const all = browserScenarios();
  assert(all.length >= 25, `found ${all.length} S3 scenarios`);
  const failures = [];
  for (const { id, scenario, pending } of all) {
    if (!id.includes(process.env.SCENARIO ?? '')) continue;
    const diff = await page.evaluate(async (s) => (await import('./scenarios.js')).replay(s), scenario);
    // A pending scenario must fail until the core is fixed (then the mark goes).
    if (pending && diff === null) failures.push(`${id}: passes, but is marked pending (${pending}): remove the mark`);
    else if (!pending && diff !== null) failures.push(`${id}:\n    ${diff.split('\n').join('\n    ')}`);
    else console.log(`     scenario ${pending ? 'pending (fails as expected)' : 'ok'}: ${id}`);
  }
  assert(failures.length === 0, `${failures.length} scenario(s):\n  ${failures.join('\n  ')}`);
});

// ---------------------------------------------------------------- runner

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const moto = await startMoto(ROOT);
  const proxy = await startCorsProxy(moto.url);
  const stat = await startStatic(PKG);
  const origin = stat.url;
  const rule = { AllowedOrigins: [origin], AllowedMethods: ['GET', 'PUT', 'DELETE', 'HEAD'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'] };
  await createBucket(moto.url, 'locks', [rule]);
  await createBucket(moto.url, 'nocors', null);
  await createBucket(moto.url, 'ignoring', [rule]);
  await createBucket(moto.url, 'noexpose', [{ ...rule, ExposeHeaders: [] }]);
  const userData = fs.mkdtempSync(path.join(TARGET, 'chromium-profile-'));
  const browser = await chromium.launchPersistentContext(userData, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 800 },
  });
  const ctx = { moto, proxy, static: stat, browser, consoleErrors: [], artifacts: ARTIFACTS };
  let failed = 0;
  const chosen = tests.filter((t) => t.name.includes(filter));
  if (!chosen.length) {
    console.log(`no browser test matches ${JSON.stringify(filter)}`);
    failed = 1;
  }
  try {
    for (const t of chosen) {
      const started = Date.now();
      try {
        await t.fn(ctx);
        console.log(`ok   ${t.name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name}\n     ${String(e.stack ?? e).split('\n').join('\n     ')}`);
      } finally {
        for (const p of browser.pages()) await p.close().catch(() => {});
      }
    }
  } finally {
    await browser.close();
    fs.rmSync(userData, { recursive: true, force: true });
    proxy.stop();
    stat.stop();
    moto.stop();
  }
  if (failed) {
    console.log(`${failed} browser test(s) failed`);
    process.exit(1);
  }
  console.log('all browser tests passed');
}



await main();
