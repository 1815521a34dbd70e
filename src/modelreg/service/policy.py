"""Lifecycle policies: stored per registry (scope ``*``) and per model, versioned, audited."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.auth.roles import GLOBAL, Permission
from modelreg.domain.names import validate_model_name
from modelreg.domain.policy import DEFAULT_POLICY, Policy, StageRule
from modelreg.errors import NotFound, PermissionDenied
from modelreg.service.authz import require, require_role
from modelreg.service.common import ServiceBase
from modelreg.service.events import record, utcnow
from modelreg.store import tables as t

_C = t.policies.c
_SCOPES = sa.select(_C.scope, _C.body).where(_C.scope.in_(sa.bindparam("scopes", expanding=True)))


def effective_policy(conn: Connection, model: str) -> Policy:
    """The registry's policy with ``model``'s own rules on top."""
    found = {
        row.scope: Policy.from_dict(json.loads(row.body))
        for row in conn.execute(_SCOPES, {"scopes": [GLOBAL, model]})
    }
    return found.get(GLOBAL, DEFAULT_POLICY).merged(found.get(model))


def stage_rule(conn: Connection, model: str, stage: str) -> StageRule:
    """Who may move a version of ``model`` into ``stage``."""
    return effective_policy(conn, model).rule(stage)


class PolicyService(ServiceBase):
    """Reading and replacing lifecycle policies."""

    def get_policy(self, actor: Principal, model: str | None = None) -> Policy:
        """The registry's policy, or the one in force for ``model`` (registry + model rules)."""
        with self.db.read() as conn:
            if model is None:
                return effective_policy(conn, GLOBAL)
            validate_model_name(model)
            require(actor, Permission.READ, model, f"read the policy of {model!r}")
            return effective_policy(conn, model)

    def set_policy(self, actor: Principal, policy: Policy, model: str | None = None) -> Policy:
        """Replace the registry's policy (admin on every model) or ``model``'s own rules
        (admin on that model); the change is versioned and audited."""
        scope = GLOBAL if model is None else validate_model_name(model)
        what = "the registry's policy" if model is None else f"the policy of {model!r}"
        require(actor, Permission.ADMIN, model, f"change {what}")
        body = policy.to_json()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(_C.body, _C.revision).where(_C.scope == scope).with_for_update()
            ).first()
            revision = 1 if row is None else row.revision + 1
            values = {"body": body, "revision": revision, "updated_at": utcnow()}
            if row is None:
                conn.execute(
                    sa.insert(t.policies).values(scope=scope, updated_by=actor.name, **values)
                )
            else:
                conn.execute(
                    sa.update(t.policies)
                    .where(_C.scope == scope)
                    .values(updated_by=actor.name, **values)
                )
            record(
                conn,
                actor,
                "policy_set",
                "" if model is None else model,
                scope=scope,
                revision=revision,
                before=json.loads(row.body) if row is not None else None,
                after=policy.to_dict(),
            )
            return effective_policy(conn, scope)

    def delete_policy(self, actor: Principal, model: str) -> None:
        """Drop ``model``'s own rules, so the registry's policy applies to it again."""
        validate_model_name(model)
        require(actor, Permission.ADMIN, model, f"change the policy of {model!r}")
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(_C.body, _C.revision).where(_C.scope == model).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"model {model!r} has no policy of its own", model=model)
            conn.execute(sa.delete(t.policies).where(_C.scope == model))
            record(
                conn,
                actor,
                "policy_deleted",
                model,
                scope=model,
                revision=row.revision,
                before=json.loads(row.body),
                after=None,
            )


def authorize_transition(conn: Connection, actor: Principal, model: str, stage: str) -> None:
    """PermissionDenied unless ``actor`` may move a version of ``model`` into ``stage``
    directly: it needs the stage's role, and a protected stage admits only service
    accounts directly (people go through an approved transition request)."""
    if not actor.restricted:
        return
    rule = stage_rule(conn, model, stage)
    require_role(
        actor,
        rule.role,
        model,
        f"move versions of {model!r} into {stage}",
        f"the policy of {stage}",
    )
    if rule.protected and actor.kind != "service":
        raise PermissionDenied(
            f"{actor.name} may not move versions of {model!r} into {stage} directly: "
            f"{stage} is a protected stage, so that needs a transition request approved by "
            f"{rule.approvals} reviewer(s) other than the requester (modelreg request create "
            f"REF {stage} --reason …); only a service account with the {rule.role.value} "
            "role moves versions into it directly",
            principal=actor.name,
            model=model,
            stage=stage,
            required_role=rule.role.value,
        )
