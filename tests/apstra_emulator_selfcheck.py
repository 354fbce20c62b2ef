#!/usr/bin/env python3
"""End-to-end self-check of tests/apstra_emulator.py (stdlib only).

Starts the emulator as subprocesses with ``--port 0``, reads their ``LISTENING``
line and checks the contract documented in the emulator's docstring over real
HTTP with ``urllib.request``. The last line printed is ``N passed, M failed``; the
exit status is non-zero when anything failed.

    python3 tests/apstra_emulator_selfcheck.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from typing import Any

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apstra_emulator.py")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
LOCK_FIELDS = {"lock_status", "lock_type", "username", "first_name", "last_name",
               "user_id", "possible_override"}

passed = 0
failures: list[str] = []


def check(name: str, cond: bool, detail: Any = "") -> None:
    global passed
    if cond:
        passed += 1
    else:
        failures.append(f"{name}: {detail}")
        print(f"FAIL {name}: {detail}")


class Emulator:
    """One emulator subprocess."""

    def __init__(self, *args: str, scheme: str = "http", ctx: ssl.SSLContext | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "dev", "-W", "error", EMULATOR, "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        m = re.fullmatch(r"LISTENING (\d+)\n", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"no LISTENING line: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        handlers: list[Any] = [urllib.request.ProxyHandler({})]
        if ctx is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        self.opener = urllib.request.build_opener(*handlers)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None, timeout: float = 10) -> tuple[int, Any, Any]:
        """Return (status, headers, decoded JSON or None). Raises on a dropped connection."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("AuthToken", token)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                status, headers, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, headers, payload = err.code, err.headers, err.read()
        return status, headers, (json.loads(payload) if payload else None)

    def login(self, user: str = "admin", password: str = "admin",
              path: str = "/api/aaa/login") -> str:
        status, _, doc = self.call("POST", path, {"username": user, "password": password})
        assert status == 201, (status, doc)
        return doc["token"]

    def control(self, method: str, what: str, body: Any = None) -> Any:
        status, _, doc = self.call(method, "/_emulator/" + what, body)
        assert status == 200, (what, status, doc)
        return doc

    def stop(self) -> int:
        self.proc.terminate()
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        check("clean exit on SIGTERM, nothing on stderr", rc == 0 and not err, (rc, err))
        return rc


def dropped(emu: Emulator, method: str, path: str, body: Any, token: str) -> bool:
    """True if the server closed the connection without any answer."""
    try:
        emu.call(method, path, body, token)
    except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError):
        return True
    return False


def labels(emu: Emulator, token: str) -> list[str]:
    status, _, doc = emu.call("GET", "/api/design/tags", token=token)
    assert status == 200, status
    return [t["label"] for t in doc["items"]]


# --------------------------------------------------------------------------- tests


def test_login(emu: Emulator) -> None:
    s1, h1, d1 = emu.call("POST", "/api/aaa/login", {"username": "admin", "password": "admin"})
    check("aaa login 201", s1 == 201 and isinstance(d1.get("token"), str) and d1.get("id"), d1)
    check("json content type", h1.get("Content-Type") == "application/json", h1)
    s2, _, d2 = emu.call("POST", "/api/user/login", {"username": "admin", "password": "admin"})
    check("user login 201", s2 == 201 and d2["token"] != d1["token"], d2)
    check("stable user id", d1["id"] == d2["id"], (d1, d2))
    s, h, d = emu.call("POST", "/api/aaa/login", {"username": "admin", "password": "nope"})
    check("wrong password 401 JSON", s == 401 and h.get("Content-Type") == "application/json"
          and "errors" in d, (s, d))
    s, _, _ = emu.call("POST", "/api/user/login", {"username": "ghost", "password": "admin"})
    check("unknown user 401", s == 401, s)
    s, _, _ = emu.call("POST", "/api/aaa/login", raw=b"{not json")
    check("malformed login 400", s == 400, s)
    s, _, _ = emu.call("GET", "/api/aaa/login")
    check("GET login 405", s == 405, s)


def test_auth(emu: Emulator) -> None:
    s, _, d = emu.call("GET", "/api/design/tags")
    check("no token 401", s == 401 and "errors" in d, (s, d))
    s, _, _ = emu.call("GET", "/api/design/tags", token="bogus")
    check("unknown token 401", s == 401, s)
    s, _, _ = emu.call("POST", "/api/design/tags", {"label": "x"})
    check("create without token 401", s == 401, s)
    check("create without token made nothing", emu.control("GET", "state")["tags"] == [], "")
    s, h, d = emu.call("GET", "/no/such/thing")
    check("unknown path 404 JSON", s == 404 and h.get("Content-Type") == "application/json", s)
    tok = emu.login()
    s, _, _ = emu.call("GET", "/api/nothing/here", token=tok)
    check("unknown api path 404 with token", s == 404, s)
    s, h, _ = emu.call("PUT", "/api/design/tags", {"label": "x"}, tok)
    check("wrong method 405 + Allow", s == 405 and "POST" in h.get("Allow", ""), (s, h))


def test_concurrent_create(emu: Emulator) -> None:
    tok = emu.login()
    label = "blueprint 801a43ec-96ea-4f08-aa04-1f1faaeeeaf1 locked"
    check("lock label fits the 64-char limit", len(label) == 53, len(label))
    barrier = threading.Barrier(20)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            s, _, d = emu.call("POST", "/api/design/tags",
                               {"label": label, "description": f"worker {i}"}, tok)
        except Exception as exc:  # recorded, so the check below reports it
            s, d = -1, repr(exc)
        with lock:
            results.append((s, d))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [d for s, d in results if s == 201]
    dups = [d for s, d in results if s == 422 and "already exists" in json.dumps(d)]
    check("20 concurrent creates: exactly one 201", len(wins) == 1, results)
    check("... and 19 x 422 already exists", len(dups) == 19, results)
    check("... one tag in the catalog", labels(emu, tok).count(label) == 1, labels(emu, tok))
    s, _, d = emu.call("POST", "/api/design/tags", {"label": label}, tok)
    check("duplicate body shape", s == 422 and d == {"errors": {
        "label": f"Tag with label '{label}' already exists"}}, d)


def test_validation(emu: Emulator) -> None:
    tok = emu.login()
    s, _, d = emu.call("POST", "/api/design/tags", {"label": "x" * 65}, tok)
    check("65-char label 422, not 'already exists'",
          s == 422 and "already exists" not in json.dumps(d), (s, d))
    s, _, d = emu.call("POST", "/api/design/tags", {"label": "y" * 64}, tok)
    check("64-char label 201", s == 201, (s, d))
    s, _, _ = emu.call("POST", "/api/design/tags", {"description": "no label"}, tok)
    check("missing label 422/400", s in (400, 422), s)
    s, _, _ = emu.call("POST", "/api/design/tags", raw=b"[[", token=tok)
    check("malformed tag JSON 400", s == 400, s)
    s, _, d = emu.call("POST", "/api/design/tags", {"label": "no description"}, tok)
    check("description optional", s == 201, (s, d))


def test_crud(emu: Emulator) -> None:
    tok = emu.login()
    s, _, d = emu.call("POST", "/api/design/tags", {"label": "crud", "description": "held"}, tok)
    check("create 201 with id", s == 201 and isinstance(d.get("id"), str), d)
    tag_id = d["id"]
    s, _, lst = emu.call("GET", "/api/design/tags", token=tok)
    items = [t for t in lst["items"] if t["id"] == tag_id]
    check("list has the tag", s == 200 and len(items) == 1, lst)
    tag = items[0]
    check("tag fields", set(tag) == {"id", "label", "description", "created_at",
                                     "last_modified_at"} and tag["description"] == "held", tag)
    check("timestamps ISO 8601 UTC", TIMESTAMP.match(tag["created_at"])
          and TIMESTAMP.match(tag["last_modified_at"]), tag)
    s, _, got = emu.call("GET", f"/api/design/tags/{tag_id}", token=tok)
    check("get tag", s == 200 and got == tag, got)
    s, h, body = emu.call("DELETE", f"/api/design/tags/{tag_id}", token=tok)
    check("delete 204 without body", s == 204 and body is None
          and "Content-Type" not in h, (s, h, body))
    s, _, _ = emu.call("DELETE", f"/api/design/tags/{tag_id}", token=tok)
    check("delete again 404", s == 404, s)
    s, _, _ = emu.call("GET", f"/api/design/tags/{tag_id}", token=tok)
    check("get deleted 404", s == 404, s)
    s, _, d2 = emu.call("POST", "/api/design/tags", {"label": "crud"}, tok)
    check("re-create after delete gets a new id", s == 201 and d2["id"] != tag_id, d2)


def test_lock_status(emu: Emulator) -> None:
    tok = emu.login()
    s, _, d = emu.call("GET", "/api/blueprints/bp-1/lock-status", token=tok)
    check("lock-status default unlocked", s == 200 and set(d) == LOCK_FIELDS
          and d["lock_status"] == "unlocked" and d["user_id"] == ""
          and d["possible_override"] is False, d)
    s, _, _ = emu.call("GET", "/api/blueprints/nope/lock-status", token=tok)
    check("lock-status unknown blueprint 404", s == 404, s)
    s, _, _ = emu.call("GET", "/api/blueprints/bp-1/lock-status")
    check("lock-status needs token", s == 401, s)
    own_id = emu.call("POST", "/api/user/login", {"username": "admin", "password": "admin"})[2]["id"]
    emu.control("PUT", "blueprints/bp-1", {"lock_status": "locked", "username": "admin"})
    d = emu.call("GET", "/api/blueprints/bp-1/lock-status", token=tok)[2]
    check("UI lock by own user fills user_id", d["lock_status"] == "locked"
          and d["user_id"] == own_id and d["username"] == "admin", d)
    emu.control("PUT", "blueprints/bp-new", {"lock_status": "locked_by_admin",
                                             "user_id": "u-1", "username": "bob"})
    d = emu.call("GET", "/api/blueprints/bp-new/lock-status", token=tok)[2]
    check("control PUT creates a blueprint", d["lock_status"] == "locked_by_admin"
          and d["user_id"] == "u-1", d)
    s, _, _ = emu.call("PUT", "/_emulator/blueprints/bp-1", {"lock_status": "bogus"})
    check("control PUT rejects bad status", s == 400, s)
    emu.control("PUT", "blueprints/bp-1", {})
    d = emu.call("GET", "/api/blueprints/bp-1/lock-status", token=tok)[2]
    check("control PUT {} unlocks", d["lock_status"] == "unlocked" and d["user_id"] == "", d)


def test_token_expiry(emu: Emulator) -> None:
    tok = emu.login()
    check("token works", emu.call("GET", "/api/design/tags", token=tok)[0] == 200, "")
    logins = emu.control("GET", "state")["logins"]
    emu.control("POST", "expire-tokens")
    check("expired token 401", emu.call("GET", "/api/design/tags", token=tok)[0] == 401, "")
    tok2 = emu.login(path="/api/user/login")
    check("fresh login works", emu.call("GET", "/api/design/tags", token=tok2)[0] == 200, "")
    check("login counter", emu.control("GET", "state")["logins"] == logins + 1, "")


def test_faults(emu: Emulator) -> None:
    tok = emu.login()
    path = "/api/design/tags"

    # Rules for another method/path are not consumed by non-matching requests.
    emu.control("POST", "faults", [{"method": "DELETE", "path": path, "action": {"status": 500}}])
    check("non-matching rule left alone",
          emu.call("POST", path, {"label": "f0"}, tok)[0] == 201
          and len(emu.control("GET", "faults")["faults"]) == 1, "")
    emu.control("DELETE", "faults")
    check("faults cleared", emu.control("GET", "faults")["faults"] == [], "")

    emu.control("POST", "faults", [{"method": "POST", "path": path, "count": 1,
                                    "action": {"status": 503, "retry_after": 1}}])
    s, h, d = emu.call("POST", path, {"label": "f503"}, tok)
    check("503 with Retry-After", s == 503 and h.get("Retry-After") == "1"
          and h.get("Content-Type") == "application/json", (s, dict(h), d))
    check("503 did not create the tag", "f503" not in labels(emu, tok), "")
    check("503 rule consumed", emu.call("POST", path, {"label": "f503"}, tok)[0] == 201, "")

    emu.control("POST", "faults", [{"method": "POST", "path": path, "count": 2,
                                    "action": {"status": 429, "retry_after": 2}}])
    got = [emu.call("POST", path, {"label": "f429"}, tok) for _ in range(3)]
    check("429 twice then through", [g[0] for g in got] == [429, 429, 201]
          and got[0][1].get("Retry-After") == "2", [g[0] for g in got])

    emu.control("POST", "faults", [{"method": "POST", "path": path,
                                    "action": {"drop": "before"}}])
    check("drop before: no answer", dropped(emu, "POST", path, {"label": "fdb"}, tok), "")
    check("drop before: tag not created", "fdb" not in labels(emu, tok), "")

    emu.control("POST", "faults", [{"method": "POST", "path": path,
                                    "action": {"drop": "after"}}])
    check("drop after: no answer", dropped(emu, "POST", path, {"label": "fda"}, tok), "")
    check("drop after: tag created", "fda" in labels(emu, tok), "")
    s, _, d = emu.call("POST", path, {"label": "fda"}, tok)
    check("drop after: retry sees already exists", s == 422 and "already exists" in str(d), d)

    emu.control("POST", "faults", [{"method": "*", "path": "*", "action": {"delay_ms": 500}}])
    t0 = time.monotonic()
    s, _, _ = emu.call("GET", path, token=tok)
    elapsed = time.monotonic() - t0
    check("delay 500 ms then normal answer", s == 200 and 0.5 <= elapsed < 2, (s, elapsed))
    t0 = time.monotonic()
    emu.call("GET", path, token=tok)
    check("delay consumed once", time.monotonic() - t0 < 0.4, "")

    emu.control("POST", "faults", [
        {"method": "GET", "path": "/api/design/tags", "action": {"status": 502}},
        {"method": "GET", "path": "/api/design/tags", "action": {"status": 504}},
    ])
    codes = [emu.call("GET", path, token=tok)[0] for _ in range(3)]
    check("rules used in order", codes == [502, 504, 200], codes)

    emu.control("POST", "faults", [{"method": "POST", "path": "/api/aaa/login",
                                    "action": {"status": 503}}])
    s, _, _ = emu.call("POST", "/api/aaa/login", {"username": "admin", "password": "admin"})
    check("faults apply to login", s == 503, s)

    s, _, _ = emu.call("POST", "/_emulator/faults", [{"action": {"drop": "sideways"}}])
    check("bad fault rule 400", s == 400, s)

    reqs = emu.control("GET", "state")["requests"]
    kinds = [r.get("fault") for r in reqs if r["path"] == path]
    check("request log records faults", kinds.count("drop_before") == 1
          and kinds.count("drop_after") == 1 and kinds.count("status") == 5
          and kinds.count("delay") == 1, kinds)
    posts = [r for r in reqs if r["method"] == "POST" and r["path"] == path]
    check("request log counts POSTs", len(posts) == 9, len(posts))
    drop_after = [r for r in reqs if r.get("fault") == "drop_after"]
    check("drop after logged with processed status", drop_after[0]["status"] == 201, drop_after)


def test_reset(emu: Emulator) -> None:
    tok = emu.login()
    emu.call("POST", "/api/design/tags", {"label": "before reset"}, tok)
    emu.control("POST", "faults", [{"method": "GET", "path": "*", "action": {"status": 500}}])
    emu.control("POST", "reset")
    state = emu.control("GET", "state")
    check("reset clears tags/faults/log/logins", state["tags"] == [] and state["faults"] == []
          and state["requests"] == [] and state["logins"] == 0, state)
    check("reset restores blueprints", set(state["blueprints"]) == {"bp-1"}
          and state["blueprints"]["bp-1"]["lock_status"] == "unlocked", state["blueprints"])
    check("reset clears tokens", emu.call("GET", "/api/design/tags", token=tok)[0] == 401, "")
    s, _, d = emu.call("POST", "/_emulator/tags", {"label": "stale", "description": "old",
                                                   "created_at": "2020-01-01T00:00:00.000000Z"})
    tok = emu.login()
    tag = emu.call("GET", f"/api/design/tags/{d['id']}", token=tok)[2]
    check("planted tag keeps created_at", s == 201
          and tag["created_at"] == "2020-01-01T00:00:00.000000Z", tag)


def test_prefix_mode() -> None:
    emu = Emulator("--prefix", "/apstra/", "--no-aaa-login", "--user", "alice:pa:ss",
                   "--token-ttl", "1", "--blueprint", "bp-x")
    try:
        s, _, _ = emu.call("POST", "/apstra/api/aaa/login", {"username": "alice",
                                                             "password": "pa:ss"})
        check("--no-aaa-login: aaa login 404", s == 404, s)
        s, _, d = emu.call("POST", "/apstra/api/user/login", {"username": "alice",
                                                              "password": "pa:ss"})
        check("prefix: user login fallback 201 (password with ':')", s == 201, (s, d))
        tok = d["token"]
        s, _, _ = emu.call("POST", "/apstra/api/user/login", {"username": "admin",
                                                              "password": "admin"})
        check("--user replaces default admin", s == 401, s)
        s, _, _ = emu.call("GET", "/api/design/tags", token=tok)
        check("prefix: unprefixed path 404", s == 404, s)
        s, _, _ = emu.call("GET", "/apstraX/api/design/tags", token=tok)
        check("prefix: near-miss prefix 404", s == 404, s)
        s, _, d = emu.call("POST", "/apstra/api/design/tags", {"label": "p"}, tok)
        check("prefix: create 201", s == 201, (s, d))
        s, _, d = emu.call("GET", "/apstra/api/blueprints/bp-x/lock-status", token=tok)
        check("prefix: lock-status", s == 200 and d["lock_status"] == "unlocked", d)
        emu.call("POST", "/apstra/_emulator/faults",
                 [{"method": "GET", "path": "/api/design/tags", "action": {"status": 503}}])
        s, _, _ = emu.call("GET", "/apstra/api/design/tags", token=tok)
        check("prefix: fault path matched after prefix removal", s == 503, s)
        s, _, st = emu.call("GET", "/_emulator/state")
        check("prefix: control API at root too", s == 200 and [t["label"] for t in st["tags"]]
              == ["p"], st)
        check("prefix: logged paths without prefix",
              st["requests"][-1]["path"] == "/api/design/tags", st["requests"][-1])
        tok = emu.login("alice", "pa:ss", "/apstra/api/user/login")
        check("--token-ttl: fresh token works",
              emu.call("GET", "/apstra/api/design/tags", token=tok)[0] == 200, "")
        time.sleep(1.1)
        s, _, _ = emu.call("GET", "/apstra/api/design/tags", token=tok)
        check("--token-ttl: token expires by itself", s == 401, s)
    finally:
        emu.stop()


def test_tls() -> None:
    if shutil.which("openssl") is None:
        print("SKIP tls: no openssl binary to make a certificate")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        ctx = ssl.create_default_context(cafile=cert)  # validation stays on
        emu = Emulator("--tls-cert", cert, "--tls-key", key, scheme="https", ctx=ctx)
        try:
            s, _, d = emu.call("POST", "/api/aaa/login", {"username": "admin",
                                                          "password": "admin"})
            check("tls: login over verified https", s == 201, (s, d))
            plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                plain.open(emu.base + "/api/design/tags", timeout=5)
                ok = False
            except urllib.error.URLError as err:
                ok = isinstance(err.reason, ssl.SSLCertVerificationError)
            check("tls: self-signed cert refused without the CA", ok, "")
        finally:
            emu.stop()


def main() -> int:
    t0 = time.monotonic()
    emu = Emulator("--blueprint", "bp-1")
    try:
        for test in (test_login, test_auth, test_concurrent_create, test_validation,
                     test_crud, test_lock_status, test_token_expiry, test_faults, test_reset):
            emu.control("POST", "reset")
            try:
                test(emu)
            except Exception:  # a crash in one test is a failure, not the end
                failures.append(f"{test.__name__} crashed")
                print(f"FAIL {test.__name__} crashed:\n{traceback.format_exc()}")
    finally:
        emu.stop()
    for standalone in (test_prefix_mode, test_tls):
        try:
            standalone()
        except Exception:
            failures.append(f"{standalone.__name__} crashed")
            print(f"FAIL {standalone.__name__} crashed:\n{traceback.format_exc()}")
    print(f"({time.monotonic() - t0:.1f} s)")
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
