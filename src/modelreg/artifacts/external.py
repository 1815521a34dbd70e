"""External files: bytes that stay at ``s3://``, ``http(s)://`` or ``file://`` URIs.

A version may name such files instead of storing them as blobs; their size and SHA-256
are recorded at registration and checked on every read, so an external file that
changed reads as corrupt, never as the registered model. This module only opens and
lists them; hashing and checking happen where every other read is checked.

S3 sources use the standard AWS configuration of the process that reads them (the
client that pulls, or the server that verifies); HTTP sources are read anonymously.
"""

from __future__ import annotations

import functools
import http.client
import io
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from modelreg.domain.manifest import validate_relpath, validate_source
from modelreg.errors import InvalidArgument, NotFound, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

TIMEOUT = 120.0
MAX_REDIRECTS = 5


def is_uri(location: str | os.PathLike[str]) -> bool:
    """Whether a registration path names a URI rather than a local file or folder."""
    return isinstance(location, str) and "://" in location


def expand(uri: str) -> list[tuple[str, str]]:
    """The files a URI names, as (path in the version, source URI).

    ``s3://bucket/key`` and ``https://host/path/name`` are one file, named after the
    last segment; ``s3://bucket/prefix/`` is every object under the prefix, named by
    the rest of its key.
    """
    scheme = uri.partition("://")[0]
    if scheme == "s3" and uri.endswith("/"):
        return _list_s3(uri)
    validate_source(uri)
    if scheme == "file":
        raise InvalidArgument(f"register a local path ({uri}) with external=True instead")
    name = unquote(urlsplit(uri).path.rsplit("/", 1)[-1])
    return [(validate_relpath(name), uri)]


def open_source(uri: str) -> io.RawIOBase:
    """A stream of an external file's bytes; NotFound if it is gone."""
    validate_source(uri)
    scheme = uri.partition("://")[0]
    if scheme == "file":
        path = Path(unquote(urlsplit(uri).path))
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise NotFound(f"external file {uri} does not exist", source=uri) from None
        except OSError as exc:
            raise StorageError(f"cannot read external file {uri}: {exc}", source=uri) from exc
    if scheme == "s3":
        return _open_s3(uri)
    return _open_http(uri)


# ------------------------------------------------------------------------------ S3


def _s3_client() -> S3Client:
    """A client for the process's current AWS settings, made once per distinct settings."""
    return _client_for(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))


@functools.cache
def _client_for(_settings: tuple[tuple[str, str], ...]) -> S3Client:
    # boto3 is imported only when an S3 source is read.
    from modelreg.artifacts.s3_client import make_client

    return make_client()


def _bucket_key(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, unquote(parts.path.lstrip("/"))


def _open_s3(uri: str) -> io.RawIOBase:
    from modelreg.artifacts.s3_io import ObjectReader

    bucket, key = _bucket_key(uri)
    try:
        return ObjectReader(_s3_client(), bucket, key, f"read external file {uri}")
    except NotFound:
        raise NotFound(f"external file {uri} does not exist", source=uri) from None


def _list_s3(uri: str) -> list[tuple[str, str]]:
    from modelreg.artifacts.s3_client import translated

    bucket, prefix = _bucket_key(uri)
    client = _s3_client()
    found: list[tuple[str, str]] = []
    with translated(f"list {uri}", bucket=bucket, key=prefix):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                key = item["Key"]
                if key.endswith("/"):
                    continue  # a "folder" marker some tools create
                found.append((validate_relpath(key[len(prefix) :]), f"s3://{bucket}/{key}"))
    if not found:
        raise NotFound(f"no files under {uri}", source=uri)
    return sorted(found)


# ---------------------------------------------------------------------------- HTTP


def _open_http(uri: str) -> io.RawIOBase:
    url = uri
    for _redirect in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=TIMEOUT)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers={"user-agent": "modelreg"})
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise StorageError(f"cannot read external file {uri}: {exc}", source=uri) from exc
        if response.status in (301, 302, 303, 307, 308) and response.getheader("location"):
            url = urljoin(url, response.getheader("location", ""))
            conn.close()
            if urlsplit(url).scheme not in ("http", "https"):
                break
            continue
        if response.status in (404, 410):
            conn.close()
            raise NotFound(f"external file {uri} does not exist (HTTP {response.status})")
        if response.status >= 400:
            conn.close()
            raise StorageError(
                f"cannot read external file {uri}: HTTP {response.status} {response.reason}",
                source=uri,
            )
        return _HttpBody(conn, response, uri)
    raise StorageError(f"cannot read external file {uri}: too many redirects", source=uri)


class _HttpBody(io.RawIOBase):
    """A response body read straight into the caller's buffers."""

    def __init__(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, uri: str
    ) -> None:
        self._conn = conn
        self._response = response
        self._uri = uri
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._response.readinto(buffer)
        except http.client.IncompleteRead as exc:
            return len(exc.partial)  # the caller's size check reports the short file
        except (OSError, http.client.HTTPException) as exc:
            raise StorageError(f"cannot read external file {self._uri}: {exc}") from exc

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._conn.close()
        super().close()
