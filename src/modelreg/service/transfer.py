"""Moving bytes: store a file tree as blobs, pull a version back verified, verify, gc."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from modelreg.artifacts import external
from modelreg.artifacts import files as file_io
from modelreg.artifacts.base import ArtifactStore, BlobSource
from modelreg.artifacts.hashing import Progress, TooLarge, copy_and_hash, hash_stream
from modelreg.domain.entities import BlobProblem, GcReport, ModelVersion, VerifyReport
from modelreg.domain.manifest import FileEntry, validate_relpath
from modelreg.errors import (
    IntegrityError,
    InvalidArgument,
    InvalidPath,
    ModelregError,
    NotFound,
    StorageError,
)
from modelreg.service import heads
from modelreg.store import tables as t
from modelreg.store.database import Database

# Two cores: one file hashes per core; each copy also has its own writer thread.
WORKERS = 2

T = TypeVar("T")
R = TypeVar("R")


def each_file(work: Callable[[T], R], items: Sequence[T], name: str) -> list[R]:
    """``work`` on every item, ``WORKERS`` at a time, results in order; the first failure
    is raised. A single item runs in the calling thread."""
    if len(items) == 1:
        return [work(items[0])]
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=f"modelreg-{name}") as pool:
        return list(pool.map(work, items))


def list_tree(path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The files under ``path`` as (relative POSIX path, absolute path), sorted.

    A single file becomes one entry named after it. Symbolic links to files are followed
    (their bytes are stored); links to folders are refused because they can loop.
    """
    root = Path(path)
    if not root.exists():
        raise NotFound(f"no such file or folder: {root}", path=str(root))
    if root.is_file():
        return [(validate_relpath(root.name), root)]
    if not root.is_dir():
        raise InvalidPath(f"{root} is neither a regular file nor a folder", path=str(root))
    out: list[tuple[str, Path]] = []

    def unreadable(exc: OSError) -> None:
        # os.walk skips folders it cannot read unless told otherwise; a version that
        # silently lacks files is worse than a registration that fails.
        raise StorageError(f"cannot read {exc.filename}: {exc.strerror}") from exc

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        dirs.sort()
        base = Path(folder)
        for name in dirs:
            if (base / name).is_symlink():
                raise InvalidPath(f"{base / name} is a link to a folder; copy it instead")
        for name in sorted(files):
            full = base / name
            if not full.is_file():
                raise InvalidPath(f"{full} is a broken link or not a regular file", path=str(full))
            out.append((validate_relpath(full.relative_to(root).as_posix()), full))
    if not out:
        raise InvalidArgument(f"{root} holds no files")
    return out


def store_tree(
    blobs: ArtifactStore,
    files: list[tuple[str, Path]],
    progress: Progress | None = None,
) -> list[FileEntry]:
    """Store every file as a blob, hashing while copying; returns the manifest entries.

    A store that prefers it (``hash_first``: a bucket) gets each file hashed first, and
    only the files it lacks, declared with their digest: existing blobs are not re-sent.
    """
    if blobs.hash_first:
        return each_file(lambda item: _put_if_missing(blobs, item, progress), files, "put")

    def put(item: tuple[str, Path]) -> FileEntry:
        rel, full = item
        try:
            with open(full, "rb", buffering=0) as src:
                size = os.fstat(src.fileno()).st_size
                digest = blobs.put(src, progress=progress, size_hint=size)
        except OSError as exc:
            raise StorageError(f"cannot read {full}: {exc}") from exc
        return FileEntry(path=rel, size=digest.size, sha256=digest.sha256)

    return each_file(put, files, "put")


def hash_file(rel: str, full: Path) -> FileEntry:
    """The manifest entry of one local file, read once."""
    try:
        with open(full, "rb", buffering=0) as src:
            found = hash_stream(src, size_hint=os.fstat(src.fileno()).st_size)
    except OSError as exc:
        raise StorageError(f"cannot read {full}: {exc}") from exc
    return FileEntry(path=rel, size=found.size, sha256=found.sha256)


def describe_external(
    location: str | os.PathLike[str], progress: Progress | None = None
) -> list[FileEntry]:
    """Manifest entries for files that stay where they are: a URI (``s3://bucket/key``,
    ``s3://bucket/prefix/``, ``https://…``) or a local file or folder. Each file is
    streamed once to record its size and SHA-256; nothing is stored."""
    if external.is_uri(location):
        sources = external.expand(str(location))
    else:
        sources = [(rel, full.resolve().as_uri()) for rel, full in list_tree(location)]

    def describe(item: tuple[str, str]) -> FileEntry:
        rel, source = item
        with external.open_source(source) as src:
            found = hash_stream(src, progress)
        return FileEntry(path=rel, size=found.size, sha256=found.sha256, source=source)

    return each_file(describe, sources, "describe")


def _put_if_missing(
    blobs: ArtifactStore, item: tuple[str, Path], progress: Progress | None
) -> FileEntry:
    # With the digest declared, the store sends nothing it already holds (it only
    # re-reads the file to check it, and refreshes the blob's age for gc).
    rel, full = item
    entry = hash_file(rel, full)
    try:
        with open(full, "rb", buffering=0) as src:
            blobs.put(
                src, expected_sha256=entry.sha256, expected_size=entry.size, progress=progress
            )
    except OSError as exc:
        raise StorageError(f"cannot read {full}: {exc}") from exc
    return entry


def pull(
    blobs: BlobSource,
    version: ModelVersion,
    dest: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    direct_io: bool = True,
) -> Path:
    """Write a version's files under ``dest``, verifying size and SHA-256 of every byte.

    Files are assembled in a hidden staging folder inside ``dest`` and moved into place
    only after all of them verified, so a failed pull leaves ``dest`` as it was. Files of
    ``files.DIRECT_FROM`` bytes and more are written with direct I/O where the file system
    allows it (unless ``direct_io`` is False), and are on disk when the pull returns.
    """
    target = Path(dest)
    try:
        target.mkdir(parents=True, exist_ok=True)
        staging = target / f".modelreg-pull-{uuid.uuid4().hex}"
        staging.mkdir()
    except OSError as exc:
        raise StorageError(f"cannot create {target}: {exc}") from exc
    try:

        def fetch(entry: FileEntry) -> None:
            out = staging / validate_relpath(entry.path)
            _fetch(blobs, entry, out, progress, version.ref, direct_io=direct_io)

        # The first failure is raised; the staging folder is dropped below.
        each_file(fetch, version.files, "pull")
        for entry in version.files:
            final = target / entry.path
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / entry.path, final)
    except OSError as exc:
        raise StorageError(f"cannot write {version.ref} to {target}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _fetch(
    blobs: BlobSource,
    entry: FileEntry,
    out_path: Path,
    progress: Progress | None,
    ref: str,
    *,
    direct_io: bool,
) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # An external file is read from where it stays, and checked exactly like a blob.
    what = f"external file {entry.source}" if entry.source else "the store"
    try:
        src = external.open_source(entry.source) if entry.source else blobs.open(entry.sha256)
    except NotFound as exc:
        where = entry.source or entry.sha256
        gone = "has disappeared" if entry.source else "is missing from the store"
        raise IntegrityError(
            f"{ref}: {entry.path!r} ({where}) {gone}",
            path=entry.path,
            sha256=entry.sha256,
        ) from exc
    corrupt = "changed since registration" if entry.source else "is corrupt in the store"
    try:
        with src:
            out, direct = file_io.create_new(
                out_path, direct=direct_io and entry.size >= file_io.DIRECT_FROM
            )
            with out:
                digest = copy_and_hash(
                    src,
                    out,
                    progress=progress,
                    max_size=entry.size + 1,
                    size_hint=entry.size,
                    direct=direct,
                    fsync=direct,  # a direct write is on disk but for its tail: cheap
                )
    except TooLarge as exc:
        raise IntegrityError(
            f"{ref}: {entry.path!r} {corrupt}: {what} holds more than the recorded "
            f"{entry.size} bytes",
            path=entry.path,
            expected=entry.sha256,
        ) from exc
    if digest.size != entry.size or digest.sha256 != entry.sha256:
        raise IntegrityError(
            f"{ref}: {entry.path!r} {corrupt}: expected {entry.size} bytes "
            f"with sha256 {entry.sha256}, read {digest.size} bytes with sha256 {digest.sha256}",
            path=entry.path,
            expected=entry.sha256,
            actual=digest.sha256,
        )


Refs = dict[str, tuple[int, list[str]]]
# (source, sha256) -> (recorded size, versions that use it)
ExternalRefs = dict[tuple[str, str], tuple[int, list[str]]]


def _references(db: Database) -> tuple[Refs, ExternalRefs]:
    """What versions reference: blobs by sha256, and external files by source."""
    f, v, m = t.version_files.c, t.versions.c, t.models.c
    refs: Refs = {}
    externals: ExternalRefs = {}
    with db.read() as conn:
        rows = conn.execute(
            sa.select(f.sha256, f.size, f.source, m.name, v.version)
            .join(t.versions, v.id == f.version_id)
            .join(t.models, m.id == v.model_id)
        )
        for sha, size, source, name, number in rows:
            if source is None:
                refs.setdefault(sha, (size, []))[1].append(f"{name}/{number}")
            else:
                externals.setdefault((source, sha), (size, []))[1].append(f"{name}/{number}")
    return refs, externals


def _check_external(
    source: str, sha: str, size: int, users: list[str], progress: Progress | None
) -> BlobProblem | None:
    """Whether an external file still has the bytes recorded at registration."""

    def problem(kind: str, detail: str) -> BlobProblem:
        return BlobProblem(sha, kind, detail, tuple(users), source)

    try:
        with external.open_source(source) as src:
            actual = copy_and_hash(src, None, progress=progress, max_size=size + 1)
    except NotFound:
        return problem("missing", "external file has disappeared")
    except TooLarge:
        return problem("changed", f"external file holds more than the recorded {size} bytes")
    except ModelregError as exc:
        return problem("unreadable", f"cannot read the external file: {exc}")
    if actual.size != size or actual.sha256 != sha:
        return problem(
            "changed",
            f"external file changed since registration: {actual.size} bytes with sha256 "
            f"{actual.sha256}, registered {size} bytes with sha256 {sha}",
        )
    return None


def verify(db: Database, blobs: ArtifactStore, progress: Progress | None = None) -> VerifyReport:
    """Re-hash every stored blob and check every referenced blob exists with its size;
    re-read every external file and report those that changed or disappeared."""
    refs, externals = _references(db)
    problems: list[BlobProblem] = []
    stored = {b.sha256: b for b in blobs.iter_blobs()}
    for sha, (size, users) in sorted(refs.items()):
        blob = stored.get(sha)
        if blob is None:
            problems.append(BlobProblem(sha, "missing", "blob is not in the store", tuple(users)))
        elif blob.size != size:
            problems.append(
                BlobProblem(sha, "corrupt", f"{blob.size} bytes, expected {size}", tuple(users))
            )

    def check(sha: str) -> BlobProblem | None:
        try:
            with blobs.open(sha) as src:
                actual = hash_stream(src, progress)
        except NotFound:
            return BlobProblem(
                sha, "missing", "blob vanished during verify", tuple(_users(refs, sha))
            )
        if actual.sha256 != sha:
            return BlobProblem(
                sha, "corrupt", f"content hashes to {actual.sha256}", tuple(_users(refs, sha))
            )
        return None

    def check_external(item: tuple[tuple[str, str], tuple[int, list[str]]]) -> BlobProblem | None:
        (source, sha), (size, users) = item
        return _check_external(source, sha, size, users, progress)

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="modelreg-verify") as pool:
        problems.extend(p for p in pool.map(check, sorted(stored)) if p is not None)
        found = pool.map(check_external, sorted(externals.items()))
        problems.extend(p for p in found if p is not None)
    unique: dict[tuple[str, str, str], BlobProblem] = {}
    for problem in problems:
        unique.setdefault((problem.source or "", problem.sha256, problem.problem), problem)
    return VerifyReport(
        checked_blobs=len(stored),
        checked_bytes=sum(b.size for b in stored.values()),
        problems=tuple(sorted(unique.values(), key=lambda p: (p.source or "", p.sha256))),
        checked_external=len(externals),
    )


def _users(refs: Refs, sha: str) -> list[str]:
    return refs[sha][1] if sha in refs else []


def gc(
    db: Database,
    blobs: ArtifactStore,
    grace: float,
    *,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> GcReport:
    """Delete blobs no version references that are older than ``grace`` seconds.

    The grace period protects uploads in flight: their blobs are written (or refreshed)
    before the version row commits, so a recent unreferenced blob may be about to be used.
    """
    if grace < 0:
        raise InvalidArgument("grace must not be negative")
    cutoff = clock() - grace
    with db.read() as conn:
        referenced = set(conn.execute(sa.select(t.version_files.c.sha256).distinct()).scalars())
    deleted = deleted_bytes = kept = 0
    gone: list[str] = []
    for blob in (b for b in blobs.iter_blobs() if b.sha256 not in referenced):
        if blob.mtime >= cutoff:
            kept += 1
            continue
        if not dry_run:
            blobs.delete(blob.sha256)
            gone.append(blob.sha256)
        deleted += 1
        deleted_bytes += blob.size
    if not dry_run:
        heads.forget(db, gone)
        with contextlib.suppress(StorageError):
            blobs.cleanup_partial(cutoff)
    return GcReport(
        deleted_blobs=deleted, deleted_bytes=deleted_bytes, kept_recent=kept, dry_run=dry_run
    )


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``30s``, ``15m``, ``24h`` or ``7d``."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        factor = units.get(raw[-1:])
        number = raw[:-1] if factor else raw
        try:
            seconds = float(number) * (factor or 1)
        except ValueError:
            raise InvalidArgument(
                f"invalid duration {text!r}: use e.g. 30s, 15m, 24h or 7d"
            ) from None
    if seconds < 0 or seconds != seconds:
        raise InvalidArgument(f"invalid duration {text!r}: must be zero or more")
    return seconds
