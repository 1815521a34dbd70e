"""Governance calls of the remote registry: the /api/v1 access, policy, request and audit
routes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from modelreg.client.http import Session
from modelreg.domain.codec import event_from_dict
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
from modelreg.service.transfer import parse_duration

T = TypeVar("T")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _policy_path(model: str | None) -> str:
    return "/api/v1/policy" if model is None else f"/api/v1/models/{_seg(model)}/policy"


class RemoteGovernance:
    """Mixed into RemoteRegistry; acts as the token's principal."""

    session: Session
    _page: Callable[..., Any]

    def whoami(self) -> dict[str, Any]:
        """The acting principal and its grants."""
        data: dict[str, Any] = self.session.call("GET", "/api/v1/whoami")
        return data

    def create_principal(
        self, name: str, *, kind: str = "user", description: str = ""
    ) -> PrincipalInfo:
        """Create a user or a service account (admin)."""
        body = {"name": name, "kind": kind, "description": description}
        return PrincipalInfo.from_dict(self.session.call("POST", "/api/v1/principals", json=body))

    def get_principal(self, name: str) -> PrincipalInfo:
        """A principal with its grants."""
        return PrincipalInfo.from_dict(self.session.call("GET", f"/api/v1/principals/{_seg(name)}"))

    def list_principals(self) -> list[PrincipalInfo]:
        """Every principal with its grants (admin)."""
        data = self.session.call("GET", "/api/v1/principals")
        return [PrincipalInfo.from_dict(p) for p in data["items"]]

    def _set_disabled(self, name: str, disabled: bool) -> PrincipalInfo:
        data = self.session.call(
            "PATCH", f"/api/v1/principals/{_seg(name)}", json={"disabled": disabled}
        )
        return PrincipalInfo.from_dict(data)

    def disable_principal(self, name: str) -> PrincipalInfo:
        """Disable a principal: its tokens stop working at once (admin)."""
        return self._set_disabled(name, True)

    def enable_principal(self, name: str) -> PrincipalInfo:
        """Enable a disabled principal again (admin)."""
        return self._set_disabled(name, False)

    def grant(self, principal: str, role: str, model: str = "*") -> GrantInfo:
        """Give ``principal`` ``role`` on ``model`` (``*``, a name or a ``prefix-*``)."""
        data = self.session.call(
            "PUT",
            f"/api/v1/principals/{_seg(principal)}/grants",
            json={"role": role, "model": model},
        )
        return GrantInfo.from_dict(data)

    def revoke_grant(self, principal: str, model: str = "*") -> None:
        """Remove ``principal``'s role on ``model``."""
        self.session.call(
            "DELETE", f"/api/v1/principals/{_seg(principal)}/grants", params={"model": model}
        )

    def create_token(
        self,
        principal: str | None = None,
        *,
        name: str = "",
        expires_in: str | float | None = None,
    ) -> CreatedToken:
        """A new API token (``expires_in`` such as ``"30d"``); its secret is shown once."""
        seconds = parse_duration(expires_in) if expires_in is not None else None
        body = {"principal": principal, "name": name, "expires_in": seconds}
        return CreatedToken.from_dict(self.session.call("POST", "/api/v1/tokens", json=body))

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        """Tokens (without secrets), newest first."""
        data = self.session.call("GET", "/api/v1/tokens", params={"principal": principal})
        return [TokenInfo.from_dict(t) for t in data["items"]]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token at once."""
        return TokenInfo.from_dict(self.session.call("DELETE", f"/api/v1/tokens/{_seg(token_id)}"))

    def get_policy(self, model: str | None = None) -> Policy:
        """The registry's lifecycle policy, or the one in force for ``model``."""
        return Policy.from_dict(self.session.call("GET", _policy_path(model)))

    def set_policy(self, policy: Policy | Mapping[str, Any], model: str | None = None) -> Policy:
        """Replace the registry's policy, or ``model``'s own rules."""
        body = as_policy(policy).to_dict()
        return Policy.from_dict(self.session.call("PUT", _policy_path(model), json=body))

    def delete_policy(self, model: str) -> None:
        """Drop ``model``'s own rules."""
        self.session.call("DELETE", _policy_path(model))

    def request_transition(self, ref: str, stage: str, *, reason: str) -> TransitionRequest:
        """Ask for a version to be moved into ``stage``."""
        body = {"ref": ref, "stage": stage, "reason": reason}
        return TransitionRequest.from_dict(self.session.call("POST", "/api/v1/requests", json=body))

    def get_request(self, request_id: int) -> TransitionRequest:
        """One transition request."""
        return TransitionRequest.from_dict(
            self.session.call("GET", f"/api/v1/requests/{int(request_id)}")
        )

    def list_requests(
        self,
        *,
        model: str | None = None,
        status: str | None = "open",
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[TransitionRequest]:
        """Transition requests, oldest first (``status=None``: every status)."""
        params = {
            "model": model,
            "status": "any" if status is None else status,
            "page_size": page_size,
            "page_token": page_token,
        }
        page: Page[TransitionRequest] = self._page(
            "/api/v1/requests", params, TransitionRequest.from_dict
        )
        return page

    def _decide(self, request_id: int, action: str, comment: str) -> TransitionRequest:
        data = self.session.call(
            "POST", f"/api/v1/requests/{int(request_id)}/{action}", json={"comment": comment}
        )
        return TransitionRequest.from_dict(data)

    def approve_request(self, request_id: int, *, comment: str = "") -> TransitionRequest:
        """Approve; the approval completing the count applies the transition."""
        return self._decide(request_id, "approve", comment)

    def reject_request(self, request_id: int, *, comment: str) -> TransitionRequest:
        """Reject with a comment."""
        return self._decide(request_id, "reject", comment)

    def cancel_request(self, request_id: int, *, comment: str = "") -> TransitionRequest:
        """Withdraw a request."""
        return self._decide(request_id, "cancel", comment)

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
        params = {
            "model": model,
            "principal": principal,
            "kind": kind,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "page_size": page_size,
            "page_token": page_token,
        }
        page: Page[HistoryEvent] = self._page("/api/v1/audit", params, event_from_dict)
        return page

    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        """Recompute the audit chain on the server; names the first bad record."""
        body = {"anchor_seq": anchor[0], "anchor_hash": anchor[1]} if anchor else {}
        return AuditReport.from_dict(
            self.session.call("POST", "/api/v1/audit/verify", json=body, timeout=None)
        )
