"""Commands on how versions enter protected stages: lifecycle policies and transition
requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelreg.cli import output
from modelreg.cli.parsing import read_json
from modelreg.cli.state import JsonFlag, get_state
from modelreg.domain.governance import REQUEST_STATUSES, TransitionRequest
from modelreg.domain.policy import Policy
from modelreg.errors import InvalidArgument

PANEL = "Governance"
ANY_STATUS = "any"
# Large pages: the CLI walks whole listings, and each page is a round trip to a server.
PAGE_SIZE = 1000

policy_app = typer.Typer(
    help="Which role moves versions into each stage, and which stages need approval.",
    no_args_is_help=True,
)
request_app = typer.Typer(help="Transition requests into protected stages.", no_args_is_help=True)

RequestId = Annotated[
    int, typer.Argument(metavar="ID", min=1, help="Request number.", show_default=False)
]
Comment = Annotated[str, typer.Option("--comment", "-c", help="A note kept with the decision.")]


# ----------------------------------------------------------------- policies


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The policy in force for this model (its own rules over the registry's).",
            show_default=False,
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Show the registry's lifecycle policy, or the one in force for a model."""
    state = get_state(ctx)
    policy = state.registry.get_policy(model)
    title = f"policy for {model}" if model else "registry policy"
    output.entity(
        policy,
        json_output=state.wants_json(json_flag),
        render=lambda p: _policy(p, title),
    )


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help='A JSON file (YAML is not supported), e.g. {"stages": {"production": '
            '{"role": "reviewer", "approvals": 1}}}.',
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Set this model's own rules instead of the registry's policy.",
            show_default=False,
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Replace the registry's policy, or a model's own rules, from a JSON file (admin)."""
    state = get_state(ctx)
    policy = state.registry.set_policy(Policy.from_dict(read_json(file)), model)
    target = f"model {model}" if model else "the registry"
    output.entity(
        policy,
        json_output=state.wants_json(json_flag),
        render=lambda p: output.line(f"policy set for {target}: {_summary(p)}"),
    )


@policy_app.command("rm")
def policy_rm(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option("--model", help="The model whose own rules to drop.", show_default=False),
    ],
) -> None:
    """Drop a model's own rules; the registry's policy applies to it again (admin)."""
    state = get_state(ctx)
    state.registry.delete_policy(model)
    state.done(f"removed the policy of model {model}")


def _policy(policy: Policy, title: str) -> None:
    grid = output.table("stage", "role", "approvals", title=title)
    for stage, rule in sorted(policy.stages.items()):
        approvals = f"{rule.approvals} (protected)" if rule.protected else "none"
        output.add_row(grid, [stage, rule.role.value, approvals])
    output.show(grid)
    output.note("stages not listed: contributors, no approval")


def _summary(policy: Policy) -> str:
    protected = sorted(stage for stage, rule in policy.stages.items() if rule.protected)
    return f"protected stages {', '.join(protected)}" if protected else "no protected stages"


# ----------------------------------------------------------------- requests


@request_app.command("create")
def request_create(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version to move.", show_default=False)
    ],
    stage: Annotated[
        str, typer.Argument(metavar="STAGE", help="Target stage.", show_default=False)
    ],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why, for the reviewers and the history.")
    ] = "",
    json_flag: JsonFlag = False,
) -> None:
    """Ask for a version to be moved into a protected stage; reviewers approve it."""
    state = get_state(ctx)
    request = state.registry.request_transition(ref, stage, reason=reason)
    output.entity(request, json_output=state.wants_json(json_flag), render=_request_line)


@request_app.command("list")
def request_list(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", help="Only this model's requests.", show_default=False)
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="open, applied, rejected, cancelled or any.")
    ] = "open",
    json_flag: JsonFlag = False,
) -> None:
    """List transition requests, oldest first."""
    state = get_state(ctx)
    if status not in (*REQUEST_STATUSES, ANY_STATUS):
        raise InvalidArgument(
            f"unknown status {status!r}: use {', '.join(REQUEST_STATUSES)} or {ANY_STATUS}"
        )
    page = state.registry.list_requests(
        model=model, status=None if status == ANY_STATUS else status, page_size=PAGE_SIZE
    )
    requests = list(page.all())
    if state.wants_json(json_flag):
        output.print_json([r.to_dict() for r in requests])
        return
    grid = output.table(
        "id",
        "version",
        "move",
        "status",
        "approvals",
        "requested",
        "by",
        "reason",
        no_wrap=("id", "version", "requested"),
    )
    for r in requests:
        output.add_row(
            grid,
            [
                r.id,
                r.ref,
                f"{r.from_stage} → {r.to_stage}",
                r.status,
                f"{len(r.approvals)}/{r.approvals_required}",
                r.requested_at,
                r.requested_by,
                r.reason,
            ],
        )
    output.show(grid)


@request_app.command("show")
def request_show(ctx: typer.Context, request_id: RequestId, json_flag: JsonFlag = False) -> None:
    """Show one request with its approvals and decision."""
    state = get_state(ctx)
    request = state.registry.get_request(request_id)
    output.entity(request, json_output=state.wants_json(json_flag), render=_request)


@request_app.command("approve")
def request_approve(
    ctx: typer.Context, request_id: RequestId, comment: Comment = "", json_flag: JsonFlag = False
) -> None:
    """Approve a request (a reviewer other than the requester); the last approval needed
    applies the move."""
    state = get_state(ctx)
    request = state.registry.approve_request(request_id, comment=comment)
    output.entity(request, json_output=state.wants_json(json_flag), render=_request_line)


@request_app.command("reject")
def request_reject(
    ctx: typer.Context, request_id: RequestId, comment: Comment = "", json_flag: JsonFlag = False
) -> None:
    """Reject a request; --comment saying why is required."""
    state = get_state(ctx)
    request = state.registry.reject_request(request_id, comment=comment)
    output.entity(request, json_output=state.wants_json(json_flag), render=_request_line)


@request_app.command("cancel")
def request_cancel(
    ctx: typer.Context, request_id: RequestId, comment: Comment = "", json_flag: JsonFlag = False
) -> None:
    """Withdraw an open request."""
    state = get_state(ctx)
    request = state.registry.cancel_request(request_id, comment=comment)
    output.entity(request, json_output=state.wants_json(json_flag), render=_request_line)


def _request_line(r: TransitionRequest) -> None:
    move = f"request {r.id}: {r.ref} {r.from_stage} → {r.to_stage}"
    if r.status == "open":
        output.line(f"{move} is open, {len(r.approvals)} of {r.approvals_required} approvals")
    elif r.status == "applied":
        output.line(f"{move} applied: {r.ref} is now in {r.to_stage}")
    else:
        output.line(f"{move} {r.status} by {r.decided_by}")


def _request(r: TransitionRequest) -> None:
    head = output.table("field", "value", title=f"request {r.id}")
    output.add_row(head, ["version", r.ref])
    output.add_row(head, ["move", f"{r.from_stage} → {r.to_stage}"])
    output.add_row(head, ["status", r.status])
    output.add_row(head, ["reason", r.reason])
    output.add_row(head, ["requested", f"{output.when(r.requested_at)} by {r.requested_by}"])
    output.add_row(head, ["approvals", f"{len(r.approvals)} of {r.approvals_required}"])
    if r.decided_at is not None:
        output.add_row(head, ["decided", f"{output.when(r.decided_at)} by {r.decided_by}"])
    output.add_row(head, ["comment", r.comment])
    output.show(head)
    if r.approvals:
        grid = output.table("approver", "at", "comment", title="approvals")
        for a in r.approvals:
            output.add_row(grid, [a.approver, a.at, a.comment])
        output.show(grid)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(policy_app, name="policy", rich_help_panel=PANEL)
    app.add_typer(request_app, name="request", rich_help_panel=PANEL)
