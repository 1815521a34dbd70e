"""Blob heads: the size and first MiB of stored blobs, recorded so a client can learn,
before it hashes a large new file, that no stored blob can be that file.

Such a file is sent while it is hashed (the server names the blob by what it received)
instead of being hashed first and sent after, so the client's hash no longer adds to the
upload's time.
A file whose size and head match a stored blob is hashed first as usual, and sent only if
that blob turns out to be another one. The table is a hint: a missing row costs one
needless upload (stored once), a stale row one needless hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from modelreg.artifacts.base import ArtifactStore
from modelreg.artifacts.hashing import HEAD_BYTES, head_digest
from modelreg.errors import NotFound
from modelreg.store import queries as q
from modelreg.store import tables as t
from modelreg.store.database import Database

_H = t.blob_heads.c
# Values per statement, well below any backend's limit on bound parameters.
_BATCH = 500


def remember(db: Database, blobs: ArtifactStore, sha256s: Iterable[str]) -> None:
    """Record the head of each stored blob of ``HEAD_BYTES`` or more, read back from the
    store (what the blob holds, not what a client said it sent). Blobs whose head is
    already recorded are skipped without reading them."""
    wanted = list(dict.fromkeys(sha256s))
    if not wanted:
        return
    recorded = _recorded(db, wanted)
    rows = []
    for sha in wanted:
        if sha in recorded:
            continue  # registering a stored blob again reads nothing back
        stat = blobs.stat(sha)
        if stat is None or stat.size < HEAD_BYTES:
            continue  # smaller files are hashed before they are sent: nothing to save
        try:
            with blobs.open(sha) as src:
                rows.append({"sha256": sha, "size": stat.size, "head": head_digest(src)})
        except NotFound:
            continue  # collected meanwhile: nothing to remember
    if not rows:
        return
    with db.write() as conn:
        conn.execute(q.insert_or_skip(db.dialect, t.blob_heads), rows)


def _recorded(db: Database, sha256s: Sequence[str]) -> set[str]:
    """Which of ``sha256s`` already have a recorded head."""
    found: set[str] = set()
    with db.read() as conn:
        for start in range(0, len(sha256s), _BATCH):
            batch = sha256s[start : start + _BATCH]
            found.update(conn.scalars(sa.select(_H.sha256).where(_H.sha256.in_(batch))))
    return found


def known(db: Database, files: Sequence[tuple[int, str]]) -> list[bool]:
    """For each (size, head): whether a stored blob may be that file."""
    if not files:
        return []
    wanted = sorted(set(files))
    found: set[tuple[int, str]] = set()
    with db.read() as conn:
        for start in range(0, len(wanted), _BATCH):
            pairs = sa.tuple_(_H.size, _H.head).in_(wanted[start : start + _BATCH])
            rows = conn.execute(sa.select(_H.size, _H.head).where(pairs))
            found.update((int(size), str(head)) for size, head in rows)
    return [f in found for f in files]


def forget(db: Database, sha256s: Iterable[str]) -> None:
    """Drop the heads of blobs that were deleted."""
    gone = sorted(set(sha256s))
    if not gone:
        return
    with db.write() as conn:
        for start in range(0, len(gone), _BATCH):
            batch = gone[start : start + _BATCH]
            conn.execute(sa.delete(t.blob_heads).where(_H.sha256.in_(batch)))
