#!/usr/bin/env python3
"""moto's S3 (and every other moto service) with each request handled atomically.

Why: moto's conditional PUT (``If-None-Match: *`` / ``If-Match``) checks the
condition with one read and then writes, and ``moto_server`` runs on a
threaded Werkzeug server. Two racing ``PUT If-None-Match: *`` can both pass
the check and both get 200 (measured: 16 threads, 3 of 300 rounds), which is
exactly the double hold a lock test must never see. Real S3 is atomic here,
so tests that count exclusion must use a store that is atomic too.

How: moto's own WSGI app (``DomainDispatcherApplication(create_backend_app)``,
what ``moto_server`` serves) wrapped so that ONE process-wide lock covers the
whole of each request inside moto: reading the request, every check, every
write and producing the full response. The server itself stays threaded so
that a slow or stalled client (the fault proxy holds connections open on
purpose) does not block ``accept`` or other clients; to keep such a client
from holding the lock, its request body is read into memory BEFORE taking the
lock and the response is sent AFTER releasing it.

Usage: moto_atomic.py [-H HOST] [-p PORT]   (PORT 0 = a free port)

Prints ``LISTENING <port>`` on stdout (flushed) once it accepts connections,
and Werkzeug's usual `` * Running on http://HOST:PORT`` line on stderr, so a
caller can read the port either way, as with ``moto_server``.
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class Serialized:
    """WSGI middleware: at most one request inside the wrapped app at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        # Buffer the body first (outside the lock): a client that sends its
        # body slowly must not stall everyone else.
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            body = stream.read(int(length)) if int(length) else b""
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()  # chunked: Werkzeug's stream ends at the last chunk
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        # The body is now plain bytes of known length: no longer chunked
        # (Werkzeug ignores CONTENT_LENGTH while this header says chunked).
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)

        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            captured["headers"] = headers
            captured["exc_info"] = exc_info
            return lambda data: captured.setdefault("early", []).append(data)

        with self.lock:
            result = self.app(environ, capture)
            try:
                # Produce the whole response while still holding the lock: a
                # lazy iterable may still touch moto's state.
                chunks = captured.pop("early", []) + [bytes(c) for c in result]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        # Sent without the lock: a slow reader holds only its own thread.
        start_response(captured["status"], captured["headers"], captured["exc_info"])
        return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()

    # Stop cleanly on SIGTERM/SIGINT (the test harnesses SIGKILL anyway).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.socket.getsockname()[1]
    print(f" * Running on http://{args.host}:{port}", file=sys.stderr, flush=True)
    print(f"LISTENING {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
