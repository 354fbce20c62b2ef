// Compiled with `tsc --noEmit` by scripts/test-node.sh: the declarations
// describe the API as the README uses it.
import { ApstraClient, ApstraMutex, type MutexTag, S3Lock, HeldLock, LockError, LockTimeout, LockLost, InvalidConfiguration, type WaitEvent } from 'condlock';

async function main(): Promise<number> {
  const lock = new S3Lock({
    bucket: 'my-terraform-state',
    key: 'prod/terraform.tfstate',
    leaseMs: 30_000,
    credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b', expiration: new Date() }),
    logger: (e) => console.debug(e.kind, e.message),
  });
  {
    await using held = await lock.acquire({ timeoutMs: 5_000, onWait: (e: WaitEvent) => console.log(e.holder?.who, e.elapsedMs) });
    const token: { generation: number; etag: string } = held.fencingToken;
    held.signal.throwIfAborted();
    console.log(held.lockId, token.generation, held.leaseMs ?? 0);
  }
  const maybe: HeldLock | null = await lock.tryAcquire();
  if (maybe === null) console.log(lock.lastHolder?.id);
  try {
    return await lock.using(async (signal) => (signal.aborted ? 0 : 1));
  } catch (e) {
    if (e instanceof LockTimeout) return e.waitedMs;
    if (e instanceof LockLost) return e.reason.length;
    if (e instanceof InvalidConfiguration) return (e.field ?? '').length;
    if (e instanceof LockError) return e.code.length;
    throw e;
  }
}
async function apstra(): Promise<string[]> {
  const client = new ApstraClient({ url: 'https://apstra.example', username: 'admin', password: 'x' });
  const mutex = new ApstraMutex({ blueprintId: 'bp-1', client, message: 'from CI' });
  await using held = await mutex.acquire({ timeoutMs: 1_000 });
  const stale: MutexTag[] = await client.staleMutexes(3_600_000);
  return [held.tagId, ...stale.map((t) => t.id)];
}
function terraformsTable(): S3Lock {
  return new S3Lock({ bucket: 'b', key: 'k', dynamodbTable: 'tf-locks', dynamodbEndpoint: 'http://127.0.0.1:8000', useLockfile: false });
}
void main;
void terraformsTable;
void apstra;
