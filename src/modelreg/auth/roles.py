"""Roles, the permissions they carry, and the model-name patterns grants apply to."""

from __future__ import annotations

import re
from enum import Enum

from modelreg.errors import InvalidArgument


class Role(str, Enum):
    """A role; each one includes every permission of the roles below it."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    REVIEWER = "reviewer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: object) -> Role:
        """The role ``value`` names; InvalidArgument listing the roles otherwise."""
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise InvalidArgument(f"unknown role {value!r}: use one of {names}") from None


_RANK = {Role.VIEWER: 1, Role.CONTRIBUTOR: 2, Role.REVIEWER: 3, Role.ADMIN: 4}


class Permission(str, Enum):
    """What a call needs; the role that first carries it is in ``MINIMUM_ROLE``."""

    READ = "read"  # see models, versions, history; pull bytes
    WRITE = "write"  # create models, register versions, upload blobs, tags, descriptions
    REQUEST = "request"  # open transition requests
    APPROVE = "approve"  # approve or reject requests
    DEPLOY = "deploy"  # record deployments of a version to an environment
    DELETE = "delete"  # delete versions
    ADMIN = "admin"  # principals, grants, policies, lifecycle, audit, gc


MINIMUM_ROLE = {
    Permission.READ: Role.VIEWER,
    Permission.WRITE: Role.CONTRIBUTOR,
    Permission.REQUEST: Role.CONTRIBUTOR,
    Permission.APPROVE: Role.REVIEWER,
    Permission.DEPLOY: Role.REVIEWER,
    Permission.DELETE: Role.REVIEWER,
    Permission.ADMIN: Role.ADMIN,
}

GLOBAL = "*"
_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\*?$")
PATTERN_RULES = "'*' for every model, a model name, or a name prefix ending in '*' (e.g. 'fraud-*')"


def validate_pattern(pattern: object) -> str:
    """A grant's scope: ``*``, an exact model name, or a prefix ending in ``*``."""
    if pattern == GLOBAL:
        return GLOBAL
    if not isinstance(pattern, str) or len(pattern) > 128 or not _PATTERN.match(pattern):
        raise InvalidArgument(f"invalid model pattern {pattern!r}: {PATTERN_RULES}")
    return pattern


def pattern_matches(pattern: str, model: str) -> bool:
    """Whether a grant scoped to ``pattern`` covers ``model``."""
    if pattern == GLOBAL:
        return True
    if pattern.endswith("*"):
        return model.startswith(pattern[:-1])
    return model == pattern
