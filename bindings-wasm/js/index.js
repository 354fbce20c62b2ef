// condlock in the browser: the user-facing classes over the wasm core.
//
// The core (Rust, compiled to wasm) decides everything: options, waits,
// retries, leases, messages. This layer adds what only JavaScript can:
// AbortSignal in and out, `Symbol.asyncDispose` that releases (wasm-bindgen's
// own `Symbol.dispose` only frees memory), and the error classes.

import init, { S3LockCore, CancelHandle } from '../pkg/condlock_wasm.js';
import { fromFields, LockError, LockHeld } from './errors.js';

export * from './errors.js';

// The module is ready once imported: constructors stay synchronous.
await init({ module_or_path: new URL('../pkg/condlock_wasm_bg.wasm', import.meta.url) });

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose');

/**
 * The class instance for an error thrown by the wasm core (a plain Error with
 * the core's `code` and fields); anything else is returned unchanged.
 */
function fromCore(e) {
  if (e instanceof LockError || !(e instanceof Error) || typeof e.code !== 'string') return e;
  return fromFields(e.message, e);
}

/** Run a core call, turning its errors into the package's classes. */
async function core(promise) {
  try {
    return await promise;
  } catch (e) {
    throw fromCore(e);
  }
}

/** A CancelHandle that follows `signal`, and how to stop following it. */
function linked(signal) {
  const handle = new CancelHandle();
  if (!signal) return { handle, unlink() {} };
  const onAbort = () => handle.cancel();
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { handle, unlink: () => signal.removeEventListener('abort', onAbort) };
}

/** A timeout as the core takes it: a number of ms, or NaN for anything else (refused, naming `timeoutMs`). */
function timeoutArg(timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === null) return undefined;
  return typeof timeoutMs === 'number' ? timeoutMs : NaN;
}

/** A lock we hold. Release it with `release()` or `await using`. */
export class HeldLock {
  #core;
  #controller = new AbortController();

  /** @internal Made by `S3Lock.acquire`. */
  constructor(heldCore) {
    this.#core = heldCore;
    heldCore.lossWatch().then((lost) => {
      if (lost) this.#controller.abort(fromCore(lost));
    });
  }

  /** The lock ID we wrote (what `forceUnlock` takes). */
  get lockId() { return this.#core.lockId; }
  /** The lock object's current ETag (changes with each lease renewal). */
  get etag() { return this.#core.etag; }
  /** The LockInfo we wrote. */
  get info() { return this.#core.info; }
  /** The lease in ms, or null when held without one (Terraform-style). */
  get leaseMs() { return this.#core.leaseMs ?? null; }
  /** Aborted, with a LockLost as its reason, when the lock is lost. */
  get signal() { return this.#controller.signal; }
  /** Generation (1 for a fresh lease, +1 per takeover; 0 without a lease) and the current ETag. */
  get fencingToken() { return { generation: this.#core.generation, etag: this.#core.etag }; }
  /** Whether the lock was released. */
  get released() { return this.#core.released; }

  /** Release the lock: true when our lock was deleted; false when it was already gone or released. */
  release() {
    return core(this.#core.release());
  }

  async [asyncDispose]() {
    await this.release();
  }
}

/** Terraform's S3 lock file (`<key>.tflock`), in the browser. */
export class S3Lock {
  #core;
  #lastHolder = null;

  constructor(options) {
    try {
      this.#core = new S3LockCore(options);
    } catch (e) {
      throw fromCore(e);
    }
  }

  /** The holder seen by the last `tryAcquire` that found the lock held (or the last wait). */
  get lastHolder() { return this.#lastHolder; }

  async #acquire(blocking, { timeoutMs, signal, onWait } = {}) {
    const { handle, unlink } = linked(signal);
    const waited = (event) => {
      this.#lastHolder = event.holder;
      if (onWait) onWait(event);
    };
    try {
      return new HeldLock(await core(this.#core.acquire(blocking, timeoutArg(timeoutMs), waited, handle)));
    } finally {
      unlink();
      handle.free();
    }
  }

  /** Acquire, waiting for the holder (forever without `timeoutMs`). */
  acquire(options) {
    return this.#acquire(true, options);
  }

  /** One attempt: the HeldLock, or null when held (the holder is then in `lastHolder`). */
  async tryAcquire() {
    try {
      return await this.#acquire(false);
    } catch (e) {
      if (e instanceof LockHeld) {
        this.#lastHolder = e.holder;
        return null;
      }
      throw e;
    }
  }

  /** Who holds the lock now, or null when it is free. */
  async holder() {
    const handle = new CancelHandle();
    try {
      return await core(this.#core.holder(handle));
    } finally {
      handle.free();
    }
  }

  /** Remove the lock carrying `lockId` (only that one), as `terraform force-unlock` does. */
  forceUnlock(lockId) {
    return core(this.#core.forceUnlock(typeof lockId === 'string' ? lockId : ''));
  }

  /** Acquire, run `fn(signal, held)`, release on every exit. */
  async using(fn, options) {
    const held = await this.acquire(options);
    let result;
    try {
      result = await fn(held.signal, held);
    } catch (e) {
      // The work's failure is what the caller needs; a release failure
      // after it is secondary.
      await held.release().catch(() => {});
      throw e;
    }
    await held.release();
    return result;
  }
}
