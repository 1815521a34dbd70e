"""Commands on registered models: list, create, show, update, delete, list versions."""

from __future__ import annotations

from typing import Annotated

import typer

from modelreg.cli import output, views
from modelreg.cli.parsing import parse_tags
from modelreg.cli.state import (
    AllPages,
    JsonFlag,
    OrderBy,
    PageSize,
    PageToken,
    Yes,
    collect,
    confirm,
    get_state,
)

PANEL = "Models"
Name = Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)]

model_app = typer.Typer(help="Show, update or delete one model.", no_args_is_help=True)


def models(
    ctx: typer.Context,
    filter: Annotated[
        str | None,
        typer.Option("--filter", help="e.g. \"name LIKE 'fraud%' AND tags.team = 'risk'\"."),
    ] = None,
    order_by: OrderBy = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """List models with their latest version, stage holders and aliases."""
    state = get_state(ctx)
    page = state.registry.search_models(
        filter, order_by=order_by, page_size=page_size, page_token=page_token
    )
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.models)


def create(
    ctx: typer.Context,
    name: Name,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE; repeatable.")
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Create a model (registering a version also creates its model)."""
    state = get_state(ctx)
    model = state.registry.create_model(name, description=description, tags=parse_tags(tag or []))
    output.entity(
        model,
        json_output=state.wants_json(json_flag),
        render=lambda model: output.line(f"created model {model.name}"),
    )


@model_app.command("show")
def model_show(ctx: typer.Context, name: Name, json_flag: JsonFlag = False) -> None:
    """Show a model's description, tags, latest version, stage holders and aliases."""
    state = get_state(ctx)
    model = state.registry.get_model(name)
    output.entity(model, json_output=state.wants_json(json_flag), render=views.model)


@model_app.command("update")
def model_update(
    ctx: typer.Context,
    name: Name,
    description: Annotated[
        str, typer.Option("--description", "-d", help="The new description.", show_default=False)
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Change a model's description."""
    state = get_state(ctx)
    model = state.registry.update_model(name, description=description)
    output.entity(
        model,
        json_output=state.wants_json(json_flag),
        render=lambda model: output.line(f"updated model {model.name}"),
    )


@model_app.command("delete")
def model_delete(
    ctx: typer.Context,
    name: Name,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even while a version is in production.")
    ] = False,
    yes: Yes = False,
) -> None:
    """Delete a model and all its versions (their blobs stay until `gc`)."""
    state = get_state(ctx)
    model = state.registry.get_model(name)
    confirm(f"delete model {model.name} and all its versions", yes)
    state.registry.delete_model(name, force=force)
    state.done(f"deleted model {name}")


def versions(
    ctx: typer.Context,
    name: Name,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """List a model's versions, newest first."""
    state = get_state(ctx)
    page = state.registry.list_versions(name, page_size=page_size, page_token=page_token)
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.versions)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command(rich_help_panel=PANEL)(models)
    app.command(rich_help_panel=PANEL)(create)
    app.add_typer(model_app, name="model", rich_help_panel=PANEL)
    app.command(rich_help_panel=PANEL)(versions)
