"""/api/v1/blobs over HTTP: verified streaming uploads that store nothing on a mismatch or
a truncated body, existence checks, and downloads with Range and conditional requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from modelreg import errors

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import (
        admin_token,
        call_asgi,
        client_for,
        error_of,
        make_app,
        partial_files,
        sha256,
        stored_blobs,
    )
else:
    from httpkit import (
        admin_token,
        call_asgi,
        client_for,
        error_of,
        make_app,
        partial_files,
        sha256,
        stored_blobs,
    )

DATA = bytes(range(256)) * 4 + b"tail"  # 1028 bytes
SHA = sha256(DATA)
TAG = f'"sha256:{SHA}"'
URL = f"/api/v1/blobs/{SHA}"
ABSENT = sha256(b"never uploaded")


@pytest.fixture
def stored(client: httpx.Client) -> httpx.Client:
    """The client, with DATA stored on the server."""
    assert client.put(URL, content=DATA).status_code == 201
    return client


def assert_nothing_stored(app: FastAPI) -> None:
    assert stored_blobs(app) == []
    assert partial_files(app) == []


# --- uploads -----------------------------------------------------------------------------


def test_upload_with_the_right_digest_is_stored(app: FastAPI, client: httpx.Client) -> None:
    response = client.put(URL, content=DATA)
    assert response.status_code == 201
    assert response.json() == {"sha256": SHA, "size": len(DATA)}
    assert stored_blobs(app) == [SHA]
    assert app.state.registry.blobs.path_of(SHA).read_bytes() == DATA
    assert partial_files(app) == []


def test_upload_streamed_without_a_length_is_stored(app: FastAPI, client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield DATA[:100]
        yield DATA[100:]

    response = client.put(URL, content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 201
    assert stored_blobs(app) == [SHA]


def test_upload_with_a_wrong_digest_stores_nothing(app: FastAPI, client: httpx.Client) -> None:
    error = error_of(client.put(f"/api/v1/blobs/{ABSENT}", content=DATA), errors.DigestMismatch)
    assert error["details"] == {"expected": ABSENT, "actual": SHA}
    assert_nothing_stored(app)


def test_upload_with_a_length_the_body_exceeds_stores_nothing(app: FastAPI) -> None:
    response = call_asgi(
        app, "PUT", URL, headers=[("content-length", str(len(DATA) - 1))], chunks=[DATA]
    )
    assert response.status == 400
    assert json.loads(response.body)["error"]["code"] == "DIGEST_MISMATCH"
    assert_nothing_stored(app)


def test_truncated_upload_then_disconnect_stores_nothing(app: FastAPI) -> None:
    # The connection drops after part of the announced body.
    response = call_asgi(
        app,
        "PUT",
        URL,
        headers=[("content-length", str(len(DATA)))],
        chunks=[DATA[:300], DATA[300:600]],
        disconnect=True,
    )
    assert response.status is None or 400 <= response.status < 500, response
    assert_nothing_stored(app)


def test_disconnect_after_bytes_that_hash_right_stores_nothing(app: FastAPI) -> None:
    # No length to compare with, and the bytes seen so far do hash to the digest: only the
    # missing end of the body tells that the upload is incomplete.
    response = call_asgi(app, "PUT", URL, chunks=[DATA], disconnect=True)
    assert response.status is None or 400 <= response.status < 500, response
    assert_nothing_stored(app)


def test_body_ending_short_of_its_length_is_digest_mismatch(app: FastAPI) -> None:
    response = call_asgi(
        app,
        "PUT",
        URL,
        headers=[("content-length", str(len(DATA)))],
        chunks=[DATA[:300], DATA[300:600]],
    )
    assert response.status == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "DIGEST_MISMATCH"
    assert error["details"]["expected"] == len(DATA)
    assert error["details"]["actual"] == 600
    assert_nothing_stored(app)


def test_body_ending_short_that_hashes_right_is_digest_mismatch(app: FastAPI) -> None:
    # The bytes match the digest but not the announced length.
    response = call_asgi(
        app, "PUT", URL, headers=[("content-length", str(len(DATA) + 10))], chunks=[DATA]
    )
    assert response.status == 400
    assert json.loads(response.body)["error"]["code"] == "DIGEST_MISMATCH"
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    "digest", ["abc", SHA.upper(), SHA[:-1], SHA + "0", "g" * 64, "sha256:" + SHA[:57]]
)
def test_bad_digest_in_the_path_is_400(app: FastAPI, client: httpx.Client, digest: str) -> None:
    for method in ("PUT", "GET", "HEAD"):
        response = client.request(method, f"/api/v1/blobs/{digest}", content=DATA)
        assert response.status_code == 400, (method, response.text)
        if method != "HEAD":
            error_of(response, errors.InvalidArgument)
    assert_nothing_stored(app)


@pytest.mark.parametrize("length", ["-1", "abc", "1.5"])
def test_bad_content_length_is_400(app: FastAPI, length: str) -> None:
    response = call_asgi(app, "PUT", URL, headers=[("content-length", length)], chunks=[DATA])
    assert response.status == 400
    assert_nothing_stored(app)


def test_reupload_keeps_one_copy(app: FastAPI, stored: httpx.Client) -> None:
    response = stored.put(URL, content=DATA)
    assert response.status_code == 201
    assert response.json() == {"sha256": SHA, "size": len(DATA)}
    assert stored_blobs(app) == [SHA]
    assert partial_files(app) == []
    assert len(list(Path(app.state.registry.blobs.location).rglob(SHA))) == 1


def test_empty_blob(app: FastAPI, client: httpx.Client) -> None:
    empty = sha256(b"")
    assert client.put(f"/api/v1/blobs/{empty}", content=b"").status_code == 201
    response = client.get(f"/api/v1/blobs/{empty}")
    assert response.status_code == 200
    assert response.content == b""
    assert client.get(f"/api/v1/blobs/{empty}", headers={"range": "bytes=-1"}).status_code == 416


def test_missing_lists_only_absent_digests(stored: httpx.Client) -> None:
    other = sha256(b"other")
    response = stored.post("/api/v1/blobs/missing", json={"sha256": [other, SHA, ABSENT, SHA]})
    assert response.status_code == 200
    assert response.json() == {"missing": sorted([other, ABSENT])}
    assert stored.post("/api/v1/blobs/missing", json={"sha256": [SHA]}).json() == {"missing": []}
    assert stored.post("/api/v1/blobs/missing", json={"sha256": []}).json() == {"missing": []}


def test_missing_with_a_bad_digest_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v1/blobs/missing", json={"sha256": [SHA, "nope"]})
    error_of(response, errors.InvalidArgument)


# --- existence ---------------------------------------------------------------------------


def test_head_of_a_stored_blob(stored: httpx.Client) -> None:
    response = stored.head(URL)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == TAG
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == b""


def test_head_of_an_absent_blob_is_404(client: httpx.Client) -> None:
    response = client.head(f"/api/v1/blobs/{ABSENT}")
    assert response.status_code == 404
    assert response.content == b""


def test_get_of_an_absent_blob_is_404(client: httpx.Client) -> None:
    error = error_of(client.get(f"/api/v1/blobs/{ABSENT}"), errors.NotFound)
    assert error["details"] == {"sha256": ABSENT}


# --- downloads ---------------------------------------------------------------------------


def test_get_whole_blob(stored: httpx.Client) -> None:
    response = stored.get(URL)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == TAG
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "application/octet-stream"
    assert "content-range" not in response.headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, len(DATA) - 1),
        ("bytes=-5", len(DATA) - 5, len(DATA) - 1),
        ("bytes=1000-5000", 1000, len(DATA) - 1),
        ("bytes=-5000", 0, len(DATA) - 1),
        (f"bytes={len(DATA) - 1}-", len(DATA) - 1, len(DATA) - 1),
        (" bytes=3-3 ", 3, 3),
    ],
)
def test_range(stored: httpx.Client, header: str, start: int, end: int) -> None:
    response = stored.get(URL, headers={"range": header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["etag"] == TAG


@pytest.mark.parametrize(
    "header",
    [f"bytes={len(DATA)}-{len(DATA) + 10}", f"bytes={len(DATA)}-", "bytes=5000-", "bytes=-0"],
)
def test_range_past_the_end_is_416(stored: httpx.Client, header: str) -> None:
    response = stored.get(URL, headers={"range": header})
    assert response.status_code == 416, (response.status_code, response.headers)
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.content == b""


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,5-9", "bytes=9-0", "items=0-9", "bytes=a-b", "bytes=-", "bytes 0-9", ""],
)
def test_unusable_range_sends_the_whole_blob(stored: httpx.Client, header: str) -> None:
    response = stored.get(URL, headers={"range": header})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


@pytest.mark.parametrize("header", [TAG, f"W/{TAG}", f'"other", {TAG}', "*"])
def test_if_none_match_with_the_etag_is_304(stored: httpx.Client, header: str) -> None:
    response = stored.get(URL, headers={"if-none-match": header})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == TAG


def test_if_none_match_with_another_etag_sends_the_blob(stored: httpx.Client) -> None:
    response = stored.get(URL, headers={"if-none-match": f'"sha256:{ABSENT}"'})
    assert response.status_code == 200
    assert response.content == DATA


def test_if_range_with_the_etag_honours_range(stored: httpx.Client) -> None:
    response = stored.get(URL, headers={"range": "bytes=0-9", "if-range": TAG})
    assert response.status_code == 206
    assert response.content == DATA[:10]


def test_if_range_with_another_etag_sends_everything(stored: httpx.Client) -> None:
    response = stored.get(URL, headers={"range": "bytes=0-9", "if-range": f'"sha256:{ABSENT}"'})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


def test_if_range_with_another_etag_ignores_an_unsatisfiable_range(stored: httpx.Client) -> None:
    response = stored.get(URL, headers={"range": "bytes=9999-99999", "if-range": '"x"'})
    assert response.status_code == 200
    assert response.content == DATA


def test_token_protects_blobs(tmp_path: Path) -> None:
    app = make_app(tmp_path, auth="on")
    try:
        token = admin_token(app)
        with client_for(app) as client:
            error_of(client.put(URL, content=DATA), errors.Unauthenticated)
            error_of(client.get(URL), errors.Unauthenticated)
            assert_nothing_stored(app)
            auth = {"authorization": f"Bearer {token}"}
            assert client.put(URL, content=DATA, headers=auth).status_code == 201
            assert client.get(URL, headers=auth).content == DATA
    finally:
        app.state.registry.close()
