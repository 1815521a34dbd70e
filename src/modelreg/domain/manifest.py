"""Manifests: the immutable list of files (path, size, SHA-256) that makes up a version.

The manifest's own digest is the SHA-256 of its canonical JSON, so two registrations of
the same bytes under the same paths get the same digest on any machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from modelreg.errors import InvalidArgument, InvalidPath

MAX_PATH_LENGTH = 1024
MAX_SOURCE_LENGTH = 2000
SOURCE_SCHEMES = ("s3", "http", "https", "file")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def validate_relpath(path: object) -> str:
    """Return a safe relative POSIX path, or raise InvalidPath.

    Refuses absolute paths, ``..`` and ``.`` segments, empty segments, backslashes and
    control characters: a manifest path is joined under a destination folder on pull, so
    anything that could climb out of that folder is rejected at registration already.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPath("artifact path must be a non-empty string")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"artifact path is longer than {MAX_PATH_LENGTH} characters")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidPath(f"artifact path {path!r} is absolute", path=path)
    if "\\" in path or any(unicodedata.category(c) == "Cc" for c in path):
        raise InvalidPath(
            f"artifact path {path!r} contains a backslash or control character", path=path
        )
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath(
                f"artifact path {path!r} has an empty, '.' or '..' segment", path=path
            )
    return path


def validate_digest(digest: object) -> str:
    """Return a lowercase hex SHA-256 digest, or raise InvalidArgument."""
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise InvalidArgument(
            f"invalid SHA-256 digest {digest!r}: expected 64 lowercase hex digits"
        )
    return digest


def validate_source(source: object) -> str:
    """Return the URI of an external file, or raise InvalidArgument.

    Accepted: ``s3://bucket/key``, ``http(s)://host/path`` and ``file:///absolute/path``.
    """
    if not isinstance(source, str) or not source:
        raise InvalidArgument("an external source must be a non-empty URI")
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidArgument(f"external source is longer than {MAX_SOURCE_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" or c.isspace() for c in source):
        raise InvalidArgument(f"external source {source!r} contains spaces or control characters")
    scheme, sep, rest = source.partition("://")
    if not sep or scheme not in SOURCE_SCHEMES:
        raise InvalidArgument(
            f"unsupported external source {source!r}: use s3://, https://, http:// or file://"
        )
    host, slash, path = rest.partition("/")
    if scheme == "file":
        if host or not path:
            raise InvalidArgument(f"external source {source!r} must be file:///absolute/path")
    elif not host or not slash or not path or path.endswith("/"):
        raise InvalidArgument(f"external source {source!r} must name one file: {scheme}://host/…")
    return source


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a version: where it goes, how big it is, and its SHA-256 (hex).

    ``source`` is set for an external file: one that stays where it is (``s3://``,
    ``https://``, ``file://``) instead of being stored as a blob.
    """

    path: str
    size: int
    sha256: str
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        # Only external files carry the key: the canonical JSON, and so the digest, of
        # every manifest without them stays what it was.
        if self.source is not None:
            data["source"] = self.source
        return data


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files of a version, sorted by path."""

    files: tuple[FileEntry, ...]

    @classmethod
    def build(cls, files: list[FileEntry] | tuple[FileEntry, ...]) -> Manifest:
        """Validate paths, sizes and digests, refuse duplicates and file/folder clashes."""
        if not files:
            raise InvalidArgument("a version needs at least one file")
        seen: set[str] = set()
        for entry in files:
            validate_relpath(entry.path)
            validate_digest(entry.sha256)
            if entry.source is not None:
                validate_source(entry.source)
            if not isinstance(entry.size, int) or entry.size < 0:
                raise InvalidArgument(f"invalid size for {entry.path!r}: {entry.size!r}")
            key = unicodedata.normalize("NFC", entry.path)
            if key in seen:
                raise InvalidPath(f"duplicate artifact path {entry.path!r}", path=entry.path)
            seen.add(key)
        folders = {p.rsplit("/", 1)[0] for p in seen if "/" in p}
        parents = {
            "/".join(f.split("/")[: i + 1]) for f in folders for i in range(f.count("/") + 1)
        }
        clash = seen & parents
        if clash:
            path = sorted(clash)[0]
            raise InvalidPath(f"artifact path {path!r} is both a file and a folder", path=path)
        return cls(files=tuple(sorted(files, key=lambda e: e.path)))

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def canonical_json(self) -> bytes:
        """The exact bytes the manifest digest is computed over."""
        doc = {"format": 1, "files": [f.to_dict() for f in self.files]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_json()).hexdigest()
