"""The acting principal passed to every service call, with the grants it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelreg.auth.roles import GLOBAL, MINIMUM_ROLE, Permission, Role, pattern_matches
from modelreg.errors import InvalidArgument

PrincipalKind = Literal["user", "service"]
KINDS: tuple[PrincipalKind, ...] = ("user", "service")


@dataclass(frozen=True, slots=True)
class Grant:
    """A role on the models a pattern covers (``*``, ``fraud``, ``fraud-*``)."""

    role: Role
    pattern: str = GLOBAL

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role.value, "model": self.pattern}


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or a service account; ``name`` is what history and audit records show.

    ``grants`` is None when authorization is off (the embedded registry, or a server
    running without authentication): such a principal may do everything. A server with
    authentication on builds principals from tokens, always with their grants.
    """

    name: str
    kind: PrincipalKind = "user"
    grants: tuple[Grant, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 128 or not self.name.isprintable():
            raise InvalidArgument(f"invalid principal name {self.name!r}")
        if self.kind not in KINDS:
            raise InvalidArgument(f"invalid principal kind {self.kind!r}: use user or service")

    @property
    def restricted(self) -> bool:
        """Whether grants decide what this principal may do."""
        return self.grants is not None

    def role_on(self, model: str) -> Role | None:
        """The highest role this principal holds on ``model``, or None."""
        if self.grants is None:
            return Role.ADMIN
        best: Role | None = None
        for grant in self.grants:
            if not pattern_matches(grant.pattern, model):
                continue
            if best is None or grant.role.rank > best.rank:
                best = grant.role
        return best

    def role_on_all(self) -> Role | None:
        """The highest role held on every model (granted on ``*``)."""
        if self.grants is None:
            return Role.ADMIN
        roles = [g.role for g in self.grants if g.pattern == GLOBAL]
        return max(roles, key=lambda r: r.rank) if roles else None

    def has(self, permission: Permission, model: str | None = None) -> bool:
        """Whether this principal holds ``permission`` on ``model`` (None: on every model)."""
        role = self.role_on_all() if model is None else self.role_on(model)
        return role is not None and role.rank >= MINIMUM_ROLE[permission].rank

    def has_anywhere(self, permission: Permission) -> bool:
        """Whether some grant, on any pattern, carries ``permission``."""
        if self.grants is None:
            return True
        needed = MINIMUM_ROLE[permission].rank
        return any(g.role.rank >= needed for g in self.grants)

    def patterns_with(self, permission: Permission) -> tuple[str, ...]:
        """The patterns on which this principal holds ``permission``."""
        if self.grants is None:
            return (GLOBAL,)
        needed = MINIMUM_ROLE[permission].rank
        return tuple(sorted({g.pattern for g in self.grants if g.role.rank >= needed}))
