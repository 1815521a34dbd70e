"""Blob downloads sent with ``sendfile`` by the server's own protocol, over real sockets:
the whole blob, ranges, an empty blob, kept-alive connections, and clients that go away
or stop reading. In-process ASGI clients (the rest of this folder) get streamed bodies."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelreg.server import zerocopy

BLOBS = "/api/v1/blobs"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every ``sendfile`` transfer the server makes: (offset, count, bytes sent)."""
    calls: list[tuple[int, int, int]] = []
    real = zerocopy.send_file

    def recorded(out: int, src: int, offset: int, count: int) -> int:
        n = real(out, src, offset, count)
        calls.append((offset, count, n))
        return n

    monkeypatch.setattr(zerocopy, "send_file", recorded)
    return calls


def put_blob(live: tuple[str, int], data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    host, port = live
    answer = httpx.put(f"http://{host}:{port}{BLOBS}/{sha}", content=data)
    assert answer.status_code == 201, answer.text
    return sha


def wait_for(sent: list[tuple[int, int, int]]) -> None:
    """Until the server's first transfer has ended (its thread records it)."""
    deadline = time.monotonic() + 30
    while not sent:
        assert time.monotonic() < deadline, "the server's transfer never ended"
        time.sleep(0.01)


def get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_a_blob_is_sent_whole_and_in_ranges_on_one_kept_alive_connection(
    live: tuple[str, int], sent: list[tuple[int, int, int]]
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    sha = put_blob(live, data)
    conn = http.client.HTTPConnection(*live, timeout=30)
    status, headers, body = get(conn, f"{BLOBS}/{sha}")
    assert (status, headers["content-length"], body) == (200, str(len(data)), data)
    status, headers, body = get(conn, f"{BLOBS}/{sha}", {"range": "bytes=10-99"})
    assert (status, headers["content-range"], body) == (
        206,
        f"bytes 10-99/{len(data)}",
        data[10:100],
    )
    status, _, body = get(conn, f"{BLOBS}/{sha}", {"range": "bytes=-5"})
    assert (status, body) == (206, data[-5:])
    # Conditional and JSON answers still work on the same connection afterwards.
    status, _, body = get(conn, f"{BLOBS}/{sha}", {"if-none-match": f'"sha256:{sha}"'})
    assert (status, body) == (304, b"")
    status, _, body = get(conn, "/healthz")
    assert status == 200
    conn.close()
    assert sent == [(0, len(data), len(data)), (10, 90, 90), (len(data) - 5, 5, 5)]


def test_an_empty_blob(live: tuple[str, int], sent: list[tuple[int, int, int]]) -> None:
    sha = put_blob(live, b"")
    conn = http.client.HTTPConnection(*live, timeout=30)
    assert get(conn, f"{BLOBS}/{sha}")[::2] == (200, b"")
    conn.close()
    # With nothing to send after the headers, the client can finish first.
    wait_for(sent)
    assert sent == [(0, 0, 0)]


def test_a_client_that_goes_away_mid_blob_leaves_the_server_serving(
    live: tuple[str, int], sent: list[tuple[int, int, int]]
) -> None:
    data = os.urandom(64 * 1024 * 1024)
    sha = put_blob(live, data)
    sock = socket.create_connection(live, timeout=30)
    sock.sendall(f"GET {BLOBS}/{sha} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    assert sock.recv(1024 * 1024)
    # Closed with unread data: the kernel resets the connection.
    sock.close()
    wait_for(sent)
    assert sent[0][2] < len(data)
    conn = http.client.HTTPConnection(*live, timeout=30)
    assert get(conn, f"{BLOBS}/{sha}", {"range": "bytes=0-9"})[::2] == (206, data[:10])
    conn.close()


def test_a_client_that_stops_reading_is_dropped(
    live: tuple[str, int], sent: list[tuple[int, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zerocopy, "STALL", 0.3)
    data = os.urandom(64 * 1024 * 1024)
    sha = put_blob(live, data)
    sock = socket.create_connection(live, timeout=30)
    sock.sendall(f"GET {BLOBS}/{sha} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    wait_for(sent)
    received = 0
    while chunk := sock.recv(1024 * 1024):
        received += len(chunk)
    sock.close()
    assert sent[0][2] < len(data)
    assert received < len(data)  # headers included, still short: the body was cut


def test_send_file_stops_where_the_file_ends(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(b"x" * 1000)
    left, right = socket.socketpair()
    left.setblocking(False)
    with left, right, open(path, "rb") as src:
        assert zerocopy.send_file(left.fileno(), src.fileno(), 100, 5000) == 900
        assert right.recv(2000) == b"x" * 900


class FakeTransport:
    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def get_extra_info(self, name: str) -> Any:
        return self.extra.get(name)


class FakeCycle:
    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.response_started = False
        self.response_complete = False
        self.disconnected = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0

    async def send(self, message: Any) -> None:
        raise AssertionError("not called here")


def test_only_plain_tcp_connections_of_a_known_cycle_are_offered_it() -> None:
    with socket.socket() as sock:
        plain = FakeCycle(FakeTransport({"socket": sock}))
        scope: dict[str, Any] = {"extensions": {"other": {}}}
        zerocopy.offer(plain, scope)
        assert isinstance(plain.send, zerocopy.ZeroCopySend)
        assert zerocopy.supported(scope)
        assert "other" in scope["extensions"]

        assert zerocopy.plain_tcp(plain.transport)  # type: ignore[arg-type]
        tls = FakeTransport({"socket": sock, "sslcontext": ssl.create_default_context()})
        assert not zerocopy.plain_tcp(tls)  # type: ignore[arg-type]
        assert not zerocopy.plain_tcp(FakeTransport({}))  # type: ignore[arg-type]

    unknown = object()
    scope = {}
    zerocopy.offer(unknown, scope)
    assert not zerocopy.supported(scope)
