"""A small S3 endpoint that keeps connections open, for benchmarks.

moto answers every request with ``Connection: close``, so a client measured
against it pays a TCP connection per request, and that cost (the same for every
client) hides the client's own. This server speaks HTTP/1.1 with keep-alive
and honours what a lock needs, nothing more:

- ``PUT /bucket`` creates a bucket;
- ``PUT /bucket/key`` stores an object; ``If-None-Match: *`` fails with 412 when
  it exists, ``If-Match: <ETag>`` when its ETag differs (or it is missing);
- ``GET`` / ``HEAD /bucket/key`` read it (``If-Match`` honoured), 404 when missing;
- ``DELETE /bucket/key`` removes it; ``If-Match`` fails with 412 on another
  ETag and 404 when the object is missing; without it, 204 always (as S3);
- ``GET /`` (not S3) answers the number of connections accepted so far.

Bodies may come with a Content-Length, chunked, or ``aws-chunked`` (botocore's
streaming checksums). No authentication is checked: it is a benchmark peer, for
127.0.0.1 only. Standard library only.

Run alone: ``python keepalive_s3.py [port]`` (prints the URL, serves until
killed); or ``start()`` from another script.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, dict[str, tuple[bytes, str]]] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise
    disable_nagle_algorithm = True
    server: "Server"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.store.lock:
            self.server.connections += 1

    # -- plumbing --------------------------------------------------------

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = self._read_chunked()
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "aws-chunked" in self.headers.get("Content-Encoding", "").lower():
            # Same framing inside the body: "<hex>[;chunk-signature=...]\r\n<data>\r\n...0\r\n<trailers>".
            data, rest = bytearray(), raw
            while rest:
                line, _, rest = rest.partition(b"\r\n")
                size = int(line.split(b";")[0] or b"0", 16)
                if size == 0:
                    break
                data += rest[:size]
                rest = rest[size + 2 :]
            return bytes(data)
        return raw

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False) -> None:
        # One write for head and body: no wait for a delayed ACK between them.
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
                 "Server: condlock-bench-keepalive",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        self._send(status, _XML.format(code=code, message=message).encode(),
                   {"Content-Type": "application/xml"}, head)

    def _target(self) -> tuple[str, str]:
        path = unquote(urlsplit(self.path).path).lstrip("/")
        bucket, _, key = path.partition("/")
        return bucket, key

    # -- S3 -------------------------------------------------------------

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        body = self._body()
        bucket, key = self._target()
        store = self.server.store
        with store.lock:
            if not key:
                store.buckets.setdefault(bucket, {})
                return self._send(200)
            objects = store.buckets.get(bucket)
            if objects is None:
                return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
            current = objects.get(key)
            if self.headers.get("If-None-Match", "").strip() == "*" and current is not None:
                return self._error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
            if_match = self.headers.get("If-Match")
            if if_match is not None and (current is None or current[1] != if_match.strip()):
                code = 412 if current is not None else 404
                return self._error(code, "PreconditionFailed" if current else "NoSuchKey", "If-Match did not hold")
            etag = '"' + hashlib.md5(body).hexdigest() + '"'  # noqa: S324 - S3's ETag, not security
            objects[key] = (body, etag)
        self._send(200, headers={"ETag": etag})

    def _read(self, head: bool) -> None:
        bucket, key = self._target()
        with self.server.store.lock:
            current = self.server.store.buckets.get(bucket, {}).get(key)
        if current is None:
            return self._error(404, "NoSuchKey", "The specified key does not exist.", head)
        if_match = self.headers.get("If-Match")
        if if_match is not None and current[1] != if_match.strip():
            return self._error(412, "PreconditionFailed", "If-Match did not hold", head)
        self._send(200, current[0], {"ETag": current[1], "Content-Type": "application/json"}, head)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/":
            # Not S3: how many connections were accepted so far (the benchmark
            # checks that clients kept theirs open).
            with self.server.store.lock:
                count = self.server.connections
            return self._send(200, str(count).encode(), {"Content-Type": "text/plain"})
        self._read(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._read(head=True)

    def do_DELETE(self) -> None:  # noqa: N802
        self._body()
        bucket, key = self._target()
        store = self.server.store
        with store.lock:
            objects = store.buckets.get(bucket)
            if objects is None:
                return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
            current = objects.get(key)
            if_match = self.headers.get("If-Match")
            if if_match is not None:
                if current is None:
                    return self._error(404, "NoSuchKey", "The specified key does not exist.")
                if current[1] != if_match.strip():
                    return self._error(412, "PreconditionFailed", "If-Match did not hold")
            objects.pop(key, None)
        self._send(204)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.store = Store()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def start(port: int = 0) -> Server:
    """Serve on 127.0.0.1 from a daemon thread; ``server.shutdown()`` stops it."""
    server = Server(port)
    threading.Thread(target=server.serve_forever, name="keepalive-s3", daemon=True).start()
    return server


if __name__ == "__main__":
    srv = Server(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(srv.url, flush=True)
    srv.serve_forever()
