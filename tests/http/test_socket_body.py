"""Blob uploads that the server reads straight from the socket (its own protocol, over
real sockets): by digest and unnamed, wrong bytes, bodies cut short or stalled, a store
that fails mid-body, chunked bodies and ``Expect: 100-continue``."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelreg.artifacts.local import LocalArtifactStore
from modelreg.errors import StorageError
from modelreg.server import socket_body

BLOBS = "/api/v1/blobs"


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every body the server took from the socket."""
    lengths: list[int] = []
    real = socket_body.take

    def recorded(scope: Any, length: int | None) -> socket_body.SocketBody | None:
        body = real(scope, length)
        if body is not None:
            assert length is not None
            lengths.append(length)
        return body

    monkeypatch.setattr(socket_body, "take", recorded)
    return lengths


def url(live: tuple[str, int], path: str) -> str:
    return f"http://{live[0]}:{live[1]}{path}"


def stored(live: tuple[str, int], sha: str) -> bool:
    return httpx.head(url(live, f"{BLOBS}/{sha}")).status_code == 200


def raw_request(
    live: tuple[str, int], head: str, body: bytes = b"", *, shut: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Send a request as given (headers, then ``body``; ``shut``: end the sending side
    after it) and read the answer to the end of the connection."""
    with socket.create_connection(live, timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode().split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


def test_uploads_by_digest_and_unnamed_are_read_from_the_socket(
    live: tuple[str, int], taken: list[int]
) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    sha = hashlib.sha256(data).hexdigest()
    answer = httpx.put(url(live, f"{BLOBS}/{sha}"), content=data)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"sha256": sha, "size": len(data)}
    # The parser never saw the end of the body: this connection is done.
    assert answer.headers["connection"] == "close"
    other = os.urandom(2 * 1024 * 1024)
    answer = httpx.post(url(live, BLOBS), content=other)
    assert answer.status_code == 201, answer.text
    assert answer.json()["sha256"] == hashlib.sha256(other).hexdigest()
    assert taken == [len(data), len(other)]
    got = httpx.get(url(live, f"{BLOBS}/{sha}"))
    assert got.content == data


def test_wrong_bytes_are_refused_and_nothing_is_stored(
    live: tuple[str, int], taken: list[int]
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    claimed = hashlib.sha256(b"something else").hexdigest()
    answer = httpx.put(url(live, f"{BLOBS}/{claimed}"), content=data)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "DIGEST_MISMATCH"
    assert taken == [len(data)]
    assert not stored(live, claimed)
    assert not stored(live, hashlib.sha256(data).hexdigest())


def test_a_body_cut_short_stores_nothing(live: tuple[str, int], taken: list[int]) -> None:
    data = os.urandom(4 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    head = f"PUT {BLOBS}/{sha} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(data)}\r\n"
    status, _, payload = raw_request(live, head, data[: len(data) // 2], shut=True)
    assert status == 400
    assert "disconnected" in json.loads(payload)["error"]["message"]
    assert taken == [len(data)]
    assert not stored(live, sha)


def test_a_client_that_stops_sending_is_refused(
    live: tuple[str, int], taken: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket_body, "STALL", 0.3)
    head = f"POST {BLOBS} HTTP/1.1\r\nhost: x\r\ncontent-length: {10 * 1024 * 1024}\r\n"
    with socket.create_connection(live, timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + b"x" * 1024 * 1024)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"sent nothing" in answer
    assert taken == [10 * 1024 * 1024]


def test_a_store_that_fails_mid_body_still_answers_the_client(
    live: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_put(self: LocalArtifactStore, src: Any, **_: Any) -> Any:
        src.readinto(memoryview(bytearray(1024 * 1024)))
        raise StorageError("the disk is full")

    monkeypatch.setattr(LocalArtifactStore, "put", failing_put)
    data = os.urandom(64 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    head = f"PUT {BLOBS}/{sha} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(data)}\r\n"
    # The whole body goes out without a reset, and the error arrives after it.
    status, _, payload = raw_request(live, head, data)
    assert status == 503
    assert json.loads(payload)["error"]["code"] == "STORAGE_ERROR"


def test_chunked_bodies_go_through_the_parser(live: tuple[str, int], taken: list[int]) -> None:
    data = os.urandom(3 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(data), 1024 * 1024):
            yield data[start : start + 1024 * 1024]

    answer = httpx.put(url(live, f"{BLOBS}/{sha}"), content=pieces())
    assert answer.status_code == 201, answer.text
    assert taken == []
    assert stored(live, sha)


def test_expect_100_continue(live: tuple[str, int], taken: list[int]) -> None:
    data = os.urandom(2 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    head = (
        f"PUT {BLOBS}/{sha} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(data)}\r\n"
        "expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(live, timeout=30) as sock:
        sock.sendall(head.encode())
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201")
    assert taken == [len(data)]
    assert stored(live, sha)


def test_small_bodies_go_through_the_parser_and_keep_the_connection(
    live: tuple[str, int], taken: list[int]
) -> None:
    data = os.urandom(socket_body.TAKE_FROM - 1)
    sha = hashlib.sha256(data).hexdigest()
    conn = http.client.HTTPConnection(*live, timeout=30)
    conn.request("PUT", f"{BLOBS}/{sha}", body=data)
    response = conn.getresponse()
    assert (response.status, response.getheader("connection")) == (201, None)
    response.read()
    conn.request("HEAD", f"{BLOBS}/{sha}")
    assert conn.getresponse().status == 200
    conn.close()
    assert taken == []
