"""Webhook delivery from the outbox, at least once, shared by every server process.

The events table is the outbox: a change and its event commit together. Delivery is two
steps, each one short transaction:

1. **Fan-out.** Each webhook keeps a cursor into the events table. Under the webhook
   row's lock (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), new
   matching events become delivery rows and the cursor moves past them, atomically.
2. **Claim, send, settle.** Due deliveries are claimed with ``FOR UPDATE SKIP LOCKED``
   (workers and replicas never claim the same row) by pushing their next attempt a lease
   into the future; the request is sent outside any transaction; the outcome is written
   back. A process that dies mid-send leaves the claim to expire, and another process
   sends again: at least once, never lost, across restarts.

Failed attempts are retried with exponential backoff until ``max_attempts``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.events import signing
from modelreg.service.events import to_event, utcnow
from modelreg.store import tables as t
from modelreg.store.database import Database

log = logging.getLogger("modelreg.webhooks")

FAN_OUT_BATCH = 500
CLAIM_BATCH = 20
LEASE = 60.0  # seconds a claimed delivery is reserved for its sender
TIMEOUT = 10.0  # seconds to connect, and to wait for the receiver's answer
MAX_DELAY = 3600.0
MAX_ERROR = 500
USER_AGENT = "modelreg-webhooks"

_W = t.webhooks.c
_D = t.webhook_deliveries.c
_E = t.events.c


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: an HTTP status, or the error that prevented one."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def payload(webhook_id: int, event: dict[str, Any]) -> str:
    """The body of a delivery, fixed when the delivery is created."""
    return json.dumps({"webhook_id": webhook_id, "event": event}, sort_keys=True)


def post(url: str, secret: str, delivery_id: int, kind: str, body: str) -> Outcome:
    """Send one signed delivery and report what happened (never raises for the network)."""
    data = body.encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        signing.DELIVERY_HEADER: str(delivery_id),
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, data),
        signing.EVENT_HEADER: kind,
    }
    try:
        # No redirects: a signed body must reach the URL the owner registered.
        response = httpx.post(url, content=data, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
    error = None if 200 <= response.status_code < 300 else response.text[:MAX_ERROR]
    return Outcome(response.status_code, error)


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures, with jitter so that
    retries of many deliveries do not arrive at a receiver all at once."""
    delay = min(MAX_DELAY, base * 2.0 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.0)


def settle(
    conn: Connection,
    delivery_id: int,
    attempts: int,
    outcome: Outcome,
    *,
    retry_base: float,
    max_attempts: int,
) -> None:
    """Write an attempt's outcome: delivered, failed for good, or due again later."""
    now = utcnow()
    values: dict[str, Any] = {"response_status": outcome.status, "error": outcome.error}
    if outcome.ok:
        values.update(status="delivered", delivered_at=now, next_attempt_at=now)
    elif attempts >= max_attempts:
        values.update(status="failed", next_attempt_at=now)
    else:
        delay = backoff(attempts, retry_base)
        values.update(status="pending", next_attempt_at=now + timedelta(seconds=delay))
    conn.execute(sa.update(t.webhook_deliveries).where(_D.id == delivery_id).values(**values))


class Dispatcher:
    """Fans events out to webhooks and delivers them; one per server process."""

    def __init__(
        self,
        db: Database,
        *,
        retry_base: float = 5.0,
        max_attempts: int = 12,
        poll: float = 0.5,
    ) -> None:
        self.db = db
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Deliver in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="modelreg-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt in progress; unfinished deliveries stay in the database."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # keep delivering after a database hiccup; it is logged
                log.exception("webhook delivery round failed")
                busy = 0
            if not busy:
                self._stop.wait(self.poll)

    def run_once(self) -> int:
        """One round: fan out new events, then send what is due. Returns attempts made."""
        self.fan_out()
        sent = 0
        for delivery in self.claim():
            if self._stop.is_set():
                break  # the claim expires and another process picks it up
            outcome = post(
                delivery.url, delivery.secret, delivery.id, delivery.kind, delivery.payload
            )
            with self.db.write() as conn:
                settle(
                    conn,
                    delivery.id,
                    delivery.attempts,
                    outcome,
                    retry_base=self.retry_base,
                    max_attempts=self.max_attempts,
                )
            sent += 1
        return sent

    def fan_out(self) -> int:
        """Turn events past each webhook's cursor into deliveries; returns how many."""
        with self.db.read() as conn:
            newest = conn.execute(sa.select(sa.func.max(_E.id))).scalar() or 0
            behind = conn.execute(sa.select(_W.id).where(_W.cursor < newest).limit(1)).first()
        if behind is None:  # the common case costs one read, no write lock
            return 0
        created = 0
        with self.db.write() as conn:
            hooks = conn.execute(
                sa.select(t.webhooks)
                .where(_W.cursor < newest)
                .order_by(_W.id)
                .with_for_update(skip_locked=True)
            ).all()
            now = utcnow()
            for hook in hooks:
                created += self._fan_out_one(conn, hook, newest, now)
        return created

    def _fan_out_one(self, conn: Connection, hook: Any, newest: int, now: datetime) -> int:
        query = sa.select(t.events).where(
            _E.id > hook.cursor, _E.id <= newest, _E.model_name.is_not(None), _E.model_name != ""
        )
        if hook.model_name is not None:
            query = query.where(_E.model_name == hook.model_name)
        kinds = json.loads(hook.kinds)
        if kinds:
            query = query.where(_E.kind.in_(kinds))
        rows = conn.execute(query.order_by(_E.id).limit(FAN_OUT_BATCH)).all()
        if rows:
            conn.execute(
                sa.insert(t.webhook_deliveries),
                [
                    {
                        "webhook_id": hook.id,
                        "event_id": row.id,
                        "kind": row.kind,
                        "payload": payload(hook.id, to_event(row).to_dict()),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for row in rows
                ],
            )
        cursor = rows[-1].id if len(rows) == FAN_OUT_BATCH else newest
        conn.execute(sa.update(t.webhooks).where(_W.id == hook.id).values(cursor=cursor))
        return len(rows)

    def claim(self) -> list[Any]:
        """Reserve due deliveries for this process (one lease each) and return them."""
        now = utcnow()
        due = sa.and_(_D.status == "pending", _D.next_attempt_at <= now)
        with self.db.read() as conn:
            if conn.execute(sa.select(_D.id).where(due).limit(1)).first() is None:
                return []
        with self.db.write() as conn:
            ids = list(
                conn.execute(
                    sa.select(_D.id)
                    .where(due)
                    .order_by(_D.next_attempt_at, _D.id)
                    .limit(CLAIM_BATCH)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not ids:
                return []
            conn.execute(
                sa.update(t.webhook_deliveries)
                .where(_D.id.in_(ids))
                .values(
                    attempts=_D.attempts + 1,
                    last_attempt_at=now,
                    next_attempt_at=now + timedelta(seconds=LEASE),
                )
            )
            return list(
                conn.execute(
                    sa.select(_D.id, _D.kind, _D.payload, _D.attempts, _W.url, _W.secret)
                    .join(t.webhooks, _W.id == _D.webhook_id)
                    .where(_D.id.in_(ids))
                    .order_by(_D.id)
                ).all()
            )
