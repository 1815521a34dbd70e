"""Settings, schema migrations and the documentation that must describe them."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import modelreg
from modelreg import errors
from modelreg.config import SETTINGS, Config
from modelreg.store.database import HEAD_REVISION, Database
from modelreg.store.tables import metadata

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_defaults_live_under_home(tmp_path: Path) -> None:
    config = Config.load({"MODELREG_HOME": str(tmp_path)})
    assert config.uri == f"sqlite:///{tmp_path / 'registry.db'}"
    assert config.artifacts == str(tmp_path / "blobs")
    assert config.fsync is True
    assert config.user


def test_overrides_win(tmp_path: Path) -> None:
    env = {"MODELREG_HOME": str(tmp_path), "MODELREG_USER": "env-user", "MODELREG_FSYNC": "off"}
    config = Config.load(env, user="arg-user")
    assert config.user == "arg-user"
    assert config.fsync is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELREG_FSYNC": "maybe"}, "true or false"),
        ({"MODELREG_BUSY_TIMEOUT": "-1"}, "positive"),
        ({"MODELREG_BUSY_TIMEOUT": "soon"}, "number of seconds"),
        ({"MODELREG_USER": ""}, "empty"),
    ],
)
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        Config.load(env)


@pytest.mark.parametrize("uri", ["mysql://x/y", "sqlite://", "sqlite:///:memory:", "not a url"])
def test_unsupported_uris(uri: str, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument):
        modelreg.connect(uri, artifacts=tmp_path / "b")


def test_unsupported_artifact_store(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="unsupported artifact store"):
        modelreg.connect(f"sqlite:///{tmp_path / 'r.db'}", artifacts="ftp://host/x")


def test_unreachable_postgres_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(errors.StorageError, match="cannot migrate"):
        modelreg.connect("postgresql://nobody@127.0.0.1:1/none", artifacts=tmp_path / "b")


def test_migrations_match_the_tables(registry_uri: str) -> None:
    db = Database(registry_uri)
    db.upgrade()
    assert db.current_revision() == HEAD_REVISION
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert diff == []


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    db.upgrade()
    db.upgrade()
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    db.dispose()


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert missing == []
