"""Every CLI command is documented in docs/cli.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from modelreg.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield " ".join(prefix)
        return
    for name, sub in subcommands.items():
        yield from _commands(sub, (*prefix, name))


def test_every_command_is_documented() -> None:
    text = DOC.read_text()
    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 20
    missing = [c for c in commands if f"`modelreg {c}" not in text]
    assert missing == []
