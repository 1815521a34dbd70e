"""Commands on the event feed and webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from modelreg.cli import output, views
from modelreg.cli.state import AllPages, JsonFlag, PageSize, PageToken, collect, get_state
from modelreg.events.feed import follow
from modelreg.protocol import Registry

PANEL = "Events and deployments"

events_app = typer.Typer(help="The feed of every model change.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Signed HTTP deliveries of events.", no_args_is_help=True)

After = Annotated[
    int | None,
    typer.Option(
        "--after", min=0, help="Cursor: the last event id already seen.", show_default=False
    ),
]
ModelFilter = Annotated[
    str | None, typer.Option("--model", "-m", help="Only this model.", show_default=False)
]
Kinds = Annotated[
    list[str] | None,
    typer.Option("--kind", "-k", help="Only this event kind; repeatable.", show_default=False),
]
WebhookId = Annotated[
    int, typer.Argument(metavar="ID", min=1, help="The webhook's id.", show_default=False)
]


@events_app.command("list")
def events_list(
    ctx: typer.Context,
    after: After = None,
    model: ModelFilter = None,
    kind: Kinds = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most N.")] = 100,
    json_flag: JsonFlag = False,
) -> None:
    """Events after a cursor, oldest first, and the cursor to continue from."""
    state = get_state(ctx)
    batch = state.registry.events(after=after or 0, limit=limit, model=model, kinds=kind)
    if state.wants_json(json_flag):
        output.print_json(batch.to_dict())
        return
    views.events(batch.events)
    output.note(f"cursor: {batch.cursor}")


@events_app.command("watch")
def events_watch(
    ctx: typer.Context,
    after: After = None,
    model: ModelFilter = None,
    kind: Kinds = None,
    count: Annotated[
        int | None,
        typer.Option("--count", min=1, help="Exit after this many events.", show_default=False),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Print events as they happen (from --after, else from now on); one JSON object per
    line with --json. Runs until interrupted or --count events."""
    state = get_state(ctx)
    json_output = state.wants_json(json_flag)
    registry: Registry = state.registry
    start = after if after is not None else _now(registry)
    for seen, event in enumerate(follow(registry, after=start, model=model, kinds=kind), 1):
        if json_output:
            output.json_line(event.to_dict())
        else:
            views.event_line(event)
        if count is not None and seen >= count:
            return


def _now(registry: Registry) -> int:
    """The current end of the feed."""
    cursor = 0
    while True:
        batch = registry.events(after=cursor, limit=1000)
        if not batch.events:
            return batch.cursor
        cursor = batch.cursor


@webhooks_app.command("add")
def webhooks_add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="Receiver URL.", show_default=False)],
    kind: Kinds = None,
    model: ModelFilter = None,
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="Signing secret (default: generated).", show_default=False),
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
    json_flag: JsonFlag = False,
) -> None:
    """Register a webhook; prints its signing secret, which is not shown again."""
    state = get_state(ctx)
    hook = state.registry.create_webhook(
        url, kinds=kind, model=model, secret=secret, description=description
    )
    output.entity(
        hook,
        json_output=state.wants_json(json_flag),
        render=lambda h: output.line(f"webhook {h.id} -> {h.url}\nsecret: {h.secret}"),
    )


@webhooks_app.command("list")
def webhooks_list(
    ctx: typer.Context,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """Registered webhooks, newest first."""
    state = get_state(ctx)
    page = state.registry.list_webhooks(page_size=page_size, page_token=page_token)
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.webhooks)


@webhooks_app.command("rm")
def webhooks_rm(ctx: typer.Context, webhook_id: WebhookId) -> None:
    """Delete a webhook and its pending deliveries."""
    state = get_state(ctx)
    state.registry.delete_webhook(webhook_id)
    state.done(f"removed webhook {webhook_id}")


@webhooks_app.command("test")
def webhooks_test(ctx: typer.Context, webhook_id: WebhookId, json_flag: JsonFlag = False) -> None:
    """Send a signed ping now; exit 1 unless the receiver accepted it."""
    state = get_state(ctx)
    result = state.registry.test_webhook(webhook_id)
    output.entity(
        result, json_output=state.wants_json(json_flag), render=lambda d: views.deliveries([d])
    )
    if result.status != "delivered":
        raise typer.Exit(1)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    ctx: typer.Context,
    webhook_id: WebhookId,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """A webhook's delivery log, newest first."""
    state = get_state(ctx)
    page = state.registry.webhook_deliveries(webhook_id, page_size=page_size, page_token=page_token)
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.deliveries)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(events_app, name="events", rich_help_panel=PANEL)
    app.add_typer(webhooks_app, name="webhooks", rich_help_panel=PANEL)
