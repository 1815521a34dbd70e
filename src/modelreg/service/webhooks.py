"""Registering webhooks, reading their delivery log, and sending a test delivery."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.entities import Page
from modelreg.domain.names import validate_model_name
from modelreg.domain.webhooks import Webhook, WebhookDelivery, validate_url
from modelreg.errors import InvalidArgument, NotFound
from modelreg.events import delivery
from modelreg.service.authz import require
from modelreg.service.common import MAX_DESCRIPTION, ServiceBase, check_text, rows_by_id
from modelreg.service.events import record, utcnow
from modelreg.store import search as s
from modelreg.store import tables as t

MIN_SECRET, MAX_SECRET = 16, 200
MAX_KINDS = 50
_W = t.webhooks.c
_D = t.webhook_deliveries.c


def _webhook(row: Any, secret: str | None = None) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        kinds=tuple(json.loads(row.kinds)),
        model=row.model_name,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        secret=secret,
    )


def _delivery(row: Any) -> WebhookDelivery:
    settled = row.status != "pending"
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        kind=row.kind,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=None if settled else row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        response_status=row.response_status,
        error=row.error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _check_kinds(kinds: Sequence[str] | None) -> list[str]:
    if isinstance(kinds, str):
        kinds = [kinds]
    checked = list(dict.fromkeys(kinds or []))
    if len(checked) > MAX_KINDS or not all(
        isinstance(k, str) and 0 < len(k) <= 32 and k.replace("_", "").isalnum() for k in checked
    ):
        raise InvalidArgument(
            f"event kinds must be at most {MAX_KINDS} names such as 'stage_changed'"
        )
    return checked


class WebhooksService(ServiceBase):
    """Webhook subscriptions; delivery itself runs in ``modelreg.events.delivery``."""

    def create_webhook(
        self,
        actor: Principal,
        url: str,
        *,
        kinds: Sequence[str] | None = None,
        model: str | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> Webhook:
        """Subscribe ``url`` to future events (of ``kinds``, about ``model``; None: all).
        The returned webhook carries its signing secret, which is not shown again."""
        validate_url(url)
        require(actor, Permission.ADMIN, None, "manage webhooks")
        checked = _check_kinds(kinds)
        if model is not None:
            validate_model_name(model)
        check_text(description, "description", MAX_DESCRIPTION)
        if secret is None:
            secret = "whsec_" + secrets.token_urlsafe(32)
        elif not isinstance(secret, str) or not MIN_SECRET <= len(secret) <= MAX_SECRET:
            raise InvalidArgument(
                f"a webhook secret must be {MIN_SECRET}-{MAX_SECRET} characters long"
            )
        with self.db.write() as conn:
            # Only events from now on: a new subscriber is not flooded with the past.
            cursor = conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar() or 0
            now = utcnow()
            webhook_id = conn.execute(
                sa.insert(t.webhooks)
                .values(
                    url=url,
                    secret=secret,
                    kinds=json.dumps(checked),
                    model_name=model,
                    description=description,
                    cursor=cursor,
                    created_at=now,
                    created_by=actor.name,
                )
                .returning(_W.id)
            ).scalar_one()
            row = conn.execute(sa.select(t.webhooks).where(_W.id == webhook_id)).one()
            record(conn, actor, "webhook_created", "", at=now, webhook=webhook_id, url=url)
            return _webhook(row, secret)

    def list_webhooks(
        self, actor: Principal, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Webhook]:
        """Every webhook, newest first (without secrets)."""
        require(actor, Permission.ADMIN, None, "manage webhooks")
        with self.db.read() as conn:
            rows, token = rows_by_id(
                conn,
                sa.select(t.webhooks),
                _W.id,
                fingerprint=s.query_fingerprint("webhooks"),
                page_size=page_size,
                page_token=page_token,
            )

        def more(next_token: str) -> Page[Webhook]:
            return self.list_webhooks(actor, page_size=page_size, page_token=next_token)

        return Page([_webhook(r) for r in rows], token, more)

    def delete_webhook(self, actor: Principal, webhook_id: int) -> None:
        """Unsubscribe; pending deliveries are dropped with the webhook."""
        require(actor, Permission.ADMIN, None, "manage webhooks")
        with self.db.write() as conn:
            hook = self._webhook_row(conn, webhook_id)
            conn.execute(sa.delete(t.webhooks).where(_W.id == webhook_id))
            record(conn, actor, "webhook_deleted", "", webhook=webhook_id, url=hook.url)

    def webhook_deliveries(
        self,
        actor: Principal,
        webhook_id: int,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[WebhookDelivery]:
        """A webhook's delivery log, newest first: status, attempts, last answer."""
        require(actor, Permission.ADMIN, None, "manage webhooks")
        with self.db.read() as conn:
            self._webhook_row(conn, webhook_id)
            rows, token = rows_by_id(
                conn,
                sa.select(t.webhook_deliveries).where(_D.webhook_id == webhook_id),
                _D.id,
                fingerprint=s.query_fingerprint("deliveries", webhook_id),
                page_size=page_size,
                page_token=page_token,
            )

        def more(next_token: str) -> Page[WebhookDelivery]:
            return self.webhook_deliveries(
                actor, webhook_id, page_size=page_size, page_token=next_token
            )

        return Page([_delivery(r) for r in rows], token, more)

    def test_webhook(self, actor: Principal, webhook_id: int) -> WebhookDelivery:
        """Send a signed ``ping`` to the webhook now and return the logged result (one
        attempt, no retries: the caller sees at once whether the receiver works)."""
        require(actor, Permission.ADMIN, None, "manage webhooks")
        now = utcnow()
        with self.db.write() as conn:
            hook = self._webhook_row(conn, webhook_id)
            ping = {"kind": "ping", "at": now.isoformat(), "actor": actor.name}
            body = delivery.payload(webhook_id, ping)
            delivery_id = conn.execute(
                sa.insert(t.webhook_deliveries)
                .values(
                    webhook_id=webhook_id,
                    event_id=None,
                    kind="ping",
                    payload=body,
                    status="pending",
                    attempts=1,
                    # Claimed by this call: dispatchers leave it alone while it is sent.
                    next_attempt_at=now + timedelta(seconds=delivery.LEASE),
                    last_attempt_at=now,
                    created_at=now,
                )
                .returning(_D.id)
            ).scalar_one()
        outcome = delivery.post(hook.url, hook.secret, delivery_id, "ping", body)
        with self.db.write() as conn:
            delivery.settle(conn, delivery_id, 1, outcome, retry_base=1.0, max_attempts=1)
            row = conn.execute(sa.select(t.webhook_deliveries).where(_D.id == delivery_id)).one()
            return _delivery(row)

    @staticmethod
    def _webhook_row(conn: Any, webhook_id: int) -> Any:
        if isinstance(webhook_id, bool) or not isinstance(webhook_id, int) or webhook_id < 1:
            raise InvalidArgument(f"a webhook id is a positive integer, not {webhook_id!r}")
        row = conn.execute(sa.select(t.webhooks).where(_W.id == webhook_id)).first()
        if row is None:
            raise NotFound(f"webhook {webhook_id} does not exist", webhook=webhook_id)
        return row
