'use strict';
// The hand-written JavaScript layer over the native addon: error classes,
// AbortSignal wiring, `Symbol.asyncDispose` and `using` (napi-rs cannot name
// symbol methods). Everything else, every default, retry and message, is
// the Rust core's.

const native = require('./native.cjs');

// ---------------------------------------------------------------- errors

// The classes, one per core error code, are shared with the browser package
// (bindings-js/errors.js, converted by scripts/sync-js.mjs).
const {
  LockError,
  LockHeld,
  LockTimeout,
  LockLost,
  NotOwned,
  ConditionalWritesUnsupported,
  TransportError,
  ServerError,
  RequestRejected,
  AccessDenied,
  MalformedResponse,
  InvalidConfiguration,
  LockCancelled,
  LockMisuse,
  fromFields,
} = require('./errors.cjs');

const MARKER = '\u0001condlock-error:';

/**
 * The LockError for an error from the addon. Core errors carry their code,
 * message and fields as JSON; anything else is an argument the addon could
 * not convert (`asConfig`: a constructor option) or an internal failure.
 */
function fromNative(e, asConfig = false) {
  const text = typeof e?.message === 'string' ? e.message : String(e);
  if (text.startsWith(MARKER)) {
    const fields = JSON.parse(text.slice(MARKER.length));
    return fromFields(fields.message, fields);
  }
  if (asConfig) {
    return new InvalidConfiguration(`invalid option: ${text}`, {});
  }
  return new LockMisuse(`condlock's native addon failed: ${text} (please report this)`, {
    code: 'misuse',
  });
}

function config(field, reason) {
  return new InvalidConfiguration(`invalid option ${field}: ${reason}`, { field });
}

// ---------------------------------------------------------------- options

const OPTION_NAMES = new Set([
  'bucket', 'key', 'region', 'endpoint', 'pathStyle', 'workspace', 'workspaceKeyPrefix',
  'credentials', 'who', 'operation', 'info', 'leaseMs', 'takeover', 'staleAfterMs',
  'verifyConditionalWrites', 'maxPollIntervalMs', 'requestTimeoutMs', 'connectTimeoutMs',
  'dynamodbTable', 'dynamodbEndpoint', 'useLockfile', 'fetch', 'logger',
]);

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose');

function checkType(name, value, type) {
  if (value !== undefined && value !== null && typeof value !== type) {
    throw config(name, `must be a ${type} (got ${typeof value})`);
  }
}

function callHook(name, hook, event) {
  try {
    hook(event);
  } catch (e) {
    // A broken hook must not break the lock: report it where Node reports
    // uncaught problems, once per throw.
    process.emitWarning(`condlock: the ${name} hook threw: ${e?.message ?? e}`);
  }
}

/** The provider wrapper the addon calls: `expiration` as epoch ms. */
function providerWrapper(provider) {
  return async () => {
    const c = await provider();
    if (c === null || typeof c !== 'object') return {};
    const exp = c.expiration;
    return {
      accessKeyId: typeof c.accessKeyId === 'string' ? c.accessKeyId : undefined,
      secretAccessKey: typeof c.secretAccessKey === 'string' ? c.secretAccessKey : undefined,
      sessionToken: typeof c.sessionToken === 'string' ? c.sessionToken : undefined,
      expirationMs: exp instanceof Date ? exp.getTime() : undefined,
    };
  };
}

// Headers fetch computes itself (and may refuse to be given).
const FETCH_SETS = new Set(['host', 'content-length']);

/**
 * The `fetch` option as the addon calls it: plain data in and out. A
 * rejection with a TypeError is fetch's network failure (the request may
 * have been sent: retried); anything else means the function itself is
 * broken (not retried).
 */
function fetchWrapper(userFetch) {
  return async ({ method, url, headers, body }) => {
    let response;
    try {
      const h = new Headers();
      for (const [name, value] of headers) {
        if (!FETCH_SETS.has(name)) h.append(name, value);
      }
      response = await userFetch(url, { method, headers: h, body: body ?? undefined });
    } catch (e) {
      const network = e instanceof TypeError;
      const cause = e?.cause?.message ? ` (${e.cause.message})` : '';
      return {
        error: `${network ? 'fetch failed' : 'the fetch option threw'}: ${e?.message ?? e}${cause}`,
        kind: network ? 'network' : 'broken',
      };
    }
    if (!response || typeof response.status !== 'number' || typeof response.arrayBuffer !== 'function') {
      return { error: 'the fetch option resolved to something that is not a Response', kind: 'broken' };
    }
    try {
      const data = Buffer.from(await response.arrayBuffer());
      return { status: response.status, headers: [...response.headers], body: data };
    } catch (e) {
      return { error: `reading the response body failed: ${e?.message ?? e}`, kind: 'network' };
    }
  };
}

function nativeOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw config('options', 'pass an object: new S3Lock({ bucket, key, ... })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) {
      throw config(name, `is not an option of S3Lock (options: ${[...OPTION_NAMES].join(', ')})`);
    }
  }
  const { credentials, fetch, logger, ...rest } = options;
  for (const [name, type] of [
    ['bucket', 'string'], ['key', 'string'], ['region', 'string'], ['endpoint', 'string'],
    ['workspace', 'string'], ['workspaceKeyPrefix', 'string'], ['who', 'string'],
    ['operation', 'string'], ['info', 'string'], ['verifyConditionalWrites', 'string'],
    ['pathStyle', 'boolean'], ['takeover', 'boolean'], ['leaseMs', 'number'],
    ['staleAfterMs', 'number'], ['maxPollIntervalMs', 'number'], ['requestTimeoutMs', 'number'],
    ['connectTimeoutMs', 'number'], ['dynamodbTable', 'string'], ['dynamodbEndpoint', 'string'],
    ['useLockfile', 'boolean'],
  ]) {
    checkType(name, rest[name], type);
  }
  checkType('fetch', fetch, 'function');
  checkType('logger', logger, 'function');
  let provider = null;
  if (typeof credentials === 'function') {
    provider = providerWrapper(credentials);
  } else if (credentials !== undefined && credentials !== null) {
    if (typeof credentials !== 'object') {
      throw config('credentials', 'must be { accessKeyId, secretAccessKey, sessionToken? } or a provider function');
    }
    checkType('credentials.accessKeyId', credentials.accessKeyId, 'string');
    checkType('credentials.secretAccessKey', credentials.secretAccessKey, 'string');
    checkType('credentials.sessionToken', credentials.sessionToken, 'string');
    rest.accessKeyId = credentials.accessKeyId;
    rest.secretAccessKey = credentials.secretAccessKey;
    rest.sessionToken = credentials.sessionToken;
  }
  const log = logger ? (event) => callHook('logger', logger, event) : null;
  return [rest, provider, log, fetch ? fetchWrapper(fetch) : null];
}

function checkAcquireOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw config('options', 'pass an object: acquire({ timeoutMs, signal, onWait })');
  }
  const { timeoutMs, signal, onWait } = options;
  checkType('timeoutMs', timeoutMs, 'number');
  checkType('onWait', onWait, 'function');
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
    throw config('signal', 'must be an AbortSignal');
  }
  return { timeoutMs: timeoutMs ?? null, signal: signal ?? null, onWait: onWait ?? null };
}

function waitEvent(n) {
  return {
    holder: n.holder ?? null,
    elapsedMs: n.elapsedMs,
    nextTryMs: n.nextTryMs,
    newHolder: n.newHolder,
    message: n.message,
  };
}

// ---------------------------------------------------------------- classes

/**
 * One acquire through the addon: the caller's AbortSignal cancels the
 * core's operation (which removes a lock it may have written first).
 */
async function runAcquire(nativeLock, wait, options, wrap) {
  const { timeoutMs, signal, onWait } = checkAcquireOptions(options);
  if (signal?.aborted) {
    throw new LockCancelled('operation cancelled: the signal was already aborted', {});
  }
  const token = new native.CancelToken();
  const cancel = () => token.cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  const hook = onWait ? (n) => callHook('onWait', onWait, waitEvent(n)) : null;
  try {
    return wrap(await nativeLock.acquire(wait, timeoutMs, token, hook));
  } catch (e) {
    throw fromNative(e);
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}

/** `fn(signal, held)` holding `held`, released on every exit. */
async function holding(held, fn) {
  let result;
  try {
    result = await fn(held.signal, held);
  } catch (e) {
    // The caller's error wins; a failed release is reported beside it.
    await held.release().catch((r) =>
      process.emitWarning(`condlock: release after an error failed: ${r.message}`),
    );
    throw e;
  }
  await held.release();
  return result;
}

/** Run `op()` (an addon call) with its errors, thrown or rejected, as LockErrors. */
async function call(op) {
  try {
    return await op();
  } catch (e) {
    throw fromNative(e);
  }
}

function checkOptions(options, names, what) {
  if (options === null || typeof options !== 'object') {
    throw config('options', `pass an object: new ${what}({ ... })`);
  }
  for (const name of Object.keys(options)) {
    if (!names.includes(name)) {
      throw config(name, `is not an option of ${what} (options: ${names.join(', ')})`);
    }
  }
}

const NEW_HELD = Symbol('condlock.newHeld');

/** A lock we hold. Release it (or dispose of it) when done. */
class HeldLock {
  #native;
  #controller = new AbortController();

  /** @internal Made by S3Lock.acquire / tryAcquire. */
  constructor(key, nativeHeld) {
    if (key !== NEW_HELD) {
      throw new LockMisuse('HeldLock is made by S3Lock.acquire(), not constructed', {});
    }
    this.#native = nativeHeld;
    if (nativeHeld.leaseMs !== null) {
      // Resolves when the lease is lost (an abort of `signal`), or with null
      // when it ended without a loss.
      nativeHeld.lost().then(
        (lost) => {
          if (lost) {
            this.#controller.abort(
              new LockLost(`the lock was lost (${lost.message})`, {
                code: 'lost',
                reason: lost.reason,
                lost,
              }),
            );
          }
        },
        () => {},
      );
    }
  }

  /** The lock ID (what `forceUnlock` takes). */
  get lockId() {
    return this.#native.lockId;
  }
  /** The lock object's current ETag (changes with each renewal). */
  get etag() {
    return this.#native.etag;
  }
  /** The lock body we wrote (Terraform's LockInfo). */
  get info() {
    return this.#native.info;
  }
  /** The lease in milliseconds, or null without one. */
  get leaseMs() {
    return this.#native.leaseMs;
  }
  /** Aborted with a LockLost when a leased lock is lost. */
  get signal() {
    return this.#controller.signal;
  }
  /** The fencing token: the generation (0 without a lease) and current ETag. */
  get fencingToken() {
    return { generation: this.#native.generation, etag: this.#native.etag };
  }
  /** Whether release() was called. */
  get released() {
    return this.#native.released;
  }
  /** Release the lock: true when deleted, false when already gone or released. */
  async release() {
    try {
      return await this.#native.release();
    } catch (e) {
      throw fromNative(e);
    }
  }
  /** `await using held = await lock.acquire()` releases here. */
  async [asyncDispose]() {
    await this.release();
  }
}

/** A Terraform-compatible S3 lock file (`${key}.tflock`). */
class S3Lock {
  #native;
  #lastHolder = null;

  constructor(options) {
    const [opts, provider, logger, fetchHook] = nativeOptions(options);
    try {
      this.#native = new native.S3LockNative(opts, provider, logger, fetchHook);
    } catch (e) {
      throw fromNative(e, true);
    }
  }

  #acquire(wait, options) {
    return runAcquire(this.#native, wait, options, (n) => new HeldLock(NEW_HELD, n));
  }

  /** Acquire, waiting while it is held (forever unless `timeoutMs`). */
  acquire(options = {}) {
    return this.#acquire(true, options);
  }

  /** One attempt: null when held (the holder is then `lastHolder`). */
  async tryAcquire() {
    try {
      const held = await this.#acquire(false, {});
      this.#lastHolder = null;
      return held;
    } catch (e) {
      if (e instanceof LockHeld) {
        this.#lastHolder = e.holder;
        return null;
      }
      throw e;
    }
  }

  /** The holder seen by the last tryAcquire() that found the lock held. */
  get lastHolder() {
    return this.#lastHolder;
  }

  /** Who holds the lock now (null: free). */
  async holder() {
    try {
      return await this.#native.holder();
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Remove the lock whose ID is `lockId`, as `terraform force-unlock` does. */
  async forceUnlock(lockId) {
    if (typeof lockId !== 'string') {
      throw config('lockId', 'must be a string: the ID shown as the holder\'s lock ID');
    }
    try {
      return await this.#native.forceUnlock(lockId);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Run `fn(signal, held)` holding the lock, and release on every exit.
   * The signal aborts if a leased lock is lost.
   */
  async using(fn, options = {}) {
    if (typeof fn !== 'function') {
      throw config('fn', 'must be a function: lock.using(async (signal, held) => ...)');
    }
    return holding(await this.acquire(options), fn);
  }
}

// ---------------------------------------------------------------- Apstra

const SERVER_OPTIONS = ['url', 'username', 'password', 'verifyTls', 'requestTimeoutMs', 'fetch'];

function serverOptions(o) {
  for (const [name, type] of [
    ['url', 'string'], ['username', 'string'], ['password', 'string'], ['verifyTls', 'boolean'],
    ['requestTimeoutMs', 'number'], ['fetch', 'function'],
  ]) {
    checkType(name, o[name], type);
  }
  const { fetch, ...rest } = o;
  return [rest, fetch ? fetchWrapper(fetch) : null];
}

/**
 * An Apstra server and the login session its operations share, with the
 * administration of blueprint mutexes. `url`, `username`, `password` default
 * to APSTRA_URL, APSTRA_USER, APSTRA_PASS.
 */
class ApstraClient {
  #native;

  constructor(options = {}) {
    checkOptions(options, SERVER_OPTIONS, 'ApstraClient');
    const [opts, fetchHook] = serverOptions(options);
    try {
      this.#native = new native.ApstraClientNative(opts, fetchHook);
    } catch (e) {
      throw fromNative(e, true);
    }
  }

  /** @internal The addon's client (shared by the mutexes made with it). */
  get _native() {
    return this.#native;
  }

  /** Every blueprint mutex on the server. */
  listMutexes() {
    return call(() => this.#native.listMutexes());
  }

  /** The mutexes older than `olderThanMs`. */
  async staleMutexes(olderThanMs) {
    checkType('olderThanMs', olderThanMs, 'number');
    if (olderThanMs === undefined || olderThanMs === null) {
      throw config('olderThanMs', 'is required: staleMutexes(olderThanMs)');
    }
    return call(() => this.#native.staleMutexes(olderThanMs));
  }

  /** Delete the mutex tag with this ID: the tag deleted, or null. */
  async forceUnlockTag(tagId) {
    if (typeof tagId !== 'string') throw config('tagId', 'must be a string: a mutex tag ID');
    return call(() => this.#native.forceUnlockTag(tagId));
  }
}

/** A blueprint mutex we hold. */
class HeldMutex {
  #native;
  #controller = new AbortController();

  /** @internal Made by ApstraMutex.acquire / tryAcquire. */
  constructor(key, nativeHeld) {
    if (key !== NEW_HELD) {
      throw new LockMisuse('HeldMutex is made by ApstraMutex.acquire(), not constructed', {});
    }
    this.#native = nativeHeld;
  }
  get tagId() {
    return this.#native.tagId;
  }
  get blueprintId() {
    return this.#native.blueprintId;
  }
  get label() {
    return this.#native.label;
  }
  get description() {
    return this.#native.description;
  }
  get token() {
    return this.#native.token;
  }
  get recovered() {
    return this.#native.recovered;
  }
  get released() {
    return this.#native.released;
  }
  /** Never aborted: a mutex tag has no lease. Here for `using()`. */
  get signal() {
    return this.#controller.signal;
  }
  /** Release: true when this call deleted our tag. */
  release() {
    return call(() => this.#native.release());
  }
  async [asyncDispose]() {
    await this.release();
  }
}

const MUTEX_OPTIONS = ['blueprintId', 'message', 'waitForBlueprintUnlock', 'maxPollIntervalMs', 'client', 'logger'];

/**
 * The mutex of one Apstra blueprint: the tag `blueprint <ID> locked`, the
 * one `terraform apply` with the Apstra provider takes. Server options are
 * ApstraClient's (or pass `client`).
 */
class ApstraMutex {
  #native;
  #lastHolder = null;

  constructor(options) {
    checkOptions(options, [...MUTEX_OPTIONS, ...SERVER_OPTIONS], 'ApstraMutex');
    const { blueprintId, message, waitForBlueprintUnlock, maxPollIntervalMs, client, logger, ...server } = options;
    checkType('blueprintId', blueprintId, 'string');
    checkType('message', message, 'string');
    checkType('waitForBlueprintUnlock', waitForBlueprintUnlock, 'boolean');
    checkType('maxPollIntervalMs', maxPollIntervalMs, 'number');
    checkType('logger', logger, 'function');
    if (client !== undefined && client !== null) {
      if (!(client instanceof ApstraClient)) throw config('client', 'must be an ApstraClient');
      if (Object.keys(server).length > 0) {
        throw config(Object.keys(server)[0], 'cannot be combined with client (the client has its own)');
      }
    }
    const c = client ?? new ApstraClient(server);
    const log = logger ? (event) => callHook('logger', logger, event) : null;
    try {
      this.#native = new native.ApstraMutexNative(
        { blueprintId, message, waitForBlueprintUnlock, maxPollIntervalMs },
        c._native,
        log,
      );
    } catch (e) {
      throw fromNative(e, true);
    }
  }

  /** Acquire, waiting while held (forever unless `timeoutMs`). */
  acquire(options = {}) {
    return runAcquire(this.#native, true, options, (n) => new HeldMutex(NEW_HELD, n));
  }

  /** One attempt: null when held (the holder's tag is then `lastHolder`). */
  async tryAcquire() {
    try {
      const held = await runAcquire(this.#native, false, {}, (n) => new HeldMutex(NEW_HELD, n));
      this.#lastHolder = null;
      return held;
    } catch (e) {
      if (e instanceof LockHeld) {
        this.#lastHolder = e.holder;
        return null;
      }
      throw e;
    }
  }

  get lastHolder() {
    return this.#lastHolder;
  }

  /** The mutex tag (null: free). */
  holder() {
    return call(() => this.#native.holder());
  }

  /** Delete this blueprint's mutex: the tag deleted, or null. */
  forceUnlock() {
    return call(() => this.#native.forceUnlock());
  }

  /** Run `fn(signal, held)` holding the mutex; released on every exit. */
  async using(fn, options = {}) {
    if (typeof fn !== 'function') {
      throw config('fn', 'must be a function: mutex.using(async (signal, held) => ...)');
    }
    return holding(await this.acquire(options), fn);
  }
}

module.exports = {
  S3Lock,
  HeldLock,
  ApstraClient,
  ApstraMutex,
  HeldMutex,
  LockError,
  LockHeld,
  LockTimeout,
  LockLost,
  NotOwned,
  ConditionalWritesUnsupported,
  TransportError,
  ServerError,
  RequestRejected,
  AccessDenied,
  MalformedResponse,
  InvalidConfiguration,
  LockCancelled,
  LockMisuse,
};
