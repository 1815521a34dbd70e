"""Commands that move or label versions: transitions, aliases, tags, the lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelreg.cli import output, views
from modelreg.cli.parsing import parse_tags, read_json
from modelreg.cli.state import JsonFlag, get_state
from modelreg.domain.lifecycle import Lifecycle

PANEL = "Stages and labels"
Name = Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)]
Alias = Annotated[
    str, typer.Argument(metavar="ALIAS", help="Alias, e.g. champion.", show_default=False)
]
Ref = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="NAME/3, NAME@stage, NAME@alias, or a bare model NAME.",
        show_default=False,
    ),
]

alias_app = typer.Typer(help="Point NAME@ALIAS at a version.", no_args_is_help=True)
tag_app = typer.Typer(help="Set or remove tags on a model or a version.", no_args_is_help=True)
lifecycle_app = typer.Typer(help="The registry's stages and allowed moves.", no_args_is_help=True)


def transition(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version to move.", show_default=False)
    ],
    stage: Annotated[
        str, typer.Argument(metavar="STAGE", help="Target stage.", show_default=False)
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why, for the history.")] = "",
    override: Annotated[
        bool,
        typer.Option("--override", help="Promote despite a failing gate (needs --reason)."),
    ] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Move a version to another stage, as the lifecycle and promotion gates allow."""
    state = get_state(ctx)
    version = state.registry.transition(ref, stage, reason=reason, override=override)
    output.entity(
        version,
        json_output=state.wants_json(json_flag),
        render=lambda version: output.line(f"{version.ref} is now in {version.stage}"),
    )


@alias_app.command("set")
def alias_set(
    ctx: typer.Context,
    name: Name,
    alias: Alias,
    version: Annotated[
        int, typer.Argument(metavar="VERSION", min=1, help="Version number.", show_default=False)
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Point NAME@ALIAS at version VERSION (moving it if set elsewhere)."""
    state = get_state(ctx)
    target = state.registry.set_alias(name, alias, version)
    output.entity(
        target,
        json_output=state.wants_json(json_flag),
        render=lambda target: output.line(f"{name}@{alias} -> {target.ref}"),
    )


@alias_app.command("rm")
def alias_rm(ctx: typer.Context, name: Name, alias: Alias) -> None:
    """Remove NAME@ALIAS."""
    state = get_state(ctx)
    state.registry.delete_alias(name, alias)
    state.done(f"removed {name}@{alias}")


@tag_app.command("set")
def tag_set(
    ctx: typer.Context,
    ref: Ref,
    pairs: Annotated[
        list[str], typer.Argument(metavar="KEY=VALUE", help="Tags to set.", show_default=False)
    ],
) -> None:
    """Set tags on a model (bare NAME) or a version."""
    state = get_state(ctx)
    tags = parse_tags(pairs)
    state.registry.set_tags(ref, tags)
    state.done(f"tagged {ref}: {', '.join(tags)}")


@tag_app.command("rm")
def tag_rm(
    ctx: typer.Context,
    ref: Ref,
    key: Annotated[str, typer.Argument(metavar="KEY", help="Tag key.", show_default=False)],
) -> None:
    """Remove one tag from a model (bare NAME) or a version."""
    state = get_state(ctx)
    state.registry.delete_tag(ref, key)
    state.done(f"removed tag {key} from {ref}")


@lifecycle_app.command("show")
def lifecycle_show(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Show the stages, allowed moves and exclusive stages."""
    state = get_state(ctx)
    lifecycle = state.registry.get_lifecycle()
    output.entity(lifecycle, json_output=state.wants_json(json_flag), render=views.lifecycle)


@lifecycle_app.command("set")
def lifecycle_set(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="JSON with stages, initial, transitions and exclusive.",
            show_default=False,
        ),
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Replace the lifecycle with one read from a JSON file."""
    state = get_state(ctx)
    lifecycle = state.registry.set_lifecycle(Lifecycle.from_dict(read_json(file)))
    output.entity(
        lifecycle,
        json_output=state.wants_json(json_flag),
        render=lambda lifecycle: output.line(
            f"lifecycle set: stages {', '.join(lifecycle.stages)}"
        ),
    )


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command(rich_help_panel=PANEL)(transition)
    app.add_typer(alias_app, name="alias", rich_help_panel=PANEL)
    app.add_typer(tag_app, name="tag", rich_help_panel=PANEL)
    app.add_typer(lifecycle_app, name="lifecycle", rich_help_panel=PANEL)
