"""The ``condlock`` console script and ``python -m condlock`` from the
installed wheel: the same command-line program as the Rust binary, run
against moto. (The program itself is tested in core/cli/tests.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ACCESS_KEY, BUCKET, SECRET_KEY

SCRIPT = Path(sys.executable).with_name("condlock")


def run(args, env, timeout=60):
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def cli_env(endpoint):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    return env


def test_the_console_script_is_installed_and_shows_help():
    assert SCRIPT.exists(), f"{SCRIPT} was not installed with the wheel"
    r = run([str(SCRIPT), "--help"], dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "force-unlock" in r.stdout and "Exit status" in r.stdout


def test_status_sees_a_lock_held_from_python_and_exits_3(make_lock, endpoint, key):
    env = cli_env(endpoint)
    target = f"s3://{BUCKET}/{key}"
    free = run([str(SCRIPT), "status", target, "--json"], env)
    assert free.returncode == 0, free.stderr
    lock = make_lock(info="held from python")
    held = lock.acquire(blocking=False)
    try:
        r = run([sys.executable, "-m", "condlock", "status", target, "--json"], env)
        assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
        shown = json.loads(r.stdout)
        assert held.lock_id in json.dumps(shown), shown
        assert SECRET_KEY not in r.stdout + r.stderr
    finally:
        held.release()


def test_run_takes_the_lock_python_sees_it_and_it_is_released(make_lock, endpoint, key):
    env = cli_env(endpoint)
    target = f"s3://{BUCKET}/{key}"
    probe = (
        "import condlock, os, sys;"
        "l = condlock.S3Lock(bucket=os.environ['B'], key=os.environ['K'],"
        " endpoint=os.environ['AWS_ENDPOINT_URL'], access_key_id=os.environ['AWS_ACCESS_KEY_ID'],"
        " secret_access_key=os.environ['AWS_SECRET_ACCESS_KEY'], region='us-east-1');"
        "h = l.holder(); print('HELD' if h is not None else 'FREE'); sys.exit(7)"
    )
    env.update(B=BUCKET, K=key)
    r = run([str(SCRIPT), "run", target, "--", sys.executable, "-c", probe], env)
    assert r.returncode == 7, (r.returncode, r.stdout, r.stderr)
    assert "HELD" in r.stdout, r.stdout
    assert make_lock().holder() is None, "released after the command ended"
