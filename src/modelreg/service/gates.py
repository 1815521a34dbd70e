"""Promotion gates: storing policies (versioned, each change an event) and evaluating them.

``evaluate_gate`` is the one evaluation every path uses: a transition, a dry-run check,
the gate verdict of ``compare``, and a transition request when it is approved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain import gates as g
from modelreg.domain.entities import ModelVersion
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.names import validate_model_name
from modelreg.domain.refs import Ref, parse_ref
from modelreg.errors import InvalidArgument, PolicyViolation
from modelreg.service.authz import require
from modelreg.service.common import ServiceBase
from modelreg.service.events import record, utcnow
from modelreg.store import queries as q
from modelreg.store import tables as t

REGISTRY_SCOPE = ""  # the scope of the registry-wide policy

_LATEST_POLICY = (
    sa.select(t.gate_policies)
    .where(t.gate_policies.c.scope == sa.bindparam("scope"))
    .order_by(t.gate_policies.c.revision.desc())
    .limit(1)
)


def load_policy(conn: Connection, model: str | None) -> g.GatePolicy:
    """The current policy of a model (``model``) or of the registry (None)."""
    row = conn.execute(_LATEST_POLICY, {"scope": model or REGISTRY_SCOPE}).first()
    if row is None:
        return g.GatePolicy(gates={}, model=model)
    return g.GatePolicy(
        gates=g.parse_gates(json.loads(row.policy)),
        model=model,
        revision=row.revision,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def gate_for(conn: Connection, model: str, stage: str) -> tuple[g.StageGate | None, g.GatePolicy]:
    """The gate that applies to ``model`` entering ``stage``: the model's own gate for that
    stage when its policy declares one, else the registry's; with the policy it came from."""
    own = load_policy(conn, model)
    if stage in own.gates:
        return own.gates[stage], own
    registry = load_policy(conn, None)
    return registry.gates.get(stage), registry


def _holder(conn: Connection, model: str, stage: str, lc: Lifecycle) -> ModelVersion | None:
    if stage not in lc.stages:
        return None
    found = conn.execute(
        sa.select(t.versions.c.version)
        .join(t.models, t.models.c.id == t.versions.c.model_id)
        .where(t.models.c.name == model, t.versions.c.stage == stage)
        .order_by(t.versions.c.version.desc())
        .limit(1)
    ).scalar()
    if found is None:
        return None
    return q.load_versions(conn, [q.version_row(conn, Ref(model, version=found), lc)])[0]


def evaluate_gate(
    conn: Connection, row: Any, target: str, lc: Lifecycle | None = None
) -> g.GateEvaluation | None:
    """Evaluate the gate of ``target`` for the version ``row`` (a versions row with
    ``model_name``), inside the caller's transaction; None when no gate applies."""
    lc = lc or q.lifecycle(conn)
    gate, policy = gate_for(conn, row.model_name, target)
    if gate is None:
        return None
    candidate = q.load_versions(conn, [row])[0]
    holders = {
        stage: _holder(conn, row.model_name, stage, lc)
        for stage in {r.stage for r in gate.rules if r.stage is not None}
    }
    return g.evaluate(
        candidate,
        target,
        gate,
        holders,
        policy_model=policy.model,
        policy_revision=policy.revision,
    )


def enforce_gate(
    evaluation: g.GateEvaluation | None,
    *,
    override: bool,
    reason: str,
    actor: Principal,
    model: str,
) -> None:
    """Refuse a failing gate with PolicyViolation (the evaluation in its details), unless
    overridden with a reason by an admin of the model."""
    if evaluation is None or evaluation.passed:
        return
    if override:
        if not reason.strip():
            raise InvalidArgument("overriding a failing gate needs a reason")
        # Overriding a failing gate is an administrator's decision, and it is audited
        # with the transition (``gates.overridden`` in the event's details).
        require(actor, Permission.ADMIN, model, f"override the promotion gate of {model!r}")
        return
    raise PolicyViolation(evaluation.summary(), evaluation=evaluation.to_dict())


class GatesService(ServiceBase):
    """Reading, replacing and checking promotion gates."""

    def get_gates(self, actor: Principal, model: str | None = None) -> g.GatePolicy:
        """The current gate policy of a model, or of the registry when ``model`` is None."""
        if model is not None:
            validate_model_name(model)
            require(actor, Permission.READ, model, f"read the gates of {model!r}")
        with self.db.read() as conn:
            if model is not None:
                q.model_row(conn, model)
            return load_policy(conn, model)

    def set_gates(
        self,
        actor: Principal,
        policy: str | Mapping[str, Any],
        *,
        model: str | None = None,
    ) -> g.GatePolicy:
        """Replace the gate policy of a model (or the registry) with a new revision.

        ``policy`` is YAML/JSON text or its parsed form; an empty policy removes every gate
        of the scope (as a new revision, so the change stays in the history)."""
        gates = g.gates_from_text(policy) if isinstance(policy, str) else g.parse_gates(policy)
        if model is not None:
            validate_model_name(model)
        what = "the registry's gates" if model is None else f"the gates of {model!r}"
        require(actor, Permission.ADMIN, model, f"change {what}")
        with self.db.write() as conn:
            if model is not None:
                q.model_row(conn, model, lock=True)
            lc = q.lifecycle(conn)
            for stage, gate in gates.items():
                named = {stage, *(r.stage for r in gate.rules if r.stage is not None)}
                for name in sorted(named):
                    if name not in lc.stages:
                        raise InvalidArgument(
                            f"gate policy names stage {name!r}, which the lifecycle does not "
                            f"have; stages are: {', '.join(lc.stages)}"
                        )
            before = load_policy(conn, model)
            now = utcnow()
            new = g.GatePolicy(
                gates=gates,
                model=model,
                revision=before.revision + 1,
                created_at=now,
                created_by=actor.name,
            )
            conn.execute(
                sa.insert(t.gate_policies).values(
                    scope=model or REGISTRY_SCOPE,
                    revision=new.revision,
                    policy=new.to_json(),
                    created_at=now,
                    created_by=actor.name,
                )
            )
            record(
                conn,
                actor,
                "gates_set",
                model or "",
                at=now,
                revision=new.revision,
                before=before.document(),
                after=new.document(),
            )
            return new

    def check_gates(self, actor: Principal, ref: str, stage: str) -> g.GateEvaluation:
        """Evaluate the gate a version would meet entering ``stage``, changing nothing."""
        parsed = parse_ref(ref)
        if not isinstance(stage, str):
            raise InvalidArgument("stage must be a string")
        require(actor, Permission.READ, parsed.name, f"read model {parsed.name!r}")
        target = stage.lower()
        with self.db.read() as conn:
            lc = q.lifecycle(conn)
            lc.check_stage(target)
            row = q.version_row(conn, parsed, lc)
            found = evaluate_gate(conn, row, target, lc)
            if found is None:
                return g.GateEvaluation(candidate=f"{row.model_name}/{row.version}", stage=target)
            return found
