"""``modelreg agent``: keep a folder serving the version that holds a stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelreg.agent import Agent
from modelreg.cli import output
from modelreg.cli.state import get_state

PANEL = "Events and deployments"


def agent(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="The model to deploy.")],
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder holding the versions and the `current` link."),
    ],
    environment: Annotated[
        str, typer.Option("--env", "-e", help="Environment the deployments are recorded in.")
    ],
    stage: Annotated[
        str, typer.Option("--stage", "-s", help="The stage to follow.")
    ] = "production",
    wait: Annotated[
        float,
        typer.Option("--wait", min=0.1, max=60, help="Seconds each long poll of the feed waits."),
    ] = 30.0,
    once: Annotated[
        bool,
        typer.Option("--once", help="Reconcile once and exit (status 1 if that failed)."),
    ] = False,
) -> None:
    """Follow the event feed and keep DIR/current on the version in STAGE: pull it
    verified, switch the link atomically, record the deployment. Resumes after a restart."""
    state = get_state(ctx)
    runner = Agent(
        state.registry,
        model=model,
        stage=stage,
        directory=directory,
        environment=environment,
        wait=wait,
        say=output.note,
    )
    if once:
        runner.check_environment()
        if not runner.reconcile():
            raise typer.Exit(1)
        return
    output.note(f"following {model}@{stage} into {directory} for {environment}")
    runner.run()


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command(rich_help_panel=PANEL)(agent)
