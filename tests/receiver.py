"""A real webhook receiver on loopback: an HTTP server in a thread that records what it
gets, and can be told to fail its first requests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelreg.events import signing


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signed_by(self, secret: str) -> bool:
        return signing.verify(
            secret,
            self.body,
            self.headers.get(signing.TIMESTAMP_HEADER.lower()),
            self.headers.get(signing.SIGNATURE_HEADER.lower()),
        )


class Receiver:
    """Answers 500 to its first ``failures`` requests, then 204; keeps every request."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    status = 500 if receiver.failures > 0 else 204
                    receiver.failures -= 1
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append(Received(headers, body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def delivered(self) -> list[Received]:
        """Requests answered with success."""
        with self._lock:
            return [r for r in self.received if r.answered < 300]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Poll until ``count`` requests were answered with success, or fail."""
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.delivered())} of {count} deliveries after {timeout} s: "
                    f"{[(r.answered, r.body[:80]) for r in self.received]}"
                )
            time.sleep(0.05)
        return self.delivered()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
