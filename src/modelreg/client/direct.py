"""Blob bytes over plain HTTP/1.1 connections (the standard library's ``http.client``).

The JSON API goes through httpx; bulk bytes do not. httpx parses a response body in
64 KiB pieces through several Python layers, which held downloads to about a third of
what one core can hash. Here a download is ``recv_into`` straight into the caller's
buffer, and an upload is ``sendfile`` from the file: the bytes cross no Python code on
the client, and the only per-byte work left is hashing.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from modelreg.artifacts.hashing import Progress
from modelreg.client.http import error_from
from modelreg.errors import NotFound, StorageError

TIMEOUT = 600.0
SLICE = 8 * 1024 * 1024  # sendfile per call, so progress advances on large files


class DirectBlobs:
    """Uploads and downloads of blobs on one server, one connection per transfer."""

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StorageError(f"cannot transfer blobs with {base_url!r}: not an http(s) URL")
        self.base_url = base_url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = dict(headers)

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=TIMEOUT)
        try:
            conn.connect()
        except OSError as exc:
            raise StorageError(f"registry at {self.base_url} failed: {exc}") from exc
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _request(self, conn: http.client.HTTPConnection, method: str, path: str) -> None:
        conn.putrequest(method, self._prefix + path, skip_accept_encoding=True)
        for key, value in self._headers.items():
            conn.putheader(key, value)

    def upload(
        self,
        path: Path,
        url_path: str,
        size: int,
        progress: Progress | None,
        *,
        method: str = "PUT",
    ) -> bytes:
        """Send a file's bytes (PUT under its digest, which the server checks, or POST
        to have the server name it); the server's answer."""
        conn = self._connect()
        try:
            self._request(conn, method, url_path)
            conn.putheader("content-type", "application/octet-stream")
            conn.putheader("content-length", str(size))
            conn.endheaders()
            sent_error: OSError | None = None
            try:
                with open(path, "rb") as src:
                    self.send_file(conn, src, size, progress)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The server may have answered early (a refused token, a full disk):
                # its response says why better than the broken pipe does.
                sent_error = exc
            except OSError as exc:
                raise StorageError(f"cannot upload {path}: {exc}") from exc
            try:
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                cause = sent_error or exc
                raise StorageError(f"registry at {self.base_url} failed: {cause}") from exc
            if response.status >= 400:
                raise error_from(response.status, body, self.base_url + url_path)
            return body
        finally:
            conn.close()

    @staticmethod
    def send_file(
        conn: http.client.HTTPConnection,
        src: io.BufferedReader,
        size: int,
        progress: Progress | None,
    ) -> None:
        """Send ``size`` bytes of ``src`` on a request whose headers are sent."""
        sock = conn.sock
        assert sock is not None
        offset = 0
        while offset < size:
            count = min(SLICE, size - offset)
            if not isinstance(sock, ssl.SSLSocket):
                sent = sock.sendfile(src, offset, count)
            else:  # TLS: the kernel cannot encrypt for us
                src.seek(offset)
                data = src.read(count)
                sock.sendall(data)
                sent = len(data)
            if sent == 0:
                raise StorageError(f"{src.name} shrank while it was uploaded")
            offset += sent
            if progress is not None:
                progress(sent)

    def open(self, url_path: str, sha256: str) -> io.RawIOBase:
        """A stream of a blob's bytes; NotFound if the server does not have it."""
        conn = self._connect()
        try:
            self._request(conn, "GET", url_path)
            conn.endheaders()
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise StorageError(f"registry at {self.base_url} failed: {exc}") from exc
        if response.status >= 400:
            body = response.read()
            conn.close()
            if response.status == 404:
                raise NotFound(f"blob {sha256} is not stored on the server", sha256=sha256)
            raise error_from(response.status, body, self.base_url + url_path)
        return ResponseBody(conn, response, f"registry at {self.base_url}")


class ResponseBody(io.RawIOBase):
    """A response body read straight into the caller's buffers."""

    def __init__(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, source: str
    ) -> None:
        self._conn = conn
        self._response = response
        self._source = source  # who sends the bytes, for messages

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            return self._response.readinto(buffer)
        except http.client.IncompleteRead as exc:
            # The server closed early; the caller's size check reports the short blob.
            return len(exc.partial)
        except (OSError, http.client.HTTPException) as exc:
            raise StorageError(f"{self._source} failed during a download: {exc}") from exc

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._conn.close()
        super().close()
