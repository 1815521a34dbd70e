"""Environments and deployment records: what runs where, separate from stages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelreg.domain.times import iso
from modelreg.errors import InvalidArgument, InvalidName

# deploying: rollout started; deployed: serving; failed: the rollout did not complete
# (what ran before keeps running); removed: the model no longer runs there.
STATUSES = ("deploying", "deployed", "failed", "removed")
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
ENVIRONMENT_RULES = (
    "1-64 characters: lowercase letters, digits, '_' and '-', starting with a letter"
)


def validate_environment(name: object) -> str:
    """Return ``name`` if it is a valid environment name (``prod-eu``, ``shadow``)."""
    if not isinstance(name, str) or not _ENVIRONMENT.match(name):
        raise InvalidName(f"invalid environment name {name!r}: {ENVIRONMENT_RULES}")
    return name


def validate_status(status: object) -> str:
    """Return ``status`` if it is one of STATUSES."""
    if status not in STATUSES:
        raise InvalidArgument(
            f"invalid deployment status {status!r}; use one of: {', '.join(STATUSES)}"
        )
    assert isinstance(status, str)
    return status


@dataclass(frozen=True, slots=True)
class Environment:
    """A place models are deployed to, such as ``prod-eu`` or ``shadow``."""

    name: str
    description: str
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        """The inverse of ``to_dict``."""
        return cls(
            name=data["name"],
            description=data["description"],
            created_at=datetime.fromisoformat(data["created_at"]),
            created_by=data["created_by"],
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """One record: a version deployed (or failing, or removed) in an environment."""

    id: int
    environment: str
    name: str
    version: int
    manifest_digest: str
    status: str
    note: str
    deployed_at: datetime
    deployed_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "environment": self.environment,
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "manifest_digest": self.manifest_digest,
            "status": self.status,
            "note": self.note,
            "deployed_at": iso(self.deployed_at),
            "deployed_by": self.deployed_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        """The inverse of ``to_dict``."""
        return cls(
            id=int(data["id"]),
            environment=data["environment"],
            name=data["name"],
            version=int(data["version"]),
            manifest_digest=data["manifest_digest"],
            status=data["status"],
            note=data["note"],
            deployed_at=datetime.fromisoformat(data["deployed_at"]),
            deployed_by=data["deployed_by"],
        )
