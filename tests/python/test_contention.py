"""Mutual exclusion across processes and across asyncio tasks."""

from __future__ import annotations

import asyncio
import multiprocessing

import helpers
import pytest


@pytest.fixture
def endpoint(atomic_endpoint):
    """These tests count holders: they need a store whose conditional PUT is
    atomic, as S3's is. Stock moto_server is not (check-then-write on a
    threaded server), see conftest.atomic_endpoint."""
    return atomic_endpoint


def _check_no_overlap(lines: list[str], expected_rounds: int) -> None:
    inside = None
    entries = 0
    for line in lines:
        kind, pid, i, _ = line.split()
        if kind == "enter":
            assert inside is None, f"two holders at once: {inside} and {pid}/{i}"
            inside = (pid, i)
            entries += 1
        else:
            assert inside == (pid, i), f"leave without enter: {line}"
            inside = None
    assert inside is None
    assert entries == expected_rounds


def test_processes_never_hold_at_once(child_env, tmp_path):
    log_path = tmp_path / "holders.log"
    workers, rounds = 4, 3
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=helpers.contend, args=(child_env, str(log_path), rounds, 0.05))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    lines = log_path.read_text().splitlines()
    _check_no_overlap(lines, workers * rounds)
    # Several processes really took part.
    assert len({line.split()[1] for line in lines}) == workers


def test_asyncio_tasks_never_hold_at_once(make_lock):
    inside = 0
    max_inside = 0
    entered = []
    shared = make_lock()

    async def worker(n: int, lock) -> None:
        nonlocal inside, max_inside
        for _ in range(2):
            async with lock:
                inside += 1
                max_inside = max(max_inside, inside)
                entered.append(n)
                await asyncio.sleep(0.03)
                inside -= 1

    async def main() -> None:
        # Half the tasks share one S3Lock object, half have their own.
        tasks = [worker(n, shared if n % 2 else make_lock()) for n in range(6)]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)

    asyncio.run(main())
    assert max_inside == 1
    assert sorted(entered) == sorted(list(range(6)) * 2)
    assert shared.holder() is None
