"""Commands on environments and deployment records: what runs where."""

from __future__ import annotations

from typing import Annotated

import typer

from modelreg.cli import output, views
from modelreg.cli.state import AllPages, JsonFlag, PageSize, PageToken, collect, get_state
from modelreg.domain.deployments import STATUSES

PANEL = "Events and deployments"

env_app = typer.Typer(help="Deployment environments (prod-eu, shadow …).", no_args_is_help=True)
deploy_app = typer.Typer(help="Records of which version runs where.", no_args_is_help=True)

Environment = Annotated[
    str, typer.Argument(metavar="ENV", help="Environment, e.g. prod-eu.", show_default=False)
]
ModelFilter = Annotated[
    str | None, typer.Option("--model", "-m", help="Only this model.", show_default=False)
]
EnvFilter = Annotated[
    str | None, typer.Option("--env", "-e", help="Only this environment.", show_default=False)
]


@env_app.command("create")
def env_create(
    ctx: typer.Context,
    name: Environment,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is.")] = "",
    json_flag: JsonFlag = False,
) -> None:
    """Create a deployment environment."""
    state = get_state(ctx)
    env = state.registry.create_environment(name, description=description)
    output.entity(
        env,
        json_output=state.wants_json(json_flag),
        render=lambda e: output.line(f"created environment {e.name}"),
    )


@env_app.command("list")
def env_list(
    ctx: typer.Context,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """Every environment, newest first."""
    state = get_state(ctx)
    page = state.registry.list_environments(page_size=page_size, page_token=page_token)
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.environments)


@deploy_app.command("record")
def deploy_record(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version deployed.", show_default=False)
    ],
    environment: Environment,
    status: Annotated[
        str, typer.Option("--status", help=f"One of: {', '.join(STATUSES)}.")
    ] = "deployed",
    note: Annotated[str, typer.Option("--note", help="Free text, e.g. a rollout id.")] = "",
    json_flag: JsonFlag = False,
) -> None:
    """Record that REF was deployed to ENV (emits a deployment_recorded event)."""
    state = get_state(ctx)
    record = state.registry.record_deployment(ref, environment, status=status, note=note)
    output.entity(
        record,
        json_output=state.wants_json(json_flag),
        render=lambda d: output.line(f"{d.ref} {d.status} in {d.environment}"),
    )


@deploy_app.command("where")
def deploy_where(
    ctx: typer.Context,
    model: ModelFilter = None,
    env: EnvFilter = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """What runs where: the newest record per environment and model."""
    _deployments(ctx, model, env, True, page_size, page_token, all_pages, json_flag)


@deploy_app.command("log")
def deploy_log(
    ctx: typer.Context,
    model: ModelFilter = None,
    env: EnvFilter = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """Every deployment record, newest first."""
    _deployments(ctx, model, env, False, page_size, page_token, all_pages, json_flag)


def _deployments(
    ctx: typer.Context,
    model: str | None,
    env: str | None,
    current: bool,
    page_size: int | None,
    page_token: str | None,
    all_pages: bool,
    json_flag: bool,
) -> None:
    state = get_state(ctx)
    page = state.registry.list_deployments(
        model=model,
        environment=env,
        current=current,
        page_size=page_size,
        page_token=page_token,
    )
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.deployments)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(env_app, name="env", rich_help_panel=PANEL)
    app.add_typer(deploy_app, name="deploy", rich_help_panel=PANEL)
