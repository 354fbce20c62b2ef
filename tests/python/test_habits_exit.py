"""What a process still holds when it ends: released at interpreter exit with
a warning; on SIGTERM only after `condlock.release_on_sigterm()`. Real
subprocesses against moto."""

from __future__ import annotations

import signal
import subprocess
import textwrap

import pytest

from conftest import HERE, PYTHON

PREAMBLE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import helpers
    """
)


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "holder.py"
    path.write_text(PREAMBLE.format(here=str(HERE)) + textwrap.dedent(body))
    return str(path)


def _run(child_env, script: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, script], env=child_env, capture_output=True, text=True,
                          timeout=120)


def _lock_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("HELD "))
    return line.split()[1]


def test_a_script_that_exits_holding_a_lock_releases_it_with_a_warning(
    tmp_path, child_env, make_lock
):
    script = _script(tmp_path, """
        import os
        lock = helpers.lock_from_env()
        held = lock.acquire(timeout=30)
        print("HELD", held.lock_id, flush=True)
        second = helpers.lock_from_env(key=os.environ["CONDLOCK_TEST_KEY"] + "-2")
        print("SECOND", second.acquire(timeout=30).lock_id, flush=True)
        # ...and the program forgets to release both.
    """)
    out = _run(child_env, script)
    assert out.returncode == 0, out.stderr
    lock_id = _lock_id(out.stdout)
    lock = make_lock()
    assert lock.holder() is None, out.stderr
    url = f"s3://{lock.bucket}/{lock.lock_key}"
    assert f"released {url} (ID {lock_id}) at exit" in out.stderr, out.stderr
    assert "release it in the program" in out.stderr
    second = make_lock(key=lock.key + "-2")
    assert second.holder() is None, out.stderr
    second_id = next(x.split()[1] for x in out.stdout.splitlines() if x.startswith("SECOND"))
    assert f"(ID {second_id}) at exit" in out.stderr, out.stderr


def test_a_lock_dropped_inside_a_function_is_released_at_exit_too(
    tmp_path, child_env, make_lock
):
    # A lock without a lease never expires: condlock keeps what the program
    # dropped and gives it back at exit instead of leaving it held.
    script = _script(tmp_path, """
        import gc

        def main():
            held = helpers.lock_from_env().acquire(timeout=30)
            print("HELD", held.lock_id, flush=True)

        main()
        gc.collect()
        raise SystemExit(3)
    """)
    out = _run(child_env, script)
    assert out.returncode == 3, out.stderr
    lock_id = _lock_id(out.stdout)
    assert make_lock().holder() is None, out.stderr
    assert f"(ID {lock_id}) at exit" in out.stderr, out.stderr


def test_a_mutex_held_at_exit_is_released(tmp_path, apstra_emulator, blueprint, make_mutex):
    from conftest import APSTRA_PASS, APSTRA_USER

    script = _script(tmp_path, f"""
        import condlock
        m = condlock.ApstraMutex({blueprint!r}, url={apstra_emulator.url!r},
                                 username={APSTRA_USER!r}, password={APSTRA_PASS!r})
        print("HELD", m.acquire(timeout=30).tag_id, flush=True)
    """)
    out = subprocess.run([PYTHON, script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tag_id = _lock_id(out.stdout)
    assert make_mutex().holder() is None, out.stderr
    assert f"(ID {tag_id}) at exit" in out.stderr, out.stderr


def _start_holder(child_env, script: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([PYTHON, script], env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("HELD "), line + proc.stderr.read()
    return proc, line.split()[1]


HOLD_AND_SLEEP = """
    lock = helpers.lock_from_env()
    held = lock.acquire(timeout=30)
    print("HELD", held.lock_id, flush=True)
    import time
    while True:
        time.sleep(0.1)
"""


def test_sigterm_after_release_on_sigterm_releases_and_still_terminates(
    tmp_path, child_env, make_lock
):
    script = _script(tmp_path, "import condlock\ncondlock.release_on_sigterm()\n"
                     + textwrap.dedent(HOLD_AND_SLEEP))
    proc, lock_id = _start_holder(child_env, script)
    assert make_lock().holder().id == lock_id
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    # Terminated by SIGTERM as by default (a shell shows 143).
    assert proc.returncode == -signal.SIGTERM, stderr
    assert make_lock().holder() is None, stderr
    assert f"(ID {lock_id}) on SIGTERM" in stderr, stderr


def test_sigterm_chains_to_the_previous_handler(tmp_path, child_env, make_lock):
    script = _script(tmp_path, textwrap.dedent("""
        import signal, sys, condlock

        def previous(signum, frame):
            print("PREVIOUS", flush=True)
            sys.exit(7)

        signal.signal(signal.SIGTERM, previous)
        condlock.release_on_sigterm()
        condlock.release_on_sigterm()  # twice: still one release, one chain
    """) + textwrap.dedent(HOLD_AND_SLEEP))
    proc, lock_id = _start_holder(child_env, script)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 7, stderr
    assert stdout.count("PREVIOUS") == 1
    assert make_lock().holder() is None, stderr
    assert stderr.count(f"(ID {lock_id}) on SIGTERM") == 1, stderr


def test_sigterm_by_default_ends_the_process_and_leaves_the_lock(tmp_path, child_env, make_lock):
    # Documented default: SIGTERM kills the process at once; the lock (without
    # a lease) stays until force-unlocked.
    script = _script(tmp_path, HOLD_AND_SLEEP)
    proc, lock_id = _start_holder(child_env, script)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM
    lock = make_lock()
    assert lock.holder().id == lock_id
    assert lock.force_unlock(lock_id) is True


@pytest.mark.parametrize("mode", ["release", "with"])
def test_nothing_is_said_at_exit_when_the_program_released(tmp_path, child_env, mode):
    body = {
        "release": "lock = helpers.lock_from_env()\nlock.acquire()\nlock.release()\n",
        "with": "with helpers.lock_from_env():\n    pass\n",
    }[mode]
    out = _run(child_env, _script(tmp_path, body))
    assert out.returncode == 0, out.stderr
    assert "at exit" not in out.stderr, out.stderr


def test_a_held_lock_that_release_found_stolen_is_not_reported_at_collection(
    tmp_path, child_env
):
    # After NotOwned the held lock no longer claims the lock: collecting it
    # says nothing (it used to warn that a held lock was dropped). A leased
    # lock dropped unreleased is the control: its warning does appear.
    script = _script(tmp_path, """
        import gc, os
        import condlock
        lock = helpers.lock_from_env()
        held = lock.acquire(timeout=30)
        helpers.lock_from_env().force_unlock(held.lock_id)
        thief = helpers.lock_from_env(who="thief@host").acquire(blocking=False)
        try:
            held.release()
        except condlock.NotOwned:
            print("NOT OWNED", flush=True)
        stolen_id = held.lock_id
        del held
        lock._held = None
        control = helpers.lock_from_env(key=os.environ["CONDLOCK_TEST_KEY"] + "-lease",
                                        lease=30).acquire(timeout=30)
        control_id = control.lock_id
        del control
        gc.collect()
        # A synchronous call returns once the records queued before it are
        # handled: the collection's records are in stderr by now.
        helpers.lock_from_env().holder()
        print("STOLEN", stolen_id, "CONTROL", control_id, flush=True)
        thief.release()
    """)
    out = _run(child_env, script)
    assert out.returncode == 0, out.stderr
    assert "NOT OWNED" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("STOLEN"))
    stolen_id, control_id = line.split()[1], line.split()[3]
    collected = [x for x in out.stderr.splitlines() if "garbage-collected" in x]
    assert any(control_id in x for x in collected), out.stderr
    assert not any(stolen_id in x for x in collected), out.stderr
