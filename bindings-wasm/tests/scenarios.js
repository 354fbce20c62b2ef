// Replays the behaviour scenarios of tests/scenarios/*.json (format:
// tests/scenarios/README.md) through the browser package's public API, with
// its `fetch` option as the scripted server, in the page, in real time. The
// Python replayer (tests/python/test_scenarios.py) is the model: same
// matching, placeholders and outcomes.

import { S3Lock } from '../js/index.js';

const CONDITIONAL = ['if-match', 'if-none-match'];
const PLACEHOLDER = /^\$[A-Z_]+$/;
// Short waits between attempts: real time passes here.
const POLL_MS = 50;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One exchange, or a sequence that may happen one or more times. */
class Item {
  constructor(index, v) {
    this.index = index;
    if (v.repeat) [this.group, this.repeats] = [v.repeat, true];
    else [this.group, this.repeats] = [[v], v.times === 'any'];
    this.pos = 0;
    this.rounds = 0;
  }

  // One whole round at least; a later round may stop part-way.
  complete() {
    return this.repeats && this.rounds > 0;
  }
}

class ScriptedServer {
  constructor() {
    this.items = [];
    this.step = '';
    this.failures = [];
    this.vars = {};
    this.lastReplyAt = null;
    this.sent = [];
    this.closed = false;
    this.#newMismatch();
  }

  #newMismatch() {
    this.mismatched = new Promise((resolve) => { this.onMismatch = resolve; });
  }

  substitute(v) {
    if (typeof v === 'string') {
      for (const k of Object.keys(this.vars).sort()) v = v.split(k).join(this.vars[k]);
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => this.substitute(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.substitute(x)]));
    return v;
  }

  matchesText(expected, actual) {
    if (PLACEHOLDER.test(expected) && !(expected in this.vars)) {
      this.vars[expected] = actual; // first sight binds it
      return true;
    }
    return this.substitute(expected) === actual;
  }

  matchesValue(expected, actual) {
    if (typeof expected === 'string' && typeof actual === 'string') return this.matchesText(expected, actual);
    if (expected && actual && typeof expected === 'object' && typeof actual === 'object') {
      return Object.entries(expected).every(([k, v]) => this.matchesValue(v, actual[k]));
    }
    return JSON.stringify(expected) === JSON.stringify(actual);
  }

  check(expected, method, path, headers, body) {
    if ('method' in expected && expected.method !== method) return `method: expected ${expected.method}, got ${method}`;
    if ('path' in expected && expected.path !== path) return `path: expected ${expected.path}, got ${path}`;
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
    if ('body' in expected) {
      let parsed;
      try { parsed = JSON.parse(body); } catch (e) { return `body: expected JSON, got ${body} (${e})`; }
      for (const [k, w] of Object.entries(expected.body)) {
        const g = parsed && typeof parsed === 'object' ? parsed[k] : undefined;
        if (!this.matchesValue(w, g)) return `body field ${k}: expected ${JSON.stringify(w)}, got ${JSON.stringify(g)}`;
      }
    }
    if ('delay_at_least' in expected) {
      const since = (performance.now() - (this.lastReplyAt ?? 0)) / 1000;
      if (since < expected.delay_at_least) return `sent ${since.toFixed(3)}s after the previous reply, expected at least ${expected.delay_at_least}s`;
    }
    return null;
  }

  fail(why) {
    const msg = `${this.step}: ${why}`;
    this.failures.push(msg);
    this.onMismatch();
    throw new Error(msg);
  }

  /** The package's `fetch` option. */
  fetch = async (url, init = {}) => {
    if (this.closed) throw new TypeError('the scenario is over');
    const u = new URL(url);
    const path = u.pathname + u.search;
    const method = init.method ?? 'GET';
    const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const body = init.body ? new TextDecoder().decode(init.body) : '';
    const described = `${method} ${path}` + CONDITIONAL.filter((n) => n in headers).map((n) => ` ${n}: ${headers[n]}`).join('') + (body ? ` body ${body}` : '');
    this.sent.push(described);
    if (method === 'PUT') this.vars.$OUR_BODY = body;
    let item;
    let exchange;
    for (;;) {
      if (!this.items.length) this.fail(`unexpected request (the script has no more exchanges): ${described}`);
      item = this.items[0];
      exchange = item.group[item.pos];
      const expected = exchange.request ?? {};
      const diff = this.check(expected, method, path, headers, body);
      if (diff === null) break;
      if (item.complete()) { this.items.shift(); continue; }
      this.fail(`exchange ${item.index}: ${diff}\n  expected ${JSON.stringify(expected)}\n  sent     ${described}`);
    }
    item.pos += 1;
    if (item.pos === item.group.length) {
      item.pos = 0;
      item.rounds += 1;
      if (!item.repeats) this.items.shift();
    }
    const reply = exchange.reply ?? {};
    if ('advance' in reply) await sleep(reply.advance * 1000); // a slow server
    this.lastReplyAt = performance.now();
    // A rejected fetch is all a browser can report: the request may have
    // reached the server (so "refused" and "permanent" scenarios are Rust-only).
    if (reply.fail !== undefined) throw new TypeError(`scripted: ${reply.fail}`);
    let data = null;
    if (typeof reply.body === 'string') data = this.substitute(reply.body);
    else if (reply.body !== undefined && reply.body !== null) data = JSON.stringify(this.substitute(reply.body));
    const rheaders = Object.fromEntries(Object.entries(reply.headers ?? {}).map(([k, v]) => [k, this.substitute(v)]));
    const status = reply.status ?? 200;
    return new Response([204, 304].includes(status) ? null : data, { status, headers: rheaders });
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
  return { ID: h.id, Who: h.who, Operation: h.operation, Info: h.info, etag: h.etag };
}

function errorDict(e) {
  if (typeof e?.code !== 'string') throw e; // not a condlock error: a bug
  const out = { error: e.code, message: e.message };
  if (e.holder) out.holder = holderDict(e.holder);
  if (e.reason) out.lost = e.reason;
  if (e.status !== undefined && e.code !== 'access_denied') [out.status, out.code] = [e.status, e.awsCode];
  return out;
}

function checkOutcome(expected, actual) {
  for (const [k, want] of Object.entries(expected)) {
    if (k === 'message_contains') {
      // tryAcquire returns null instead of the held error: no message then.
      if (actual.message === undefined && actual.error === 'held') continue;
      if (!(actual.message ?? '').includes(want)) return `message ${JSON.stringify(actual.message)} does not contain ${JSON.stringify(want)}`;
      continue;
    }
    const got = actual[k];
    if (want && got && typeof want === 'object' && typeof got === 'object') {
      if (checkOutcome(want, got) !== null) return `${k}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
    } else if (JSON.stringify(want) !== JSON.stringify(got)) {
      return `${k}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
    }
  }
  return null;
}

function makeLock(spec, server) {
  const ms = (s) => (s === undefined || s === null ? undefined : s * 1000);
  return new S3Lock({
    bucket: spec.bucket ?? 'tfstate',
    key: spec.key ?? 'terraform.tfstate',
    region: spec.region ?? 'us-east-1',
    endpoint: spec.endpoint ?? 'http://127.0.0.1:9000',
    workspace: spec.workspace,
    credentials: { accessKeyId: 'AKIDSCENARIO', secretAccessKey: 'scenario-secret' },
    who: spec.who ?? 'ci@runner',
    verifyConditionalWrites: spec.verify_conditional_writes ?? 'never',
    leaseMs: ms(spec.lease_seconds),
    takeover: spec.takeover ?? false,
    staleAfterMs: ms(spec.stale_after),
    maxPollIntervalMs: POLL_MS,
    fetch: server.fetch,
    // DynamoDB requests go to their own endpoint through the same fetch.
    dynamodbTable: spec.dynamodb_table,
    dynamodbEndpoint: spec.dynamodb_table ? (spec.dynamodb_endpoint ?? 'http://127.0.0.1:8000') : undefined,
    useLockfile: spec.use_lockfile,
  });
}

async function runStep(lock, spec, step, state) {
  try {
    switch (step.op) {
      case 'acquire': {
        const wait = step.wait ?? spec.wait;
        let held;
        if (wait === undefined || wait === null || wait === 'no') {
          held = await lock.tryAcquire();
          if (held === null) return { error: 'held', holder: holderDict(lock.lastHolder) };
        } else {
          held = await lock.acquire(wait === 'forever' ? {} : { timeoutMs: wait * 1000 });
        }
        state.held = held;
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
        const lost = new Promise((resolve) => {
          if (held.signal.aborted) resolve(held.signal.reason);
          held.signal.addEventListener('abort', () => resolve(held.signal.reason), { once: true });
        });
        const reason = await Promise.race([lost, sleep(step.seconds * 1000).then(() => null)]);
        return reason === null ? { ok: true } : { ok: false, lost: reason.reason };
      }
      default:
        throw new Error(`unknown operation ${step.op}`);
    }
  } catch (e) {
    return errorDict(e);
  }
}

/** Replay one scenario: `null` when it behaved as specified, else what differed. */
export async function replay(scenario) {
  const server = new ScriptedServer();
  const spec = scenario.lock ?? {};
  const lock = makeLock(spec, server);
  const state = {};
  try {
    for (const [i, step] of scenario.steps.entries()) {
      const label = `step ${i + 1} (${step.op})`;
      server.startStep(label, step.exchanges ?? []);
      // A request that differs from the script ends the step at once (the
      // package would otherwise retry it as a failed fetch).
      const actual = await Promise.race([runStep(lock, spec, step, state), server.mismatched]);
      if (server.failures.length) return server.failures.join('\n');
      const left = server.left();
      if (left.length) return `${label}: ended with ${JSON.stringify(actual)} before sending\n  ${left.join('\n  ')}\n  (sent: ${JSON.stringify(server.sent)})`;
      const expected = server.substitute(step.expect ?? { ok: true });
      const diff = checkOutcome(expected, actual);
      if (diff !== null) return `${label}: outcome ${diff}\n  expected ${JSON.stringify(expected)}\n  actual   ${JSON.stringify(actual)}`;
    }
    return null;
  } finally {
    server.closed = true;
    if (state.held) state.held.release().catch(() => {});
  }
}
