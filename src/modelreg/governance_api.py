"""The governance half of the Registry interface: identity, grants, tokens, policies,
transition requests and the audit log. ``protocol.Registry`` includes it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from modelreg.domain.entities import HistoryEvent, Page
from modelreg.domain.governance import (
    AuditReport,
    CreatedToken,
    GrantInfo,
    PrincipalInfo,
    TokenInfo,
    TransitionRequest,
)
from modelreg.domain.policy import Policy


class Governance(Protocol):
    """Who may do what, how a version enters a protected stage, and who did what."""

    def whoami(self) -> dict[str, Any]: ...
    def create_principal(
        self, name: str, *, kind: str = "user", description: str = ""
    ) -> PrincipalInfo: ...
    def get_principal(self, name: str) -> PrincipalInfo: ...
    def list_principals(self) -> list[PrincipalInfo]: ...
    def disable_principal(self, name: str) -> PrincipalInfo: ...
    def enable_principal(self, name: str) -> PrincipalInfo: ...
    def grant(self, principal: str, role: str, model: str = "*") -> GrantInfo: ...
    def revoke_grant(self, principal: str, model: str = "*") -> None: ...
    def create_token(
        self,
        principal: str | None = None,
        *,
        name: str = "",
        expires_in: str | float | None = None,
    ) -> CreatedToken: ...
    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]: ...
    def revoke_token(self, token_id: str) -> TokenInfo: ...
    def get_policy(self, model: str | None = None) -> Policy: ...
    def set_policy(
        self, policy: Policy | Mapping[str, Any], model: str | None = None
    ) -> Policy: ...
    def delete_policy(self, model: str) -> None: ...
    def request_transition(self, ref: str, stage: str, *, reason: str) -> TransitionRequest: ...
    def get_request(self, request_id: int) -> TransitionRequest: ...
    def list_requests(
        self,
        *,
        model: str | None = None,
        status: str | None = "open",
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[TransitionRequest]: ...
    def approve_request(self, request_id: int, *, comment: str = "") -> TransitionRequest: ...
    def reject_request(self, request_id: int, *, comment: str) -> TransitionRequest: ...
    def cancel_request(self, request_id: int, *, comment: str = "") -> TransitionRequest: ...
    def audit_log(
        self,
        *,
        model: str | None = None,
        principal: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryEvent]: ...
    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport: ...


def as_policy(policy: Policy | Mapping[str, Any]) -> Policy:
    """A Policy from itself or its dict form (as read from JSON or YAML)."""
    return policy if isinstance(policy, Policy) else Policy.from_dict(policy)
