"""The one interface every registry client implements, embedded or remote."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from modelreg.artifacts.hashing import Progress
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
from modelreg.governance_api import Governance


@runtime_checkable
class Registry(Governance, Protocol):
    """A model registry. References are strings: ``NAME/3``, ``NAME@production``,
    ``NAME@champion``, ``NAME@latest``; a bare ``NAME`` where a model is meant."""

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Model: ...
    def get_model(self, name: str) -> Model: ...
    def update_model(self, name: str, *, description: str | None = None) -> Model: ...
    def delete_model(self, name: str, *, force: bool = False) -> None: ...
    def search_models(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Model]: ...
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
    ) -> ModelVersion: ...
    def get(self, ref: str) -> ModelVersion: ...
    def resolve(self, ref: str) -> ModelVersion: ...
    def search_versions(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]: ...
    def list_versions(
        self, name: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[ModelVersion]: ...
    def update_version(self, ref: str, *, description: str | None = None) -> ModelVersion: ...
    def delete_version(self, ref: str) -> None: ...
    def transition(
        self, ref: str, stage: str, *, reason: str = "", override: bool = False
    ) -> ModelVersion: ...
    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def set_tags(self, ref: str, tags: Mapping[str, str]) -> None: ...
    def delete_tag(self, ref: str, key: str) -> None: ...
    def history(
        self,
        name: str,
        *,
        version: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryEvent]: ...
    def compare(self, a: str, b: str) -> Comparison: ...
    def pull(
        self, ref: str, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> ModelVersion: ...
    def verify(self, *, progress: Progress | None = None) -> VerifyReport: ...
    def gc(self, grace: str | float = "24h", *, dry_run: bool = False) -> GcReport: ...
    def get_lifecycle(self) -> Lifecycle: ...
    def set_lifecycle(self, lifecycle: Lifecycle) -> Lifecycle: ...
    # promotion gates
    def get_gates(self, model: str | None = None) -> GatePolicy: ...
    def set_gates(
        self, policy: str | Mapping[str, Any], *, model: str | None = None
    ) -> GatePolicy: ...
    def check_gates(self, ref: str, stage: str) -> GateEvaluation: ...
    # events and webhooks
    def events(
        self,
        *,
        after: int = 0,
        wait: float = 0.0,
        limit: int | None = None,
        model: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> EventBatch: ...
    def create_webhook(
        self,
        url: str,
        *,
        kinds: Sequence[str] | None = None,
        model: str | None = None,
        secret: str | None = None,
        description: str = "",
    ) -> Webhook: ...
    def list_webhooks(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Webhook]: ...
    def delete_webhook(self, webhook_id: int) -> None: ...
    def test_webhook(self, webhook_id: int) -> WebhookDelivery: ...
    def webhook_deliveries(
        self, webhook_id: int, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[WebhookDelivery]: ...
    # deployments
    def create_environment(self, name: str, *, description: str = "") -> Environment: ...
    def list_environments(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Environment]: ...
    def record_deployment(
        self, ref: str, environment: str, *, status: str = "deployed", note: str = ""
    ) -> Deployment: ...
    def list_deployments(
        self,
        *,
        model: str | None = None,
        environment: str | None = None,
        current: bool = True,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Deployment]: ...
    def info(self) -> dict[str, Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Registry: ...
    def __exit__(self, *exc: object) -> None: ...
