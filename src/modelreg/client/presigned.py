"""Transfers straight between the client and the bucket, through presigned URLs.

The server hands out the URLs (``/api/v1/blobs/{sha256}/download-link`` and
``upload-link``); the bytes then travel over plain ``http.client`` connections, like the
client's other bulk transfers, and never through the server. Every download is still
hashed by ``pull`` against the manifest; every upload is re-hashed by the server before
it becomes a blob.
"""

from __future__ import annotations

import http.client
import io
import socket
from pathlib import Path
from urllib.parse import urlsplit

from modelreg.artifacts.hashing import Progress
from modelreg.client.direct import TIMEOUT, DirectBlobs, ResponseBody
from modelreg.errors import ModelregError, NotFound, StorageDenied, StorageError


class BucketUnreachable(StorageError):
    """The bucket's endpoint cannot be reached from here: go through the server instead."""


def _connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageError(f"the server handed out an unusable URL ({parts.scheme}://…)")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.connect()
    except OSError as exc:
        raise BucketUnreachable(f"cannot reach the bucket at {parts.hostname}: {exc}") from exc
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return conn, target


def _error(status: int, body: bytes, what: str) -> ModelregError:
    text = body[:300].decode("utf-8", "replace").strip()
    if status == 404:
        return NotFound(f"cannot {what}: the bucket has no such object")
    if status == 403:
        return StorageDenied(f"cannot {what}: the bucket refused the link (expired?): {text}")
    return StorageError(f"cannot {what}: the bucket answered HTTP {status}: {text}")


def open_url(url: str, sha256: str) -> io.RawIOBase:
    """A stream of a blob's bytes read from a presigned URL."""
    what = f"download blob {sha256}"
    conn, target = _connect(url)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise StorageError(f"cannot {what}: {exc}") from exc
    if response.status >= 400:
        body = response.read()
        conn.close()
        raise _error(response.status, body, what)
    return ResponseBody(conn, response, "the bucket")


def put_file(url: str, path: Path, size: int, progress: Progress | None) -> None:
    """PUT a file's bytes to a presigned URL (``sendfile`` where the link is plain HTTP)."""
    what = f"upload {path}"
    conn, target = _connect(url)
    try:
        conn.putrequest("PUT", target, skip_accept_encoding=True)
        conn.putheader("content-length", str(size))
        conn.endheaders()
        sent_error: OSError | None = None
        try:
            with open(path, "rb") as src:
                DirectBlobs.send_file(conn, src, size, progress)
        except (BrokenPipeError, ConnectionResetError) as exc:
            sent_error = exc  # the bucket may have answered early; its answer says why
        except OSError as exc:
            raise StorageError(f"cannot {what}: {exc}") from exc
        try:
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise StorageError(f"cannot {what}: {sent_error or exc}") from exc
        if response.status >= 400:
            raise _error(response.status, body, what)
    finally:
        conn.close()
