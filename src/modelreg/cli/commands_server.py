"""``modelreg serve``: the HTTP server over the registry the global options name."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from modelreg.cli.state import get_state

PANEL = "Server"


def _default_workers() -> int:
    # One process per core: a worker runs Python on one core at a time.
    return max(1, min(os.cpu_count() or 1, 8))


LOOPBACK = frozenset({"localhost", "::1"})


def resolve_auth(mode: str, host: str) -> str:
    """``auto`` means on, unless the server listens on a loopback address only: anyone
    who can reach a wider address must prove who they are."""
    if mode != "auto":
        return mode
    return "off" if host in LOOPBACK or host.startswith("127.") else "on"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host", envvar="MODELREG_SERVE_HOST", help="Address to listen on (0.0.0.0: all)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", envvar="MODELREG_SERVE_PORT", min=0, max=65535, help="TCP port."),
    ] = 8080,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            envvar="MODELREG_SERVE_WORKERS",
            min=1,
            help="Worker processes (default: one per CPU core, at most 8).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="critical, error, warning, info or debug.")
    ] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = True,
) -> None:
    """Serve the registry over HTTP: REST API under /api/v1, docs at /api/v1/docs,
    /healthz, /readyz and /metrics."""
    from modelreg.server.run import serve as run_server

    state = get_state(ctx)
    # Workers are fresh processes that read their configuration from the environment.
    for name, value in (
        ("MODELREG_URI", state.uri),
        ("MODELREG_ARTIFACTS", state.artifacts),
        ("MODELREG_HOME", state.home),
    ):
        if value is not None:
            os.environ[name] = value
    registry = state.embedded("serve")  # migrates the schema once, before workers start
    location = registry.info()
    auth = resolve_auth(registry.config.auth, host)
    os.environ["MODELREG_AUTH"] = auth
    nobody = auth == "on" and not registry.service.has_principals()
    state.close()
    count = workers or _default_workers()
    typer.echo(
        f"modelreg serving {location['database']} with blobs in {location['artifacts']} "
        f"on http://{host}:{port} ({count} worker{'s' if count > 1 else ''}, "
        f"authentication {auth})",
        err=True,
    )
    if nobody:
        typer.echo(
            "no principal exists yet, so every API request will be refused: create the "
            "first admin on this host with `modelreg admin bootstrap NAME`",
            err=True,
        )
    run_server(
        host=host, port=port, workers=count, log_level=log_level.lower(), access_log=access_log
    )


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command(rich_help_panel=PANEL)(serve)
