"""What governance calls return: principals, tokens, transition requests, audit reports.

Each has ``to_dict`` (the wire and ``--json`` form) and a ``from_dict`` for the remote
client, so both SDKs hand back the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelreg.domain.times import from_iso_or_none, iso_or_none


@dataclass(frozen=True, slots=True)
class GrantInfo:
    """A role on the models a pattern covers."""

    principal: str
    role: str
    model: str
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "role": self.role,
            "model": self.model,
            "created_at": iso_or_none(self.created_at),
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GrantInfo:
        return cls(
            principal=data["principal"],
            role=data["role"],
            model=data["model"],
            created_at=datetime.fromisoformat(data["created_at"]),
            created_by=data["created_by"],
        )


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    """A user or service account as the registry stores it."""

    name: str
    kind: str
    description: str
    created_at: datetime
    created_by: str
    disabled: bool
    grants: tuple[GrantInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "created_at": iso_or_none(self.created_at),
            "created_by": self.created_by,
            "disabled": self.disabled,
            "grants": [g.to_dict() for g in self.grants],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrincipalInfo:
        return cls(
            name=data["name"],
            kind=data["kind"],
            description=data["description"],
            created_at=datetime.fromisoformat(data["created_at"]),
            created_by=data["created_by"],
            disabled=data["disabled"],
            grants=tuple(GrantInfo.from_dict(g) for g in data["grants"]),
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token's public record; the secret is never stored or shown again."""

    id: str
    principal: str
    name: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "name": self.name,
            "created_at": iso_or_none(self.created_at),
            "created_by": self.created_by,
            "expires_at": iso_or_none(self.expires_at),
            "revoked_at": iso_or_none(self.revoked_at),
            "revoked_by": self.revoked_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenInfo:
        return cls(
            id=data["id"],
            principal=data["principal"],
            name=data["name"],
            created_at=datetime.fromisoformat(data["created_at"]),
            created_by=data["created_by"],
            expires_at=from_iso_or_none(data["expires_at"]),
            revoked_at=from_iso_or_none(data["revoked_at"]),
            revoked_by=data["revoked_by"],
        )


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new token: ``secret`` is the whole token, shown this once."""

    secret: str = field(repr=False)
    info: TokenInfo

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.secret, **self.info.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CreatedToken:
        rest = {k: v for k, v in data.items() if k != "token"}
        return cls(secret=data["token"], info=TokenInfo.from_dict(rest))


@dataclass(frozen=True, slots=True)
class Approval:
    """One reviewer's approval of a transition request."""

    approver: str
    at: datetime
    comment: str

    def to_dict(self) -> dict[str, Any]:
        return {"approver": self.approver, "at": iso_or_none(self.at), "comment": self.comment}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Approval:
        return cls(data["approver"], datetime.fromisoformat(data["at"]), data["comment"])


REQUEST_STATUSES = ("open", "applied", "rejected", "cancelled")


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    """A request to move a version into a (usually protected) stage."""

    id: int
    name: str
    version: int
    from_stage: str
    to_stage: str
    reason: str
    status: str
    approvals_required: int
    requested_by: str
    requested_at: datetime
    approvals: tuple[Approval, ...] = ()
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "reason": self.reason,
            "status": self.status,
            "approvals_required": self.approvals_required,
            "approvals": [a.to_dict() for a in self.approvals],
            "requested_by": self.requested_by,
            "requested_at": iso_or_none(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": iso_or_none(self.decided_at),
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransitionRequest:
        return cls(
            id=data["id"],
            name=data["name"],
            version=data["version"],
            from_stage=data["from_stage"],
            to_stage=data["to_stage"],
            reason=data["reason"],
            status=data["status"],
            approvals_required=data["approvals_required"],
            approvals=tuple(Approval.from_dict(a) for a in data["approvals"]),
            requested_by=data["requested_by"],
            requested_at=datetime.fromisoformat(data["requested_at"]),
            decided_by=data["decided_by"],
            decided_at=from_iso_or_none(data["decided_at"]),
            comment=data["comment"],
        )


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of recomputing the audit chain.

    ``first_bad`` is the id of the first record that fails, and ``problem`` says how:
    edited (its hash does not match its content), removed (a gap or a missing tail) or
    reordered (ids out of sequence).
    """

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    first_bad: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "first_bad": self.first_bad,
            "problem": self.problem,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        return cls(**data)
