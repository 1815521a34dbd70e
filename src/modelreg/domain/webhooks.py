"""Webhooks: subscriptions to the event feed, and the log of their deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from modelreg.domain.times import from_iso_or_none, iso, iso_or_none
from modelreg.errors import InvalidArgument

MAX_URL = 2000


def validate_url(url: object) -> str:
    """An absolute http(s) URL with a host."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InvalidArgument(f"a webhook URL must be a string of at most {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"invalid webhook URL {url!r}: use http(s)://host/path")
    return url


@dataclass(frozen=True, slots=True)
class Webhook:
    """A receiver of events, filtered by event kind and model.

    ``secret`` signs every delivery; the registry returns it only when the webhook is
    created (None afterwards)."""

    id: int
    url: str
    kinds: tuple[str, ...]  # empty: every kind
    model: str | None  # None: every model
    description: str
    created_at: datetime
    created_by: str
    secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "kinds": list(self.kinds),
            "model": self.model,
            "description": self.description,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "secret": self.secret,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Webhook:
        """The inverse of ``to_dict``."""
        return cls(
            id=int(data["id"]),
            url=data["url"],
            kinds=tuple(data["kinds"]),
            model=data["model"],
            description=data["description"],
            created_at=datetime.fromisoformat(data["created_at"]),
            created_by=data["created_by"],
            secret=data.get("secret"),
        )


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event sent (or to be sent) to one webhook: its state and last attempt."""

    id: int
    webhook_id: int
    event_id: int | None  # None for a test delivery
    kind: str
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    response_status: int | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": iso_or_none(self.next_attempt_at),
            "last_attempt_at": iso_or_none(self.last_attempt_at),
            "response_status": self.response_status,
            "error": self.error,
            "created_at": iso(self.created_at),
            "delivered_at": iso_or_none(self.delivered_at),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookDelivery:
        """The inverse of ``to_dict``."""
        return cls(
            id=int(data["id"]),
            webhook_id=int(data["webhook_id"]),
            event_id=data["event_id"],
            kind=data["kind"],
            status=data["status"],
            attempts=int(data["attempts"]),
            next_attempt_at=from_iso_or_none(data["next_attempt_at"]),
            last_attempt_at=from_iso_or_none(data["last_attempt_at"]),
            response_status=data["response_status"],
            error=data["error"],
            created_at=datetime.fromisoformat(data["created_at"]),
            delivered_at=from_iso_or_none(data["delivered_at"]),
        )
