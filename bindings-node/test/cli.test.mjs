// Contention with a holder written in Rust: the `condlock` command (built
// by scripts/test-node.sh) holds the lock while it runs a command.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { S3Lock } from '../index.mjs';
import { REPO, startMoto, createBucket, lockOptions } from './helpers.mjs';

const BUCKET = 'condlock-node-cli';
const CLI = join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'debug', 'condlock');
let moto;
let dir;

before(async () => {
  moto = await startMoto();
  await createBucket(moto.endpoint, BUCKET);
  dir = mkdtempSync(join(tmpdir(), 'condlock-node-cli-'));
});
after(() => {
  moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a lock held by the condlock command is seen, waited for, then taken', async () => {
  assert.ok(existsSync(CLI), `${CLI} not built (scripts/test-node.sh builds it)`);
  const o = lockOptions(moto.endpoint, BUCKET, { who: 'node@ci' });
  const go = join(dir, 'go');
  // The command under the lock runs until the test creates `go`.
  const wait = `const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(go)})) clearInterval(t); }, 20);`;
  const cli = spawn(
    CLI,
    ['run', `s3://${BUCKET}/${o.key}`, '--endpoint', moto.endpoint, '--region', 'us-east-1', '--info', 'held by the CLI', '--', process.execPath, '-e', wait],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDCLI', AWS_SECRET_ACCESS_KEY: 'cli-secret' },
    },
  );
  let stderr = '';
  cli.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => cli.on('exit', resolve));
  const lock = new S3Lock(o);
  let holder = null;
  for (let i = 0; i < 200 && holder === null; i++) {
    holder = await lock.holder();
    if (holder === null) await sleep(50);
  }
  assert.ok(holder, `the CLI never took the lock: ${stderr}`);
  assert.equal(holder.info, 'held by the CLI');
  assert.equal(await lock.tryAcquire(), null);
  assert.equal(lock.lastHolder.id, holder.id);
  const events = [];
  const waiting = lock.acquire({ timeoutMs: 30_000, onWait: (e) => events.push(e) });
  await sleep(300);
  writeFileSync(go, '');
  const held = await waiting;
  assert.equal(await exited, 0, stderr);
  assert.ok(events.some((e) => e.holder?.id === holder.id));
  assert.equal(held.info.who, 'node@ci');
  await held.release();
});
