"""Code run in child processes (multiprocessing workers and subprocess scripts)."""

from __future__ import annotations

import os
import sys
import time


def lock_from_env(**overrides):
    import condlock

    kwargs = dict(
        bucket=os.environ["CONDLOCK_TEST_BUCKET"],
        key=os.environ["CONDLOCK_TEST_KEY"],
        region="us-east-1",
        endpoint=os.environ["CONDLOCK_TEST_ENDPOINT"],
        access_key_id=os.environ["CONDLOCK_TEST_ACCESS_KEY"],
        secret_access_key=os.environ["CONDLOCK_TEST_SECRET_KEY"],
        max_poll_interval=0.2,
    )
    kwargs.update(overrides)
    return condlock.S3Lock(**kwargs)


def contend(env: dict, log_path: str, rounds: int, hold: float) -> None:
    """multiprocessing worker: take the lock `rounds` times, logging entry and
    exit with O_APPEND writes, holding it for `hold` seconds each time."""
    os.environ.update(env)
    lock = lock_from_env()
    me = os.getpid()
    for i in range(rounds):
        with lock:
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, f"enter {me} {i} {time.time():.6f}\n".encode())
                time.sleep(hold)
                os.write(fd, f"leave {me} {i} {time.time():.6f}\n".encode())
            finally:
                os.close(fd)


def hold_forever() -> None:
    """Script mode `hold`: take the lock in a `with` block and sleep until SIGINT."""
    lock = lock_from_env()
    with lock as lease:
        print(f"HELD {lease.lock_id}", flush=True)
        while True:
            time.sleep(0.1)


def wait_forever() -> None:
    """Script mode `wait`: wait for a lock someone else holds, until SIGINT."""
    lock = lock_from_env()
    print("WAITING", flush=True)
    lock.acquire()
    print("ACQUIRED", flush=True)


if __name__ == "__main__":
    {"hold": hold_forever, "wait": wait_forever}[sys.argv[1]]()
