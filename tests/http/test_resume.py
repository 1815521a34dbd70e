"""Registering and pulling through the remote client: an interrupted upload is retried
without sending finished files again, identical content is never re-sent, and a pull
verifies every byte the server sends."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from inprocess import InProcessTransport
from modelreg import errors

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import partial_files, remote, sha256, stored_blobs
else:
    from httpkit import partial_files, remote, sha256, stored_blobs

BLOBS = "/api/v1/blobs/"
FILES = {
    "model.pkl": b"weights " * 1000,
    # More than one upload chunk (1 MiB), so the failure below happens mid-body.
    "data/big.bin": bytes(range(256)) * 6000,
    "config.json": b'{"layers": 3}',
}
FAILING = sha256(FILES["data/big.bin"])


class Recording(httpx.BaseTransport):
    """Sends to the app in process, noting every blob PUT; can break one upload mid-way.

    ``fail`` names a digest whose upload dies after its first body chunk was read, as
    when the connection drops while a file streams.
    """

    def __init__(self, app: FastAPI, *, fail: str | None = None) -> None:
        self.inner = InProcessTransport(app)
        self.fail = fail
        self.puts: list[str] = []
        self.completed: list[str] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_put = request.method == "PUT" and request.url.path.startswith(BLOBS)
        digest = request.url.path.removeprefix(BLOBS)
        if is_put:
            with self._lock:
                self.puts.append(digest)
        if is_put and digest == self.fail:
            assert isinstance(request.stream, httpx.SyncByteStream)
            next(iter(request.stream))
            raise httpx.WriteError("connection reset while sending the body", request=request)
        response = self.inner.handle_request(request)
        if is_put and response.status_code == 201:
            with self._lock:
                self.completed.append(digest)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    for rel, data in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_interrupted_register_is_resumed_without_resending_finished_files(
    app: FastAPI, folder: Path, tmp_path: Path
) -> None:
    broken = Recording(app, fail=FAILING)
    with remote(app, transport=broken) as reg, pytest.raises(errors.StorageError):
        reg.register("fraud", folder, metrics={"auc": 0.9})
    everything = {sha256(data) for data in FILES.values()}
    assert sorted(broken.puts) == sorted(everything)  # each file was attempted once
    assert FAILING not in broken.completed
    stored = set(stored_blobs(app))
    assert stored == set(broken.completed) == everything - {FAILING}
    assert partial_files(app) == []

    with remote(app) as reg:
        with pytest.raises(errors.NotFound):
            reg.get("fraud/1")
        assert reg.search_versions().items == []

    retry = Recording(app)
    with remote(app, transport=retry) as reg:
        version = reg.register("fraud", folder, metrics={"auc": 0.9})
        assert version.version == 1
        assert retry.puts == [FAILING]  # only what the first attempt did not store
        assert retry.completed == [FAILING]
        assert set(stored_blobs(app)) == everything

        dest = tmp_path / "pulled"
        reg.pull("fraud/1", dest)
    assert read_tree(dest) == FILES


def test_registering_identical_content_again_sends_no_blob(app: FastAPI, folder: Path) -> None:
    first = Recording(app)
    with remote(app, transport=first) as reg:
        reg.register("fraud", folder)
    assert sorted(first.puts) == sorted({sha256(data) for data in FILES.values()})

    again = Recording(app)
    with remote(app, transport=again) as reg:
        assert reg.register("fraud", folder).version == 2
        # The same bytes under another model: still nothing to send.
        assert reg.register("churn", folder).version == 1
    assert again.puts == []


def test_duplicate_files_in_one_version_are_sent_once(app: FastAPI, tmp_path: Path) -> None:
    root = tmp_path / "dup"
    root.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):
        (root / name).write_bytes(b"same bytes")
    recording = Recording(app)
    with remote(app, transport=recording) as reg:
        assert len(reg.register("fraud", root).files) == 3
    assert recording.puts == [sha256(b"same bytes")]


@pytest.mark.parametrize("corruption", ["same-size", "shorter", "longer", "missing"])
def test_pull_detects_a_corrupted_blob_and_leaves_the_destination_untouched(
    app: FastAPI, folder: Path, tmp_path: Path, corruption: str
) -> None:
    with remote(app) as reg:
        reg.register("fraud", folder)
        path = app.state.registry.blobs.path_of(FAILING)
        original = path.read_bytes()
        path.chmod(0o644)
        if corruption == "same-size":
            path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        elif corruption == "shorter":
            path.write_bytes(original[:-10])
        elif corruption == "longer":
            path.write_bytes(original + b"extra")
        else:
            path.unlink()

        dest = tmp_path / "dest"
        dest.mkdir()
        (dest / "keep.txt").write_bytes(b"already here")
        (dest / "model.pkl").write_bytes(b"an older model")
        before = read_tree(dest)
        with pytest.raises(errors.IntegrityError):
            reg.pull("fraud/1", dest)
    assert read_tree(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt", "model.pkl"]


class ChangingFile(Recording):
    """Rewrites ``path`` once the server has said which blobs it lacks: the file changes
    between the client hashing it and sending it."""

    def __init__(self, app: FastAPI, path: Path, data: bytes) -> None:
        super().__init__(app)
        self.path, self.data = path, data

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/versions") and response.status_code == 409:
            self.path.write_bytes(self.data)
        return response


# A small file goes in one request on the session, a large one as a stream.
@pytest.mark.parametrize("rel", ["config.json", "data/big.bin"])
@pytest.mark.parametrize("change", ["grown", "same size"])
def test_a_file_changed_after_hashing_registers_nothing(
    app: FastAPI, folder: Path, rel: str, change: str
) -> None:
    before = FILES[rel]
    after = before + b"more" if change == "grown" else bytes([before[0] ^ 1]) + before[1:]
    changing = ChangingFile(app, folder / rel, after)
    with remote(app, transport=changing) as reg:
        with pytest.raises(errors.DigestMismatch):
            reg.register("fraud", folder)
        with pytest.raises(errors.NotFound):
            reg.get("fraud/1")
    assert sha256(before) not in stored_blobs(app)
    assert sha256(after) not in stored_blobs(app)
    assert partial_files(app) == []
