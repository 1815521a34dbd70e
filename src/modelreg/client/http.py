"""One HTTP session to a registry server: auth headers, JSON, and errors mapped back to
the registry's own exception classes.

Requests go over the standard library's ``http.client``, one kept-alive connection per
thread: a registry call is small, and httpx's own per-request work cost about as much as
the server's answer. An ``httpx.Client`` passed in (tests bind one to an in-process app)
carries every request instead.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from modelreg import errors

TIMEOUT = 120.0
# Reconnect before reusing a connection idle this long: the server closes idle ones
# after 75 s, and a request must not race that close.
MAX_IDLE = 30.0
# Requests safe to send again on a fresh connection when a kept-alive one turns out dead.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
USER_AGENT = "modelreg-python"

Params = Mapping[str, str | int | bool | Iterable[str] | None]


class Session:
    """Requests to one server; raises ModelregError subclasses for every failure."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        user: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.InvalidArgument(f"invalid registry URL {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path
        headers = {"user-agent": USER_AGENT}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if user:
            headers["x-modelreg-user"] = user
        self.headers = headers
        self.custom_client = client is not None
        self.client = client
        if client is not None:
            client.headers.update(headers)
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every connection this session opened."""
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
        if self.client is not None:
            self.client.close()

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/v1/models``."""
        return self.base_url + path

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params | None = None,
        timeout: float | None = TIMEOUT,
    ) -> Any:
        """Send a request and return its parsed JSON body (None for 204).

        The body is ``json`` encoded, or ``content`` sent as raw bytes (a small blob).
        ``timeout`` bounds each wait for the server; None waits as long as it takes.
        """
        query = _query(params)
        target = path + (f"?{query}" if query else "")
        body: bytes | None
        if content is not None:
            body, kind = content, "application/octet-stream"
        else:
            body, kind = (orjson.dumps(json) if json is not None else None), "application/json"
        if self.client is not None:
            status, answer = self._via_httpx(method, target, body, kind, timeout)
        else:
            status, answer = self._via_stdlib(method, target, body, kind, timeout)
        if status >= 400:
            raise error_from(status, answer, self.url(path))
        if status == 204 or not answer:
            return None
        return orjson.loads(answer)

    def _via_httpx(
        self, method: str, target: str, body: bytes | None, kind: str, timeout: float | None
    ) -> tuple[int, bytes]:
        assert self.client is not None
        headers = {"content-type": kind} if body is not None else None
        try:
            response = self.client.request(
                method, self.url(target), content=body, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        return response.status_code, response.content

    def _via_stdlib(
        self, method: str, target: str, body: bytes | None, kind: str, timeout: float | None
    ) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["content-type"] = kind
        conn, reused = self._connection()
        for attempt in (1, 2):
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, self._prefix + target, body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
            except (http.client.HTTPException, OSError) as exc:
                self._drop(conn)
                stale = isinstance(
                    exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                )
                if attempt == 1 and reused and stale and method in IDEMPOTENT:
                    conn, reused = self._connection()
                    continue
                raise unreachable(self.base_url, exc) from exc
            if response.will_close:
                self._drop(conn)
            else:
                self._local.used = time.monotonic()
            return response.status, content
        raise AssertionError("unreachable")  # the loop returns or raises

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection (reused: True) or a new one."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - self._local.used < MAX_IDLE:
            return conn, True
        if conn is not None:
            self._drop(conn)
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=TIMEOUT)
        try:
            conn.connect()
        except OSError as exc:
            raise unreachable(self.base_url, exc) from exc
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn, self._local.used = conn, time.monotonic()
        with self._lock:
            self._open.append(conn)
        return conn, False

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)

    def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send a prepared request through the injected httpx client."""
        assert self.client is not None
        try:
            return self.client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc


def unreachable(base_url: str, exc: Exception) -> errors.StorageError:
    """The error for a server that cannot be reached or broke the connection."""
    return errors.StorageError(f"registry at {base_url} failed: {type(exc).__name__}: {exc}")


def check(response: httpx.Response) -> None:
    """Raise the registry error a response carries, if it is an error."""
    if response.status_code < 400:
        return
    if not response.is_closed:
        response.read()
    raise error_from(response.status_code, response.content, str(response.request.url))


def error_from(status: int, body: bytes, url: str) -> errors.ModelregError:
    """The registry error an error response's body describes."""
    try:
        error = orjson.loads(body)["error"]
        if not isinstance(error, dict) or "code" not in error:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        # Not our server's shape (a proxy, a load balancer): keep the status and text.
        cls = errors.StorageError if status >= 500 else errors.InvalidArgument
        text = body[:200].decode("utf-8", "replace").strip()
        return cls(f"HTTP {status} from {url}: {text}")
    return errors.from_dict(error)


def _query(params: Params | None) -> str:
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, item) for item in value)
    return urlencode(pairs)
