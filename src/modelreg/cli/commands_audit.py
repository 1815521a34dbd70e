"""Commands on the audit log: the hash-chained record of every change."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from itertools import islice
from typing import Annotated

import typer

from modelreg.cli import output
from modelreg.cli.commands_requests import PAGE_SIZE, PANEL
from modelreg.cli.state import JsonFlag, get_state
from modelreg.domain.entities import HistoryEvent
from modelreg.domain.governance import AuditReport
from modelreg.errors import InvalidArgument

audit_app = typer.Typer(help="The tamper-evident record of every change.", no_args_is_help=True)


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Only this model's changes ('' for registry-wide ones).",
            show_default=False,
        ),
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option("--principal", help="Only changes this principal made.", show_default=False),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="Only this kind of change, e.g. grant_set.", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="From this time on (ISO 8601; UTC unless an offset is given).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Before this time (ISO 8601).", show_default=False),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="At most N records (the oldest that match).", show_default=False
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """List recorded changes, oldest first (admin)."""
    state = get_state(ctx)
    page = state.registry.audit_log(
        model=model,
        principal=principal,
        kind=kind,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        page_size=min(limit, PAGE_SIZE) if limit else PAGE_SIZE,
    )
    events = list(islice(page.all(), limit))
    if state.wants_json(json_flag):
        output.print_json([e.to_dict() for e in events])
        return
    grid = output.table(
        "seq",
        "at",
        "actor",
        "kind",
        "model",
        "version",
        "change",
        "reason",
        no_wrap=("seq", "at", "kind"),
    )
    for e in events:
        output.add_row(grid, [e.id, e.at, e.actor, e.kind, e.name, e.version, _change(e), e.reason])
    output.show(grid)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            metavar="SEQ:HASH",
            help="A head noted from an earlier verify: also proves the chain was not "
            "rewritten since.",
            show_default=False,
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Recompute the audit chain; exit status 1 naming the first edited, removed or
    reordered record (admin)."""
    state = get_state(ctx)
    report = state.registry.audit_verify(anchor=_anchor(anchor) if anchor else None)
    if state.wants_json(json_flag):
        output.print_json(report.to_dict())
    else:
        _audit_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _audit_report(report: AuditReport) -> None:
    if report.ok:
        output.line(
            f"audit chain intact: {output.count(report.records, 'record')}, "
            f"head {report.head_seq}:{report.head_hash}"
        )
        output.note("note the head: pass it as --anchor later to prove nothing was rewritten")
    else:
        output.line(
            f"audit chain broken at record {report.first_bad}: {report.problem}", style="red"
        )


def _change(e: HistoryEvent) -> str:
    if e.from_stage or e.to_stage:
        return f"{e.from_stage or ''} → {e.to_stage or ''}".strip()
    return ", ".join(
        f"{key}={_value(value)}"
        for key, value in e.details.items()
        if value not in (None, "", [], {})
    )


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    # Python 3.10's fromisoformat does not read the common "Z" suffix.
    raw = text.strip()
    raw = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument(
            f"invalid {option} {text!r}: use ISO 8601, e.g. 2026-11-30 or 2026-11-30T14:00:00Z"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or not digest:
        raise InvalidArgument(f"invalid --anchor {text!r}: use SEQ:HASH as verify printed it")
    return int(seq), digest


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(audit_app, name="audit", rich_help_panel=PANEL)
