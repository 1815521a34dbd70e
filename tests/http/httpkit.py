"""Helpers for the HTTP API tests: an app over a fresh SQLite registry, clients bound to it
in process, the JSON error shape, and a raw ASGI call that controls the body stream.

There is no ``conftest.py`` here on purpose: ``tests/`` is a flat module namespace for
mypy, where a second ``conftest`` module is a duplicate. Each test module declares its own
small fixtures over these helpers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi import FastAPI
from starlette.types import Message

from inprocess import InProcessTransport
from modelreg import errors
from modelreg.client import RemoteRegistry
from modelreg.config import Config
from modelreg.server import create_app

BASE_URL = "http://modelreg.test"
ERROR_KEYS = {"code", "message", "details"}


def make_app(root: Path, *, auth: str = "off") -> FastAPI:
    """A server app over an empty SQLite registry and blob store under ``root``."""
    config = Config.load(
        uri=f"sqlite:///{root / 'r.db'}",
        artifacts=str(root / "blobs"),
        fsync="false",
        auth=auth,
    )
    return create_app(config)


def admin_token(app: FastAPI, name: str = "root") -> str:
    """Bootstrap an admin on the app's registry, as ``modelreg admin bootstrap`` does on
    the server host, and return its token."""
    registry = app.state.registry
    registry.create_principal(name)
    registry.grant(name, "admin", "*")
    token: str = registry.create_token(name).secret
    return token


def client_for(app: FastAPI, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client that reaches ``app`` in this process."""
    return httpx.Client(transport=transport or InProcessTransport(app), base_url=BASE_URL)


def remote(
    app: FastAPI,
    *,
    transport: httpx.BaseTransport | None = None,
    user: str = "alice",
    token: str | None = None,
) -> RemoteRegistry:
    """The remote SDK over ``app`` (through ``transport`` when given)."""
    return RemoteRegistry(
        BASE_URL,
        user=user,
        token=token,
        client=httpx.Client(transport=transport or InProcessTransport(app)),
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_root(app: FastAPI) -> Path:
    """The server's blob store folder."""
    return Path(app.state.registry.blobs.location)


def stored_blobs(app: FastAPI) -> list[str]:
    """Digests of every blob the server stores."""
    return sorted(stat.sha256 for stat in app.state.registry.blobs.iter_blobs())


def partial_files(app: FastAPI) -> list[Path]:
    """Whatever an upload left in the store's staging folder."""
    return sorted((blob_root(app) / "partial").iterdir())


def error_of(response: httpx.Response, cls: type[errors.ModelregError]) -> dict[str, Any]:
    """Check that ``response`` is ``cls`` in the one JSON error shape; return its body."""
    assert response.status_code < 500 or cls.status >= 500, response.text
    assert response.status_code == cls.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert isinstance(payload, dict)
    assert set(payload) == {"error"}, payload
    error = payload["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["code"] == cls.code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return dict(error)


@dataclass
class RawResponse:
    """What an ASGI app sent back: status, headers (lowercase names) and body."""

    status: int | None
    headers: dict[str, str]
    body: bytes


def call_asgi(
    app: FastAPI,
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    chunks: Sequence[bytes] = (),
    disconnect: bool = False,
) -> RawResponse:
    """Drive ``app`` directly, feeding the request body as ``chunks``.

    With ``disconnect`` the body never ends: after the chunks the client goes away
    (``http.disconnect``), as a dropped connection looks to the server. Otherwise the last
    chunk ends the body, however many bytes a ``content-length`` header announced.
    """
    script: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": disconnect or i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if not chunks and not disconnect:
        script.append({"type": "http.request", "body": b"", "more_body": False})
    if disconnect:
        script.append({"type": "http.disconnect"})
    sent: list[Message] = []

    async def run() -> None:
        done = anyio.Event()

        async def receive() -> Message:
            if script:
                return script.pop(0)
            # Asked again after the body: report the disconnect once the answer is out.
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            "client": ("127.0.0.1", 40000),
            "server": ("modelreg.test", 80),
            "state": {},
        }
        await app(scope, receive, send)

    anyio.run(run)
    status: int | None = None
    out_headers: dict[str, str] = {}
    body = b""
    for message in sent:
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
    return RawResponse(status, out_headers, body)
