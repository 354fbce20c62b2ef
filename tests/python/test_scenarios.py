"""Replays the behaviour scenarios of tests/scenarios/*.json through the Python
binding's public API and its user-transport hook, in real time.

The format is described in tests/scenarios/README.md; the Rust core replays
the same files on a virtual clock (core/tests/scenarios.rs). Here every
request the binding sends goes to a scripted transport that checks it against
the scenario and returns the scripted reply. Waits are kept short
(``max_poll_interval``), so each scenario takes at most a second or two;
scenarios that need virtual time say so (``"bindings": ["rust"]``).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Optional

import pytest

import condlock

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CONDITIONAL = ("if-match", "if-none-match")
PLACEHOLDER = re.compile(r"^\$[A-Z_]+$")
# Short waits between attempts: real time passes here.
POLL = 0.05


def load() -> list:
    out = []
    for path in sorted(SCENARIOS.glob("*.json")):
        data = json.loads(path.read_text())
        for s in data if isinstance(data, list) else [data]:
            # A pending scenario specifies the right behaviour where the core
            # is known to differ: it must fail until that is fixed.
            pending = s.get("pending")
            if isinstance(pending, dict):  # pending for some bindings only
                pending = pending.get("python")
            marks = [pytest.mark.xfail(strict=True, reason=pending)] if pending else []
            out.append(pytest.param(s, id=f"{path.name}: {s['name']}", marks=marks))
    return out


def for_python(param) -> bool:
    return "python" in param.values[0].get("bindings", ["rust", "python"])


class ScriptMismatch(AssertionError):
    """A request differed from the script. Not an OSError: the binding
    re-raises it at once instead of retrying."""


class Item:
    """An exchange, or a sequence of exchanges that may happen one or more
    times (``"times": "any"`` or ``{"repeat": [...]}``)."""

    def __init__(self, index: int, v: dict) -> None:
        self.index = index
        if "repeat" in v:
            self.group, self.repeats = v["repeat"], True
        else:
            self.group, self.repeats = [v], v.get("times") == "any"
        self.pos = 0
        self.rounds = 0

    def complete(self) -> bool:
        # One whole round at least; a later round may stop part-way (the
        # operation can end between its exchanges, e.g. at a deadline).
        return self.repeats and self.rounds > 0


class ScriptedServer:
    """The transport: checks each request against the current step's
    exchanges and answers from the script."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.items: list = []
        self.step = ""
        self.failures: list = []
        self.vars: dict = {}
        self.last_reply_at: Optional[float] = None
        self.sent: list = []
        self.closed = False

    # -- placeholders -------------------------------------------------------

    def substitute(self, v: Any) -> Any:
        if isinstance(v, str):
            for k in sorted(self.vars):
                v = v.replace(k, self.vars[k])
            return v
        if isinstance(v, list):
            return [self.substitute(x) for x in v]
        if isinstance(v, dict):
            return {k: self.substitute(x) for k, x in v.items()}
        return v

    def matches_text(self, expected: str, actual: str) -> bool:
        if PLACEHOLDER.match(expected) and expected not in self.vars:
            self.vars[expected] = actual  # first sight binds it
            return True
        return self.substitute(expected) == actual

    def matches_value(self, expected: Any, actual: Any) -> bool:
        if isinstance(expected, str) and isinstance(actual, str):
            return self.matches_text(expected, actual)
        if isinstance(expected, dict) and isinstance(actual, dict):
            return all(self.matches_value(v, actual.get(k)) for k, v in expected.items())
        return expected == actual

    # -- checking -----------------------------------------------------------

    def check(self, expected: dict, method: str, path: str, headers: dict, body: bytes) -> Optional[str]:
        if "method" in expected and expected["method"] != method:
            return f"method: expected {expected['method']}, got {method}"
        if "path" in expected and expected["path"] != path:
            return f"path: expected {expected['path']}, got {path}"
        want_headers = expected.get("headers", {})
        for name in CONDITIONAL:
            want, got = want_headers.get(name), headers.get(name)
            if want is None and got is not None:
                return f"{name}: expected none, got {got!r}"
            if want is not None and got is None:
                return f"{name}: expected {want!r}, got none"
            if want is not None and not self.matches_text(want, got):
                return f"{name}: expected {want!r}, got {got!r}"
        for name, want in want_headers.items():
            if name in CONDITIONAL:
                continue
            got = headers.get(name)
            if got is None or not self.matches_text(want, got):
                return f"{name}: expected {want!r}, got {got!r}"
        if "body" in expected:
            try:
                parsed = json.loads(body)
            except ValueError as e:
                return f"body: expected JSON, got {body!r} ({e})"
            for k, want in expected["body"].items():
                got = parsed.get(k) if isinstance(parsed, dict) else None
                if not self.matches_value(want, got):
                    return f"body field {k}: expected {want!r}, got {got!r}"
        if "delay_at_least" in expected:
            since = time.monotonic() - (self.last_reply_at or 0.0)
            if since < expected["delay_at_least"]:
                return (f"sent {since:.3f}s after the previous reply, expected at least "
                        f"{expected['delay_at_least']}s")
        return None

    def fail(self, why: str) -> None:
        msg = f"{self.step}: {why}"
        self.failures.append(msg)
        raise ScriptMismatch(msg)

    def __call__(self, method: str, url: str, headers, body: bytes):
        with self.mutex:
            if self.closed:
                # A leftover background request after the scenario ended.
                raise ConnectionRefusedError("the scenario is over")
            u = urllib.parse.urlsplit(url)
            path = u.path + (f"?{u.query}" if u.query else "")
            hdrs = {k.lower(): v for k, v in headers}
            body = bytes(body or b"")
            described = f"{method} {path}" + "".join(
                f" {n}: {hdrs[n]}" for n in CONDITIONAL if n in hdrs
            ) + (f" body {body.decode(errors='replace')}" if body else "")
            self.sent.append(described)
            if method == "PUT":
                self.vars["$OUR_BODY"] = body.decode()
            while True:
                if not self.items:
                    self.fail(f"unexpected request (the script has no more exchanges): {described}")
                item = self.items[0]
                exchange = item.group[item.pos]
                expected = exchange.get("request", {})
                diff = self.check(expected, method, path, hdrs, body)
                if diff is None:
                    break
                if item.complete():
                    self.items.pop(0)
                    continue
                self.fail(f"exchange {item.index}: {diff}\n  expected {json.dumps(expected)}\n"
                          f"  sent     {described}")
            item.pos += 1
            if item.pos == len(item.group):
                item.pos = 0
                item.rounds += 1
                if not item.repeats:
                    self.items.pop(0)
            reply = exchange.get("reply", {})
            if "advance" in reply:  # a slow server
                time.sleep(reply["advance"])
            self.last_reply_at = time.monotonic()
            fail = reply.get("fail")
            if fail == "refused":
                raise ConnectionRefusedError("scripted: connection refused")
            if fail is not None:
                raise ConnectionResetError("scripted: the response was lost")
            rbody = reply.get("body")
            if rbody is None:
                data = b""
            elif isinstance(rbody, str):
                data = self.substitute(rbody).encode()
            else:
                data = json.dumps(self.substitute(rbody)).encode()
            rheaders = [(k, self.substitute(v)) for k, v in reply.get("headers", {}).items()]
            return reply.get("status", 200), rheaders, data

    def start_step(self, label: str, exchanges: list) -> None:
        with self.mutex:
            self.step = label
            self.items = [Item(i + 1, e) for i, e in enumerate(exchanges)]
            self.sent = []

    def left(self) -> list:
        with self.mutex:
            return [f"exchange {it.index}: {json.dumps(it.group[it.pos].get('request'))}"
                    for it in self.items if not it.complete()]


# -- outcomes -----------------------------------------------------------------

def holder_dict(h: Any) -> Any:
    if h is None:
        return None
    if isinstance(h, condlock.MutexTag):
        return {"id": h.id, "description": h.description}
    if hasattr(h, "who"):  # an S3 LockInfo
        return {"ID": h.id, "Who": h.who, "Operation": h.operation, "Info": h.info, "etag": h.etag}
    return {}  # Apstra's own blueprint lock status


def error_dict(e: condlock.LockError) -> dict:
    """The stable code of condlock::Error::code() for a Python exception."""
    if isinstance(e, condlock.LockHeld):
        code = "held"
    elif isinstance(e, condlock.LockTimeout):
        code = "timeout"
    elif isinstance(e, condlock.LockLost):
        code = "lost"
    elif isinstance(e, condlock.NotOwned):
        code = "not_owned"
    elif isinstance(e, condlock.ConditionalWritesUnsupported):
        code = "conditional_writes_unsupported"
    elif isinstance(e, condlock.AccessDenied):
        code = "access_denied"
    elif isinstance(e, condlock.InvalidConfiguration):
        code = {"region": "wrong_region", "bucket": "no_such_bucket"}.get(e.field, "invalid_config")
    elif isinstance(e, condlock.ServerError):
        code = "server"
    elif isinstance(e, condlock.TransportError):
        code = "transport"
    elif isinstance(e, condlock.RequestRejected):
        code = "rejected"
    elif isinstance(e, condlock.MalformedResponse):
        code = "malformed_response"
    else:
        code = type(e).__name__
    out: dict = {"error": code, "message": str(e)}
    holder = getattr(e, "holder", None)
    if holder is not None:
        out["holder"] = holder_dict(holder)
    if isinstance(e, condlock.LockLost):
        out["lost"] = str(e.reason)
    if isinstance(e, (condlock.ServerError, condlock.RequestRejected)):
        out["status"], out["code"] = e.status, e.code
    return out


def check_outcome(expected: dict, actual: dict) -> Optional[str]:
    for k, want in expected.items():
        if k == "message_contains":
            if want not in actual.get("message", ""):
                return f"message {actual.get('message')!r} does not contain {want!r}"
            continue
        got = actual.get(k)
        if isinstance(want, dict) and isinstance(got, dict):
            if check_outcome(want, got) is not None:
                return f"{k}: expected {want}, got {got}"
        elif want != got:
            return f"{k}: expected {want!r}, got {got!r}"
    return None


def wait_args(wait: Any) -> dict:
    if wait in (None, "no"):
        return {"blocking": False}
    if wait == "forever":
        return {"blocking": True, "timeout": None}
    return {"blocking": True, "timeout": float(wait)}


# -- the replay -----------------------------------------------------------------

def make_lock(spec: dict, server: ScriptedServer):
    if spec.get("kind", "s3") == "apstra":
        return condlock.ApstraMutex(
            spec.get("blueprint", "bp-1"),
            url=spec.get("url", "https://apstra.example:443"),
            username=spec.get("username", "admin"),
            password=spec.get("password", "scenario-password"),
            message=spec.get("message", "deploying from CI"),
            wait_for_blueprint_unlock=spec.get("wait_for_blueprint_unlock", True),
            max_poll_interval=POLL,
            transport=server,
        )
    return condlock.S3Lock(
        spec.get("bucket", "tfstate"),
        spec.get("key", "terraform.tfstate"),
        region=spec.get("region", "us-east-1"),
        endpoint=spec.get("endpoint", "http://127.0.0.1:9000"),
        workspace=spec.get("workspace"),
        access_key_id="AKIDSCENARIO",
        secret_access_key="scenario-secret",
        who=spec.get("who", "ci@runner"),
        verify_conditional_writes=spec.get("verify_conditional_writes", "never"),
        lease=spec.get("lease_seconds"),
        takeover=spec.get("takeover", False),
        stale_after=spec.get("stale_after"),
        max_poll_interval=POLL,
        transport=server,
        dynamodb_table=spec.get("dynamodb_table"),
        dynamodb_endpoint=spec.get("dynamodb_endpoint", "http://127.0.0.1:8000")
        if spec.get("dynamodb_table") else None,
        use_lockfile=spec.get("use_lockfile"),
    )


def run_step(lock, spec: dict, step: dict, state: dict) -> dict:
    op = step["op"]
    try:
        if op == "acquire":
            lease = lock.acquire(**wait_args(step.get("wait", spec.get("wait"))))
            state["lease"] = lease
            state.setdefault("taken", []).append(lease)
            if isinstance(lock, condlock.ApstraMutex):
                return {"ok": True, "tag_id": lease.tag_id}
            out = {"ok": True, "etag": lease.etag}
            if lease.lease is not None:
                out["generation"] = lease.generation
            return out
        if op == "release":
            released = state.pop("lease").release()
            return {"ok": "released" if released else "already_gone"}
        if op == "status":
            return {"ok": True, "holder": holder_dict(lock.holder())}
        if op == "force_unlock":
            removed = lock.force_unlock(step["id"])
            return {"ok": "released" if removed else "already_gone"}
        if op in ("renew", "wait"):
            lease = state.get("lease")
            if lease is None or op == "wait":
                time.sleep(step["seconds"])
                return {"ok": True}
            reason = lease.wait_lost(step["seconds"])
            return {"ok": True} if reason is None else {"ok": False, "lost": str(reason)}
        raise AssertionError(f"unknown operation {op!r}")
    except ScriptMismatch:
        raise
    except condlock.LockError as e:
        return error_dict(e)


@pytest.mark.parametrize("scenario", [p for p in load() if for_python(p)])
def test_scenario(scenario):
    server = ScriptedServer()
    spec = scenario.get("lock", {})
    lock = make_lock(spec, server)
    state: dict = {}
    try:
        for n, step in enumerate(scenario["steps"], 1):
            label = f"step {n} ({step['op']})"
            server.start_step(label, step.get("exchanges", []))
            try:
                actual = run_step(lock, spec, step, state)
            except ScriptMismatch:
                pass  # recorded in server.failures
            assert not server.failures, "\n".join(server.failures)
            left = server.left()
            assert not left, (f"{label}: ended with {actual} before sending\n  "
                              + "\n  ".join(left) + f"\n  (sent: {server.sent})")
            expected = server.substitute(step.get("expect", {"ok": True}))
            diff = check_outcome(expected, actual)
            assert diff is None, f"{label}: outcome {diff}\n  expected {expected}\n  actual   {actual}"
    finally:
        server.closed = True
        # A lock the script leaves held can never be released (its server is
        # gone): keep it out of the release at interpreter exit, which would
        # retry it against the closed script for EXIT_RELEASE_TIMEOUT.
        # Every lock the script took counts (a release that failed against
        # the script has already left `state`).
        taken = state.get("taken", [])
        if taken:
            from condlock._lock_base import _REGISTER

            _REGISTER.forget(lambda held: any(held is t for t in taken))


def test_most_scenarios_run_on_both_bindings():
    params = load()
    assert len(params) >= 15
    python = [p for p in params if for_python(p)]
    assert len(python) * 4 >= len(params) * 3, (
        f"only {len(python)} of {len(params)} scenarios replayed by Python"
    )
