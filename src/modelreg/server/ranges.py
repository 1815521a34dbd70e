"""HTTP ``Range`` and conditional-request headers for immutable, content-addressed blobs."""

from __future__ import annotations

import re

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range lies outside the blob (416)."""


def etag(sha256: str) -> str:
    """A blob's strong ETag: its digest, which never changes for the same URL."""
    return f'"sha256:{sha256}"'


def matches(header: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match``/``If-Range`` header names ``tag`` (or ``*``)."""
    if header is None:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or tag in candidates


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks for, or None for the whole blob.

    One range only; a header we do not understand (several ranges, other units) is
    ignored, as RFC 9110 allows, and the whole blob is sent.
    """
    if header is None:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)
