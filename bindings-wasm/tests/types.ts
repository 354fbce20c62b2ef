// Compiled (not run) by `tsc -p tests` in scripts/test-browser.sh: the
// declarations in index.d.ts describe the API as the tests and the README
// use it.

import {
  S3Lock, HeldLock, LockInfo, WaitEvent, LockError, LockHeld, LockTimeout, LockLost, NotOwned,
  InvalidConfiguration, TransportError, ServerError, AccessDenied, LockCancelled, Credentials,
  CredentialProvider, LogEvent,
} from '../index.js';

declare const provider: CredentialProvider;

export async function example(): Promise<string | null> {
  const keys: Credentials = { accessKeyId: 'a', secretAccessKey: 'b', expiration: new Date() };
  const lock = new S3Lock({
    bucket: 'tfstate', key: 'envs/dev/terraform.tfstate', region: 'eu-west-1', credentials: keys,
    leaseMs: 30_000, verifyConditionalWrites: 'once', fetch: globalThis.fetch,
    logger: (e: LogEvent) => console.debug(e.kind, e.message),
  });
  const other = new S3Lock({ bucket: 'tfstate', key: 'k', credentials: provider });
  const paired = new S3Lock({
    bucket: 'tfstate', key: 'k', credentials: keys, dynamodbTable: 'tf-locks',
    dynamodbEndpoint: 'http://127.0.0.1:8000', useLockfile: false,
  });
  await paired.holder();
  const ac = new AbortController();
  const held: HeldLock = await lock.acquire({
    timeoutMs: 1000, signal: ac.signal, onWait: (e: WaitEvent) => console.log(e.holder?.who, e.elapsedMs),
  });
  {
    await using scoped = held;
    const token: { generation: number; etag: string } = scoped.fencingToken;
    console.log(scoped.lockId, scoped.etag, scoped.leaseMs ?? 0, scoped.released, token, scoped.signal.aborted);
  }
  const maybe: HeldLock | null = await other.tryAcquire();
  const last: LockInfo | null = other.lastHolder;
  const removed: boolean = await other.forceUnlock(last?.id ?? '');
  const result: number = await lock.using(async (signal, h) => (signal.aborted ? 0 : h.info.id.length));
  try {
    await lock.holder();
  } catch (e) {
    if (e instanceof LockHeld || e instanceof NotOwned) console.log(e.holder?.id);
    if (e instanceof LockTimeout) console.log(e.waitedMs);
    if (e instanceof LockLost) console.log(e.reason);
    if (e instanceof InvalidConfiguration) console.log(e.field);
    if (e instanceof ServerError || e instanceof AccessDenied) console.log(e.status, e.awsCode);
    if (e instanceof TransportError) console.log(e.maybeSent);
    if (e instanceof LockCancelled || e instanceof LockError) console.log(e.code, e.message);
  }
  return maybe ? String(removed && result > 0) : null;
}
