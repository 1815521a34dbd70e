"""The server app every test here talks to, over an empty registry of its own: in process,
or served over real sockets by uvicorn with the server's own protocol (``live``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from modelreg.server.run import NoDelayProtocol

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import client_for, make_app
else:
    from httpkit import client_for, make_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """A server app over an empty SQLite registry and blob store under ``tmp_path``."""
    app = make_app(tmp_path / "server")
    yield app
    app.state.registry.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[httpx.Client]:
    """An httpx client that reaches ``app`` in this process."""
    with client_for(app) as client:
        yield client


@pytest.fixture
def live(app: FastAPI) -> Iterator[tuple[str, int]]:
    """``app`` served by uvicorn with the server's protocol, in a thread: (host, port)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=NoDelayProtocol, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(30)
