"""A program that used condlock ends cleanly: no crash while the interpreter
shuts down. At exit CPython ends any other thread that asks for the GIL with
pthread_exit; condlock's own threads (the one delivering asyncio results and
log records, the lost-lock watcher) must not be among them. Before the fix,
about one asyncio run in five aborted (SIGABRT) after its work was done, and
a leased lock's watcher could crash the process (SIGSEGV)."""

from __future__ import annotations

import subprocess

from conftest import PYTHON

RUNS = 20  # each crashed with a probability of about 0.2 before the fix

ASYNC_TASKS = """
import asyncio, logging, sys
import condlock
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

async def task(i):
    lock = condlock.S3Lock(**KW, info=f"task-{i}")
    async with lock:
        await asyncio.sleep(0.01)

async def main():
    await asyncio.gather(*(task(i) for i in range(3)))

asyncio.run(main())
print("done")
"""

LEASE = """
import condlock
lock = condlock.S3Lock(**KW, lease=30, takeover=True, on_lost=lambda reason: None)
with lock:
    pass
print("done")
"""


def _runs(child_env, script: str) -> None:
    kwargs = ("KW = dict(bucket=%r, key=%r, region='us-east-1', endpoint=%r, "
              "access_key_id=%r, secret_access_key=%r, max_poll_interval=0.05)\n") % (
        child_env["CONDLOCK_TEST_BUCKET"], child_env["CONDLOCK_TEST_KEY"],
        child_env["CONDLOCK_TEST_ENDPOINT"], child_env["CONDLOCK_TEST_ACCESS_KEY"],
        child_env["CONDLOCK_TEST_SECRET_KEY"])
    failures = []
    for _ in range(RUNS):
        out = subprocess.run([PYTHON, "-c", kwargs + script], env=child_env,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0 or "done" not in out.stdout:
            failures.append((out.returncode, out.stderr[-2000:]))
    assert not failures, f"{len(failures)} of {RUNS} runs failed, first: {failures[0]}"


def test_asyncio_tasks_exit_cleanly(child_env, endpoint):
    _runs(child_env, ASYNC_TASKS)


def test_a_leased_lock_with_a_lost_callback_exits_cleanly(child_env, endpoint):
    _runs(child_env, LEASE)
