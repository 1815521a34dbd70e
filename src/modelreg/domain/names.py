"""Naming rules for models, aliases and metadata keys.

Names end up in URLs, file names, shell commands and references such as ``fraud/7`` or
``fraud@champion``, so they are restricted to characters that need no quoting anywhere.
"""

from __future__ import annotations

import re

from modelreg.errors import InvalidName

MAX_NAME_LENGTH = 128
MAX_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 5000

# A model name starts with a letter or digit; "/" and "@" are excluded because they
# separate a name from its version or stage in a reference.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/: ]*$")

MODEL_NAME_RULES = (
    "1-128 characters: letters, digits, '.', '_' and '-', starting with a letter or digit"
)
ALIAS_RULES = "1-64 characters: lowercase letters, digits, '_' and '-', starting with a letter"
KEY_RULES = (
    "1-250 characters: letters, digits, '_', '.', '-', '/', ':' and spaces, "
    "not starting with a space or punctuation other than '_'"
)


def validate_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"model name must be a string, not {type(name).__name__}")
    if not name or len(name) > MAX_NAME_LENGTH or not _MODEL_NAME.match(name):
        raise InvalidName(f"invalid model name {name!r}: {MODEL_NAME_RULES}", name=name)
    return name


def validate_alias(alias: object, reserved: frozenset[str] = frozenset()) -> str:
    """Return ``alias`` if valid and not one of the ``reserved`` words (stages, ``latest``)."""
    if not isinstance(alias, str) or not alias or len(alias) > 64 or not _ALIAS.match(alias):
        raise InvalidName(f"invalid alias {alias!r}: {ALIAS_RULES}", alias=str(alias))
    if alias in reserved:
        raise InvalidName(
            f"alias {alias!r} is reserved: stages and 'latest' share the '@' namespace",
            alias=alias,
        )
    return alias


def validate_key(key: object, what: str) -> str:
    """Validate a tag, metric or parameter key; ``what`` names the kind in the error."""
    if (
        not isinstance(key, str)
        or not key
        or len(key) > MAX_KEY_LENGTH
        or key != key.strip()
        or not _KEY.match(key)
    ):
        raise InvalidName(f"invalid {what} key {key!r}: {KEY_RULES}", key=str(key))
    return key


def validate_tag_value(key: str, value: object) -> str:
    """Tags are short strings; anything else is refused rather than silently converted."""
    if not isinstance(value, str):
        raise InvalidName(
            f"tag {key!r} must have a string value, not {type(value).__name__}", key=key
        )
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidName(
            f"tag {key!r} value is longer than {MAX_TAG_VALUE_LENGTH} characters", key=key
        )
    return value
