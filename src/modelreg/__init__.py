"""modelreg: a model registry with immutable, verified versions, stages and lineage.

import modelreg
reg = modelreg.connect()            # embedded: SQLite + blobs under MODELREG_HOME
mv = reg.register("fraud", "model_dir/", metrics={"auc": 0.93})
reg.transition(mv.ref, "staging")
"""

from __future__ import annotations

import os
from pathlib import Path

from modelreg import errors
from modelreg._version import __version__
from modelreg.auth.principal import Principal
from modelreg.client import RemoteRegistry
from modelreg.client.credentials import load_token
from modelreg.config import Config
from modelreg.domain.entities import (
    Comparison,
    GcReport,
    HistoryEvent,
    Lineage,
    Model,
    ModelVersion,
    Page,
    VerifyReport,
)
from modelreg.domain.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from modelreg.domain.manifest import FileEntry
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import ModelregError
from modelreg.protocol import Registry


def connect(
    uri: str | None = None,
    *,
    artifacts: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    user: str | None = None,
    token: str | None = None,
) -> Registry:
    """Open a registry.

    With no arguments: the embedded registry under ``MODELREG_HOME`` (default
    ``~/.modelreg``). ``uri`` may be ``sqlite:///path.db`` or ``postgresql+psycopg://…``
    (embedded, ``artifacts`` is the blob folder), or ``http(s)://host:port`` for a
    ``modelreg serve`` server (``token`` authenticates; without one, ``MODELREG_TOKEN``
    or the token ``modelreg login`` saved for that URL). Environment variables
    (``MODELREG_URI``, ``MODELREG_TOKEN``, …) fill what is not passed.
    """
    config = Config.load(
        uri=uri,
        artifacts=str(artifacts) if artifacts is not None else None,
        home=str(Path(home)) if home is not None else None,
        user=user,
        token=token,
    )
    if config.uri.startswith(("http://", "https://")):
        token = config.token or load_token(config.credentials, config.uri)
        return RemoteRegistry(config.uri, token=token, user=config.user, direct_io=config.direct_io)
    return EmbeddedRegistry(config)


__all__ = [
    "DEFAULT_LIFECYCLE",
    "Comparison",
    "Config",
    "EmbeddedRegistry",
    "FileEntry",
    "GcReport",
    "HistoryEvent",
    "Lifecycle",
    "Lineage",
    "Model",
    "ModelVersion",
    "ModelregError",
    "Page",
    "Principal",
    "Registry",
    "RemoteRegistry",
    "VerifyReport",
    "__version__",
    "connect",
    "errors",
]
