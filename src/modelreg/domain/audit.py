"""The audit chain's hash: how one timeline record is bound to the one before it.

This function defines the chain. Changing it would make every stored chain fail to
verify, so it is frozen: a new format would need a new, versioned function.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

GENESIS = "0" * 64


def canonical_time(at: datetime) -> str:
    """A timestamp as the chain hashes it: UTC, microseconds, ``Z``."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    previous: str,
    *,
    id: int,
    at: datetime,
    actor: str,
    kind: str,
    model_name: str,
    version: int | None,
    from_stage: str | None,
    to_stage: str | None,
    reason: str | None,
    details: str,
) -> str:
    """SHA-256 (hex) of the previous record's hash and this record's every field."""
    # A JSON array, not concatenated text, so no two different records encode alike.
    body = json.dumps(
        [
            id,
            canonical_time(at),
            actor,
            kind,
            model_name,
            version,
            from_stage,
            to_stage,
            reason,
            details,
        ],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{previous}:{body}".encode()).hexdigest()
