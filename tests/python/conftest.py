"""Fixtures: a moto S3 server on a free loopback port, a bucket, unique keys."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACCESS_KEY = "AKIDCONDLOCKTEST"
# Distinctive so a leak anywhere is easy to spot.
SECRET_KEY = "sEcReT-condlock-9f8e7d6c5b4a-DO-NOT-PRINT"
BUCKET = "condlock-py"


class UrllibTransport:
    """A synchronous user transport over urllib: records what it sent (and
    from which threads), and can be told to fail (`dark`)."""

    def __init__(self):
        self.calls = []
        self.threads = set()
        self.dark = False  # raise ConnectionRefusedError (an OSError)

    def __call__(self, method, url, headers, body):
        self.calls.append((method, url, dict(headers)))
        self.threads.add(threading.get_ident())
        if self.dark:
            raise ConnectionRefusedError("the store went away")
        req = urllib.request.Request(url, data=body or None, method=method)
        for k, v in headers:
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, list(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, list(e.headers.items()), e.read()


def release_in_forked_child(lease, timeout: float = 10.0) -> str:
    """Fork; the child calls `lease.release()` and reports what
    happened. Returns the child's report, or fails if it did not answer (hung)
    within `timeout` seconds."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without cleanup
        code = 1
        try:
            os.close(r)
            try:
                report = f"released {lease.release()}"
            except Exception as e:  # noqa: BLE001 - reported to the parent
                report = f"{type(e).__name__}: {e}"
            os.write(w, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            pytest.fail(f"the forked child's release() hung for {timeout}s")
        report = os.read(r, 65536).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moto_binary() -> str:
    explicit = os.environ.get("CONDLOCK_MOTO_SERVER")
    if explicit:
        return explicit
    candidate = REPO / ".venv" / "bin" / "moto_server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("moto_server")
    if not found:
        pytest.exit("moto_server not found: run scripts/setup.sh", returncode=2)
    return found


def _serve_moto(argv: list[str], what: str):
    """Starts a moto server listening on a free port (`argv` + `-p PORT`),
    creates the bucket, yields its base URL, stops it afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [*argv, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.exit(f"{what} did not start", returncode=2)
            time.sleep(0.05)
    # Create the bucket with an unsigned PUT (moto does not check signatures).
    req = urllib.request.Request(f"{url}/{BUCKET}", method="PUT", data=b"")
    urllib.request.urlopen(req, timeout=10).close()
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def endpoint():
    """A moto server for the whole session; yields its base URL."""
    yield from _serve_moto([_moto_binary()], "moto_server")


@pytest.fixture(scope="session")
def atomic_endpoint():
    """moto serving one request at a time (tests/moto_atomic.py); yields its
    base URL. For tests that count exclusion: stock moto_server checks a
    conditional PUT and then writes, on a threaded server, so two racing
    `If-None-Match: *` PUTs can both get 200 -- a double hold that real S3
    never gives. A test module opts in by overriding `endpoint`:
    `@pytest.fixture` `def endpoint(atomic_endpoint): return atomic_endpoint`."""
    python = os.environ.get("CONDLOCK_MOTO_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    if not Path(python).exists():
        pytest.exit(f"{python} (with moto) not found: run scripts/setup.sh", returncode=2)
    script = str(REPO / "tests" / "moto_atomic.py")
    yield from _serve_moto([python, script], "moto_atomic.py")


@pytest.fixture
def key() -> str:
    """A state key no other test uses."""
    return f"tests/{uuid.uuid4().hex}/terraform.tfstate"


@pytest.fixture
def make_lock(endpoint, key):
    """Factory: an S3Lock on this test's key with the test credentials."""
    import condlock

    def make(**overrides):
        kwargs = dict(
            bucket=BUCKET,
            key=key,
            region="us-east-1",
            endpoint=endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            max_poll_interval=0.3,
        )
        kwargs.update(overrides)
        return condlock.S3Lock(**kwargs)

    return make


@pytest.fixture
def child_env(endpoint, key):
    """Environment for helper subprocesses (same interpreter, same wheel)."""
    env = dict(os.environ)
    env.update(
        CONDLOCK_TEST_ENDPOINT=endpoint,
        CONDLOCK_TEST_KEY=key,
        CONDLOCK_TEST_BUCKET=BUCKET,
        CONDLOCK_TEST_ACCESS_KEY=ACCESS_KEY,
        CONDLOCK_TEST_SECRET_KEY=SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    return env


PYTHON = sys.executable
HERE = Path(__file__).resolve().parent


# --- Apstra emulator (tests/apstra_emulator.py, standard library only) --------

APSTRA_USER = "ci-admin"
# Distinctive so a leak anywhere is easy to spot.
APSTRA_PASS = "pAsS-apstra-7e6d5c4b3a-DO-NOT-PRINT"
APSTRA_OTHER_USER = "ops"
APSTRA_OTHER_PASS = "ops-password-1"


class ApstraEmulator:
    """A running emulator: `url`, and its control API (`/_emulator/...`)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def control(self, method: str, path: str, body=None):
        import json

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator{path}", method=method, data=data)
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def state(self) -> dict:
        return self.control("GET", "/state")

    def tags(self, blueprint: str) -> list:
        label = f"blueprint {blueprint} locked"
        return [t for t in self.state()["tags"] if t["label"] == label]


@pytest.fixture(scope="session")
def apstra_emulator():
    """The Apstra emulator for the whole session (two users)."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "apstra_emulator.py"), "--port", "0",
         "--user", f"{APSTRA_USER}:{APSTRA_PASS}",
         "--user", f"{APSTRA_OTHER_USER}:{APSTRA_OTHER_PASS}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        pytest.exit(f"the Apstra emulator did not start: {line!r}", returncode=2)
    emu = ApstraEmulator(f"http://127.0.0.1:{int(line.split()[1])}")
    yield emu
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def blueprint(apstra_emulator) -> str:
    """A blueprint no other test uses, created (unlocked) on the emulator."""
    bp = f"bp-{uuid.uuid4().hex[:16]}"
    apstra_emulator.control("PUT", f"/blueprints/{bp}", {"lock_status": "unlocked"})
    return bp


@pytest.fixture
def make_mutex(apstra_emulator, blueprint):
    """Factory: an ApstraMutex on this test's blueprint with the test credentials."""
    import condlock

    def make(**overrides):
        kwargs = dict(
            url=apstra_emulator.url,
            username=APSTRA_USER,
            password=APSTRA_PASS,
            max_poll_interval=0.2,
        )
        kwargs.update(overrides)
        bp = kwargs.pop("blueprint_id", blueprint)
        return condlock.ApstraMutex(bp, **kwargs)

    return make
