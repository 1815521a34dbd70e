"""The server app every test here talks to, over an empty registry of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

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
