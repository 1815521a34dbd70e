"""Commands on promotion gates: show, set and check the policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelreg.cli import output, views
from modelreg.cli.state import JsonFlag, get_state
from modelreg.errors import InvalidArgument

PANEL = "Stages and labels"

gates_app = typer.Typer(
    help="Promotion gates: rules a version must meet to enter a stage.", no_args_is_help=True
)
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="A model's own policy (default: the registry's).", show_default=False
    ),
]


@gates_app.command("show")
def gates_show(ctx: typer.Context, model: ModelOption = None, json_flag: JsonFlag = False) -> None:
    """Show the current gate policy and its revision."""
    state = get_state(ctx)
    policy = state.registry.get_gates(model)
    output.entity(policy, json_output=state.wants_json(json_flag), render=views.gate_policy)


@gates_app.command("set")
def gates_set(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="YAML or JSON: stage -> require/rules.", show_default=False
        ),
    ],
    model: ModelOption = None,
    json_flag: JsonFlag = False,
) -> None:
    """Replace the gate policy with one read from FILE (a new revision, recorded)."""
    state = get_state(ctx)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read {file}: {exc}") from None
    policy = state.registry.set_gates(text, model=model)
    output.entity(
        policy,
        json_output=state.wants_json(json_flag),
        render=lambda p: output.line(
            f"gates of {p.model or 'the registry'} set (revision {p.revision})"
        ),
    )


@gates_app.command("check")
def gates_check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The candidate.", show_default=False)],
    stage: Annotated[
        str, typer.Argument(metavar="STAGE", help="The stage it would enter.", show_default=False)
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Evaluate the gate REF would meet entering STAGE; exit 1 if it fails."""
    state = get_state(ctx)
    evaluation = state.registry.check_gates(ref, stage)
    output.entity(evaluation, json_output=state.wants_json(json_flag), render=views.gate)
    if not evaluation.passed:
        raise typer.Exit(1)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(gates_app, name="gates", rich_help_panel=PANEL)
