"""The contract every blob store keeps, run against the local folder and an S3 bucket.

The S3 runs talk to a real S3-protocol server on loopback (see ``s3server.py``). Parts
are made small (5 MiB, S3's minimum) so that a few MiB exercise multipart uploads.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest

from modelreg import errors
from modelreg.artifacts.base import ArtifactStore
from modelreg.artifacts.local import LocalArtifactStore
from modelreg.artifacts.s3 import S3ArtifactStore

MIB = 1024 * 1024
PART = 5 * MIB
SIZES = [0, 1, 1000, PART - 1, PART, 2 * PART + 3]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "blobs", fsync=False)
    uri: str = request.getfixturevalue("s3_uri")
    return S3ArtifactStore(uri, part_size=PART)


def leftovers(store: ArtifactStore) -> list[str]:
    """Unfinished uploads the store still holds: partial files, or in a bucket temporary
    objects and multipart uploads that were neither completed nor aborted."""
    if isinstance(store, LocalArtifactStore):
        return sorted(p.name for p in (store.root / "partial").iterdir())
    assert isinstance(store, S3ArtifactStore)
    client = store.client
    uploads = client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    objects = client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}partial/")
    return sorted(
        [f"upload:{u['Key']}" for u in uploads] + [o["Key"] for o in objects.get("Contents", [])]
    )


def blob_keys(store: ArtifactStore) -> list[str]:
    return sorted(b.sha256 for b in store.iter_blobs())


class Failing:
    """A source that fails after ``limit`` bytes, like a client that goes away."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.src = io.BytesIO(data)
        self.limit = limit

    def readinto(self, buffer: memoryview) -> int:
        if self.src.tell() >= self.limit:
            raise ConnectionResetError("the client went away")
        view = buffer[: min(len(buffer), self.limit - self.src.tell())]
        return self.src.readinto(view)


def data_of(size: int, seed: int = 0) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("declared", [False, True], ids=["unknown-digest", "declared"])
def test_put_stat_open_round_trip(store: ArtifactStore, size: int, declared: bool) -> None:
    data = data_of(size, size)
    sha = hashlib.sha256(data).hexdigest()
    kwargs = {"expected_sha256": sha, "expected_size": size} if declared else {}
    seen: list[int] = []
    digest = store.put(io.BytesIO(data), progress=seen.append, **kwargs)  # type: ignore[arg-type]
    assert (digest.sha256, digest.size) == (sha, size)
    assert sum(seen) == size
    stat = store.stat(sha)
    assert stat is not None
    assert (stat.sha256, stat.size) == (sha, size)
    assert abs(stat.mtime - time.time()) < 60
    with store.open(sha) as src:
        assert src.read() == data
    assert blob_keys(store) == [sha]
    assert leftovers(store) == []


def test_identical_bytes_are_stored_once_and_refreshed(store: ArtifactStore) -> None:
    data = data_of(PART + 10)
    first = store.put(io.BytesIO(data))
    before = store.stat(first.sha256)
    assert before is not None
    time.sleep(1.1)  # S3 keeps modification times in whole seconds
    again = store.put(io.BytesIO(data), expected_sha256=first.sha256, expected_size=len(data))
    store.put(io.BytesIO(data))
    assert again == first
    after = store.stat(first.sha256)
    assert after is not None
    assert after.mtime > before.mtime
    assert blob_keys(store) == [first.sha256]
    assert leftovers(store) == []


@pytest.mark.parametrize("size", [3, 2 * PART + 3])
def test_a_wrong_expectation_stores_nothing(store: ArtifactStore, size: int) -> None:
    data = data_of(size)
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(errors.IntegrityError, match=f"expected {size + 1}"):
        store.put(io.BytesIO(data), expected_size=size + 1)
    with pytest.raises(errors.IntegrityError, match=f"expected {size - 1}"):
        store.put(io.BytesIO(data), expected_size=size - 1)
    with pytest.raises(errors.IntegrityError, match="expected 0000"):
        store.put(io.BytesIO(data), expected_sha256="0" * 64, expected_size=size)
    wrong = data_of(size, 1)
    with pytest.raises(errors.IntegrityError, match=f"expected {sha}"):
        store.put(io.BytesIO(wrong), expected_sha256=sha, expected_size=size)
    assert blob_keys(store) == []
    assert store.stat(sha) is None
    assert leftovers(store) == []


@pytest.mark.parametrize("declared", [False, True], ids=["unknown-digest", "declared"])
def test_an_interrupted_upload_leaves_nothing_and_a_retry_succeeds(
    store: ArtifactStore, declared: bool
) -> None:
    data = data_of(3 * PART + 1)
    sha = hashlib.sha256(data).hexdigest()
    kwargs = {"expected_sha256": sha, "expected_size": len(data)} if declared else {}
    with pytest.raises(errors.StorageError, match="the client went away"):
        store.put(Failing(data, 2 * PART + 100), **kwargs)  # type: ignore[arg-type]
    assert store.stat(sha) is None
    assert blob_keys(store) == []
    assert leftovers(store) == []
    assert store.put(io.BytesIO(data), **kwargs).sha256 == sha  # type: ignore[arg-type]
    with store.open(sha) as src:
        assert hashlib.sha256(src.read()).hexdigest() == sha


def test_missing_blobs(store: ArtifactStore) -> None:
    sha = "ab" * 32
    assert store.stat(sha) is None
    with pytest.raises(errors.NotFound, match=sha):
        store.open(sha)
    store.delete(sha)  # absent: ignored


@pytest.mark.parametrize("bad", ["", "AB" * 32, "g" * 64, "../" + "a" * 61])
def test_malformed_digests_are_refused(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid SHA-256"):
        store.stat(bad)
    with pytest.raises(errors.InvalidArgument, match="invalid SHA-256"):
        store.open(bad)
    with pytest.raises(errors.InvalidArgument, match="invalid SHA-256"):
        store.put(io.BytesIO(b"x"), expected_sha256=bad)


def test_delete_and_listing(store: ArtifactStore) -> None:
    digests = [store.put(io.BytesIO(data_of(100, i))).sha256 for i in range(5)]
    assert blob_keys(store) == sorted(digests)
    listed = {b.sha256: b for b in store.iter_blobs()}
    assert {b.size for b in listed.values()} == {100}
    store.delete(digests[0])
    store.delete(digests[0])
    assert blob_keys(store) == sorted(digests[1:])
    assert store.stat(digests[0]) is None


def _leave_partial(store: ArtifactStore) -> str:
    """What a crashed upload leaves behind; returns the name ``leftovers`` lists it by."""
    if isinstance(store, LocalArtifactStore):
        (store.root / "partial" / "crashed.part").write_bytes(b"half")
        return "crashed.part"
    assert isinstance(store, S3ArtifactStore)
    key = f"{store.prefix}sha256/{'c' * 64}"
    store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    temp = f"{store.prefix}partial/x"
    store.client.put_object(Bucket=store.bucket, Key=temp, Body=b"half")
    # moto dates every multipart upload in 2010, so only the object's age is checked here
    return temp


def test_cleanup_partial_removes_only_stale_uploads(store: ArtifactStore) -> None:
    kept = store.put(io.BytesIO(b"complete")).sha256
    recent = _leave_partial(store)
    store.cleanup_partial(older_than=time.time() - 3600)
    assert recent in leftovers(store)
    assert store.cleanup_partial(older_than=time.time() + 60) >= 1
    assert leftovers(store) == []
    assert blob_keys(store) == [kept]


def test_check_passes_on_a_working_store(store: ArtifactStore) -> None:
    store.check()
    assert leftovers(store) == []


def test_location_names_the_store(store: ArtifactStore) -> None:
    if isinstance(store, S3ArtifactStore):
        assert store.location == f"s3://{store.bucket}/registry/"
    else:
        assert os.path.isdir(store.location)


@pytest.fixture
def many(store: ArtifactStore) -> list[str]:
    return [store.put(io.BytesIO(data_of(10, i))).sha256 for i in range(3)]


def test_open_reads_exact_bytes_in_small_pieces(store: ArtifactStore, many: list[str]) -> None:
    for i, sha in enumerate(many):
        with store.open(sha) as src:
            pieces = []
            while chunk := src.read(3):
                pieces.append(chunk)
        assert b"".join(pieces) == data_of(10, i)
