// Replays the behaviour scenarios of tests/scenarios/*.json through the
// public `fetch` option, in real time (format: tests/scenarios/README.md;
// the Rust core replays the same files on a virtual clock, Python through
// its transport hook). Node replays what Python replays: scenarios needing
// virtual time or failures fetch cannot express are Rust-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { S3Lock, ApstraMutex, LockError } from '../index.mjs';
import { REPO } from './helpers.mjs';

const DIR = join(REPO, 'tests', 'scenarios');
const CONDITIONAL = ['if-match', 'if-none-match'];
const PLACEHOLDER = /^\$[A-Z_]+$/;
const POLL_MS = 50;

class ScriptMismatch extends Error {}

class Item {
  constructor(index, v) {
    this.index = index;
    if (v.repeat) [this.group, this.repeats] = [v.repeat, true];
    else [this.group, this.repeats] = [[v], v.times === 'any'];
    this.pos = 0;
    this.rounds = 0;
  }
  complete() {
    return this.repeats && this.rounds > 0;
  }
}

class ScriptedServer {
  items = [];
  step = '';
  failures = [];
  vars = {};
  lastReplyAt = null;
  sent = [];
  closed = false;

  substitute(v) {
    if (typeof v === 'string') {
      for (const k of Object.keys(this.vars).sort()) v = v.replaceAll(k, this.vars[k]);
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => this.substitute(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.substitute(x)]));
    return v;
  }
  matchesText(expected, actual) {
    if (PLACEHOLDER.test(expected) && !(expected in this.vars)) {
      this.vars[expected] = actual;
      return true;
    }
    return this.substitute(expected) === actual;
  }
  matchesValue(expected, actual) {
    if (typeof expected === 'string' && typeof actual === 'string') return this.matchesText(expected, actual);
    if (expected && typeof expected === 'object' && actual && typeof actual === 'object' && !Array.isArray(expected)) {
      return Object.entries(expected).every(([k, v]) => this.matchesValue(v, actual[k]));
    }
    return JSON.stringify(expected) === JSON.stringify(actual);
  }
  check(expected, method, path, headers, body) {
    if (expected.method && expected.method !== method) return `method: expected ${expected.method}, got ${method}`;
    if (expected.path && expected.path !== path) return `path: expected ${expected.path}, got ${path}`;
    const want = expected.headers ?? {};
    for (const name of CONDITIONAL) {
      const [w, g] = [want[name], headers[name]];
      if (w === undefined && g !== undefined) return `${name}: expected none, got ${g}`;
      if (w !== undefined && g === undefined) return `${name}: expected ${w}, got none`;
      if (w !== undefined && !this.matchesText(w, g)) return `${name}: expected ${w}, got ${g}`;
    }
    for (const [name, w] of Object.entries(want)) {
      if (CONDITIONAL.includes(name)) continue;
      const g = headers[name];
      if (g === undefined || !this.matchesText(w, g)) return `${name}: expected ${w}, got ${g}`;
    }
    if (expected.body) {
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch (e) {
        return `body: expected JSON, got ${body} (${e.message})`;
      }
      for (const [k, w] of Object.entries(expected.body)) {
        const g = parsed && typeof parsed === 'object' ? parsed[k] : undefined;
        if (!this.matchesValue(w, g)) return `body field ${k}: expected ${JSON.stringify(w)}, got ${JSON.stringify(g)}`;
      }
    }
    if (expected.delay_at_least !== undefined) {
      const since = (performance.now() - (this.lastReplyAt ?? 0)) / 1000;
      if (since < expected.delay_at_least) return `sent ${since.toFixed(3)}s after the previous reply, expected at least ${expected.delay_at_least}s`;
    }
    return null;
  }
  fail(why) {
    const msg = `${this.step}: ${why}`;
    this.failures.push(msg);
    // Not a TypeError: the lock takes it as a broken transport, not retried.
    throw new ScriptMismatch(msg);
  }

  /** The `fetch` option. */
  fetch = async (url, init) => {
    // After the scenario, a request (the release of a lock the script left
    // held, a renewal) fails at once: not a TypeError, which would be
    // retried against the closed script for the whole release budget.
    if (this.closed) throw new ScriptMismatch('the scenario is over');
    const u = new URL(url);
    const path = u.pathname + u.search;
    const method = init.method;
    const headers = {};
    for (const [k, v] of new Headers(init.headers)) headers[k.toLowerCase()] = v;
    const body = init.body ? Buffer.from(init.body).toString() : '';
    const described = `${method} ${path}${CONDITIONAL.filter((n) => n in headers).map((n) => ` ${n}: ${headers[n]}`).join('')}${body ? ` body ${body}` : ''}`;
    this.sent.push(described);
    if (method === 'PUT') this.vars.$OUR_BODY = body;
    let item;
    let exchange;
    for (;;) {
      if (this.items.length === 0) this.fail(`unexpected request (the script has no more exchanges): ${described}`);
      item = this.items[0];
      exchange = item.group[item.pos];
      const expected = exchange.request ?? {};
      const diff = this.check(expected, method, path, headers, body);
      if (diff === null) break;
      if (item.complete()) {
        this.items.shift();
        continue;
      }
      this.fail(`exchange ${item.index}: ${diff}\n  expected ${JSON.stringify(expected)}\n  sent     ${described}`);
    }
    item.pos += 1;
    if (item.pos === item.group.length) {
      item.pos = 0;
      item.rounds += 1;
      if (!item.repeats) this.items.shift();
    }
    const reply = exchange.reply ?? {};
    if (reply.advance) await sleep(reply.advance * 1000);
    this.lastReplyAt = performance.now();
    if (reply.fail === 'refused') throw new TypeError('scripted: connection refused');
    if (reply.fail) throw new TypeError('scripted: the response was lost');
    let data = null;
    if (typeof reply.body === 'string') data = this.substitute(reply.body);
    else if (reply.body !== undefined && reply.body !== null) data = JSON.stringify(this.substitute(reply.body));
    const status = reply.status ?? 200;
    const h = Object.entries(reply.headers ?? {}).map(([k, v]) => [k, this.substitute(v)]);
    return new Response([204, 304].includes(status) ? null : data, { status, headers: h });
  };

  startStep(label, exchanges) {
    this.step = label;
    this.items = exchanges.map((e, i) => new Item(i + 1, e));
    this.sent = [];
  }
  left() {
    return this.items.filter((it) => !it.complete()).map((it) => `exchange ${it.index}: ${JSON.stringify(it.group[it.pos].request)}`);
  }
}

function holderDict(h) {
  if (h === null || h === undefined) return null;
  if ('label' in h) return { id: h.id, description: h.description }; // an Apstra mutex tag
  if ('lockStatus' in h) return {}; // Apstra's own blueprint lock
  return { ID: h.id, Who: h.who, Operation: h.operation, Info: h.info, etag: h.etag };
}

function errorDict(e) {
  const out = { error: e.code, message: e.message };
  if (e.holder) out.holder = holderDict(e.holder);
  if (e.code === 'lost') out.lost = e.reason;
  if (e.status !== undefined && e.awsCode !== undefined) [out.status, out.code] = [e.status, e.awsCode];
  return out;
}

function checkOutcome(expected, actual) {
  for (const [k, want] of Object.entries(expected)) {
    if (k === 'message_contains') {
      if (!(actual.message ?? '').includes(want)) return `message ${JSON.stringify(actual.message)} does not contain ${JSON.stringify(want)}`;
      continue;
    }
    const got = actual[k];
    if (want && typeof want === 'object' && got && typeof got === 'object') {
      if (checkOutcome(want, got) !== null) return `${k}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
    } else if (JSON.stringify(want) !== JSON.stringify(got)) {
      return `${k}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
    }
  }
  return null;
}

function makeLock(spec, server) {
  if (spec.kind === 'apstra') {
    return new ApstraMutex({
      blueprintId: spec.blueprint ?? 'bp-1',
      url: spec.url ?? 'https://apstra.example:443',
      username: spec.username ?? 'admin',
      password: spec.password ?? 'scenario-password',
      message: spec.message ?? 'deploying from CI',
      waitForBlueprintUnlock: spec.wait_for_blueprint_unlock ?? true,
      maxPollIntervalMs: POLL_MS,
      fetch: server.fetch,
    });
  }
  return new S3Lock({
    bucket: spec.bucket ?? 'tfstate',
    key: spec.key ?? 'terraform.tfstate',
    region: spec.region ?? 'us-east-1',
    endpoint: spec.endpoint ?? 'http://127.0.0.1:9000',
    workspace: spec.workspace,
    credentials: { accessKeyId: 'AKIDSCENARIO', secretAccessKey: 'scenario-secret' },
    who: spec.who ?? 'ci@runner',
    verifyConditionalWrites: spec.verify_conditional_writes ?? 'never',
    leaseMs: spec.lease_seconds === undefined ? undefined : spec.lease_seconds * 1000,
    takeover: spec.takeover ?? false,
    staleAfterMs: spec.stale_after === undefined ? undefined : spec.stale_after * 1000,
    maxPollIntervalMs: POLL_MS,
    dynamodbTable: spec.dynamodb_table,
    dynamodbEndpoint: spec.dynamodb_table ? (spec.dynamodb_endpoint ?? 'http://127.0.0.1:8000') : undefined,
    useLockfile: spec.use_lockfile,
    fetch: server.fetch,
  });
}

/** Acquire as the step says; a try that finds the lock held is reported as
 * the core's `held` error (tryAcquire resolves null, with the holder in
 * `lastHolder`, described in the core's words). */
async function acquire(lock, wait) {
  if (wait === undefined || wait === 'no') {
    const held = await lock.tryAcquire();
    if (held === null) {
      const h = lock.lastHolder;
      return { error: 'held', holder: holderDict(h), message: h?.description ?? '' };
    }
    return held;
  }
  return lock.acquire(wait === 'forever' ? {} : { timeoutMs: Number(wait) * 1000 });
}

async function runStep(lock, spec, step, state) {
  try {
    switch (step.op) {
      case 'acquire': {
        const held = await acquire(lock, step.wait ?? spec.wait);
        if (held.error) return held;
        state.held = held;
        if (lock instanceof ApstraMutex) return { ok: true, tag_id: held.tagId };
        const out = { ok: true, etag: held.etag };
        if (held.leaseMs !== null) out.generation = held.fencingToken.generation;
        return out;
      }
      case 'release': {
        const held = state.held;
        delete state.held;
        return { ok: (await held.release()) ? 'released' : 'already_gone' };
      }
      case 'status':
        return { ok: true, holder: holderDict(await lock.holder()) };
      case 'force_unlock':
        return { ok: (await lock.forceUnlock(step.id)) ? 'released' : 'already_gone' };
      case 'renew':
      case 'wait': {
        const held = state.held;
        if (!held || step.op === 'wait') {
          await sleep(step.seconds * 1000);
          return { ok: true };
        }
        const lost = await Promise.race([
          new Promise((resolve) => {
            if (held.signal.aborted) resolve(held.signal.reason);
            held.signal.addEventListener('abort', () => resolve(held.signal.reason));
          }),
          sleep(step.seconds * 1000).then(() => null),
        ]);
        return lost === null ? { ok: true } : { ok: false, lost: lost.reason };
      }
      default:
        throw new Error(`unknown operation ${step.op}`);
    }
  } catch (e) {
    if (e instanceof LockError) return errorDict(e);
    throw e;
  }
}

function load() {
  const out = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()) {
    const data = JSON.parse(readFileSync(join(DIR, file), 'utf8'));
    for (const s of Array.isArray(data) ? data : [data]) out.push([file, s]);
  }
  return out;
}

// What a fetch hook can replay in real time: what Python replays.
function forNode(s) {
  const bindings = s.bindings ?? ['rust', 'python', 'node'];
  return bindings.includes('node') || bindings.includes('python');
}

function pendingFor(s) {
  const p = s.pending;
  return p && typeof p === 'object' ? (p.node ?? p.python) : p;
}

const all = load();

test('most scenarios are replayed through the fetch hook', () => {
  const node = all.filter(([, s]) => forNode(s));
  assert.ok(node.length >= 30, `only ${node.length} scenarios`);
  assert.ok(node.length * 4 >= all.length * 3, `only ${node.length} of ${all.length} scenarios`);
});

for (const [file, scenario] of all.filter(([, s]) => forNode(s))) {
  const pending = pendingFor(scenario);
  test(`${file}: ${scenario.name}`, async () => {
    const replay = async () => {
      const server = new ScriptedServer();
      const spec = scenario.lock ?? {};
      const lock = makeLock(spec, server);
      const state = {};
      try {
        let n = 0;
        for (const step of scenario.steps) {
          n += 1;
          const label = `step ${n} (${step.op})`;
          server.startStep(label, step.exchanges ?? []);
          let actual;
          try {
            actual = await runStep(lock, spec, step, state);
          } catch (e) {
            if (!(e instanceof ScriptMismatch)) throw e;
          }
          assert.deepEqual(server.failures, [], server.failures.join('\n'));
          const left = server.left();
          assert.deepEqual(left, [], `${label}: ended with ${JSON.stringify(actual)} before sending\n  ${left.join('\n  ')}\n  (sent: ${server.sent})`);
          const expected = server.substitute(step.expect ?? { ok: true });
          const diff = checkOutcome(expected, actual);
          assert.equal(diff, null, `${label}: outcome ${diff}\n  expected ${JSON.stringify(expected)}\n  actual   ${JSON.stringify(actual)}`);
        }
      } finally {
        server.closed = true;
        if (state.held) await state.held.release().catch(() => {});
      }
    };
    if (pending) {
      // Specifies the right behaviour where the core differs today: it must fail.
      await assert.rejects(replay(), `pending scenario passed: remove its pending mark (${pending})`);
    } else {
      await replay();
    }
  });
}
