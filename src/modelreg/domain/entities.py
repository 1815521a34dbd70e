"""What the registry hands back: plain frozen dataclasses with ``to_dict`` for JSON."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from modelreg.domain.manifest import FileEntry
from modelreg.domain.names import validate_key
from modelreg.domain.times import iso, iso_or_none
from modelreg.errors import InvalidArgument

if TYPE_CHECKING:
    from modelreg.domain.gates import GateEvaluation

T = TypeVar("T")
ParamValue = str | int | float | bool | None

LINEAGE_FIELDS = (
    "run_id",
    "run_uri",
    "code_repo",
    "code_commit",
    "dataset",
    "dataset_version",
    "dataset_digest",
    "framework",
)
MAX_LINEAGE_VALUE = 2000
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a version came from: training run, code, data, parents and framework."""

    run_id: str | None = None
    run_uri: str | None = None
    code_repo: str | None = None
    code_commit: str | None = None
    dataset: str | None = None
    dataset_version: str | None = None
    dataset_digest: str | None = None
    framework: str | None = None
    parents: tuple[str, ...] = ()

    @classmethod
    def from_value(cls, value: Lineage | Mapping[str, Any] | None) -> Lineage:
        """Accept a Lineage or a dict with its field names; unknown keys are an error."""
        if value is None:
            return cls()
        if isinstance(value, Lineage):
            return value
        if not isinstance(value, Mapping):
            raise InvalidArgument("lineage must be a mapping")
        unknown = set(value) - {*LINEAGE_FIELDS, "parents"}
        if unknown:
            raise InvalidArgument(
                f"unknown lineage fields: {', '.join(sorted(map(str, unknown)))}; "
                f"known: {', '.join((*LINEAGE_FIELDS, 'parents'))}"
            )
        kwargs: dict[str, Any] = {}
        for key in LINEAGE_FIELDS:
            item = value.get(key)
            if item is None:
                continue
            if not isinstance(item, str) or not item or len(item) > MAX_LINEAGE_VALUE:
                raise InvalidArgument(
                    f"lineage {key!r} must be a non-empty string of at most "
                    f"{MAX_LINEAGE_VALUE} characters"
                )
            kwargs[key] = item
        parents = value.get("parents") or ()
        if isinstance(parents, str) or not all(isinstance(p, str) for p in parents):
            raise InvalidArgument("lineage 'parents' must be a list of version references")
        kwargs["parents"] = tuple(parents)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["parents"] = list(self.parents)
        return data


def check_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Metrics are finite floats keyed by valid names."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        validate_key(key, "metric")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"metric {key!r} must be a number, not {type(value).__name__}")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidArgument(f"metric {key!r} must be finite, not {number}")
        out[key] = number
    return out


def check_params(params: Mapping[str, Any] | None) -> dict[str, ParamValue]:
    """Hyperparameters are scalars (string, number, boolean or null) keyed by valid names."""
    out: dict[str, ParamValue] = {}
    for key, value in (params or {}).items():
        validate_key(key, "param")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidArgument(
                f"param {key!r} must be a string, number, boolean or null, "
                f"not {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgument(f"param {key!r} must be finite, not {value}")
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not MIN_INT <= value <= MAX_INT
        ):
            # JSON readers (and the HTTP API) keep integers exact only up to 64 bits.
            raise InvalidArgument(f"param {key!r} is an integer outside the 64-bit range")
        if isinstance(value, str) and len(value) > 5000:
            raise InvalidArgument(f"param {key!r} is longer than 5000 characters")
        out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class Model:
    """A registered model: a name that versions are registered under."""

    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime
    created_by: str
    updated_at: datetime
    latest_version: int | None
    # exclusive stage -> the version holding it (e.g. {"production": 7})
    stage_holders: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "updated_at": iso(self.updated_at),
            "latest_version": self.latest_version,
            "stage_holders": dict(self.stage_holders),
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version: its files, metadata, lineage, stage and aliases."""

    name: str
    version: int
    stage: str
    manifest_digest: str
    files: tuple[FileEntry, ...]
    metrics: dict[str, float]
    params: dict[str, ParamValue]
    lineage: Lineage
    tags: dict[str, str]
    description: str
    aliases: tuple[str, ...]
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_changed_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "stage": self.stage,
            "manifest_digest": self.manifest_digest,
            "size": self.size,
            "files": [f.to_dict() for f in self.files],
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "lineage": self.lineage.to_dict(),
            "tags": dict(self.tags),
            "description": self.description,
            "aliases": list(self.aliases),
            "created_at": iso_or_none(self.created_at),
            "created_by": self.created_by,
            "updated_at": iso_or_none(self.updated_at),
            "stage_changed_at": iso_or_none(self.stage_changed_at),
        }


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One entry of a model's timeline: a registration, stage move, alias or metadata change."""

    id: int
    at: datetime
    actor: str
    kind: str
    name: str
    version: int | None
    from_stage: str | None = None
    to_stage: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_or_none(self.at),
            "actor": self.actor,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "reason": self.reason,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events after a cursor, oldest first, and the cursor to pass next time.

    ``cursor`` can be past the last event returned: filtered-out events are skipped."""

    events: list[HistoryEvent] = field(default_factory=list)
    cursor: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events], "cursor": self.cursor}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is None on the last page.

    ``all()`` follows the tokens lazily, fetching further pages only as they are consumed.
    """

    items: list[T]
    next_page_token: str | None = None
    fetch_next: Callable[[str], Page[T]] | None = field(default=None, repr=False, compare=False)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def all(self) -> Iterator[T]:
        """Iterate this page and every following one."""
        page: Page[T] = self
        while True:
            yield from page.items
            if page.next_page_token is None or page.fetch_next is None:
                return
            page = page.fetch_next(page.next_page_token)


@dataclass(frozen=True, slots=True)
class ValueDiff:
    """One metric or parameter of two versions side by side."""

    key: str
    a: Any
    b: Any
    delta: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "a": self.a, "b": self.b, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two versions side by side: metrics with deltas (b - a), params, lineage, and the
    promotion gate verdict when the two are versions of one model in different stages."""

    a: ModelVersion
    b: ModelVersion
    metrics: tuple[ValueDiff, ...]
    params: tuple[ValueDiff, ...]
    lineage: tuple[ValueDiff, ...]
    gate: GateEvaluation | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.ref,
            "b": self.b.ref,
            "metrics": [d.to_dict() for d in self.metrics],
            "params": [d.to_dict() for d in self.params],
            "lineage": [d.to_dict() for d in self.lineage],
            "gate": self.gate.to_dict() if self.gate is not None else None,
        }


@dataclass(frozen=True, slots=True)
class BlobProblem:
    """A blob that is missing or whose bytes no longer match its digest; or (``source``
    set) an external file that disappeared, changed or cannot be read."""

    sha256: str
    problem: str  # "missing" | "corrupt"; external files: "missing" | "changed" | "unreadable"
    detail: str
    referenced_by: tuple[str, ...]
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "problem": self.problem,
            "detail": self.detail,
            "referenced_by": list(self.referenced_by),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of re-hashing the blob store and every external file."""

    checked_blobs: int
    checked_bytes: int
    problems: tuple[BlobProblem, ...]
    checked_external: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_blobs": self.checked_blobs,
            "checked_bytes": self.checked_bytes,
            "checked_external": self.checked_external,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class GcReport:
    """Result of collecting unreferenced blobs."""

    deleted_blobs: int
    deleted_bytes: int
    kept_recent: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted_blobs": self.deleted_blobs,
            "deleted_bytes": self.deleted_bytes,
            "kept_recent": self.kept_recent,
            "dry_run": self.dry_run,
        }
