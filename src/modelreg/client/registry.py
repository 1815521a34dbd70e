"""``RemoteRegistry``: the Registry interface over a server's HTTP API."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from modelreg.artifacts.external import is_uri
from modelreg.artifacts.hashing import Progress
from modelreg.client.blobs import RemoteBlobs
from modelreg.client.governance import RemoteGovernance
from modelreg.client.http import Session
from modelreg.domain import codec
from modelreg.domain import gates as g
from modelreg.domain.deployments import Deployment, Environment
from modelreg.domain.entities import (
    Comparison,
    EventBatch,
    GcReport,
    HistoryEvent,
    Lineage,
    Model,
    ModelVersion,
    Page,
    VerifyReport,
)
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.manifest import FileEntry
from modelreg.domain.names import validate_alias, validate_key, validate_model_name
from modelreg.domain.refs import parse_ref
from modelreg.domain.webhooks import Webhook, WebhookDelivery
from modelreg.errors import InvalidArgument, ManifestMismatch
from modelreg.service import transfer
from modelreg.service.feed import check_wait
from modelreg.service.registry import validate_version_input

T = TypeVar("T")
# verify and gc re-read the whole blob store on the server: no read timeout.
LONG = None


def _seg(name: str) -> str:
    """A model name as a path segment. Checked here, with the same rules and errors the
    server applies, because a malformed name could otherwise change which URL is meant."""
    return quote(validate_model_name(name), safe="")


def _version_path(ref: str) -> str:
    parsed = parse_ref(ref)
    selector = str(parsed.version) if parsed.version is not None else f"@{parsed.label}"
    return f"/api/v1/models/{_seg(parsed.name)}/versions/{quote(selector, safe='@')}"


def _order(order_by: Sequence[str] | str | None) -> list[str] | None:
    if order_by is None:
        return None
    return [order_by] if isinstance(order_by, str) else list(order_by)


class RemoteRegistry(RemoteGovernance):
    """The Registry interface, talking to a ``modelreg serve`` server.

    ``client`` replaces the HTTP client (tests pass one bound to an in-process app);
    ``direct_io`` is ``MODELREG_DIRECT_IO`` for the files ``pull`` writes.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        user: str | None = None,
        client: httpx.Client | None = None,
        direct_io: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.direct_io = direct_io
        self.session = Session(self.url, token=token, user=user, client=client)
        self.blobs = RemoteBlobs(self.session)

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    def _page(
        self,
        path: str,
        params: dict[str, Any],
        decode: Callable[[dict[str, Any]], T],
    ) -> Page[T]:
        data = self.session.call("GET", path, params=params)

        def more(token: str) -> Page[T]:
            return self._page(path, {**params, "page_token": token}, decode)

        return Page(
            items=[decode(item) for item in data["items"]],
            next_page_token=data["next_page_token"],
            fetch_next=more,
        )

    # models
    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Model:
        """Create a registered model."""
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        return codec.model_from_dict(self.session.call("POST", "/api/v1/models", json=body))

    def get_model(self, name: str) -> Model:
        """A model with tags, latest version, exclusive-stage holders and aliases."""
        return codec.model_from_dict(self.session.call("GET", f"/api/v1/models/{_seg(name)}"))

    def update_model(self, name: str, *, description: str | None = None) -> Model:
        """Change a model's description."""
        data = self.session.call(
            "PATCH", f"/api/v1/models/{_seg(name)}", json={"description": description}
        )
        return codec.model_from_dict(data)

    def delete_model(self, name: str, *, force: bool = False) -> None:
        """Delete a model and its versions (refused while one is in production)."""
        self.session.call("DELETE", f"/api/v1/models/{_seg(name)}", params={"force": force})

    def search_models(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Model]:
        """Models matching a filter such as ``name LIKE 'fraud%' AND tags.team = 'risk'``."""
        params = {
            "filter": filter,
            "order_by": _order(order_by),
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._page("/api/v1/models", params, codec.model_from_dict)

    # versions
    def register(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        lineage: Lineage | Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        progress: Progress | None = None,
        external: bool = False,
    ) -> ModelVersion:
        """Upload a file or folder and register it as the model's next version.

        A URI ``path`` (``s3://…``, ``https://…``) registers external files: this client
        reads each once to record its size and SHA-256, and nothing is uploaded. Local
        paths cannot be external here: the server could not verify them.

        Files are hashed locally and the version is committed; if the server lacks some
        blobs it validates the metadata, names them and writes nothing; only those are
        uploaded (verified by the server while they stream), and the commit is repeated.
        Retrying after a failure re-sends only what is still missing. A large file that
        no stored blob can be (none has its size and first MiB) is sent first instead,
        hashed while it streams, and the server's digest of it must be the client's.
        """
        # The checks that need no database run here first: they also keep values JSON
        # cannot carry (NaN, lists as params) from failing inside the HTTP layer, and
        # bad metadata from being refused only after a large file was sent.
        given = validate_version_input(name, metrics, params, lineage, tags, description)
        url = f"/api/v1/models/{_seg(name)}/versions"
        if external and not is_uri(path):
            raise InvalidArgument(
                f"{path} is a local path: a remote registry can only reference files it can "
                "reach itself (s3:// or https://); register it without external to upload it"
            )
        streamed: dict[str, FileEntry] = {}
        if is_uri(path):
            files: list[tuple[str, Path]] = []
            entries = transfer.describe_external(path, progress)
        else:
            files = transfer.list_tree(path)
            # Large files no stored blob can be go first, hashed while they are sent.
            streamed = self.blobs.upload_new(files, progress)
            hashed = iter(_hash_tree([f for f in files if f[0] not in streamed]))
            entries = [streamed.get(rel) or next(hashed) for rel, _full in files]
        body: dict[str, Any] = {
            "files": [e.to_dict() for e in entries],
            "metrics": given.metrics,
            "params": given.params,
            "lineage": given.lineage.to_dict(),
            "tags": given.tags,
            "description": description,
        }
        try:
            # Optimistic: when every blob is already stored (a re-registration, shared
            # files) this one request is the whole registration.
            data = self.session.call("POST", url, json=body)
        except ManifestMismatch as exc:
            missing = set(exc.details.get("missing") or ())
            if not missing or not files:
                raise
            self._upload(files, entries, missing, progress, streamed)
            data = self.session.call("POST", url, json=body)
        else:
            if progress is not None and files:
                progress(sum(e.size for e in entries if e.path not in streamed))
        return codec.version_from_dict(data)

    def _upload(
        self,
        files: list[tuple[str, Path]],
        entries: list[FileEntry],
        missing: set[str],
        progress: Progress | None,
        counted: dict[str, FileEntry],
    ) -> None:
        """Send the missing blobs; ``counted`` files were sent already (and counted)."""
        todo: dict[str, tuple[Path, int]] = {}
        for (rel, full), entry in zip(files, entries, strict=True):
            if entry.sha256 in missing:
                todo.setdefault(entry.sha256, (full, entry.size))
            elif progress is not None and rel not in counted:
                progress(entry.size)  # already stored: counts as done

        def send(item: tuple[str, tuple[Path, int]]) -> None:
            sha, (full, size) = item
            self.blobs.upload(full, sha, size, progress)

        if todo:
            transfer.each_file(send, list(todo.items()), "upload")

    def get(self, ref: str) -> ModelVersion:
        """The version a reference names."""
        return codec.version_from_dict(self.session.call("GET", _version_path(ref)))

    def resolve(self, ref: str) -> ModelVersion:
        """Resolve ``NAME@stage``, ``NAME@alias`` or ``NAME@latest`` to its version."""
        return self.get(ref)

    def search_versions(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching a filter such as ``metrics.auc >= 0.9 AND stage = 'staging'``."""
        params = {
            "filter": filter,
            "order_by": _order(order_by),
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._page("/api/v1/versions", params, codec.version_from_dict)

    def list_versions(
        self, name: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[ModelVersion]:
        """A model's versions, newest first."""
        params = {"page_size": page_size, "page_token": page_token}
        return self._page(f"/api/v1/models/{_seg(name)}/versions", params, codec.version_from_dict)

    def update_version(self, ref: str, *, description: str | None = None) -> ModelVersion:
        """Change a version's description."""
        data = self.session.call("PATCH", _version_path(ref), json={"description": description})
        return codec.version_from_dict(data)

    def delete_version(self, ref: str) -> None:
        """Delete a version; its number is never reused."""
        self.session.call("DELETE", _version_path(ref))

    def transition(
        self, ref: str, stage: str, *, reason: str = "", override: bool = False
    ) -> ModelVersion:
        """Move a version to another stage, recording who, when and why. A failing
        promotion gate refuses the move (PolicyViolation) unless ``override`` is given
        with a ``reason``."""
        body = {"stage": stage, "reason": reason, "override": override}
        data = self.session.call("POST", _version_path(ref) + "/transitions", json=body)
        return codec.version_from_dict(data)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``NAME@alias`` at a version."""
        data = self.session.call(
            "PUT",
            f"/api/v1/models/{_seg(name)}/aliases/{quote(validate_alias(alias), safe='')}",
            json={"version": version},
        )
        return codec.version_from_dict(data)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self.session.call(
            "DELETE", f"/api/v1/models/{_seg(name)}/aliases/{quote(validate_alias(alias), safe='')}"
        )

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> None:
        """Set tags on a model (``NAME``) or a version."""
        self.session.call("PATCH", self._tags_path(ref), json={"tags": dict(tags)})

    def delete_tag(self, ref: str, key: str) -> None:
        """Remove a tag from a model or a version."""
        self.session.call("DELETE", f"{self._tags_path(ref)}/{quote(validate_key(key, 'tag'))}")

    @staticmethod
    def _tags_path(ref: str) -> str:
        if "/" in ref or "@" in ref:
            return _version_path(ref) + "/tags"
        return f"/api/v1/models/{_seg(ref)}/tags"

    def history(
        self,
        name: str,
        *,
        version: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryEvent]:
        """A model's timeline, oldest first."""
        params = {"version": version, "page_size": page_size, "page_token": page_token}
        return self._page(f"/api/v1/models/{_seg(name)}/history", params, codec.event_from_dict)

    def compare(self, a: str, b: str) -> Comparison:
        """Two versions' metrics, params and lineage side by side, with the promotion
        gate verdict when they are one model's versions in different stages."""
        data = self.session.call("GET", "/api/v1/compare", params={"a": a, "b": b})
        return codec.comparison_from_wire(data)

    # bytes
    def pull(
        self, ref: str, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> ModelVersion:
        """Download a version's files to ``dest``, verifying every byte (IntegrityError on
        a mismatch, leaving ``dest`` untouched)."""
        version = self.get(ref)
        transfer.pull(self.blobs, version, Path(dest), progress, direct_io=self.direct_io)
        return version

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Have the server re-hash every blob and report missing or corrupt ones.

        ``progress`` is not reported: the work happens on the server."""
        data = self.session.call("POST", "/api/v1/verify", timeout=LONG)
        return codec.verify_from_dict(data)

    def gc(self, grace: str | float = "24h", *, dry_run: bool = False) -> GcReport:
        """Delete unreferenced blobs older than ``grace`` (e.g. ``"24h"``) on the server."""
        transfer.parse_duration(grace)  # refuse a malformed duration before calling
        body = {"grace": grace, "dry_run": dry_run}
        return codec.gc_from_dict(self.session.call("POST", "/api/v1/gc", json=body, timeout=LONG))

    # lifecycle
    def get_lifecycle(self) -> Lifecycle:
        """The registry's stages and allowed moves."""
        return Lifecycle.from_dict(self.session.call("GET", "/api/v1/lifecycle"))

    def set_lifecycle(self, lifecycle: Lifecycle) -> Lifecycle:
        """Replace the registry's lifecycle."""
        data = self.session.call("PUT", "/api/v1/lifecycle", json=lifecycle.to_dict())
        return Lifecycle.from_dict(data)

    # promotion gates
    @staticmethod
    def _gates_path(model: str | None) -> str:
        return "/api/v1/gates" if model is None else f"/api/v1/models/{_seg(model)}/gates"

    def get_gates(self, model: str | None = None) -> g.GatePolicy:
        """The current gate policy of a model, or of the registry (``model`` None)."""
        return g.policy_from_dict(self.session.call("GET", self._gates_path(model)))

    def set_gates(
        self, policy: str | Mapping[str, Any], *, model: str | None = None
    ) -> g.GatePolicy:
        """Replace the gate policy (YAML/JSON text or a mapping) of a model or the registry."""
        # Text is parsed here (the server takes JSON); the server validates again.
        gates = g.gates_from_text(policy) if isinstance(policy, str) else g.parse_gates(policy)
        document = {stage: gate.to_dict() for stage, gate in gates.items()}
        data = self.session.call("PUT", self._gates_path(model), json={"gates": document})
        return g.policy_from_dict(data)

    def check_gates(self, ref: str, stage: str) -> g.GateEvaluation:
        """Evaluate the gate a version would meet entering ``stage``, changing nothing."""
        data = self.session.call("GET", "/api/v1/gates/check", params={"ref": ref, "stage": stage})
        return g.evaluation_from_dict(data)

    # events and webhooks
    def events(
        self,
        *,
        after: int = 0,
        wait: float = 0.0,
        limit: int | None = None,
        model: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> EventBatch:
        """Model events after the cursor ``after``, oldest first; with ``wait``, the
        server holds the request up to that many seconds for the first one (long poll)."""
        check_wait(wait)
        params: dict[str, str | int | list[str] | None] = {
            "after": after,
            "wait": str(wait),
            "limit": limit,
            "model": model,
            "kind": [kinds] if isinstance(kinds, str) else list(kinds or []),
        }
        data = self.session.call("GET", "/api/v1/events", params=params, timeout=wait + 30)
        return codec.batch_from_dict(data)

    def create_webhook(
        self,
        url: str,
        *,
        kinds: Sequence[str] | None = None,
        model: str | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> Webhook:
        """Subscribe a URL to events; the result carries the signing secret (shown once)."""
        body = {
            "url": url,
            "kinds": [kinds] if isinstance(kinds, str) else list(kinds or []),
            "model": model,
            "secret": secret,
            "description": description,
        }
        return Webhook.from_dict(self.session.call("POST", "/api/v1/webhooks", json=body))

    def list_webhooks(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Webhook]:
        """Every webhook, newest first, without secrets."""
        params = {"page_size": page_size, "page_token": page_token}
        return self._page("/api/v1/webhooks", params, Webhook.from_dict)

    def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook and its pending deliveries."""
        self.session.call("DELETE", f"/api/v1/webhooks/{_id(webhook_id)}")

    def test_webhook(self, webhook_id: int) -> WebhookDelivery:
        """Have the server send a signed ping now; returns the logged delivery."""
        data = self.session.call("POST", f"/api/v1/webhooks/{_id(webhook_id)}/test")
        return WebhookDelivery.from_dict(data)

    def webhook_deliveries(
        self, webhook_id: int, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[WebhookDelivery]:
        """A webhook's delivery log, newest first."""
        params = {"page_size": page_size, "page_token": page_token}
        path = f"/api/v1/webhooks/{_id(webhook_id)}/deliveries"
        return self._page(path, params, WebhookDelivery.from_dict)

    # deployments
    def create_environment(self, name: str, *, description: str = "") -> Environment:
        """Create a deployment environment such as ``prod-eu``."""
        body = {"name": name, "description": description}
        return Environment.from_dict(self.session.call("POST", "/api/v1/environments", json=body))

    def list_environments(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Environment]:
        """Every environment, newest first."""
        params = {"page_size": page_size, "page_token": page_token}
        return self._page("/api/v1/environments", params, Environment.from_dict)

    def record_deployment(
        self, ref: str, environment: str, *, status: str = "deployed", note: str = ""
    ) -> Deployment:
        """Record a version's deployment to an environment (emits ``deployment_recorded``)."""
        body = {"ref": ref, "environment": environment, "status": status, "note": note}
        return Deployment.from_dict(self.session.call("POST", "/api/v1/deployments", json=body))

    def list_deployments(
        self,
        *,
        model: str | None = None,
        environment: str | None = None,
        current: bool = True,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Deployment]:
        """What runs where (newest record per environment and model), or with
        ``current=False`` the whole deployment log; newest first."""
        params = {
            "model": model,
            "environment": environment,
            "current": current,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._page("/api/v1/deployments", params, Deployment.from_dict)

    def info(self) -> dict[str, Any]:
        """The server's version, database, blob store and schema, and who acts."""
        data: dict[str, Any] = self.session.call("GET", "/api/v1/info")
        return {**data, "mode": "remote", "server": self.url}


def _id(webhook_id: int) -> int:
    if isinstance(webhook_id, bool) or not isinstance(webhook_id, int) or webhook_id < 1:
        raise InvalidArgument(f"a webhook id is a positive integer, not {webhook_id!r}")
    return webhook_id


def _hash_tree(files: list[tuple[str, Path]]) -> list[FileEntry]:
    return transfer.each_file(lambda item: transfer.hash_file(*item), files, "hash")
