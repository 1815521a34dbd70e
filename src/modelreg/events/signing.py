"""Webhook signatures: HMAC-SHA256 over ``"{timestamp}." + body`` with the webhook's secret.

Receivers check a delivery with :func:`verify` (or the few lines it documents): recompute
the HMAC over the raw body, compare in constant time, and refuse old timestamps so that a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Modelreg-Signature"
TIMESTAMP_HEADER = "Modelreg-Timestamp"
DELIVERY_HEADER = "Modelreg-Delivery"
EVENT_HEADER = "Modelreg-Event"
SCHEME = "sha256="
TOLERANCE = 300.0  # seconds a receiver accepts between signing and checking


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether a delivery is authentic and fresh: ``body`` is the raw request body,
    ``timestamp`` and ``signature`` the values of the Modelreg-Timestamp and
    Modelreg-Signature headers."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    sent = int(timestamp)
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)
