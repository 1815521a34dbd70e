"""The registry's use cases for models and versions (stages, aliases and tags are in
``labels.py``). The service layer is the only code that changes state.

Every public method takes the acting principal first, validates its input before opening a
transaction, and writes the change and its timeline record in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.entities import (
    Comparison,
    HistoryEvent,
    Lineage,
    Model,
    ModelVersion,
    Page,
    ParamValue,
    ValueDiff,
    check_metrics,
    check_params,
)
from modelreg.domain.gates import GateEvaluation
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.manifest import FileEntry, Manifest
from modelreg.domain.names import (
    validate_model_name,
)
from modelreg.domain.refs import Ref, parse_ref, version_ref
from modelreg.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    ManifestMismatch,
)
from modelreg.service.audit import AuditService
from modelreg.service.authz import require, search_scope
from modelreg.service.blob_access import BlobAccessService
from modelreg.service.common import (
    MAX_DESCRIPTION,
    check_tags,
    check_text,
    delta,
    param_number,
    param_text,
)
from modelreg.service.deployments import DeploymentsService
from modelreg.service.events import record, to_event, utcnow
from modelreg.service.feed import FeedService
from modelreg.service.gates import GatesService, evaluate_gate, gate_for
from modelreg.service.governance import GovernanceService
from modelreg.service.policy import PolicyService
from modelreg.service.requests import RequestsService
from modelreg.service.webhooks import WebhooksService
from modelreg.store import queries as q
from modelreg.store import search as s
from modelreg.store import tables as t
from modelreg.store.direct import Direct


@dataclass(frozen=True)
class VersionInput:
    """A registration's validated metadata."""

    name: str
    metrics: dict[str, float]
    params: dict[str, ParamValue]
    lineage: Lineage
    tags: dict[str, str]
    description: str


# Statements of the registration path, built once: composing them per call cost more
# Python time than executing them.
#
# A new model's row, or no row when the name is taken: one statement instead of a lookup
# and an insert, and concurrent creations on PostgreSQL see exactly one winner.
# The statements of every registration go straight to the driver (``store.direct``).
_INSERT_MODEL = {
    dialect: Direct(q.insert_or_skip(dialect, t.models).returning(t.models.c.id))
    for dialect in ("postgresql", "sqlite")
}
_INSERT_VERSION = Direct(sa.insert(t.versions).returning(t.versions.c.id))
_INSERT_FILES = Direct(sa.insert(t.version_files))
# Takes the next version number and locks the model in one statement (a row lock on
# PostgreSQL; SQLite's write transaction already excludes other writers).
_TAKE_NUMBER = Direct(
    sa.update(t.models)
    .where(t.models.c.name == sa.bindparam("model"))
    .values(next_version=t.models.c.next_version + 1, updated_at=sa.bindparam("now"))
    .returning(t.models.c.id, t.models.c.next_version)
)


class RegistryService(
    RequestsService,
    GovernanceService,
    PolicyService,
    AuditService,
    BlobAccessService,
    GatesService,
    DeploymentsService,
    WebhooksService,
    FeedService,
):
    """Use cases over one metadata database and one blob store."""

    # ------------------------------------------------------------------ models

    def create_model(
        self,
        actor: Principal,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Model:
        """Create a registered model; AlreadyExists if the name is taken."""
        validate_model_name(name)
        require(actor, Permission.WRITE, name, f"create model {name!r}")
        check_text(description, "description", MAX_DESCRIPTION)
        checked = check_tags(tags)
        now = utcnow()
        with self.db.write() as conn:
            model_id = self._insert_model(conn, actor, name, description, now)
            if model_id is None:
                raise AlreadyExists(f"model {name!r} already exists", model=name)
            self._write_tags(conn, t.model_tags, "model_id", model_id, checked)
            record(
                conn, actor, "model_created", name, at=now, description=description, tags=checked
            )
        # Everything the new model holds was written just now: no need to read it back.
        return Model(
            name=name,
            description=description,
            tags=dict(checked),
            created_at=now,
            created_by=actor.name,
            updated_at=now,
            latest_version=None,
        )

    def get_model(self, actor: Principal, name: str) -> Model:
        """A model with its tags, latest version, exclusive-stage holders and aliases."""
        validate_model_name(name)
        require(actor, Permission.READ, name, f"read model {name!r}")
        with self.db.read() as conn:
            return self._model(conn, name)

    def update_model(self, actor: Principal, name: str, *, description: str | None = None) -> Model:
        """Change a model's description."""
        validate_model_name(name)
        require(actor, Permission.WRITE, name, f"edit model {name!r}")
        if description is None:
            raise InvalidArgument("nothing to update: pass description")
        check_text(description, "description", MAX_DESCRIPTION)
        with self.db.write() as conn:
            row = q.model_row(conn, name, lock=True)
            conn.execute(
                sa.update(t.models)
                .where(t.models.c.id == row.id)
                .values(description=description, updated_at=utcnow())
            )
            record(conn, actor, "model_updated", name, before=row.description, after=description)
            return self._model(conn, name)

    def delete_model(self, actor: Principal, name: str, *, force: bool = False) -> None:
        """Delete a model and all its versions; refuses while a version holds an exclusive
        stage (such as production) unless ``force``. Blobs are left for ``gc``."""
        validate_model_name(name)
        require(actor, Permission.ADMIN, name, f"delete model {name!r}")
        with self.db.write() as conn:
            row = q.model_row(conn, name, lock=True)
            holders = conn.execute(
                sa.select(t.versions.c.version, t.versions.c.exclusive_stage).where(
                    t.versions.c.model_id == row.id, t.versions.c.exclusive_stage.is_not(None)
                )
            ).all()
            if holders and not force:
                held = ", ".join(f"{name}/{v} is in {st}" for v, st in holders)
                raise Conflict(
                    f"model {name!r} is in use ({held}); move it out first or pass force",
                    model=name,
                )
            count = conn.execute(
                sa.select(sa.func.count()).where(t.versions.c.model_id == row.id)
            ).scalar_one()
            conn.execute(sa.delete(t.models).where(t.models.c.id == row.id))
            record(conn, actor, "model_deleted", name, versions=count, forced=force)

    def search_models(
        self,
        actor: Principal,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Model]:
        """Models matching ``filter`` (fields: name, description, created_by, created_at,
        updated_at, tags.KEY), ordered by ``order_by`` (default name), one page at a time."""
        page = s.page_query(
            s.MODEL_TARGET,
            [t.models],
            t.models,
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            scope=search_scope(actor, t.models.c.name),
        )
        with self.db.read() as conn:
            rows = conn.execute(page.statement).all()
            models = q.load_models(conn, rows[: page.size])

        def more(next_token: str) -> Page[Model]:
            return self.search_models(
                actor, filter=filter, order_by=order_by, page_size=page_size, page_token=next_token
            )

        return Page(items=models, next_page_token=page.next_token(rows), fetch_next=more)

    # ---------------------------------------------------------------- versions

    def check_version_input(
        self,
        actor: Principal,
        name: str,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        lineage: Lineage | Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> VersionInput:
        """Validate everything about a registration but its files, and that its parents
        exist, so a client can refuse bad input before uploading any bytes."""
        checked = validate_version_input(name, metrics, params, lineage, tags, description)
        parents = [parse_ref(p) for p in checked.lineage.parents]
        require(actor, Permission.WRITE, name, f"register versions of {name!r}")
        _require_parents(actor, parents)
        if parents:
            with self.db.read() as conn:
                lc = q.lifecycle(conn)
                for ref in parents:
                    q.version_row(conn, ref, lc)
        return checked

    def create_version(
        self,
        actor: Principal,
        name: str,
        files: Sequence[FileEntry],
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        lineage: Lineage | Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        create_model: bool = True,
    ) -> ModelVersion:
        """Commit a version whose blobs are already stored; gets the next number.

        Every blob must exist with its recorded size, so a version never points at missing
        bytes. The model is created on first registration unless ``create_model`` is False.
        """
        manifest = Manifest.build(list(files))
        # Computed once: the digest serialises and hashes the whole file list.
        digest, total_size = manifest.digest, manifest.total_size
        # Parents are resolved inside the transaction below, so no separate read here.
        given = validate_version_input(name, metrics, params, lineage, tags, description)
        checked_metrics, checked_params, checked_tags = given.metrics, given.params, given.tags
        checked_lineage = given.lineage
        parent_refs = [parse_ref(p) for p in checked_lineage.parents]
        require(actor, Permission.WRITE, name, f"register versions of {name!r}")
        _require_parents(actor, parent_refs)
        self._check_blobs(manifest)
        now = utcnow()
        with self.db.write() as conn:
            model_id, number = self._take_number(conn, actor, name, create_model, now)
            lc = q.lifecycle(conn)
            parents = [q.version_row(conn, ref, lc) for ref in parent_refs]
            lineage_columns = checked_lineage.to_dict()
            del lineage_columns["parents"]
            inserted = _INSERT_VERSION.first(
                conn,
                {
                    "model_id": model_id,
                    "version": number,
                    "stage": lc.initial,
                    "exclusive_stage": lc.initial if lc.initial in lc.exclusive else None,
                    "manifest_digest": digest,
                    "total_size": total_size,
                    "file_count": len(manifest.files),
                    "description": description,
                    "created_at": now,
                    "created_by": actor.name,
                    "updated_at": now,
                    "stage_changed_at": now,
                    **lineage_columns,
                },
            )
            assert inserted is not None  # RETURNING answers every insert
            version_id = int(inserted[0])
            self._insert_children(
                conn, version_id, manifest, checked_metrics, checked_params, checked_tags
            )
            parent_names = tuple(version_ref(p.model_name, p.version) for p in parents)
            if parents:
                conn.execute(
                    sa.insert(t.version_parents),
                    [
                        {
                            "version_id": version_id,
                            "position": i,
                            "parent_ref": parent_ref,
                            "parent_id": p.id,
                        }
                        for i, (p, parent_ref) in enumerate(zip(parents, parent_names, strict=True))
                    ],
                )
            record(
                conn,
                actor,
                "version_registered",
                name,
                number,
                at=now,
                to_stage=lc.initial,
                manifest_digest=digest,
                files=len(manifest.files),
                size=total_size,
            )
        # Everything the version holds was written just now: no need to read it back.
        return ModelVersion(
            name=name,
            version=number,
            stage=lc.initial,
            manifest_digest=digest,
            files=manifest.files,  # sorted by path already
            metrics={k: float(v) for k, v in checked_metrics.items()},
            params=dict(checked_params),
            lineage=replace(checked_lineage, parents=parent_names),
            tags=dict(checked_tags),
            description=description,
            aliases=(),
            created_at=now,
            created_by=actor.name,
            updated_at=now,
            stage_changed_at=now,
        )

    def get(self, actor: Principal, ref: str) -> ModelVersion:
        """The version a reference names: ``NAME/3``, ``NAME@stage``, ``NAME@alias``,
        ``NAME@latest``."""
        parsed = parse_ref(ref)
        require(actor, Permission.READ, parsed.name, f"read model {parsed.name!r}")
        with self.db.read() as conn:
            return self._version(conn, parsed)

    def search_versions(
        self,
        actor: Principal,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching ``filter``, ordered by ``order_by`` (default name, -version)."""
        page = s.page_query(
            s.VERSION_TARGET,
            q.VERSION_COLUMNS,
            q.VERSION_FROM,
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            scope=search_scope(actor, t.models.c.name),
        )
        with self.db.read() as conn:
            rows = conn.execute(page.statement).all()
            versions = q.load_versions(conn, rows[: page.size])

        def more(next_token: str) -> Page[ModelVersion]:
            return self.search_versions(
                actor, filter=filter, order_by=order_by, page_size=page_size, page_token=next_token
            )

        return Page(items=versions, next_page_token=page.next_token(rows), fetch_next=more)

    def list_versions(
        self,
        actor: Principal,
        name: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """A model's versions, newest first; NotFound if the model does not exist."""
        validate_model_name(name)
        require(actor, Permission.READ, name, f"read model {name!r}")
        page = self.search_versions(
            actor,
            filter=f"name = '{name}'",
            order_by=["-version"],
            page_size=page_size,
            page_token=page_token,
        )
        if not page.items and page_token is None:
            self.get_model(
                actor, name
            )  # an empty first page: tell a missing model from an empty one
        return page

    def update_version(
        self, actor: Principal, ref: str, *, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description (the only free-text field that stays editable)."""
        parsed = parse_ref(ref)
        require(actor, Permission.WRITE, parsed.name, f"edit versions of {parsed.name!r}")
        if description is None:
            raise InvalidArgument("nothing to update: pass description")
        check_text(description, "description", MAX_DESCRIPTION)
        with self.db.write() as conn:
            lc = q.lifecycle(conn)
            row = q.version_row(conn, parsed, lc)
            conn.execute(
                sa.update(t.versions)
                .where(t.versions.c.id == row.id)
                .values(description=description, updated_at=utcnow())
            )
            record(
                conn,
                actor,
                "version_updated",
                row.model_name,
                row.version,
                before=row.description,
                after=description,
            )
            return self._version(conn, Ref(row.model_name, version=row.version), lc)

    def delete_version(self, actor: Principal, ref: str) -> None:
        """Delete a version; its number is never reused. Refused while it holds an
        exclusive stage. Its blobs are left for ``gc``."""
        parsed = parse_ref(ref)
        require(actor, Permission.DELETE, parsed.name, f"delete versions of {parsed.name!r}")
        with self.db.write() as conn:
            q.model_row(conn, parsed.name, lock=True)
            row = q.version_row(conn, parsed, q.lifecycle(conn))
            if row.exclusive_stage is not None:
                raise Conflict(
                    f"{row.model_name}/{row.version} is in {row.exclusive_stage}; "
                    "move it out before deleting it",
                    ref=str(parsed),
                )
            conn.execute(sa.delete(t.versions).where(t.versions.c.id == row.id))
            record(
                conn,
                actor,
                "version_deleted",
                row.model_name,
                row.version,
                from_stage=row.stage,
                manifest_digest=row.manifest_digest,
            )

    # ---------------------------------------------------------- history/compare

    def history(
        self,
        actor: Principal,
        name: str,
        *,
        version: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryEvent]:
        """A model's timeline, oldest first: registrations, stage moves, aliases, edits."""
        validate_model_name(name)
        require(actor, Permission.READ, name, f"read the history of {name!r}")
        size = s.check_page_size(page_size)
        fingerprint = s.query_fingerprint("history", name, version)
        e = t.events.c
        query = sa.select(t.events).where(e.model_name == name)
        if version is not None:
            query = query.where(e.version == version)
        if page_token:
            (after,) = s.decode_token(page_token, fingerprint, [s.SortColumn(e.id, False)])
            query = query.where(e.id > after)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(e.id).limit(size + 1)).all()
            if not rows and not page_token:
                q.model_row(conn, name)
        token = s.encode_token(fingerprint, [rows[size - 1].id]) if len(rows) > size else None

        def more(next_token: str) -> Page[HistoryEvent]:
            return self.history(
                actor, name, version=version, page_size=page_size, page_token=next_token
            )

        return Page(
            items=[to_event(r) for r in rows[:size]], next_page_token=token, fetch_next=more
        )

    def compare(self, actor: Principal, a: str, b: str) -> Comparison:
        """Two versions side by side; metric deltas are ``b - a``. For two versions of one
        model in different stages, the gate verdict of promoting one into the other's stage
        (see ``_verdict``)."""
        ref_a, ref_b = parse_ref(a), parse_ref(b)
        for model in dict.fromkeys((ref_a.name, ref_b.name)):
            require(actor, Permission.READ, model, f"read model {model!r}")
        with self.db.read() as conn:
            lc = q.lifecycle(conn)
            row_a, row_b = q.version_row(conn, ref_a, lc), q.version_row(conn, ref_b, lc)
            va, vb = q.load_versions(conn, [row_a, row_b])
            gate = _verdict(conn, row_a, row_b, lc)
        metrics = tuple(
            ValueDiff(
                key,
                va.metrics.get(key),
                vb.metrics.get(key),
                delta(va.metrics.get(key), vb.metrics.get(key)),
            )
            for key in sorted({*va.metrics, *vb.metrics})
        )
        params = tuple(
            ValueDiff(key, va.params.get(key), vb.params.get(key), None)
            for key in sorted({*va.params, *vb.params})
        )
        la, lb = va.lineage.to_dict(), vb.lineage.to_dict()
        lineage = tuple(ValueDiff(key, la[key], lb[key], None) for key in la)
        return Comparison(a=va, b=vb, metrics=metrics, params=params, lineage=lineage, gate=gate)

    # ----------------------------------------------------------------- helpers

    def _insert_model(
        self, conn: Connection, actor: Principal, name: str, description: str, now: datetime
    ) -> int | None:
        """The new model's id, or None if the name is taken."""
        values = {
            "name": name,
            "description": description,
            "created_at": now,
            "created_by": actor.name,
            "updated_at": now,
            "next_version": 1,
        }
        created = _INSERT_MODEL[self.db.dialect].first(conn, values)
        return None if created is None else int(created[0])

    def _take_number(
        self, conn: Connection, actor: Principal, name: str, create: bool, now: datetime
    ) -> tuple[int, int]:
        """(model id, number of the new version), the model locked until commit; the model
        is created first when it is new and ``create`` allows it."""
        taken = _TAKE_NUMBER.first(conn, {"model": name, "now": now})
        if taken is None:
            self._create_for_version(conn, actor, name, create, now)
            taken = _TAKE_NUMBER.first(conn, {"model": name, "now": now})
            assert taken is not None  # the model exists now, created or not by this call
        return taken.id, taken.next_version - 1

    def _create_for_version(
        self, conn: Connection, actor: Principal, name: str, create: bool, now: datetime
    ) -> None:
        if not create:
            q.model_row(conn, name)  # raises NotFound
        # Concurrent first registrations race here on PostgreSQL: ON CONFLICT DO NOTHING
        # lets exactly one insert win, and everyone then takes a number from the same row.
        if self._insert_model(conn, actor, name, "", now) is not None:
            record(conn, actor, "model_created", name, at=now, implicit=True)

    def _insert_children(
        self,
        conn: Connection,
        version_id: int,
        manifest: Manifest,
        metrics: dict[str, float],
        params: dict[str, Any],
        tags: dict[str, str],
    ) -> None:
        _INSERT_FILES.execute_many(
            conn,
            [
                {
                    "version_id": version_id,
                    "path": f.path,
                    "size": f.size,
                    "sha256": f.sha256,
                    "source": f.source,
                }
                for f in manifest.files
            ],
        )
        if metrics:
            conn.execute(
                sa.insert(t.version_metrics),
                [{"version_id": version_id, "key": k, "value": v} for k, v in metrics.items()],
            )
        if params:
            conn.execute(
                sa.insert(t.version_params),
                [
                    {
                        "version_id": version_id,
                        "key": k,
                        "value": param_text(v),
                        "value_num": param_number(v),
                        "value_json": json.dumps(v),
                    }
                    for k, v in params.items()
                ],
            )
        self._write_tags(conn, t.version_tags, "version_id", version_id, tags)

    def _check_blobs(self, manifest: Manifest) -> None:
        missing: list[str] = []
        for entry in manifest.files:
            if entry.source is not None:
                continue  # an external file stays where it is; its digest was recorded
            stat = self.blobs.stat(entry.sha256)
            if stat is None:
                missing.append(entry.sha256)
            elif stat.size != entry.size:
                raise ManifestMismatch(
                    f"blob {entry.sha256} has {stat.size} bytes, the manifest says {entry.size}",
                    path=entry.path,
                    sha256=entry.sha256,
                    missing=[],
                )
        if missing:
            unique = sorted(set(missing))
            first = next(f for f in manifest.files if f.sha256 in unique)
            more = f" and {len(unique) - 1} more" if len(unique) > 1 else ""
            raise ManifestMismatch(
                f"blob {first.sha256} for {first.path!r}{more} is not stored; upload it first",
                missing=unique,
            )


def _require_parents(actor: Principal, parents: Sequence[Ref]) -> None:
    # Naming a parent reveals whether it exists, so parents must be readable too.
    for model in dict.fromkeys(p.name for p in parents):
        require(actor, Permission.READ, model, f"name versions of {model!r} as parents")


def _verdict(conn: Connection, row_a: Any, row_b: Any, lc: Lifecycle) -> GateEvaluation | None:
    """The champion/challenger verdict: may ``a`` enter ``b``'s stage? When only ``a``'s
    stage has a gate, the question is turned around (``b`` into ``a``'s stage), so the
    order of the two references does not hide a gate."""
    if row_a.model_name != row_b.model_name or row_a.stage == row_b.stage:
        return None
    if gate_for(conn, row_a.model_name, row_b.stage)[0] is None and (
        gate_for(conn, row_a.model_name, row_a.stage)[0] is not None
    ):
        return evaluate_gate(conn, row_b, row_a.stage, lc)
    found = evaluate_gate(conn, row_a, row_b.stage, lc)
    if found is None:
        return GateEvaluation(candidate=f"{row_a.model_name}/{row_a.version}", stage=row_b.stage)
    return found


def validate_version_input(
    name: str,
    metrics: Mapping[str, float] | None,
    params: Mapping[str, Any] | None,
    lineage: Lineage | Mapping[str, Any] | None,
    tags: Mapping[str, str] | None,
    description: str,
) -> VersionInput:
    """Every check of a registration's metadata that needs no database (parents are
    parsed here; whether they exist is checked when the version is created)."""
    validate_model_name(name)
    check_text(description, "description", MAX_DESCRIPTION)
    checked = VersionInput(
        name=name,
        metrics=check_metrics(metrics),
        params=check_params(params),
        lineage=Lineage.from_value(lineage),
        tags=check_tags(tags),
        description=description,
    )
    for parent in checked.lineage.parents:
        parse_ref(parent)
    return checked
