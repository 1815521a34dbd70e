"""Commands on bytes and the store itself: pull, verify, gc, schema upgrade, info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelreg.cli import output, views
from modelreg.cli.state import JsonFlag, get_state
from modelreg.embedded import EmbeddedRegistry

PANEL = "Storage"

db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)


def pull(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="NAME/3, NAME@production, NAME@alias …", show_default=False
        ),
    ],
    dest: Annotated[
        Path,
        typer.Argument(metavar="DEST", help="Folder to write the files into.", show_default=False),
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Download a version's files, verifying every byte against its digest."""
    state = get_state(ctx)
    json_output = state.wants_json(json_flag)
    registry = state.registry
    # Pin the version first so a stage or alias moving meanwhile cannot change what the
    # bar's total and the final message describe.
    version = registry.get(ref)
    enabled = output.progress_enabled(json_output)
    with output.transfer_progress(f"pulling {version.ref}", version.size, enabled=enabled) as bar:
        registry.pull(version.ref, dest, progress=bar)
    if json_output:
        output.print_json(version.to_dict())
    else:
        files = output.count(len(version.files), "file")
        output.line(f"pulled {version.ref} to {dest} ({files}, verified)")


def verify(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Re-hash every stored blob; exit status 1 if any is missing or corrupt."""
    state = get_state(ctx)
    json_output = state.wants_json(json_flag)
    registry = state.registry
    total = None
    # A server verifies its own store and reports at the end: no progress to show.
    if isinstance(registry, EmbeddedRegistry) and output.progress_enabled(json_output):
        total = sum(b.size for b in registry.blobs.iter_blobs())
    with output.transfer_progress("verifying", total, enabled=total is not None) as bar:
        report = registry.verify(progress=bar)
    if json_output:
        output.print_json(report.to_dict())
    else:
        views.verify_report(report)
    if not report.ok:
        raise typer.Exit(1)


def gc(
    ctx: typer.Context,
    grace: Annotated[
        str, typer.Option("--grace", help="Keep unreferenced blobs younger than this.")
    ] = "24h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be deleted, delete nothing.")
    ] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Delete blobs that no version references any more."""
    state = get_state(ctx)
    report = state.registry.gc(grace, dry_run=dry_run)
    output.entity(report, json_output=state.wants_json(json_flag), render=views.gc_report)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Apply pending schema migrations and print the schema revision."""
    state = get_state(ctx)
    revision = state.embedded("db upgrade").db.current_revision()  # opening migrates
    if state.wants_json(json_flag):
        output.print_json({"revision": revision})
    else:
        output.line(f"schema at revision {revision}")


def info(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Show where the registry lives and who acts in it."""
    state = get_state(ctx)
    details = state.registry.info()
    if state.wants_json(json_flag):
        output.print_json(details)
        return
    grid = output.table("setting", "value")
    for key, value in details.items():
        output.add_row(grid, [key, value])
    output.show(grid)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    for command in (pull, verify, gc):
        app.command(rich_help_panel=PANEL)(command)
    app.add_typer(db_app, name="db", rich_help_panel=PANEL)
    app.command(rich_help_panel=PANEL)(info)
