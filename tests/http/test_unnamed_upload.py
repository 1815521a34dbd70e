"""Large new files stream while they are hashed: ``POST /api/v1/blobs/heads`` tells the
client that no stored blob can be a file, ``POST /api/v1/blobs`` stores it under the digest
the server computed, and the client checks that digest against its own. Files a stored
blob may be are hashed first and sent only if missing, as before."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from inprocess import InProcessTransport
from modelreg import errors
from modelreg.artifacts.hashing import HEAD_BYTES
from modelreg.client import blobs as client_blobs
from modelreg.server.limits import MAX_BODY

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import (
        call_asgi,
        partial_files,
        remote,
        sha256,
        stored_blobs,
    )
else:
    from httpkit import (
        call_asgi,
        partial_files,
        remote,
        sha256,
        stored_blobs,
    )

BLOBS = "/api/v1/blobs"
HEADS = "/api/v1/blobs/heads"
STREAM_FROM = 2 * 1024 * 1024  # the client's threshold, lowered to keep files small
BIG = os.urandom(3 * 1024 * 1024 + 123)
SMALL = b"config" * 100


def head_of(data: bytes) -> str:
    return hashlib.sha256(data[:HEAD_BYTES]).hexdigest()


class Recording(httpx.BaseTransport):
    """Sends to the app in process, noting every blob upload as (method, path); with
    ``fail``, an upload whose body starts with those bytes dies after its first chunk,
    as when the connection drops while a file streams."""

    def __init__(self, app: FastAPI, *, fail: bytes | None = None) -> None:
        self.inner = InProcessTransport(app)
        self.fail = fail
        self.uploads: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        upload = request.method == "PUT" and path.startswith(BLOBS + "/")
        if upload or (request.method == "POST" and path == BLOBS):
            with self._lock:
                self.uploads.append((request.method, path))
            if self.fail is not None:
                assert isinstance(request.stream, httpx.SyncByteStream)
                chunks = iter(request.stream)
                first = next(chunks)
                if first.startswith(self.fail):
                    raise httpx.WriteError("connection reset while sending", request=request)
                request.stream = httpx.ByteStream(first + b"".join(chunks))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def low_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_blobs, "STREAM_FROM", STREAM_FROM)


def known(client: httpx.Client, *files: tuple[int, str]) -> list[bool]:
    body = {"files": [{"size": size, "head": head} for size, head in files]}
    response = client.post(HEADS, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["stream"] is True  # a local store: streaming is welcome
    answer: list[bool] = response.json()["known"]
    return answer


def assert_nothing_stored(app: FastAPI) -> None:
    assert stored_blobs(app) == []
    assert partial_files(app) == []


# --- the server: POST /api/v1/blobs and /heads --------------------------------------------


def test_unnamed_upload_is_stored_under_its_digest(app: FastAPI, client: httpx.Client) -> None:
    assert known(client, (len(BIG), head_of(BIG))) == [False]
    response = client.post(BLOBS, content=BIG)
    assert response.status_code == 201
    assert response.json() == {"sha256": sha256(BIG), "size": len(BIG)}
    assert stored_blobs(app) == [sha256(BIG)]
    assert app.state.registry.blobs.path_of(sha256(BIG)).read_bytes() == BIG
    assert partial_files(app) == []
    # Its head is on record now; another size or another first MiB is not.
    assert known(
        client,
        (len(BIG), head_of(BIG)),
        (len(BIG) + 1, head_of(BIG)),
        (len(BIG), head_of(b"other" + BIG)),
    ) == [True, False, False]


def test_unnamed_upload_of_stored_bytes_keeps_one_copy(app: FastAPI, client: httpx.Client) -> None:
    assert client.put(f"{BLOBS}/{sha256(BIG)}", content=BIG).status_code == 201
    response = client.post(BLOBS, content=BIG)
    assert response.status_code == 201
    assert response.json() == {"sha256": sha256(BIG), "size": len(BIG)}
    assert stored_blobs(app) == [sha256(BIG)]
    assert partial_files(app) == []


def test_a_blob_uploaded_by_digest_has_its_head_recorded(client: httpx.Client) -> None:
    assert client.put(f"{BLOBS}/{sha256(BIG)}", content=BIG).status_code == 201
    assert known(client, (len(BIG), head_of(BIG))) == [True]


def test_blobs_under_a_mib_are_never_known(client: httpx.Client) -> None:
    # Small files are hashed before they are sent: their heads are not worth a row.
    assert client.put(f"{BLOBS}/{sha256(SMALL)}", content=SMALL).status_code == 201
    assert known(client, (len(SMALL), sha256(SMALL))) == [False]


def test_unnamed_upload_needs_a_length(app: FastAPI) -> None:
    # Chunked: the server could only take the body's end for the file's end.
    response = call_asgi(app, "POST", BLOBS, chunks=[SMALL[:10], SMALL[10:]])
    assert response.status == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert "Content-Length" in error["message"]
    assert_nothing_stored(app)


@pytest.mark.parametrize("extra", [-1, 1])
def test_unnamed_upload_of_another_length_stores_nothing(app: FastAPI, extra: int) -> None:
    response = call_asgi(
        app, "POST", BLOBS, headers=[("content-length", str(len(SMALL) + extra))], chunks=[SMALL]
    )
    assert response.status == 400
    assert json.loads(response.body)["error"]["code"] == "DIGEST_MISMATCH"
    assert_nothing_stored(app)


@pytest.mark.parametrize("length", ["-1", "abc", str(2**64), str(10**30)])
def test_bad_length_of_an_unnamed_upload_is_400(app: FastAPI, length: str) -> None:
    response = call_asgi(app, "POST", BLOBS, headers=[("content-length", length)], chunks=[SMALL])
    assert response.status == 400
    assert json.loads(response.body)["error"]["code"] == "INVALID_ARGUMENT"
    assert_nothing_stored(app)


def test_truncated_unnamed_upload_stores_nothing(app: FastAPI) -> None:
    response = call_asgi(
        app,
        "POST",
        BLOBS,
        headers=[("content-length", str(len(BIG)))],
        chunks=[BIG[:1000], BIG[1000:5000]],
        disconnect=True,
    )
    assert response.status is None or 400 <= response.status < 500, response
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    "body",
    [
        {"files": [{"size": 10, "head": "abc"}]},
        {"files": [{"size": -1, "head": "0" * 64}]},
        {"files": [{"size": 10, "head": "G" * 64}]},
        {"files": [{"size": 10}]},
        {"sha256": []},
    ],
)
def test_bad_heads_question_is_400(client: httpx.Client, body: dict[str, object]) -> None:
    response = client.post(HEADS, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


def test_gc_forgets_the_heads_of_collected_blobs(app: FastAPI, client: httpx.Client) -> None:
    assert client.post(BLOBS, content=BIG).status_code == 201
    assert known(client, (len(BIG), head_of(BIG))) == [True]
    report = app.state.registry.gc(grace=0)
    assert report.deleted_blobs == 1
    assert known(client, (len(BIG), head_of(BIG))) == [False]


def test_metadata_bodies_under_the_blob_routes_are_capped(app: FastAPI) -> None:
    # Only uploads stream past the body limit; a question about blobs is metadata.
    for path in (HEADS, f"{BLOBS}/missing"):
        response = call_asgi(
            app, "POST", path, headers=[("content-length", str(MAX_BODY + 1))], chunks=[b"{}"]
        )
        assert response.status == 413, path
        assert json.loads(response.body)["error"]["code"] == "PAYLOAD_TOO_LARGE"


# --- the client: register ------------------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.usefixtures("low_threshold")
def test_register_streams_a_large_new_file_once(app: FastAPI, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write(folder / "weights.bin", BIG)
    write(folder / "config.json", SMALL)
    recording = Recording(app)
    done: list[int] = []
    with remote(app, transport=recording) as reg:
        version = reg.register("fraud", folder, progress=done.append)
        assert recording.uploads == [("POST", BLOBS), ("PUT", f"{BLOBS}/{sha256(SMALL)}")]
        assert sum(done) == len(BIG) + len(SMALL)  # every byte counted once
        assert {f.path: f.sha256 for f in version.files} == {
            "weights.bin": sha256(BIG),
            "config.json": sha256(SMALL),
        }
        reg.pull("fraud/1", tmp_path / "pulled")
    assert (tmp_path / "pulled" / "weights.bin").read_bytes() == BIG


@pytest.mark.usefixtures("low_threshold")
def test_register_again_sends_nothing(app: FastAPI, tmp_path: Path) -> None:
    path = write(tmp_path / "weights.bin", BIG)
    with remote(app) as reg:
        reg.register("fraud", path)
    recording = Recording(app)
    done: list[int] = []
    with remote(app, transport=recording) as reg:
        assert reg.register("fraud", path, progress=done.append).version == 2
        assert reg.register("churn", path).version == 1
    assert recording.uploads == []
    assert sum(done) == len(BIG)


@pytest.mark.usefixtures("low_threshold")
def test_an_interrupted_register_does_not_resend_finished_files(
    app: FastAPI, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    other = os.urandom(len(BIG))
    write(folder / "a.bin", BIG)
    write(folder / "b.bin", other)
    broken = Recording(app, fail=other[:64])
    with remote(app, transport=broken) as reg, pytest.raises(errors.StorageError):
        reg.register("fraud", folder)
    assert sorted(broken.uploads) == [("POST", BLOBS)] * 2  # both started
    assert stored_blobs(app) == [sha256(BIG)]  # only the one that finished
    assert partial_files(app) == []

    retry = Recording(app)
    with remote(app, transport=retry) as reg:
        version = reg.register("fraud", folder)
    # a.bin is known now: hashed, found stored, not sent; b.bin still streams.
    assert retry.uploads == [("POST", BLOBS)]
    assert {f.path: f.sha256 for f in version.files} == {
        "a.bin": sha256(BIG),
        "b.bin": sha256(other),
    }


@pytest.mark.usefixtures("low_threshold")
def test_same_size_and_head_is_hashed_first_and_sent_by_digest(
    app: FastAPI, tmp_path: Path
) -> None:
    path = write(tmp_path / "weights.bin", BIG)
    with remote(app) as reg:
        reg.register("fraud", path)
    # A retrained model of the same shape: same size, same first MiB, other weights.
    changed = BIG[:-1] + bytes([BIG[-1] ^ 1])
    write(path, changed)
    recording = Recording(app)
    with remote(app, transport=recording) as reg:
        version = reg.register("fraud", path)
    assert recording.uploads == [("PUT", f"{BLOBS}/{sha256(changed)}")]
    assert version.files[0].sha256 == sha256(changed)


@pytest.mark.usefixtures("low_threshold")
def test_identical_large_files_in_one_version_are_sent_once(app: FastAPI, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write(folder / "a.bin", BIG)
    write(folder / "b.bin", BIG)
    recording = Recording(app)
    with remote(app, transport=recording) as reg:
        version = reg.register("fraud", folder)
    assert recording.uploads == [("POST", BLOBS)]
    assert [f.sha256 for f in version.files] == [sha256(BIG)] * 2


@pytest.mark.usefixtures("low_threshold")
@pytest.mark.parametrize(
    "kwargs",
    [{"tags": {"bad key!": "x"}}, {"description": "x" * 30_000}, {"lineage": {"parents": ["?"]}}],
)
def test_bad_metadata_is_refused_before_a_byte_is_sent(
    app: FastAPI, tmp_path: Path, kwargs: dict[str, object]
) -> None:
    path = write(tmp_path / "weights.bin", BIG)
    recording = Recording(app)
    with remote(app, transport=recording) as reg, pytest.raises(errors.InvalidArgument):
        reg.register("fraud", path, **kwargs)  # type: ignore[arg-type]
    assert recording.uploads == []
    assert_nothing_stored(app)


@pytest.mark.usefixtures("low_threshold")
def test_a_bad_model_name_is_refused_before_a_byte_is_sent(app: FastAPI, tmp_path: Path) -> None:
    path = write(tmp_path / "weights.bin", BIG)
    recording = Recording(app)
    with remote(app, transport=recording) as reg, pytest.raises(errors.InvalidName):
        reg.register("no/slashes", path)
    assert recording.uploads == []
    assert_nothing_stored(app)


@pytest.mark.usefixtures("low_threshold")
def test_a_digest_other_than_the_clients_registers_nothing(
    app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server stored other bytes than the client hashed (the file changed while it
    # was read): the client refuses to name that blob in a version.
    path = write(tmp_path / "weights.bin", BIG)
    real = client_blobs.RemoteBlobs._post_hashing

    def lying(self: client_blobs.RemoteBlobs, *args: object) -> object:
        entry, theirs = real(self, *args)  # type: ignore[arg-type]
        return entry, {**theirs, "sha256": sha256(b"something else")}

    monkeypatch.setattr(client_blobs.RemoteBlobs, "_post_hashing", lying)
    with remote(app) as reg:
        with pytest.raises(errors.DigestMismatch) as caught:
            reg.register("fraud", path)
        assert caught.value.details["path"] == "weights.bin"
        assert reg.search_versions().items == []


def test_files_under_the_threshold_are_hashed_first(app: FastAPI, tmp_path: Path) -> None:
    path = write(tmp_path / "weights.bin", BIG)  # under the default 64 MiB
    recording = Recording(app)
    with remote(app, transport=recording) as reg:
        reg.register("fraud", path)
    assert recording.uploads == [("PUT", f"{BLOBS}/{sha256(BIG)}")]
