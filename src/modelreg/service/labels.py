"""Use cases that label versions: stage transitions, the lifecycle, aliases and tags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.entities import ModelVersion
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.names import validate_alias, validate_key, validate_model_name
from modelreg.domain.refs import LATEST, Ref, parse_ref, version_ref
from modelreg.errors import Conflict, InvalidArgument, NotFound
from modelreg.service.authz import require
from modelreg.service.common import (
    MAX_REASON,
    ServiceBase,
    check_tags,
    check_text,
    upsert_setting,
)
from modelreg.service.events import record, utcnow
from modelreg.service.gates import enforce_gate, evaluate_gate
from modelreg.service.policy import authorize_transition
from modelreg.store import queries as q
from modelreg.store import tables as t


class LabelsService(ServiceBase):
    """Stages, aliases and tags: the metadata of a version that may change."""

    # ------------------------------------------------------------------ stages

    def transition(
        self,
        actor: Principal,
        ref: str,
        stage: str,
        *,
        reason: str = "",
        override: bool = False,
    ) -> ModelVersion:
        """Move a version to ``stage`` if the lifecycle and the policy allow it and the
        stage's promotion gate passes (or is overridden, with a reason). Entering an
        exclusive stage moves the previous holder to the stage's overflow (production ->
        archived) in the same transaction. The gate's evaluation is kept in the
        transition's event."""
        parsed = parse_ref(ref)
        check_text(reason, "reason", MAX_REASON)
        if not isinstance(stage, str):
            raise InvalidArgument("stage must be a string")
        target = stage.lower()
        with self.db.write() as conn:
            q.model_row(conn, parsed.name, lock=True)
            authorize_transition(conn, actor, parsed.name, target)
            lc = q.lifecycle(conn)
            row = q.version_row(conn, parsed, lc)
            lc.check_transition(row.stage, target)
            # Evaluated before the previous holder moves out: it is the baseline.
            evaluation = evaluate_gate(conn, row, target, lc)
            enforce_gate(
                evaluation, override=override, reason=reason, actor=actor, model=row.model_name
            )
            gate_details: dict[str, Any] = {}
            if evaluation is not None:
                overridden = override and not evaluation.passed
                gate_details["gates"] = replace(evaluation, overridden=overridden).to_dict()
            self._move(conn, actor, row, target, lc, reason, **gate_details)
            return self._version(conn, Ref(row.model_name, version=row.version), lc)

    def _move(
        self,
        conn: Connection,
        actor: Principal,
        row: Any,
        target: str,
        lc: Lifecycle,
        reason: str,
        **details: Any,
    ) -> None:
        """Put the version of ``row`` into ``target``, displacing an exclusive holder, and
        record both moves; the caller holds the model row's lock."""
        now = utcnow()
        canonical = version_ref(row.model_name, row.version)
        overflow = lc.exclusive.get(target)
        if overflow is not None:
            holder = conn.execute(
                sa.select(t.versions.c.id, t.versions.c.version).where(
                    t.versions.c.model_id == row.model_id,
                    t.versions.c.exclusive_stage == target,
                )
            ).first()
            if holder is not None:
                self._set_stage(conn, holder.id, overflow, lc, now)
                record(
                    conn,
                    actor,
                    "stage_changed",
                    row.model_name,
                    holder.version,
                    at=now,
                    from_stage=target,
                    to_stage=overflow,
                    reason=f"replaced in {target} by {canonical}",
                    displaced_by=row.version,
                )
        self._set_stage(conn, row.id, target, lc, now)
        record(
            conn,
            actor,
            "stage_changed",
            row.model_name,
            row.version,
            at=now,
            from_stage=row.stage,
            to_stage=target,
            reason=reason or None,
            **details,
        )

    def get_lifecycle(self, actor: Principal) -> Lifecycle:
        """The registry's stages, allowed moves and exclusive stages."""
        with self.db.read() as conn:
            return q.lifecycle(conn)

    def set_lifecycle(self, actor: Principal, lifecycle: Lifecycle) -> Lifecycle:
        """Replace the lifecycle; refused if a version sits in a stage it drops, or if a
        newly exclusive stage already holds several versions of one model."""
        require(actor, Permission.ADMIN, None, "change the lifecycle")
        with self.db.write() as conn:
            before = q.lifecycle(conn)
            v = t.versions.c
            orphan = conn.execute(
                sa.select(v.stage, sa.func.count())
                .where(v.stage.not_in(lifecycle.stages))
                .group_by(v.stage)
            ).first()
            if orphan is not None:
                raise Conflict(
                    f"{orphan[1]} version(s) are in stage {orphan[0]!r}, which the new "
                    "lifecycle drops; move them first"
                )
            exclusive = list(lifecycle.exclusive)
            crowded = conn.execute(
                sa.select(t.models.c.name, v.stage)
                .join(t.models, t.models.c.id == v.model_id)
                .where(v.stage.in_(exclusive))
                .group_by(t.models.c.name, v.stage)
                .having(sa.func.count() > 1)
            ).first()
            if crowded is not None:
                raise Conflict(
                    f"model {crowded[0]!r} has several versions in {crowded[1]!r}, "
                    "which the new lifecycle makes exclusive"
                )
            # Clear first, then set: the unique index must hold after every statement.
            conn.execute(sa.update(t.versions).values(exclusive_stage=None))
            if exclusive:
                conn.execute(
                    sa.update(t.versions)
                    .where(v.stage.in_(exclusive))
                    .values(exclusive_stage=v.stage)
                )
            upsert_setting(conn, q.LIFECYCLE_KEY, lifecycle.to_json())
            record(
                conn, actor, "lifecycle_set", "", before=before.to_dict(), after=lifecycle.to_dict()
            )
            return lifecycle

    # ----------------------------------------------------------------- aliases

    def set_alias(self, actor: Principal, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``NAME@alias`` at a version (moving it if it pointed elsewhere)."""
        validate_model_name(name)
        require(actor, Permission.WRITE, name, f"set aliases of {name!r}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(f"version must be a positive integer, not {version!r}")
        with self.db.write() as conn:
            model = q.model_row(conn, name, lock=True)
            lc = q.lifecycle(conn)
            validate_alias(alias, frozenset({*lc.stages, LATEST}))
            target = q.version_row(conn, Ref(name, version=version), lc)
            previous = conn.execute(
                sa.select(t.versions.c.version)
                .join(t.aliases, t.aliases.c.version_id == t.versions.c.id)
                .where(t.aliases.c.model_id == model.id, t.aliases.c.alias == alias)
            ).scalar()
            if previous == version:
                return self._version(conn, Ref(name, version=version), lc)
            now = utcnow()
            conn.execute(
                sa.delete(t.aliases).where(
                    t.aliases.c.model_id == model.id, t.aliases.c.alias == alias
                )
            )
            conn.execute(
                sa.insert(t.aliases).values(
                    model_id=model.id,
                    alias=alias,
                    version_id=target.id,
                    updated_at=now,
                    updated_by=actor.name,
                )
            )
            record(conn, actor, "alias_set", name, version, at=now, alias=alias, previous=previous)
            return self._version(conn, Ref(name, version=version), lc)

    def delete_alias(self, actor: Principal, name: str, alias: str) -> None:
        """Remove ``NAME@alias``; NotFound if it is not set."""
        validate_model_name(name)
        require(actor, Permission.WRITE, name, f"remove aliases of {name!r}")
        with self.db.write() as conn:
            model = q.model_row(conn, name, lock=True)
            previous = conn.execute(
                sa.select(t.versions.c.version)
                .join(t.aliases, t.aliases.c.version_id == t.versions.c.id)
                .where(t.aliases.c.model_id == model.id, t.aliases.c.alias == alias)
            ).scalar()
            if previous is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", model=name, alias=alias)
            conn.execute(
                sa.delete(t.aliases).where(
                    t.aliases.c.model_id == model.id, t.aliases.c.alias == alias
                )
            )
            record(conn, actor, "alias_deleted", name, previous, alias=alias)

    # -------------------------------------------------------------------- tags

    def set_tags(self, actor: Principal, ref: str, tags: Mapping[str, str]) -> None:
        """Set tags on a model (``NAME``) or a version (``NAME/3``, ``NAME@stage`` …)."""
        checked = check_tags(tags)
        if not checked:
            raise InvalidArgument("no tags given")
        model = _tagged_model(ref)
        require(actor, Permission.WRITE, model, f"tag {model!r}")
        with self.db.write() as conn:
            table, owner, owner_id, model, number = self._tag_owner(conn, ref)
            before = dict(
                conn.execute(
                    sa.select(table.c.key, table.c.value).where(
                        table.c[owner] == owner_id, table.c.key.in_(list(checked))
                    )
                ).all()
            )
            self._write_tags(conn, table, owner, owner_id, checked)
            kind = "version_tags_set" if number is not None else "model_tags_set"
            record(conn, actor, kind, model, number, tags=checked, before=before)

    def delete_tag(self, actor: Principal, ref: str, key: str) -> None:
        """Remove one tag from a model or version; NotFound if it is not set."""
        validate_key(key, "tag")
        model = _tagged_model(ref)
        require(actor, Permission.WRITE, model, f"untag {model!r}")
        with self.db.write() as conn:
            table, owner, owner_id, model, number = self._tag_owner(conn, ref)
            where = (table.c[owner] == owner_id, table.c.key == key)
            value = conn.execute(sa.select(table.c.value).where(*where)).scalar()
            if value is None:
                raise NotFound(f"{ref} has no tag {key!r}", ref=ref, key=key)
            conn.execute(sa.delete(table).where(*where))
            kind = "version_tag_deleted" if number is not None else "model_tag_deleted"
            record(conn, actor, kind, model, number, key=key, before=value)

    def _tag_owner(self, conn: Connection, ref: str) -> tuple[sa.Table, str, int, str, int | None]:
        if isinstance(ref, str) and "/" not in ref and "@" not in ref:
            validate_model_name(ref)
            model = q.model_row(conn, ref, lock=True)
            return t.model_tags, "model_id", model.id, ref, None
        parsed = parse_ref(ref)
        q.model_row(conn, parsed.name, lock=True)
        row = q.version_row(conn, parsed, q.lifecycle(conn))
        conn.execute(
            sa.update(t.versions).where(t.versions.c.id == row.id).values(updated_at=utcnow())
        )
        return t.version_tags, "version_id", row.id, row.model_name, row.version

    def _set_stage(
        self, conn: Connection, version_id: int, stage: str, lc: Lifecycle, now: Any
    ) -> None:
        conn.execute(
            sa.update(t.versions)
            .where(t.versions.c.id == version_id)
            .values(
                stage=stage,
                exclusive_stage=stage if stage in lc.exclusive else None,
                stage_changed_at=now,
                updated_at=now,
            )
        )


def _tagged_model(ref: str) -> str:
    """The model a tag reference (``NAME`` or a version reference) belongs to."""
    if isinstance(ref, str) and "/" not in ref and "@" not in ref:
        return validate_model_name(ref)
    return parse_ref(ref).name
