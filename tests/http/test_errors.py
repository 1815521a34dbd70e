"""Error paths over HTTP: one JSON error shape with the stable codes of ``errors.py``, a
4xx (never a 500) for every client mistake, and the remote client raising exactly the
class the server reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from modelreg import errors
from modelreg.client import RemoteRegistry
from modelreg.server.limits import MAX_BODY

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import admin_token, call_asgi, client_for, error_of, make_app, remote
else:
    from httpkit import admin_token, call_asgi, client_for, error_of, make_app, remote

MODELS = "/api/v1/models"


@pytest.fixture
def reg(app: FastAPI) -> Iterator[RemoteRegistry]:
    with remote(app) as reg:
        yield reg


@pytest.fixture
def fraud(reg: RemoteRegistry, tmp_path: Path) -> RemoteRegistry:
    """A registry holding model 'fraud' with version 1."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"weights")
    reg.register("fraud", folder)
    return reg


# --- the shape ---------------------------------------------------------------------------


def test_error_shape_has_exactly_code_message_details(client: httpx.Client) -> None:
    response = client.get("/api/v1/no-such-thing")
    error = error_of(response, errors.NotFound)
    assert error == {
        "code": "NOT_FOUND",
        "message": "no such endpoint: GET /api/v1/no-such-thing",
        "details": {},
    }


def test_error_details_carry_structured_fields(client: httpx.Client) -> None:
    response = client.get(MODELS, params={"filter": "name ==== 'x'"})
    error = error_of(response, errors.InvalidFilter)
    assert error["details"] == {"position": 7}


# --- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/api", "/api/v2/models", "/api/v1/modelz", "/api/v1/models/fraud/nothing"]
)
def test_unknown_route_is_404_not_found(client: httpx.Client, path: str) -> None:
    error = error_of(client.get(path), errors.NotFound)
    assert path in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/v1/info"),
        ("POST", "/api/v1/lifecycle"),
        ("PUT", MODELS),
        ("POST", "/api/v1/resolve"),
        ("PATCH", "/api/v1/blobs/missing"),
    ],
)
def test_wrong_method_is_405_method_not_allowed(
    client: httpx.Client, method: str, path: str
) -> None:
    error = error_of(client.request(method, path), errors.MethodNotAllowed)
    assert method in error["message"]


# --- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{bad", b"", b"{", b'{"name": "x",}', b"\xff\xfe"])
def test_malformed_json_is_400_invalid_argument(client: httpx.Client, body: bytes) -> None:
    response = client.post(MODELS, content=body, headers={"content-type": "application/json"})
    error = error_of(response, errors.InvalidArgument)
    if body:
        assert "malformed JSON" in error["message"]


def test_wrong_type_in_body_is_400(fraud: RemoteRegistry, client: httpx.Client) -> None:
    response = client.put(f"{MODELS}/fraud/aliases/champion", json={"version": "x"})
    error = error_of(response, errors.InvalidArgument)
    assert "version" in error["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (MODELS, {"name": 7}),
        (MODELS, ["fraud"]),
        (MODELS, "fraud"),
        (MODELS, {"name": "m", "tags": {"a": 1}}),
        (f"{MODELS}/fraud/aliases/champion", {"version": 0}),
        (f"{MODELS}/fraud/aliases/champion", {"version": 2**63}),
        (f"{MODELS}/fraud/aliases/champion", {}),
        (f"{MODELS}/fraud/versions", {"files": [{"path": "a", "size": -1, "sha256": "0"}]}),
        ("/api/v1/blobs/missing", {"sha256": "abc"}),
        ("/api/v1/gc", {"grace": [1]}),
    ],
)
def test_invalid_body_is_400(
    fraud: RemoteRegistry, client: httpx.Client, path: str, body: Any
) -> None:
    method = "PUT" if "/aliases/" in path else "POST"
    error_of(client.request(method, path, json=body), errors.InvalidArgument)


def test_extra_unknown_field_is_400(client: httpx.Client) -> None:
    response = client.post(MODELS, json={"name": "fraud", "colour": "blue"})
    error = error_of(response, errors.InvalidArgument)
    assert "colour" in error["message"]
    assert error_of(client.get(f"{MODELS}/fraud"), errors.NotFound)


# --- query parameters and paths ----------------------------------------------------------


@pytest.mark.parametrize("path", [MODELS, "/api/v1/versions"])
@pytest.mark.parametrize(
    ("text", "position"),
    [("name ==== 'x'", 7), ("metrics.auc >", 13), ("nosuchfield = 1", 0), ("name = 'x' AND", 14)],
)
def test_bad_filter_is_400_invalid_filter_with_position(
    client: httpx.Client, path: str, text: str, position: int
) -> None:
    error = error_of(client.get(path, params={"filter": text}), errors.InvalidFilter)
    assert error["details"]["position"] == position
    assert f"position {position}" in error["message"]


@pytest.mark.parametrize("path", [MODELS, "/api/v1/versions"])
def test_bad_order_by_is_400_invalid_filter(client: httpx.Client, path: str) -> None:
    error_of(client.get(path, params={"order_by": "nosuchfield"}), errors.InvalidFilter)


@pytest.mark.parametrize("size", ["0", "5000", "abc", "-1", "1.5"])
@pytest.mark.parametrize(
    "path", [MODELS, "/api/v1/versions", f"{MODELS}/fraud/versions", f"{MODELS}/fraud/history"]
)
def test_bad_page_size_is_400(
    fraud: RemoteRegistry, client: httpx.Client, path: str, size: str
) -> None:
    error = error_of(client.get(path, params={"page_size": size}), errors.InvalidArgument)
    assert "page_size" in error["message"]


@pytest.mark.parametrize("token", ["garbage", "!!!", "eyJ4IjoxfQ"])
def test_bad_page_token_is_400(fraud: RemoteRegistry, client: httpx.Client, token: str) -> None:
    error_of(client.get(MODELS, params={"page_token": token}), errors.InvalidArgument)


@pytest.mark.parametrize(
    "ref", ["fraud", "fraud/x", "fraud//1", "fraud@", "/1", "fraud/0", "a b/1"]
)
def test_bad_reference_in_resolve_is_400_invalid_reference(client: httpx.Client, ref: str) -> None:
    error_of(client.get("/api/v1/resolve", params={"ref": ref}), errors.InvalidReference)


def test_missing_reference_in_resolve_is_400(client: httpx.Client) -> None:
    error = error_of(client.get("/api/v1/resolve"), errors.InvalidArgument)
    assert "ref" in error["message"]


@pytest.mark.parametrize("selector", ["abc", "@", "-1", "1.0", "v1", "%20"])
def test_invalid_version_selector_in_path_is_400(
    fraud: RemoteRegistry, client: httpx.Client, selector: str
) -> None:
    response = client.get(f"{MODELS}/fraud/versions/{selector}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("INVALID_REFERENCE", "INVALID_NAME")


def test_unknown_version_is_404(fraud: RemoteRegistry, client: httpx.Client) -> None:
    error_of(client.get(f"{MODELS}/fraud/versions/99"), errors.NotFound)
    error_of(client.get(f"{MODELS}/fraud/versions/@production"), errors.NotFound)


def test_invalid_model_name_in_path_is_400_invalid_name(client: httpx.Client) -> None:
    error_of(client.get(f"{MODELS}/bad%20name!"), errors.InvalidName)


# --- oversized bodies ----------------------------------------------------------------------


def test_oversized_body_with_content_length_is_413(app: FastAPI) -> None:
    # Declared, not sent: the limit answers from the header before reading anything.
    response = call_asgi(
        app,
        "POST",
        MODELS,
        headers=[("content-type", "application/json"), ("content-length", str(MAX_BODY + 1))],
        chunks=[b'{"name": "fraud"}'],
    )
    assert response.status == 413
    assert response.headers["content-type"].startswith("application/json")
    assert httpx.Response(413, content=response.body).json()["error"]["code"] == (
        "PAYLOAD_TOO_LARGE"
    )


def test_oversized_body_honestly_declared_is_413(client: httpx.Client) -> None:
    body = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    response = client.post(MODELS, content=body, headers={"content-type": "application/json"})
    error_of(response, errors.PayloadTooLarge)


def test_oversized_chunked_body_is_413(client: httpx.Client) -> None:
    piece = b" " * (1024 * 1024)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "fraud", "description": "'
        for _ in range(MAX_BODY // len(piece) + 1):
            yield piece
        yield b'"}'

    response = client.post(MODELS, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    error_of(response, errors.PayloadTooLarge)
    error_of(client.get(f"{MODELS}/fraud"), errors.NotFound)


def test_body_just_under_the_limit_is_not_413(app: FastAPI) -> None:
    # Sent in pieces without a length: counted as it streams, and accepted.
    chunks = [b'{"name": "fraud", "description": "', b" " * 1024, b'"}']
    response = call_asgi(
        app, "POST", MODELS, headers=[("content-type", "application/json")], chunks=chunks
    )
    assert response.status == 201


# --- headers -----------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["x" * 129, "tab\there", "bell\x07"])
def test_bad_user_header_is_400(app: FastAPI, user: str) -> None:
    response = call_asgi(app, "GET", "/api/v1/info", headers=[("x-modelreg-user", user)])
    assert response.status == 400
    assert httpx.Response(400, content=response.body).json()["error"]["code"] == (
        "INVALID_ARGUMENT"
    )


def test_user_header_names_the_actor(client: httpx.Client) -> None:
    response = client.get("/api/v1/info", headers={"x-modelreg-user": "bob"})
    assert response.status_code == 200
    assert response.json()["user"] == "bob"


def test_token_required_when_authentication_is_on(tmp_path: Path) -> None:
    app = make_app(tmp_path, auth="on")
    try:
        token = admin_token(app)
        forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
        with client_for(app) as client:
            for headers in (
                {},
                {"authorization": "Bearer nope"},
                {"authorization": f"Basic {token}"},
                {"authorization": f"Bearer {forged}"},
            ):
                response = client.get("/api/v1/info", headers=headers)
                error_of(response, errors.Unauthenticated)
                assert response.headers["www-authenticate"] == "Bearer"
                assert token not in response.text
            good = {"authorization": f"Bearer {token}"}
            assert client.get("/api/v1/info", headers=good).is_success
            # Probes stay open for orchestrators.
            assert client.get("/healthz").status_code == 200
    finally:
        app.state.registry.close()


# --- the remote client raises the server's class ----------------------------------------------


def _instance(cls: type[errors.ModelregError]) -> errors.ModelregError:
    if cls is errors.InvalidFilter:
        return errors.InvalidFilter("unexpected token", position=12)
    return cls(f"a {cls.code} happened", subject="fraud", count=3)


@pytest.mark.parametrize("cls", errors.ALL_ERRORS, ids=lambda c: c.__name__)
def test_from_dict_round_trips_every_class(cls: type[errors.ModelregError]) -> None:
    original = _instance(cls)
    rebuilt = errors.from_dict(original.to_dict())
    assert type(rebuilt) is cls
    assert rebuilt.to_dict() == original.to_dict()
    assert str(rebuilt) == str(original)
    if isinstance(original, errors.InvalidFilter):
        assert isinstance(rebuilt, errors.InvalidFilter)
        assert rebuilt.position == 12


def test_every_code_is_distinct() -> None:
    codes = [cls.code for cls in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", errors.ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_class_raised_by_the_server_reaches_the_client_as_itself(
    app: FastAPI, reg: RemoteRegistry, cls: type[errors.ModelregError]
) -> None:
    """A route raising each class in turn: status, shape and class survive the trip."""

    def fail() -> None:
        raise _instance(cls)

    app.add_api_route("/api/v1/_test/raise", fail, methods=["GET"])
    with client_for(app) as client:
        error = error_of(client.get("/api/v1/_test/raise"), cls)
    assert error == _instance(cls).to_dict()
    with pytest.raises(errors.ModelregError) as caught:
        reg.session.call("GET", "/api/v1/_test/raise")
    assert type(caught.value) is cls
    assert caught.value.to_dict() == _instance(cls).to_dict()


def _raises(cls: type[errors.ModelregError], action: Callable[[], object]) -> errors.ModelregError:
    with pytest.raises(errors.ModelregError) as caught:
        action()
    assert type(caught.value) is cls, caught.value
    return caught.value


def test_remote_not_found(reg: RemoteRegistry) -> None:
    _raises(errors.NotFound, lambda: reg.get_model("fraud"))
    _raises(errors.NotFound, lambda: reg.get("fraud/1"))


def test_remote_already_exists(reg: RemoteRegistry) -> None:
    reg.create_model("fraud")
    _raises(errors.AlreadyExists, lambda: reg.create_model("fraud"))


def test_remote_conflict_deleting_a_version_in_production(fraud: RemoteRegistry) -> None:
    fraud.transition("fraud/1", "staging")
    fraud.transition("fraud/1", "production")
    _raises(errors.Conflict, lambda: fraud.delete_version("fraud/1"))
    assert fraud.get("fraud@production").version == 1


def test_remote_invalid_transition(fraud: RemoteRegistry) -> None:
    _raises(errors.InvalidTransition, lambda: fraud.transition("fraud/1", "production"))
    assert fraud.get("fraud/1").stage == "development"


def test_remote_invalid_name(reg: RemoteRegistry) -> None:
    # create_model sends the name in the body: the server, not the client, refuses it.
    _raises(errors.InvalidName, lambda: reg.create_model("bad name!"))


def test_remote_invalid_filter_keeps_its_position(reg: RemoteRegistry) -> None:
    error = _raises(errors.InvalidFilter, lambda: reg.search_models("name ==== 'x'"))
    assert isinstance(error, errors.InvalidFilter)
    assert error.position == 7
    assert error.details["position"] == 7
    error = _raises(errors.InvalidFilter, lambda: reg.search_versions("metrics.auc >"))
    assert isinstance(error, errors.InvalidFilter)
    assert error.position == 13


def test_remote_digest_mismatch(reg: RemoteRegistry, app: FastAPI, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"some bytes")
    error = _raises(errors.DigestMismatch, lambda: reg.blobs.upload(path, "0" * 64, 10, None))
    assert error.details["expected"] == "0" * 64
    assert list(app.state.registry.blobs.iter_blobs()) == []


def test_remote_unauthenticated(tmp_path: Path) -> None:
    app = make_app(tmp_path, auth="on")
    try:
        token = admin_token(app)
        with remote(app) as anonymous, remote(app, token="wrong") as wrong:
            _raises(errors.Unauthenticated, anonymous.info)
            _raises(errors.Unauthenticated, lambda: wrong.get_model("fraud"))
        with remote(app, token=token) as good:
            _raises(errors.NotFound, lambda: good.get_model("fraud"))
    finally:
        app.state.registry.close()
