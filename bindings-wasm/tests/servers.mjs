// The servers of the browser tests, all on 127.0.0.1: moto (S3), a proxy in
// front of it that applies each bucket's CORS rule the way S3 does, and a
// static server for the package and the dashboard.
//
// Why the proxy: moto's server answers every preflight and adds
// `Access-Control-Allow-Origin` to every response whatever the bucket's CORS
// configuration, and does not expose `ETag` on the real responses, so a
// browser against moto alone would neither fail without the rule nor work
// with it. The proxy reads the bucket's rule from moto (`GET ?cors`, as
// configured with PutBucketCors) and answers as S3 does.

import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitUp(url, what, child) {
  for (let i = 0; i < 300; i++) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not start at ${url}`);
}

export async function startMoto(root) {
  const port = await freePort();
  const child = spawn(path.join(root, '.venv/bin/moto_server'), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, 'moto_server', child);
  return { url, stop: () => child.kill(), log: () => log };
}

/** Create a bucket on moto (which does not check signatures), with `cors` rules when given. */
export async function createBucket(motoUrl, bucket, corsRules) {
  let r = await fetch(`${motoUrl}/${bucket}`, { method: 'PUT' });
  if (!r.ok) throw new Error(`create bucket ${bucket}: ${r.status} ${await r.text()}`);
  if (corsRules) {
    const rules = corsRules.map((rule) => '<CORSRule>' +
      rule.AllowedOrigins.map((o) => `<AllowedOrigin>${o}</AllowedOrigin>`).join('') +
      rule.AllowedMethods.map((m) => `<AllowedMethod>${m}</AllowedMethod>`).join('') +
      (rule.AllowedHeaders ?? []).map((h) => `<AllowedHeader>${h}</AllowedHeader>`).join('') +
      (rule.ExposeHeaders ?? []).map((h) => `<ExposeHeader>${h}</ExposeHeader>`).join('') +
      '</CORSRule>').join('');
    r = await fetch(`${motoUrl}/${bucket}?cors`, {
      method: 'PUT',
      body: `<CORSConfiguration>${rules}</CORSConfiguration>`,
    });
    if (!r.ok) throw new Error(`put bucket cors ${bucket}: ${r.status} ${await r.text()}`);
  }
}

function tags(xml, name) {
  return [...xml.matchAll(new RegExp(`<${name}>([^<]*)</${name}>`, 'g'))].map((m) => m[1]);
}

/** The bucket's CORS rules, read from moto. */
async function corsRules(motoUrl, bucket) {
  const r = await fetch(`${motoUrl}/${bucket}?cors`);
  if (!r.ok) return [];
  const xml = await r.text();
  return [...xml.matchAll(/<CORSRule>([\s\S]*?)<\/CORSRule>/g)].map((m) => ({
    origins: tags(m[1], 'AllowedOrigin'),
    methods: tags(m[1], 'AllowedMethod'),
    headers: tags(m[1], 'AllowedHeader').map((h) => h.toLowerCase()),
    expose: tags(m[1], 'ExposeHeader'),
  }));
}

function matching(rules, origin, method, requestHeaders) {
  return rules.find((r) =>
    (r.origins.includes('*') || r.origins.includes(origin)) &&
    r.methods.includes(method) &&
    requestHeaders.every((h) => r.headers.includes('*') || r.headers.includes(h)));
}

/** A bucket the proxy refuses every request to, as S3 does without permission. */
export const DENIED_BUCKET = 'denied';
/** A bucket the proxy says lives in eu-west-1, as S3 does for a request signed for another region. */
export const ELSEWHERE_BUCKET = 'elsewhere';
/** A bucket whose conditional headers the proxy drops: a store that ignores them. */
export const IGNORING_BUCKET = 'ignoring';

export async function startCorsProxy(motoUrl) {
  const target = new URL(motoUrl);
  const server = http.createServer(async (req, res) => {
    const bucket = decodeURIComponent(req.url.split('?')[0].split('/')[1] ?? '');
    const origin = req.headers.origin;
    const rules = origin && bucket ? await corsRules(motoUrl, bucket) : [];
    if (req.method === 'OPTIONS' && origin) {
      const method = req.headers['access-control-request-method'] ?? '';
      const asked = (req.headers['access-control-request-headers'] ?? '')
        .split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
      const rule = bucket === DENIED_BUCKET || bucket === ELSEWHERE_BUCKET
        ? { methods: ['GET', 'PUT', 'DELETE', 'HEAD'], expose: ['ETag'] }
        : matching(rules, origin, method, asked);
      if (!rule) {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<Error><Code>AccessForbidden</Code><Message>CORSResponse: This CORS request is not allowed.</Message></Error>');
        return;
      }
      res.writeHead(200, {
        'access-control-allow-origin': origin,
        'access-control-allow-methods': rule.methods.join(', '),
        'access-control-allow-headers': asked.join(', '),
        'access-control-expose-headers': rule.expose.join(', '),
        vary: 'Origin',
      });
      res.end();
      return;
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (bucket === ELSEWHERE_BUCKET) {
      // moto has one region: S3's answer to a request signed for the wrong
      // one (the body names the bucket's region).
      res.writeHead(400, { 'content-type': 'application/xml', 'access-control-allow-origin': origin ?? '*', 'access-control-expose-headers': 'ETag' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region \'us-east-1\' is wrong; expecting \'eu-west-1\'</Message><Region>eu-west-1</Region></Error>');
      return;
    }
    if (bucket === DENIED_BUCKET) {
      // moto does not enforce IAM: S3's answer to credentials without
      // permission, for the dashboard's "access denied" (CORS headers as S3
      // sends them on errors).
      res.writeHead(403, { 'content-type': 'application/xml', 'access-control-allow-origin': origin ?? '*', 'access-control-expose-headers': 'ETag' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      return;
    }
    const headers = { ...req.headers, host: target.host };
    if (bucket === IGNORING_BUCKET) {
      // A store that ignores conditional writes (as some S3 look-alikes do).
      delete headers['if-none-match'];
      delete headers['if-match'];
    }
    const upstream = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.url, headers,
    }, (up) => {
      const out = {};
      for (const [k, v] of Object.entries(up.headers)) {
        if (!k.startsWith('access-control-')) out[k] = v;
      }
      const rule = origin && matching(rules, origin, req.method, []);
      if (rule) {
        out['access-control-allow-origin'] = origin;
        if (rule.expose.length) out['access-control-expose-headers'] = rule.expose.join(', ');
        out.vary = 'Origin';
      }
      res.writeHead(up.statusCode, out);
      up.pipe(res);
    });
    upstream.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    upstream.end(Buffer.concat(chunks));
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, stop: () => server.close() };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json', '.svg': 'image/svg+xml',
};

/** Serve the files under `dir` (the package), read-only. */
export async function startStatic(dir, extra = {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (extra[url.pathname]) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(extra[url.pathname]());
      return;
    }
    const file = path.normalize(path.join(dir, decodeURIComponent(url.pathname)));
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end('not found'); return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    fs.createReadStream(file).pipe(res);
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, stop: () => server.close() };
}
