"""Blob downloads sent with ``sendfile`` by the server's own protocol, over real sockets:
the whole blob, ranges, an empty blob, kept-alive connections, and clients that go away
or stop reading. In-process ASGI clients (the rest of this folder) get streamed bodies."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import http.client
import mmap
import os
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelreg.artifacts import files, hashing
from modelreg.server import direct_read, zerocopy

BLOBS = "/api/v1/blobs"


@pytest.fixture(autouse=True)
def forget_direct_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """No blob counts as read directly before (inode numbers of earlier tests recur)."""
    monkeypatch.setattr(direct_read, "_RECENT", {})


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every blob the server sends from a file: (offset, count, bytes sent)."""
    calls: list[tuple[int, int, int]] = []
    real = zerocopy.send_blob

    def recorded(out: int, src: int, offset: int, count: int, direct: bool) -> int:
        n = real(out, src, offset, count, direct)
        calls.append((offset, count, n))
        return n

    monkeypatch.setattr(zerocopy, "send_blob", recorded)
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


@pytest.mark.parametrize("direct", [True, False], ids=["direct-reads", "sendfile"])
def test_a_client_that_goes_away_mid_blob_leaves_the_server_serving(
    app: FastAPI, live: tuple[str, int], sent: list[tuple[int, int, int]], direct: bool
) -> None:
    app.state.registry.blobs.direct_io = direct
    data = os.urandom(64 * 1024 * 1024)
    sha = put_blob(live, data)
    if direct:
        evict(app.state.registry.blobs.path_of(sha))  # so that it is read directly
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


@pytest.mark.parametrize("direct", [True, False], ids=["direct-reads", "sendfile"])
def test_a_client_that_stops_reading_is_dropped(
    app: FastAPI,
    live: tuple[str, int],
    sent: list[tuple[int, int, int]],
    monkeypatch: pytest.MonkeyPatch,
    direct: bool,
) -> None:
    app.state.registry.blobs.direct_io = direct
    monkeypatch.setattr(zerocopy, "STALL", 0.3)
    data = os.urandom(64 * 1024 * 1024)
    sha = put_blob(live, data)
    if direct:
        evict(app.state.registry.blobs.path_of(sha))  # so that it is read directly
    sock = socket.create_connection(live, timeout=30)
    sock.sendall(f"GET {BLOBS}/{sha} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    wait_for(sent)
    received = 0
    while chunk := sock.recv(1024 * 1024):
        received += len(chunk)
    sock.close()
    assert sent[0][2] < len(data)
    assert received < len(data)  # headers included, still short: the body was cut


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, int]]]:
    """Blobs of 1 MiB and more may be read directly; what each path sent: (offset, count)."""
    monkeypatch.setattr(files, "DIRECT_FROM", 1024 * 1024)
    calls: dict[str, list[tuple[int, int]]] = {"direct": [], "sendfile": []}
    real_direct, real_file = direct_read.send_direct, zerocopy.send_file

    def send_direct(out: int, src: int, offset: int, count: int, stall: float) -> int | None:
        calls["direct"].append((offset, count))
        return real_direct(out, src, offset, count, stall)

    def send_file(out: int, src: int, offset: int, count: int) -> int:
        calls["sendfile"].append((offset, count))
        return real_file(out, src, offset, count)

    monkeypatch.setattr(direct_read, "send_direct", send_direct)
    monkeypatch.setattr(zerocopy, "send_file", send_file)
    return calls


def needs_direct_io(folder: Path) -> None:
    out, direct = files.create_new(folder / ".probe", direct=True)
    out.close()
    (folder / ".probe").unlink()
    if not direct:
        pytest.skip(f"the file system of {folder} does not do direct I/O")


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache, as if it had been written around it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert not direct_read.cached(fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_a_large_blob_the_page_cache_lacks_is_sent_from_direct_reads(
    app: FastAPI,
    live: tuple[str, int],
    paths: dict[str, list[tuple[int, int]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    needs_direct_io(tmp_path)
    data = os.urandom(5 * 1024 * 1024 + 123)
    sha = put_blob(live, data)
    blobs = app.state.registry.blobs
    evict(blobs.path_of(sha))
    conn = http.client.HTTPConnection(*live, timeout=30)
    assert get(conn, f"{BLOBS}/{sha}")[::2] == (200, data)
    # Asked for again at once: through the page cache, for the pulls that may follow.
    evict(blobs.path_of(sha))
    status, _, body = get(conn, f"{BLOBS}/{sha}", {"range": "bytes=4097-3145733"})
    assert (status, body) == (206, data[4097:3145734])
    # Long enough after: directly again. From an unaligned offset, the reads start at
    # the page before it.
    monkeypatch.setattr(direct_read, "REPEAT", 0.0)
    evict(blobs.path_of(sha))
    status, _, body = get(conn, f"{BLOBS}/{sha}", {"range": "bytes=4097-3145733"})
    assert (status, body) == (206, data[4097:3145734])
    # Too small a slice to be worth it, and a slice the page cache now holds.
    assert get(conn, f"{BLOBS}/{sha}", {"range": "bytes=-5"})[::2] == (206, data[-5:])
    assert blobs.path_of(sha).read_bytes() == data  # now in the page cache
    assert get(conn, f"{BLOBS}/{sha}")[::2] == (200, data)
    conn.close()
    ranged = (4097, 3145733 - 4097 + 1)
    assert paths["direct"] == [(0, len(data)), ranged]
    assert paths["sendfile"] == [ranged, (len(data) - 5, 5), (0, len(data))]


def test_with_direct_io_off_blobs_go_out_with_sendfile(
    app: FastAPI, live: tuple[str, int], paths: dict[str, list[tuple[int, int]]]
) -> None:
    app.state.registry.blobs.direct_io = False
    data = os.urandom(2 * 1024 * 1024)
    sha = put_blob(live, data)
    conn = http.client.HTTPConnection(*live, timeout=30)
    assert get(conn, f"{BLOBS}/{sha}")[::2] == (200, data)
    conn.close()
    assert paths == {"direct": [], "sendfile": [(0, len(data))]}


def test_the_page_cache_probe(tmp_path: Path) -> None:
    needs_direct_io(tmp_path)
    path = tmp_path / "blob"
    out, _ = files.create_new(path, direct=True)
    with out:
        out.write(mmap.mmap(-1, 3 * hashing.ALIGN))  # aligned: nothing goes through the cache
    with open(path, "rb", buffering=0) as src:
        assert not direct_read.cached(src.fileno(), 0, 3 * hashing.ALIGN)
        src.read()
        assert direct_read.cached(src.fileno(), 0, 3 * hashing.ALIGN)
        assert direct_read.cached(src.fileno(), 0, 0)


def test_blobs_read_directly_are_remembered_for_a_while_and_in_bounded_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_read, "REMEMBERED", 2)
    paths = [tmp_path / f"blob{i}" for i in range(3)]
    for path in paths:
        path.write_bytes(b"x")
    fds = [os.open(path, os.O_RDONLY) for path in paths]
    try:
        assert [direct_read.first_read(fd) for fd in fds] == [True, True, True]
        assert not direct_read.first_read(fds[2])  # a repeat
        assert direct_read.first_read(fds[0])  # forgotten: the oldest made room
        assert len(direct_read._RECENT) == 2
        monkeypatch.setattr(direct_read, "REPEAT", 0.0)
        assert direct_read.first_read(fds[2])  # long enough ago
    finally:
        for fd in fds:
            os.close(fd)


def test_send_direct_stops_where_the_file_ends(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "short"
    path.write_bytes(data)
    left, right = socket.socketpair()
    left.setblocking(False)
    with left, right, open(path, "rb", buffering=0) as src:
        sent = direct_read.send_direct(left.fileno(), src.fileno(), 100, 50_000, 5.0)
        if sent is None:
            pytest.skip(f"the file system of {tmp_path} does not do direct I/O")
        assert sent == len(data) - 100
        received = b""
        while len(received) < sent:
            received += right.recv(65536)
        assert received == data[100:]


def test_a_file_system_that_refuses_direct_reads_leaves_the_file_to_sendfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 10_000)
    real_preadv = os.preadv

    def refusing(fd: int, buffers: list[Any], offset: int, flags: int = 0) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_preadv(fd, buffers, offset, flags)

    monkeypatch.setattr(os, "preadv", refusing)
    left, right = socket.socketpair()
    left.setblocking(False)
    with left, right, open(path, "rb", buffering=0) as src:
        assert direct_read.send_direct(left.fileno(), src.fileno(), 0, 10_000, 5.0) is None
        assert not fcntl.fcntl(src.fileno(), fcntl.F_GETFL) & os.O_DIRECT
        right.setblocking(False)
        with pytest.raises(BlockingIOError):
            right.recv(1)  # nothing was sent


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
