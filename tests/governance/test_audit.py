"""The audit chain: every change appends a hash-chained record, and ``audit_verify`` names
the first record edited, removed or moved directly in the database, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelreg.auth.principal import Grant, Principal
from modelreg.auth.roles import Role
from modelreg.domain.audit import GENESIS, record_hash
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import IntegrityError, NotFound, PermissionDenied
from modelreg.protocol import Registry
from modelreg.store.tables import audit_head, events

CONTENT = ("at", "actor", "kind", "model_name", "version", "from_stage", "to_stage", "reason")


def _changes(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"weights")
    reg.register("fraud", tmp_path / "m.bin", metrics={"auc": 0.9})
    reg.register("fraud", tmp_path / "m.bin", metrics={"auc": 0.91})
    reg.transition("fraud/1", "staging", reason="checks pass")
    reg.set_alias("fraud", "champion", 1)
    reg.set_tags("fraud/2", {"k": "v"})
    reg.create_principal("ana")
    reg.grant("ana", "viewer", "fraud-*")


def _sql(backing: EmbeddedRegistry, *statements: str) -> None:
    with backing.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_every_change_is_recorded_and_the_chain_verifies(
    reg: Registry, backing: EmbeddedRegistry, tmp_path: Path
) -> None:
    _changes(reg, tmp_path)
    report = reg.audit_verify()
    assert report.ok
    assert report.first_bad is None
    log = list(reg.audit_log().all())
    assert report.records == report.head_seq == len(log)
    kinds = [event.kind for event in log]
    assert kinds == [
        "model_created",
        "version_registered",
        "version_registered",
        "stage_changed",
        "alias_set",
        "version_tags_set",
        "principal_created",
        "grant_set",
    ]
    assert [event.id for event in log] == list(range(1, len(log) + 1))
    grant = log[-1]
    assert grant.name == ""
    assert grant.details["after"] == "viewer"
    assert grant.details["before"] is None
    assert grant.details["pattern"] == "fraud-*"
    # Filters: by model, by kind.
    assert {e.kind for e in reg.audit_log(model="").all()} == {
        "principal_created",
        "grant_set",
    }
    assert [e.version for e in reg.audit_log(kind="version_registered").all()] == [1, 2]


TAMPERING: dict[str, tuple[Callable[[], list[str]], int, str]] = {
    "edited": (lambda: ["UPDATE events SET reason = 'nothing to see' WHERE id = 4"], 4, "edited"),
    "removed": (lambda: ["DELETE FROM events WHERE id = 3"], 3, "removed"),
    "tail removed": (lambda: ["DELETE FROM events WHERE id >= 7"], 7, "removed"),
    "reordered": (
        lambda: [
            "UPDATE events SET id = -5 WHERE id = 5",
            "UPDATE events SET id = 5 WHERE id = 6",
            "UPDATE events SET id = 6 WHERE id = -5",
        ],
        5,
        "moved",
    ),
    "head moved": (lambda: ["UPDATE audit_head SET seq = seq - 1"], 8, "chain head"),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_detected(
    how: str, reg: Registry, backing: EmbeddedRegistry, tmp_path: Path
) -> None:
    _changes(reg, tmp_path)
    statements, first_bad, word = TAMPERING[how]
    _sql(backing, *statements())
    report = reg.audit_verify()
    assert not report.ok
    assert report.first_bad == first_bad, report
    assert word in (report.problem or ""), report


def test_a_rewritten_chain_fails_its_anchor(
    reg: Registry, backing: EmbeddedRegistry, tmp_path: Path
) -> None:
    _changes(reg, tmp_path)
    anchor = reg.audit_verify()
    # Someone with database access edits record 2 and recomputes every hash after it:
    # the chain is consistent again, but the hash noted earlier no longer matches.
    _sql(backing, "UPDATE events SET actor = 'someone-else' WHERE id = 2")
    with backing.db.engine.begin() as conn:
        previous = GENESIS
        for row in conn.execute(sa.select(events).order_by(events.c.id)):
            fields = {name: getattr(row, name) for name in CONTENT}
            previous = record_hash(previous, id=row.id, details=row.details, **fields)
            conn.execute(sa.update(events).where(events.c.id == row.id).values(hash=previous))
        conn.execute(sa.update(audit_head).values(hash=previous))
    assert reg.audit_verify().ok  # without an anchor, a full rewrite is consistent
    report = reg.audit_verify(anchor=(anchor.head_seq, anchor.head_hash))
    assert not report.ok
    assert report.first_bad == anchor.head_seq
    assert "rewritten" in (report.problem or "")


def test_audit_needs_admin(backing: EmbeddedRegistry) -> None:
    reviewer = Principal("rita", grants=(Grant(Role.REVIEWER, "*"),))
    with pytest.raises(PermissionDenied, match="admin role"):
        backing.service.audit_verify(reviewer)
    with pytest.raises(PermissionDenied, match="admin role"):
        backing.service.audit_log(reviewer)


def test_records_keep_values_before_and_after(reg: Registry, tmp_path: Path) -> None:
    _changes(reg, tmp_path)
    reg.set_tags("fraud/2", {"k": "w", "new": "x"})
    reg.delete_tag("fraud/2", "k")
    reg.update_model("fraud", description="scores transactions")
    reg.grant("ana", "reviewer", "fraud-*")
    log = list(reg.audit_log().all())[-4:]
    assert log[0].details == {"tags": {"k": "w", "new": "x"}, "before": {"k": "v"}}
    assert log[1].details == {"key": "k", "before": "w"}
    assert (log[2].details["before"], log[2].details["after"]) == ("", "scores transactions")
    assert (log[3].details["before"], log[3].details["after"]) == ("viewer", "reviewer")
    assert reg.audit_verify().ok


def test_no_change_without_the_chain_head(reg: Registry, backing: EmbeddedRegistry) -> None:
    _sql(backing, "DELETE FROM audit_head")
    with pytest.raises(IntegrityError, match="head row is missing"):
        reg.create_model("fraud")
    with pytest.raises(NotFound):
        reg.get_model("fraud")
    report = reg.audit_verify()
    assert not report.ok
    assert "head is missing" in (report.problem or "")
