"""Printing: JSON for scripts, Rich tables and lines for people, progress bars on stderr.

Everything that comes from users (names, descriptions, tags) is printed as plain text,
never parsed as Rich markup.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from rich.console import Console, RenderableType
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from modelreg.artifacts.hashing import Progress as ProgressCallback


def _width(stream: Any) -> int | None:
    # Piped output has no terminal width; Rich would assume 80 columns and squeeze tables
    # into unreadable wrapped cells. COLUMNS still wins when set.
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 200


stdout = Console(highlight=False, width=_width(sys.stdout))
stderr = Console(stderr=True, highlight=False, width=_width(sys.stderr))


class Serialisable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=Serialisable)


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    stdout.out(json.dumps(data, indent=2), highlight=False)


def json_line(data: Any) -> None:
    """One compact JSON document on one line of stdout, flushed (for streams)."""
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def print_page(items: Iterable[dict[str, Any]], next_page_token: str | None) -> None:
    """A listing as ``{"items": [...], "next_page_token": ...}``."""
    print_json({"items": list(items), "next_page_token": next_page_token})


def listing(
    items: list[S],
    next_page_token: str | None,
    *,
    json_output: bool,
    render: Callable[[list[S]], None],
) -> None:
    """A page of entities: JSON with its token, or a table plus a hint to the next page."""
    if json_output:
        print_page((item.to_dict() for item in items), next_page_token)
        return
    render(items)
    if next_page_token is not None:
        note(f"more: --page-token {next_page_token}")


def entity(item: S, *, json_output: bool, render: Callable[[S], None]) -> None:
    """One entity: its JSON form, or whatever ``render`` prints for a person."""
    if json_output:
        print_json(item.to_dict())
    else:
        render(item)


def line(text: str, style: str | None = None) -> None:
    """A line of plain text on stdout."""
    stdout.print(Text(text, style=style or ""), soft_wrap=True)


def note(text: str) -> None:
    """A hint for people on stderr, kept out of the way of piped output."""
    stderr.print(Text(text, style="dim"), soft_wrap=True)


def show(renderable: RenderableType) -> None:
    """A table or other Rich renderable on stdout."""
    stdout.print(renderable)


def table(*columns: str, title: str | None = None, no_wrap: Collection[str] = ()) -> Table:
    """A table with the house style; add rows of :func:`cell` values. Columns named in
    ``no_wrap`` keep their values on one line."""
    grid = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for column in columns:
        # Fold rather than truncate: digests and refs must survive a narrow or piped output.
        grid.add_column(column, overflow="fold", no_wrap=column in no_wrap, min_width=len(column))
    return grid


def cell(value: object) -> Text:
    """A table cell: strings as given, other scalars as JSON, None as a dim dash."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, Text):
        return value
    if isinstance(value, datetime):
        return Text(when(value))
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, list | tuple):
        return Text(", ".join(map(str, value))) if value else cell(None)
    return Text(json.dumps(value))


def add_row(grid: Table, values: Sequence[object]) -> None:
    grid.add_row(*(cell(v) for v in values))


def when(value: datetime) -> str:
    """A UTC timestamp to the second."""
    if value.tzinfo is None:  # the store hands back UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def size(n: int) -> str:
    """A byte count for people (``1.2 MB``)."""
    return decimal(n)


def progress_enabled(json_output: bool) -> bool:
    """Bars only for a person watching: not with --json, not when stderr is redirected."""
    return not json_output and stderr.is_terminal


@contextlib.contextmanager
def transfer_progress(
    description: str, total: int | None, *, enabled: bool
) -> Iterator[ProgressCallback | None]:
    """A byte progress bar on stderr; yields the callback the SDK calls, or None."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        yield advance
