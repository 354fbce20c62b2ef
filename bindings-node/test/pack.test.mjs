// The package as a user installs it: `npm pack` of `condlock` and of its
// platform package, both installed offline into a scratch project, then the
// README's Node quick start run verbatim there against moto.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO, startMoto, createBucket } from './helpers.mjs';

const PKG = join(REPO, 'bindings-node');
let moto;
let work;

before(async () => {
  moto = await startMoto();
  work = mkdtempSync(join(tmpdir(), 'condlock-node-pack-'));
});
after(() => {
  moto?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

function quickStart() {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const at = readme.indexOf('<!-- node-quick-start');
  assert.ok(at >= 0, 'README has the Node quick start marker');
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'README has a js block after the marker');
  return m[1];
}

test('npm pack of both packages installs offline and runs the README quick start', async () => {
  const platform = join(work, 'platform');
  const tarballs = join(work, 'tarballs');
  const project = join(work, 'project');
  for (const d of [platform, tarballs, project]) run('mkdir', ['-p', d]);
  for (const f of ['package.json', 'README.md']) {
    copyFileSync(join(PKG, 'npm', 'linux-x64-gnu', f), join(platform, f));
  }
  // What a release publishes: the addon without debug info.
  run('strip', ['--strip-debug', '-o', join(platform, 'condlock.linux-x64-gnu.node'), join(PKG, 'condlock.linux-x64-gnu.node')]);
  run('npm', ['pack', '--silent', '--pack-destination', tarballs], { cwd: platform });
  run('npm', ['pack', '--silent', '--pack-destination', tarballs], { cwd: PKG });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  run(
    'npm',
    ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error',
      join(tarballs, 'condlock-0.1.0.tgz'), join(tarballs, 'condlock-linux-x64-gnu-0.1.0.tgz')],
    { cwd: project },
  );
  // The installed package has no addon of its own: it loads the platform package.
  const files = run('npm', ['pack', '--dry-run', '--json'], { cwd: PKG });
  assert.ok(!JSON.parse(files)[0].files.some((f) => f.path.endsWith('.node')));

  await createBucket(moto.endpoint, 'tfstate');
  writeFileSync(join(project, 'quickstart.mjs'), quickStart());
  const env = {
    ...process.env,
    AWS_ENDPOINT_URL_S3: moto.endpoint,
    AWS_ACCESS_KEY_ID: 'AKIDQUICKSTART',
    AWS_SECRET_ACCESS_KEY: 'quickstart-secret',
    AWS_REGION: 'us-east-1',
  };
  const out = run(process.execPath, ['quickstart.mjs'], { cwd: project, env });
  assert.match(out, /^holding [0-9a-f-]{36} \{ generation: 1, etag: '"[^']+"' \}$/m);
  assert.match(out, /^free$/m);

  // CommonJS in the same install.
  const cjs = run(process.execPath, ['-e', "const c = require('condlock'); console.log(typeof c.S3Lock, typeof c.LockError)"], { cwd: project });
  assert.equal(cjs.trim(), 'function function');
});
