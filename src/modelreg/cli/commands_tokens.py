"""Commands on credentials: API tokens, saved logins, and the host-only admin commands
that bootstrap or recover access."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

import modelreg
from modelreg.cli import output
from modelreg.cli.commands_access import PANEL, PrincipalName
from modelreg.cli.state import JsonFlag, State, get_state
from modelreg.client.credentials import forget_token, save_token
from modelreg.config import Config
from modelreg.domain.governance import CreatedToken, PrincipalInfo
from modelreg.errors import Conflict, InvalidArgument, NotFound
from modelreg.service.governance import MAX_TOKEN_LIFETIME
from modelreg.service.transfer import parse_duration

BOOTSTRAP_TOKEN = "bootstrap"

TokenName = Annotated[str, typer.Option("--name", help="A label for the token, e.g. 'ci'.")]
Expires = Annotated[
    str | None,
    typer.Option(
        "--expires",
        help="Lifetime such as 90m, 12h or 30d (at most 5 years); default: never expires.",
        show_default=False,
    ),
]

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
admin_app = typer.Typer(
    help="Bootstrap or recover access, on the server host's database directly.",
    no_args_is_help=True,
)


# ------------------------------------------------------------------ tokens


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    principal: Annotated[
        str | None,
        typer.Option(
            "--principal",
            help="Whose token; default: yours. Others' need admin.",
            show_default=False,
        ),
    ] = None,
    name: TokenName = "",
    expires: Expires = None,
    json_flag: JsonFlag = False,
) -> None:
    """Create an API token and print its secret, which is shown only this once."""
    state = get_state(ctx)
    created = state.registry.create_token(principal, name=name, expires_in=expires)
    _print_secret(created, state.wants_json(json_flag))


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    principal: Annotated[
        str | None,
        typer.Option(
            "--principal",
            help="Whose tokens; default: yours. Others' need admin.",
            show_default=False,
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """List tokens, newest first; secrets are never shown."""
    state = get_state(ctx)
    tokens = state.registry.list_tokens(principal)
    if state.wants_json(json_flag):
        output.print_json([t.to_dict() for t in tokens])
        return
    grid = output.table(
        "id", "name", "principal", "created", "by", "expires", "revoked", no_wrap=("id",)
    )
    for t in tokens:
        output.add_row(
            grid,
            [t.id, t.name, t.principal, t.created_at, t.created_by, t.expires_at, t.revoked_at],
        )
    output.show(grid)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[
        str,
        typer.Argument(metavar="TOKEN_ID", help="The id `token list` shows.", show_default=False),
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Revoke a token at once (its owner, or an admin)."""
    state = get_state(ctx)
    info = state.registry.revoke_token(token_id)
    output.entity(
        info,
        json_output=state.wants_json(json_flag),
        render=lambda t: output.line(f"revoked token {t.id} of {t.principal}"),
    )


def _print_secret(created: CreatedToken, json_output: bool) -> None:
    """The secret alone on stdout (so ``$(modelreg token create)`` captures it), or the
    whole token under --json; the warning goes to stderr either way."""
    if json_output:
        output.print_json(created.to_dict())
    else:
        output.line(created.secret)
    info = created.info
    expiry = f"expires {output.when(info.expires_at)}" if info.expires_at else "never expires"
    output.stderr.print(
        Text(
            f"token {info.id} for {info.principal} ({expiry}): copy it now, "
            "it will not be shown again",
            style="yellow",
        ),
        soft_wrap=True,
    )


# ------------------------------------------------------------ saved logins


def login(
    ctx: typer.Context,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="The token to save; default: asked for without echo (or read from stdin "
            "when it is not a terminal).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Save a token for the --uri server, after checking that the server accepts it."""
    state = get_state(ctx)
    url = _server_url(state, "login")
    secret = (token if token is not None else _ask_token()).strip()
    if not secret:
        raise InvalidArgument("the token is empty")
    with modelreg.RemoteRegistry(url, token=secret) as server:
        me = server.whoami()
    if me["authorization"] != "on":
        raise InvalidArgument(
            f"{url} runs with authentication off: it does not check tokens, so this one "
            "cannot be verified and was not saved"
        )
    path = _credentials(state)
    save_token(path, url, secret)
    state.done(f"logged in to {url} as {me['name']} (token saved in {path})")


def logout(ctx: typer.Context) -> None:
    """Forget the token saved for the --uri server."""
    state = get_state(ctx)
    url = _server_url(state, "logout")
    path = _credentials(state)
    if forget_token(path, url):
        state.done(f"logged out of {url}")
    else:
        state.done(f"no token was saved for {url}")


def _server_url(state: State, command: str) -> str:
    url = state.uri or ""
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(
            f"'{command}' needs a server: pass --uri http(s)://host:port or set MODELREG_URI"
        )
    return url


def _credentials(state: State) -> str:
    return str(Config.load(uri=state.uri, home=state.home).credentials)


def _ask_token() -> str:
    if sys.stdin.isatty():
        answer: str = typer.prompt("Token", hide_input=True)
        return answer
    # Lets scripts pipe a token in without putting it on the command line.
    return sys.stdin.readline()


# ------------------------------------------------------------------- admin


@admin_app.command("bootstrap")
def admin_bootstrap(
    ctx: typer.Context,
    name: PrincipalName,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="NAME exists already: enable it, make it admin on every model and issue "
            "a new token anyway.",
        ),
    ] = False,
    expires: Expires = None,
    json_flag: JsonFlag = False,
) -> None:
    """Create the first admin: user NAME with admin on every model, and a token printed
    once (host only: works on the database, never over HTTP)."""
    state = get_state(ctx)
    registry = state.embedded("admin bootstrap")
    # Checked before anything is created, so a bad lifetime leaves no half-made admin.
    lifetime = parse_duration(expires) if expires is not None else None
    if lifetime is not None and not 0 < lifetime <= MAX_TOKEN_LIFETIME:
        raise InvalidArgument("--expires must be between 1 second and 5 years")
    try:
        existing: PrincipalInfo | None = registry.get_principal(name)
    except NotFound:
        existing = None
    if existing is None:
        registry.create_principal(name, description="first admin, bootstrapped on the host")
    elif not force:
        already = "is already an admin" if _global_admin(existing) else "already exists"
        raise Conflict(
            f"principal {name!r} {already}: pass --force to issue it a new token "
            "(its other tokens stay valid), or use `modelreg admin token`",
            principal=name,
        )
    elif existing.disabled:
        registry.enable_principal(name)
    if existing is None or not _global_admin(existing):
        registry.grant(name, "admin", "*")
    created = registry.create_token(name, name=BOOTSTRAP_TOKEN, expires_in=lifetime)
    _print_secret(created, state.wants_json(json_flag))


def _global_admin(principal: PrincipalInfo) -> bool:
    return any(g.role == "admin" and g.model == "*" for g in principal.grants)


@admin_app.command("token")
def admin_token(
    ctx: typer.Context,
    name: PrincipalName,
    token_name: TokenName = "",
    expires: Expires = None,
    json_flag: JsonFlag = False,
) -> None:
    """Issue a token for any principal, e.g. to recover lost access (host only)."""
    state = get_state(ctx)
    registry = state.embedded("admin token")
    created = registry.create_token(name, name=token_name, expires_in=expires)
    _print_secret(created, state.wants_json(json_flag))


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(token_app, name="token", rich_help_panel=PANEL)
    app.command(rich_help_panel=PANEL)(login)
    app.command(rich_help_panel=PANEL)(logout)
    app.add_typer(admin_app, name="admin", rich_help_panel=PANEL)
