// TypeScript declarations of the browser package. The S3 part is the same
// API, names and error classes as the Node package's (bindings-node/): this
// file is the Node one minus what needs Node (Apstra, the AWS credential
// chain, the native transport).

/** Explicit keys (AWS SDK v3 shape). Kept in page memory only, never shown or logged. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When the keys expire: the provider is asked again shortly before. */
  expiration?: Date;
}

/** AWS SDK v3 provider shape: called when needed, and again before `expiration`. */
export type CredentialProvider = () => Promise<Credentials>;

/** A progress notice for the `logger` hook. Never carries a secret. */
export interface LogEvent {
  /** `waiting` (someone holds the lock), `retrying` (a request failed and is retried), `fallback`, `lost`. */
  kind: 'waiting' | 'retrying' | 'fallback' | 'lost' | 'notice';
  /** The core's wording. */
  message: string;
  /** For `lost`: `stolen`, `gone` or `renewal_failed`. */
  reason?: string;
}

export interface S3LockOptions {
  /** The state's bucket. */
  bucket: string;
  /** The state key; the lock object is `${key}.tflock`. */
  key: string;
  /** Default `us-east-1`. */
  region?: string;
  /** An S3-compatible endpoint (`http://127.0.0.1:9000`); default AWS. */
  endpoint?: string;
  /** Path-style addressing (default: the endpoint decides). */
  pathStyle?: boolean;
  /** Terraform workspace: the key becomes `${workspaceKeyPrefix}/${workspace}/${key}`. */
  workspace?: string;
  /** Terraform's `workspace_key_prefix` (default `env:`). */
  workspaceKeyPrefix?: string;
  /** Required in a browser (there is no AWS credential chain). */
  credentials?: Credentials | CredentialProvider;
  /** LockInfo `Who` (default `browser@<the page's host name>`). */
  who?: string;
  /** LockInfo `Operation` (default `condlock`). */
  operation?: string;
  /** LockInfo `Info`. */
  info?: string;
  /** Hold with a lease of this many ms, renewed while the page runs. */
  leaseMs?: number;
  /** Take over a lock whose lease expired. */
  takeover?: boolean;
  /** Take over a lock without a lease (Terraform's) unchanged for this many ms. */
  staleAfterMs?: number;
  /** Prove the store refuses a second conditional write: `once` per store (default), `always`, `never`. */
  verifyConditionalWrites?: 'once' | 'always' | 'never';
  /** Longest pause between attempts while waiting, ms. */
  maxPollIntervalMs?: number;
  /**
   * Terraform's `dynamodb_table`: also take Terraform's DynamoDB lock item
   * (`LockID` = `<bucket>/<state key>`, `Info` = the LockInfo) in this
   * table. Leases and takeovers are refused with a table. The table must
   * answer the page's origin (see the README's browser section on CORS).
   */
  dynamodbTable?: string;
  /** The DynamoDB endpoint (`http://127.0.0.1:8000`); default the region's AWS endpoint. */
  dynamodbEndpoint?: string;
  /**
   * Terraform's `use_lockfile`: take the S3 lock file (default true).
   * `false` with `dynamodbTable` takes the DynamoDB item only, as
   * Terraform before 1.10; `false` without a table is InvalidConfiguration.
   */
  useLockfile?: boolean;
  /** Transport hook (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Progress notices (debug). */
  logger?: (event: LogEvent) => void;
}

export interface WaitEvent {
  /** Who holds the lock (null if it could not be read). */
  holder: LockInfo | null;
  /** How long this acquire has waited. */
  elapsedMs: number;
  /** When the next attempt is, from now. */
  nextTryMs: number;
  /** True the first time this holder is seen. */
  newHolder: boolean;
}

export interface AcquireOptions {
  /** Give up after this many ms (LockTimeout); no value: wait forever. */
  timeoutMs?: number;
  /** Cancel the wait (LockCancelled); a lock taken just then is given back. */
  signal?: AbortSignal;
  /** Called while waiting for a holder. */
  onWait?: (e: WaitEvent) => void;
}

/** Terraform's lock information. */
export interface LockInfo {
  id: string;
  operation: string;
  info: string;
  who: string;
  version: string;
  /** RFC 3339 UTC. */
  created: string;
  /** `<bucket>/<state key>`. */
  path: string;
  /** The lock object's ETag (quotes included). */
  etag?: string;
  /** The lock object's Last-Modified header, when read from the store. */
  lastModified?: string;
  /** Set when the lock object is not LockInfo JSON (the other fields are then empty). */
  error?: string;
}

/** Terraform's S3 lock file, its DynamoDB lock item (`dynamodbTable`), or both. */
export class S3Lock {
  /** Bad input throws InvalidConfiguration (its `field` names the option). */
  constructor(options: S3LockOptions);
  /** Acquire; no `timeoutMs` waits forever. */
  acquire(options?: AcquireOptions): Promise<HeldLock>;
  /** One attempt: null when held, the holder then in `lastHolder`. */
  tryAcquire(): Promise<HeldLock | null>;
  readonly lastHolder: LockInfo | null;
  /** Who holds the lock now, or null when it is free. */
  holder(): Promise<LockInfo | null>;
  /** Remove the lock carrying `lockId` (only that one). True when removed, false when there was none. */
  forceUnlock(lockId: string): Promise<boolean>;
  /** Acquire, run `fn`, release on every exit. */
  using<T>(fn: (signal: AbortSignal, held: HeldLock) => Promise<T>, options?: AcquireOptions): Promise<T>;
}

/** A lock we hold. */
export class HeldLock {
  readonly lockId: string;
  readonly etag: string;
  readonly info: LockInfo;
  /** The lease in ms, null without one. */
  readonly leaseMs: number | null;
  /** Aborted with a LockLost when the lock is lost. */
  readonly signal: AbortSignal;
  readonly fencingToken: { generation: number; etag: string };
  readonly released: boolean;
  /** True when our lock was deleted; false when already gone or released (safe to call twice). */
  release(): Promise<boolean>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Every condlock failure; `code` is the core's stable error code. */
export class LockError extends Error {
  readonly code: string;
}
export class LockHeld extends LockError {
  readonly holder: LockInfo | null;
}
export class LockTimeout extends LockError {
  readonly holder: LockInfo | null;
  readonly waitedMs: number;
}
export class LockLost extends LockError {
  readonly reason: 'stolen' | 'gone' | 'renewal_failed' | string;
  readonly holder: LockInfo | null;
}
export class NotOwned extends LockError {
  readonly holder: LockInfo | null;
}
export class ConditionalWritesUnsupported extends LockError {
  readonly endpoint: string | null;
  readonly bucket: string | null;
}
export class TransportError extends LockError {
  readonly maybeSent: boolean;
  readonly permanent: boolean;
}
export class ServerError extends TransportError {
  /** The HTTP status of the last answer (null when there was none). */
  readonly status: number | null;
  /** The store's error code (e.g. `SlowDown`), null when none was given. */
  readonly awsCode: string | null;
}
/** The server refused the request for a reason retrying cannot fix. */
export class RequestRejected extends LockError {
  readonly status: number | null;
  readonly awsCode: string | null;
}
/** The credentials were refused or lack permission. */
export class AccessDenied extends RequestRejected {}
export class MalformedResponse extends LockError {}
export class InvalidConfiguration extends LockError {
  readonly field: string | null;
}
/** `name` is `'AbortError'`. */
export class LockCancelled extends LockError {}
export class LockMisuse extends LockError {}
