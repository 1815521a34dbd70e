"""Entities from their JSON form: what the remote client reads back from the server.

Each ``*_from_dict`` is the inverse of the entity's ``to_dict``; the comparison travels
with both versions in full, because the client returns whole versions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelreg.domain.entities import (
    BlobProblem,
    Comparison,
    EventBatch,
    GcReport,
    HistoryEvent,
    Lineage,
    Model,
    ModelVersion,
    ValueDiff,
    VerifyReport,
)
from modelreg.domain.gates import evaluation_from_dict
from modelreg.domain.manifest import FileEntry


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def model_from_dict(data: dict[str, Any]) -> Model:
    """A Model from ``Model.to_dict()``."""
    return Model(
        name=data["name"],
        description=data["description"],
        tags=dict(data["tags"]),
        created_at=_time(data["created_at"]),
        created_by=data["created_by"],
        updated_at=_time(data["updated_at"]),
        latest_version=data["latest_version"],
        stage_holders={k: int(v) for k, v in data["stage_holders"].items()},
        aliases={k: int(v) for k, v in data["aliases"].items()},
    )


def version_from_dict(data: dict[str, Any]) -> ModelVersion:
    """A ModelVersion from ``ModelVersion.to_dict()``."""
    lineage = dict(data["lineage"])
    lineage["parents"] = tuple(lineage.get("parents") or ())
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        stage=data["stage"],
        manifest_digest=data["manifest_digest"],
        files=tuple(
            FileEntry(f["path"], int(f["size"]), f["sha256"], f.get("source"))
            for f in data["files"]
        ),
        metrics={k: float(v) for k, v in data["metrics"].items()},
        params=dict(data["params"]),
        lineage=Lineage(**lineage),
        tags=dict(data["tags"]),
        description=data["description"],
        aliases=tuple(data["aliases"]),
        created_at=_time(data["created_at"]),
        created_by=data["created_by"],
        updated_at=_time(data["updated_at"]),
        stage_changed_at=_time(data["stage_changed_at"]),
    )


def event_from_dict(data: dict[str, Any]) -> HistoryEvent:
    """A HistoryEvent from ``HistoryEvent.to_dict()``."""
    return HistoryEvent(
        id=int(data["id"]),
        at=_time(data["at"]),
        actor=data["actor"],
        kind=data["kind"],
        name=data["name"],
        version=data["version"],
        from_stage=data["from_stage"],
        to_stage=data["to_stage"],
        reason=data["reason"],
        details=dict(data["details"]),
    )


def batch_from_dict(data: dict[str, Any]) -> EventBatch:
    """An EventBatch from ``EventBatch.to_dict()``."""
    return EventBatch([event_from_dict(e) for e in data["events"]], int(data["cursor"]))


def comparison_to_wire(comparison: Comparison) -> dict[str, Any]:
    """``Comparison.to_dict()`` with both versions in full instead of their refs."""
    data = comparison.to_dict()
    data["a"] = comparison.a.to_dict()
    data["b"] = comparison.b.to_dict()
    return data


def comparison_from_wire(data: dict[str, Any]) -> Comparison:
    """The inverse of ``comparison_to_wire``."""

    def diffs(key: str) -> tuple[ValueDiff, ...]:
        return tuple(ValueDiff(d["key"], d["a"], d["b"], d["delta"]) for d in data[key])

    return Comparison(
        a=version_from_dict(data["a"]),
        b=version_from_dict(data["b"]),
        metrics=diffs("metrics"),
        params=diffs("params"),
        lineage=diffs("lineage"),
        gate=evaluation_from_dict(data["gate"]) if data.get("gate") else None,
    )


def verify_from_dict(data: dict[str, Any]) -> VerifyReport:
    """A VerifyReport from ``VerifyReport.to_dict()``."""
    return VerifyReport(
        checked_blobs=int(data["checked_blobs"]),
        checked_bytes=int(data["checked_bytes"]),
        problems=tuple(
            BlobProblem(
                p["sha256"], p["problem"], p["detail"], tuple(p["referenced_by"]), p.get("source")
            )
            for p in data["problems"]
        ),
        checked_external=int(data.get("checked_external", 0)),
    )


def gc_from_dict(data: dict[str, Any]) -> GcReport:
    """A GcReport from ``GcReport.to_dict()``."""
    return GcReport(
        deleted_blobs=int(data["deleted_blobs"]),
        deleted_bytes=int(data["deleted_bytes"]),
        kept_recent=int(data["kept_recent"]),
        dry_run=bool(data["dry_run"]),
    )
