// The error classes of condlock, shared in name and shape with the Node
// package and Python's exceptions. The core decides the code, the message
// (its `Error::explain` in JavaScript's spelling) and the fields; this file
// is a table from the core's code to the class.

/** Every condlock failure. `code` is the core's stable error code. */
export class LockError extends Error {
  constructor(message, fields = {}) {
    super(message);
    this.name = new.target.name;
    this.code = fields.code ?? 'lock_error';
  }
}

/** The lock is held by someone else (`tryAcquire` returns null instead). */
export class LockHeld extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.holder = fields.holder ?? null;
  }
}

/** The wait ran out while someone else held the lock. */
export class LockTimeout extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.holder = fields.holder ?? null;
    this.waitedMs = fields.waitedMs ?? 0;
  }
}

/** A lock held with a lease was lost: `reason` is `stolen`, `gone` or `renewal_failed`. */
export class LockLost extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.reason = fields.reason ?? 'unknown';
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
export class ConditionalWritesUnsupported extends LockError {}

/** The store could not be reached (in a browser: also a missing CORS rule). */
export class TransportError extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.maybeSent = fields.maybeSent ?? true;
    this.permanent = fields.permanent ?? false;
  }
}

/** The store kept failing (5xx, throttling) until the deadline. */
export class ServerError extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.status = fields.status ?? 0;
    this.awsCode = fields.awsCode ?? '';
  }
}

/** The store refused the request for a reason retrying cannot fix. */
export class RequestRejected extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.status = fields.status ?? 0;
    this.awsCode = fields.awsCode ?? '';
  }
}

/** The credentials were refused or lack permission. */
export class AccessDenied extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.status = fields.status ?? 403;
    this.awsCode = fields.awsCode ?? '';
  }
}

/** The store answered something condlock cannot interpret. */
export class MalformedResponse extends LockError {}

/** Bad input (or a bucket that does not exist, or the wrong region): `field` names the option. */
export class InvalidConfiguration extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.field = fields.field ?? null;
  }
}

/** The operation was cancelled through its AbortSignal; no lock of ours was left behind. */
export class LockCancelled extends LockError {
  constructor(message, fields = {}) {
    super(message, fields);
    // What `fetch` and other abortable APIs reject with, so code that checks
    // `e.name === 'AbortError'` keeps working.
    this.name = 'AbortError';
  }
}

/** The API was used out of order (a bug). */
export class LockMisuse extends LockError {}

const CLASSES = {
  invalid_config: InvalidConfiguration,
  no_such_bucket: InvalidConfiguration,
  wrong_region: InvalidConfiguration,
  no_such_blueprint: InvalidConfiguration,
  held: LockHeld,
  timeout: LockTimeout,
  lost: LockLost,
  not_owned: NotOwned,
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

/**
 * The class instance for an error thrown by the wasm core (a plain Error with
 * the core's `code` and fields); anything else is returned unchanged.
 */
export function fromCore(e) {
  if (e instanceof LockError || !(e instanceof Error) || typeof e.code !== 'string') return e;
  const Class = CLASSES[e.code] ?? LockError;
  return new Class(e.message, e);
}
