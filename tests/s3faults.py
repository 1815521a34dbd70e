"""A loopback HTTP proxy in front of the S3 server that injects faults on demand.

Point ``AWS_ENDPOINT_URL`` at ``proxy.endpoint``; requests are forwarded unchanged
(the signature covers the Host header, which S3 servers check only when they check
signatures at all: moto's default does not). ``throttle(n)`` answers the next ``n``
requests with 503 SlowDown; ``cut_next_download(after)`` sends only ``after`` bytes of
the next GET's body and then drops the connection; ``drop_next_upload()`` reads half of
the next PUT's body and then drops the connection without answering.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


# Set by the proxy itself rather than copied from the upstream answer.
HOP_HEADERS = ("connection", "transfer-encoding", "content-length", "server", "date")


class FaultyProxy:
    """A threaded proxy; ``requests`` counts what reached it."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lock = threading.Lock()
        self.to_throttle = 0
        self.cut_after: int | None = None
        self.drop_upload = False
        self.dropped = 0
        self.requests: list[str] = []
        self.throttled = 0
        self.cuts = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.forward(self)

            def do_PUT(self) -> None:
                proxy.forward(self)

            def do_POST(self) -> None:
                proxy.forward(self)

            def do_HEAD(self) -> None:
                proxy.forward(self)

            def do_DELETE(self) -> None:
                proxy.forward(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def throttle(self, count: int) -> None:
        with self.lock:
            self.to_throttle = count

    def cut_next_download(self, after: int) -> None:
        with self.lock:
            self.cut_after = after

    def drop_next_upload(self) -> None:
        with self.lock:
            self.drop_upload = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def forward(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        with self.lock:
            drop = self.drop_upload and handler.command == "PUT" and length > 1
            if drop:
                self.drop_upload = False
                self.dropped += 1
        if drop:
            handler.rfile.read(length // 2)
            handler.close_connection = True  # no answer: the connection just ends
            return
        body = handler.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append(f"{handler.command} {handler.path}")
            throttle = self.to_throttle > 0
            if throttle:
                self.to_throttle -= 1
                self.throttled += 1
            cut = self.cut_after if handler.command == "GET" and not throttle else None
            if cut is not None:
                self.cut_after = None
                self.cuts += 1
        if throttle:
            handler.send_response(503)
            handler.send_header("content-type", "application/xml")
            handler.send_header("content-length", str(len(SLOW_DOWN)))
            handler.end_headers()
            handler.wfile.write(SLOW_DOWN)
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
            conn.request(handler.command, handler.path, body=body, headers=headers)
            answer = conn.getresponse()
            content = answer.read()
        finally:
            conn.close()
        handler.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in (
                "connection",
                "transfer-encoding",
                "content-length",
                "server",
                "date",
            ):
                handler.send_header(key, value)
        # A HEAD answer has no body but the length of the one a GET would get.
        declared = answer.getheader("content-length") if handler.command == "HEAD" else None
        handler.send_header("content-length", declared or str(len(content)))
        if cut is not None:
            handler.send_header("connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content if cut is None else content[:cut])
        if cut is not None:
            handler.close_connection = True
