"""The registry in-process: SQLite or PostgreSQL metadata plus a local blob store."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelreg._version import __version__
from modelreg.artifacts.base import ArtifactStore
from modelreg.artifacts.external import is_uri
from modelreg.artifacts.hashing import HEAD_BYTES, Progress
from modelreg.artifacts.local import LocalArtifactStore
from modelreg.auth.principal import Principal
from modelreg.config import Config
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
from modelreg.domain.gates import GateEvaluation, GatePolicy
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.webhooks import Webhook, WebhookDelivery
from modelreg.embedded_governance import EmbeddedGovernance
from modelreg.errors import InvalidArgument
from modelreg.service import transfer
from modelreg.service.feed import FEED_POLL, check_wait
from modelreg.service.registry import RegistryService
from modelreg.store.database import Database


def open_artifacts(
    location: str, *, fsync: bool, addressing_style: str = "auto", direct_io: bool = True
) -> ArtifactStore:
    """The blob store for a location string: a folder, ``file://`` URI or ``s3://`` URI."""
    if location.startswith("s3://"):
        # Imported here: boto3 takes a noticeable time to import, which registries on a
        # local folder (and every CLI call on one) should not pay.
        from modelreg.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(location, addressing_style=addressing_style)
    if location.startswith("file://"):
        location = location[len("file://") :]
    elif "://" in location:
        scheme = location.split("://", 1)[0]
        raise InvalidArgument(
            f"unsupported artifact store {scheme!r}: use a local folder or s3://bucket/prefix"
        )
    return LocalArtifactStore(location, fsync=fsync, direct_io=direct_io)


class EmbeddedRegistry(EmbeddedGovernance):
    """The Registry interface, running in this process as one principal."""

    def __init__(self, config: Config, *, principal: Principal | None = None) -> None:
        self.config = config
        self.principal = principal or Principal(config.user)
        self.db = Database(config.uri, busy_timeout=config.busy_timeout, durable=config.fsync)
        self.db.upgrade()
        self.blobs = open_artifacts(
            config.artifacts,
            fsync=config.fsync,
            addressing_style=config.s3_addressing_style,
            direct_io=config.direct_io,
        )
        self.service = RegistryService(self.db, self.blobs)

    def __enter__(self) -> EmbeddedRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def info(self) -> dict[str, Any]:
        """Where the registry lives and who acts in it."""
        return {
            "version": __version__,
            "mode": "embedded",
            "database": self.db.safe_url,
            "artifacts": self.blobs.location,
            "user": self.principal.name,
            "schema_revision": self.db.current_revision(),
        }

    # models
    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Model:
        """Create a registered model."""
        return self.service.create_model(self.principal, name, description=description, tags=tags)

    def get_model(self, name: str) -> Model:
        """A model with tags, latest version, exclusive-stage holders and aliases."""
        return self.service.get_model(self.principal, name)

    def update_model(self, name: str, *, description: str | None = None) -> Model:
        """Change a model's description."""
        return self.service.update_model(self.principal, name, description=description)

    def delete_model(self, name: str, *, force: bool = False) -> None:
        """Delete a model and its versions (refused while one is in production)."""
        self.service.delete_model(self.principal, name, force=force)

    def search_models(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Model]:
        """Models matching a filter such as ``name LIKE 'fraud%' AND tags.team = 'risk'``."""
        return self.service.search_models(
            self.principal,
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
        )

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
        """Store a file or folder and register it as the model's next version.

        Metadata is validated first, then every blob is written (hashed while copied),
        then the version is committed in one transaction.

        ``external=True``, or a ``path`` that is a URI (``s3://bucket/key``,
        ``s3://bucket/prefix/``, ``https://…``), registers the files where they are:
        each is read once to record its size and SHA-256, and nothing is copied. Pull
        fetches them from there and refuses them if they changed.
        """
        self.service.check_version_input(
            self.principal,
            name,
            metrics=metrics,
            params=params,
            lineage=lineage,
            tags=tags,
            description=description,
        )
        if external or is_uri(path):
            entries = transfer.describe_external(path, progress)
        else:
            entries = transfer.store_tree(self.blobs, transfer.list_tree(path), progress)
            # A server over the same store then knows these blobs when a client asks
            # before uploading a large file (see service/heads.py).
            self.service.remember_heads(e.sha256 for e in entries if e.size >= HEAD_BYTES)
        return self.service.create_version(
            self.principal,
            name,
            entries,
            metrics=metrics,
            params=params,
            lineage=lineage,
            tags=tags,
            description=description,
        )

    def get(self, ref: str) -> ModelVersion:
        """The version a reference names."""
        return self.service.get(self.principal, ref)

    def resolve(self, ref: str) -> ModelVersion:
        """Resolve ``NAME@stage``, ``NAME@alias`` or ``NAME@latest`` to its version."""
        return self.service.get(self.principal, ref)

    def search_versions(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching a filter such as ``metrics.auc >= 0.9 AND stage = 'staging'``."""
        return self.service.search_versions(
            self.principal,
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
        )

    def list_versions(
        self, name: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[ModelVersion]:
        """A model's versions, newest first."""
        return self.service.list_versions(
            self.principal, name, page_size=page_size, page_token=page_token
        )

    def update_version(self, ref: str, *, description: str | None = None) -> ModelVersion:
        """Change a version's description."""
        return self.service.update_version(self.principal, ref, description=description)

    def delete_version(self, ref: str) -> None:
        """Delete a version; its number is never reused."""
        self.service.delete_version(self.principal, ref)

    def transition(
        self, ref: str, stage: str, *, reason: str = "", override: bool = False
    ) -> ModelVersion:
        """Move a version to another stage, recording who, when and why. A failing
        promotion gate refuses the move (PolicyViolation) unless ``override`` is given
        with a ``reason``."""
        return self.service.transition(self.principal, ref, stage, reason=reason, override=override)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``NAME@alias`` at a version."""
        return self.service.set_alias(self.principal, name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self.service.delete_alias(self.principal, name, alias)

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> None:
        """Set tags on a model (``NAME``) or a version."""
        self.service.set_tags(self.principal, ref, tags)

    def delete_tag(self, ref: str, key: str) -> None:
        """Remove a tag from a model or a version."""
        self.service.delete_tag(self.principal, ref, key)

    def history(
        self,
        name: str,
        *,
        version: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryEvent]:
        """A model's timeline, oldest first."""
        return self.service.history(
            self.principal, name, version=version, page_size=page_size, page_token=page_token
        )

    def compare(self, a: str, b: str) -> Comparison:
        """Two versions' metrics, params and lineage side by side, with the promotion
        gate verdict when they are one model's versions in different stages."""
        return self.service.compare(self.principal, a, b)

    # bytes
    def pull(
        self, ref: str, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> ModelVersion:
        """Write a version's files to ``dest``, verifying every byte (IntegrityError on a
        mismatch, leaving ``dest`` untouched)."""
        version = self.get(ref)
        transfer.pull(self.blobs, version, Path(dest), progress, direct_io=self.config.direct_io)
        return version

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Re-hash every blob and report missing or corrupt ones."""
        return self.service.verify(self.principal, progress=progress)

    def gc(self, grace: str | float = "24h", *, dry_run: bool = False) -> GcReport:
        """Delete unreferenced blobs older than ``grace`` (e.g. ``"24h"``)."""
        seconds = transfer.parse_duration(grace)
        return self.service.gc(self.principal, seconds, dry_run=dry_run)

    # lifecycle
    def get_lifecycle(self) -> Lifecycle:
        """The registry's stages and allowed moves."""
        return self.service.get_lifecycle(self.principal)

    def set_lifecycle(self, lifecycle: Lifecycle) -> Lifecycle:
        """Replace the registry's lifecycle."""
        return self.service.set_lifecycle(self.principal, lifecycle)

    # promotion gates
    def get_gates(self, model: str | None = None) -> GatePolicy:
        """The current gate policy of a model, or of the registry (``model`` None)."""
        return self.service.get_gates(self.principal, model)

    def set_gates(self, policy: str | Mapping[str, Any], *, model: str | None = None) -> GatePolicy:
        """Replace the gate policy (YAML/JSON text or a mapping) of a model or the registry."""
        return self.service.set_gates(self.principal, policy, model=model)

    def check_gates(self, ref: str, stage: str) -> GateEvaluation:
        """Evaluate the gate a version would meet entering ``stage``, changing nothing."""
        return self.service.check_gates(self.principal, ref, stage)

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
        """Model events after the cursor ``after``, oldest first; with ``wait``, wait up
        to that many seconds for the first one to arrive."""
        deadline = time.monotonic() + check_wait(wait)
        while True:
            batch = self.service.events(
                self.principal, after=after, limit=limit, model=model, kinds=kinds
            )
            left = deadline - time.monotonic()
            if batch.events or left <= 0:
                return batch
            after = batch.cursor
            time.sleep(min(FEED_POLL, left))

    def create_webhook(
        self,
        url: str,
        *,
        kinds: Sequence[str] | None = None,
        model: str | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> Webhook:
        """Subscribe a URL to events; the result carries the signing secret (shown once).
        A server delivers the webhooks (``modelreg serve``)."""
        return self.service.create_webhook(
            self.principal, url, kinds=kinds, model=model, secret=secret, description=description
        )

    def list_webhooks(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Webhook]:
        """Every webhook, newest first, without secrets."""
        return self.service.list_webhooks(
            self.principal, page_size=page_size, page_token=page_token
        )

    def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook and its pending deliveries."""
        self.service.delete_webhook(self.principal, webhook_id)

    def test_webhook(self, webhook_id: int) -> WebhookDelivery:
        """Send a signed ping now; returns the logged delivery with the receiver's answer."""
        return self.service.test_webhook(self.principal, webhook_id)

    def webhook_deliveries(
        self, webhook_id: int, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[WebhookDelivery]:
        """A webhook's delivery log, newest first."""
        return self.service.webhook_deliveries(
            self.principal, webhook_id, page_size=page_size, page_token=page_token
        )

    # deployments
    def create_environment(self, name: str, *, description: str = "") -> Environment:
        """Create a deployment environment such as ``prod-eu``."""
        return self.service.create_environment(self.principal, name, description=description)

    def list_environments(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Environment]:
        """Every environment, newest first."""
        return self.service.list_environments(
            self.principal, page_size=page_size, page_token=page_token
        )

    def record_deployment(
        self, ref: str, environment: str, *, status: str = "deployed", note: str = ""
    ) -> Deployment:
        """Record a version's deployment to an environment (emits ``deployment_recorded``)."""
        return self.service.record_deployment(
            self.principal, ref, environment, status=status, note=note
        )

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
        return self.service.list_deployments(
            self.principal,
            model=model,
            environment=environment,
            current=current,
            page_size=page_size,
            page_token=page_token,
        )
