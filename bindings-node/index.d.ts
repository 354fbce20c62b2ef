// Public types of the `condlock` package. The S3 lock part is shared with
// the browser package (bindings-wasm): keep the names identical there; the
// Node-only parts are marked.

/** AWS credentials (the AWS SDK v3 shape). */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** An AWS SDK v3 credential provider: called when needed and again before `expiration`. */
export type CredentialProvider = () => Promise<Credentials>;

/** The holder of a lock: Terraform's LockInfo plus the lock object's ETag. */
export interface LockInfo {
  /** Lock ID (what `forceUnlock` takes). */
  id: string;
  operation: string;
  info: string;
  /** `user@hostname`. */
  who: string;
  version: string;
  /** RFC 3339 UTC timestamp. */
  created: string;
  /** `<bucket>/<state key>`. */
  path: string;
  /** The lock object's ETag (quotes included). */
  etag?: string;
  /** The `Last-Modified` of the lock object, when known. */
  lastModified?: string | null;
  /** Set when the lock object is not LockInfo JSON: why it could not be read. */
  error?: string;
  /** The core's one-line description of the holder. */
  description: string;
}

/** Progress while waiting for a held lock (`acquire({ onWait })`). */
export interface WaitEvent {
  holder: LockInfo | null;
  elapsedMs: number;
  nextTryMs: number;
  /** True the first time this holder is seen by this acquire. */
  newHolder: boolean;
  /** The core's one-line description of the wait. */
  message: string;
}

/** What the `logger` hook receives: the core's progress notices. Never carries a secret. */
export interface LogEvent {
  kind: 'waiting' | 'retrying' | 'fallback' | 'lost' | 'other';
  message: string;
  [field: string]: unknown;
}

export interface S3LockOptions {
  bucket: string;
  /** The state key; the lock object is `${key}.tflock`. */
  key: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, the AWS profile's `region` (AWS_PROFILE, AWS_CONFIG_FILE), then us-east-1. */
  region?: string;
  /** Default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the AWS profile's S3 `endpoint_url`, then AWS. */
  endpoint?: string;
  pathStyle?: boolean;
  workspace?: string;
  workspaceKeyPrefix?: string;
  /** Keys, or a provider function. Node: omitted => the AWS chain (environment, profiles, SSO, web identity, metadata). */
  credentials?: Credentials | CredentialProvider;
  /** LockInfo `Who` (default `user@hostname`). */
  who?: string;
  operation?: string;
  info?: string;
  /** Hold locks with a lease of this many milliseconds, renewed in the background. */
  leaseMs?: number;
  /** Take over locks whose lease expired. */
  takeover?: boolean;
  /** Take over locks without a lease (Terraform's) after this long. */
  staleAfterMs?: number;
  verifyConditionalWrites?: 'once' | 'always' | 'never';
  /** Longest pause between attempts while waiting. */
  maxPollIntervalMs?: number;
  /** Node only: per-request timeout. */
  requestTimeoutMs?: number;
  /** Node only: connect timeout. */
  connectTimeoutMs?: number;
  /**
   * Terraform's `dynamodb_table`: also take Terraform's DynamoDB lock item
   * (`LockID` = `<bucket>/<state key>`, `Info` = the LockInfo) in this
   * table. Leases and takeovers are refused with a table.
   */
  dynamodbTable?: string;
  /**
   * The DynamoDB endpoint (`http://127.0.0.1:8000`); default
   * `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, then the region's AWS endpoint.
   */
  dynamodbEndpoint?: string;
  /**
   * Terraform's `use_lockfile`: take the S3 lock file (default true).
   * `false` with `dynamodbTable` takes the DynamoDB item only, as
   * Terraform before 1.10; `false` without a table is InvalidConfiguration.
   */
  useLockfile?: boolean;
  /**
   * Transport hook: requests go through this `fetch`-compatible function
   * instead of the built-in Rust transport (Node's default). A rejection
   * with a TypeError (fetch's network failure) is retried; any other
   * rejection fails the operation.
   */
  fetch?: typeof fetch;
  /** Debug-style hook receiving the core's notices; never carries a secret. */
  logger?: (event: LogEvent) => void;
}

export interface AcquireOptions {
  /** Give up after this long (LockTimeout). Omitted: wait forever. */
  timeoutMs?: number;
  /** Abort the wait (LockCancelled); a lock written meanwhile is removed. */
  signal?: AbortSignal;
  onWait?: (event: WaitEvent) => void;
}

/** A Terraform-compatible S3 lock file. */
export declare class S3Lock {
  /** Bad input throws InvalidConfiguration naming the option. */
  constructor(options: S3LockOptions);
  /** Acquire, waiting while held (forever unless `timeoutMs`). */
  acquire(options?: AcquireOptions): Promise<HeldLock>;
  /** One attempt: null when held; the holder seen is then in `lastHolder`. */
  tryAcquire(): Promise<HeldLock | null>;
  readonly lastHolder: LockInfo | null;
  /** Who holds the lock now (null: free). */
  holder(): Promise<LockInfo | null>;
  /** Remove the lock whose ID is `lockId` (as `terraform force-unlock`); false when there was none. */
  forceUnlock(lockId: string): Promise<boolean>;
  /** Run `fn` holding the lock; released on every exit. `signal` aborts if a leased lock is lost. */
  using<T>(fn: (signal: AbortSignal, held: HeldLock) => Promise<T>, options?: AcquireOptions): Promise<T>;
}

/** A lock we hold. */
export declare class HeldLock {
  private constructor();
  readonly lockId: string;
  /** The lock object's current ETag (changes with each renewal). */
  readonly etag: string;
  readonly info: LockInfo;
  readonly leaseMs: number | null;
  /** Aborted with a LockLost (its `reason`: 'stolen' | 'gone' | 'renewal_failed') when the lock is lost. */
  readonly signal: AbortSignal;
  /** Generation (0 without a lease) and current ETag. */
  readonly fencingToken: { generation: number; etag: string };
  readonly released: boolean;
  /** True when deleted; false when already gone or released before. A lost lease rejects with LockLost. */
  release(): Promise<boolean>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Base class of every condlock error. */
export declare class LockError extends Error {
  /** The core's error code: held, timeout, lost, not_owned, invalid_config, transport... */
  readonly code: string;
}
export declare class LockHeld extends LockError {
  /** Node: an Apstra mutex's holder is its MutexTag (or Apstra's own blueprint lock). */
  readonly holder: LockInfo | MutexTag | BlueprintLockStatus | null;
}
export declare class LockTimeout extends LockError {
  readonly holder: LockInfo | MutexTag | BlueprintLockStatus | null;
  readonly waitedMs: number;
}
export declare class LockLost extends LockError {
  readonly reason: 'stolen' | 'gone' | 'renewal_failed' | string;
  readonly holder: LockInfo | null;
}
export declare class NotOwned extends LockError {
  readonly holder: LockInfo | null;
}
export declare class ConditionalWritesUnsupported extends LockError {
  readonly endpoint: string;
  readonly bucket: string;
}
export declare class TransportError extends LockError {
  /** Whether the last request may have reached the server. */
  readonly maybeSent: boolean;
  /** Whether retrying cannot help. */
  readonly permanent: boolean;
}
export declare class ServerError extends TransportError {
  /** The HTTP status of the last answer (null when there was none). */
  readonly status: number | null;
  /** The store's error code (e.g. `SlowDown`), null when none was given. */
  readonly awsCode: string | null;
}
/** The server refused the request for a reason retrying cannot fix. */
export declare class RequestRejected extends LockError {
  readonly status: number | null;
  readonly awsCode: string | null;
}
/** The credentials were refused or lack permission. */
export declare class AccessDenied extends RequestRejected {}
export declare class MalformedResponse extends LockError {}
export declare class InvalidConfiguration extends LockError {
  /** The option at fault, as spelled in the options (e.g. `bucket`, `leaseMs`). */
  readonly field: string | null;
}
/** The caller's AbortSignal aborted; `name` is 'AbortError'. */
export declare class LockCancelled extends LockError {}
/** The API was used out of order, or the addon failed internally. */
export declare class LockMisuse extends LockError {}

// ---------------------------------------------------------------- Node only: Apstra

/** A blueprint mutex tag in Apstra's design catalog: who holds the mutex. */
export interface MutexTag {
  /** The tag ID (what `forceUnlockTag` takes). */
  id: string;
  blueprintId: string;
  /** `blueprint <ID> locked`. */
  label: string;
  /** The description as stored: the holder's message (and condlock's token). */
  description: string;
  /** The description without condlock's holder token. */
  message: string;
  /** condlock's holder token, or null for a tag condlock did not create. */
  token: string | null;
  createdAt: string | null;
  /** Age when read, or null when the creation time is unknown. */
  ageMs: number | null;
  carriesCondlockToken: boolean;
}

/** Apstra's own blueprint lock (web UI), when it keeps a mutex from being taken. */
export interface BlueprintLockStatus {
  lockStatus: string;
  lockType: string;
  username: string;
  firstName: string;
  lastName: string;
  userId: string;
  description: string;
}

/** Server options; `url`, `username`, `password` default to APSTRA_URL, APSTRA_USER, APSTRA_PASS. */
export interface ApstraServerOptions {
  /** May embed percent-encoded credentials and a path prefix. */
  url?: string;
  username?: string;
  /** Never shown in any message or log. */
  password?: string;
  /** Default true (or APSTRA_TLS_VALIDATION_DISABLED). */
  verifyTls?: boolean;
  /** Per request (default 10 s, or APSTRA_API_TIMEOUT). */
  requestTimeoutMs?: number;
  /** Transport hook, as for S3Lock. */
  fetch?: typeof fetch;
}

/** An Apstra server and its login session, with the administration of blueprint mutexes. */
export declare class ApstraClient {
  constructor(options?: ApstraServerOptions);
  listMutexes(): Promise<MutexTag[]>;
  /** The mutexes older than `olderThanMs`. */
  staleMutexes(olderThanMs: number): Promise<MutexTag[]>;
  /** Delete the mutex tag with this ID: the tag deleted, or null. */
  forceUnlockTag(tagId: string): Promise<MutexTag | null>;
}

export interface ApstraMutexOptions extends ApstraServerOptions {
  blueprintId: string;
  /** Holder message template (default APSTRA_BLUEPRINT_MUTEX_MESSAGE, else `locked by user@host (condlock) at $DATE`). */
  message?: string;
  /** First wait for Apstra's own blueprint lock (default true, as the SDK). */
  waitForBlueprintUnlock?: boolean;
  maxPollIntervalMs?: number;
  /** Share a client (its server and session); then no server options. */
  client?: ApstraClient;
  logger?: (event: LogEvent) => void;
}

/** The mutex of one Apstra blueprint: the tag `terraform apply` with the Apstra provider takes. */
export declare class ApstraMutex {
  constructor(options: ApstraMutexOptions);
  acquire(options?: AcquireOptions): Promise<HeldMutex>;
  tryAcquire(): Promise<HeldMutex | null>;
  readonly lastHolder: MutexTag | BlueprintLockStatus | null;
  holder(): Promise<MutexTag | null>;
  /** Delete this blueprint's mutex: the tag deleted, or null. */
  forceUnlock(): Promise<MutexTag | null>;
  using<T>(fn: (signal: AbortSignal, held: HeldMutex) => Promise<T>, options?: AcquireOptions): Promise<T>;
}

/** A blueprint mutex we hold. */
export declare class HeldMutex {
  private constructor();
  readonly tagId: string;
  readonly blueprintId: string;
  readonly label: string;
  readonly description: string;
  readonly token: string;
  /** True when our tag was recognised by its token after a lost response. */
  readonly recovered: boolean;
  readonly released: boolean;
  /** Never aborted (a mutex tag has no lease); there for `using()`. */
  readonly signal: AbortSignal;
  release(): Promise<boolean>;
  [Symbol.asyncDispose](): Promise<void>;
}
