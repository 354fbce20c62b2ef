// The error classes of condlock's JavaScript packages (Node and the
// browser), one class per core error code, with the names and the hierarchy
// of Python's exceptions. The core decides the code, the message (its
// `Error::explain` in JavaScript's spelling) and the fields; this file only
// turns them into classes.
//
// THE SOURCE: `scripts/sync-js.mjs` copies it to `bindings-wasm/js/errors.js`
// (ES module) and converts it to `bindings-node/errors.cjs` (CommonJS: Node
// 20 cannot `require` an ES module). Edit this file, then run
// `node scripts/sync-js.mjs`; the test suite fails while the copies differ.

/** Every condlock failure. `code` is the core's stable error code. */
export class LockError extends Error {
  constructor(message, fields = {}) {
    super(message);
    this.name = new.target.name;
    this.code = fields.code ?? 'misuse';
  }
}

/** The lock is held (a try that did not wait); `holder` says by whom. */
export class LockHeld extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.holder = fields.holder ?? null;
  }
}

/** The wait ran out; `holder` is the last holder seen, `waitedMs` the wait. */
export class LockTimeout extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.holder = fields.holder ?? null;
    this.waitedMs = fields.waitedMs ?? 0;
  }
}

/** A lock held with a lease was lost; `reason`: `stolen`, `gone`, `renewal_failed`... */
export class LockLost extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.reason = fields.reason ?? null;
    this.holder = fields.holder ?? fields.lost?.holder ?? null;
  }
}

/** The lock belongs to someone else: it was left alone. */
export class NotOwned extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.holder = fields.holder ?? null;
  }
}

/** The store ignores conditional writes: it cannot provide a lock. */
export class ConditionalWritesUnsupported extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.endpoint = fields.endpoint ?? null;
    this.bucket = fields.bucket ?? null;
  }
}

/**
 * The network kept failing until the deadline (in a browser, also a
 * missing CORS rule); `maybeSent`: the last request may have arrived.
 */
export class TransportError extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.maybeSent = fields.maybeSent ?? true;
    this.permanent = fields.permanent ?? false;
  }
}

/** The server kept failing (5xx, throttling) until the deadline. */
export class ServerError extends TransportError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.status = fields.status ?? null;
    this.awsCode = fields.awsCode ?? null;
  }
}

/** The server refused the request for a reason retrying cannot fix. */
export class RequestRejected extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.status = fields.status ?? null;
    this.awsCode = fields.awsCode ?? null;
  }
}

/** The credentials were refused or lack permission. */
export class AccessDenied extends RequestRejected {}

/** The server answered something condlock cannot interpret. */
export class MalformedResponse extends LockError {}

/**
 * Bad input (or a bucket that does not exist, or the wrong region): `field`
 * names the option, as the option is spelled.
 */
export class InvalidConfiguration extends LockError {
  constructor(message, fields = {}) {
    super(message, { code: 'invalid_config', ...fields });
    this.field = fields.field ?? null;
  }
}

/** The operation was cancelled through its AbortSignal; no lock of ours was left behind. */
export class LockCancelled extends LockError {
  constructor(message, fields = {}) {
    super(message, { code: 'cancelled', ...fields });
    // What `fetch` and other abortable APIs reject with, so code that checks
    // `e.name === 'AbortError'` keeps working.
    this.name = 'AbortError';
  }
}

/** The API was used out of order (a bug), or the native part failed. */
export class LockMisuse extends LockError {}

/** The class of each core error code (`Error::code()` in the core). */
export const CLASSES = {
  invalid_config: InvalidConfiguration,
  no_such_bucket: InvalidConfiguration,
  wrong_region: InvalidConfiguration,
  no_such_blueprint: InvalidConfiguration,
  held: LockHeld,
  timeout: LockTimeout,
  lost: LockLost,
  not_owned: NotOwned,
  not_reentrant: LockError,
  conditional_writes_unsupported: ConditionalWritesUnsupported,
  transport: TransportError,
  server: ServerError,
  rejected: RequestRejected,
  access_denied: AccessDenied,
  login_refused: AccessDenied,
  malformed_response: MalformedResponse,
  cancelled: LockCancelled,
  misuse: LockMisuse,
};

/** The error of class `CLASSES[fields.code]` with the core's message and fields. */
export function fromFields(message, fields) {
  const Class = CLASSES[fields.code] ?? LockError;
  return new Class(message, fields);
}
