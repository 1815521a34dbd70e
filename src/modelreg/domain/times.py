"""Timestamps in their JSON form, and back."""

from __future__ import annotations

from datetime import datetime

import orjson


def iso(value: datetime) -> str:
    """``value.isoformat()``, character for character, at a third of the cost.

    A page of a hundred models carries two hundred timestamps; on an aware datetime
    ``isoformat`` spends most of its time formatting the offset, which orjson does in
    native code with the same result.
    """
    return orjson.dumps(value)[1:-1].decode()


def iso_or_none(value: datetime | None) -> str | None:
    """``iso(value)``, or None for None."""
    return iso(value) if value is not None else None


def from_iso_or_none(text: str | None) -> datetime | None:
    """The inverse of ``iso_or_none``."""
    return datetime.fromisoformat(text) if text is not None else None
