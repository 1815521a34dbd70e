"""Timestamps keep isoformat's exact text: clients and the audit trail parse it back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from modelreg.domain.times import from_iso_or_none, iso, iso_or_none

OFFSETS = st.sampled_from(
    [None, timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@given(st.datetimes(min_value=datetime(1, 1, 1, 12), max_value=datetime(9999, 12, 30)), OFFSETS)
def test_iso_is_isoformat(value: datetime, tz: timezone | None) -> None:
    value = value.replace(tzinfo=tz)
    assert iso(value) == value.isoformat()
    assert from_iso_or_none(iso_or_none(value)) == value


def test_whole_seconds_and_none() -> None:
    value = datetime(2026, 11, 26, 22, 58, 30, tzinfo=timezone.utc)
    assert iso(value) == "2026-11-26T22:58:30+00:00"
    assert iso_or_none(None) is None
    assert from_iso_or_none(None) is None


def test_sqlite_text_reads_back_aware() -> None:
    from sqlalchemy.dialects import sqlite

    from modelreg.store.tables import Timestamp

    read = Timestamp.result_processor(sqlite.dialect(), None)
    utc = timezone.utc
    assert read("2026-11-26 22:58:30.123456") == datetime(2026, 11, 26, 22, 58, 30, 123456, utc)
    assert read("2026-11-26 22:58:30") == datetime(2026, 11, 26, 22, 58, 30, tzinfo=utc)
    # Text that names its own offset (written by another tool) keeps it.
    assert read("2026-11-26 23:58:30+01:00") == datetime(2026, 11, 26, 22, 58, 30, tzinfo=utc)
    assert read(None) is None
