"""Authorization checks every use case makes before it reads or changes anything.

Checks depend only on the principal's grants and the model's name, never on whether the
model exists, so a refusal tells a caller nothing about models it may not see.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modelreg.auth.principal import Principal
from modelreg.auth.roles import GLOBAL, MINIMUM_ROLE, Permission, Role
from modelreg.errors import PermissionDenied
from modelreg.store.search import Scope


def require(actor: Principal, permission: Permission, model: str | None, action: str) -> None:
    """PermissionDenied unless ``actor`` holds ``permission`` on ``model``.

    ``model`` None means registry-wide: the permission must be granted on ``*``.
    ``action`` completes "may not …" in the message, e.g. "register versions of 'fraud'".
    """
    if actor.has(permission, model):
        return
    role = MINIMUM_ROLE[permission]
    raise denied(actor, action, permission, role, model)


def require_role(actor: Principal, role: Role, model: str, action: str, why: str) -> None:
    """PermissionDenied unless ``actor``'s role on ``model`` is at least ``role``."""
    held = actor.role_on(model)
    if held is not None and held.rank >= role.rank:
        return
    raise denied(actor, action, None, role, model, why=why)


def denied(
    actor: Principal,
    action: str,
    permission: Permission | None,
    role: Role,
    model: str | None,
    *,
    why: str = "",
) -> PermissionDenied:
    """The one refusal message: who, what they tried, and the role that would allow it."""
    scope = f"on model {model!r}" if model is not None else "on every model ('*')"
    held = actor.role_on(model) if model is not None else actor.role_on_all()
    has = f"{held.value}" if held is not None else "no role"
    needs = (
        f"the {permission.value} permission ({role.value} role or higher)"
        if permission
        else (f"the {role.value} role or higher")
    )
    reason = f" ({why})" if why else ""
    return PermissionDenied(
        f"{actor.name} may not {action}: that needs {needs} {scope}{reason}; "
        f"{actor.name} has {has} there",
        principal=actor.name,
        permission=permission.value if permission else None,
        required_role=role.value,
        model=model if model is not None else GLOBAL,
    )


def read_scope(actor: Principal, name_column: Any) -> Any | None:
    """A SQL condition limiting ``name_column`` to the models ``actor`` may read, or None
    when it may read them all. A principal with no read grant gets a false condition."""
    patterns = actor.patterns_with(Permission.READ)
    if GLOBAL in patterns:
        return None
    exact = [p for p in patterns if not p.endswith("*")]
    conditions = [
        name_column.startswith(p[:-1], autoescape=True) for p in patterns if p.endswith("*")
    ]
    if exact:
        conditions.append(name_column.in_(exact))
    return sa.or_(*conditions) if conditions else sa.false()


def search_scope(actor: Principal, name_column: Any) -> Scope | None:
    """``read_scope`` for a search, keyed by the grants' patterns so that the scoped
    statement is built once per set of patterns, not on every call."""
    patterns = actor.patterns_with(Permission.READ)
    if GLOBAL in patterns:
        return None
    return Scope((id(name_column), patterns), lambda: read_scope(actor, name_column))
