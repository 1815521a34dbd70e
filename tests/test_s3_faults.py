"""Transient S3 failures: throttling is retried with backoff, a broken download resumes,
and failures that outlast the retries become the registry's own errors."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator

import pytest

import s3server
from modelreg import errors
from modelreg.artifacts.s3 import S3ArtifactStore
from s3faults import FaultyProxy

MIB = 1024 * 1024


@pytest.fixture
def proxy(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyProxy]:
    s3_server.use(monkeypatch)
    faulty = FaultyProxy(s3_server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty.endpoint)
    yield faulty
    faulty.close()


@pytest.fixture
def store(proxy: FaultyProxy, s3_server: s3server.S3Server) -> S3ArtifactStore:
    return S3ArtifactStore(f"s3://{s3_server.new_bucket()}/r", part_size=5 * MIB)


def test_throttling_is_retried_until_it_passes(proxy: FaultyProxy, store: S3ArtifactStore) -> None:
    data = os.urandom(11 * MIB)  # three parts: several requests to throttle
    proxy.throttle(2)
    digest = store.put(io.BytesIO(data))
    assert proxy.throttled == 2
    proxy.throttle(1)
    with store.open(digest.sha256) as src:
        assert hashlib.sha256(src.read()).hexdigest() == digest.sha256
    assert proxy.throttled == 3


def test_throttling_that_outlasts_the_retries_is_a_storage_error(
    proxy: FaultyProxy, store: S3ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    patient = S3ArtifactStore(f"s3://{store.bucket}/r")
    proxy.throttle(100)
    with pytest.raises(errors.StorageError, match=r"throttling requests .* after 2 attempts"):
        patient.put(io.BytesIO(b"small"))
    assert proxy.throttled == 2
    proxy.throttle(0)
    assert list(patient.iter_blobs()) == []


def test_a_download_cut_midway_resumes_where_it_stopped(
    proxy: FaultyProxy, store: S3ArtifactStore
) -> None:
    data = os.urandom(3 * MIB)
    digest = store.put(io.BytesIO(data))
    proxy.cut_next_download(after=MIB + 17)
    with store.open(digest.sha256) as src:
        read = src.read()
    assert proxy.cuts == 1
    assert read == data
    gets = [r for r in proxy.requests if r.startswith("GET")]
    # The first read went through a presigned URL; the rest came from a ranged GET.
    assert len(gets) == 2
    assert "X-Amz-Signature=" in gets[0]
    assert "X-Amz-Signature=" not in gets[1]


def test_blobs_larger_than_one_copy_are_moved_in_parts(
    s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above 5 GiB S3 copies in parts; the limit is lowered here to see that path work."""
    s3_server.use(monkeypatch)
    store = S3ArtifactStore(f"s3://{s3_server.new_bucket()}/r", part_size=5 * MIB)
    store.copy_limit = store.copy_part = 5 * MIB
    data = os.urandom(11 * MIB + 3)
    digest = store.put(io.BytesIO(data))  # digest unknown: temporary key, then copy
    assert store.put(io.BytesIO(data)) == digest  # already stored: refreshed by a copy
    with store.open(digest.sha256) as src:
        assert src.read() == data
    keys = store.client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [k["Key"] for k in keys] == [store.key_of(digest.sha256)]
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://", "invalid S3 URI"),
        ("s3://ab/x", "invalid S3 bucket name"),
        ("s3://Upper/x", "invalid S3 bucket name"),
        ("s3://bucket/x?versionId=1", "no query"),
    ],
)
def test_malformed_bucket_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        S3ArtifactStore(uri)


def test_an_unknown_addressing_style_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match="addressing style"):
        S3ArtifactStore("s3://bucket/x", addressing_style="sideways")
