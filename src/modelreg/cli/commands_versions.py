"""Commands on versions: register, show, describe, delete, search, resolve, compare,
history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelreg.artifacts.external import is_uri
from modelreg.cli import output, views
from modelreg.cli.parsing import parse_dataset, parse_metrics, parse_params, parse_tags
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
from modelreg.service.transfer import list_tree

PANEL = "Versions"
Ref = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="NAME/3, NAME@production, NAME@champion or NAME@latest.",
        show_default=False,
    ),
]
Repeated = list[str] | None


def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)],
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="A model file or folder; or, as an external reference, s3://bucket/key, "
            "s3://bucket/prefix/ or https://… (see --external).",
            show_default=False,
        ),
    ],
    metric: Annotated[
        Repeated, typer.Option("--metric", "-m", help="KEY=NUMBER; repeatable.")
    ] = None,
    param: Annotated[
        Repeated, typer.Option("--param", "-p", help="KEY=VALUE, JSON scalars typed; repeatable.")
    ] = None,
    tag: Annotated[Repeated, typer.Option("--tag", "-t", help="KEY=VALUE; repeatable.")] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", help="What changed in this version.")
    ] = "",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Training run id.")] = None,
    run_uri: Annotated[str | None, typer.Option("--run-uri", help="Training run URL.")] = None,
    code_repo: Annotated[
        str | None, typer.Option("--code-repo", help="Repository of the training code.")
    ] = None,
    code_commit: Annotated[
        str | None, typer.Option("--code-commit", help="Commit of the training code.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Training data as NAME or NAME@VERSION.")
    ] = None,
    dataset_digest: Annotated[
        str | None, typer.Option("--dataset-digest", help="Digest of the training data.")
    ] = None,
    framework: Annotated[str | None, typer.Option("--framework", help="e.g. sklearn.")] = None,
    parent: Annotated[
        Repeated, typer.Option("--parent", help="Version this one derives from; repeatable.")
    ] = None,
    external: Annotated[
        bool,
        typer.Option(
            "--external",
            help="Leave the files where they are and record their size and SHA-256 (implied "
            "for s3:// and https:// paths); pull fetches and verifies them from there.",
        ),
    ] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Upload a file or folder as the model's next version, with its metadata."""
    state = get_state(ctx)
    json_output = state.wants_json(json_flag)
    dataset_name, dataset_version = parse_dataset(dataset) if dataset else (None, None)
    lineage: dict[str, Any] = {
        "run_id": run_id,
        "run_uri": run_uri,
        "code_repo": code_repo,
        "code_commit": code_commit,
        "dataset": dataset_name,
        "dataset_version": dataset_version,
        "dataset_digest": dataset_digest,
        "framework": framework,
        "parents": parent or [],
    }
    metrics = parse_metrics(metric or [])
    params = parse_params(param or [])
    tags = parse_tags(tag or [])
    registry = state.registry
    enabled = output.progress_enabled(json_output)
    by_reference = external or is_uri(path)
    if enabled and not by_reference:
        total: int | None = sum(f.stat().st_size for _, f in list_tree(path))
    else:
        total = None  # an external file's size is known only once it has been read
    verb = "reading" if by_reference else "uploading"
    label = f"{verb} {Path(path).name if not is_uri(path) else path}"
    with output.transfer_progress(label, total, enabled=enabled) as progress:
        version = registry.register(
            name,
            path,
            metrics=metrics,
            params=params,
            lineage=lineage,
            tags=tags,
            description=description,
            progress=progress,
            external=external,
        )
    if json_output:
        output.print_json(version.to_dict())
    else:
        output.line(f"registered {version.ref} ({version.manifest_digest})")


def show(ctx: typer.Context, ref: Ref, json_flag: JsonFlag = False) -> None:
    """Show a version: stage, aliases, digest, files, metrics, params, lineage, tags."""
    state = get_state(ctx)
    version = state.registry.get(ref)
    output.entity(version, json_output=state.wants_json(json_flag), render=views.version)


def resolve(ctx: typer.Context, ref: Ref, json_flag: JsonFlag = False) -> None:
    """Print the NAME/N a reference such as NAME@production points at."""
    state = get_state(ctx)
    version = state.registry.resolve(ref)
    output.entity(
        version,
        json_output=state.wants_json(json_flag),
        render=lambda version: output.line(version.ref),
    )


def describe(
    ctx: typer.Context,
    ref: Ref,
    description: Annotated[
        str, typer.Argument(metavar="DESCRIPTION", help="The new description.", show_default=False)
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Change a version's description."""
    state = get_state(ctx)
    version = state.registry.update_version(ref, description=description)
    output.entity(
        version,
        json_output=state.wants_json(json_flag),
        render=lambda version: output.line(f"updated {version.ref}"),
    )


def delete(ctx: typer.Context, ref: Ref, yes: Yes = False) -> None:
    """Delete a version; its number is never reused (its blobs stay until `gc`)."""
    state = get_state(ctx)
    version = state.registry.get(ref)
    confirm(f"delete {version.ref} ({version.stage})", yes)
    state.registry.delete_version(version.ref)
    state.done(f"deleted {version.ref}")


def search(
    ctx: typer.Context,
    filter: Annotated[
        str,
        typer.Argument(
            metavar="FILTER",
            help="e.g. \"metrics.auc >= 0.9 AND stage = 'staging'\".",
            show_default=False,
        ),
    ],
    order_by: OrderBy = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """Search versions of every model with a filter."""
    state = get_state(ctx)
    page = state.registry.search_versions(
        filter, order_by=order_by, page_size=page_size, page_token=page_token
    )
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.versions)


def compare(
    ctx: typer.Context,
    ref_a: Annotated[
        str, typer.Argument(metavar="REF_A", help="The baseline version.", show_default=False)
    ],
    ref_b: Annotated[
        str, typer.Argument(metavar="REF_B", help="The version to compare.", show_default=False)
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Compare two versions: metrics with deltas (b - a), params and lineage."""
    state = get_state(ctx)
    result = state.registry.compare(ref_a, ref_b)
    output.entity(result, json_output=state.wants_json(json_flag), render=views.comparison)


def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Only this version's events.")
    ] = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    all_pages: AllPages = False,
    json_flag: JsonFlag = False,
) -> None:
    """A model's timeline: registrations, stage moves, aliases and edits, oldest first."""
    state = get_state(ctx)
    page = state.registry.history(name, version=version, page_size=page_size, page_token=page_token)
    items, token = collect(page, all_pages)
    output.listing(items, token, json_output=state.wants_json(json_flag), render=views.history)


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    for command in (register, show, resolve, describe, delete, search, compare, history):
        app.command(rich_help_panel=PANEL)(command)
