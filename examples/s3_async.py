"""Several asyncio tasks take turns on one S3 lock without blocking the event loop.

Each task waits at most --timeout seconds for the lock; a task that cannot get
it in time reports who held it. The same works across processes and machines,
and against Terraform.

    python examples/s3_async.py --bucket tfstate --key jobs/report --tasks 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from condlock import LockTimeout, S3Lock


async def worker(lock: S3Lock, name: str, timeout: float, work: float) -> bool:
    try:
        held = await lock.acquire_async(timeout=timeout)
    except LockTimeout as e:
        print(f"{name}: gave up after {e.waited or 0:.1f}s; held by {e.holder}", flush=True)
        return False
    async with held:  # leaving the block releases it, also on errors and cancellation
        print(f"{name} holds the lock", flush=True)
        await asyncio.sleep(work)  # the work; other tasks keep running
        print(f"{name} releases the lock", flush=True)
    return True


async def run(args: argparse.Namespace) -> int:
    # One S3Lock object per task: each stands for an independent holder.
    results = await asyncio.gather(*(
        worker(S3Lock(bucket=args.bucket, key=args.key, info=f"task-{i}"),
               f"task-{i}", args.timeout, args.work)
        for i in range(args.tasks)
    ))
    return 0 if all(results) else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--work", type=float, default=0.2, help="seconds each task holds the lock")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each task may wait")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
