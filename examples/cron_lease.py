"""Guard a cron job with a leased lock: one run at a time, and a run that dies
does not block the next ones forever.

The lock carries a lease renewed in the background; if this process is killed,
the lease runs out and the next run takes the lock over (`takeover=True`). If
the lock is lost while working (renewals failed, or someone force-unlocked it),
the job stops at its next step instead of running on unprotected. A run that
finds the lock held exits at once: the previous run is still working.

    python examples/cron_lease.py --bucket locks --key cron/nightly-report --steps 10
"""

from __future__ import annotations

import argparse
import sys
import time

from condlock import LockHeld, LockLost, LostReason, S3Lock


def report_loss(reason: LostReason) -> None:
    # Runs on condlock's thread as soon as the loss is known.
    print(f"lost the lock ({reason.kind}): {reason.message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--lease", type=float, default=30.0, help="lease, seconds")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--step-seconds", type=float, default=0.1)
    args = parser.parse_args(argv)

    lock = S3Lock(bucket=args.bucket, key=args.key, lease=args.lease, takeover=True,
                  on_lost=report_loss, info="nightly report")
    try:
        held = lock.acquire(blocking=False)
    except LockHeld as e:
        print(f"another run holds the lock, nothing to do: {e.holder}", flush=True)
        return 0
    try:
        with held:  # releases on leaving; raises LockLost there if it was lost
            for step in range(args.steps):
                if held.lost_event.is_set():
                    print(f"stopping at step {step}: the lock is no longer ours", flush=True)
                    return 1
                time.sleep(args.step_seconds)  # one step of the job
            generation, etag = held.fencing_token
            print(f"done: {args.steps} steps under generation {generation}", flush=True)
    except LockLost as e:
        print(f"the job finished, but the lock was lost: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
