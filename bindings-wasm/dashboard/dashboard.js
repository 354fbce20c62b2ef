// The lock dashboard: one S3 lock, watched from the browser through the
// condlock package. Credentials live only in this module's memory (the
// S3Lock built from them): never stored, logged, or put in a URL.

import {
  S3Lock, AccessDenied, ConditionalWritesUnsupported, InvalidConfiguration, MalformedResponse,
  TransportError,
} from '../js/index.js';

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

const state = {
  lock: null,        // the S3Lock being watched
  held: null,        // our HeldLock, when this page holds the lock
  holder: null,      // the last holder seen (LockInfo) or null
  checkedAt: null,   // when the last check finished
  busy: false,
  fetchFailed: false, // a request of the current check failed in the browser
  problem: null,
  generation: 0,     // bumps when the target changes: late answers are dropped
};

// ---------------------------------------------------------------- problems

/** The bucket CORS rule this page needs, as JSON for `aws s3api put-bucket-cors`. */
function corsJson() {
  return JSON.stringify({
    CORSRules: [{
      AllowedOrigins: [location.origin],
      AllowedMethods: ['GET', 'PUT', 'DELETE', 'HEAD'],
      AllowedHeaders: ['*'],
      ExposeHeaders: ['ETag'],
    }],
  }, null, 2);
}

function corsFix(bucket) {
  const wrap = document.createElement('div');
  const p = document.createElement('p');
  p.textContent = `Fix: give bucket ${bucket || '<bucket>'} this CORS rule (it allows this page's origin, ${location.origin}, and lets it read the ETag header):`;
  const pre = document.createElement('pre');
  pre.textContent = corsJson();
  const how = document.createElement('p');
  how.textContent = 'Save it as cors.json and apply it with:';
  const cmd = document.createElement('pre');
  cmd.textContent = `aws s3api put-bucket-cors --bucket ${bucket || '<bucket>'} --cors-configuration file://cors.json`;
  wrap.append(p, pre, how, cmd);
  return wrap;
}

function text(s) {
  const p = document.createElement('p');
  p.textContent = s;
  return p;
}

/** A failure in plain words, with the fix. */
function explain(e) {
  const bucket = $('bucket').value.trim();
  if (e instanceof TransportError && /fetch failed/.test(e.message)) {
    return {
      title: "The browser could not reach the bucket",
      text: "Most likely the bucket has no CORS rule allowing this page (browsers refuse the answer otherwise), or the endpoint is wrong or unreachable from this machine.",
      fix: corsFix(bucket),
    };
  }
  if (e instanceof MalformedResponse && /without an ETag/.test(e.message)) {
    return {
      title: "The bucket's CORS rule does not expose the ETag header",
      text: 'The page can talk to the bucket, but the browser hides the ETag header, which a lock needs to be released safely.',
      fix: corsFix(bucket),
    };
  }
  if (e instanceof AccessDenied) {
    return {
      title: 'Access denied',
      text: 'The store refused these credentials, or they lack permission on the lock object.',
      fix: text('Fix: check the access key and secret (and the session token, if they are temporary), and that they allow s3:GetObject, s3:PutObject and s3:DeleteObject on the state key and its .tflock.'),
    };
  }
  if (e instanceof InvalidConfiguration && e.field === 'region') {
    return { title: 'Wrong region', text: e.message, fix: text('Fix: set the Region field to the bucket\'s region, then Watch again.'), field: 'region' };
  }
  if (e instanceof InvalidConfiguration && e.code === 'no_such_bucket') {
    return { title: 'No such bucket', text: e.message, fix: text('Fix: check the Bucket field (and the endpoint).') };
  }
  if (e instanceof InvalidConfiguration) {
    return {
      title: `Check the ${label(e.field)} field`,
      text: e.message,
      fix: text('Fix: correct the highlighted field, then Watch again.'),
      field: e.field,
    };
  }
  if (e instanceof ConditionalWritesUnsupported) {
    return {
      title: 'This store cannot hold a lock',
      text: 'It accepted a second conditional write of the same lock file (it ignores If-None-Match), so two runs could both think they hold the lock. The lock written to test it was removed.',
      fix: text('Fix: keep the state on a store that enforces conditional writes (AWS S3, MinIO, and others that support If-None-Match).'),
    };
  }
  return { title: e.name ?? 'Error', text: e.message ?? String(e), fix: null };
}

const FIELDS = {
  bucket: 'bucket', key: 'key', endpoint: 'endpoint', region: 'region', workspace: 'workspace',
  credentials: 'accessKeyId', 'credentials.accessKeyId': 'accessKeyId',
  'credentials.secretAccessKey': 'secretAccessKey', 'credentials.sessionToken': 'sessionToken',
};
function label(field) {
  const input = $(FIELDS[field] ?? '');
  return input ? input.parentElement.firstChild.textContent.trim() : field;
}

function showProblem(p) {
  state.problem = p;
  for (const el of document.querySelectorAll('.invalid')) el.classList.remove('invalid');
  if (!p) {
    $('problem').hidden = true;
    return;
  }
  $('p-title').textContent = p.title;
  $('p-text').textContent = p.text;
  $('p-fix').replaceChildren(...(p.fix ? [p.fix] : []));
  $('p-detail').textContent = p.detail ?? '';
  $('problem').querySelector('details').hidden = !p.detail;
  $('problem').hidden = false;
  if (p.field && $(FIELDS[p.field] ?? '')) $(FIELDS[p.field]).classList.add('invalid');
}

/** Show why `e` happened. A failed action's problem stays until the next
 * action (the refresh that follows must not hide it); a failed read's goes
 * with the next good read. */
function fail(e, source = 'check') {
  const p = explain(e);
  p.detail = e.message;
  p.source = source;
  showProblem(p);
  render();
}

// ---------------------------------------------------------------- rendering

/** `2h 05m`, `3m 12s`, `41s`. */
function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** RFC 3339 with nanoseconds (as Go writes it), as a Date. */
function created(info) {
  const t = Date.parse((info.created ?? '').replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(t) ? null : new Date(t);
}

function render() {
  const watching = state.lock !== null;
  const h = state.holder;
  const ours = state.held !== null && h !== null && h.id === state.held.lockId;
  const badge = $('badge');
  let cls = 'idle';
  let word = 'Not watching';
  if (watching && state.problem) { cls = 'problem'; word = 'Problem'; }
  else if (watching && state.checkedAt === null) { cls = 'idle'; word = 'Checking…'; }
  else if (watching && ours) { cls = 'ours'; word = 'Held by this page'; }
  else if (watching && h) { cls = 'held'; word = 'Held'; }
  else if (watching) { cls = 'free'; word = 'Free'; }
  badge.className = `badge ${cls}`;
  badge.textContent = word;

  const summary = $('summary');
  if (!watching) summary.textContent = 'Fill in the lock and the credentials, then Watch this lock.';
  else if (state.problem) summary.textContent = 'The lock could not be read or changed: see below.';
  else if (state.checkedAt === null) summary.textContent = 'Reading the lock…';
  else if (h && h.error) summary.textContent = `Something that is not a Terraform lock is in the lock file: ${h.error}`;
  else if (h) summary.textContent = `${ours ? 'This page' : h.who || 'Someone'} holds the lock${h.operation ? ` for ${h.operation}` : ''}.`;
  else summary.textContent = 'Nobody holds the lock: a Terraform run may take it.';

  $('details').hidden = !(watching && h && !state.problem);
  if (h) {
    $('d-who').textContent = h.who || '—';
    $('d-operation').textContent = h.operation || '—';
    $('d-info').textContent = h.info || '—';
    $('d-id').textContent = h.id || '—';
    $('d-path').textContent = h.path || '—';
    $('d-version').textContent = h.version || '—';
    const since = created(h);
    $('d-age').textContent = since ? `${age(Date.now() - since.getTime())} ago` : '—';
    $('d-created').textContent = since ? `(${since.toLocaleString()})` : '';
    $('d-created').title = h.created || '';
  }

  $('acquire').disabled = !watching || state.busy || h !== null || state.checkedAt === null;
  $('release').disabled = !watching || state.busy || !ours;
  $('force').disabled = !watching || state.busy || !h || ours || !h.id;
  $('refresh').disabled = !watching || state.busy;
  $('checked').textContent = state.checkedAt
    ? `Checked ${age(Date.now() - state.checkedAt)} ago${state.busy ? ' · checking…' : ''}`
    : '';
}

// ---------------------------------------------------------------- actions

/** A `fetch` that notices failures the browser hides (CORS): the problem is shown at once, while the library still retries. */
function watchedFetch(generation) {
  return async (...args) => {
    try {
      return await globalThis.fetch(...args);
    } catch (e) {
      if (generation === state.generation && !state.fetchFailed) {
        state.fetchFailed = true;
        fail(new TransportError(`fetch failed (${e.name}: ${e.message})`, { code: 'transport' }));
      }
      throw e;
    }
  };
}

function options(generation) {
  const v = (id) => $(id).value.trim();
  const o = {
    bucket: v('bucket'), key: v('key'),
    credentials: { accessKeyId: v('accessKeyId'), secretAccessKey: $('secretAccessKey').value },
    operation: 'condlock dashboard', info: 'held from the condlock lock dashboard',
    fetch: watchedFetch(generation),
  };
  if ($('sessionToken').value) o.credentials.sessionToken = $('sessionToken').value;
  for (const id of ['endpoint', 'region', 'workspace']) if (v(id)) o[id] = v(id);
  return o;
}

async function check() {
  if (!state.lock || state.busy) return;
  const generation = state.generation;
  state.busy = true;
  state.fetchFailed = false;
  render();
  try {
    const h = await state.lock.holder();
    if (generation !== state.generation) return;
    state.holder = h;
    state.checkedAt = Date.now();
    if (state.problem?.source !== 'action') showProblem(null);
  } catch (e) {
    if (generation === state.generation) fail(e);
  } finally {
    if (generation === state.generation) state.busy = false;
    render();
  }
}

async function act(fn) {
  state.busy = true;
  render();
  showProblem(null);
  try {
    await fn();
  } catch (e) {
    fail(e, 'action');
  } finally {
    state.busy = false;
  }
  await check();
}

$('target').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  state.generation++;
  if (state.held) await state.held.release().catch(() => {});
  Object.assign(state, { lock: null, held: null, holder: null, checkedAt: null, busy: false });
  showProblem(null);
  try {
    state.lock = new S3Lock(options(state.generation));
  } catch (e) {
    fail(e);
    return;
  }
  $('target-name').textContent = `s3://${$('bucket').value.trim()}/${$('workspace').value.trim() ? `env:/${$('workspace').value.trim()}/` : ''}${$('key').value.trim()}.tflock`;
  render();
  await check();
});

$('acquire').addEventListener('click', () => act(async () => {
  const held = await state.lock.tryAcquire();
  if (held) state.held = held;
}));

$('release').addEventListener('click', () => act(async () => {
  const held = state.held;
  state.held = null;
  await held.release();
}));

$('refresh').addEventListener('click', () => check());

$('force').addEventListener('click', () => {
  const h = state.holder;
  if (!h) return;
  $('c-who').textContent = h.who || 'someone';
  $('c-operation').textContent = h.operation || 'unknown operation';
  $('c-id').textContent = h.id;
  $('c-input').value = '';
  $('c-ok').disabled = true;
  $('confirm').dataset.id = h.id;
  $('confirm').showModal();
  $('c-input').focus();
});

$('c-input').addEventListener('input', () => {
  $('c-ok').disabled = $('c-input').value.trim() !== $('confirm').dataset.id;
});

$('confirm').addEventListener('close', () => {
  const id = $('confirm').dataset.id;
  // Only the exact ID typed removes the lock; the core checks it again
  // against the lock on the store (another holder may have come meanwhile).
  if ($('confirm').returnValue === 'ok' && $('c-input').value.trim() === id) {
    act(() => state.lock.forceUnlock(id));
  }
});

// A lock this page holds is Terraform's kind: it stays until released, so
// closing the tab with it held asks first.
window.addEventListener('beforeunload', (ev) => {
  if (state.held && !state.held.released) ev.preventDefault();
});

setInterval(() => {
  if ($('auto').checked && state.lock && !state.busy) check();
  else render();
}, REFRESH_MS);
// The age ticks every second between checks.
setInterval(render, 1000);
render();
