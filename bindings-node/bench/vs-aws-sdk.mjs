// Client CPU per uncontended lock+unlock cycle, and module load time:
// condlock against @aws-sdk/client-s3 doing the same conditional PUT and
// DELETE, against the same servers in the same run: moto (closes every
// connection), s3rver (keeps connections alive, ignores conditional headers)
// and bindings-python/bench/keepalive_s3.py (keeps connections alive and
// honours conditional headers, so condlock runs with its proof as in use).
//
//   (cd bindings-node/bench && npm install) && node bindings-node/bench/vs-aws-sdk.mjs
//
// Each measurement runs in its own Node process, RUNS times per library and
// server (the table shows the median and the range). CPU is
// process.cpuUsage() (user + system, every thread: condlock's requests run
// on Rust threads), over MEASURE cycles after WARMUP cycles (the SDK's JIT
// warm-up).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const WARMUP = Number(process.env.WARMUP ?? 100);
const MEASURE = Number(process.env.MEASURE ?? 300);
const RUNS = Number(process.env.RUNS ?? 5);
// Only the servers whose name contains ONLY (e.g. ONLY=keepalive), and LIBS
// (comma-separated: condlock,sdk) for a quicker look while profiling.
const ONLY = process.env.ONLY ?? '';
const LIBS = (process.env.LIBS ?? 'condlock,sdk').split(',');
const BUCKET = 'bench';
// s3rver's fixed keys (moto accepts any).
const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

async function cycleCondlock(endpoint, verify) {
  const { S3Lock } = await import('../index.mjs');
  const lock = new S3Lock({
    bucket: BUCKET, key: `bench/${randomUUID()}`, endpoint, region: 'us-east-1', credentials: CREDS,
    verifyConditionalWrites: verify,
  });
  return async () => {
    const held = await lock.acquire();
    await held.release();
  };
}

async function cycleSdk(endpoint) {
  const { S3Client, PutObjectCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDS });
  const key = `bench/${randomUUID()}.tflock`;
  return async () => {
    const body = JSON.stringify({ ID: randomUUID(), Operation: 'bench', Who: 'bench@host', Created: new Date().toISOString() });
    const put = await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, IfNoneMatch: '*', ContentType: 'application/json' }));
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key, IfMatch: put.ETag }));
  };
}

/** In a child: measure one library against one endpoint, print JSON. */
async function child(lib, endpoint, verify) {
  const cycle = lib === 'condlock' ? await cycleCondlock(endpoint, verify) : await cycleSdk(endpoint);
  for (let i = 0; i < WARMUP; i++) await cycle();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < MEASURE; i++) await cycle();
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  process.stdout.write(JSON.stringify({ cpuMs: (c.user + c.system) / 1000 / MEASURE, wallMs: wall / MEASURE }));
}

/** In a child: time the import plus the first lock object / client. */
async function loadChild(lib) {
  const t0 = performance.now();
  if (lib === 'condlock') {
    const { S3Lock } = await import('../index.mjs');
    new S3Lock({ bucket: BUCKET, key: 'k', endpoint: 'http://127.0.0.1:1', region: 'us-east-1', credentials: CREDS });
  } else {
    const { S3Client } = await import('@aws-sdk/client-s3');
    new S3Client({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1', credentials: CREDS });
  }
  process.stdout.write(JSON.stringify({ loadMs: performance.now() - t0 }));
}

// Asynchronous: the servers' logs are read meanwhile (a full pipe would
// stall them).
function run(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--no-warnings', fileURLToPath(import.meta.url), ...args], {
      cwd: HERE,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

function serve(cmd, args, ready) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d) => {
      out += d;
      const m = ready.exec(out);
      if (m) resolve({ port: Number(m[1]), stop: () => p.kill() });
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.on('exit', (c) => reject(new Error(`${cmd} exited ${c}: ${out}`)));
  });
}

async function main() {
  const moto = await serve(join(REPO, '.venv', 'bin', 'python'), [join(REPO, 'tests', 'moto_atomic.py'), '-H', '127.0.0.1', '-p', '0'], /LISTENING (\d+)/);
  const dir = mkdtempSync(join(tmpdir(), 'bench-s3rver-'));
  const port = 40000 + Math.floor(Math.random() * 20000);
  const s3rver = await serve(join(REPO, 'tests', 'node_modules', '.bin', 's3rver'), ['-d', dir, '-p', String(port), '-a', '127.0.0.1', '--configure-bucket', BUCKET], new RegExp(`(${port})`));
  const keepalive = await serve(join(REPO, '.venv', 'bin', 'python'), [join(REPO, 'bindings-python', 'bench', 'keepalive_s3.py')], /127\.0\.0\.1:(\d+)/);
  try {
    const servers = [
      ['moto (closes connections)', `http://127.0.0.1:${moto.port}`, 'once'],
      // s3rver ignores conditional headers: the proof would refuse it.
      ['s3rver (keep-alive)', `http://127.0.0.1:${s3rver.port}`, 'never'],
      ['keepalive_s3.py (keep-alive, conditions honoured)', `http://127.0.0.1:${keepalive.port}`, 'once'],
    ];
    await fetch(`${servers[0][1]}/${BUCKET}`, { method: 'PUT' });
    await fetch(`${servers[2][1]}/${BUCKET}`, { method: 'PUT' });
    console.log(`warm-up ${WARMUP} cycles, then ${MEASURE} measured; client CPU (user+system, all threads) per cycle, median [min-max] of ${RUNS} processes\n`);
    console.log('| server | condlock CPU ms | SDK CPU ms | ratio | condlock wall ms | SDK wall ms |');
    console.log('|---|---|---|---|---|---|');
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const spread = (xs, d) => `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}]`;
    for (const [name, endpoint, verify] of servers.filter(([n]) => n.includes(ONLY))) {
      const c = [];
      const s = [];
      // Interleaved, so a change of machine load falls on both libraries.
      for (let i = 0; i < RUNS; i++) {
        const none = { cpuMs: NaN, wallMs: NaN };
        c.push(LIBS.includes('condlock') ? await run(['child', 'condlock', endpoint, verify]) : none);
        s.push(LIBS.includes('sdk') ? await run(['child', 'sdk', endpoint, verify]) : none);
      }
      const ccpu = c.map((r) => r.cpuMs);
      const scpu = s.map((r) => r.cpuMs);
      console.log(`| ${name} | ${spread(ccpu, 3)} | ${spread(scpu, 3)} | ${(median(scpu) / median(ccpu)).toFixed(1)}x | ${median(c.map((r) => r.wallMs)).toFixed(2)} | ${median(s.map((r) => r.wallMs)).toFixed(2)} |`);
    }
    const loads = async (lib) => {
      const times = [];
      for (let i = 0; i < 5; i++) times.push((await run(['load', lib])).loadMs);
      return median(times);
    };
    if (process.env.NO_LOAD) return;
    const [cl, sl] = [await loads('condlock'), await loads('sdk')];
    console.log(`\nload + first lock object / client (median of 5 processes): condlock ${cl.toFixed(1)} ms, SDK ${sl.toFixed(1)} ms (${(sl / cl).toFixed(1)}x)`);
  } finally {
    moto.stop();
    s3rver.stop();
    keepalive.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'child') await child(...rest);
else if (mode === 'load') await loadChild(...rest);
else await main();
