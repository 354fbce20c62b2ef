// Test helpers: moto (behind one lock, tests/moto_atomic.py, so exclusion
// counts are honest) on a free loopback port, unique keys, lock options.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SECRET = 'node-test-secret-never-shown';

function python() {
  const venv = join(REPO, '.venv', 'bin', 'python');
  return process.env.CONDLOCK_PYTHON ?? (existsSync(venv) ? venv : 'python3');
}

/** Start moto; resolves `{ endpoint, stop }` once it listens. */
export async function startMoto() {
  const child = spawn(python(), [join(REPO, 'tests', 'moto_atomic.py'), '-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`moto_atomic.py exited with ${code}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    stop: () => child.kill(),
  };
}

/** Start the Apstra emulator (tests/apstra_emulator.py) knowing `blueprints`. */
export async function startApstra(blueprints) {
  const args = [join(REPO, 'tests', 'apstra_emulator.py'), '--port', '0', '--host', '127.0.0.1', '--user', 'admin:emulator-password'];
  for (const b of blueprints) args.push('--blueprint', b);
  const child = spawn(python(), args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`apstra_emulator.py exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

/** Create a bucket (moto does not check signatures). */
export async function createBucket(endpoint, bucket) {
  const r = await fetch(`${endpoint}/${bucket}`, { method: 'PUT' });
  if (!r.ok && r.status !== 409) throw new Error(`cannot create bucket: ${r.status}`);
}

export function uniqueKey() {
  return `node/${randomUUID()}/terraform.tfstate`;
}

export function lockOptions(endpoint, bucket, extra = {}) {
  return {
    bucket,
    key: uniqueKey(),
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDNODETEST', secretAccessKey: SECRET },
    maxPollIntervalMs: 200,
    ...extra,
  };
}

// moto routes a request to S3 or DynamoDB by the credential scope of its
// Authorization header (signatures are not checked).
const dummyAuthorization = (service) => 'AWS4-HMAC-SHA256 '
  + `Credential=AKIDNODETEST/20250101/us-east-1/${service}/aws4_request, `
  + 'SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000';
export const S3_AUTHORIZATION = dummyAuthorization('s3');
const DYNAMODB_AUTHORIZATION = dummyAuthorization('dynamodb');

/** One call of moto's DynamoDB (JSON 1.0): `operation` such as `PutItem`. */
export async function dynamodb(endpoint, operation, body) {
  const r = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      authorization: DYNAMODB_AUTHORIZATION,
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${operation}`,
    },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`DynamoDB ${operation}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** Terraform's lock table: string hash key `LockID`. */
export async function createLockTable(endpoint, table) {
  await dynamodb(endpoint, 'CreateTable', {
    TableName: table,
    KeySchema: [{ AttributeName: 'LockID', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'LockID', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  });
}
