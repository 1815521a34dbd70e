"""Shared fixtures: one registry per test on every metadata backend.

PostgreSQL comes from ``MODELREG_TEST_POSTGRES_URL`` (default: the local server). Without
it the PostgreSQL half of the suite is skipped on a laptop, and fails when ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import modelreg
import s3server
from inprocess import InProcessTransport
from modelreg.client import RemoteRegistry
from modelreg.config import Config
from modelreg.domain.audit import GENESIS
from modelreg.embedded import EmbeddedRegistry
from modelreg.server import create_app
from modelreg.store import tables

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")
MODES = ("embedded", "remote")


def postgres_admin_url() -> str:
    return os.environ.get("MODELREG_TEST_POSTGRES_URL", DEFAULT_PG)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


def _libpq(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated database for this test process; dropped at the end."""
    admin = make_url(postgres_admin_url())
    name = f"modelreg_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(_libpq(admin), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _unavailable(str(exc).strip())
    url = admin.set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if sa.inspect(conn).has_table("models"):
            names = ", ".join(t.name for t in tables.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            # An empty registry's audit chain starts at its genesis head, as migrated.
            conn.execute(sa.insert(tables.audit_head).values(id=1, seq=0, hash=GENESIS))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return str(request.param)


@pytest.fixture
def registry_uri(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A metadata URI for an empty registry on the test's backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """How the registry under test is reached: in this process, or through the HTTP API."""
    return str(request.param)


@pytest.fixture
def backing(registry_uri: str, tmp_path: Path) -> Iterator[EmbeddedRegistry]:
    """The embedded registry holding the test's data; in remote mode, the server's.

    Tests reach through it for what no client can do: write blobs directly, corrupt them,
    call the service layer with crafted input."""
    registry = EmbeddedRegistry(
        Config.load(uri=registry_uri, artifacts=str(tmp_path / "blobs"), user="alice", auth="off")
    )
    yield registry
    registry.close()


@pytest.fixture
def make_registry(
    mode: str, backing: EmbeddedRegistry
) -> Iterator[Callable[..., modelreg.Registry]]:
    """Open registries over the same metadata and blob store, as different users."""
    yield from registries_over(mode, backing)


def registries_over(
    mode: str, backing: EmbeddedRegistry
) -> Iterator[Callable[..., modelreg.Registry]]:
    """The body of ``make_registry`` for any backing registry."""
    opened: list[modelreg.Registry] = []
    app = create_app(backing.config) if mode == "remote" else None

    def make(user: str = "alice") -> modelreg.Registry:
        registry: modelreg.Registry
        if app is None:
            registry = EmbeddedRegistry(replace(backing.config, user=user))
        else:
            client = httpx.Client(transport=InProcessTransport(app))
            registry = RemoteRegistry("http://modelreg.test", user=user, client=client)
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()
    if app is not None:
        app.state.registry.close()


@pytest.fixture
def reg(make_registry: Callable[..., modelreg.Registry]) -> modelreg.Registry:
    """An empty registry acting as 'alice', embedded or remote."""
    return make_registry()


@pytest.fixture
def model_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a folder of small files whose content depends on ``seed``."""
    counter = iter(range(1_000_000))

    def make(seed: str = "", files: dict[str, bytes] | None = None) -> Path:
        root = tmp_path / f"model-{next(counter)}"
        content = files or {
            "model.pkl": f"weights {seed}".encode(),
            "config/params.json": f'{{"seed": "{seed}"}}'.encode(),
        }
        for rel, data in content.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    return make


# ------------------------------------------------------------------ S3-compatible store


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    """A moto S3 server for this test process. Skipped without moto on a laptop; with
    ``CI=true`` its absence fails the run instead."""
    try:
        server = s3server.start(tmp_path_factory.mktemp("s3"))
    except s3server.Unavailable as exc:
        if in_ci():
            pytest.fail(f"an S3 server is required in CI: {exc}")
        pytest.skip(f"no S3 server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def s3_uri(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://BUCKET/registry`` in a fresh bucket, with the AWS settings pointing at it."""
    s3_server.use(monkeypatch)
    return f"s3://{s3_server.new_bucket()}/registry"


@pytest.fixture
def s3_backing(registry_uri: str, s3_uri: str) -> Iterator[EmbeddedRegistry]:
    """Like ``backing``, with its blobs in a bucket."""
    registry = EmbeddedRegistry(
        Config.load(uri=registry_uri, artifacts=s3_uri, user="alice", auth="off")
    )
    yield registry
    registry.close()


@pytest.fixture
def s3_reg(mode: str, s3_backing: EmbeddedRegistry) -> Iterator[modelreg.Registry]:
    """Like ``reg``, over a registry whose blobs are in a bucket."""
    for make in registries_over(mode, s3_backing):
        yield make()


@pytest.fixture
def no_direct_io(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files opened with O_DIRECT are refused as tmpfs refuses them: created, then EINVAL."""
    real_open = os.open

    def refusing(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & getattr(os, "O_DIRECT", 0):
            real_open(path, os.O_WRONLY | os.O_CREAT, mode, dir_fd=dir_fd)
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refusing)
