"""References to versions: ``NAME/7``, ``NAME@production``, ``NAME@champion``, ``NAME@latest``."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.domain.names import validate_model_name
from modelreg.errors import InvalidName, InvalidReference

LATEST = "latest"


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: exactly one of ``version`` and ``label`` is set."""

    name: str
    version: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.label}"


def parse_ref(text: object) -> Ref:
    """Parse a version reference; a bare model name is not a version reference."""
    if not isinstance(text, str):
        raise InvalidReference(f"reference must be a string, not {type(text).__name__}")
    if "@" in text:
        name, _, label = text.partition("@")
        if not label or "@" in label or "/" in label:
            raise InvalidReference(f"invalid reference {text!r}: expected NAME@STAGE_OR_ALIAS")
        ref = Ref(name=name, label=label.lower())
    elif "/" in text:
        name, _, number = text.partition("/")
        if not number.isdigit() or int(number) < 1 or len(number) > 18:
            raise InvalidReference(
                f"invalid reference {text!r}: the version must be a positive integer"
            )
        ref = Ref(name=name, version=int(number))
    else:
        raise InvalidReference(
            f"invalid reference {text!r}: expected NAME/VERSION, NAME@STAGE, NAME@ALIAS "
            "or NAME@latest"
        )
    try:
        validate_model_name(ref.name)
    except InvalidName as exc:
        raise InvalidReference(f"invalid reference {text!r}: {exc.message}") from exc
    return ref


def version_ref(name: str, version: int) -> str:
    """The canonical string of a version reference."""
    return f"{name}/{version}"
