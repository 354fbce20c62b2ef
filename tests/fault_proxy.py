#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for tests (standard library only).

Sits on 127.0.0.1 between a client (condlock) and a store (moto) and, per
request, with seeded probabilities, misbehaves the way networks and S3 do:

  --reset P           close the client connection (TCP RST) before forwarding
  --drop-response P   forward the request, then close (FIN) without answering:
                      the write happened but the client cannot know it
  --delay P:SECONDS   wait SECONDS, then forward normally
  --stall P           never forward, never answer: hold the connection open
                      until the client gives up (or --stall-for runs out)
  --status500 P       answer 500 InternalError itself (not forwarded)
  --slowdown P        answer 503 SlowDown itself (not forwarded)
  --conflict P        answer 409 ConditionalRequestConflict itself (not forwarded)

One uniform draw per request picks at most one fault, so the probabilities
must add up to at most 1. The RNG is seeded (``--seed``); faults depend only
on the seed and the order requests arrive in.

Only some requests can be targeted (all filters must match, else the request
is forwarded untouched and draws nothing): ``--only-method PUT`` (repeatable),
``--only-header If-Match`` (the header is present; repeatable),
``--only-path-contains .tflock``. E.g. lease renewals are
``--only-method PUT --only-header If-Match``.

Control endpoint (never faulted, never forwarded), under ``/_proxy/``:
  GET /_proxy/stats    JSON: requests seen, forwarded, each fault's count
  PUT /_proxy/config   JSON object with any of the option names above
                       (``"drop_response": 0.1``, ``"delay": [0.1, 0.5]``,
                       ``"only_method": ["PUT"]``, ...): replaces those settings

Keep-alive: the client side is kept alive between requests (unless the client
asks ``Connection: close``); every answer carries a Content-Length. Each
forwarded request goes out on a new upstream connection with
``Connection: close``; the ``Host`` header is passed through untouched so
that SigV4 signatures made for the proxy's address stay what they were.

Prints ``LISTENING <port>`` on stdout once it accepts connections. Faults are
logged on stderr, one line each.

Usage: fault_proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--seed N] [faults...]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import socket
import struct
import sys
import urllib.parse

FAULTS = ("reset", "drop_response", "delay", "stall", "status500", "slowdown", "conflict")
MAX_HEAD = 64 * 1024

ERROR_BODIES = {
    "status500": (
        500,
        "Internal Server Error",
        "InternalError",
        "We encountered an internal error. Please try again.",
    ),
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "conflict": (
        409,
        "Conflict",
        "ConditionalRequestConflict",
        "A conflicting conditional operation is currently in progress against this "
        "resource. Try again.",
    ),
}


class BadRequest(Exception):
    pass


class Settings:
    def __init__(self) -> None:
        self.prob = {name: 0.0 for name in FAULTS}
        self.delay_seconds = 0.0
        self.stall_for = 3600.0
        self.only_method: list[str] = []
        self.only_header: list[str] = []
        self.only_path_contains: str | None = None

    def check(self) -> None:
        for name, p in self.prob.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')}: probability {p} not in [0, 1]")
        total = sum(self.prob.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total} > 1")
        if self.delay_seconds < 0 or self.stall_for < 0:
            raise ValueError("durations must be >= 0")

    def update(self, cfg: dict) -> None:
        for key, value in cfg.items():
            if key == "delay":
                p, s = value if isinstance(value, list) else parse_delay(str(value))
                self.prob["delay"], self.delay_seconds = float(p), float(s)
            elif key in self.prob:
                self.prob[key] = float(value)
            elif key == "stall_for":
                self.stall_for = float(value)
            elif key == "only_method":
                self.only_method = [m.upper() for m in value]
            elif key == "only_header":
                self.only_header = [h.lower() for h in value]
            elif key == "only_path_contains":
                self.only_path_contains = value
            else:
                raise ValueError(f"unknown setting {key!r}")
        self.check()

    def targets(self, method: str, target: str, headers: list[tuple[str, str]]) -> bool:
        if self.only_method and method.upper() not in self.only_method:
            return False
        names = {k.lower() for k, _ in headers}
        if any(h not in names for h in self.only_header):
            return False
        if self.only_path_contains is not None:
            path = urllib.parse.unquote(target.split("?", 1)[0])
            if self.only_path_contains not in path:
                return False
        return True


def parse_delay(text: str) -> tuple[float, float]:
    try:
        p, s = text.split(":", 1)
        return float(p), float(s)
    except ValueError:
        raise ValueError(f"--delay wants P:SECONDS, got {text!r}") from None


class Proxy:
    def __init__(self, upstream: str, settings: Settings, seed: int) -> None:
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"--upstream must be http://HOST:PORT, got {upstream!r}")
        self.up_host = u.hostname
        self.up_port = u.port or 80
        self.settings = settings
        self.rng = random.Random(seed)
        self.stats = {"requests": 0, "forwarded": 0, **{name: 0 for name in FAULTS}}

    # -- client side ----------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader, writer)
                if request is None:
                    break
                keep = await self.handle(request, reader, writer)
                if not keep:
                    break
        except (BadRequest, asyncio.LimitOverrunError, ValueError) as e:
            try:
                await answer(writer, 400, "Bad Request", f"bad request: {e}\n".encode(), [], False)
            except OSError:
                pass
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()

    async def handle(self, request, reader, writer) -> bool:
        method, target, version, headers, body = request
        conn_tokens = {
            t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")
        }
        keep = "close" not in conn_tokens and (version == "HTTP/1.1" or "keep-alive" in conn_tokens)

        if target.startswith("/_proxy/"):
            return await self.control(method, target, body, writer, keep)

        self.stats["requests"] += 1
        fault = None
        if self.settings.targets(method, target, headers):
            fault = self.draw()
        if fault is not None:
            self.stats[fault] += 1
            print(f"fault {fault}: {method} {target}", file=sys.stderr, flush=True)

        if fault == "reset":
            reset(writer)
            return False
        if fault == "stall":
            # Read (and discard) whatever the client sends until it gives up.
            try:
                await asyncio.wait_for(drain_until_eof(reader), self.settings.stall_for)
            except asyncio.TimeoutError:
                pass
            return False
        if fault in ERROR_BODIES:
            status, reason, code, message = ERROR_BODIES[fault]
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>fault-proxy-{self.stats['requests']}</RequestId></Error>"
            ).encode()
            await answer(writer, status, reason, xml, [("Content-Type", "application/xml")], keep)
            return keep
        if fault == "delay":
            await asyncio.sleep(self.settings.delay_seconds)

        try:
            status, reason, up_headers, up_body = await self.forward(method, target, headers, body)
        except (OSError, asyncio.IncompleteReadError, BadRequest) as e:
            msg = f"fault proxy: upstream failed: {e}\n".encode()
            await answer(writer, 502, "Bad Gateway", msg, [], False)
            return False
        self.stats["forwarded"] += 1
        if fault == "drop_response":
            writer.close()  # the store did the work; the client never hears of it
            return False
        hop = {"connection", "keep-alive", "transfer-encoding", "content-length"}
        passed = [(k, v) for k, v in up_headers if k.lower() not in hop]
        if method.upper() == "HEAD":
            length = next((v for k, v in up_headers if k.lower() == "content-length"), None)
            if length is not None:
                passed.append(("Content-Length", length))
            await answer(writer, status, reason, b"", passed, keep, head=True)
        else:
            await answer(writer, status, reason, up_body, passed, keep)
        return keep

    def draw(self) -> str | None:
        r = self.rng.random()
        acc = 0.0
        for name in FAULTS:
            acc += self.settings.prob[name]
            if r < acc:
                return name
        return None

    async def control(self, method, target, body, writer, keep) -> bool:
        path = target.split("?", 1)[0]
        if path == "/_proxy/stats" and method == "GET":
            out = json.dumps(self.stats).encode()
            await answer(writer, 200, "OK", out, [("Content-Type", "application/json")], keep)
        elif path == "/_proxy/config" and method == "PUT":
            try:
                # All or nothing: a bad setting leaves the old ones in force.
                candidate = copy.deepcopy(self.settings)
                candidate.update(json.loads(body or b"{}"))
                self.settings = candidate
            except (ValueError, TypeError) as e:
                await answer(writer, 400, "Bad Request", f"{e}\n".encode(), [], keep)
                return keep
            await answer(writer, 200, "OK", b"{}", [("Content-Type", "application/json")], keep)
        else:
            await answer(writer, 404, "Not Found", b"no such control endpoint\n", [], keep)
        return keep

    # -- upstream side --------------------------------------------------------

    async def forward(self, method, target, headers, body):
        reader, writer = await asyncio.open_connection(self.up_host, self.up_port)
        try:
            skip = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect"}
            lines = [f"{method} {target} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in headers if k.lower() not in skip]
            if body or method.upper() in ("PUT", "POST", "PATCH"):
                lines.append(f"Content-Length: {len(body)}")
            lines.append("Connection: close")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            parts = status_line.split(" ", 2)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            up_headers = split_headers(header_lines)
            if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
                up_body = b""
            else:
                up_body = await read_body(reader, up_headers, until_eof=True)
            return status, reason, up_headers, up_body
        finally:
            writer.close()


# -- HTTP helpers ---------------------------------------------------------------


def split_headers(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        if ":" not in line:
            raise BadRequest(f"bad header line {line!r}")
        k, v = line.split(":", 1)
        out.append((k.strip(), v.strip()))
    return out


async def read_request(reader, writer):
    """One request from the client, or None at a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest("connection closed inside a request head") from None
        return None
    if len(head) > MAX_HEAD:
        raise BadRequest("request head too large")
    request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest(f"bad request line {request_line!r}")
    method, target, version = parts
    headers = split_headers(header_lines)
    if any(k.lower() == "expect" and v.lower() == "100-continue" for k, v in headers):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    body = await read_body(reader, headers, until_eof=False)
    return method, target, version, headers, body


async def read_body(reader, headers, until_eof: bool) -> bytes:
    te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
    if "chunked" in te:
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    length = next((v for k, v in headers if k.lower() == "content-length"), None)
    if length is not None:
        n = int(length)
        if n < 0:
            raise BadRequest("negative Content-Length")
        return await reader.readexactly(n)
    return await reader.read() if until_eof else b""


async def drain_until_eof(reader) -> None:
    while await reader.read(65536):
        pass


async def answer(writer, status, reason, body, headers, keep, head=False) -> None:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if not head:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep else "Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))
    await writer.drain()


def reset(writer) -> None:
    """Close with an RST (SO_LINGER 0), not a FIN: a connection reset by peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def main() -> None:
    p = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 reverse proxy.")
    p.add_argument("--upstream", required=True, help="http://HOST:PORT of the real store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    for name in FAULTS:
        if name != "delay":
            p.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, metavar="P")
    p.add_argument("--delay", default=None, metavar="P:SECONDS")
    p.add_argument("--stall-for", type=float, default=3600.0, metavar="SECONDS",
                   help="longest a stalled connection is held (default 3600)")
    p.add_argument("--only-method", action="append", default=[])
    p.add_argument("--only-header", action="append", default=[])
    p.add_argument("--only-path-contains", default=None)
    args = p.parse_args()

    settings = Settings()
    try:
        cfg = {name: getattr(args, name) for name in FAULTS if name != "delay"}
        if args.delay is not None:
            cfg["delay"] = list(parse_delay(args.delay))
        cfg["stall_for"] = args.stall_for
        cfg["only_method"] = args.only_method
        cfg["only_header"] = args.only_header
        if args.only_path_contains is not None:
            cfg["only_path_contains"] = args.only_path_contains
        settings.update(cfg)
        proxy = Proxy(args.upstream, settings, args.seed)
    except ValueError as e:
        p.error(str(e))

    async def run() -> None:
        server = await asyncio.start_server(proxy.serve, args.host, args.port, limit=MAX_HEAD)
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
