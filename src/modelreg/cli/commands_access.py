"""Commands on who may act: identity, principals and their roles on models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer

from modelreg.cli import output
from modelreg.cli.state import JsonFlag, get_state
from modelreg.domain.governance import GrantInfo, PrincipalInfo

PANEL = "Governance"

PrincipalName = Annotated[
    str,
    typer.Argument(metavar="NAME", help="A user or service account name.", show_default=False),
]
ModelPattern = Annotated[
    str,
    typer.Option(
        "--model", help="Models the grant covers: '*', a model name, or a prefix like 'fraud-*'."
    ),
]

principal_app = typer.Typer(help="Users and service accounts.", no_args_is_help=True)
grant_app = typer.Typer(help="Roles of principals on models.", no_args_is_help=True)


# ---------------------------------------------------------------- identity


def whoami(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Show who the registry takes you for, and your roles."""
    state = get_state(ctx)
    me = state.registry.whoami()
    if state.wants_json(json_flag):
        output.print_json(me)
        return
    output.line(f"{me['name']} ({me['kind']}), authorization {me['authorization']}")
    if me["grants"] is None:
        output.line("every permission on every model")
    elif not me["grants"]:
        output.line("no roles")
    else:
        grid = output.table("role", "model")
        for grant in me["grants"]:
            output.add_row(grid, [grant["role"], grant["model"]])
        output.show(grid)


# -------------------------------------------------------------- principals


@principal_app.command("create")
def principal_create(
    ctx: typer.Context,
    name: PrincipalName,
    service: Annotated[
        bool, typer.Option("--service", help="A service account (e.g. a CI pipeline).")
    ] = False,
    description: Annotated[str, typer.Option("--description", help="Who or what it is.")] = "",
    json_flag: JsonFlag = False,
) -> None:
    """Create a user, or with --service a service account (admin)."""
    state = get_state(ctx)
    kind = "service" if service else "user"
    created = state.registry.create_principal(name, kind=kind, description=description)
    output.entity(
        created,
        json_output=state.wants_json(json_flag),
        render=lambda p: output.line(f"created {p.kind} {p.name}"),
    )


@principal_app.command("list")
def principal_list(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List every principal with its roles (admin)."""
    state = get_state(ctx)
    principals = state.registry.list_principals()
    if state.wants_json(json_flag):
        output.print_json([p.to_dict() for p in principals])
        return
    grid = output.table("name", "kind", "status", "roles", "description", no_wrap=("name",))
    for p in principals:
        roles = [f"{g.role} on {g.model}" for g in p.grants]
        output.add_row(grid, [p.name, p.kind, _status(p), roles, p.description])
    output.show(grid)


@principal_app.command("show")
def principal_show(ctx: typer.Context, name: PrincipalName, json_flag: JsonFlag = False) -> None:
    """Show one principal and its roles (admin, or yourself)."""
    state = get_state(ctx)
    principal = state.registry.get_principal(name)
    output.entity(principal, json_output=state.wants_json(json_flag), render=_principal)


@principal_app.command("disable")
def principal_disable(ctx: typer.Context, name: PrincipalName, json_flag: JsonFlag = False) -> None:
    """Disable a principal: its tokens stop working at once (admin)."""
    state = get_state(ctx)
    principal = state.registry.disable_principal(name)
    output.entity(
        principal,
        json_output=state.wants_json(json_flag),
        render=lambda p: output.line(f"disabled {p.name}"),
    )


@principal_app.command("enable")
def principal_enable(ctx: typer.Context, name: PrincipalName, json_flag: JsonFlag = False) -> None:
    """Enable a disabled principal again (admin)."""
    state = get_state(ctx)
    principal = state.registry.enable_principal(name)
    output.entity(
        principal,
        json_output=state.wants_json(json_flag),
        render=lambda p: output.line(f"enabled {p.name}"),
    )


def _status(p: PrincipalInfo) -> str:
    return "disabled" if p.disabled else "active"


def _principal(p: PrincipalInfo) -> None:
    head = output.table("field", "value", title=p.name)
    output.add_row(head, ["kind", p.kind])
    output.add_row(head, ["status", _status(p)])
    output.add_row(head, ["description", p.description])
    output.add_row(head, ["created", f"{output.when(p.created_at)} by {p.created_by}"])
    output.show(head)
    _grants(p.grants)


# ------------------------------------------------------------------ grants


@grant_app.command("add")
def grant_add(
    ctx: typer.Context,
    principal: Annotated[
        str, typer.Argument(metavar="PRINCIPAL", help="Who gets the role.", show_default=False)
    ],
    role: Annotated[
        str,
        typer.Argument(
            metavar="ROLE", help="viewer, contributor, reviewer or admin.", show_default=False
        ),
    ],
    model: ModelPattern = "*",
    json_flag: JsonFlag = False,
) -> None:
    """Give a principal a role on the models a pattern covers, replacing its role there
    (admin)."""
    state = get_state(ctx)
    grant = state.registry.grant(principal, role, model)
    output.entity(
        grant,
        json_output=state.wants_json(json_flag),
        render=lambda g: output.line(f"{g.principal} is {g.role} on {g.model}"),
    )


@grant_app.command("rm")
def grant_rm(
    ctx: typer.Context,
    principal: Annotated[
        str, typer.Argument(metavar="PRINCIPAL", help="Whose role to remove.", show_default=False)
    ],
    model: ModelPattern = "*",
) -> None:
    """Remove a principal's role on a pattern (admin)."""
    state = get_state(ctx)
    state.registry.revoke_grant(principal, model)
    state.done(f"removed {principal}'s role on {model}")


@grant_app.command("list")
def grant_list(
    ctx: typer.Context,
    principal: Annotated[
        str | None,
        typer.Argument(
            metavar="[PRINCIPAL]", help="Only this principal's roles.", show_default=False
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """List roles: every principal's (admin), or one principal's."""
    state = get_state(ctx)
    registry = state.registry
    principals = [registry.get_principal(principal)] if principal else registry.list_principals()
    grants = [g for p in principals for g in p.grants]
    if state.wants_json(json_flag):
        output.print_json([g.to_dict() for g in grants])
    else:
        _grants(grants)


def _grants(grants: Iterable[GrantInfo]) -> None:
    grid = output.table("principal", "role", "model", "granted", "by", no_wrap=("granted",))
    for g in grants:
        output.add_row(grid, [g.principal, g.role, g.model, g.created_at, g.created_by])
    output.show(grid)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command(rich_help_panel=PANEL)(whoami)
    app.add_typer(principal_app, name="principal", rich_help_panel=PANEL)
    app.add_typer(grant_app, name="grant", rich_help_panel=PANEL)
