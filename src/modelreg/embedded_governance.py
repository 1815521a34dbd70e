"""Governance calls of the embedded registry: straight to the service layer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelreg.auth.principal import Principal
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
from modelreg.governance_api import as_policy
from modelreg.service.registry import RegistryService
from modelreg.service.transfer import parse_duration


class EmbeddedGovernance:
    """Mixed into EmbeddedRegistry; acts as its principal."""

    service: RegistryService
    principal: Principal

    def whoami(self) -> dict[str, Any]:
        """The acting principal and its grants."""
        return self.service.whoami(self.principal)

    def create_principal(
        self, name: str, *, kind: str = "user", description: str = ""
    ) -> PrincipalInfo:
        """Create a user or a service account (admin)."""
        return self.service.create_principal(
            self.principal, name, kind=kind, description=description
        )

    def get_principal(self, name: str) -> PrincipalInfo:
        """A principal with its grants."""
        return self.service.get_principal(self.principal, name)

    def list_principals(self) -> list[PrincipalInfo]:
        """Every principal with its grants (admin)."""
        return self.service.list_principals(self.principal)

    def disable_principal(self, name: str) -> PrincipalInfo:
        """Disable a principal: its tokens stop working at once (admin)."""
        return self.service.set_principal_disabled(self.principal, name, True)

    def enable_principal(self, name: str) -> PrincipalInfo:
        """Enable a disabled principal again (admin)."""
        return self.service.set_principal_disabled(self.principal, name, False)

    def grant(self, principal: str, role: str, model: str = "*") -> GrantInfo:
        """Give ``principal`` ``role`` on ``model`` (``*``, a name or a ``prefix-*``)."""
        return self.service.grant(self.principal, principal, role, model)

    def revoke_grant(self, principal: str, model: str = "*") -> None:
        """Remove ``principal``'s role on ``model``."""
        self.service.revoke_grant(self.principal, principal, model)

    def create_token(
        self,
        principal: str | None = None,
        *,
        name: str = "",
        expires_in: str | float | None = None,
    ) -> CreatedToken:
        """A new API token (``expires_in`` such as ``"30d"``); its secret is shown once."""
        seconds = parse_duration(expires_in) if expires_in is not None else None
        return self.service.create_token(self.principal, principal, name=name, expires_in=seconds)

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        """Tokens (without secrets), newest first."""
        return self.service.list_tokens(self.principal, principal)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token at once."""
        return self.service.revoke_token(self.principal, token_id)

    def get_policy(self, model: str | None = None) -> Policy:
        """The registry's lifecycle policy, or the one in force for ``model``."""
        return self.service.get_policy(self.principal, model)

    def set_policy(self, policy: Policy | Mapping[str, Any], model: str | None = None) -> Policy:
        """Replace the registry's policy, or ``model``'s own rules."""
        return self.service.set_policy(self.principal, as_policy(policy), model)

    def delete_policy(self, model: str) -> None:
        """Drop ``model``'s own rules."""
        self.service.delete_policy(self.principal, model)

    def request_transition(self, ref: str, stage: str, *, reason: str) -> TransitionRequest:
        """Ask for a version to be moved into ``stage``."""
        return self.service.request_transition(self.principal, ref, stage, reason=reason)

    def get_request(self, request_id: int) -> TransitionRequest:
        """One transition request."""
        return self.service.get_request(self.principal, request_id)

    def list_requests(
        self,
        *,
        model: str | None = None,
        status: str | None = "open",
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[TransitionRequest]:
        """Transition requests, oldest first (``status=None``: every status)."""
        return self.service.list_requests(
            self.principal,
            model=model,
            status=status,
            page_size=page_size,
            page_token=page_token,
        )

    def approve_request(self, request_id: int, *, comment: str = "") -> TransitionRequest:
        """Approve; the approval completing the count applies the transition."""
        return self.service.approve_request(self.principal, request_id, comment=comment)

    def reject_request(self, request_id: int, *, comment: str) -> TransitionRequest:
        """Reject with a comment."""
        return self.service.reject_request(self.principal, request_id, comment=comment)

    def cancel_request(self, request_id: int, *, comment: str = "") -> TransitionRequest:
        """Withdraw a request."""
        return self.service.cancel_request(self.principal, request_id, comment=comment)

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
    ) -> Page[HistoryEvent]:
        """Every change, oldest first, filtered."""
        return self.service.audit_log(
            self.principal,
            model=model,
            principal=principal,
            kind=kind,
            since=since,
            until=until,
            page_size=page_size,
            page_token=page_token,
        )

    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        """Recompute the audit chain; names the first bad record."""
        return self.service.audit_verify(self.principal, anchor=anchor)
