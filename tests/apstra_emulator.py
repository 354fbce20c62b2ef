#!/usr/bin/env python3
"""Emulator of the subset of the Juniper Apstra REST API used by the blueprint mutex.

Python 3.10+ standard library only. No real Apstra server is available to the
condlock project, so this file encodes the contract in
``shared/reference/apstra-mutex.md`` (cited below as "facts §N") and nothing more.
Every behaviour is tagged either FACT (taken from that file) or CHOICE (a
deliberate emulator decision where the facts are silent or marked "unverified").
Clients must not rely on a CHOICE being what a real server does.

Command line
------------
::

    python3 tests/apstra_emulator.py --port 0 [--host 127.0.0.1]
        [--user NAME:PASSWORD ...] [--blueprint ID ...] [--prefix /some/path]
        [--token-ttl SECONDS] [--no-aaa-login] [--tls-cert FILE --tls-key FILE]
        [--verbose]

Once listening it prints exactly one line ``LISTENING <port>`` to stdout and
flushes; nothing else is ever written to stdout. ``--port 0`` binds a free port.
SIGTERM and SIGINT stop it cleanly (exit status 0). ``--verbose`` logs each
request to stderr.

Apstra endpoints (all under ``--prefix`` when given)
----------------------------------------------------
Login (facts §2, "login")
  * ``POST /api/aaa/login`` and ``POST /api/user/login``, JSON
    ``{"username", "password"}`` -> 201 ``{"token": "...", "id": "<user id>"}``.
    FACT: both paths, the 201 status and the body shape; the token is sent back
    as header ``AuthToken``.
  * Wrong credentials -> 401 ``{"errors": "..."}`` (FACT: a 401 on the login call
    is a credentials error; CHOICE: the body shape).
  * Body that is not a JSON object with string ``username`` and ``password``
    -> 400 (CHOICE).
  * ``--no-aaa-login``: ``/api/aaa/login`` answers 404, as an older server would,
    so clients must fall back to ``/api/user/login`` (CHOICE: models the fact
    that the Go SDK uses ``/api/user/login`` while ``/api/aaa/login`` is the
    documented path).
  * User ids are ``uuid5`` of the user name: stable across runs (CHOICE).
    ``--user`` may be repeated; if it is absent the only user is ``admin:admin``.
    The password is everything after the first ``:``.

Authentication (facts §2, "401: token expired")
  * Every other ``/api/...`` path needs header ``AuthToken: <token>``; a
    missing, unknown or expired token -> 401 (FACT). Authentication is checked
    before routing, so an unknown ``/api/...`` path without a token is 401, not
    404 (CHOICE).
  * Tokens expire ``--token-ttl`` seconds (default 3600, fractions allowed) after
    they are issued; the TTL is fixed, not sliding (CHOICE). The control API can
    expire every token at once.

Design tags: the mutex itself (facts §1 and §2, "create/list/get/delete tag")
  * ``POST /api/design/tags`` ``{"label", "description"}`` -> 201 ``{"id"}``
    (FACT). ``description`` is optional and defaults to "" (CHOICE).
  * Label uniqueness is enforced atomically: one lock is held around the
    check-and-insert, so of N concurrent creates of one label exactly one wins
    (FACT that duplicates are refused; CHOICE that the server is atomic).
  * Duplicate label -> 422 ``{"errors": {"label": "Tag with label '<label>'
    already exists"}}``. FACT: status 422 and the substring ``already exists``;
    the body shape is "unverified" in the facts, so clients must match the
    substring only. Labels compare exactly, case-sensitively (CHOICE).
  * Label longer than 64 characters -> 422 ``{"errors": {"label": "Length must
    be between 1 and 64."}}`` (FACT: the 64-character limit, facts §1; CHOICE:
    that the server also refuses it, and the message, which deliberately does
    not contain "already exists").
  * Missing, empty or non-string label -> 422 with a ``label`` error; body that
    is not a JSON object -> 400 (CHOICE).
  * Tag ids are random uuid4 strings, so a re-created tag never reuses the id of
    a deleted one (CHOICE; real id format unknown).
  * ``GET /api/design/tags`` -> 200 ``{"items": [tag, ...]}`` in creation order,
    each tag ``{"id", "label", "description", "created_at",
    "last_modified_at"}``; no server-side filtering (FACT). Timestamps are ISO
    8601 UTC with microseconds, e.g. ``2026-11-22T03:26:23.961866Z`` (CHOICE of
    exact format).
  * ``GET /api/design/tags/{id}`` -> 200 tag, 404 if absent (FACT/CHOICE: 404).
  * ``DELETE /api/design/tags/{id}`` -> 204 without a body; 404 if already gone
    (FACT: 204 is one of 200/202/204, and the 404).
  * Creating or deleting tags never changes any blueprint, including its
    lock-status (FACT, facts §1).

Blueprint lock status (facts §2 "blueprint lock status", §3 step 1)
  * ``GET /api/blueprints/{bp}/lock-status`` -> 200 ``{"lock_status",
    "lock_type", "username", "first_name", "last_name", "user_id",
    "possible_override"}`` (FACT). Unknown blueprint -> 404 (CHOICE).
  * A blueprint starts ``unlocked`` with empty strings and
    ``possible_override: false`` (CHOICE). This is Apstra's own UI lock; only
    the control API changes it.

Other behaviour (all CHOICE)
  * Error bodies are ``{"errors": "<message>"}`` unless stated above.
  * Unknown paths -> 404, a known path with a wrong method -> 405 with
    ``Allow``. Every response is JSON with ``Content-Type: application/json``
    except 204 (no body). A trailing ``/`` and the query string are ignored
    when routing. Request bodies need no particular Content-Type; chunked
    request bodies are accepted; bodies over 1 MiB -> 413.
  * HTTP/1.1 with keep-alive. With ``--tls-cert``/``--tls-key`` it speaks HTTPS
    (facts §2: Apstra usually has a self-signed certificate).
  * With ``--prefix /p`` the API lives under ``/p/api/...``; anything outside
    the prefix is 404.

Control API (not part of Apstra)
--------------------------------
Served at ``/_emulator/...`` both with and without the prefix; no
authentication; JSON bodies; never subject to faults nor recorded in the
request log.

  * ``POST /_emulator/reset``: back to the start-up state: no tags, faults,
    tokens, request log or login count; blueprints back to the ``--blueprint``
    list, all unlocked.
  * ``POST /_emulator/expire-tokens``: every issued token becomes invalid.
  * ``PUT /_emulator/blueprints/{bp}`` ``{"lock_status": "locked", "user_id":
    "...", "username": "...", ...}``: creates the blueprint or replaces its lock
    status. Accepted keys are the lock-status fields; omitted ones take their
    defaults. ``lock_status`` must be one of facts §2's five values. When
    ``username`` names a configured user and ``user_id`` is omitted, the user's
    id is filled in (so a test can lock a blueprint as the caller's own user).
    ``DELETE /_emulator/blueprints/{bp}`` removes a blueprint.
  * ``POST /_emulator/faults`` body: a JSON list of rules appended to the
    pending ones: ``{"method": "POST", "path": "/api/design/tags", "count": 1,
    "action": {...}}``. ``method`` and ``path`` may be ``*``; ``path`` is matched
    exactly, after prefix removal and without the query string; ``count``
    defaults to 1. The first pending rule that matches a request is consumed
    once (rules are used in the order given). Actions:

      - ``{"status": 503, "retry_after": 1}``: answer that status (and a
        ``Retry-After`` header when given) WITHOUT processing the request;
      - ``{"drop": "before"}``: close the connection without answering and
        without processing;
      - ``{"drop": "after"}``: process the request (e.g. really create the tag),
        then close the connection without answering: a lost response;
      - ``{"delay_ms": 500}``: sleep, then process normally. ``delay_ms`` may be
        combined with ``status`` or ``drop`` (the sleep comes first).

    ``GET /_emulator/faults`` lists pending rules, ``DELETE /_emulator/faults``
    clears them.
  * ``GET /_emulator/state`` -> ``{"tags": [...], "logins": <successful
    logins>, "requests": [{"method", "path", "status"}, ...], "faults": [...],
    "blueprints": {...}, "users": {name: id}}``. ``requests`` lists every
    non-control request in arrival order of its answer; ``path`` is after prefix
    removal; a dropped request has ``"fault": "drop_before"`` (status ``null``)
    or ``"fault": "drop_after"`` (status is what would have been sent); other
    faulted requests have ``"fault": "status"`` or ``"delay"``.
  * ``POST /_emulator/tags`` ``{"label", "description", "created_at"}``: plants
    a tag directly, bypassing auth, faults and the length check, optionally
    with an old ``created_at`` (for stale-lock tests). 201 ``{"id"}``; 422 on a
    duplicate label.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_LABEL_LEN = 64  # facts §1: Apstra 4.1 label limit
MAX_BODY = 1 << 20  # CHOICE: refuse request bodies over 1 MiB
LOCK_STATUSES = (  # facts §2
    "unlocked",
    "locked",
    "locked_by_admin",
    "locked_by_deleted_user",
    "locked_by_restricted_user",
)
LOCK_FIELDS = {
    "lock_status": str,
    "lock_type": str,
    "username": str,
    "first_name": str,
    "last_name": str,
    "user_id": str,
    "possible_override": bool,
}
# CHOICE: fixed namespace so user ids are stable across emulator runs.
USER_ID_NAMESPACE = uuid.UUID("6f0d1c52-7a0e-4c2b-9a57-0c1d2e3f4a5b")
CONTROL = "/_emulator"


def now_iso() -> str:
    """Current UTC time as ``2026-11-22T03:26:23.961866Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_id_for(name: str) -> str:
    return str(uuid.uuid5(USER_ID_NAMESPACE, name))


def default_lock_status() -> dict[str, Any]:
    return {
        "lock_status": "unlocked",
        "lock_type": "",
        "username": "",
        "first_name": "",
        "last_name": "",
        "user_id": "",
        "possible_override": False,
    }


@dataclass
class Reply:
    """One HTTP answer; ``body=None`` means no body (204)."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def error(status: int, message: Any) -> Reply:
    return Reply(status, {"errors": message})


class BadRequest(Exception):
    """Raised while reading or decoding a request; carries the reply to send."""

    def __init__(self, reply: Reply):
        super().__init__(reply.body)
        self.reply = reply


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(error(400, f"malformed JSON body: {exc}")) from None


def parse_fault_rules(doc: Any) -> list[dict[str, Any]]:
    """Validate a list of fault rules; raise BadRequest on any mistake."""

    def bad(msg: str) -> BadRequest:
        return BadRequest(error(400, f"bad fault rule: {msg}"))

    if not isinstance(doc, list):
        raise bad("body must be a JSON list of rules")
    rules = []
    for rule in doc:
        if not isinstance(rule, dict):
            raise bad("each rule must be an object")
        unknown = set(rule) - {"method", "path", "count", "action"}
        if unknown:
            raise bad(f"unknown keys {sorted(unknown)}")
        method, path = rule.get("method", "*"), rule.get("path", "*")
        count = rule.get("count", 1)
        action = rule.get("action")
        if not isinstance(method, str) or not isinstance(path, str):
            raise bad("method and path must be strings")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise bad("count must be an integer >= 1")
        if not isinstance(action, dict) or not action:
            raise bad("action must be a non-empty object")
        unknown = set(action) - {"status", "retry_after", "drop", "delay_ms"}
        if unknown:
            raise bad(f"unknown action keys {sorted(unknown)}")
        status = action.get("status")
        if status is not None and (
            not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
        ):
            raise bad("status must be an HTTP status code")
        if "drop" in action and action["drop"] not in ("before", "after"):
            raise bad('drop must be "before" or "after"')
        if status is not None and "drop" in action:
            raise bad("status and drop are exclusive")
        if "retry_after" in action:
            if status is None:
                raise bad("retry_after needs status")
            if not isinstance(action["retry_after"], (int, str)) or isinstance(
                action["retry_after"], bool
            ):
                raise bad("retry_after must be an integer or a string")
        delay = action.get("delay_ms", 0)
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            raise bad("delay_ms must be a number >= 0")
        rules.append(
            {"method": method.upper(), "path": path, "count": count, "action": dict(action)}
        )
    return rules


class EmulatorState:
    """All mutable state, guarded by one lock."""

    def __init__(self, users: dict[str, str], blueprints: list[str], token_ttl: float,
                 aaa_login: bool):
        self.passwords = dict(users)
        self.user_ids = {name: user_id_for(name) for name in users}
        self.initial_blueprints = list(blueprints)
        self.token_ttl = token_ttl
        self.aaa_login = aaa_login
        self.lock = threading.Lock()
        self.tags: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.logins = 0
        self.blueprints: dict[str, dict[str, Any]] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tags = {}
            self.tokens = {}
            self.faults = []
            self.requests = []
            self.logins = 0
            self.blueprints = {bp: default_lock_status() for bp in self.initial_blueprints}

    # -- faults and request log ------------------------------------------------

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        """Consume one use of the first pending rule matching this request."""
        with self.lock:
            for rule in self.faults:
                if rule["method"] in ("*", method) and rule["path"] in ("*", path):
                    rule["count"] -= 1
                    if rule["count"] == 0:
                        self.faults.remove(rule)
                    return rule["action"]
        return None

    def record(self, method: str, path: str, status: int | None, fault: str | None) -> None:
        entry: dict[str, Any] = {"method": method, "path": path, "status": status}
        if fault:
            entry["fault"] = fault
        with self.lock:
            self.requests.append(entry)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tags": [dict(t) for t in self.tags.values()],
                "logins": self.logins,
                "requests": [dict(r) for r in self.requests],
                "faults": [dict(f) for f in self.faults],
                "blueprints": {bp: dict(s) for bp, s in self.blueprints.items()},
                "users": dict(self.user_ids),
            }

    # -- Apstra API -----------------------------------------------------------

    def dispatch(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        """Answer one Apstra API request (path already without prefix)."""
        if path in ("/api/aaa/login", "/api/user/login"):
            if path == "/api/aaa/login" and not self.aaa_login:
                return error(404, f"no such endpoint: {path}")  # --no-aaa-login
            if method != "POST":
                return Reply(405, {"errors": "method not allowed"}, [("Allow", "POST")])
            return self.login(body)
        if path != "/api" and not path.startswith("/api/"):
            return error(404, f"no such endpoint: {path}")

        # CHOICE: authentication before routing, as most API gateways do.
        token = headers.get("AuthToken")
        if not token:
            return error(401, "authentication required: missing AuthToken header")
        with self.lock:
            session = self.tokens.get(token)
            if session is not None and session[1] <= time.monotonic():
                del self.tokens[token]
                session = None
        if session is None:
            return error(401, "invalid or expired AuthToken")

        parts = path.split("/")[1:]  # "/api/design/tags/x" -> ["api", "design", "tags", "x"]
        if parts == ["api", "design", "tags"]:
            if method == "GET":
                return self.list_tags()
            if method == "POST":
                return self.create_tag(body)
            return Reply(405, {"errors": "method not allowed"}, [("Allow", "GET, POST")])
        if len(parts) == 4 and parts[:3] == ["api", "design", "tags"]:
            if method == "GET":
                return self.get_tag(parts[3])
            if method == "DELETE":
                return self.delete_tag(parts[3])
            return Reply(405, {"errors": "method not allowed"}, [("Allow", "GET, DELETE")])
        if len(parts) == 4 and parts[:2] == ["api", "blueprints"] and parts[3] == "lock-status":
            if method != "GET":
                return Reply(405, {"errors": "method not allowed"}, [("Allow", "GET")])
            return self.lock_status(parts[2])
        return error(404, f"no such endpoint: {path}")

    def login(self, body: bytes) -> Reply:
        doc = parse_json(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("username"), str) \
                or not isinstance(doc.get("password"), str):
            return error(400, 'body must be {"username": "...", "password": "..."}')
        name = doc["username"]
        expected = self.passwords.get(name)
        # compare_digest avoids a timing oracle; cosmetic here, but free.
        if expected is None or not secrets.compare_digest(
            expected.encode(), doc["password"].encode()
        ):
            return error(401, "Invalid credentials")
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (name, time.monotonic() + self.token_ttl)
            self.logins += 1
        return Reply(201, {"token": token, "id": self.user_ids[name]})

    def list_tags(self) -> Reply:
        with self.lock:
            return Reply(200, {"items": [dict(t) for t in self.tags.values()]})

    def get_tag(self, tag_id: str) -> Reply:
        with self.lock:
            tag = self.tags.get(tag_id)
            if tag is not None:
                return Reply(200, dict(tag))
        return error(404, f"Tag with id '{tag_id}' not found")

    def delete_tag(self, tag_id: str) -> Reply:
        with self.lock:
            if self.tags.pop(tag_id, None) is not None:
                return Reply(204)
        return error(404, f"Tag with id '{tag_id}' not found")

    def create_tag(self, body: bytes) -> Reply:
        doc = parse_json(body)
        if not isinstance(doc, dict):
            return error(400, "body must be a JSON object")
        label, description = doc.get("label"), doc.get("description", "")
        if label is None:
            return error(422, {"label": "Missing data for required field."})
        if not isinstance(label, str) or not label:
            return error(422, {"label": "Label must be a non-empty string."})
        if len(label) > MAX_LABEL_LEN:
            return error(422, {"label": f"Length must be between 1 and {MAX_LABEL_LEN}."})
        if not isinstance(description, str):
            return error(422, {"description": "Not a valid string."})
        return self.insert_tag(label, description, None)

    def insert_tag(self, label: str, description: str, created_at: str | None) -> Reply:
        """Atomic check-and-insert: the heart of the mutex (facts §1, §3 step 2)."""
        stamp = created_at or now_iso()
        with self.lock:
            if any(t["label"] == label for t in self.tags.values()):
                return error(422, {"label": f"Tag with label '{label}' already exists"})
            tag_id = str(uuid.uuid4())
            self.tags[tag_id] = {
                "id": tag_id,
                "label": label,
                "description": description,
                "created_at": stamp,
                "last_modified_at": stamp,
            }
        return Reply(201, {"id": tag_id})

    def lock_status(self, bp: str) -> Reply:
        with self.lock:
            status = self.blueprints.get(bp)
            if status is not None:
                return Reply(200, dict(status))
        return error(404, f"Blueprint with id '{bp}' not found")

    # -- control API ----------------------------------------------------------

    def control(self, method: str, path: str, body: bytes) -> Reply:
        parts = path[len(CONTROL):].strip("/").split("/")
        route = parts[0]
        if route == "reset" and len(parts) == 1 and method == "POST":
            self.reset()
            return Reply(200, {"ok": True})
        if route == "expire-tokens" and len(parts) == 1 and method == "POST":
            with self.lock:
                expired = len(self.tokens)
                self.tokens.clear()
            return Reply(200, {"ok": True, "expired": expired})
        if route == "state" and len(parts) == 1 and method == "GET":
            return Reply(200, self.snapshot())
        if route == "faults" and len(parts) == 1:
            if method == "POST":
                rules = parse_fault_rules(parse_json(body))
                with self.lock:
                    self.faults.extend(rules)
                    pending = len(self.faults)
                return Reply(200, {"ok": True, "pending": pending})
            if method == "GET":
                with self.lock:
                    return Reply(200, {"faults": [dict(f) for f in self.faults]})
            if method == "DELETE":
                with self.lock:
                    self.faults.clear()
                return Reply(200, {"ok": True})
        if route == "blueprints" and len(parts) == 2 and parts[1]:
            if method == "PUT":
                return self.put_blueprint(parts[1], parse_json(body))
            if method == "DELETE":
                with self.lock:
                    found = self.blueprints.pop(parts[1], None) is not None
                return Reply(200, {"ok": True}) if found else error(404, "no such blueprint")
        if route == "tags" and len(parts) == 1 and method == "POST":
            doc = parse_json(body)
            if not isinstance(doc, dict) or not isinstance(doc.get("label"), str) \
                    or not isinstance(doc.get("description", ""), str) \
                    or not isinstance(doc.get("created_at", ""), str):
                return error(400, "body must be {label, [description], [created_at]} strings")
            return self.insert_tag(doc["label"], doc.get("description", ""),
                                   doc.get("created_at"))
        return error(404, f"no such control endpoint: {method} {path}")

    def put_blueprint(self, bp: str, doc: Any) -> Reply:
        if not isinstance(doc, dict):
            return error(400, "body must be a JSON object")
        status = default_lock_status()
        for key, value in doc.items():
            kind = LOCK_FIELDS.get(key)
            if kind is None:
                return error(400, f"unknown lock-status field {key!r}")
            if not isinstance(value, kind):
                return error(400, f"{key} must be a {kind.__name__}")
            status[key] = value
        if status["lock_status"] not in LOCK_STATUSES:
            return error(400, f"lock_status must be one of {list(LOCK_STATUSES)}")
        if "user_id" not in doc and status["username"] in self.user_ids:
            status["user_id"] = self.user_ids[status["username"]]
        with self.lock:
            self.blueprints[bp] = status
        return Reply(200, dict(status))


class Handler(BaseHTTPRequestHandler):
    """Reads a request, applies faults, delegates to EmulatorState, writes the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, like a real server behind nginx
    server_version = "ApstraEmulator/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: EmulatorServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        if self.server.verbose:
            sys.stderr.write(f"apstra-emulator: {self.address_string()} {format % args}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Protocol-level errors from http.server (bad request line, 501 ...) as JSON too.
        self.close_connection = True
        self.send_reply(error(code, message or HTTPStatus(code).phrase))

    def send_reply(self, reply: Reply) -> None:
        self.send_response(reply.status)
        data = b""
        if reply.body is not None:
            data = json.dumps(reply.body).encode()
            self.send_header("Content-Type", "application/json")
        if reply.status != 204:  # RFC 9110: no Content-Length on 204
            self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadRequest(error(400, "bad chunked encoding")) from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BadRequest(error(413, "request body too large"))
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BadRequest(error(400, "bad Content-Length")) from None
        if n < 0:
            raise BadRequest(error(400, "bad Content-Length"))
        if n > MAX_BODY:
            raise BadRequest(error(413, "request body too large"))
        return self.rfile.read(n)

    def handle_any(self) -> None:
        state = self.server.state
        method = self.command
        path = unquote(urlsplit(self.path).path)
        if len(path) > 1:
            path = path.rstrip("/")  # CHOICE: tolerate a trailing slash
        prefix = self.server.prefix

        try:
            body = self.read_body()
        except BadRequest as exc:
            self.close_connection = True  # the stream position is unknown now
            self.send_reply(exc.reply)
            return

        # Control API: with or without the prefix, no auth, no faults, not logged.
        for base in (CONTROL, prefix + CONTROL) if prefix else (CONTROL,):
            if path == base or path.startswith(base + "/"):
                try:
                    reply = state.control(method, path[len(base) - len(CONTROL):], body)
                except BadRequest as exc:
                    reply = exc.reply
                self.send_reply(reply)
                return

        # Strip the prefix; a path outside it is a 404 (still subject to faults,
        # matched on the raw path).
        prefix_miss = False
        if prefix:
            if path == prefix or path.startswith(prefix + "/"):
                path = path[len(prefix):] or "/"
            else:
                prefix_miss = True

        action = state.take_fault(method, path) or {}
        fault_kind = None
        if action.get("delay_ms"):
            fault_kind = "delay"
            time.sleep(action["delay_ms"] / 1000)
        if "status" in action:
            code = action["status"]
            headers = []
            if "retry_after" in action:
                headers.append(("Retry-After", str(action["retry_after"])))
            reply = Reply(code, {"errors": f"emulated fault: HTTP {code}"}, headers)
            state.record(method, path, code, "status")
            self.send_reply(reply)
            return
        if action.get("drop") == "before":
            state.record(method, path, None, "drop_before")
            self.close_connection = True  # no answer, request not processed
            return

        if prefix_miss:
            reply = error(404, f"no such endpoint: {path}")
        else:
            try:
                reply = state.dispatch(method, path, self.headers, body)
            except BadRequest as exc:
                reply = exc.reply

        if action.get("drop") == "after":
            state.record(method, path, reply.status, "drop_after")
            self.close_connection = True  # processed, but the answer is lost
            return
        state.record(method, path, reply.status, fault_kind)
        self.send_reply(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block exit
    # socketserver's default listen backlog is 5: a burst of concurrent connects
    # (the 20-thread create race) then gets connection resets. Real servers
    # (nginx in front of Apstra) have a large backlog.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: EmulatorState, prefix: str,
                 tls: ssl.SSLContext | None, verbose: bool):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.prefix = prefix
        self.tls = tls
        self.verbose = verbose
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can
        # stall in sandboxes; the server name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the connection's own thread, not the accept loop.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls_sock = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # failed handshake: the plain socket is closed by the caller
        try:
            self.RequestHandlerClass(tls_sock, client_address, self)
        finally:
            tls_sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-request (timeouts, resets) are normal in fault tests.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Emulator of the Apstra blueprint-mutex REST API.")
    ap.add_argument("--port", type=int, required=True, help="port to bind, 0 for a free one")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--user", action="append", metavar="NAME:PASSWORD",
                    help="a user (repeatable); default admin:admin")
    ap.add_argument("--blueprint", action="append", default=[], metavar="ID",
                    help="a blueprint that exists, unlocked (repeatable)")
    ap.add_argument("--prefix", default="", help="path prefix of the whole API, e.g. /apstra")
    ap.add_argument("--token-ttl", type=float, default=3600.0, metavar="SECONDS")
    ap.add_argument("--no-aaa-login", action="store_true",
                    help="answer 404 on /api/aaa/login, like an older server")
    ap.add_argument("--tls-cert", metavar="FILE")
    ap.add_argument("--tls-key", metavar="FILE")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.token_ttl <= 0:
        ap.error("--token-ttl must be positive")
    users = {}
    for spec in args.user or ["admin:admin"]:
        name, sep, password = spec.partition(":")
        if not sep or not name:
            ap.error(f"--user wants NAME:PASSWORD, got {spec!r}")
        users[name] = password
    args.users = users
    prefix = args.prefix.strip("/")
    args.prefix = "/" + prefix if prefix else ""
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    state = EmulatorState(args.users, args.blueprint, args.token_ttl, not args.no_aaa_login)
    server = EmulatorServer((args.host, args.port), state, args.prefix, tls, args.verbose)

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                            name="accept", daemon=True)
    loop.start()
    print(f"LISTENING {server.server_address[1]}", flush=True)
    while not stop.wait(1.0):  # a signal handler sets it; the timeout is a safety net
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
