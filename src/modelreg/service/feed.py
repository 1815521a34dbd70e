"""The event feed: the timeline of every model, read with a cursor (the event id).

Event ids are handed out in commit order (every change appends under one registry-wide
lock), so a reader that has seen id N has seen every event up to N: the id is a safe
cursor. Events not about a model (registry settings, environments) stay out of the feed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.entities import EventBatch
from modelreg.domain.names import validate_model_name
from modelreg.errors import InvalidArgument
from modelreg.service.authz import read_scope, require
from modelreg.service.common import ServiceBase
from modelreg.service.events import to_event
from modelreg.store import tables as t

MAX_FEED_LIMIT = 1000
DEFAULT_FEED_LIMIT = 100
MAX_WAIT = 60.0  # seconds a long poll may hold a request
# How often a waiting reader looks again: a cheap indexed query, and new events reach
# waiting readers within this delay, from any process or replica.
FEED_POLL = 0.25


def check_feed_args(
    after: int, limit: int | None, model: str | None, kinds: Sequence[str] | None
) -> tuple[int, list[str]]:
    """Validated feed arguments: the limit, and the kinds as a list."""
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= 2**62:
        raise InvalidArgument(f"after must be an event id (an integer >= 0), not {after!r}")
    size = DEFAULT_FEED_LIMIT if limit is None else limit
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FEED_LIMIT:
        raise InvalidArgument(f"limit must be between 1 and {MAX_FEED_LIMIT}, not {limit!r}")
    if model is not None:
        validate_model_name(model)
    if isinstance(kinds, str):
        kinds = [kinds]
    checked = list(kinds or [])
    if not all(isinstance(k, str) and k for k in checked):
        raise InvalidArgument("kinds must be a list of event kinds")
    return size, checked


def check_wait(wait: float) -> float:
    """A long-poll duration: 0 to MAX_WAIT seconds."""
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT:
        raise InvalidArgument(f"wait must be between 0 and {MAX_WAIT:g} seconds, not {wait!r}")
    return float(wait)


class FeedService(ServiceBase):
    """Reading the timeline of every model after a cursor."""

    def events(
        self,
        actor: Principal,
        *,
        after: int = 0,
        limit: int | None = None,
        model: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> EventBatch:
        """Model events with an id above ``after``, oldest first; at once, without waiting."""
        size, checked = check_feed_args(after, limit, model, kinds)
        if model is not None:
            require(actor, Permission.READ, model, f"read the events of {model!r}")
        e = t.events.c
        scope = read_scope(actor, e.model_name)
        with self.db.read() as conn:
            # The bound first: on PostgreSQL each statement sees the newest commits, and an
            # event committed between the two must not be skipped by the cursor.
            newest = conn.execute(sa.select(sa.func.max(e.id))).scalar() or 0
            query = sa.select(t.events).where(
                e.id > after, e.id <= newest, e.model_name.is_not(None), e.model_name != ""
            )
            if model is not None:
                query = query.where(e.model_name == model)
            if scope is not None:
                query = query.where(scope)
            if checked:
                query = query.where(e.kind.in_(checked))
            rows = conn.execute(query.order_by(e.id).limit(size)).all()
        events = [to_event(r) for r in rows]
        cursor = events[-1].id if len(events) == size else max(after, newest)
        return EventBatch(events, cursor)
