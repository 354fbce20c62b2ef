// Contention with a holder written in Python: the condlock wheel that
// scripts/test-python.sh installs into $CARGO_TARGET_DIR/py-test-venv (the
// Python suite runs before this one in scripts/test.sh, so CI never builds
// a wheel for it). Without that venv the test is skipped, saying so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { S3Lock, LockTimeout } from '../index.mjs';
import { REPO, startMoto, createBucket, createLockTable, lockOptions } from './helpers.mjs';

const BUCKET = 'condlock-node-python';
const PYTHON = process.env.CONDLOCK_WHEEL_PYTHON
  ?? join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'py-test-venv', 'bin', 'python');
const hasWheel = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import condlock'], { stdio: 'ignore' }).status === 0;

// Takes the lock with the options in argv[1] (JSON), prints "HELD <id>",
// releases when stdin closes.
const HOLDER = `
import json, sys
import condlock
o = json.loads(sys.argv[1])
lock = condlock.S3Lock(o["bucket"], o["key"], region="us-east-1", endpoint=o["endpoint"],
                       access_key_id="AKIDPYTHON", secret_access_key="python-secret",
                       who="python@ci", info="held by Python",
                       dynamodb_table=o.get("dynamodbTable"), dynamodb_endpoint=o.get("dynamodbEndpoint"))
held = lock.acquire(timeout=30)
print("HELD", held.lock_id, flush=True)
sys.stdin.read()
held.release()
`;

let moto;
let table;
before(async () => {
  if (!hasWheel) return;
  moto = await startMoto();
  await createBucket(moto.endpoint, BUCKET);
  table = `tf-locks-${randomUUID().slice(0, 8)}`;
  await createLockTable(moto.endpoint, table);
});
after(() => moto?.stop());

for (const withTable of [false, true]) {
  const name = withTable ? 'the lock file and DynamoDB item' : 'the lock file';
  test(`${name} held by Python is seen, waited for, then taken`, { skip: hasWheel ? false : `no condlock wheel at ${PYTHON} (scripts/test-python.sh installs it)` }, async () => {
    const extra = withTable ? { dynamodbTable: table, dynamodbEndpoint: moto.endpoint } : {};
    const o = lockOptions(moto.endpoint, BUCKET, { who: 'node@ci', ...extra });
    const py = spawn(PYTHON, ['-c', HOLDER, JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    py.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => py.on('exit', resolve));
    const pyId = await new Promise((resolve, reject) => {
      let out = '';
      py.stdout.on('data', (d) => {
        out += d;
        const m = /HELD (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      py.on('exit', (c) => reject(new Error(`the Python holder exited with ${c}: ${stderr}`)));
    });
    const lock = new S3Lock(o);
    assert.equal(await lock.tryAcquire(), null);
    assert.equal(lock.lastHolder.id, pyId);
    assert.equal(lock.lastHolder.who, 'python@ci');
    assert.equal(lock.lastHolder.info, 'held by Python');
    const err = await lock.acquire({ timeoutMs: 200 }).catch((e) => e);
    assert.ok(err instanceof LockTimeout, String(err));
    assert.equal(err.holder.id, pyId);
    const waiting = lock.acquire({ timeoutMs: 30_000 });
    await sleep(300);
    py.stdin.end();
    const held = await waiting;
    assert.equal(await exited, 0, stderr);
    assert.notEqual(held.lockId, pyId);
    assert.equal(await held.release(), true);
  });
}
