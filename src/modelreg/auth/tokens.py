"""API tokens: ``mrt_<id>_<secret>``. The id is looked up; the secret is kept only as its
SHA-256. Secrets are 256 random bits, so a fast hash is enough: there is nothing to
brute-force that a slow password hash would protect."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from modelreg.errors import Unauthenticated

PREFIX = "mrt_"
_TOKEN = re.compile(r"^mrt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def new_token() -> tuple[str, str, str]:
    """A fresh token: (the whole token to show once, its id, the hash to store)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{token_id}_{secret}", token_id, hash_secret(secret)


def parse_token(token: str) -> tuple[str, str]:
    """Split a token into (id, secret); Unauthenticated if it is not one of ours."""
    match = _TOKEN.match(token)
    if match is None:
        # Never echo the value: a mistyped token is still mostly a secret.
        raise Unauthenticated("malformed token: modelreg tokens look like mrt_<id>_<secret>")
    return match.group(1), match.group(2)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Compare in constant time, so timing does not tell how much of a guess was right."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
