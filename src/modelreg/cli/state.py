"""What commands share: the global options, the lazily opened registry, option types
several commands declare alike, paging and confirmation."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import typer

import modelreg
from modelreg.cli import output
from modelreg.domain.entities import Page
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import InvalidArgument
from modelreg.protocol import Registry

T = TypeVar("T")

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")
]
PageSize = Annotated[
    int | None, typer.Option("--page-size", min=1, help="Items per page (default 100).")
]
PageToken = Annotated[
    str | None, typer.Option("--page-token", help="Continue from a previous page's token.")
]
AllPages = Annotated[bool, typer.Option("--all", help="Follow page tokens to the end.")]
OrderBy = Annotated[
    list[str] | None,
    typer.Option("--order-by", help="Sort key, '-' prefix for descending; repeatable."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@dataclass
class State:
    """The global options; the registry is opened on first use and closed on exit."""

    uri: str | None = None
    artifacts: str | None = None
    home: str | None = None
    token: str | None = None
    json: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def registry(self) -> Registry:
        """The registry the options name: embedded, or a server for an http(s) URI."""
        if self._registry is None:
            self._registry = modelreg.connect(
                self.uri, artifacts=self.artifacts, home=self.home, token=self.token
            )
        return self._registry

    def embedded(self, command: str) -> EmbeddedRegistry:
        """The registry, for a command that must run where the database is."""
        registry = self.registry
        if not isinstance(registry, EmbeddedRegistry):
            raise InvalidArgument(
                f"'{command}' works on the registry's database directly: run it on the "
                "server host with the server's MODELREG_URI, not against an http(s) URI"
            )
        return registry

    def wants_json(self, flag: bool) -> bool:
        """JSON output was asked for globally or after the command."""
        return self.json or flag

    def done(self, message: str) -> None:
        """Confirm a change that returns nothing; silent under --json, where the exit
        status says it all and stdout stays parseable."""
        if not self.json:
            output.line(message)

    def close(self) -> None:
        """Release the registry's connections, if it was opened."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def get_state(ctx: typer.Context) -> State:
    """The State the app callback stored on the root context."""
    state = ctx.find_root().obj
    if not isinstance(state, State):
        raise RuntimeError("modelreg commands must run through the modelreg app")
    return state


def collect(page: Page[T], all_pages: bool) -> tuple[list[T], str | None]:
    """A page's items and next token, or every page's items when ``all_pages``."""
    if all_pages:
        return list(page.all()), None
    return list(page.items), page.next_page_token


def confirm(action: str, yes: bool) -> None:
    """Ask before destroying something (``action`` like "delete fraud/3"); without a
    terminal to ask on, scripts must pass ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidArgument(f"will not {action} without confirmation: pass --yes")
    typer.confirm(f"{action[:1].upper()}{action[1:]}?", abort=True)
