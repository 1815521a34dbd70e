"""Streaming hash-while-copy and the local content-addressed store."""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import time
from pathlib import Path

import pytest

from modelreg import errors
from modelreg.artifacts import hashing
from modelreg.artifacts.local import LocalArtifactStore


class Trickle:
    """A stream that returns at most ``step`` bytes per read, like a socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step
        self.pos = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = min(self.step, len(buffer), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize(
    "size", [0, 1, hashing.CHUNK_SIZE - 1, hashing.CHUNK_SIZE, 3 * hashing.CHUNK_SIZE + 5]
)
def test_copy_and_hash(size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    seen: list[int] = []
    digest = hashing.copy_and_hash(Trickle(data, 100_003), out, progress=seen.append)
    assert digest == hashing.Digest(hashlib.sha256(data).hexdigest(), size)
    assert out.getvalue() == data
    assert sum(seen) == size


def test_more_buffers_than_chunks_keeps_order() -> None:
    data = os.urandom(hashing.CHUNK_SIZE * (hashing.BUFFERS * 2 + 1))
    out = io.BytesIO()
    hashing.copy_and_hash(io.BytesIO(data), out)
    assert out.getvalue() == data


def test_max_size() -> None:
    with pytest.raises(hashing.TooLarge):
        hashing.copy_and_hash(io.BytesIO(b"x" * 10), io.BytesIO(), max_size=9)


def test_store_layout_and_dedup(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "blobs", fsync=False)
    digest = store.put(io.BytesIO(b"hello"))
    sha = hashlib.sha256(b"hello").hexdigest()
    assert digest.sha256 == sha
    assert store.path_of(sha) == tmp_path / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
    assert store.put(io.BytesIO(b"hello"), expected_sha256=sha, expected_size=5) == digest
    assert [b.sha256 for b in store.iter_blobs()] == [sha]
    stat = store.stat(sha)
    assert stat is not None
    assert stat.size == 5
    with store.open(sha) as fh:
        assert fh.read() == b"hello"
    store.delete(sha)
    store.delete(sha)
    assert store.stat(sha) is None
    with pytest.raises(errors.NotFound):
        store.open(sha)
    with pytest.raises(errors.InvalidArgument):
        store.path_of("../../etc/passwd")


def test_partial_uploads_are_cleaned_after_the_grace_period(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "blobs")
    partial = tmp_path / "blobs" / "partial" / "abandoned.part"
    partial.write_bytes(b"half")
    assert store.cleanup_partial(time.time() - 3600) == 0
    old = time.time() - 7200
    os.utime(partial, (old, old))
    assert store.cleanup_partial(time.time() - 3600) == 1
    assert not partial.exists()


def test_failed_source_leaves_no_partial_file(tmp_path: Path) -> None:
    class Broken:
        def readinto(self, buffer: bytearray | memoryview) -> int:
            raise OSError("disk went away")

    store = LocalArtifactStore(tmp_path / "blobs")
    with pytest.raises(errors.StorageError, match="disk went away"):
        store.put(Broken())
    assert list((tmp_path / "blobs" / "partial").iterdir()) == []


# A hint below INLINE_BELOW takes the path without threads; None takes the threaded one.
HINTS = [None, 100]


@pytest.mark.parametrize("hint", HINTS)
def test_a_failing_destination_surfaces_its_error(hint: int | None) -> None:
    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    data = os.urandom(hashing.CHUNK_SIZE * 9)
    with pytest.raises(OSError, match="No space left"):
        hashing.copy_and_hash(io.BytesIO(data), Full(), size_hint=hint)


@pytest.mark.parametrize("hint", HINTS)
def test_more_than_max_size_is_refused(hint: int | None) -> None:
    data = os.urandom(hashing.INLINE_BELOW * 2)
    with pytest.raises(hashing.TooLarge):
        hashing.copy_and_hash(io.BytesIO(data), io.BytesIO(), max_size=1000, size_hint=hint)


@pytest.mark.parametrize("hint", HINTS)
def test_a_source_failing_mid_stream_surfaces_its_error(hint: int | None) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def readinto(self, buffer: bytearray | memoryview) -> int:
            self.calls += 1
            if self.calls > 3:
                raise OSError("cable unplugged")
            buffer[: len(buffer)] = bytes(len(buffer))
            return len(buffer)

    with pytest.raises(OSError, match="cable unplugged"):
        hashing.copy_and_hash(Flaky(), io.BytesIO(), size_hint=hint)


@pytest.mark.parametrize(
    ("hint", "actual"), [(0, 0), (10, 10), (10, 5_000_000), (9_000_000, 3), (-1, 7)]
)
def test_size_hint_only_sizes_buffers(hint: int, actual: int) -> None:
    data = os.urandom(actual)
    out = io.BytesIO()
    digest = hashing.copy_and_hash(io.BytesIO(data), out, size_hint=hint)
    assert digest == hashing.Digest(hashlib.sha256(data).hexdigest(), actual)
    assert out.getvalue() == data


SIZES = [
    0,
    1,
    4095,
    4096,
    4097,
    hashing.CHUNK_SIZE,
    hashing.CHUNK_SIZE + 123,
    3 * hashing.CHUNK_SIZE,
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("direct_io", [True, False])
def test_durable_puts_store_exact_bytes(tmp_path: Path, size: int, direct_io: bool) -> None:
    store = LocalArtifactStore(tmp_path / "blobs", fsync=True, direct_io=direct_io)
    data = os.urandom(size)
    for hint in (None, size):
        digest = store.put(io.BytesIO(data), size_hint=hint)
        assert digest == hashing.Digest(hashlib.sha256(data).hexdigest(), size)
        assert store.path_of(digest.sha256).read_bytes() == data
        store.delete(digest.sha256)


@pytest.mark.usefixtures("no_direct_io")
def test_file_systems_without_direct_io_fall_back(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "blobs", fsync=True)
    data = os.urandom(5000)
    digest = store.put(io.BytesIO(data))
    assert store.path_of(digest.sha256).read_bytes() == data
    assert list((tmp_path / "blobs" / "partial").iterdir()) == []


def test_copies_reuse_a_bounded_set_of_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = hashing._BufferPool(hashing.POOL_LIMIT)
    monkeypatch.setattr(hashing, "_POOL", pool)
    data = os.urandom(hashing.CHUNK_SIZE * 3 + 5)
    hashing.copy_and_hash(io.BytesIO(data), io.BytesIO(), size_hint=len(data))
    kept = {id(buf) for buf in pool._idle}
    assert kept, "a large copy leaves its buffers for the next one"
    hashing.copy_and_hash(io.BytesIO(data), io.BytesIO(), size_hint=len(data))
    assert {id(buf) for buf in pool._idle} == kept, "the next copy used the same buffers"
    # However many copies give buffers back, the pool keeps at most its limit.
    pool.give([mmap.mmap(-1, hashing.CHUNK_SIZE) for _ in range(3 * hashing.POOL_LIMIT)])
    assert len(pool._idle) == hashing.POOL_LIMIT
    # Buffers of other sizes (small files) are not kept.
    pool._idle.clear()
    pool.give([mmap.mmap(-1, hashing.MIN_CHUNK_SIZE)])
    assert pool._idle == []


def test_reused_buffers_carry_nothing_into_the_next_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "_POOL", hashing._BufferPool(hashing.POOL_LIMIT))

    class Failing:
        """Fills every buffer with 0xFF, then fails mid-stream."""

        def __init__(self) -> None:
            self.calls = 0

        def readinto(self, buffer: memoryview) -> int:
            self.calls += 1
            if self.calls > 4:
                raise OSError("cable unplugged")
            buffer[:] = b"\xff" * len(buffer)
            return len(buffer)

    with pytest.raises(OSError, match="cable unplugged"):
        hashing.copy_and_hash(Failing(), io.BytesIO(), size_hint=10 * hashing.CHUNK_SIZE)
    # A short last chunk in a buffer that held 0xFF bytes: only the new bytes count.
    data = os.urandom(hashing.CHUNK_SIZE + 123)
    out = io.BytesIO()
    digest = hashing.copy_and_hash(io.BytesIO(data), out, size_hint=len(data))
    assert digest == hashing.Digest(hashlib.sha256(data).hexdigest(), len(data))
    assert out.getvalue() == data
