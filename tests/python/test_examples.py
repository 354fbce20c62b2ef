"""Every script in examples/ runs against the local servers (moto, the Apstra
emulator), configured only through the environment a user would set (AWS_*,
APSTRA_*), does what it says, and passes `mypy --strict` (with condlock's
types from the installed package: see test_readme_types.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import (
    ACCESS_KEY,
    APSTRA_PASS,
    APSTRA_USER,
    BUCKET,
    PYTHON,
    REPO,
    SECRET_KEY,
)

EXAMPLES = REPO / "examples"


@pytest.fixture
def endpoint(atomic_endpoint: str) -> str:
    # s3_async.py's output is checked for exclusion: moto serving one request
    # at a time (stock moto can let two racing conditional PUTs both succeed).
    return atomic_endpoint


@pytest.fixture
def aws_env(endpoint: str) -> dict:
    env = dict(os.environ)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        env.pop(var, None)
    env.update(
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def apstra_env(apstra_emulator) -> dict:
    env = dict(os.environ)
    env.update(APSTRA_URL=apstra_emulator.url, APSTRA_USER=APSTRA_USER,
               APSTRA_PASS=APSTRA_PASS, PYTHONUNBUFFERED="1")
    return env


def run(example: str, args: list[str], env: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(EXAMPLES / example), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def s3_migration(aws_env, key, make_lock, **_):
    out = run("s3_migration.py", ["--bucket", BUCKET, "--key", key, "--",
                                   PYTHON, "-c", "print('migrating')"], aws_env)
    assert out.returncode == 0, out.stderr
    assert "holding" in out.stdout and "migrating" in out.stdout
    assert make_lock().holder() is None


def s3_async(aws_env, key, make_lock, **_):
    out = run("s3_async.py", ["--bucket", BUCKET, "--key", key, "--tasks", "3",
                              "--work", "0.05"], aws_env)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "the lock" in line]
    assert len(lines) == 6, out.stdout
    # Exclusion: each "holds" is followed by the same task's "releases".
    for holds, releases in zip(lines[::2], lines[1::2]):
        name = holds.split()[0]
        assert holds == f"{name} holds the lock" and releases == f"{name} releases the lock"
    assert make_lock().holder() is None


def cron_lease(aws_env, key, make_lock, **_):
    args = ["--bucket", BUCKET, "--key", key, "--steps", "3", "--step-seconds", "0.01"]
    out = run("cron_lease.py", args, aws_env)
    assert out.returncode == 0, out.stderr
    assert "done: 3 steps under generation 1" in out.stdout
    # While another run holds the lock, a run does nothing and says why.
    with make_lock(info="the previous run"):
        out = run("cron_lease.py", args, aws_env)
        assert out.returncode == 0, out.stderr
        assert "another run holds the lock" in out.stdout and "the previous run" in out.stdout
    assert make_lock().holder() is None


def apstra_deploy(apstra_env, blueprint, make_mutex, **_):
    out = run("apstra_deploy.py", ["--blueprint", blueprint], apstra_env)
    assert out.returncode == 0, out.stderr
    assert f"deploying blueprint {blueprint}" in out.stdout and "deployed" in out.stdout
    assert make_mutex().holder() is None


def stale_locks(apstra_env, blueprint, make_mutex, **_):
    held = make_mutex(message="a crashed apply").acquire()
    out = run("stale_locks.py", ["--older-than", "0"], apstra_env)
    assert out.returncode == 0, out.stderr
    assert f"blueprint {blueprint}: locked for" in out.stdout and "a crashed apply" in out.stdout
    assert make_mutex().holder() is not None, "listing must not remove anything"
    out = run("stale_locks.py", ["--older-than", "0", "--force-unlock"], apstra_env)
    assert out.returncode == 0, out.stderr
    assert "force-unlocked" in out.stdout
    assert make_mutex().holder() is None
    held.release()


CHECKS: dict[str, Callable[..., None]] = {
    "s3_migration.py": s3_migration,
    "s3_async.py": s3_async,
    "cron_lease.py": cron_lease,
    "apstra_deploy.py": apstra_deploy,
    "stale_locks.py": stale_locks,
}


def test_every_example_is_run_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CHECKS)


@pytest.mark.parametrize("example", sorted(CHECKS))
def test_example_runs(example, request):
    check = CHECKS[example]
    names = check.__code__.co_varnames[: check.__code__.co_argcount]
    check(**{name: request.getfixturevalue(name) for name in names})


def test_examples_pass_mypy_strict():
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(EXAMPLES)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
