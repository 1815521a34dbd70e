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
from modelreg.auth.principal import Principal
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

__version__ = "0.1.0"


def connect(
    uri: str | None = None,
    *,
    artifacts: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    user: str | None = None,
) -> EmbeddedRegistry:
    """Open a registry.

    With no arguments: the embedded registry under ``MODELREG_HOME`` (default
    ``~/.modelreg``). ``uri`` may be ``sqlite:///path.db`` or ``postgresql+psycopg://…``;
    ``artifacts`` is the blob folder. Environment variables fill what is not passed.
    """
    if uri is not None and uri.startswith(("http://", "https://")):
        raise errors.InvalidArgument(
            "remote registries (http://) are not supported by this version; "
            "use a sqlite:/// or postgresql:// URI"
        )
    config = Config.load(
        uri=uri,
        artifacts=str(artifacts) if artifacts is not None else None,
        home=str(Path(home)) if home is not None else None,
        user=user,
    )
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
    "VerifyReport",
    "connect",
    "errors",
]
