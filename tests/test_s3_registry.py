"""The registry over an S3 bucket, embedded and through the server: round trips with
presigned transfers, damage behind the registry's back, gc, and backend failures."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
import s3server
from modelreg import errors
from modelreg.artifacts.s3 import S3ArtifactStore
from modelreg.client import RemoteRegistry
from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry
from s3faults import FaultyProxy

MIB = 1024 * 1024


def store_of(registry: EmbeddedRegistry) -> S3ArtifactStore:
    assert isinstance(registry.blobs, S3ArtifactStore)
    return registry.blobs


def overwrite(registry: EmbeddedRegistry, sha256: str, data: bytes) -> None:
    """Replace a blob's bytes in the bucket, as someone with bucket access could."""
    store = store_of(registry)
    store.client.put_object(Bucket=store.bucket, Key=store.key_of(sha256), Body=data)


def bucket_keys(registry: EmbeddedRegistry) -> list[str]:
    store = store_of(registry)
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_round_trip_through_the_bucket(
    s3_reg: Registry, s3_backing: EmbeddedRegistry, model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    files = {"weights.bin": os.urandom(11 * MIB + 5), "config.json": b"{}", "empty": b""}
    mv = s3_reg.register("fraud", model_dir(files=files))
    keys = bucket_keys(s3_backing)
    assert keys == sorted(f"registry/sha256/{f.sha256}" for f in mv.files)
    mv2 = s3_reg.register("fraud", model_dir(files=files))  # same bytes: stored once
    assert mv2.manifest_digest == mv.manifest_digest
    assert bucket_keys(s3_backing) == keys
    s3_reg.pull("fraud/2", out := tmp_path / "out")
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data
    assert s3_reg.verify().ok
    if isinstance(s3_reg, RemoteRegistry):
        # The bytes went straight between this client and the bucket.
        assert s3_reg.blobs.links == {"download": True, "upload": True}


def test_corruption_behind_the_registry_is_refused_and_reported(
    s3_reg: Registry, s3_backing: EmbeddedRegistry, model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    mv = s3_reg.register("fraud", model_dir(files={"a.bin": b"good bytes", "b.bin": b"other"}))
    damaged = next(f for f in mv.files if f.path == "b.bin")
    overwrite(s3_backing, damaged.sha256, b"evil!")  # same length, other bytes
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(errors.IntegrityError, match=r"'b\.bin' is corrupt"):
        s3_reg.pull("fraud/1", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    overwrite(s3_backing, damaged.sha256, b"longer than before")
    with pytest.raises(errors.IntegrityError, match="more than the recorded 5 bytes"):
        s3_reg.pull("fraud/1", dest)
    report = s3_reg.verify()
    assert [(p.sha256, p.problem) for p in report.problems] == [(damaged.sha256, "corrupt")]
    assert report.problems[0].referenced_by == ("fraud/1",)


def test_a_deleted_object_is_refused_and_reported(
    s3_reg: Registry, s3_backing: EmbeddedRegistry, model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    mv = s3_reg.register("fraud", model_dir(files={"a.bin": b"0123456789"}))
    store = store_of(s3_backing)
    store.client.delete_object(Bucket=store.bucket, Key=store.key_of(mv.files[0].sha256))
    with pytest.raises(errors.IntegrityError, match="missing"):
        s3_reg.pull("fraud/1", tmp_path / "out")
    assert not (tmp_path / "out" / "a.bin").exists()
    report = s3_reg.verify()
    assert [(p.sha256, p.problem) for p in report.problems] == [(mv.files[0].sha256, "missing")]
    # Registering the same bytes again repairs the store.
    s3_reg.register("fraud", model_dir(files={"a.bin": b"0123456789"}))
    assert s3_reg.verify().ok
    s3_reg.pull("fraud/1", tmp_path / "again")
    assert (tmp_path / "again" / "a.bin").read_bytes() == b"0123456789"


def test_gc_on_the_bucket(
    s3_reg: Registry, s3_backing: EmbeddedRegistry, model_dir: Callable[..., Path]
) -> None:
    keep = s3_reg.register("fraud", model_dir(files={"keep.bin": b"keep"}))
    gone = s3_reg.register("fraud", model_dir(files={"gone.bin": b"gone"}))
    s3_reg.delete_version(gone.ref)
    assert s3_reg.gc("1h").deleted_blobs == 0  # too recent: could belong to an upload
    dry = s3_reg.gc("0s", dry_run=True)
    assert (dry.deleted_blobs, dry.deleted_bytes, dry.dry_run) == (1, 4, True)
    assert store_of(s3_backing).stat(gone.files[0].sha256) is not None
    report = s3_reg.gc("0s")
    assert (report.deleted_blobs, report.deleted_bytes) == (1, 4)
    assert bucket_keys(s3_backing) == [f"registry/sha256/{keep.files[0].sha256}"]
    assert s3_reg.verify().ok


@pytest.fixture
def server_reg(
    s3_backing: EmbeddedRegistry,
) -> Iterator[Callable[..., RemoteRegistry]]:
    """Remote registries over an in-process server with chosen direct-transfer settings."""
    from dataclasses import replace

    from inprocess import InProcessTransport
    from modelreg.server import create_app

    apps = []
    opened: list[RemoteRegistry] = []

    def make(**settings: Any) -> RemoteRegistry:
        app = create_app(replace(s3_backing.config, **settings))
        apps.append(app)
        client = httpx.Client(transport=InProcessTransport(app))
        registry = RemoteRegistry("http://modelreg.test", user="alice", client=client)
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()
    for app in apps:
        app.state.registry.close()


def test_direct_transfers_can_be_turned_off(
    server_reg: Callable[..., RemoteRegistry], model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    reg = server_reg(direct_downloads=False, direct_uploads=False)
    data = os.urandom(MIB)
    reg.register("plain", model_dir(files={"w.bin": data}))
    reg.pull("plain/1", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == data
    assert reg.blobs.links == {"download": False, "upload": False}


def test_a_direct_upload_of_wrong_bytes_never_becomes_a_blob(
    server_reg: Callable[..., RemoteRegistry], s3_backing: EmbeddedRegistry
) -> None:
    reg = server_reg()
    data = b"the bytes that were promised"
    sha = hashlib.sha256(data).hexdigest()
    session = reg.session
    link = session.call("POST", f"/api/v1/blobs/{sha}/upload-link", json={"size": len(data)})
    assert link["direct"] is True
    assert httpx.put(link["url"], content=b"X" * len(data)).status_code == 200
    with pytest.raises(errors.DigestMismatch, match=f"expected {sha}"):
        session.call(
            "POST",
            f"/api/v1/blobs/{sha}/finish-upload",
            json={"upload_id": link["upload_id"], "size": len(data)},
        )
    assert bucket_keys(s3_backing) == []
    # More bytes than declared (a server that does not enforce the signed length).
    longer = session.call("POST", f"/api/v1/blobs/{sha}/upload-link", json={"size": len(data)})
    assert httpx.put(longer["url"], content=data + b"tail").status_code == 200
    with pytest.raises(errors.DigestMismatch, match=f"more than {len(data)} bytes"):
        session.call(
            "POST",
            f"/api/v1/blobs/{sha}/finish-upload",
            json={"upload_id": longer["upload_id"], "size": len(data)},
        )
    assert bucket_keys(s3_backing) == []
    # An upload that was never sent, or is finished twice, is not found.
    with pytest.raises(errors.NotFound, match="was not received"):
        session.call(
            "POST",
            f"/api/v1/blobs/{sha}/finish-upload",
            json={"upload_id": link["upload_id"], "size": len(data)},
        )
    with pytest.raises(errors.InvalidArgument, match="invalid upload id"):
        session.call(
            "POST",
            f"/api/v1/blobs/{sha}/finish-upload",
            json={"upload_id": "../sha256/x", "size": len(data)},
        )
    # The right bytes, through a fresh link, become the blob.
    link = session.call("POST", f"/api/v1/blobs/{sha}/upload-link", json={"size": len(data)})
    assert httpx.put(link["url"], content=data).status_code == 200
    done = session.call(
        "POST",
        f"/api/v1/blobs/{sha}/finish-upload",
        json={"upload_id": link["upload_id"], "size": len(data)},
    )
    assert done == {"sha256": sha, "size": len(data)}
    assert bucket_keys(s3_backing) == [f"registry/sha256/{sha}"]


def test_an_interrupted_direct_upload_leaves_nothing_and_a_retry_succeeds(
    server_reg: Callable[..., RemoteRegistry],
    s3_backing: EmbeddedRegistry,
    s3_server: s3server.S3Server,
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Callable[..., Path],
    tmp_path: Path,
) -> None:
    proxy = FaultyProxy(s3_server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)  # presigned URLs go through it
    try:
        reg = server_reg()
        data = os.urandom(3 * MIB)
        folder = model_dir(files={"w.bin": data})
        proxy.drop_next_upload()
        with pytest.raises(errors.StorageError, match="cannot upload"):
            reg.register("cut", folder)
        assert proxy.dropped == 1
        assert bucket_keys(s3_backing) == []  # neither a blob nor a temporary object
        with pytest.raises(errors.NotFound):
            reg.get_model("cut")
        mv = reg.register("cut", folder)
        assert bucket_keys(s3_backing) == [f"registry/sha256/{mv.files[0].sha256}"]
        reg.pull("cut/1", tmp_path / "out")
        assert (tmp_path / "out" / "w.bin").read_bytes() == data
    finally:
        proxy.close()


def test_download_links_are_only_for_stored_blobs(
    server_reg: Callable[..., RemoteRegistry],
) -> None:
    reg = server_reg()
    with pytest.raises(errors.NotFound):
        reg.session.call("POST", f"/api/v1/blobs/{'a' * 64}/download-link")
    with pytest.raises(errors.InvalidArgument):
        reg.session.call("POST", "/api/v1/blobs/nothex/download-link")


# ----------------------------------------------------------------- backend failures


def test_a_missing_bucket_is_a_clear_storage_error(
    s3_server: s3server.S3Server,
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Callable[..., Path],
    tmp_path: Path,
) -> None:
    s3_server.use(monkeypatch)
    reg = modelreg.connect(f"sqlite:///{tmp_path / 'r.db'}", artifacts="s3://no-such-bucket/x")
    with reg, pytest.raises(errors.StorageError, match="bucket 'no-such-bucket' does not exist"):
        reg.register("fraud", model_dir())
    local = modelreg.connect(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "b")
    with local, pytest.raises(errors.NotFound):
        local.get_model("fraud")


def test_an_unreachable_endpoint_is_a_storage_error(
    s3_server: s3server.S3Server,
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Callable[..., Path],
    tmp_path: Path,
) -> None:
    s3_server.use(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard: nobody listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    reg = modelreg.connect(f"sqlite:///{tmp_path / 'r.db'}", artifacts="s3://bucket/x")
    with reg, pytest.raises(errors.StorageError, match="S3 endpoint unreachable") as info:
        reg.register("fraud", model_dir())
    assert info.value.code == "STORAGE_ERROR"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    """An S3 server that checks credentials (moto's default accepts any)."""
    try:
        server = s3server.start(tmp_path_factory.mktemp("s3-auth"), auth=True)
    except s3server.Unavailable as exc:
        pytest.fail(f"cannot start an S3 server with authentication: {exc}")
    yield server
    server.stop()


@pytest.mark.parametrize("wrong", ["unknown-key", "wrong-secret"])
def test_wrong_credentials_are_a_clear_error_and_write_nothing(
    auth_server: s3server.S3Server,
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Callable[..., Path],
    tmp_path: Path,
    wrong: str,
) -> None:
    auth_server.use(monkeypatch)
    bucket = auth_server.new_bucket()
    if wrong == "unknown-key":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOBODYKNOWS00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    config = Config.load(uri=f"sqlite:///{tmp_path / 'r.db'}", artifacts=f"s3://{bucket}/reg")
    with EmbeddedRegistry(config) as reg:
        with pytest.raises(errors.StorageDenied, match="refused the registry's credentials"):
            reg.register("fraud", model_dir(files={"w.bin": os.urandom(6 * MIB)}))
        with pytest.raises(errors.StorageDenied):
            reg.verify()
        with pytest.raises(errors.NotFound):
            reg.get_model("fraud")
    listed = auth_server.client().list_objects_v2(Bucket=bucket)
    assert listed.get("Contents", []) == []
    uploads = auth_server.client().list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []


def test_readiness_reports_an_unusable_bucket(
    s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from inprocess import InProcessTransport
    from modelreg.server import create_app

    s3_server.use(monkeypatch)
    for bucket, status in ((s3_server.new_bucket(), 200), ("no-such-bucket", 503)):
        config = Config.load(uri=f"sqlite:///{tmp_path / 'r.db'}", artifacts=f"s3://{bucket}/r")
        app = create_app(config)
        try:
            with httpx.Client(transport=InProcessTransport(app)) as client:
                answer = client.get("http://modelreg.test/readyz")
        finally:
            app.state.registry.close()
        assert answer.status_code == status, answer.text
        if status == 503:
            assert "bucket 'no-such-bucket' does not exist" in answer.json()["problems"][0]
