"""Child processes for the lease tests (run as scripts).

    lease_holder.py hold LEASE          take the lock with a lease, print HELD, sleep
    lease_holder.py takeover LEASE      wait with takeover=True; print ACQUIRED <gen> <etag>
                                        and keep holding (renewing) until killed
"""

from __future__ import annotations

import sys
import time

from helpers import lock_from_env


def hold(lease: float) -> None:
    lock = lock_from_env(lease=lease)
    lease_obj = lock.acquire()
    print(f"HELD {lease_obj.lock_id} {lease_obj.generation}", flush=True)
    while True:
        time.sleep(0.1)


def takeover(lease: float) -> None:
    lock = lock_from_env(lease=lease, takeover=True)
    print("WAITING", flush=True)
    lease_obj = lock.acquire(timeout=60)
    print(f"ACQUIRED {lease_obj.generation} {lease_obj.etag}", flush=True)
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    {"hold": hold, "takeover": takeover}[sys.argv[1]](float(sys.argv[2]))
