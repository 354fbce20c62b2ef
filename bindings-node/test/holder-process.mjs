// A second process holding a lock: acquires it with the options given as
// JSON in argv[2], prints "HELD <lockId>", releases when stdin closes.
import { S3Lock } from '../index.mjs';

const lock = new S3Lock(JSON.parse(process.argv[2]));
const held = await lock.acquire({ timeoutMs: 30000 });
process.stdout.write(`HELD ${held.lockId}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  await held.release();
  process.exit(0);
});
