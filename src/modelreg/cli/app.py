"""The ``modelreg`` application: global options, command registration and the one place
where registry errors become an exit status."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from modelreg.cli import (
    commands_access,
    commands_agent,
    commands_audit,
    commands_deploy,
    commands_events,
    commands_gates,
    commands_models,
    commands_requests,
    commands_server,
    commands_stages,
    commands_storage,
    commands_tokens,
    commands_versions,
)
from modelreg.cli.state import State
from modelreg.errors import ModelregError

app = typer.Typer(
    name="modelreg",
    help="A model registry: immutable verified versions, lifecycle stages, lineage and search.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def configure(
    ctx: typer.Context,
    uri: Annotated[
        str | None,
        typer.Option(
            "--uri",
            envvar="MODELREG_URI",
            help="Registry: a server (http://host:port) or a metadata database "
            "(sqlite:///… or postgresql://…); default: the embedded registry in --home.",
            show_default=False,
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            envvar="MODELREG_ARTIFACTS",
            help="Blob store: a folder or s3://bucket/prefix; default: blobs/ in --home.",
            show_default=False,
        ),
    ] = None,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            envvar="MODELREG_HOME",
            help="Folder of the embedded registry; default: ~/.modelreg.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MODELREG_TOKEN",
            help="API token for a remote registry.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON output for every command.")
    ] = False,
) -> None:
    """Keep the global options; the registry opens only when a command needs it."""
    # The shell leaves "~" alone in quoted values and environment variables.
    home = os.path.expanduser(home) if home is not None else None
    state = State(uri=uri, artifacts=artifacts, home=home, token=token, json=json_output)
    ctx.obj = state
    ctx.call_on_close(state.close)


for module in (
    commands_models,
    commands_versions,
    commands_stages,
    commands_gates,
    commands_storage,
    commands_events,
    commands_deploy,
    commands_agent,
    commands_server,
    commands_access,
    commands_tokens,
    commands_requests,
    commands_audit,
):
    module.register_commands(app)


def main() -> None:
    """Run the CLI: registry errors print one ``error CODE: message`` line and exit 1."""
    try:
        app()
    except ModelregError as exc:
        message = " ".join(exc.message.split())
        sys.stderr.write(f"error {exc.code}: {message}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
