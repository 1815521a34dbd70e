"""Upgrading a registry written before the audit chain: its timeline is renumbered densely
and chained, on both backends, so the records from before the upgrade are covered too."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.store import database


def _migrate(url: str, direction: str, revision: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            config = AlembicConfig()
            config.set_main_option("script_location", str(database._MIGRATIONS))
            config.attributes["connection"] = conn
            getattr(command, direction)(config, revision)
            conn.commit()
    finally:
        engine.dispose()


def test_an_old_timeline_is_chained_on_upgrade(registry_uri: str, tmp_path: Path) -> None:
    url = registry_uri
    # The database arrives empty, or migrated to head and emptied: either way, go to the
    # revision before the audit chain.
    db = database.Database(url)
    current = db.current_revision()
    db.dispose()
    _migrate(url, "upgrade" if current is None else "downgrade", "0001")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # Ids with a gap, as PostgreSQL sequences leave after a rolled-back insert.
        for number, event_id in enumerate((1, 2, 7), start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO events (id, at, actor, kind, model_name, version, details) "
                    "VALUES (:id, :at, 'old-user', 'model_created', :name, NULL, '{}')"
                ),
                {"id": event_id, "at": start + timedelta(minutes=number), "name": f"m{number}"},
            )
    engine.dispose()
    registry = EmbeddedRegistry(Config.load(uri=url, artifacts=str(tmp_path / "blobs")))
    try:
        report = registry.audit_verify()
        assert report.ok, report.problem
        assert (report.records, report.head_seq) == (3, 3)
        log = list(registry.audit_log().all())
        assert [(e.id, e.name) for e in log] == [(1, "m1"), (2, "m2"), (3, "m3")]
        registry.create_model("after-upgrade")
        assert registry.audit_verify().records == 4
    finally:
        registry.close()
