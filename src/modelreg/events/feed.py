"""Following the event feed from any Registry, embedded or remote."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from modelreg.domain.entities import HistoryEvent
from modelreg.protocol import Registry

WAIT = 30.0  # seconds each long poll waits before asking again


def follow(
    registry: Registry,
    *,
    after: int = 0,
    model: str | None = None,
    kinds: Sequence[str] | None = None,
    wait: float = WAIT,
) -> Iterator[HistoryEvent]:
    """Yield events after ``after`` as they happen, forever (long polls in a loop).

    Remember the id of the last event handled to resume later without missing any."""
    cursor = after
    while True:
        batch = registry.events(after=cursor, wait=wait, model=model, kinds=kinds)
        yield from batch.events
        cursor = batch.cursor
